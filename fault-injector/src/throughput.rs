//! Throughput under attack, measured on the simulator: completed requests
//! per virtual second with closed-loop clients on a calm network, with and
//! without a traitor. Virtual time makes the figure independent of the
//! machine; it measures the protocol's reaction, not the crypto's speed.

use crate::cluster::{SimCluster, SimConfig};
use crate::sim::Workload;
use crate::traitor::Behavior;
use crate::Rng;
use pbft_core::{ClientId, ProtocolConfig, ReplicaId, Time};
use std::collections::BTreeSet;

/// Clients in every throughput run, each with one request in flight.
pub const CLIENTS: usize = 8;

/// The protocol parameters of the throughput runs: views rotate every
/// second, so an 8-second run gives every replica of 4 two terms as primary.
pub fn protocol() -> ProtocolConfig {
    ProtocolConfig {
        batch_delay_ms: 1,
        view_change_timeout_ms: 500,
        view_term_ms: 1_000,
        ..ProtocolConfig::default()
    }
}

/// Requests completed per virtual second on `n` replicas over `seconds`
/// virtual seconds, with `traitor` (if any) misbehaving.
pub fn measure<W: Workload>(n: usize, traitor: Option<(ReplicaId, Behavior)>, seconds: u64) -> f64 {
    measure_with::<W>(protocol(), n, traitor, seconds)
}

/// [`measure`] with other protocol parameters (to compare, say, no rotation).
pub fn measure_with<W: Workload>(
    protocol: ProtocolConfig,
    n: usize,
    traitor: Option<(ReplicaId, Behavior)>,
    seconds: u64,
) -> f64 {
    let config = SimConfig { protocol, latency_ms: 1, client_retry_ms: 1_000, ..SimConfig::new(n, CLIENTS) };
    let mut cluster = SimCluster::new(config, |_| W::App::default());
    if let Some((id, behavior)) = traitor {
        cluster.make_traitor(id, behavior, BTreeSet::from([id]));
    }
    let mut ops = Rng::stream(0, "throughput/ops");
    let per_client = (seconds as usize) * 2_000;
    for c in 0..CLIENTS as u64 {
        for i in 0..per_client {
            cluster.submit(ClientId(c), W::random_op(&mut ops, ClientId(c), i));
        }
    }
    cluster.run_until(Time(seconds * 1_000), |_| false);
    cluster.all_completions().count() as f64 / seconds as f64
}
