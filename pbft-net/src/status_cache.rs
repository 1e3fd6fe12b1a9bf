//! A replica's answer to status queries, made at most once per
//! [`STATUS_REFRESH_MS`] (issue 21, point 3). Making it hashes the whole
//! application state, and any client may ask as often as it likes: without
//! the cache a client sending queries in a loop made the replica hash its
//! state once per query. An answer is at most that old.

use crate::link::{frame_of, Frame};
use crate::wire::{NodeStatus, Wire};
use pbft_core::Time;

/// How long one status answer is reused, in milliseconds.
pub const STATUS_REFRESH_MS: u64 = 100;

/// The last status answer, encoded, and when it was made.
#[derive(Debug, Default)]
pub(crate) struct StatusCache {
    last: Option<(Time, Frame)>,
}

impl StatusCache {
    /// The answer to a status query at `now`: the last one if it is younger
    /// than [`STATUS_REFRESH_MS`], else a new one from `make`.
    pub(crate) fn answer(&mut self, now: Time, make: impl FnOnce() -> NodeStatus) -> Frame {
        if let Some((made, frame)) = &self.last {
            if now.0 < made.0.saturating_add(STATUS_REFRESH_MS) {
                return frame.clone();
            }
        }
        let frame = frame_of(&Wire::Status(make()));
        self.last = Some((now, frame.clone()));
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Queries within one refresh interval are answered from one report;
    /// the first query after it makes a new one.
    #[test]
    fn a_status_is_made_once_per_refresh_interval_however_often_asked() {
        let made = Cell::new(0u64);
        let make = || {
            made.set(made.get() + 1);
            NodeStatus { last_executed: made.get(), ..NodeStatus::default() }
        };
        let mut cache = StatusCache::default();
        let first = cache.answer(Time(1_000), make);
        for ms in 1_000..1_000 + STATUS_REFRESH_MS {
            assert_eq!(cache.answer(Time(ms), make), first);
        }
        assert_eq!(made.get(), 1);
        let later = cache.answer(Time(1_000 + STATUS_REFRESH_MS), make);
        assert_ne!(later, first);
        assert_eq!(made.get(), 2);
    }
}
