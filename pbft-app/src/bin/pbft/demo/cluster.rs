//! `pbft demo cluster`: runs the real protocol core on the in-memory
//! simulated cluster and prints what every replica ended with.

use anyhow::{bail, Result};
use clap::Args;
use fault_injector::{SimCluster, SimConfig};
use pbft_app::apps::{KvOp, KvStore};
use pbft_core::{ClientId, ProtocolConfig, ReplicaId, Status, Time};
use std::process::ExitCode;

/// Options of `pbft demo cluster`.
#[derive(Args)]
pub struct ClusterArgs {
    /// Number of replicas (tolerates f = (n-1)/3 Byzantine ones).
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// Number of clients, each with one request in flight at a time.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Requests per client.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Crash the primary of view 0 before any request arrives, to watch a view change.
    #[arg(long)]
    crash_primary: bool,
    /// Seed of the participants' keys.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `pbft demo cluster`; the exit code says whether every request
/// completed and the live replicas agree.
pub fn run(args: ClusterArgs) -> Result<ExitCode> {
    if args.replicas == 0 {
        bail!("--replicas must be at least 1");
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let protocol = ProtocolConfig { view_change_timeout_ms: 500, ..ProtocolConfig::default() };
    let config = SimConfig { protocol, key_seed: args.seed, ..SimConfig::new(args.replicas, args.clients) };
    let mut cluster = SimCluster::new(config, |_| KvStore::default());
    if args.crash_primary {
        cluster.crash(ReplicaId(0));
    }
    for client in 0..args.clients as u64 {
        for i in 0..args.requests {
            let op = KvOp::Put { key: format!("client{client}/key{i}"), value: format!("value{i}") };
            cluster.submit(ClientId(client), pbft_app::typed::encode_request(&op)?);
        }
    }
    let completed_all = cluster.run_until_complete(Time(3_600_000));
    let quorum = cluster.quorum();
    println!(
        "{} replicas (f = {}), {} clients x {} requests{}",
        quorum.n(),
        quorum.f(),
        args.clients,
        args.requests,
        if args.crash_primary { ", primary 0 crashed" } else { "" }
    );
    println!(
        "{:<8} {:>5} {:>8} {:>9} {:>11} {:>6}  state digest",
        "replica", "view", "status", "executed", "checkpoint", "keys"
    );
    for replica in cluster.replicas() {
        let crashed = args.crash_primary && replica.id() == ReplicaId(0);
        let status = match (crashed, replica.status()) {
            (true, _) => "crashed",
            (false, Status::Normal) => "normal",
            (false, Status::ViewChanging) => "changing",
        };
        println!(
            "{:<8} {:>5} {:>8} {:>9} {:>11} {:>6}  {}",
            replica.id().0,
            replica.view(),
            status,
            replica.last_executed(),
            replica.low_watermark(),
            replica.app().len(),
            replica.state_digest()
        );
    }
    let completions = cluster.all_completions().count();
    let last = cluster.all_completions().map(|c| c.completed_at).max().unwrap_or(Time::ZERO);
    println!(
        "{completions} of {} requests completed by virtual time {} ms",
        args.clients * args.requests,
        last.as_millis()
    );
    let live: Vec<_> = cluster.live_replicas().collect();
    let agree = live.windows(2).all(|w| w[0].state_digest() == w[1].state_digest());
    println!("live replicas agree on the state digest: {}", if agree { "yes" } else { "NO" });
    Ok(if completed_all && agree { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
