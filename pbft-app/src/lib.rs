//! # pbft-app
//!
//! Build replicated services on pbft. Write a typed [`StateMachine`] (or a
//! byte-level [`ReplicatedStateMachine`]), run it on replicas with
//! [`node::run_replica_with`] or the `pbft` binary, and call it with
//! [`Client`] or [`BlockingClient`]. `docs/building-an-app.md` is the
//! tutorial.
//!
//! The package has two wings.
//!
//! - **The library** (this crate, `src/`), with no command-line code:
//!   [`client`] (the typed clients), [`cluster_config`] (the cluster TOML
//!   file: [`ClusterConfig::load`](cluster_config::ClusterConfig::load)
//!   parses and checks it, [`NewCluster`](cluster_config::NewCluster)
//!   renders a new one from the same types), [`keyfile`] (secret key
//!   files), [`node`] (running a replica, connecting a client, reading the
//!   cluster's status; errors are [`node::NodeError`]; a demonstration traitor runs as
//!   `fault_injector::traitor::TraitorNode`, driven like any replica),
//!   [`storage`] (a replica's durable log: segments of checksummed records,
//!   group commit, crash recovery), [`apps`] (the example applications: a
//!   key-value store, a bank ledger, a counter), [`timeline`] (one request's
//!   trace across the replicas as a table) and [`workloads`] (what the simulator drives each example
//!   application with, kept apart so the applications know nothing of it).
//! - **The `pbft` binary** (`src/bin/pbft/`), a thin layer of clap commands
//!   over the library: `init` and `check` (config files), `up` and
//!   `replica` (running replicas), `kv` and `bank` (client calls, with
//!   command enums of their own that convert to the apps' operations),
//!   `status`, `bench`, `demo` and `sim`. Errors there are `anyhow`.

pub mod apps;
pub mod client;
pub mod cluster_config;
/// Recording clients' calls on the key-value store, and checking the history is linearizable.
pub mod history;
pub mod keyfile;
pub mod node;
pub mod storage;
pub mod timeline;
pub mod workloads;

pub use client::{BlockingClient, Client, ClientError, RequestRef};
pub use pbft_core::typed;
pub use pbft_core::{AppError, ClientId, ReplicatedStateMachine, StateMachine};

/// The tutorial `docs/building-an-app.md`, compiled and run as a doctest so
/// its code cannot drift from the library.
#[cfg(doctest)]
#[doc = include_str!("../../docs/building-an-app.md")]
pub struct BuildingAnApp;
