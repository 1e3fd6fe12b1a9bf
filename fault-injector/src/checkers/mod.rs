//! Property checkers, one per file, run on honest replicas after every event
//! and at the end of a run. Each keeps the first violation it saw.

mod agreement;
mod app_invariant;
mod bounded;
mod caught_up;
mod exactly_once;
mod linearizability;
mod liveness;
mod one_vote;
mod total_order;
mod validity;

pub use agreement::Agreement;
pub use app_invariant::AppInvariant;
pub use bounded::BoundedResources;
pub use caught_up::{CaughtUp, EndState};
pub use exactly_once::ExactlyOnce;
pub use linearizability::Linearizability;
pub use liveness::Liveness;
pub use one_vote::{OneVote, Vote};
pub use total_order::TotalOrder;
pub use validity::Validity;

/// The outcome of one checker over a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The property.
    pub name: &'static str,
    /// The first violation seen, if any.
    pub violation: Option<String>,
}

impl Verdict {
    /// Whether the property held.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

/// Keeps the first violation of a property.
#[derive(Clone, Debug, Default)]
pub(crate) struct FirstViolation(Option<String>);

impl FirstViolation {
    pub(crate) fn record(&mut self, violation: impl FnOnce() -> String) {
        if self.0.is_none() {
            self.0 = Some(violation());
        }
    }

    pub(crate) fn verdict(&self, name: &'static str) -> Verdict {
        Verdict { name, violation: self.0.clone() }
    }
}
