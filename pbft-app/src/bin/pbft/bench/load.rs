//! A load run of `pbft bench`: closed-loop workers, or an open loop at a
//! fixed rate, against a kv cluster (started here with `--local`), and what
//! they measured.

use super::overrides::Overridden;
use super::procfs::{cpu_ticks, disk_write_bytes, replica_pids, CLOCK_TICKS_PER_SECOND};
use super::report::{print_report, BenchReport, Percentiles};
use super::{ticker, BenchArgs};
use crate::config_file::load;
use crate::local::LocalReplicas;
use crate::runtime::{runtime, runtime_on};
use anyhow::Context;
use pbft_app::apps::kv::{KvOp, KvQuery};
use pbft_app::cluster_config::{AppKind, ClusterConfig};
use pbft_app::node::{cluster_status, connect_client};
use pbft_core::ClientId;
use pbft_net::ClientHandle;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Loads the cluster `args` names (with its `--protocol` changes), starts
/// it with `--local`, measures it and prints the report.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let original = args.config.clone().context("--config is required")?;
    let overridden = if args.protocol.is_empty()
        && args.metrics_base_port.is_none()
        && !args.no_request_traces
    {
        None
    } else {
        Some(Overridden::write(&original, &args.protocol, args.metrics_base_port, !args.no_request_traces)?)
    };
    let path = overridden.as_ref().map_or(original.clone(), |o| o.path.clone());
    let config = match &overridden {
        Some(_) => {
            load(&path).context("--protocol/--metrics-base-port: the config with these changes is refused")?
        }
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
    // A local cluster starts empty in a data directory of its own (removed
    // afterwards), so runs do not build on each other and nothing is
    // written into the repository; --data-dir picks one instead.
    let scratch = (args.local && args.storage.data_dir.is_none()).then(ScratchDir::new).transpose()?;
    let mut storage = args.storage.clone();
    if let Some(scratch) = &scratch {
        storage.data_dir = Some(scratch.0.clone());
    }
    runtime.block_on(async {
        let local = if args.local { Some(LocalReplicas::spawn(&path, &config, &storage)?) } else { None };
        let measured = async {
            wait_until_up(&config).await?;
            load_cluster(args, &path, &config).await
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

/// A fresh temporary directory, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<ScratchDir> {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("pbft-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
    let disk_before: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(disk_write_bytes)).collect();
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
    let disk_after: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(disk_write_bytes)).collect();
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
    let disk_bytes_per_op = disk_before
        .iter()
        .zip(&disk_after)
        .map(|(before, after)| match (before, after) {
            (Some(b), Some(a)) if operations > 0 => Some(a.saturating_sub(*b) as f64 / operations as f64),
            _ => None,
        })
        .collect();
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
        disk_bytes_per_op,
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
