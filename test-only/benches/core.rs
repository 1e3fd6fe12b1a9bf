//! Criterion benchmarks of the core, without network: four replicas passing
//! messages in memory (with real signature verification, with it skipped,
//! and with no signature work at all), signing and verifying, and the codec
//! for each message kind.
//!
//! Run: `cargo bench-core` (an alias for the `test-only` workspace; results in
//! `target/criterion/`; BENCHMARKS.md quotes them).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pbft_core::{
    batch_digest, codec, AppError, Checkpoint, ClientId, Commit, Digest, KeyBook, Message, Output,
    PrePrepare, Prepare, ProtocolConfig, Replica, ReplicaId, ReplicatedStateMachine, Request, RequestKind,
    SecretKey, Signed, Time, Verified,
};
use std::collections::VecDeque;
use std::hint::black_box;

/// Counts operations; the cheapest application, so the protocol dominates.
#[derive(Default)]
struct Count(u64);

impl ReplicatedStateMachine for Count {
    fn execute(&mut self, _op: &[u8]) -> Vec<u8> {
        self.0 += 1;
        Vec::new()
    }
    fn query(&self, _op: &[u8]) -> Vec<u8> {
        Vec::new()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), AppError> {
        Ok(())
    }
}

const N: usize = 4;
const BATCH: usize = 100;
const BATCHES: usize = 10;
const CLIENTS: u64 = 10;

struct Setup {
    replicas: Vec<Replica<Count>>,
    book: KeyBook,
    requests: Vec<Signed<Request>>,
}

fn config() -> ProtocolConfig {
    ProtocolConfig {
        max_batch_size: BATCH,
        // With requests arriving faster than batches execute, the primary
        // fills batches; the last partial one goes when `run` advances the
        // clock past this delay.
        batch_delay_ms: 1,
        checkpoint_interval: 8,
        watermark_window: 64,
        max_pending_per_client: BATCH * BATCHES,
        status_interval_ms: 1_000_000,
        ..ProtocolConfig::default()
    }
}

/// Replica `i`'s key seed.
fn seed(i: usize) -> [u8; 32] {
    [i as u8 + 1; 32]
}

/// The key book and 1,000 requests from 10 clients, signed once for every
/// iteration (signing them is not what the benchmark measures).
fn signed_requests() -> (Vec<SecretKey>, KeyBook, Vec<Signed<Request>>) {
    let secrets: Vec<SecretKey> = (0..N).map(|i| SecretKey::from_seed(seed(i))).collect();
    let clients: Vec<SecretKey> = (0..CLIENTS).map(|c| SecretKey::from_seed([100 + c as u8; 32])).collect();
    let publics: Vec<_> = secrets.iter().map(SecretKey::public).collect();
    let client_keys: Vec<_> =
        clients.iter().enumerate().map(|(c, k)| (ClientId(c as u64), k.public())).collect();
    let book = KeyBook::new(&publics, client_keys).expect("a key book");
    let per_client = (BATCH * BATCHES) as u64 / CLIENTS;
    let requests = (1..=per_client)
        .flat_map(|t| {
            clients.iter().enumerate().map(move |(c, key)| {
                let request = Request {
                    client: ClientId(c as u64),
                    timestamp: t,
                    op: vec![0; 32],
                    kind: RequestKind::Write,
                };
                Signed::sign(request, key)
            })
        })
        .collect();
    (secrets, book, requests)
}

/// Fresh replicas and a copy of the requests for one iteration.
fn setup(secrets: &[SecretKey], book: &KeyBook, requests: &[Signed<Request>]) -> Setup {
    let replicas = (0..N)
        .map(|i| {
            Replica::new(ReplicaId(i as u32), config(), book.clone(), secrets[i].clone(), Count::default())
                .expect("a replica")
        })
        .collect();
    // As the primary would decode them: no digest computed yet.
    let requests = requests.iter().map(received).collect();
    Setup { replicas, book: book.clone(), requests }
}

/// Hands every request to the primary, then delivers messages until every
/// replica has executed them all, moving the clock on by a millisecond when
/// nothing is left to deliver (so the last partial batch goes). `verify`
/// picks real verification or none. The first request finds the pipeline
/// idle and goes alone; the rest go in batches of 100.
fn run(setup: Setup, verify: bool) -> Vec<Replica<Count>> {
    let Setup { mut replicas, book, requests } = setup;
    let now = Time(1);
    let mut mail: VecDeque<(usize, Message)> = VecDeque::new();
    // With verification the primary checks the requests in bursts of a
    // batch, as the network driver hands them over when they queue up.
    for burst in requests.chunks(BATCH) {
        let burst = if verify {
            book.verify_requests(burst.to_vec()).expect("valid requests")
        } else {
            burst.iter().cloned().map(Verified::assume_verified).collect()
        };
        for request in burst {
            replicas[0].handle_request(now, request);
            collect(&mut replicas, 0, &mut mail);
        }
    }
    let mut now = now;
    loop {
        while let Some((to, message)) = mail.pop_front() {
            if verify {
                replicas[to].receive(now, message);
            } else {
                replicas[to].handle_message(now, Verified::assume_verified(message));
            }
            collect(&mut replicas, to, &mut mail);
        }
        if replicas.iter().all(|r| r.app().0 == (BATCH * BATCHES) as u64) {
            break;
        }
        // Quiet with requests left: the batch delay passes.
        now = Time(now.0 + 1);
        replicas[0].handle_timeout(now);
        collect(&mut replicas, 0, &mut mail);
        assert!(!mail.is_empty() || now.0 < 10, "stuck with nothing to deliver at {now:?}");
    }
    let executed: Vec<u64> = replicas.iter().map(|r| r.app().0).collect();
    assert!(
        executed.iter().all(|e| *e == (BATCH * BATCHES) as u64),
        "every replica executed all: {executed:?}"
    );
    // Returned, so that criterion drops them outside the measured time.
    replicas
}

