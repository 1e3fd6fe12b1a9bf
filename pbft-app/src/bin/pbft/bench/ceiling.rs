//! `pbft bench --ceiling`: what the signatures alone cost on this machine,
//! and the throughput they allow.

use super::BenchArgs;
use pbft_core::{ClientId, KeyBook, PublicKey, Request, RequestKind, SecretKey, Signed};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Instant;

/// What the signatures alone cost on this machine, and the throughput they allow.
#[derive(Debug, Serialize)]
struct Ceiling {
    sign_us: f64,
    verify_us: f64,
    /// Per signature, verifying a whole batch of request signatures at once.
    batch_verify_us: f64,
    replicas: usize,
    batch: usize,
    cores: usize,
    crypto_us_per_op: f64,
    ceiling_ops_per_sec: f64,
    measured_ops_per_sec: Option<f64>,
    measured_over_ceiling: Option<f64>,
}

/// The signature work per operation, as the replicas do it under load: one
/// client signature; the primary verifies the requests that arrive together
/// as one batch, every backup verifies the requests of a PRE-PREPARE as one
/// batch; and, per batch, the
/// primary's PRE-PREPARE signature, one PREPARE (backups) and one COMMIT
/// signature per replica, the backups' verification of the PRE-PREPARE, and
/// the votes each replica needs to complete its quorums (2f PREPAREs at the
/// primary, 2f − 1 from others at a backup, 2f COMMITs from others
/// everywhere; votes after that are dropped unverified).
fn crypto_us_per_op(n: f64, batch: f64, sign_us: f64, verify_us: f64, batch_verify_us: f64) -> f64 {
    let f = ((n - 1.0) / 3.0).floor();
    let per_batch_signs = 1.0 + (n - 1.0) + n;
    let per_batch_verifies = (n - 1.0) + 2.0 * f + (n - 1.0) * (2.0 * f - 1.0) + n * 2.0 * f;
    let per_batch_us = (per_batch_signs * sign_us + per_batch_verifies * verify_us) / batch;
    sign_us + n * batch_verify_us + per_batch_us
}

/// Per signature, what verifying `signed` in batches of `batch` costs with
/// the replicas' batch verification (`KeyBook::verify_requests`).
fn batch_verify_us(book: &KeyBook, signed: &[Signed<Request>], batch: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    for chunk in signed.chunks(batch) {
        book.verify_requests(chunk.to_vec())
            .map_err(|e| anyhow::anyhow!("a fresh batch failed to verify: {e}"))?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / signed.len().max(1) as f64)
}

/// Measures signing and verification here and prints the ceiling they set.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.replicas >= 1 && args.batch >= 1, "--replicas and --batch must be at least 1");
    // A batch holds requests of different clients, so each has its own key
    // (a batch of one key's signatures would verify unrealistically fast).
    let clients: Vec<SecretKey> = (0..args.batch.min(256))
        .map(|c| {
            let mut seed = [7; 32];
            seed[0] = c as u8;
            SecretKey::from_seed(seed)
        })
        .collect();
    let client_keys: Vec<(ClientId, PublicKey)> =
        clients.iter().enumerate().map(|(c, key)| (ClientId(c as u64), key.public())).collect();
    let book = KeyBook::new(&[clients[0].public()], client_keys)?;
    let rounds = 10_000u64;
    let request = |t: u64| {
        let client = (t % clients.len() as u64) as usize;
        let body = Request {
            client: ClientId(client as u64),
            timestamp: t,
            op: vec![0; 32],
            kind: RequestKind::Write,
        };
        (body, &clients[client])
    };
    let started = Instant::now();
    let signed: Vec<Signed<Request>> =
        (0..rounds).map(request).map(|(body, key)| Signed::sign(body, key)).collect();
    let sign_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    // As a replica receives them: decoded, no digest computed yet.
    let received = || signed.iter().map(|s| Signed::from_parts(s.payload().clone(), s.signature().to_vec()));
    let batch_verify_us = batch_verify_us(&book, &received().collect::<Vec<_>>(), args.batch)?;
    let fresh: Vec<Signed<Request>> = received().collect();
    let started = Instant::now();
    for request in fresh {
        book.verify_request(request).map_err(|e| anyhow::anyhow!("a fresh signature failed: {e}"))?;
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let crypto_us_per_op =
        crypto_us_per_op(args.replicas as f64, args.batch as f64, sign_us, verify_us, batch_verify_us);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let ceiling_ops_per_sec = cores as f64 * 1e6 / crypto_us_per_op;
    let report = Ceiling {
        sign_us,
        verify_us,
        batch_verify_us,
        replicas: args.replicas,
        batch: args.batch,
        cores,
        crypto_us_per_op,
        ceiling_ops_per_sec,
        measured_ops_per_sec: args.measured,
        measured_over_ceiling: args.measured.map(|m| m / ceiling_ops_per_sec),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("ed25519 on this machine ({cores} cores): sign {sign_us:.1} µs, verify {verify_us:.1} µs (request-sized messages, SHA-256 and encoding included)");
        println!(
            "batch verification of {} request signatures: {batch_verify_us:.1} µs per signature",
            args.batch
        );
        println!(
            "n = {} replicas, batches of {}: {:.1} µs of signature work per operation",
            args.replicas, args.batch, crypto_us_per_op
        );
        println!(
            "ceiling: {ceiling_ops_per_sec:.0} ops/s with all {cores} cores doing nothing but signatures"
        );
        if let (Some(measured), Some(ratio)) = (report.measured_ops_per_sec, report.measured_over_ceiling) {
            println!("measured {measured:.0} ops/s = {:.0} % of the ceiling", ratio * 100.0);
        }
    }
    Ok(ExitCode::SUCCESS)
}
