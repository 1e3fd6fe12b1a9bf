//! Example applications shipped with pbft, each a typed
//! [`StateMachine`](pbft_core::StateMachine).

pub mod bank;
pub mod counter;
pub mod kv;

pub use bank::{Bank, BankOp, BankQuery, BankResult};
pub use counter::Counter;
pub use kv::{KvOp, KvQuery, KvResult, KvStore};
