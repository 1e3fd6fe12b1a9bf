//! A replicated key-value store: the smallest useful application.

use fault_injector::sim::SimApp;
use fault_injector::Rng;
use pbft_core::{codec, AppError, ClientId, ReplicatedStateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An operation on the store.
/// It is also the command line of `pbft kv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
pub enum KvOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Reads `key`.
    Get {
        /// The key.
        key: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// The result of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResult {
    /// The value the key held before the operation, if any.
    Previous(Option<String>),
    /// The value read.
    Value(Option<String>),
    /// The operation bytes did not decode; nothing changed.
    Invalid(String),
}

impl KvOp {
    /// The bytes a client sends.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

impl KvResult {
    /// Decodes a result from a replica's reply.
    pub fn decode(bytes: &[u8]) -> Result<KvResult, codec::CodecError> {
        codec::decode(bytes)
    }
}

/// A map from strings to strings, ordered so snapshots are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    entries: BTreeMap<String, String>,
}

impl KvStore {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl ReplicatedStateMachine for KvStore {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        let result = match codec::decode::<KvOp>(op) {
            Ok(KvOp::Put { key, value }) => KvResult::Previous(self.entries.insert(key, value)),
            Ok(KvOp::Get { key }) => KvResult::Value(self.entries.get(&key).cloned()),
            Ok(KvOp::Delete { key }) => KvResult::Previous(self.entries.remove(&key)),
            Err(error) => KvResult::Invalid(error.to_string()),
        };
        codec::encode(&result)
    }

    fn snapshot(&self) -> Vec<u8> {
        codec::encode(&self.entries)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        self.entries = codec::decode(snapshot).map_err(|e| AppError(e.to_string()))?;
        Ok(())
    }
}

/// The simulator's workload for the store: puts, gets and deletes over a
/// few keys, so operations conflict and order matters.
impl SimApp for KvStore {
    fn random_op(rng: &mut Rng, client: ClientId, index: usize) -> Vec<u8> {
        let key = format!("k{}", rng.below(8));
        let op = match rng.below(3) {
            0 => KvOp::Get { key },
            1 => KvOp::Delete { key },
            _ => KvOp::Put { key, value: format!("c{}-{index}", client.0) },
        };
        op.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(store: &mut KvStore, op: KvOp) -> KvResult {
        KvResult::decode(&store.execute(&op.encode())).unwrap()
    }

    #[test]
    fn put_get_delete() {
        let mut store = KvStore::default();
        let put = |k: &str, v: &str| KvOp::Put { key: k.into(), value: v.into() };
        assert_eq!(run(&mut store, put("a", "1")), KvResult::Previous(None));
        assert_eq!(run(&mut store, put("a", "2")), KvResult::Previous(Some("1".into())));
        assert_eq!(run(&mut store, KvOp::Get { key: "a".into() }), KvResult::Value(Some("2".into())));
        assert_eq!(run(&mut store, KvOp::Delete { key: "a".into() }), KvResult::Previous(Some("2".into())));
        assert_eq!(run(&mut store, KvOp::Get { key: "a".into() }), KvResult::Value(None));
        assert!(matches!(KvResult::decode(&store.execute(&[0xff, 0xff])).unwrap(), KvResult::Invalid(_)));
    }

    #[test]
    fn snapshot_restores_the_same_state() {
        let mut store = KvStore::default();
        run(&mut store, KvOp::Put { key: "x".into(), value: "y".into() });
        let mut copy = KvStore::default();
        copy.restore(&store.snapshot()).unwrap();
        assert_eq!(copy, store);
        assert!(copy.restore(&[0xff; 3]).is_err());
    }
}
