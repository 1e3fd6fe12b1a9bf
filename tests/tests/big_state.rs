//! Issue 5 test 5: a 64 MiB application state moves to a replica that fell
//! behind in 1 MiB chunks, and the transfer costs the heap no more than a few
//! chunks beyond what the replica holds once it has caught up (its
//! application state and the checkpoint copy it serves to others), both at
//! its peak and in what it keeps afterwards.
//!
//! The heap is measured by a counting global allocator, so this test lives in
//! a binary of its own and runs alone in it.

use fault_injector::{NodeId, SimCluster, SimConfig};
use pbft_core::{AppError, ClientId, Event, ProtocolConfig, ReplicaId, ReplicatedStateMachine, Time};
use peak_alloc::PeakAlloc;
use std::cell::Cell;
use std::rc::Rc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const MIB: usize = 1024 * 1024;
const CHUNK: usize = MIB;
/// Each operation appends this much state.
const GROWTH: usize = 4 * MIB;
const OPERATIONS: u64 = 16;
const K: u64 = 4;

/// An application whose state is a byte string that every operation extends
/// with `GROWTH` bytes of deterministic noise (incompressible, so nothing
/// along the way can shrink it).
#[derive(Debug, Default)]
struct BigState {
    data: Vec<u8>,
}

impl ReplicatedStateMachine for BigState {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        let mut x = u64::from(op.first().copied().unwrap_or(0)) + 0x9E37_79B9_7F4A_7C15;
        self.data.reserve_exact(GROWTH);
        for _ in 0..GROWTH / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.data.extend_from_slice(&x.to_le_bytes());
        }
        (self.data.len() as u64).to_le_bytes().to_vec()
    }

    fn query(&self, _op: &[u8]) -> Vec<u8> {
        (self.data.len() as u64).to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.data.clone()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        self.data = snapshot.to_vec();
        Ok(())
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

#[test]
fn a_64_mib_state_transfers_with_heap_overhead_of_a_few_chunks() {
    let protocol = ProtocolConfig {
        max_batch_size: 1,
        batch_delay_ms: 0,
        checkpoint_interval: K,
        watermark_window: 2 * K,
        view_change_timeout_ms: 400,
        status_interval_ms: 100,
        state_chunk_bytes: CHUNK,
        max_state_bytes: 80 * MIB as u64,
        ..ProtocolConfig::default()
    };
    let mut cluster =
        SimCluster::new(SimConfig { protocol, ..SimConfig::new(4, 1) }, |_| BigState::default());
    let laggard = ReplicaId(3);
    let cut = Rc::new(Cell::new(true));
    let cut_handle = cut.clone();
    cluster.set_filter(move |e| {
        let off = |node: NodeId| cut.get() && node == NodeId::Replica(laggard);
        !off(e.from) && !off(e.to)
    });

    for i in 0..OPERATIONS {
        cluster.submit(ClientId(0), vec![i as u8]);
    }
    assert!(cluster.run_until_complete(Time(60_000)), "replicas 0-2 complete the 16 operations alone");
    let deadline = cluster.now() + 10_000;
    cluster.run_until(deadline, |c| {
        (0..3).all(|id| c.replica(ReplicaId(id)).stable_checkpoint().seq == OPERATIONS)
    });
    let grown = OPERATIONS * GROWTH as u64;
    for id in 0..3 {
        let replica = cluster.replica(ReplicaId(id));
        assert_eq!(replica.stable_checkpoint().seq, OPERATIONS, "replica {id} has a stable checkpoint at 16");
        assert_eq!(replica.app().data.len() as u64, grown);
    }
    assert_eq!(cluster.replica(laggard).last_executed(), 0);
    assert!(cluster.replica(laggard).app().data.is_empty());

    // Traffic has stopped; only the transfer moves memory from here on.
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    cut_handle.set(false);
    let deadline = cluster.now() + 30_000;
    let almost = grown as usize - CHUNK;
    assert!(
        cluster.run_until(deadline, |c| c.replica(laggard).buffer_usage().transfer_bytes >= almost),
        "replica 3 fetches the state"
    );
    // While chunks arrive the replica holds the buffer for the whole state
    // (reserved once) and whatever is in flight.
    let chunk_phase = HEAP.peak_usage() - before - grown as usize;
    assert!(
        cluster.run_until(deadline, |c| c.replica(laggard).last_executed() == OPERATIONS),
        "replica 3 catches up to sequence number 16"
    );
    let after = HEAP.current_usage();
    let peak = HEAP.peak_usage();

    let transfers = cluster
        .events()
        .iter()
        .filter(|(_, r, e)| *r == laggard && matches!(e, Event::StateTransferred { .. }))
        .count();
    assert_eq!(transfers, 1, "it caught up by one state transfer, not by re-execution");
    assert!(cluster.replica(laggard).app().data == cluster.replica(ReplicaId(0)).app().data);

    let held = after.saturating_sub(before);
    let overhead = peak - after;
    println!(
        "64 MiB state transfer in {} KiB chunks: heap grew by {} bytes = {:.3} MiB (the application state and the \
         checkpoint copy served to others are 2 × {:.0} MiB); the peak was {} bytes above the end; while chunks \
         arrived the heap held at most {} bytes = {:.2} chunks beyond the receive buffer",
        CHUNK / 1024,
        held,
        mib(held),
        mib(grown as usize),
        overhead,
        chunk_phase,
        chunk_phase as f64 / CHUNK as f64,
    );
    assert!(held >= 2 * grown as usize, "replica 3 holds the state and its checkpoint copy");
    assert!(
        held <= 2 * grown as usize + CHUNK,
        "replica 3 keeps {:.1} MiB after the transfer; the state and its copy are {:.0} MiB",
        mib(held),
        mib(2 * grown as usize)
    );
    assert!(
        chunk_phase <= 2 * CHUNK,
        "chunks in flight held {:.1} MiB beyond the receive buffer; bound 2 chunks",
        mib(chunk_phase)
    );
    assert!(
        overhead <= 2 * CHUNK,
        "the transfer needed {:.1} MiB beyond what the caught-up replica holds; bound 2 chunks",
        mib(overhead)
    );
}
