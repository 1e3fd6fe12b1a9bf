//! `pbft check`: loads a cluster config and summarises it.

use crate::config_file::load;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `pbft check`: a config file.
#[derive(Args)]
pub struct CheckArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
}

/// Checks a config and summarises it.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    println!(
        "{}: cluster `{}` running {}: n = {} replicas, f = {}, {} clients, {} traitors: ok",
        args.config.display(),
        config.name,
        config.app.name(),
        config.n(),
        config.f,
        config.clients.len(),
        config.traitors.len()
    );
    Ok(ExitCode::SUCCESS)
}
