//! The smallest replicated application: one signed 64-bit counter.

use fault_injector::sim::SimApp;
use fault_injector::Rng;
use pbft_core::{AppError, ClientId, ReplicatedStateMachine};

/// A counter. An operation is 8 bytes, a big-endian `i64` to add (0 reads);
/// the result is the new value as 8 big-endian bytes. Anything else leaves
/// the counter alone and returns it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter(pub i64);

impl Counter {
    /// The operation that adds `delta`.
    pub fn add(delta: i64) -> Vec<u8> {
        delta.to_be_bytes().to_vec()
    }

    /// The value a result carries.
    pub fn value(result: &[u8]) -> Option<i64> {
        Some(i64::from_be_bytes(result.try_into().ok()?))
    }
}

impl ReplicatedStateMachine for Counter {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        if let Ok(delta) = <[u8; 8]>::try_from(op) {
            self.0 = self.0.wrapping_add(i64::from_be_bytes(delta));
        }
        self.0.to_be_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        let bytes =
            <[u8; 8]>::try_from(snapshot).map_err(|_| AppError("a counter snapshot is 8 bytes".into()))?;
        self.0 = i64::from_be_bytes(bytes);
        Ok(())
    }
}

/// The simulator's workload: small additions and subtractions, some reads.
impl SimApp for Counter {
    fn random_op(rng: &mut Rng, _client: ClientId, _index: usize) -> Vec<u8> {
        Counter::add(rng.below(21) as i64 - 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_reads_and_restores() {
        let mut counter = Counter::default();
        assert_eq!(Counter::value(&counter.execute(&Counter::add(5))), Some(5));
        assert_eq!(Counter::value(&counter.execute(&Counter::add(-7))), Some(-2));
        assert_eq!(Counter::value(&counter.execute(b"junk")), Some(-2));
        let mut copy = Counter::default();
        copy.restore(&counter.snapshot()).unwrap();
        assert_eq!(copy, counter);
        assert!(copy.restore(b"short").is_err());
    }
}
