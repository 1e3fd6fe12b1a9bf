//! Agreement: no two honest replicas execute different batches at one
//! sequence number, and stable checkpoints agree on the state digest.

use super::{FirstViolation, Verdict};
use pbft_core::{Digest, ReplicaId, SeqNum, Time};
use std::collections::BTreeMap;

/// Checks agreement online.
#[derive(Debug, Default)]
pub struct Agreement {
    batches: BTreeMap<SeqNum, (ReplicaId, Digest)>,
    checkpoints: BTreeMap<SeqNum, (ReplicaId, Digest)>,
    first: FirstViolation,
    conflict_seq: Option<SeqNum>,
}

impl Agreement {
    /// An honest replica executed batch `digest` at `seq`.
    pub fn on_executed(&mut self, at: Time, replica: ReplicaId, seq: SeqNum, digest: Digest) {
        let (first_replica, first_digest) = *self.batches.entry(seq).or_insert((replica, digest));
        if first_digest != digest {
            self.conflict_seq.get_or_insert(seq);
            self.first.record(|| {
                format!(
                    "at {} ms {replica} executed batch {digest:?} at seq {seq}, but {first_replica} executed {first_digest:?}",
                    at.as_millis()
                )
            });
        }
    }

    /// An honest replica's checkpoint at `seq` became stable with `state_digest`.
    pub fn on_stable_checkpoint(&mut self, at: Time, replica: ReplicaId, seq: SeqNum, state_digest: Digest) {
        let (first_replica, first_digest) = *self.checkpoints.entry(seq).or_insert((replica, state_digest));
        if first_digest != state_digest {
            self.first.record(|| {
                format!(
                    "at {} ms {replica} has stable checkpoint {seq} with state {state_digest:?}, but {first_replica} has {first_digest:?}",
                    at.as_millis()
                )
            });
        }
    }

    /// The first sequence number at which honest replicas diverged.
    pub fn conflicting_seq(&self) -> Option<SeqNum> {
        self.conflict_seq
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("agreement")
    }
}
