//! Exactly-once: no honest replica executes a (client, timestamp) twice.

use super::{FirstViolation, Verdict};
use pbft_core::{ClientId, ExecutedRequest, ReplicaId, SeqNum, Time};
use std::collections::BTreeMap;

/// Checks exactly-once online.
#[derive(Debug, Default)]
pub struct ExactlyOnce {
    /// Each execution, with the sequence number of its batch.
    seen: BTreeMap<(ReplicaId, ClientId, u64), SeqNum>,
    first: FirstViolation,
}

impl ExactlyOnce {
    /// An honest replica executed `requests` in the batch at `seq`.
    pub fn on_executed(&mut self, at: Time, replica: ReplicaId, seq: SeqNum, requests: &[ExecutedRequest]) {
        for request in requests {
            if self.seen.insert((replica, request.client, request.timestamp), seq).is_some() {
                self.first.record(|| {
                    format!(
                        "at {} ms {replica} executed ({}, ts {}) a second time",
                        at.as_millis(),
                        request.client,
                        request.timestamp
                    )
                });
            }
        }
    }

    /// `replica` restarted from its disk with its state as of `seq`: what it
    /// executed above `seq` is not in that state, and may execute again.
    pub fn on_recovered(&mut self, replica: ReplicaId, seq: SeqNum) {
        self.seen.retain(|(r, _, _), at| *r != replica || *at <= seq);
    }

    /// `replica` restarted with empty memory: what it executed before is forgotten.
    pub fn forget(&mut self, replica: ReplicaId) {
        self.seen.retain(|(r, _, _), _| *r != replica);
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("exactly-once")
    }
}
