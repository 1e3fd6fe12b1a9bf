//! `pbft up`: runs every replica of a config on this machine as child
//! processes and shows their status until Ctrl-C or SIGTERM.

use crate::config_file::load;
use crate::local::LocalReplicas;
use crate::runtime::runtime;
use crate::signals::shutdown_signal;
use crate::storage_args::StorageArgs;
use crate::table::print_table;
use clap::Args;
use pbft_app::node::cluster_status;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `pbft up`: run every replica of a config on this machine.
#[derive(Args)]
pub struct UpArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Print the cluster's status every this many seconds (0: only once, at start).
    #[arg(long, default_value_t = 10)]
    status_every: u64,
    #[command(flatten)]
    storage: StorageArgs,
}

/// Starts every replica as a child process, shows status, stops them all on Ctrl-C or SIGTERM.
pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    runtime()?.block_on(async {
        let mut local = LocalReplicas::spawn(&args.config, &config, &args.storage)?;
        println!(
            "started {} replicas of `{}` (f = {}); Ctrl-C stops them",
            config.n(),
            config.name,
            config.f
        );
        let client = config.clients[0].id;
        let (mut shown, mut attempts) = (false, 0);
        let mut next_status = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = shutdown_signal(false) => break,
                _ = tokio::time::sleep_until(next_status) => {
                    let statuses = cluster_status(&config, client, Duration::from_secs(1)).await?;
                    attempts += 1;
                    let wait = if statuses.iter().all(Option::is_some) || attempts >= 10 {
                        if !shown || args.status_every > 0 {
                            print_table(&statuses, &config);
                        }
                        shown = true;
                        Duration::from_secs(if args.status_every > 0 { args.status_every } else { 86_400 })
                    } else {
                        Duration::from_millis(500)
                    };
                    next_status = tokio::time::Instant::now() + wait;
                }
                (index, exit) = local.first_exit() => {
                    println!("replica {} exited ({exit}); the others keep running", local.children[index].0 .0);
                    local.children.remove(index);
                    if local.children.is_empty() { break; }
                }
            }
        }
        println!("stopping {} replicas", local.children.len());
        local.stop(Duration::from_secs(5)).await;
        println!("all replicas stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
