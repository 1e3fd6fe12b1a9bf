//! The network of the safety phase: loss, duplication, delay spread and long
//! tails (which reorder), and partitions, each drawn from its own seeded stream.

use super::profile::{FaultProfile, PartitionMode};
use crate::cluster::NetworkModel;
use crate::rng::Rng;
use crate::{Envelope, NodeId};
use pbft_core::{ReplicaId, Time};
use std::collections::BTreeSet;

/// A faulty network following a profile; [`FaultyNetwork::heal`] turns the faults off.
pub struct FaultyNetwork {
    profile: FaultProfile,
    loss: Rng,
    duplicate: Rng,
    delay: Rng,
    /// One side of the partition (halves), or the cut-off replica (isolate-one, asymmetric).
    group: BTreeSet<ReplicaId>,
    flap_period_ms: u64,
    healed: bool,
}

impl FaultyNetwork {
    /// The network of `profile`'s safety phase.
    pub fn new(profile: &FaultProfile) -> FaultyNetwork {
        let mut pick = Rng::stream(profile.seed, "network/partition-group");
        let n = profile.n as u64;
        let group = match profile.partition {
            PartitionMode::IsolateOne | PartitionMode::Asymmetric => {
                std::iter::once(ReplicaId(pick.below(n) as u32)).collect()
            }
            _ => (0..n as u32).filter(|_| pick.chance(1, 2)).map(ReplicaId).collect(),
        };
        FaultyNetwork {
            profile: profile.clone(),
            loss: Rng::stream(profile.seed, "network/loss"),
            duplicate: Rng::stream(profile.seed, "network/duplicate"),
            delay: Rng::stream(profile.seed, "network/delay"),
            group,
            flap_period_ms: 150 + pick.below(300),
            healed: false,
        }
    }

    /// From now on every message arrives once, with the usual delay spread.
    pub fn heal(&mut self) {
        self.healed = true;
    }

    fn partitioned(&mut self, from: NodeId, to: NodeId, at: Time) -> bool {
        let (NodeId::Replica(a), NodeId::Replica(b)) = (from, to) else { return false };
        let (start, end) = self.profile.partition_window_ms;
        if at < Time(start) || at >= Time(end) {
            return false;
        }
        match self.profile.partition {
            PartitionMode::None => false,
            PartitionMode::Halves | PartitionMode::IsolateOne => {
                self.group.contains(&a) != self.group.contains(&b)
            }
            PartitionMode::Asymmetric => self.group.contains(&a),
            PartitionMode::Flapping => {
                let epoch = at.as_millis() / self.flap_period_ms;
                if epoch % 2 == 1 {
                    return false;
                }
                // Each partitioned epoch draws a fresh split, a function of the epoch alone.
                let seed = self.profile.seed;
                let side = |r: ReplicaId| {
                    Rng::stream(seed ^ epoch.wrapping_mul(0x9E37_79B9) ^ u64::from(r.0), "network/flap")
                        .chance(1, 2)
                };
                side(a) != side(b)
            }
        }
    }

    fn one_delay(&mut self) -> u64 {
        let p = &self.profile;
        let spread = p.max_delay_ms.saturating_sub(p.min_delay_ms) + 1;
        let base = p.min_delay_ms + self.delay.below(spread);
        if !self.healed && self.delay.below(1000) < p.tail_per_mille {
            base + self.delay.below(9 * p.max_delay_ms + 1)
        } else {
            base
        }
    }
}

impl NetworkModel for FaultyNetwork {
    fn route(&mut self, envelope: &Envelope) -> Vec<u64> {
        if self.healed {
            return vec![self.one_delay()];
        }
        if self.partitioned(envelope.from, envelope.to, envelope.sent_at) {
            return Vec::new();
        }
        if self.loss.below(1000) < self.profile.loss_per_mille {
            return Vec::new();
        }
        let mut delays = vec![self.one_delay()];
        if self.duplicate.below(1000) < self.profile.duplicate_per_mille {
            delays.push(self.one_delay());
        }
        delays
    }
}
