//! The `pbft` command: run and inspect PBFT clusters.
//!
//! One module per command group: `init` and `check` (config files), `up`
//! and `replica` (running replicas), `kv` and `bank` (client calls),
//! `status`, `trace`, `bench/`, `demo/` and `sim`. What several commands share lives
//! in modules of its own, and no command module imports another's:
//! `config_file` (loading `--config`), `runtime` (async runtimes), `signals`
//! (what stops a process), `local` (replica child processes and their
//! supervision), `table` (the status table), `watch` (the live view of
//! `status --watch`) and `call` (one client call).

// Commands.
mod bank;
mod bench;
mod check;
mod demo;
mod init;
mod kv;
mod replica;
mod sim;
mod status;
mod trace;
mod up;

// Shared by several commands.
mod call;
mod config_file;
mod local;
mod runtime;
mod signals;
mod storage_args;
mod table;
mod watch;

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
    Init(init::InitArgs),
    /// Checks a cluster config and summarises it; errors name the field at fault.
    Check(check::CheckArgs),
    /// Runs every replica of a config on this machine as child processes and
    /// shows their status; Ctrl-C or SIGTERM stops them all.
    Up(up::UpArgs),
    /// Runs one replica of a config in the foreground (Ctrl-C or SIGTERM stops it).
    Replica(replica::ReplicaArgs),
    /// Puts, gets, deletes or compare-and-swaps a key in the replicated key-value store.
    Kv(kv::KvArgs),
    /// Opens accounts, transfers and reads balances in the replicated bank
    /// ledger (configs with `app = "bank"`).
    Bank(bank::BankArgs),
    /// Shows every replica's view, progress and state digest, and whether
    /// they agree; `--watch` keeps a live view of the cluster on screen.
    Status(status::StatusArgs),
    /// Shows when each replica reached each phase of one earlier request
    /// (the client and timestamp `pbft kv --trace` prints).
    Trace(trace::TraceArgs),
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
    /// Prints how this binary was built: the version and which of
    /// pbft-core's test-only features it carries (`none` in anything
    /// shipped; `.ci/run` checks it).
    #[command(hide = true)]
    BuildInfo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    LOG_JSON.store(cli.log_json, Ordering::Relaxed);
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Demo(demo) => demo.run(),
        Command::Sim(args) => sim::run(args),
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Replica(args) => replica::run(args),
        Command::Up(args) => up::run(args),
        Command::Kv(args) => kv::run(args),
        Command::Bank(args) => bank::run(args),
        Command::Status(args) => status::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BuildInfo => {
            println!("pbft {}", env!("CARGO_PKG_VERSION"));
            println!("test-only features: {}", pbft_core::TEST_ONLY_FEATURES);
            Ok(ExitCode::SUCCESS)
        }
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
