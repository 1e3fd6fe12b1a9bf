//! `pbft bank`: one operation or query on the replicated bank ledger.

use crate::call::{call, Call, ClientArgs, IntoCall};
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

/// One bank operation or query, as typed on the command line. The ledger's
/// own [`BankOp`] and [`BankQuery`] know nothing of command lines.
#[derive(Subcommand)]
pub enum BankCommand {
    /// Opens `account` with `deposit` taken from the reserve.
    Open {
        /// The account's name.
        account: String,
        /// Its opening balance.
        deposit: u64,
    },
    /// Moves `amount` from one account to another; fails cleanly if `from`
    /// holds less.
    Transfer {
        /// The paying account.
        from: String,
        /// The receiving account.
        to: String,
        /// How much.
        amount: u64,
    },
    /// An account's balance.
    Balance {
        /// The account.
        account: String,
    },
}

impl IntoCall<Bank> for BankCommand {
    /// The ledger's operation or query this command asks for.
    fn into_call(self) -> Call<Bank> {
        match self {
            BankCommand::Open { account, deposit } => Call::Invoke(BankOp::Open { account, deposit }),
            BankCommand::Transfer { from, to, amount } => Call::Invoke(BankOp::Transfer { from, to, amount }),
            BankCommand::Balance { account } => Call::Query(BankQuery::Balance { account }),
        }
    }
}

/// Runs one bank operation.
pub fn run(args: BankArgs) -> anyhow::Result<ExitCode> {
    match call(&args.client, AppKind::Bank, args.op.into_call())? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::call_of;

    #[test]
    fn each_command_line_becomes_the_ledgers_operation_or_query() {
        let open = BankOp::Open { account: "alice".into(), deposit: 100 };
        assert!(
            matches!(call_of::<Bank, BankCommand>(&["bank", "open", "alice", "100"]), Call::Invoke(op) if op == open)
        );
        let transfer = BankOp::Transfer { from: "alice".into(), to: "bob".into(), amount: 60 };
        assert!(
            matches!(call_of::<Bank, BankCommand>(&["bank", "transfer", "alice", "bob", "60"]), Call::Invoke(op) if op == transfer)
        );
        let balance = BankQuery::Balance { account: "bob".into() };
        assert!(
            matches!(call_of::<Bank, BankCommand>(&["bank", "balance", "bob"]), Call::Query(query) if query == balance)
        );
    }
}
