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

use pbft_app::apps::Counter;
use pbft_core::{
    batch_digest, ClientId, KeyBook, Message, PrePrepare, ProtocolConfig, Replica, ReplicaId, Request,
    RequestKind, SecretKey, Signed, Time,
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
        Replica::new(ReplicaId(id), config, self.book.clone(), self.replicas[id as usize].clone(), Counter(0))
            .expect("a valid replica")
    }

    /// A write of `bytes` bytes, distinct for each timestamp.
    fn request(&self, timestamp: u64, bytes: usize) -> Signed<Request> {
        let mut op = vec![0; bytes];
        op[..8].copy_from_slice(&timestamp.to_le_bytes());
        Signed::sign(Request { client: CLIENT, timestamp, op, kind: RequestKind::Write }, &self.client)
    }
}

fn drain(replica: &mut Replica<Counter>) {
    while replica.poll_output().is_some() {}
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

/// Heap bytes the replica keeps of `flood` (each input made, fed and
/// dropped in turn, so the test's own copies are gone when measured).
fn retained(replica: &mut Replica<Counter>, flood: impl Iterator<Item = Message>) -> usize {
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
}
