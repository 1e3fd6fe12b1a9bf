//! Application invariants: the app's own consistency rule (for the bank,
//! that no money is made or lost) holds on every honest replica at every
//! stable checkpoint.

use super::{FirstViolation, Verdict};
use pbft_core::{ReplicaId, SeqNum, Time};

/// Checks the application's invariant at each checkpoint.
#[derive(Debug, Default)]
pub struct AppInvariant {
    checked: u64,
    first: FirstViolation,
}

impl AppInvariant {
    /// `replica`'s checkpoint at `seq` became stable and its application
    /// reported `result` for its invariant.
    pub fn on_checkpoint(&mut self, at: Time, replica: ReplicaId, seq: SeqNum, result: Result<(), String>) {
        self.checked += 1;
        if let Err(problem) = result {
            self.first.record(|| {
                format!("at {} ms {replica}'s state at checkpoint {seq}: {problem}", at.as_millis())
            });
        }
    }

    /// How many checkpoints were checked.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("app-invariant")
    }
}
