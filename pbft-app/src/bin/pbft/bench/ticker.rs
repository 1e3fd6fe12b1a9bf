//! The open loop's schedule: the instants at which `pbft bench --rate`
//! issues its operations, kept by a thread of its own.
//!
//! tokio's timers have a granularity of one millisecond, so a tokio
//! interval fires up to a millisecond after each instant, and every
//! open-loop latency, counted from the operation's scheduled instant, carried
//! that lateness (BENCHMARKS.md has the before and after). A thread sleeping
//! until each instant wakes within the kernel's timer slack instead.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Instants handed over but not yet taken; when the load generator falls
/// this far behind, the ticker waits for it, and the instants it then hands
/// over are still the scheduled ones, so the lateness counts in the latency.
const BACKLOG: usize = 1024;

/// Starts the schedule `start`, `start + gap`, ... for every instant before
/// `start + duration`, each sent on the returned channel once it has come.
pub fn start(start: Instant, gap: Duration, duration: Duration) -> (mpsc::Receiver<Instant>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(BACKLOG);
    let ticker = std::thread::spawn(move || {
        for scheduled in schedule(start, gap, duration) {
            std::thread::sleep(scheduled.saturating_duration_since(Instant::now()));
            if sender.blocking_send(scheduled).is_err() {
                return;
            }
        }
    });
    (receiver, ticker)
}

/// The instants `start + i * gap` before `start + duration`, at most
/// `u32::MAX` of them.
fn schedule(start: Instant, gap: Duration, duration: Duration) -> impl ExactSizeIterator<Item = Instant> {
    let gap = gap.max(Duration::from_nanos(1));
    let count = u32::try_from(duration.as_nanos().div_ceil(gap.as_nanos())).unwrap_or(u32::MAX);
    (0..count).map(move |i| start + gap * i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_covers_the_duration_at_the_given_gap() {
        let start = Instant::now();
        let ticks: Vec<Instant> =
            schedule(start, Duration::from_millis(1), Duration::from_millis(10)).collect();
        assert_eq!(ticks.len(), 10);
        for (i, tick) in ticks.iter().enumerate() {
            assert_eq!(*tick - start, Duration::from_millis(i as u64));
        }
    }

    #[test]
    fn a_schedule_ends_before_its_duration_and_is_capped() {
        let start = Instant::now();
        let thirds: Vec<Instant> =
            schedule(start, Duration::from_nanos(333), Duration::from_nanos(1000)).collect();
        assert_eq!(thirds.last().map(|t| *t - start), Some(Duration::from_nanos(999)));
        assert_eq!(thirds.len(), 4);
        assert_eq!(
            schedule(start, Duration::from_nanos(1), Duration::from_secs(3600)).len(),
            u32::MAX as usize
        );
        assert_eq!(schedule(start, Duration::ZERO, Duration::from_millis(1)).len(), 1_000_000);
    }

    #[test]
    fn each_instant_is_sent_once_it_has_come() {
        let start = Instant::now();
        let (mut receiver, ticker) = super::start(start, Duration::from_millis(2), Duration::from_millis(20));
        let mut received = Vec::new();
        while let Some(scheduled) = receiver.blocking_recv() {
            assert!(Instant::now() >= scheduled, "an instant was sent before it came");
            received.push(scheduled - start);
        }
        ticker.join().expect("the ticker thread ends with the schedule");
        let expected: Vec<Duration> = (0..10).map(|i| Duration::from_millis(2 * i)).collect();
        assert_eq!(received, expected);
    }
}
