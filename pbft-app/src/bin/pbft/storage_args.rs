//! The storage options every command that runs replicas takes (`replica`,
//! `up`, `bench --local`): where replicas keep their data, and whether it is
//! synced.

use clap::Args;
use pbft_app::cluster_config::ClusterConfig;
use std::ffi::OsString;
use std::path::PathBuf;

/// Where replicas keep their durable log, overriding `[storage]`.
#[derive(Args, Clone, Debug, Default)]
pub struct StorageArgs {
    /// The data directory: replica N keeps its log in DIR/replica-N
    /// (default: `[storage] data_dir` of the config, else `data` beside the
    /// config file). A replica restarted on the same directory keeps every
    /// operation clients were told had completed; point it at an empty
    /// directory to start a cluster afresh.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not sync the log before sending: faster, and a crash then loses
    /// operations clients were told had completed (benchmarks only).
    #[arg(long)]
    pub no_sync: bool,
}

impl StorageArgs {
    /// Applies the options to `config`.
    pub fn apply(&self, config: &mut ClusterConfig) {
        if let Some(dir) = &self.data_dir {
            config.storage.data_dir = dir.clone();
        }
        if self.no_sync {
            config.storage.sync = false;
        }
    }

    /// The same options for a `pbft replica` child process.
    pub fn child_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        if let Some(dir) = &self.data_dir {
            args.push(OsString::from("--data-dir"));
            args.push(dir.clone().into_os_string());
        }
        if self.no_sync {
            args.push(OsString::from("--no-sync"));
        }
        args
    }
}
