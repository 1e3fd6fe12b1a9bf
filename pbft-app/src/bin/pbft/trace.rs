//! `pbft trace`: an earlier request's timeline across the replicas.

use crate::config_file::load;
use crate::runtime::runtime;
use clap::Args;
use pbft_app::timeline;
use pbft_core::ClientId;
use pbft_net::{query_traces, MAX_TRACED_REQUESTS};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `pbft trace`: when each replica reached each phase of one request.
#[derive(Args)]
pub struct TraceArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The client that sent the request (`pbft kv --trace` prints it).
    #[arg(long)]
    client: u64,
    /// The request's timestamp (`pbft kv --trace` prints it).
    #[arg(long)]
    timestamp: u64,
    /// The client identity to ask as.
    #[arg(long, default_value_t = 0)]
    ask_as: u64,
    /// How long to wait for replicas to answer.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

/// Prints the request's timeline; exits with 1 when no replica has a record.
pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    let secret = config.client_secret(ClientId(args.ask_as))?;
    let (client, timeout) = (ClientId(args.client), Duration::from_millis(args.timeout_ms));
    let traces = runtime()?.block_on(query_traces(
        &secret,
        &config.replica_addresses(),
        client,
        args.timestamp,
        timeout,
    ))?;
    match timeline::render(&traces, client, args.timestamp, None) {
        Some(table) => {
            print!("{table}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "no replica has a record of client {}'s request {}: it never reached them, or it is older \
                 than the last {MAX_TRACED_REQUESTS} requests each replica remembers",
                args.client, args.timestamp
            );
            Ok(ExitCode::from(1))
        }
    }
}
