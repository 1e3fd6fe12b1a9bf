//! What a link between two hosts does to the packets on it.

use anyhow::{bail, Context, Result};
use fault_injector::Rng;
use std::time::Duration;

/// One direction of a link: every packet is dropped with probability
/// `loss`, else delayed by `delay` ± a uniform `jitter` (never below zero).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link {
    /// The one-way delay.
    pub delay: Duration,
    /// The largest deviation from `delay`, either way.
    pub jitter: Duration,
    /// The probability of loss, from 0 to 1.
    pub loss: f64,
}

impl Link {
    /// A link that delays by `delay` ± `jitter` and loses `loss_percent` % of packets.
    pub fn wan(delay: Duration, jitter: Duration, loss_percent: f64) -> Link {
        Link { delay, jitter, loss: loss_percent / 100.0 }
    }

    /// Whether this link changes anything (a perfect link needs no queue).
    pub fn is_perfect(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.loss <= 0.0
    }

    /// The spec `pbft-netem --queue N=...` reads: `DELAY_US,JITTER_US,LOSS_PPM`.
    pub fn queue_spec(&self) -> String {
        let ppm = (self.loss.clamp(0.0, 1.0) * 1e6).round() as u64;
        format!("{},{},{ppm}", self.delay.as_micros(), self.jitter.as_micros())
    }

    /// Reads [`Link::queue_spec`]'s format back.
    pub fn from_queue_spec(spec: &str) -> Result<Link> {
        let fields: Vec<&str> = spec.split(',').collect();
        let [delay, jitter, loss] = fields[..] else {
            bail!("a link is DELAY_US,JITTER_US,LOSS_PPM, not {spec:?}");
        };
        let number =
            |text: &str, what: &str| text.parse::<u64>().with_context(|| format!("{what} in {spec:?}"));
        let loss = number(loss, "loss (parts per million)")?;
        if loss > 1_000_000 {
            bail!("loss {loss} ppm is over 1,000,000 in {spec:?}");
        }
        Ok(Link {
            delay: Duration::from_micros(number(delay, "delay (µs)")?),
            jitter: Duration::from_micros(number(jitter, "jitter (µs)")?),
            loss: loss as f64 / 1e6,
        })
    }

    /// Draws whether one packet is lost.
    pub fn drops(&self, rng: &mut Rng) -> bool {
        self.loss > 0.0 && rng.chance((self.loss * 1e6).round() as u64, 1_000_000)
    }

    /// Draws one packet's delay.
    pub fn sample_delay(&self, rng: &mut Rng) -> Duration {
        let jitter = self.jitter.as_micros() as u64;
        if jitter == 0 {
            return self.delay;
        }
        let offset = rng.below(2 * jitter + 1);
        (self.delay + Duration::from_micros(offset)).saturating_sub(self.jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec the harness writes is the link pbft-netem reads.
    #[test]
    fn queue_specs_round_trip() {
        let link = Link::wan(Duration::from_millis(25), Duration::from_millis(5), 1.0);
        assert_eq!(link.queue_spec(), "25000,5000,10000");
        assert_eq!(Link::from_queue_spec(&link.queue_spec()).unwrap(), link);
        assert!(Link::from_queue_spec("1,2").is_err());
        assert!(Link::from_queue_spec("1,2,2000000").is_err());
    }

    /// Delays stay within delay ± jitter, cover both sides, and loss is near its rate.
    #[test]
    fn draws_follow_the_link() {
        let link = Link::wan(Duration::from_millis(25), Duration::from_millis(5), 10.0);
        let mut rng = Rng::new(7);
        let delays: Vec<Duration> = (0..10_000).map(|_| link.sample_delay(&mut rng)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(20) && *d <= Duration::from_millis(30)));
        assert!(delays.iter().any(|d| *d < Duration::from_millis(22)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(28)));
        let lost = (0..10_000).filter(|_| link.drops(&mut rng)).count();
        assert!((800..1_200).contains(&lost), "lost {lost} of 10,000 at 10 %");
    }
}
