//! The `pbft` command: run and inspect PBFT clusters.

mod bench;
mod cluster_cli;
mod demo;
mod sim;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether logs are JSON lines (`--log-json`); child replicas inherit it.
static LOG_JSON: AtomicBool = AtomicBool::new(false);

/// Byzantine fault-tolerant state-machine replication (PBFT).
#[derive(Parser)]
#[command(
    name = "pbft",
    version,
    about = "Byzantine fault-tolerant state-machine replication (PBFT): run clusters over QUIC, simulate, demonstrate",
    long_about = None
)]
struct Cli {
    /// Log as JSON lines instead of concise text (level from RUST_LOG; default info).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a new cluster config (DIR/cluster.toml) and fresh keys (DIR/keys/).
    Init(cluster_cli::InitArgs),
    /// Checks a cluster config and summarises it; errors name the field at fault.
    Check(cluster_cli::ConfigArgs),
    /// Runs every replica of a config on this machine as child processes and
    /// shows their status; Ctrl-C or SIGTERM stops them all.
    Up(cluster_cli::UpArgs),
    /// Runs one replica of a config in the foreground (Ctrl-C or SIGTERM stops it).
    Replica(cluster_cli::ReplicaArgs),
    /// Puts, gets, deletes or compare-and-swaps a key in the replicated key-value store.
    Kv(cluster_cli::KvArgs),
    /// Opens accounts, transfers and reads balances in the replicated bank
    /// ledger (configs with `app = "bank"`).
    Bank(cluster_cli::BankArgs),
    /// Shows every replica's view, progress and state digest, and whether they agree.
    Status(cluster_cli::StatusArgs),
    /// Runs the deterministic simulator: one seed (`--seed S`) or a sweep
    /// (`--seeds A..B`), with faults, then checks safety and liveness.
    Sim(sim::SimArgs),
    /// Measures a kv cluster: throughput, latency percentiles and replica CPU
    /// per operation under closed- or open-loop load; `--ceiling` measures
    /// what the signatures alone allow on this machine.
    Bench(bench::BenchArgs),
    /// Demonstrations on the deterministic in-memory simulator.
    #[command(subcommand)]
    Demo(demo::Demo),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    LOG_JSON.store(cli.log_json, Ordering::Relaxed);
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Demo(demo) => demo.run(),
        Command::Sim(args) => sim::run(args),
        Command::Init(args) => cluster_cli::init(args),
        Command::Check(args) => cluster_cli::check(args),
        Command::Replica(args) => cluster_cli::replica(args),
        Command::Up(args) => cluster_cli::up(args),
        Command::Kv(args) => cluster_cli::kv(args),
        Command::Bank(args) => cluster_cli::bank(args),
        Command::Status(args) => cluster_cli::status(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs to stderr: `RUST_LOG` picks what (default: info for pbft, warnings
/// for libraries), `--log-json` picks JSON lines over concise text.
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pbft=info,pbft_app=info,pbft_net=info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.compact().with_target(false).init();
    }
}
