//! Work on a host of the test network from inside the test process: a
//! thread of its own enters the host's namespace and runs a runtime there.

use crate::net::{enter_namespace, Testnet};
use anyhow::{Context, Result};
use std::future::Future;
use std::thread::JoinHandle;

/// Runs `work()`'s future on a new thread inside host `host`'s network
/// namespace, on a single-threaded runtime built there (so every socket the
/// future opens, the client library's QUIC endpoint among them, is the
/// host's). Join the handle for its output.
pub fn on_host<T, F, Fut>(net: &Testnet, host: usize, name: &str, work: F) -> Result<JoinHandle<Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let path = net.netns_path(host);
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            enter_namespace(&path)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a runtime on the host")?;
            Ok(runtime.block_on(work()))
        })
        .context("spawning a host thread")
}
