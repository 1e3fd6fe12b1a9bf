//! The smallest replicated application: one signed 64-bit counter.

use pbft_core::typed::{decode_output, encode_request, StateMachine};
use serde::{Deserialize, Serialize};

/// A counter. An operation adds an `i64` (wrapping) and returns the new
/// value; the query `()` returns the value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter(pub i64);

impl Counter {
    /// The operation bytes that add `delta`.
    pub fn add(delta: i64) -> Vec<u8> {
        encode_request(&delta).unwrap_or_default()
    }

    /// The value a result carries.
    pub fn value(result: &[u8]) -> Option<i64> {
        decode_output(result).ok()
    }
}

impl StateMachine for Counter {
    type Op = i64;
    type Query = ();
    type Output = i64;

    fn execute(&mut self, delta: i64) -> i64 {
        self.0 = self.0.wrapping_add(delta);
        self.0
    }

    fn query(&self, (): ()) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::ReplicatedStateMachine;

    #[test]
    fn adds_reads_and_restores() {
        let mut counter = Counter::default();
        assert_eq!(Counter::value(&ReplicatedStateMachine::execute(&mut counter, &Counter::add(5))), Some(5));
        assert_eq!(
            Counter::value(&ReplicatedStateMachine::execute(&mut counter, &Counter::add(-7))),
            Some(-2)
        );
        assert_eq!(Counter::value(&ReplicatedStateMachine::execute(&mut counter, b"junk")), None);
        assert_eq!(Counter::value(&ReplicatedStateMachine::query(&counter, &[])), Some(-2));
        let mut copy = Counter::default();
        copy.restore(&counter.snapshot()).unwrap();
        assert_eq!(copy, counter);
        assert!(copy.restore(b"short").is_err());
    }
}
