//! Shared pieces of the cross-crate test suites: a recording application and
//! the checks every scenario ends with.

use fault_injector::sim::Workload;
use fault_injector::{Rng, SimCluster, SimConfig};
use pbft_core::{AppError, ClientId, Digest, ProtocolConfig, ReplicatedStateMachine};
use std::collections::BTreeSet;

/// A deterministic application that remembers every operation it executed, in
/// order, so tests can check order and exactly-once directly.
///
/// The snapshot holds the count and a hash chain of all operations; the
/// history itself is instrumentation and is not part of the replicated state.
#[derive(Clone, Debug, Default)]
pub struct RecordingApp {
    count: u64,
    chain: Digest,
    history: Vec<Vec<u8>>,
}

impl RecordingApp {
    /// Every operation executed, in execution order.
    pub fn history(&self) -> &[Vec<u8>] {
        &self.history
    }
}

impl ReplicatedStateMachine for RecordingApp {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        self.count += 1;
        self.chain = Digest::of_parts(&[self.chain.as_bytes(), op]);
        self.history.push(op.to_vec());
        format!("{}:{}", self.count, String::from_utf8_lossy(op)).into_bytes()
    }

    /// Answers with how many operations executed and the chain's digest.
    fn query(&self, _op: &[u8]) -> Vec<u8> {
        self.snapshot()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut bytes = self.count.to_le_bytes().to_vec();
        bytes.extend_from_slice(self.chain.as_bytes());
        bytes
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        if snapshot.len() != 40 {
            return Err(AppError(format!("expected 40 bytes, found {}", snapshot.len())));
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&snapshot[..8]);
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&snapshot[8..]);
        self.count = u64::from_le_bytes(count);
        self.chain = Digest(chain);
        self.history.clear();
        Ok(())
    }
}

/// The operation number `i` of `client`.
pub fn op(client: u64, i: usize) -> Vec<u8> {
    format!("c{client}-op{i}").into_bytes()
}

/// A cluster of `n` recording replicas and `clients` clients.
pub fn recording_cluster(n: usize, clients: usize, protocol: ProtocolConfig) -> SimCluster<RecordingApp> {
    let mut config = SimConfig::new(n, clients);
    config.protocol = protocol;
    SimCluster::new(config, |_| RecordingApp::default())
}

/// Submits `per_client` operations for each client.
pub fn submit_all(cluster: &mut SimCluster<RecordingApp>, clients: usize, per_client: usize) {
    for c in 0..clients as u64 {
        for i in 0..per_client {
            cluster.submit(ClientId(c), op(c, i));
        }
    }
}

/// Asserts that the replicas `ids` executed the same batches at the same
/// sequence numbers and the same operations in the same order, and that no
/// operation executed twice at any of them.
pub fn assert_same_execution(cluster: &SimCluster<RecordingApp>, ids: &[u32]) {
    let first = pbft_core::ReplicaId(ids[0]);
    for id in ids {
        let id = pbft_core::ReplicaId(*id);
        assert_eq!(
            cluster.executed(id),
            cluster.executed(first),
            "{id} and {first} executed different batches"
        );
        assert_eq!(
            cluster.replica(id).app().history(),
            cluster.replica(first).app().history(),
            "{id} and {first} executed different operations"
        );
        let history = cluster.replica(id).app().history();
        let distinct: BTreeSet<&Vec<u8>> = history.iter().collect();
        assert_eq!(distinct.len(), history.len(), "{id} executed an operation twice");
        assert_eq!(cluster.replica(id).state_digest(), cluster.replica(first).state_digest());
    }
}

/// Asserts that every client accepted a result for each of its `per_client`
/// operations, in order, and that each result is the one the replicas'
/// common history implies.
pub fn assert_all_completed(
    cluster: &SimCluster<RecordingApp>,
    reference: pbft_core::ReplicaId,
    clients: usize,
    per_client: usize,
) {
    let history = cluster.replica(reference).app().history();
    for c in 0..clients as u64 {
        let done = cluster.completions(ClientId(c));
        assert_eq!(done.len(), per_client, "client {c} completed {} of {per_client}", done.len());
        for (i, completion) in done.iter().enumerate() {
            assert_eq!(completion.op, op(c, i));
            let position =
                history.iter().position(|h| *h == completion.op).expect("completed op was executed");
            let expected =
                format!("{}:{}", position + 1, String::from_utf8_lossy(&completion.op)).into_bytes();
            assert_eq!(
                completion.result, expected,
                "client {c} op {i} accepted a result no replica computed"
            );
        }
    }
}

impl Workload for RecordingApp {
    type App = RecordingApp;

    fn random_op(rng: &mut Rng, client: ClientId, index: usize) -> Vec<u8> {
        format!("c{}-op{index}-{}", client.0, rng.below(1_000)).into_bytes()
    }
}
