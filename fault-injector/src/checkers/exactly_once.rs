//! Exactly-once: no honest replica executes a (client, timestamp) twice.

use super::{FirstViolation, Verdict};
use pbft_core::{ClientId, ExecutedRequest, ReplicaId, Time};
use std::collections::BTreeSet;

/// Checks exactly-once online.
#[derive(Debug, Default)]
pub struct ExactlyOnce {
    seen: BTreeSet<(ReplicaId, ClientId, u64)>,
    first: FirstViolation,
}

impl ExactlyOnce {
    /// An honest replica executed `requests`.
    pub fn on_executed(&mut self, at: Time, replica: ReplicaId, requests: &[ExecutedRequest]) {
        for request in requests {
            if !self.seen.insert((replica, request.client, request.timestamp)) {
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

    /// `replica` restarted with empty memory: what it executed before is forgotten.
    pub fn forget(&mut self, replica: ReplicaId) {
        self.seen.retain(|(r, _, _)| *r != replica);
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("exactly-once")
    }
}
