//! `pbft bench`: load a key-value cluster from many concurrent clients and
//! report throughput, latency percentiles and replica CPU per operation; or,
//! with `--ceiling`, measure what the signatures alone allow on this machine;
//! or, with `--plot`, draw earlier runs.

mod ceiling;
mod load;
mod overrides;
mod plot;
mod procfs;
mod report;
mod sync_latency;
mod ticker;

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `pbft bench`: measure a running cluster (or one it starts with `--local`).
#[derive(Args)]
pub struct BenchArgs {
    /// The cluster config (TOML) of a kv cluster. Required unless --ceiling, --plot or --sync-latency.
    #[arg(long, required_unless_present_any = ["ceiling", "plot", "sync_latency"])]
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
    /// With --local: where the replicas keep their data (default: a fresh
    /// temporary directory per run), and whether it is synced.
    #[command(flatten)]
    storage: crate::storage_args::StorageArgs,
    /// With --local: run the cluster with a protocol parameter changed, as
    /// NAME=VALUE (repeatable), e.g. --protocol max_batch_size=10. The
    /// config file itself is left alone.
    #[arg(long = "protocol", value_name = "NAME=VALUE", requires = "local")]
    protocol: Vec<String>,
    /// With --local: the replicas serve Prometheus metrics, replica i on
    /// TCP port P + i (what the metrics cost, measured against a run without).
    #[arg(long, value_name = "P", requires = "local")]
    metrics_base_port: Option<u16>,
    /// With --local: the replicas keep no request traces (what the traces
    /// cost, measured against a run with them, the default).
    #[arg(long, requires = "local")]
    no_request_traces: bool,
    /// Threads of the load generator's async runtime (default: one per
    /// core). One thread costs the cores it shares with a local cluster
    /// less CPU per operation; BENCHMARKS.md has what that changed in the
    /// measured runs.
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
    /// Measure how long this machine takes to make an appended record
    /// durable (write + fdatasync, a replica's group commit), --samples
    /// times, in --sync-dir (default: the temp directory). No cluster needed.
    #[arg(long)]
    sync_latency: bool,
    /// Samples for --sync-latency.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// The directory --sync-latency writes in (put it on the disk replicas use).
    #[arg(long, value_name = "DIR")]
    sync_dir: Option<PathBuf>,
    /// Draw the runs in this file (lines of `pbft bench --json`) as
    /// throughput against latency, one curve per cluster size, into --svg.
    #[arg(long, value_name = "RUNS", requires = "svg")]
    plot: Option<PathBuf>,
    /// Where --plot writes its SVG.
    #[arg(long, value_name = "FILE", requires = "plot")]
    svg: Option<PathBuf>,
}

/// Runs `pbft bench`: the ceiling, the plot or a load run, as the flags say.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.ceiling {
        return ceiling::run(&args);
    }
    if args.sync_latency {
        return sync_latency::run(args.samples, args.sync_dir.as_deref(), args.json);
    }
    if let (Some(runs), Some(svg)) = (&args.plot, &args.svg) {
        plot::plot(runs, svg)?;
        return Ok(ExitCode::SUCCESS);
    }
    load::run(&args)
}
