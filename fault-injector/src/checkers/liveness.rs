//! Liveness: after the network heals, every request completes within a bound
//! derived from the timeouts, and the cluster stops changing views.

use super::{FirstViolation, Verdict};
use pbft_core::Time;

/// Judges the liveness phase from what the runner measured.
#[derive(Debug, Default)]
pub struct Liveness {
    first: FirstViolation,
    summary: String,
}

impl Liveness {
    /// `completed` of `total` requests finished, the last at `last_completion`;
    /// all had to by `deadline`. `newer_views_in_quiet_window` counts honest
    /// replicas entering a view newer than any entered before the quiet window
    /// that followed.
    pub fn judge(
        &mut self,
        completed: usize,
        total: usize,
        last_completion: Option<Time>,
        deadline: Time,
        newer_views_in_quiet_window: usize,
    ) {
        let last = last_completion.map_or(0, Time::as_millis);
        self.summary =
            format!("{completed}/{total} requests, last at {last} ms, bound {} ms", deadline.as_millis());
        if completed < total {
            self.first.record(|| {
                format!("only {completed} of {total} requests completed by {} ms", deadline.as_millis())
            });
        }
        if newer_views_in_quiet_window > 0 {
            self.first.record(|| {
                format!("replicas entered a newer view {newer_views_in_quiet_window} times after every request completed")
            });
        }
    }

    /// What was measured, for the report.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("liveness")
    }
}
