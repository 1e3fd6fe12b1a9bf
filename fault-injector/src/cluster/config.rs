//! The shape of a simulated cluster.

use pbft_core::ProtocolConfig;

/// The shape of a simulated cluster (not to be confused with the cluster
/// config file that `pbft-app` reads for real processes).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of replicas.
    pub n: usize,
    /// Number of clients.
    pub clients: usize,
    /// Protocol parameters shared by every replica.
    pub protocol: ProtocolConfig,
    /// One-way delay of every message, in milliseconds (at least 1).
    pub latency_ms: u64,
    /// How long a client waits before re-sending to every replica.
    pub client_retry_ms: u64,
    /// Seed of every participant's keys.
    pub key_seed: u64,
}

impl SimConfig {
    /// `n` replicas and `clients` clients with the default protocol parameters.
    pub fn new(n: usize, clients: usize) -> SimConfig {
        SimConfig {
            n,
            clients,
            protocol: ProtocolConfig::default(),
            latency_ms: 1,
            client_retry_ms: 1_000,
            key_seed: 0,
        }
    }
}
