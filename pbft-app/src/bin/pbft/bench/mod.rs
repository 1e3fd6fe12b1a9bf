//! `pbft bench`: load a key-value cluster from many concurrent clients and
//! report throughput, latency percentiles and replica CPU per operation; or,
//! with `--ceiling`, measure what the signatures alone allow on this machine.

mod plot;
mod ticker;

use crate::cluster_cli::{load, runtime, runtime_on, spawn_replicas};
use anyhow::Context;
use clap::Args;
use pbft_app::apps::kv::{KvOp, KvQuery};
use pbft_app::cluster_config::{AppKind, ClusterConfig};
use pbft_app::node::{cluster_status, connect_client};
use pbft_core::{ClientId, KeyBook, PublicKey, Request, RequestKind, SecretKey, Signed};
use pbft_net::ClientHandle;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `pbft bench`: measure a running cluster (or one it starts with `--local`).
#[derive(Args)]
pub struct BenchArgs {
    /// The cluster config (TOML) of a kv cluster. Required unless --ceiling or --plot.
    #[arg(long, required_unless_present_any = ["ceiling", "plot"])]
    config: Option<PathBuf>,
    /// Concurrent closed-loop workers. Each client identity of the config
    /// takes as many workers as it may have requests pending
    /// (`max_pending_per_client`) before the next identity is used; with
    /// --rate, the schedule is spread over this many identities instead.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Bytes of each put's value.
    #[arg(long, default_value_t = 32)]
    payload: usize,
    /// Fraction of operations that are read-only gets (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    read_ratio: f64,
    /// Open loop: issue this many operations per second whatever the
    /// latency, and measure latency from each operation's scheduled start.
    #[arg(long)]
    rate: Option<u64>,
    /// Start the config's replicas as child processes first, stop them after.
    #[arg(long)]
    local: bool,
    /// With --local: run the cluster with a protocol parameter changed, as
    /// NAME=VALUE (repeatable), e.g. --protocol max_batch_size=10. The
    /// config file itself is left alone.
    #[arg(long = "protocol", value_name = "NAME=VALUE", requires = "local")]
    protocol: Vec<String>,
    /// Threads of the load generator's async runtime (default: one per
    /// core). One thread costs the cores it shares with a local cluster
    /// less CPU per operation, but gave no clear gain here (BENCHMARKS.md).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Measure signing and verification on this machine and print the
    /// throughput the signatures alone allow (no cluster needed).
    #[arg(long)]
    ceiling: bool,
    /// Replicas sharing this machine, for --ceiling.
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// Requests per batch assumed by --ceiling.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// A measured throughput (ops/s) to compare with the ceiling.
    #[arg(long)]
    measured: Option<f64>,
    /// Draw the runs in this file (lines of `pbft bench --json`) as
    /// throughput against latency, one curve per cluster size, into --svg.
    #[arg(long, value_name = "RUNS", requires = "svg")]
    plot: Option<PathBuf>,
    /// Where --plot writes its SVG.
    #[arg(long, value_name = "FILE", requires = "plot")]
    svg: Option<PathBuf>,
}

/// What a load run measured.
#[derive(Debug, Serialize)]
struct BenchReport {
    cluster: String,
    replicas: usize,
    /// The protocol's batch limit and delay in the measured cluster's config.
    max_batch_size: usize,
    batch_delay_ms: u64,
    /// Bytes of each put's value.
    payload_bytes: usize,
    workers: usize,
    mode: String,
    seconds: f64,
    operations: u64,
    errors: u64,
    ops_per_sec: f64,
    /// Sequence numbers the cluster executed during the run (the highest
    /// `last_executed` any replica reports, after minus before); `None` if
    /// no replica answered a status query.
    sequence_numbers: Option<u64>,
    /// Operations per sequence number: the mean batch the primary proposed,
    /// which sets how far the per-batch protocol work is shared.
    operations_per_sequence_number: Option<f64>,
    latency_ms: Percentiles,
    /// Open loop only: how long after its scheduled instant each operation
    /// was issued. Counted in its latency too; large values mean the load
    /// generator, not the cluster, fell behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    issue_lateness_ms: Option<Percentiles>,
    /// Per replica id, CPU seconds spent per 1,000 operations (`None` when its process was not found).
    cpu_seconds_per_1000_ops: Vec<Option<f64>>,
    /// The load generator's own CPU seconds per 1,000 operations (it signs
    /// every request and takes every reply, on the same cores as the replicas).
    load_generator_cpu_seconds_per_1000_ops: Option<f64>,
    cores: usize,
}

