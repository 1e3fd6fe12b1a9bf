//! A seed expands into a fault profile: the shape of one simulated run.

use crate::rng::Rng;
use pbft_core::{ProtocolConfig, Quorum};
use std::fmt;

/// How the network is partitioned during the safety phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionMode {
    /// No partitions.
    None,
    /// The replicas split into two groups that cannot talk to each other.
    Halves,
    /// One replica is cut off from every other replica.
    IsolateOne,
    /// One replica's messages to other replicas are lost; it still hears them.
    Asymmetric,
    /// Random two-group partitions come and go every few hundred milliseconds.
    Flapping,
}

impl PartitionMode {
    /// The name used in profiles and reports.
    pub fn name(self) -> &'static str {
        match self {
            PartitionMode::None => "none",
            PartitionMode::Halves => "halves",
            PartitionMode::IsolateOne => "isolate-one",
            PartitionMode::Asymmetric => "asymmetric",
            PartitionMode::Flapping => "flapping",
        }
    }
}

/// Every knob of one simulated run, drawn from its seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultProfile {
    /// The seed everything else derives from.
    pub seed: u64,
    /// Number of replicas (4 or 7).
    pub n: usize,
    /// Number of clients.
    pub clients: usize,
    /// Operations each client issues.
    pub requests_per_client: usize,
    /// Whether operations arrive over time (open loop) or are all queued at
    /// the start (closed loop: each client issues the next when one completes).
    pub open_loop: bool,
    /// Mean gap between a client's arrivals in open loop, in milliseconds.
    pub arrival_gap_ms: u64,
    /// Probability (per mille) that a message is lost during the safety phase.
    pub loss_per_mille: u64,
    /// Probability (per mille) that a message is delivered twice.
    pub duplicate_per_mille: u64,
    /// Smallest one-way delay in milliseconds.
    pub min_delay_ms: u64,
    /// Largest usual one-way delay in milliseconds; reordering comes from the spread.
    pub max_delay_ms: u64,
    /// Probability (per mille) of a long-tail delay of up to ten times the largest usual one.
    pub tail_per_mille: u64,
    /// How the network is partitioned.
    pub partition: PartitionMode,
    /// When the partition starts and ends, in milliseconds of the safety phase.
    pub partition_window_ms: (u64, u64),
    /// Crash-and-restart episodes of replicas, one at a time; each restart
    /// recovers from the replica's disk (what it synced) or, with
    /// probability one half in runs without traitors, has lost its disk.
    pub crash_restarts: usize,
    /// When every replica crashes at once (a power cut), in milliseconds of
    /// the safety phase, and how long they stay down before all restart from
    /// their disks; `None` for most seeds.
    pub whole_cluster_crash: Option<(u64, u64)>,
    /// Length of the safety phase (faults on), in milliseconds.
    pub safety_ms: u64,
    /// Protocol parameters of every replica.
    pub protocol: ProtocolConfig,
    /// How long clients wait before re-sending to every replica.
    pub client_retry_ms: u64,
}

