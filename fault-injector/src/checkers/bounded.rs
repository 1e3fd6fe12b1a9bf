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
        if let Some((name, used, cap)) = usage.first_over(&limits) {
            self.first
                .record(|| format!("at {} ms {replica} holds {used} {name}, cap {cap}", at.as_millis()));
        }
        self.peak = self.peak.max(usage);
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