#[derive(Debug, Default, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(latencies_us: &mut [u64]) -> Percentiles {
        if latencies_us.is_empty() {
            return Percentiles::default();
        }
        latencies_us.sort_unstable();
        let at = |q: f64| {
            let index = ((latencies_us.len() as f64 * q).ceil() as usize).clamp(1, latencies_us.len()) - 1;
            latencies_us[index] as f64 / 1000.0
        };
        Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) }
    }
}

/// Runs `pbft bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.ceiling {
        return ceiling(&args);
    }
    if let (Some(runs), Some(svg)) = (&args.plot, &args.svg) {
        plot::plot(runs, svg)?;
        return Ok(ExitCode::SUCCESS);
    }
    let original = args.config.clone().context("--config is required")?;
    let overridden =
        if args.protocol.is_empty() { None } else { Some(Overridden::write(&original, &args.protocol)?) };
    let path = overridden.as_ref().map_or(original.clone(), |o| o.path.clone());
    let config = match &overridden {
        Some(_) => load(&path).context("--protocol: the config with these changes is refused")?,
        None => load(&path)?,
    };
    anyhow::ensure!(
        config.app == AppKind::Kv,
        "--config: pbft bench drives the kv app; this config runs {:?}",
        config.app.name()
    );
    anyhow::ensure!(args.clients > 0, "--clients: need at least 1");
    anyhow::ensure!((0.0..=1.0).contains(&args.read_ratio), "--read-ratio: must be between 0 and 1");
    anyhow::ensure!(args.rate != Some(0), "--rate: must be at least 1 operation per second");
    let runtime = match args.threads {
        Some(threads) => runtime_on(threads)?,
        None => runtime()?,
    };
    runtime.block_on(async {
        let local = if args.local { Some(spawn_replicas(&path, &config)?) } else { None };
        let measured = async {
            wait_until_up(&config).await?;
            load_cluster(&args, &path, &config).await
        }
        .await;
        if let Some(local) = local {
            // Their ports must be free when this returns: the next bench may bind them.
            local.stop(LOCAL_STOP_GRACE).await;
        }
        print_report(&measured?, args.json)?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A copy of a cluster config with protocol parameters changed, in the
/// temporary directory; removed when dropped.
struct Overridden {
    path: PathBuf,
}

impl Overridden {
    /// Writes `original` with every `NAME=VALUE` of `overrides` set in its
    /// `[protocol]` table, and its relative key paths made absolute so they
    /// still resolve from the copy's directory.
    fn write(original: &Path, overrides: &[String]) -> anyhow::Result<Overridden> {
        let text = std::fs::read_to_string(original)
            .with_context(|| format!("cannot read {}", original.display()))?;
        let mut table: toml::Table =
            text.parse().with_context(|| format!("{} is not valid TOML", original.display()))?;
        let base = std::fs::canonicalize(original)?.parent().map(Path::to_path_buf).unwrap_or_default();
        let absolute = |value: &mut toml::Value| {
            if let Some(relative) = value.as_str() {
                *value = toml::Value::String(base.join(relative).display().to_string());
            }
        };
        if let Some(dir) = table.get_mut("cluster").and_then(|c| c.get_mut("keys_dir")) {
            absolute(dir);
        }
        for section in ["replica", "client"] {
            let entries = table.get_mut(section).and_then(toml::Value::as_array_mut);
            for entry in entries.into_iter().flatten() {
                if let Some(file) = entry.get_mut("key_file") {
                    absolute(file);
                }
            }
        }
        let protocol = table
            .entry("protocol")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[protocol] in the config is not a table")?;
        for assignment in overrides {
            let (name, value) = assignment
                .split_once('=')
                .with_context(|| format!("--protocol {assignment}: expected NAME=VALUE"))?;
            let value: i64 = value
                .trim()
                .parse()
                .with_context(|| format!("--protocol {assignment}: the value must be a whole number"))?;
            protocol.insert(name.trim().to_string(), toml::Value::Integer(value));
        }
        let path = std::env::temp_dir().join(format!("pbft-bench-{}.toml", std::process::id()));
        std::fs::write(&path, toml::to_string(&table)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Overridden { path })
    }
}

impl Drop for Overridden {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits until every replica answers and reaches all its peers, so that the
/// measurement leaves out the cluster's start: a replica that dialled a peer
/// before it listened waits for QUIC to resend its first handshake packet
/// (about a second), and requests meanwhile stall.
async fn wait_until_up(config: &ClusterConfig) -> anyhow::Result<()> {
    let client = config.clients.first().context("the config has no [[client]]")?.id;
    let peers = config.n().saturating_sub(1) as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let statuses = cluster_status(config, client, Duration::from_millis(500)).await?;
        let answered = statuses.iter().all(Option::is_some);
        let linked = statuses.iter().flatten().all(|status| status.net.links_up >= peers);
        if answered && linked {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::ensure!(
                answered,
                "not every replica of {} answers; start the cluster (pbft up) or pass --local",
                config.name
            );
            eprintln!("warning: not every replica reaches all its peers after 10 s; measuring anyway");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many of the config's `available` client identities a load of
/// `clients` uses. A closed loop fills each identity's `window` before
/// taking the next, so that a client's replies share datagrams as they do
/// for a client that pipelines its requests; the open loop spreads its
/// schedule over `clients` identities.
fn identities_used(clients: usize, open_loop: bool, available: usize, window: usize) -> usize {
    let wanted = if open_loop { clients } else { clients.div_ceil(window.max(1)) };
    wanted.clamp(1, available.max(1))
}

/// One operation of the load: an ordered put or a read-only get, encoded.
enum Call {
    Put(Vec<u8>),
    Get(Vec<u8>),
}

/// Operation `index` of `worker`: a get with probability `read_ratio`
/// (spread evenly by a multiplicative hash, no randomness), else a put.
fn operation(worker: usize, index: u64, payload: &str, read_ratio: f64) -> Call {
    let key = format!("bench-{worker}-{}", index % 1024);
    let mix = (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    if mix < read_ratio {
        return Call::Get(pbft_app::typed::encode_request(&KvQuery::Get { key }).unwrap_or_default());
    }
    Call::Put(
        pbft_app::typed::encode_request(&KvOp::Put { key, value: payload.to_string() }).unwrap_or_default(),
    )
}

struct Tally {
    latencies_us: Vec<u64>,
    /// Open loop: microseconds from each operation's scheduled instant to its issue.
    lateness_us: Vec<u64>,
    errors: u64,
}

async fn load_cluster(args: &BenchArgs, path: &Path, config: &ClusterConfig) -> anyhow::Result<BenchReport> {
    let identities: Vec<ClientId> = config.clients.iter().map(|c| c.id).collect();
    anyhow::ensure!(!identities.is_empty(), "{}: the config has no [[client]]", path.display());
    let window = config.protocol.max_pending_per_client.max(1);
    let used = identities_used(args.clients, args.rate.is_some(), identities.len(), window);
    if args.rate.is_none() && args.clients > used * window {
        eprintln!(
            "warning: {} workers but {} request slots ({used} client identities x {window} pending each): \
             the rest wait in the load generator; add [[client]] entries to the config for more",
            args.clients,
            used * window
        );
    }
    let mut clients = Vec::new();
    for id in identities.iter().take(used) {
        clients.push(Arc::new(connect_client(config, *id)?));
    }
    let executed_before = highest_executed(config, identities[0]).await;
    let pids = replica_pids(path, config);
    let cpu_before: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(cpu_ticks)).collect();
    let own_cpu_before = cpu_ticks(std::process::id());
    let tally = Arc::new(Mutex::new(Tally { latencies_us: Vec::new(), lateness_us: Vec::new(), errors: 0 }));
    let payload = "x".repeat(args.payload);
    let duration = Duration::from_secs(args.duration);
    let start = Instant::now();
    let progress = tokio::spawn(show_progress(start, duration, tally.clone()));
    let mode = match args.rate {
        None => {
            let mut workers = Vec::new();
            for worker in 0..args.clients {
                let client = clients[worker % clients.len()].clone();
                let (tally, payload, ratio) = (tally.clone(), payload.clone(), args.read_ratio);
                workers.push(tokio::spawn(async move {
                    let mut index = 0u64;
                    while start.elapsed() < duration {
                        let began = Instant::now();
                        let ok = invoke(&client, operation(worker, index, &payload, ratio)).await;
                        record(&tally, ok, began.elapsed());
                        index += 1;
                    }
                }));
            }
            for worker in workers {
                worker.await?;
            }
            format!("closed loop, {} workers", args.clients)
        }
        Some(rate) => {
            let gap = Duration::from_secs_f64(1.0 / rate as f64);
            let (mut schedule, ticker) = ticker::start(start, gap, duration);
            let mut index = 0u64;
            let mut in_flight = Vec::new();
            while let Some(scheduled) = schedule.recv().await {
                let client = clients[index as usize % clients.len()].clone();
                let (tally, op) = (tally.clone(), operation(0, index, &payload, args.read_ratio));
                in_flight.push(tokio::spawn(async move {
                    record_lateness(&tally, scheduled.elapsed());
                    let ok = invoke(&client, op).await;
                    record(&tally, ok, scheduled.elapsed());
                }));
                index += 1;
            }
            for op in in_flight {
                op.await?;
            }
            ticker.join().map_err(|_| anyhow::anyhow!("the open loop's ticker thread panicked"))?;
            format!("open loop, {rate} ops/s")
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    progress.abort();
    let cpu_after: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(cpu_ticks)).collect();
    let own_cpu_after = cpu_ticks(std::process::id());
    let mut tally = match Arc::try_unwrap(tally) {
        Ok(tally) => tally.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()),
        Err(_) => anyhow::bail!("a worker outlived the run"),
    };
    let operations = tally.latencies_us.len() as u64;
    let per_1000_ops = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if operations > 0 => {
            Some(a.saturating_sub(b) as f64 / CLOCK_TICKS_PER_SECOND / operations as f64 * 1000.0)
        }
        _ => None,
    };
    let sequence_numbers = match (executed_before, highest_executed(config, identities[0]).await) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let cpu_seconds_per_1000_ops =
        cpu_before.iter().zip(&cpu_after).map(|(before, after)| per_1000_ops(*before, *after)).collect();
    Ok(BenchReport {
        cluster: config.name.clone(),
        replicas: config.n(),
        max_batch_size: config.protocol.max_batch_size,
        batch_delay_ms: config.protocol.batch_delay_ms,
        payload_bytes: args.payload,
        workers: args.clients,
        mode,
        seconds,
        operations,
        errors: tally.errors,
        ops_per_sec: operations as f64 / seconds,
        sequence_numbers,
        operations_per_sequence_number: sequence_numbers
            .filter(|seqs| *seqs > 0)
            .map(|seqs| operations as f64 / seqs as f64),
        latency_ms: Percentiles::of(&mut tally.latencies_us),
        issue_lateness_ms: args.rate.map(|_| Percentiles::of(&mut tally.lateness_us)),
        cpu_seconds_per_1000_ops,
        load_generator_cpu_seconds_per_1000_ops: per_1000_ops(own_cpu_before, own_cpu_after),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
    })
}

/// The highest sequence number any replica reports executed, if any answers.
async fn highest_executed(config: &ClusterConfig, client: ClientId) -> Option<u64> {
    let statuses = cluster_status(config, client, Duration::from_millis(500)).await.ok()?;
    statuses.iter().flatten().map(|status| status.last_executed).max()
}

/// How long `--local` replicas get to exit after their lifelines close,
/// before they are killed.
const LOCAL_STOP_GRACE: Duration = Duration::from_secs(2);

/// How long one operation may take before it counts as an error.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

async fn invoke(client: &ClientHandle, call: Call) -> bool {
    match call {
        Call::Put(op) => client.invoke_within(op, OPERATION_TIMEOUT).await.is_ok(),
        Call::Get(query) => client.query_within(query, OPERATION_TIMEOUT).await.is_ok(),
    }
}

fn record_lateness(tally: &Mutex<Tally>, lateness: Duration) {
    lock(tally).lateness_us.push(micros(lateness));
}

fn record(tally: &Mutex<Tally>, ok: bool, latency: Duration) {
    let mut tally = lock(tally);
    if ok {
        tally.latencies_us.push(micros(latency));
    } else {
        tally.errors += 1;
    }
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A one-line progress bar on stderr, when stderr is a terminal.
async fn show_progress(start: Instant, duration: Duration, tally: Arc<Mutex<Tally>>) {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = (start.elapsed().as_secs_f64() / duration.as_secs_f64()).min(1.0);
        let ops = tally.lock().map_or(0, |t| t.latencies_us.len());
        let bar: String = (0..30).map(|i| if (i as f64) < done * 30.0 { '#' } else { '.' }).collect();
        eprint!("\r[{bar}] {:>3.0}%  {ops} operations", done * 100.0);
        if done >= 1.0 {
            eprintln!();
            return;
        }
    }
}

/// Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU ticks of process `pid` (Linux `/proc`).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The process of each replica of the config at `path` running on this
/// machine (`pbft replica --config PATH --id I`), found through `/proc`.
fn replica_pids(path: &Path, config: &ClusterConfig) -> Vec<Option<u32>> {
    let mut pids = vec![None; config.n()];
    let Ok(wanted) = path.canonicalize() else { return pids };
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> =
            cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if !args.iter().any(|a| a == "replica") {
            continue;
        }
        let after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
        let (Some(config_arg), Some(id)) = (after("--config"), after("--id")) else { continue };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else { continue };
        let same = cwd.join(config_arg).canonicalize().is_ok_and(|p| p == wanted);
        if let (true, Ok(id)) = (same, id.parse::<usize>()) {
            if let Some(slot) = pids.get_mut(id) {
                *slot = Some(pid);
            }
        }
    }
    pids
}

fn print_report(report: &BenchReport, json: bool) -> anyhow::Result<()> {
    if json {
        // One line per run, so runs append to a JSON-lines file for `pbft bench plot`.
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "{} ({} replicas, {} cores, batches of up to {}, batch delay {} ms, {}-byte values): {}, {:.1} s",
        report.cluster,
        report.replicas,
        report.cores,
        report.max_batch_size,
        report.batch_delay_ms,
        report.payload_bytes,
        report.mode,
        report.seconds
    );
    println!(
        "throughput  {:.0} ops/s ({} operations, {} errors)",
        report.ops_per_sec, report.operations, report.errors
    );
    if let (Some(seqs), Some(per_seq)) = (report.sequence_numbers, report.operations_per_sequence_number) {
        println!("batches     {seqs} sequence numbers, {per_seq:.1} operations each");
    }
    let l = &report.latency_ms;
    println!(
        "latency     p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        l.p50, l.p90, l.p99, l.max
    );
    if let Some(late) = &report.issue_lateness_ms {
        println!("issued late p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms (after the scheduled instant; counted in the latency)", late.p50, late.p99, late.max);
    }
    for (id, cpu) in report.cpu_seconds_per_1000_ops.iter().enumerate() {
        match cpu {
            Some(cpu) => println!("replica {id}   {cpu:.3} CPU s per 1,000 operations"),
            None => println!("replica {id}   CPU not measured (no local process found)"),
        }
    }
    if let Some(cpu) = report.load_generator_cpu_seconds_per_1000_ops {
        println!("load gen.   {cpu:.3} CPU s per 1,000 operations");
    }
    Ok(())
}

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

fn ceiling(args: &BenchArgs) -> anyhow::Result<ExitCode> {
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

#[cfg(test)]
mod tests {
    use super::identities_used;

    #[test]
    fn a_closed_loop_fills_each_identitys_window_before_the_next() {
        assert_eq!(identities_used(1, false, 16, 16), 1);
        assert_eq!(identities_used(16, false, 16, 16), 1);
        assert_eq!(identities_used(17, false, 16, 16), 2);
        assert_eq!(identities_used(64, false, 16, 16), 4);
        assert_eq!(identities_used(256, false, 16, 16), 16);
        assert_eq!(identities_used(1000, false, 16, 16), 16, "never more than the config has");
    }

    #[test]
    fn an_open_loop_spreads_over_as_many_identities_as_clients() {
        assert_eq!(identities_used(8, true, 16, 16), 8);
        assert_eq!(identities_used(64, true, 16, 16), 16);
        assert_eq!(identities_used(0, true, 16, 16), 1);
    }
}
