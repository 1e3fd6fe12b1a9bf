//! `pbft status`: every replica's progress, and whether they agree (once,
//! or live with `--watch`).

use crate::config_file::load;
use crate::runtime::runtime;
use crate::table::print_table;
use crate::watch::{watch, WatchOptions};
use clap::Args;
use pbft_app::node::{agreement, cluster_status, role, Agreement};
use pbft_core::ClientId;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `pbft status`: every replica's progress, and whether they agree.
#[derive(Args)]
pub struct StatusArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The client identity to ask as.
    #[arg(long, default_value_t = 0)]
    client: u64,
    /// How long to wait for replicas to answer.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    /// Keep a live view on screen, refreshed every --interval-ms: per
    /// replica its view, mode, executed sequence number and rate, lag,
    /// links, queues, rejections per second and disagreement. q, Esc or
    /// Ctrl-C quits. Plain lines when standard output is not a terminal.
    #[arg(long)]
    watch: bool,
    /// Time between refreshes of --watch.
    #[arg(long, default_value_t = 1000, requires = "watch", value_parser = clap::value_parser!(u64).range(100..))]
    interval_ms: u64,
    /// Stop --watch after this many refreshes (default: until quit).
    #[arg(long, requires = "watch")]
    count: Option<u64>,
}

/// Prints every replica's status and whether they agree; exits with 1 when
/// they diverge or none answers.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    if args.watch {
        let options = WatchOptions {
            client: ClientId(args.client),
            interval: Duration::from_millis(args.interval_ms),
            count: args.count,
        };
        watch(&config, &options)?;
        return Ok(ExitCode::SUCCESS);
    }
    let statuses = runtime()?.block_on(cluster_status(
        &config,
        ClientId(args.client),
        Duration::from_millis(args.timeout_ms),
    ))?;
    let verdict = agreement(&statuses);
    if args.json {
        let report = serde_json::json!({
            "cluster": config.name,
            "replicas": statuses,
            "roles": config.replicas.iter().map(|r| role(&config, r.id)).collect::<Vec<_>>(),
            "agreement": verdict,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&statuses, &config);
    }
    let reachable = statuses.iter().flatten().count();
    Ok(if matches!(verdict, Agreement::Agree) && reachable > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
