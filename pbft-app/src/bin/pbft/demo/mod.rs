//! `pbft demo`: demonstrations on the deterministic in-memory simulator,
//! running the real protocol core.

mod bound;
mod cluster;
mod throughput;

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;

/// Demonstrations.
#[derive(Subcommand)]
pub enum Demo {
    /// Runs n replicas of the key-value store and some clients on a simulated
    /// network in virtual time, then prints what every replica ended with.
    Cluster(cluster::ClusterArgs),
    /// Shows why consensus needs n ≥ 3f+1: the same fork attack with f colluding
    /// traitors (every checker passes) and with f+1 (honest replicas diverge).
    Bound(bound::BoundArgs),
    /// Measures throughput under a slow primary and a flooding replica as a
    /// fraction of fault-free throughput (simulator, virtual time).
    Throughput(throughput::ThroughputArgs),
}

impl Demo {
    /// Runs the chosen demonstration; the exit code says whether it went as the protocol promises.
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Demo::Cluster(args) => cluster::run(args),
            Demo::Bound(args) => bound::run(args),
            Demo::Throughput(args) => throughput::run(args),
        }
    }
}
