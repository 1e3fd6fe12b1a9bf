//! Total order: each honest replica executes sequence numbers 1, 2, 3, …
//! without gaps (except a jump to a checkpoint whose state it installed), so
//! (with agreement) its log is a prefix of the canonical log.

use super::{FirstViolation, Verdict};
use pbft_core::{ReplicaId, SeqNum, Time};
use std::collections::BTreeMap;

/// Checks total order online.
#[derive(Debug, Default)]
pub struct TotalOrder {
    last: BTreeMap<ReplicaId, SeqNum>,
    first: FirstViolation,
}

impl TotalOrder {
    /// An honest replica executed `seq`.
    pub fn on_executed(&mut self, at: Time, replica: ReplicaId, seq: SeqNum) {
        let last = self.last.entry(replica).or_insert(0);
        if seq != *last + 1 {
            let expected = *last + 1;
            self.first.record(|| {
                format!(
                    "at {} ms {replica} executed seq {seq} after {}, expected {expected}",
                    at.as_millis(),
                    expected - 1
                )
            });
        }
        *last = seq;
    }

    /// An honest replica installed the state of checkpoint `seq`: it continues after it.
    pub fn on_state_transferred(&mut self, replica: ReplicaId, seq: SeqNum) {
        let last = self.last.entry(replica).or_insert(0);
        *last = (*last).max(seq);
    }

    /// `replica` restarted from its disk with its state as of `seq`: it continues after it.
    pub fn on_recovered(&mut self, replica: ReplicaId, seq: SeqNum) {
        self.last.insert(replica, seq);
    }

    /// `replica` restarted with empty memory: it starts again from sequence number 1.
    pub fn forget(&mut self, replica: ReplicaId) {
        self.last.remove(&replica);
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("total-order")
    }
}
