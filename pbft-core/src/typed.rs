//! The typed application layer: write a state machine with your own serde
//! operation, query and output types, and get a [`ReplicatedStateMachine`]
//! for free.
//!
//! The state itself is the snapshot (it is serialised with the crate's
//! codec), so keep it in ordered collections (`BTreeMap`, `Vec`), never in
//! `HashMap`, whose iteration order differs between replicas.

use crate::app::{AppError, Page, ReplicatedStateMachine};
use crate::codec::{self, CodecError};
use serde::{de::DeserializeOwned, Serialize};

/// A deterministic state machine over typed operations. Every type that
/// implements it is a [`ReplicatedStateMachine`].
pub trait StateMachine: Serialize + DeserializeOwned {
    /// An operation that may change the state; ordered by the protocol.
    type Op: Serialize + DeserializeOwned;
    /// A read-only question about the state; answered without ordering when
    /// replicas agree.
    type Query: Serialize + DeserializeOwned;
    /// What operations and queries return to the client.
    type Output: Serialize + DeserializeOwned;

    /// Applies `op`. Deterministic: no clocks, randomness or unordered maps.
    fn execute(&mut self, op: Self::Op) -> Self::Output;
    /// Answers `query` from the current state.
    fn query(&self, query: Self::Query) -> Self::Output;
    /// Checks a state received from peers before it replaces this one (for
    /// example that a ledger still balances). Accepts everything by default.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// The state as pages for checkpoints (see
    /// [`ReplicatedStateMachine::snapshot_pages`]). The default is one page
    /// holding the whole serialised state; a large state can keep pages of
    /// its unchanged parts between checkpoints instead.
    fn snapshot_pages(&self) -> Vec<Page> {
        vec![Page::new(whole_state(self))]
    }

    /// The state `snapshot_pages` gave these pages of. The default decodes
    /// the one page of the default `snapshot_pages`. [`validate`](Self::validate)
    /// runs on the result before it replaces anything. Keep what you decode,
    /// not the pages (see [`ReplicatedStateMachine::restore_pages`]).
    fn from_pages(pages: &[Page]) -> Result<Self, String> {
        codec::decode(crate::app::only_page(pages)?.bytes()).map_err(|e| e.to_string())
    }
}

fn whole_state<S: Serialize>(state: &S) -> Vec<u8> {
    match codec::try_encode(state) {
        Ok(bytes) => bytes,
        Err(error) => panic!("the application state does not serialise: {error}"),
    }
}

fn install<S: StateMachine>(target: &mut S, state: Result<S, String>) -> Result<(), AppError> {
    let state = state.map_err(AppError)?;
    state.validate().map_err(AppError)?;
    *target = state;
    Ok(())
}

/// What a replica answers to a typed operation: the output, or why the
/// operation's bytes were not an operation of this application.
pub type Outcome<T> = Result<T, String>;

/// Why a client could not read a typed result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypedError {
    /// The replicas could not decode the operation (client and replicas run
    /// different applications or versions); nothing changed.
    #[error("the replicas refused the operation: {0}")]
    Refused(String),
    /// The agreed result is not an output of this application.
    #[error("the result does not decode: {0}")]
    Result(#[from] CodecError),
}

/// The bytes a client sends for an operation or a query.
pub fn encode_request<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    codec::try_encode(value)
}

/// The typed output in the result bytes f+1 (or 2f+1) replicas agreed on.
pub fn decode_output<T: DeserializeOwned>(result: &[u8]) -> Result<T, TypedError> {
    codec::decode::<Outcome<T>>(result)?.map_err(TypedError::Refused)
}

fn answer<T: Serialize>(outcome: Outcome<T>) -> Vec<u8> {
    match codec::try_encode(&outcome) {
        Ok(bytes) => bytes,
        Err(error) => codec::encode(&Outcome::<()>::Err(format!("the output did not encode: {error}"))),
    }
}

impl<S: StateMachine> ReplicatedStateMachine for S {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        match codec::decode::<S::Op>(op) {
            Ok(op) => answer(Ok(StateMachine::execute(self, op))),
            Err(error) => answer::<S::Output>(Err(format!("not an operation: {error}"))),
        }
    }

    fn query(&self, op: &[u8]) -> Vec<u8> {
        match codec::decode::<S::Query>(op) {
            Ok(query) => answer(Ok(StateMachine::query(self, query))),
            Err(error) => answer::<S::Output>(Err(format!("not a query: {error}"))),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        whole_state(self)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        install(self, codec::decode(snapshot).map_err(|e| e.to_string()))
    }

    fn snapshot_pages(&self) -> Vec<Page> {
        StateMachine::snapshot_pages(self)
    }

    fn restore_pages(&mut self, pages: &[Page]) -> Result<(), AppError> {
        install(self, S::from_pages(pages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Default, Serialize, Deserialize, PartialEq, Debug)]
    struct Tally(u32);

    impl StateMachine for Tally {
        type Op = u32;
        type Query = ();
        type Output = u32;
        fn execute(&mut self, op: u32) -> u32 {
            self.0 += op;
            self.0
        }
        fn query(&self, (): ()) -> u32 {
            self.0
        }
        fn validate(&self) -> Result<(), String> {
            if self.0 % 2 == 0 {
                Ok(())
            } else {
                Err("odd".into())
            }
        }
    }

    #[test]
    fn typed_operations_round_trip_and_bad_bytes_are_refused_without_change() {
        let mut tally = Tally::default();
        let out = ReplicatedStateMachine::execute(&mut tally, &encode_request(&4u32).unwrap());
        assert_eq!(decode_output::<u32>(&out), Ok(4));
        let out = ReplicatedStateMachine::query(&tally, &encode_request(&()).unwrap());
        assert_eq!(decode_output::<u32>(&out), Ok(4));
        let out = ReplicatedStateMachine::execute(&mut tally, &[0xff; 9]);
        assert!(matches!(decode_output::<u32>(&out), Err(TypedError::Refused(_))));
        assert_eq!(tally, Tally(4));
    }

    #[test]
    fn restore_checks_the_state_with_validate() {
        let mut tally = Tally::default();
        assert!(tally.restore(&codec::encode(&Tally(3))).is_err());
        tally.restore(&codec::encode(&Tally(6))).unwrap();
        assert_eq!(tally, Tally(6));
        let page = |t: u32| Page::new(codec::encode(&Tally(t)));
        assert!(tally.restore_pages(&[page(5)]).is_err(), "validate runs on pages too");
        assert!(tally.restore_pages(&[page(8), page(8)]).is_err(), "the default takes one page");
        assert_eq!(tally, Tally(6), "nothing changed");
        tally.restore_pages(&ReplicatedStateMachine::snapshot_pages(&Tally(8))).unwrap();
        assert_eq!(tally, Tally(8));
    }
}
