//! `pbft kv`: one operation or query on the replicated key-value store.

use crate::call::{call, Call, ClientArgs};
use clap::{Args, Subcommand};
use pbft_app::apps::kv::{KvOp, KvQuery, KvResult, KvStore};
use pbft_app::cluster_config::AppKind;
use std::process::ExitCode;

/// `pbft kv`: one operation on the replicated key-value store (`get` exits
/// with code 1 when the key has no value).
#[derive(Args)]
pub struct KvArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    op: KvCommand,
}

/// One key-value operation or query, as typed on the command line.
#[derive(Subcommand)]
pub enum KvCommand {
    /// Operations (ordered).
    #[command(flatten)]
    Op(KvOp),
    /// Queries (read-only).
    #[command(flatten)]
    Query(KvQuery),
}

/// Runs one key-value operation.
pub fn run(args: KvArgs) -> anyhow::Result<ExitCode> {
    let request = match args.op {
        KvCommand::Op(op) => Call::Invoke(op),
        KvCommand::Query(query) => Call::Query(query),
    };
    match call::<KvStore>(&args.client, AppKind::Kv, request)? {
        KvResult::Value(Some(value)) => println!("{value}"),
        KvResult::Value(None) => {
            eprintln!("no value for that key");
            return Ok(ExitCode::from(1));
        }
        KvResult::Previous(Some(previous)) => println!("ok (was: {previous})"),
        KvResult::Previous(None) => println!("ok"),
        KvResult::Swapped { swapped, current } => {
            println!(
                "{} (now: {})",
                if swapped { "swapped" } else { "not swapped" },
                current.as_deref().unwrap_or("absent")
            );
            if !swapped {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
