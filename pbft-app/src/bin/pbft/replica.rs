//! `pbft replica`: runs one replica of a config in the foreground.

use crate::config_file::load;
use crate::runtime::runtime_on;
use crate::signals::shutdown_signal;
use crate::storage_args::StorageArgs;
use clap::Args;
use pbft_app::node::run_replica_node;
use pbft_core::ReplicaId;
use std::path::PathBuf;
use std::process::ExitCode;

/// `pbft replica`: run one replica in the foreground.
#[derive(Args)]
pub struct ReplicaArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Which replica of the config to run.
    #[arg(long)]
    id: u32,
    /// Threads of the replica's async runtime. With 1 (the default) the
    /// protocol, QUIC and signature checks share one thread, the better
    /// choice where replicas share cores; more threads let a replica with
    /// cores of its own spread its QUIC work over them. BENCHMARKS.md has
    /// the measurements.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    #[command(flatten)]
    storage: StorageArgs,
    /// Serve Prometheus metrics over HTTP at ADDR (ip:port; GET /metrics).
    /// Overrides the replica's `metrics_address` in the config.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Keep no request traces (`pbft trace` then gets no record from this
    /// replica). Overrides `request_traces` in the config; traces are on by
    /// default and cost under a megabyte.
    #[arg(long)]
    no_request_traces: bool,
    /// Stop when standard input closes (how `pbft up` makes sure its replicas
    /// never outlive it).
    #[arg(long, hide = true)]
    stop_when_stdin_closes: bool,
}

/// Runs one replica until Ctrl-C, SIGTERM or (when asked) the end of stdin.
pub fn run(args: ReplicaArgs) -> anyhow::Result<ExitCode> {
    let mut config = load(&args.config)?;
    args.storage.apply(&mut config);
    let id = ReplicaId(args.id);
    anyhow::ensure!(
        id.index() < config.n(),
        "--id: the config has replicas 0 to {}, not {}",
        config.n() - 1,
        args.id
    );
    if let (Some(address), Some(entry)) = (args.metrics, config.replicas.get_mut(id.index())) {
        entry.metrics_address = Some(address);
    }
    if let (true, Some(entry)) = (args.no_request_traces, config.replicas.get_mut(id.index())) {
        entry.request_traces = false;
    }
    runtime_on(args.threads)?.block_on(async {
        let shutdown = shutdown_signal(args.stop_when_stdin_closes);
        run_replica_node(&config, id, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
