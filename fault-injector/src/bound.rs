//! The n ≥ 3f+1 bound, shown both ways: on n = 3f+1 replicas, f colluding
//! traitors cannot make honest replicas disagree, and f+1 can.
//!
//! Both scenarios run the same fork attack (the `collude` behaviour) on a
//! calm network, so the outcome is the attack's, not the network's: the
//! traitor primary sends one batch to one half of the honest replicas and a
//! different batch to the other half for the same sequence number, and every
//! other traitor prepares and commits each batch towards its half. A batch
//! commits with 2f+1 commits. Two quorums of 2f+1 out of 3f+1 share at least
//! f+1 replicas; with f traitors one of those is honest and refuses to vote
//! twice, so at most one batch commits; with f+1 traitors the shared replicas
//! can all be traitors, and both batches commit.

use crate::sim::{simulate, FaultProfile, PartitionMode, SimOptions, SimReport, TraitorSelection, Workload};
use crate::traitor::Behavior;
use pbft_core::{ProtocolConfig, ReplicaId};

/// One run of the fork attack.
#[derive(Clone, Debug)]
pub struct BoundScenario {
    /// How many replicas collude.
    pub traitors: usize,
    /// What the simulator and its checkers found.
    pub report: SimReport,
}

impl BoundScenario {
    /// Whether the honest replicas agreed (no two executed different batches at one sequence number).
    pub fn agreement_held(&self) -> bool {
        self.report.conflicting_seq.is_none()
    }
}

/// Both scenarios for one fault bound f.
#[derive(Clone, Debug)]
pub struct BoundDemo {
    /// The fault bound; the cluster has 3f+1 replicas.
    pub f: usize,
    /// f colluders: every checker must pass.
    pub safe: BoundScenario,
    /// f+1 colluders: honest replicas must diverge.
    pub fork: BoundScenario,
}

impl BoundDemo {
    /// Whether both outcomes are what the theory predicts.
    pub fn as_predicted(&self) -> bool {
        self.safe.report.passed()
            && self.safe.report.completed == self.safe.report.issued
            && !self.fork.agreement_held()
    }
}

/// A network without loss, duplication, partitions or crashes: only the
/// traitors misbehave. Two clients keep the primary's batches at two
/// requests, which the attack splits into two different orders.
pub fn calm_profile(n: usize, seed: u64) -> FaultProfile {
    FaultProfile {
        seed,
        n,
        clients: 2,
        requests_per_client: 4,
        open_loop: false,
        arrival_gap_ms: 0,
        loss_per_mille: 0,
        duplicate_per_mille: 0,
        min_delay_ms: 1,
        max_delay_ms: 1,
        tail_per_mille: 0,
        partition: PartitionMode::None,
        partition_window_ms: (0, 0),
        crash_restarts: 0,
        whole_cluster_crash: None,
        safety_ms: 2_000,
        protocol: ProtocolConfig {
            batch_delay_ms: 5,
            view_change_timeout_ms: 500,
            status_interval_ms: 100,
            checkpoint_interval: 8,
            watermark_window: 32,
            ..ProtocolConfig::default()
        },
        client_retry_ms: 1_000,
    }
}

/// Runs the fork attack with `traitors` colluders (replicas 0, 1, …; replica
/// 0 is the first primary) on 3f+1 replicas running workload `W`.
pub fn fork_attack<W: Workload>(f: usize, traitors: usize) -> BoundScenario {
    let n = 3 * f + 1;
    let colluders = (0..traitors as u32).map(|id| (ReplicaId(id), Behavior::Collude)).collect();
    let options = SimOptions {
        traitors: TraitorSelection::Exactly(colluders),
        profile: Some(calm_profile(n, 0)),
        ..SimOptions::default()
    };
    let (report, _) = simulate::<W>(0, &options);
    BoundScenario { traitors, report }
}

/// Both scenarios for fault bound `f` (at least 1).
pub fn demonstrate<W: Workload>(f: usize) -> BoundDemo {
    let f = f.max(1);
    BoundDemo { f, safe: fork_attack::<W>(f, f), fork: fork_attack::<W>(f, f + 1) }
}
