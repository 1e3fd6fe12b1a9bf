//! Example replicated applications.

pub mod kv;

pub use kv::{KvOp, KvResult, KvStore};
