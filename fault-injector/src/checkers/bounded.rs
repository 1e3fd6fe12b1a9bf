//! Bounded resources: every buffer a peer can grow stays under its cap.

use super::{FirstViolation, Verdict};
use pbft_core::{BufferUsage, ReplicaId, Time};

/// Checks buffer bounds after every event.
#[derive(Debug, Default)]
pub struct BoundedResources {
    peak: BufferUsage,
    first: FirstViolation,
}

impl BoundedResources {
    /// `replica`'s buffers are at `usage` under `limits`.
    pub fn observe(&mut self, at: Time, replica: ReplicaId, usage: BufferUsage, limits: BufferUsage) {
        let fields = [
            ("log slots", usage.log_slots, limits.log_slots),
            ("log messages", usage.log_messages, limits.log_messages),
            ("prepared certificates", usage.prepared_certs, limits.prepared_certs),
            ("commit proofs", usage.commit_proofs, limits.commit_proofs),
            ("checkpoint messages", usage.checkpoint_messages, limits.checkpoint_messages),
            ("view-change messages", usage.view_changes, limits.view_changes),
            ("future-view messages", usage.future_messages, limits.future_messages),
            ("pending requests", usage.pending_requests, limits.pending_requests),
            ("state-transfer bytes", usage.transfer_bytes, limits.transfer_bytes),
        ];
        for (name, used, cap) in fields {
            if used > cap {
                self.first
                    .record(|| format!("at {} ms {replica} holds {used} {name}, cap {cap}", at.as_millis()));
            }
        }
        let p = &mut self.peak;
        p.log_slots = p.log_slots.max(usage.log_slots);
        p.log_messages = p.log_messages.max(usage.log_messages);
        p.prepared_certs = p.prepared_certs.max(usage.prepared_certs);
        p.commit_proofs = p.commit_proofs.max(usage.commit_proofs);
        p.checkpoint_messages = p.checkpoint_messages.max(usage.checkpoint_messages);
        p.view_changes = p.view_changes.max(usage.view_changes);
        p.future_messages = p.future_messages.max(usage.future_messages);
        p.pending_requests = p.pending_requests.max(usage.pending_requests);
        p.transfer_bytes = p.transfer_bytes.max(usage.transfer_bytes);
    }

    /// The largest occupancy of each buffer seen on any replica.
    pub fn peak(&self) -> BufferUsage {
        self.peak
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("bounded-resources")
    }
}
