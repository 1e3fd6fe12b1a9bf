//! A network of hosts on one machine, for running real pbft replicas as if
//! on separate machines: one Linux network namespace per host, links with
//! WAN delay, jitter and loss, cuts and partitions, and pauses and kills of
//! the replica processes.
//!
//! It needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` (iproute2) and
//! `iptables-restore` (iptables). Where they are missing, [`Testnet::new`]
//! fails with [`NetError::Unsupported`], and the scenario tests report
//! themselves skipped by name, or fail when `PBFT_REQUIRE_TESTNET` is set
//! (as `.ci/run` sets it).
//!
//! The replicas are the workspace's `pbft` binary, found beside the running
//! one: `cargo test --workspace` builds it, `cargo test -p pbft-testnet`
//! alone does not (run `cargo build -p pbft-app` first, or the tests run
//! whatever `pbft` was built last).
//!
//! Delay and loss are made in user space by `pbft-netem` (this crate's
//! binary) from an NFQUEUE: the kernels this runs on may lack the netem
//! qdisc, which `tc netem` needs.

pub mod cluster;
mod link;
pub mod namespace;
pub mod net;
pub mod thread;
pub mod workload;

pub use cluster::NetCluster;
pub use link::Link;
pub use net::{NetError, Testnet};
