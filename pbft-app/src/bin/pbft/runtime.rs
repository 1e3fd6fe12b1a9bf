//! The async runtimes the commands run on.

use anyhow::Context;

/// A multi-threaded runtime with a worker per core: what the client-side
/// commands (`up`, `status`, `kv`, the bench's default) run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// An async runtime on one thread, or on a pool of `threads`: what a replica
/// process and the bench's load generator run on.
pub fn runtime_on(threads: u16) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut pool = tokio::runtime::Builder::new_multi_thread();
        pool.worker_threads(usize::from(threads));
        pool
    };
    builder.enable_all().build().context("cannot start the async runtime")
}
