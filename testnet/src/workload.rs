//! Clients on the test network's client host that read and write a few keys
//! of the key-value store and record every call in one [`History`].

use crate::cluster::NetCluster;
use crate::thread::on_host;
use anyhow::{Context, Result};
use fault_injector::Rng;
use pbft_app::apps::{KvOp, KvQuery, KvResult};
use pbft_app::client::Client;
use pbft_app::history::{History, RecordingClient};
use pbft_core::ClientId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Mix {
    /// Concurrent clients (ids 0..clients of the config).
    pub clients: u64,
    /// Keys they share (`k0`, `k1`, …): few keys, many conflicts.
    pub keys: u64,
    /// The pause between one client's calls.
    pub think: Duration,
    /// How long a call may take before its client gives up (outcome unknown).
    pub timeout: Duration,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix { clients: 4, keys: 3, think: Duration::from_millis(10), timeout: Duration::from_secs(3) }
    }
}

/// Clients running on the client host until [`Workload::stop`].
pub struct Workload {
    history: History,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Result<()>>>>,
}

impl Workload {
    /// Starts `mix.clients` clients against `cluster`, recording into a new history.
    pub fn start(cluster: &NetCluster, mix: Mix, seed: u64) -> Result<Workload> {
        let history = History::new();
        let stop = Arc::new(AtomicBool::new(false));
        let config = cluster.config()?;
        let (recording, stopping) = (history.clone(), stop.clone());
        let thread = on_host(&cluster.net, cluster.client_host(), "workload", move || async move {
            let mut tasks = Vec::new();
            for id in 0..mix.clients {
                let client = Client::connect(&config, ClientId(id)).context("connecting a client")?;
                let client = RecordingClient::new(client.with_timeout(mix.timeout), id, recording.clone());
                let rng = Rng::stream(seed, &format!("client {id}"));
                tasks.push(tokio::spawn(run_client(client, id, mix.clone(), rng, stopping.clone())));
            }
            for task in tasks {
                task.await.context("a client task panicked")?;
            }
            Ok(())
        })?;
        Ok(Workload { history, stop, thread: Some(thread) })
    }

    /// The history being recorded (its clock also times the test's phases).
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Stops the clients (each after its call in flight) and returns the history.
    pub fn stop(mut self) -> Result<History> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| anyhow::anyhow!("the workload thread panicked"))???;
        }
        Ok(self.history.clone())
    }
}

impl Drop for Workload {
    /// A test that failed before [`Workload::stop`] still stops its clients,
    /// so they do not run on for the rest of the test binary.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One client's loop: puts of fresh values, compare-and-swaps from the value
/// it last saw, and reads, on random keys.
async fn run_client(client: RecordingClient, id: u64, mix: Mix, mut rng: Rng, stop: Arc<AtomicBool>) {
    let mut written = 0u64;
    let mut seen: Vec<Option<String>> = vec![None; mix.keys as usize];
    while !stop.load(Ordering::Relaxed) {
        let index = rng.below(mix.keys) as usize;
        let key = format!("k{index}");
        written += 1;
        let value = format!("c{id}-{written}");
        match rng.below(10) {
            0..=3 => {
                let _ = client.invoke(KvOp::Put { key, value }).await;
            }
            4..=5 => {
                let expected = seen[index].clone();
                if let Ok(KvResult::Swapped { current, .. }) =
                    client.invoke(KvOp::CompareAndSwap { key, expected, new: Some(value) }).await
                {
                    seen[index] = current;
                }
            }
            _ => {
                if let Ok(KvResult::Value(value)) = client.query(KvQuery::Get { key }).await {
                    seen[index] = value;
                }
            }
        }
        tokio::time::sleep(mix.think).await;
    }
}
