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

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("exactly-once")
    }
}
