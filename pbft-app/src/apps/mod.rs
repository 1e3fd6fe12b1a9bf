//! Example replicated applications: a key-value store, a bank ledger whose
//! total is an invariant, and a counter.

pub mod bank;
pub mod counter;
pub mod kv;

pub use bank::{Bank, BankOp, BankResult};
pub use counter::Counter;
pub use kv::{KvOp, KvResult, KvStore};
