//! Recording a history: a shared list of operations and a client wrapper
//! that writes to it.

use super::{Call, Operation, Outcome};
use crate::apps::{KvOp, KvQuery, KvResult, KvStore};
use crate::client::{Client, ClientError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The operations of every client of one test run, timed from one start.
///
/// Clones share the same list, so each [`RecordingClient`] holds one and
/// the test reads them all with [`History::operations`]. All times are
/// from the one [`Instant`] taken by [`History::new`], so operations of
/// different clients compare.
#[derive(Clone, Debug)]
pub struct History {
    start: Instant,
    operations: Arc<Mutex<Vec<Operation>>>,
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> History {
        History { start: Instant::now(), operations: Arc::default() }
    }

    /// The time since the history's start: what an operation's times count.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A copy of the operations recorded so far, in the order they were
    /// invoked; a call still in flight shows as [`Outcome::Unknown`].
    pub fn operations(&self) -> Vec<Operation> {
        self.lock().clone()
    }

    /// Records that `client` is about to send `call`, as unknown until
    /// [`History::complete`] says otherwise; returns its index. Stamped
    /// before the send, so the recorded invocation is never late.
    fn invoke(&self, client: u64, call: Call) -> usize {
        let invoked = self.elapsed();
        let mut operations = self.lock();
        operations.push(Operation { client, call, invoked, completed: None, outcome: Outcome::Unknown });
        operations.len() - 1
    }

    /// Records the answer to operation `index`, stamped now (after the
    /// answer arrived, so the recorded completion is never early).
    fn complete(&self, index: usize, result: KvResult) {
        let completed = self.elapsed();
        if let Some(operation) = self.lock().get_mut(index) {
            operation.completed = Some(completed);
            operation.outcome = Outcome::Ok(result);
        }
    }

    /// The list, even if a recording thread panicked while holding it: each
    /// update leaves the list whole, so what it holds is still a history.
    fn lock(&self) -> MutexGuard<'_, Vec<Operation>> {
        self.operations.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A key-value [`Client`] that records each of its calls in a [`History`].
///
/// A call is recorded when it is invoked, as [`Outcome::Unknown`], and
/// completed when its answer arrives. A call that returns an error, or
/// whose future is dropped before the answer (a test's own timeout), stays
/// unknown: the request may have reached the replicas and executed, so the
/// checker must allow both.
pub struct RecordingClient {
    client: Client<KvStore>,
    id: u64,
    history: History,
}

impl RecordingClient {
    /// Wraps `client`, recording its calls as client `id` of `history`.
    pub fn new(client: Client<KvStore>, id: u64, history: History) -> RecordingClient {
        RecordingClient { client, id, history }
    }

    /// The history this client records into.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// [`Client::invoke`], recorded.
    pub async fn invoke(&self, op: KvOp) -> Result<KvResult, ClientError> {
        let index = self.history.invoke(self.id, Call::Op(op.clone()));
        let result = self.client.invoke(&op).await?;
        self.history.complete(index, result.clone());
        Ok(result)
    }

    /// [`Client::query`], recorded.
    pub async fn query(&self, query: KvQuery) -> Result<KvResult, ClientError> {
        let index = self.history.invoke(self.id, Call::Query(query.clone()));
        let result = self.client.query(&query).await?;
        self.history.complete(index, result.clone());
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is a failed test

    use super::*;
    use crate::cluster_config::ClusterConfig;
    use crate::history::{check, Verdict};
    use pbft_core::{ClientId, ReplicaId};
    use std::path::PathBuf;

    /// A fresh folder with a four-replica, two-client config on free ports
    /// and development keys.
    fn local_cluster(name: &str) -> (PathBuf, ClusterConfig) {
        let dir = std::env::temp_dir().join(format!("pbft-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut toml = String::from("[cluster]\nkeys_dir = \"keys\"\ndev_keys = true\napp = \"kv\"\n\n");
        for id in 0..4 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            toml += &format!("[[replica]]\nid = {id}\naddress = \"127.0.0.1:{port}\"\n\n");
        }
        toml += "[[client]]\nid = 0\n\n[[client]]\nid = 1\n";
        std::fs::write(dir.join("cluster.toml"), toml).unwrap();
        let config = ClusterConfig::load(&dir.join("cluster.toml")).unwrap();
        (dir, config)
    }

    fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put { key: key.into(), value: value.into() }
    }

    /// Against a real four-replica cluster, two recording clients' calls
    /// land in one history, each with its result and its times in order,
    /// and the history checks as linearizable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recording_clients_record_a_linearizable_history_of_a_real_cluster() {
        let (dir, config) = local_cluster("real");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let replicas: Vec<_> = (0..4)
            .map(|id| {
                let (config, mut stopped) = (config.clone(), stopped.clone());
                tokio::spawn(async move {
                    let shutdown = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    crate::node::run_replica_with::<KvStore>(&config, ReplicaId(id), shutdown).await
                })
            })
            .collect();
        let history = History::new();
        let client =
            |id| RecordingClient::new(Client::connect(&config, ClientId(id)).unwrap(), id, history.clone());
        let (first, second) = (client(0), client(1));
        assert_eq!(first.invoke(put("a", "1")).await.unwrap(), KvResult::Previous(None));
        let (a, b) = tokio::join!(first.invoke(put("a", "2")), second.invoke(put("a", "3")));
        let read = second.query(KvQuery::Get { key: "a".into() }).await.unwrap();
        stop.send(true).unwrap();
        for replica in replicas {
            replica.await.unwrap().unwrap();
        }

        let operations = history.operations();
        assert_eq!(operations.len(), 4);
        assert_eq!(operations.iter().map(|op| op.client).collect::<Vec<_>>(), [0, 0, 1, 1]);
        let results = [a.unwrap(), b.unwrap(), read];
        for (operation, result) in operations[1..].iter().zip(results) {
            assert_eq!(operation.outcome, Outcome::Ok(result));
        }
        for operation in &operations {
            let completed = operation.completed.unwrap();
            assert!(operation.invoked <= completed && completed <= history.elapsed(), "{operation}");
        }
        let verdict = check(&operations, Duration::from_secs(1));
        assert_eq!(verdict, Verdict::Linearizable, "{}", serde_json::to_string_pretty(&operations).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A write whose client gets no answer (no replica runs) is recorded as
    /// unknown, with no completion time: it may yet execute.
    #[tokio::test]
    async fn a_call_that_fails_is_recorded_as_unknown() {
        let (dir, config) = local_cluster("down");
        let history = History::new();
        let client = Client::connect(&config, ClientId(0)).unwrap().with_timeout(Duration::from_millis(50));
        let client = RecordingClient::new(client, 7, history.clone());
        assert!(client.invoke(put("a", "1")).await.is_err());
        assert!(client.query(KvQuery::Get { key: "a".into() }).await.is_err());
        let operations = history.operations();
        let expected = |call| Operation {
            client: 7,
            call,
            invoked: Duration::ZERO,
            completed: None,
            outcome: Outcome::Unknown,
        };
        let without_times: Vec<_> =
            operations.iter().map(|op| Operation { invoked: Duration::ZERO, ..op.clone() }).collect();
        assert_eq!(
            without_times,
            [expected(Call::Op(put("a", "1"))), expected(Call::Query(KvQuery::Get { key: "a".into() }))]
        );
        assert!(operations[0].invoked <= operations[1].invoked);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