impl FaultProfile {
    /// The profile of `seed`. Each knob draws from its own stream, so adding a
    /// knob does not change the others.
    pub fn from_seed(seed: u64) -> FaultProfile {
        let mut shape = Rng::stream(seed, "profile/shape");
        let mut net = Rng::stream(seed, "profile/network");
        let mut part = Rng::stream(seed, "profile/partition");
        let mut proto = Rng::stream(seed, "profile/protocol");
        let n = if shape.chance(1, 2) { 4 } else { 7 };
        let safety_ms = 1_000 + shape.below(3_000);
        let partition = match part.below(6) {
            0 | 1 => PartitionMode::None,
            2 => PartitionMode::Halves,
            3 => PartitionMode::IsolateOne,
            4 => PartitionMode::Asymmetric,
            _ => PartitionMode::Flapping,
        };
        let start = part.below(safety_ms / 2);
        let end = start + 200 + part.below(safety_ms - start);
        let max_delay_ms = 2 + net.below(30);
        let checkpoint_interval = 4 + proto.below(8);
        let mut power = Rng::stream(seed, "profile/whole-cluster-crash");
        let whole_cluster_crash = power.chance(1, 4).then(|| (power.below(safety_ms), 1 + power.below(200)));
        FaultProfile {
            seed,
            n,
            clients: 1 + shape.below(4) as usize,
            requests_per_client: 5 + shape.below(26) as usize,
            open_loop: shape.chance(1, 3),
            arrival_gap_ms: 20 + shape.below(200),
            loss_per_mille: if net.chance(1, 4) { 0 } else { net.below(80) },
            duplicate_per_mille: net.below(40),
            min_delay_ms: 1 + net.below(2),
            max_delay_ms,
            tail_per_mille: net.below(20),
            partition,
            partition_window_ms: (start, end.min(safety_ms)),
            crash_restarts: shape.below(3) as usize,
            whole_cluster_crash,
            safety_ms,
            protocol: ProtocolConfig {
                max_batch_size: 1 + proto.below(8) as usize,
                batch_delay_ms: proto.below(4),
                checkpoint_interval,
                watermark_window: checkpoint_interval * (2 + proto.below(3)),
                view_change_timeout_ms: 300 + proto.below(300),
                max_view_change_backoff: 3,
                view_term_ms: 0,
                status_interval_ms: 100 + proto.below(100),
                state_chunk_bytes: 64 + proto.below(512) as usize,
                max_state_bytes: 1 << 20,
                max_pending_per_client: 8,
                max_future_messages_per_replica: 256,
                ..ProtocolConfig::default()
            },
            client_retry_ms: 400 + proto.below(400),
        }
    }

    /// The quorum system of the profile's replicas.
    pub fn quorum(&self) -> Quorum {
        Quorum::new(self.n).unwrap_or_else(|| unreachable!("profiles have 4 or 7 replicas"))
    }

    /// How long after healing every request must have completed, derived from
    /// the timeouts: the client's re-send, two status rounds for lost
    /// NEW-VIEWs and commit proofs, and up to f+2 view changes each waiting
    /// for a request timeout and the longest backed-off NEW-VIEW wait, plus
    /// one second for message delays and batching.
    pub fn liveness_bound_ms(&self) -> u64 {
        let p = &self.protocol;
        let longest_wait = p.view_change_timeout_ms << p.max_view_change_backoff;
        let view_changes = (self.quorum().f() as u64 + 2) * (p.view_change_timeout_ms + longest_wait);
        self.client_retry_ms + 2 * p.status_interval_ms + view_changes + 1_000
    }
}

impl fmt::Display for FaultProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = self.quorum();
        write!(
            f,
            "n={} f={} clients={} requests/client={} {} loss={}‰ dup={}‰ delay={}..{}ms tail={}‰ partition={}",
            q.n(),
            q.f(),
            self.clients,
            self.requests_per_client,
            if self.open_loop { format!("open-loop(gap {}ms)", self.arrival_gap_ms) } else { "closed-loop".into() },
            self.loss_per_mille,
            self.duplicate_per_mille,
            self.min_delay_ms,
            self.max_delay_ms,
            self.tail_per_mille,
            self.partition.name(),
        )?;
        if self.partition != PartitionMode::None {
            write!(f, "[{}..{}ms]", self.partition_window_ms.0, self.partition_window_ms.1)?;
        }
        if let Some((at, down)) = self.whole_cluster_crash {
            write!(f, " power-cut={at}ms+{down}ms")?;
        }
        let p = &self.protocol;
        write!(
            f,
            " crashes={} safety={}ms batch={}/{}ms K={} L={} vc-timeout={}ms",
            self.crash_restarts,
            self.safety_ms,
            p.max_batch_size,
            p.batch_delay_ms,
            p.checkpoint_interval,
            p.watermark_window,
            p.view_change_timeout_ms
        )
    }
}