/// Moves `from`'s outputs into the mail. Each message is encoded once and
/// decoded by each receiver, as over a network, so that no receiver shares
/// work its sender already did (such as a request's cached digest).
fn collect(replicas: &mut [Replica<Count>], from: usize, mail: &mut VecDeque<(usize, Message)>) {
    let decoded = |bytes: &[u8]| codec::decode::<Message>(bytes).expect("a message this core encoded");
    while let Some(output) = replicas[from].poll_output() {
        match output {
            Output::Send { to, message } => mail.push_back((to.index(), decoded(&codec::encode(&message)))),
            Output::Broadcast(message) => {
                let bytes = codec::encode(&message);
                for to in (0..N).filter(|to| *to != from) {
                    mail.push_back((to, decoded(&bytes)));
                }
            }
            Output::Reply(_) | Output::Event(_) | Output::Persist(_) => {}
        }
    }
}

fn core_in_memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("core, 4 replicas in memory, batches of 100");
    group.throughput(Throughput::Elements((BATCH * BATCHES) as u64));
    group.sample_size(10);
    let (secrets, book, requests) = signed_requests();
    let fresh = || setup(&secrets, &book, &requests);
    group.bench_function("signatures verified", |b| {
        b.iter_batched(fresh, |s| run(s, true), BatchSize::LargeInput)
    });
    group.bench_function("verification skipped", |b| {
        b.iter_batched(fresh, |s| run(s, false), BatchSize::LargeInput)
    });
    // No signature work at all: verification skipped and replicas whose
    // keys sign nothing (the requests were signed once, before).
    let blank: Vec<SecretKey> = (0..N).map(|i| SecretKey::signing_nothing(seed(i))).collect();
    let unsigned = || setup(&blank, &book, &requests);
    group.bench_function("no signatures", |b| {
        b.iter_batched(unsigned, |s| run(s, false), BatchSize::LargeInput)
    });
    group.finish();
}

/// A copy of `signed` as a replica decodes it: no digest computed yet.
fn received(signed: &Signed<Request>) -> Signed<Request> {
    Signed::from_parts(signed.payload().clone(), signed.signature().to_vec())
}

fn signatures(c: &mut Criterion) {
    let key = SecretKey::from_seed([9; 32]);
    let book = KeyBook::new(&[key.public()], vec![(ClientId(0), key.public())]).expect("a key book");
    let request = Request { client: ClientId(0), timestamp: 1, op: vec![0; 32], kind: RequestKind::Write };
    // Each check gets its own copy as decoded from the network, with no
    // digest computed yet (clones share their original's cached digest).
    let signed = Signed::sign(request.clone(), &key);
    let mut group = c.benchmark_group("ed25519 on a 32-byte request");
    group.bench_function("sign", |b| b.iter(|| Signed::sign(black_box(request.clone()), &key)));
    group.bench_function("digest", |b| {
        b.iter_batched(|| received(&signed), |r| black_box(r.digest()), BatchSize::SmallInput)
    });
    group.bench_function("verify", |b| {
        b.iter_batched(
            || received(&signed),
            |r| book.verify_request(r).expect("valid"),
            BatchSize::SmallInput,
        )
    });
    // 64 request signatures of 64 clients checked at once, as a backup checks
    // a PRE-PREPARE's batch (signatures by one key would share a term).
    let clients: Vec<SecretKey> = (0..64).map(|c| SecretKey::from_seed([c as u8 + 10; 32])).collect();
    let book = KeyBook::new(
        &[key.public()],
        clients.iter().enumerate().map(|(c, k)| (ClientId(c as u64), k.public())).collect::<Vec<_>>(),
    )
    .expect("a key book");
    let batch: Vec<Signed<Request>> = clients
        .iter()
        .enumerate()
        .map(|(c, k)| Signed::sign(Request { client: ClientId(c as u64), ..request.clone() }, k))
        .collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("batch verify 64", |b| {
        b.iter_batched(
            || batch.iter().map(received).collect::<Vec<_>>(),
            |batch| book.verify_requests(batch).expect("valid"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn messages() -> Vec<(&'static str, Message)> {
    let key = SecretKey::from_seed([1; 32]);
    let request = |t| {
        Signed::sign(
            Request { client: ClientId(0), timestamp: t, op: vec![0; 32], kind: RequestKind::Write },
            &key,
        )
    };
    let batch: Vec<_> = (0..BATCH as u64).map(request).collect();
    let digest = batch_digest(&batch);
    let replica = ReplicaId(0);
    vec![
        ("request", Message::Request(request(1))),
        (
            "pre-prepare (100 requests)",
            Message::PrePrepare(Signed::sign(
                PrePrepare { view: 0, seq: 1, digest, primary: replica, batch },
                &key,
            )),
        ),
        ("prepare", Message::Prepare(Signed::sign(Prepare { view: 0, seq: 1, digest, replica }, &key))),
        ("commit", Message::Commit(Signed::sign(Commit { view: 0, seq: 1, digest, replica }, &key))),
        (
            "checkpoint",
            Message::Checkpoint(Signed::sign(
                Checkpoint { seq: 64, state_digest: Digest::of_parts(&[]), replica },
                &key,
            )),
        ),
    ]
}

fn codec_per_kind(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (name, message) in messages() {
        let bytes = codec::encode(&message);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("encode {name}"), |b| b.iter(|| codec::encode(black_box(&message))));
        group.bench_function(format!("decode {name}"), |b| {
            b.iter(|| codec::decode::<Message>(black_box(&bytes)).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, core_in_memory, signatures, codec_per_kind);
criterion_main!(benches);
