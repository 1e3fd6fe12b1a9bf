//! The replicated application: what the protocol orders operations for.

/// Why an application could not restore a snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot restore snapshot: {0}")]
pub struct AppError(pub String);

/// A deterministic state machine replicated by PBFT.
///
/// Every replica applies the same operations in the same order; the protocol
/// is only correct if `execute` gives the same result and the same next state
/// on every replica for the same state and operation.
pub trait ReplicatedStateMachine {
    /// Applies `op` and returns the result sent to the client. Deterministic:
    /// no clocks, randomness or iteration over unordered maps.
    fn execute(&mut self, op: &[u8]) -> Vec<u8>;
    /// Answers a read-only operation from the current state. Must not change
    /// anything (it takes `&self`) and be deterministic like `execute`.
    /// Replicas answer queries without ordering them when they can (the
    /// read-only optimisation), and order them when their answers disagree.
    fn query(&self, op: &[u8]) -> Vec<u8>;
    /// The whole state as bytes, taken at checkpoints; replicas agree on its digest.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with one taken by `snapshot`.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError>;
}
