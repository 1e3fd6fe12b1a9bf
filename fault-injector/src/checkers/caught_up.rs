//! A damaged disk is repaired, with no operator step: every honest replica
//! that restarted from a lost or damaged disk ends the run out of its
//! recovering mode, having executed as far as the furthest honest replica
//! (issue 20; Viewstamped Replication Revisited §4.3: a recovering replica
//! returns to normal status once it has learned the state from a quorum).

use super::{FirstViolation, Verdict};
use pbft_core::{ReplicaId, SeqNum};
use std::collections::{BTreeMap, BTreeSet};

/// Where one replica stands at the end of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndState {
    /// Still in the recovering mode of a lost or damaged disk.
    pub recovering: bool,
    /// The last sequence number it executed.
    pub last_executed: SeqNum,
}

/// Remembers which replicas restarted from a damaged disk; judges them at
/// the end.
#[derive(Debug, Default)]
pub struct CaughtUp {
    damaged: BTreeSet<ReplicaId>,
    violation: FirstViolation,
}

impl CaughtUp {
    /// `replica` restarted from a lost or damaged disk.
    pub fn on_damaged(&mut self, replica: ReplicaId) {
        self.damaged.insert(replica);
    }

    /// At the end of the run: `ends` holds every honest replica's state.
    pub fn judge(&mut self, ends: &BTreeMap<ReplicaId, EndState>) {
        let furthest = ends.values().map(|e| e.last_executed).max().unwrap_or(0);
        for replica in &self.damaged {
            let Some(end) = ends.get(replica) else { continue };
            if end.recovering {
                self.violation.record(|| {
                    format!("{replica} restarted from a damaged disk and was still recovering at the end")
                });
            } else if end.last_executed < furthest {
                self.violation.record(|| {
                    format!(
                        "{replica} restarted from a damaged disk and ended at sequence number {}, \
                         behind the furthest honest replica at {furthest}",
                        end.last_executed
                    )
                });
            }
        }
    }

    /// The verdict over the run.
    pub fn verdict(&self) -> Verdict {
        self.violation.verdict("caught-up")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(states: &[(u32, bool, SeqNum)]) -> BTreeMap<ReplicaId, EndState> {
        states
            .iter()
            .map(|(id, recovering, last_executed)| {
                (ReplicaId(*id), EndState { recovering: *recovering, last_executed: *last_executed })
            })
            .collect()
    }

    #[test]
    fn a_damaged_replica_that_caught_up_passes() {
        let mut checker = CaughtUp::default();
        checker.on_damaged(ReplicaId(2));
        checker.judge(&ends(&[(0, false, 9), (1, false, 9), (2, false, 9), (3, false, 8)]));
        assert!(checker.verdict().passed(), "{:?}", checker.verdict());
    }

    #[test]
    fn a_damaged_replica_still_recovering_fails() {
        let mut checker = CaughtUp::default();
        checker.on_damaged(ReplicaId(2));
        checker.judge(&ends(&[(0, false, 9), (1, false, 9), (2, true, 9)]));
        assert!(checker.verdict().violation.is_some_and(|v| v.contains("still recovering")));
    }

    #[test]
    fn a_damaged_replica_left_behind_fails() {
        let mut checker = CaughtUp::default();
        checker.on_damaged(ReplicaId(1));
        checker.judge(&ends(&[(0, false, 9), (1, false, 4), (2, false, 9)]));
        assert!(checker.verdict().violation.is_some_and(|v| v.contains("ended at sequence number 4")));
    }

    /// Replicas whose disks were never damaged are not judged here (a
    /// replica that lagged for other reasons is liveness's business).
    #[test]
    fn undamaged_laggards_are_not_judged() {
        let mut checker = CaughtUp::default();
        checker.judge(&ends(&[(0, false, 9), (1, false, 4), (2, true, 9)]));
        assert!(checker.verdict().passed());
    }
}
