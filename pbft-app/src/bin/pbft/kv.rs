//! `pbft kv`: one operation or query on the replicated key-value store.

use crate::call::{call, Call, ClientArgs, IntoCall};
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

/// One key-value operation or query, as typed on the command line. The
/// store's own [`KvOp`] and [`KvQuery`] know nothing of command lines.
#[derive(Subcommand)]
pub enum KvCommand {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` (removes it when `None`) only if it currently
    /// holds `expected` (is absent when `None`).
    #[command(name = "cas")]
    CompareAndSwap {
        /// The key.
        key: String,
        /// The value the key must hold for the swap to happen; absent if omitted.
        #[arg(long)]
        expected: Option<String>,
        /// The value it gets; deleted if omitted.
        #[arg(long)]
        new: Option<String>,
    },
    /// Reads `key` (answered without ordering when 2f+1 replicas agree).
    Get {
        /// The key.
        key: String,
    },
}

impl IntoCall<KvStore> for KvCommand {
    /// The store's operation or query this command asks for.
    fn into_call(self) -> Call<KvStore> {
        match self {
            KvCommand::Put { key, value } => Call::Invoke(KvOp::Put { key, value }),
            KvCommand::Delete { key } => Call::Invoke(KvOp::Delete { key }),
            KvCommand::CompareAndSwap { key, expected, new } => {
                Call::Invoke(KvOp::CompareAndSwap { key, expected, new })
            }
            KvCommand::Get { key } => Call::Query(KvQuery::Get { key }),
        }
    }
}

/// Runs one key-value operation.
pub fn run(args: KvArgs) -> anyhow::Result<ExitCode> {
    match call(&args.client, AppKind::Kv, args.op.into_call())? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::call_of;

    #[test]
    fn each_command_line_becomes_the_stores_operation_or_query() {
        let put = KvOp::Put { key: "k".into(), value: "v".into() };
        assert!(
            matches!(call_of::<KvStore, KvCommand>(&["kv", "put", "k", "v"]), Call::Invoke(op) if op == put)
        );
        let delete = KvOp::Delete { key: "k".into() };
        assert!(
            matches!(call_of::<KvStore, KvCommand>(&["kv", "delete", "k"]), Call::Invoke(op) if op == delete)
        );
        let cas = KvOp::CompareAndSwap { key: "k".into(), expected: Some("a".into()), new: None };
        assert!(
            matches!(call_of::<KvStore, KvCommand>(&["kv", "cas", "k", "--expected", "a"]), Call::Invoke(op) if op == cas)
        );
        let get = KvQuery::Get { key: "k".into() };
        assert!(
            matches!(call_of::<KvStore, KvCommand>(&["kv", "get", "k"]), Call::Query(query) if query == get)
        );
    }
}
