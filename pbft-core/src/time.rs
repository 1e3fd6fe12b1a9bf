//! The core's notion of time: a monotonic instant supplied by the host.

use serde::{Deserialize, Serialize};
use std::ops::Add;

/// A monotonic instant in milliseconds since an origin the host chooses.
///
/// The core never reads a clock; every input carries the current `Time`, so the
/// same inputs give the same outputs under the simulator and under a real driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time(pub u64);

impl Time {
    /// The origin of time.
    pub const ZERO: Time = Time(0);

    /// Milliseconds since the origin.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `ms` milliseconds, saturating instead of overflowing.
    pub fn plus_millis(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

impl Add<u64> for Time {
    type Output = Time;
    fn add(self, ms: u64) -> Time {
        self.plus_millis(ms)
    }
}
