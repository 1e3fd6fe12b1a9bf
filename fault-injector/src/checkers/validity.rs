//! Validity: honest replicas only execute requests that clients really
//! signed and sent (null requests carry none).

use super::{FirstViolation, Verdict};
use pbft_core::{Digest, ExecutedRequest, ReplicaId, Request, Time};
use std::collections::BTreeMap;

/// Checks validity online against the requests clients sent.
#[derive(Debug, Default)]
pub struct Validity {
    first: FirstViolation,
}

impl Validity {
    /// An honest replica executed `requests`; `sent` holds every request clients sent.
    pub fn on_executed(
        &mut self,
        at: Time,
        replica: ReplicaId,
        requests: &[ExecutedRequest],
        sent: &BTreeMap<Digest, Request>,
    ) {
        for request in requests {
            let genuine = sent
                .get(&request.digest)
                .is_some_and(|r| r.client == request.client && r.timestamp == request.timestamp);
            if !genuine {
                self.first.record(|| {
                    format!(
                        "at {} ms {replica} executed request ({}, ts {}) that no client sent",
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
        self.first.verdict("validity")
    }
}
