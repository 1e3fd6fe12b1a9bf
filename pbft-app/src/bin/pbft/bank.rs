//! `pbft bank`: one operation or query on the replicated bank ledger.

use crate::call::{call, Call, ClientArgs};
use clap::{Args, Subcommand};
use pbft_app::apps::bank::{Bank, BankOp, BankQuery, BankResult};
use pbft_app::cluster_config::AppKind;
use std::process::ExitCode;

/// `pbft bank`: one operation on the replicated bank ledger (refusals, such
/// as an overdraft, exit with code 1 and change nothing).
#[derive(Args)]
pub struct BankArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    op: BankCommand,
}

/// One bank operation or query, as typed on the command line.
#[derive(Subcommand)]
pub enum BankCommand {
    /// Operations (ordered).
    #[command(flatten)]
    Op(BankOp),
    /// Queries (read-only).
    #[command(flatten)]
    Query(BankQuery),
}

/// Runs one bank operation.
pub fn run(args: BankArgs) -> anyhow::Result<ExitCode> {
    let request = match args.op {
        BankCommand::Op(op) => Call::Invoke(op),
        BankCommand::Query(query) => Call::Query(query),
    };
    match call::<Bank>(&args.client, AppKind::Bank, request)? {
        BankResult::Opened => println!("opened"),
        BankResult::Transferred => println!("transferred"),
        BankResult::Balance(balance) => println!("{balance}"),
        refused => {
            eprintln!("refused: {refused:?}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
