//! Issue 21, point 4: what one hostile replica or one hostile client makes a
//! replica hold stays within the byte budget docs/memory.md states, measured
//! on the heap by a counting global allocator (this binary runs one test, so
//! nothing else allocates meanwhile).
//!
//! - One replica floods full-sized PRE-PREPAREs for views not yet entered:
//!   the replica holds at most `future_bytes_per_replica` of them.
//! - One client floods requests of `max_request_bytes` with ever newer
//!   timestamps at a backup: the backup holds at most
//!   `max_pending_per_client` of them.
//! - One client's requests make the application return results far over
//!   `max_result_bytes`: the reply cache, and the checkpoint states that
//!   copy it, hold only their sizes.

use pbft_app::apps::Counter;
use pbft_core::{
    batch_digest, AppError, ClientId, Commit, Committed, KeyBook, Message, PrePrepare, ProtocolConfig,
    Replica, ReplicaId, ReplicatedStateMachine, Request, RequestKind, SecretKey, Signed, Time,
};
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const MIB: usize = 1024 * 1024;
const CLIENT: ClientId = ClientId(9);

struct Cluster {
    replicas: Vec<SecretKey>,
    client: SecretKey,
    book: KeyBook,
}

impl Cluster {
    fn new() -> Cluster {
        let replicas: Vec<SecretKey> = (0..4).map(|i| SecretKey::from_seed([i + 1; 32])).collect();
        let client = SecretKey::from_seed([99; 32]);
        let publics: Vec<_> = replicas.iter().map(SecretKey::public).collect();
        let book = KeyBook::new(&publics, [(CLIENT, client.public())]).expect("valid keys");
        Cluster { replicas, client, book }
    }

    fn replica(&self, id: u32, config: ProtocolConfig) -> Replica<Counter> {
        self.replica_of(id, config, Counter(0))
    }

    fn replica_of<A: ReplicatedStateMachine>(&self, id: u32, config: ProtocolConfig, app: A) -> Replica<A> {
        Replica::new(ReplicaId(id), config, self.book.clone(), self.replicas[id as usize].clone(), app)
            .expect("a valid replica")
    }

    /// Replica 3's proof that `request` alone committed at `seq` of view 0:
    /// primary 0's PRE-PREPARE and the COMMITs of replicas 0, 1 and 3.
    fn committed(&self, seq: u64, request: Signed<Request>) -> Message {
        let batch = vec![request];
        let digest = batch_digest(&batch);
        let body = PrePrepare { view: 0, seq, digest, primary: ReplicaId(0), batch };
        let pre_prepare = Signed::sign(body, &self.replicas[0]);
        let commits = [0, 1, 3]
            .map(|r| {
                Signed::sign(
                    Commit { view: 0, seq, digest, replica: ReplicaId(r) },
                    &self.replicas[r as usize],
                )
            })
            .to_vec();
        let proof = Committed { pre_prepare, commits, replica: ReplicaId(3) };
        Message::Committed(Signed::sign(proof, &self.replicas[3]))
    }

    /// A write of `bytes` bytes, distinct for each timestamp.
    fn request(&self, timestamp: u64, bytes: usize) -> Signed<Request> {
        let mut op = vec![0; bytes];
        op[..8].copy_from_slice(&timestamp.to_le_bytes());
        Signed::sign(Request { client: CLIENT, timestamp, op, kind: RequestKind::Write }, &self.client)
    }
}

fn drain<A: ReplicatedStateMachine>(replica: &mut Replica<A>) {
    while replica.poll_output().is_some() {}
}

/// An application whose every result is 1 MiB, whatever it is asked.
struct HugeResults(u64);

impl ReplicatedStateMachine for HugeResults {
    fn execute(&mut self, _op: &[u8]) -> Vec<u8> {
        self.0 += 1;
        vec![7; MIB]
    }
    fn query(&self, _op: &[u8]) -> Vec<u8> {
        vec![7; MIB]
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), AppError> {
        Err(AppError("not needed here".into()))
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

/// Heap bytes the replica keeps of `flood` (each input made, fed and
/// dropped in turn, so the test's own copies are gone when measured).
fn retained<A: ReplicatedStateMachine>(
    replica: &mut Replica<A>,
    flood: impl Iterator<Item = Message>,
) -> usize {
    drain(replica);
    let before = HEAP.current_usage();
    for message in flood {
        replica.receive(Time(1), message);
        drain(replica);
    }
    HEAP.current_usage().saturating_sub(before)
}

#[test]
fn one_hostile_replica_or_client_pins_no_more_than_its_byte_budget() {
    let cluster = Cluster::new();
    let config = ProtocolConfig { max_request_bytes: MIB, ..ProtocolConfig::default() };

    // Replica 1 is the primary of views 1, 5, 9, …: 32 PRE-PREPAREs of one
    // full 4 MiB batch each, 128 MiB in all, for views replica 0 is not in.
    let mut replica = cluster.replica(0, config.clone());
    let budget = config.future_bytes_per_replica(4);
    let mut timestamp = 0;
    let flood = (0..32u64).map(|i| {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                timestamp += 1;
                cluster.request(timestamp, MIB - 256)
            })
            .collect();
        let body = PrePrepare {
            view: 1 + 4 * i,
            seq: 1 + i % 8,
            digest: batch_digest(&batch),
            primary: ReplicaId(1),
            batch,
        };
        Message::PrePrepare(Signed::sign(body, &cluster.replicas[1]))
    });
    let held = retained(&mut replica, flood);
    println!("future-view flood: 128 MiB sent, {:.1} MiB held, budget {:.1} MiB", mib(held), mib(budget));
    assert!(held <= budget + MIB, "held {held} bytes of far-view pre-prepares, budget {budget}");
    assert!(replica.buffer_usage().future_bytes <= budget);

    // One client, 64 requests of 1 MiB with ever newer timestamps, sent to
    // backup 2 only: it relays each to the primary and holds it pending.
    let mut backup = cluster.replica(2, config.clone());
    let flood = (1..=64u64).map(|t| Message::Request(cluster.request(t, MIB - 256)));
    let held = retained(&mut backup, flood);
    let budget = config.max_pending_per_client * config.max_request_bytes;
    println!("client flood: 64 MiB sent, {:.1} MiB held, budget {:.1} MiB", mib(held), mib(budget));
    assert!(held <= budget + MIB, "held {held} bytes of one client's requests, budget {budget}");

    // 200 of one client's requests execute at backup 2 from proofs of
    // commitment, each giving a 1 MiB result, over a max_result_bytes of
    // 64 KiB: 200 MiB of results. The reply cache keeps the last 16 of the
    // client's replies, and each of the 3 checkpoints taken (at 64, 128 and
    // 192; none becomes stable here) copies it: with results kept whole,
    // 16 + 3 × 16 = 64 MiB stay on the heap (64.4 MiB measured).
    let config = ProtocolConfig { max_result_bytes: 64 * 1024, ..config };
    let mut backup = cluster.replica_of(2, config.clone(), HugeResults(0));
    let flood = (1..=200u64).map(|t| cluster.committed(t, cluster.request(t, 16)));
    let held = retained(&mut backup, flood);
    assert_eq!(backup.last_executed(), 200, "every batch executed");
    let checkpoints = 200 / config.checkpoint_interval as usize;
    let budget = config.max_pending_per_client * config.max_result_bytes * (1 + checkpoints);
    println!("huge results: 200 MiB returned, {:.1} MiB held, budget {:.1} MiB", mib(held), mib(budget));
    assert!(held <= budget + MIB, "held {held} bytes after one client's huge results, budget {budget}");
}
