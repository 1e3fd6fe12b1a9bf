//! What a replica's observers (request traces and metrics, `pbft_net::Observers`)
//! cost per request, measured alone: one batch's life on the primary, the
//! replica that does the most for them (every request arrives from its
//! client, is pre-prepared, prepared, committed, executed and answered).
//!
//! The events are built the same way in every configuration, so the
//! difference from `none` is what the observers add. Compare it with the
//! CPU a replica spends per operation in `pbft bench` (BENCHMARKS.md,
//! "Observability"): at saturation the machine is CPU-bound, so that
//! fraction bounds the throughput they cost.
//!
//! Run: `cargo bench --manifest-path test-only/Cargo.toml --target-dir target --bench observers`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pbft_core::{
    ClientId, Digest, Event, ExecutedRequest, Message, ReplicaId, Reply, Request, RequestKind, SecretKey,
    Signed,
};
use pbft_net::{Inbound, Observers, Peer, ReplicaMetrics, Wire};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per batch: what 256 closed-loop clients on configs/local-4.toml
/// made (33-39 per sequence number in BENCHMARKS.md's runs).
const BATCH: usize = 36;
/// Distinct requests cycled through: four times the traces' ring, so every
/// batch inserts new keys and evicts old ones, as a replica does.
const POOL: usize = 4 * pbft_net::MAX_TRACED_REQUESTS;
const CLIENTS: u64 = 256;

/// A request as it arrives from its client, and the reply it gets.
struct Arrival {
    inbound: Inbound,
    reply: Reply,
}

fn pool() -> Vec<Arrival> {
    let secret = SecretKey::from_seed([9; 32]);
    (0..POOL as u64)
        .map(|i| {
            let client = ClientId(i % CLIENTS);
            let timestamp = 1 + i / CLIENTS;
            let request = Signed::sign(
                Request { client, timestamp, op: vec![0; 32], kind: RequestKind::Write },
                &secret,
            );
            let reply = Reply {
                view: 0,
                timestamp,
                client,
                replica: ReplicaId(0),
                request: request.digest(),
                result: vec![0; 8],
                withheld: None,
                unordered: false,
            };
            let inbound = Inbound::new(Peer::Client(client), Wire::Message(Message::Request(request)), None);
            Arrival { inbound, reply }
        })
        .collect()
}

/// One batch at `seq` through `observers`: its requests arrive, its
/// phases pass, its replies leave.
fn batch(observers: &mut Observers, arrivals: &[Arrival], seq: u64) {
    let keys = |a: &Arrival| (a.reply.client, a.reply.timestamp);
    for arrival in arrivals {
        observers.on_inbound(&arrival.inbound);
    }
    let requests = arrivals.iter().map(keys).collect();
    observers.on_event(&Event::PrePrepared { view: 0, seq, requests });
    observers.on_event(&Event::Prepared { view: 0, seq });
    observers.on_event(&Event::CommittedLocal { view: 0, seq });
    let executed = arrivals
        .iter()
        .map(|a| ExecutedRequest {
            client: a.reply.client,
            timestamp: a.reply.timestamp,
            digest: a.reply.request,
        })
        .collect();
    observers.on_event(&Event::Executed {
        view: 0,
        seq,
        digest: Digest::of(&seq.to_le_bytes()),
        requests: executed,
    });
    for arrival in arrivals {
        observers.on_reply(&arrival.reply);
    }
}

fn observers(c: &mut Criterion) {
    let arrivals = pool();
    let mut group = c.benchmark_group("observers per batch of 36");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, metrics, traces) in
        [("none", false, false), ("traces", false, true), ("metrics", true, false), ("both", true, true)]
    {
        let metrics = metrics.then(|| Arc::new(ReplicaMetrics::new(4)));
        let mut observers = Observers::new(0, 4, metrics, traces);
        let mut seq = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    seq += 1;
                    let first = (seq as usize * BATCH) % (POOL - BATCH);
                    batch(&mut observers, &arrivals[first..first + BATCH], seq);
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = observers
}
criterion_main!(benches);
