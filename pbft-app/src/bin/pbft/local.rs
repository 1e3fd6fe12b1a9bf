//! Replicas of a config run on this machine as `pbft replica` child
//! processes, and their supervision: what `pbft up` and `pbft bench --local`
//! share.

use crate::storage_args::StorageArgs;
use anyhow::Context;
use pbft_app::cluster_config::ClusterConfig;
use pbft_core::ReplicaId;
use std::path::Path;
use std::time::Duration;

/// Replica processes started on this machine. Dropping it stops them: their
/// stdin lifelines close and the children are killed.
pub struct LocalReplicas {
    /// Each replica's id and process.
    pub children: Vec<(ReplicaId, tokio::process::Child)>,
    /// The write ends of their stdin: a replica stops when its end closes.
    lifelines: Vec<Option<tokio::process::ChildStdin>>,
}

impl LocalReplicas {
    /// Starts every replica of the config at `path` as a `pbft replica`
    /// child process with the `storage` options. Must run inside a tokio runtime.
    pub fn spawn(
        path: &Path,
        config: &ClusterConfig,
        storage: &StorageArgs,
    ) -> anyhow::Result<LocalReplicas> {
        let exe = std::env::current_exe().context("cannot find the pbft executable")?;
        let mut children = Vec::new();
        let mut lifelines = Vec::new();
        for replica in &config.replicas {
            let mut command = tokio::process::Command::new(&exe);
            command
                .arg("replica")
                .arg("--config")
                .arg(path)
                .arg("--id")
                .arg(replica.id.0.to_string())
                .arg("--stop-when-stdin-closes")
                .args(storage.child_args())
                .stdin(std::process::Stdio::piped())
                .kill_on_drop(true);
            if crate::LOG_JSON.load(std::sync::atomic::Ordering::Relaxed) {
                command.arg("--log-json");
            }
            let mut child =
                command.spawn().with_context(|| format!("cannot start replica {}", replica.id.0))?;
            lifelines.push(child.stdin.take());
            children.push((replica.id, child));
        }
        Ok(LocalReplicas { children, lifelines })
    }

    /// Stops the replicas and returns once every process has exited, so
    /// that their ports are free: closes their lifelines, then kills any
    /// replica still running after `grace`.
    pub async fn stop(self, grace: Duration) {
        let LocalReplicas { children, lifelines } = self;
        drop(lifelines);
        for (id, mut child) in children {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                if let Err(error) = child.kill().await {
                    eprintln!("warning: cannot stop replica {}: {error}", id.0);
                }
            }
        }
    }

    /// Waits for the first child to exit and returns its index in
    /// `children` and how it exited; never completes without children.
    /// (Waiting on a tokio child closes its stdin, so the lifelines are kept
    /// apart from the children.)
    pub async fn first_exit(&mut self) -> (usize, String) {
        if self.children.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.children.iter_mut().enumerate().map(|(index, (_, child))| {
            Box::pin(async move {
                let status = child.wait().await;
                (index, status.map_or_else(|e| e.to_string(), |s| s.to_string()))
            })
        });
        select_all(waits).await
    }
}

/// The output of whichever of `futures` completes first.
async fn select_all<F: std::future::Future + Unpin>(futures: impl IntoIterator<Item = F>) -> F::Output {
    let mut futures: Vec<F> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for future in &mut futures {
            if let std::task::Poll::Ready(output) = std::pin::Pin::new(future).poll(cx) {
                return std::task::Poll::Ready(output);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
