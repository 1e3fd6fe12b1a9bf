//! A replicated key-value store: the smallest useful application.

use fault_injector::sim::SimApp;
use fault_injector::Rng;
use pbft_core::typed::{encode_request, StateMachine};
use pbft_core::ClientId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An operation that changes the store. Also part of the command line of `pbft kv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
pub enum KvOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` (removes it when `None`) only if it currently
    /// holds `expected` (is absent when `None`).
    #[command(name = "cas")]
    CompareAndSwap {
        /// The key.
        key: String,
        /// The value the key must hold for the swap to happen; absent if omitted.
        #[arg(long)]
        expected: Option<String>,
        /// The value it gets; deleted if omitted.
        #[arg(long)]
        new: Option<String>,
    },
}

/// A read-only question. Also part of the command line of `pbft kv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
pub enum KvQuery {
    /// Reads `key` (answered without ordering when 2f+1 replicas agree).
    Get {
        /// The key.
        key: String,
    },
}

/// The result of an operation or query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResult {
    /// The value the key held before the operation, if any.
    Previous(Option<String>),
    /// The value read.
    Value(Option<String>),
    /// Whether a compare-and-swap happened, and the value the key holds after it.
    Swapped {
        /// True when the key held the expected value.
        swapped: bool,
        /// The key's value after the operation.
        current: Option<String>,
    },
}

/// A map from strings to strings, ordered so snapshots are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

impl StateMachine for KvStore {
    type Op = KvOp;
    type Query = KvQuery;
    type Output = KvResult;

    fn execute(&mut self, op: KvOp) -> KvResult {
        match op {
            KvOp::Put { key, value } => KvResult::Previous(self.entries.insert(key, value)),
            KvOp::Delete { key } => KvResult::Previous(self.entries.remove(&key)),
            KvOp::CompareAndSwap { key, expected, new } => {
                let swapped = self.entries.get(&key) == expected.as_ref();
                if swapped {
                    match new {
                        Some(value) => self.entries.insert(key.clone(), value),
                        None => self.entries.remove(&key),
                    };
                }
                KvResult::Swapped { swapped, current: self.entries.get(&key).cloned() }
            }
        }
    }

    fn query(&self, KvQuery::Get { key }: KvQuery) -> KvResult {
        KvResult::Value(self.entries.get(&key).cloned())
    }
}

/// The simulator's workload for the store: puts, deletes and
/// compare-and-swaps over a few keys, so operations conflict and order matters.
impl SimApp for KvStore {
    fn random_op(rng: &mut Rng, client: ClientId, index: usize) -> Vec<u8> {
        let key = format!("k{}", rng.below(8));
        let value = format!("c{}-{index}", client.0);
        let op = match rng.below(4) {
            0 => KvOp::Delete { key },
            1 => KvOp::CompareAndSwap { key, expected: None, new: Some(value) },
            _ => KvOp::Put { key, value },
        };
        encode_request(&op).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::typed::decode_output;
    use pbft_core::ReplicatedStateMachine;

    fn run(store: &mut KvStore, op: KvOp) -> KvResult {
        StateMachine::execute(store, op)
    }

    #[test]
    fn put_get_delete() {
        let mut store = KvStore::default();
        let put = |k: &str, v: &str| KvOp::Put { key: k.into(), value: v.into() };
        let get = |k: &str| KvQuery::Get { key: k.into() };
        assert_eq!(run(&mut store, put("a", "1")), KvResult::Previous(None));
        assert_eq!(run(&mut store, put("a", "2")), KvResult::Previous(Some("1".into())));
        assert_eq!(StateMachine::query(&store, get("a")), KvResult::Value(Some("2".into())));
        assert_eq!(run(&mut store, KvOp::Delete { key: "a".into() }), KvResult::Previous(Some("2".into())));
        assert_eq!(StateMachine::query(&store, get("a")), KvResult::Value(None));
        let refused = ReplicatedStateMachine::execute(&mut store, &[0xff, 0xff]);
        assert!(decode_output::<KvResult>(&refused).is_err());
    }

    #[test]
    fn compare_and_swap_changes_the_value_only_when_it_matches() {
        let mut store = KvStore::default();
        let cas = |expected: Option<&str>, new: Option<&str>| KvOp::CompareAndSwap {
            key: "k".into(),
            expected: expected.map(Into::into),
            new: new.map(Into::into),
        };
        let swapped =
            |swapped, current: Option<&str>| KvResult::Swapped { swapped, current: current.map(Into::into) };
        assert_eq!(run(&mut store, cas(None, Some("1"))), swapped(true, Some("1")));
        assert_eq!(run(&mut store, cas(None, Some("2"))), swapped(false, Some("1")));
        assert_eq!(run(&mut store, cas(Some("0"), Some("2"))), swapped(false, Some("1")));
        assert_eq!(run(&mut store, cas(Some("1"), Some("2"))), swapped(true, Some("2")));
        assert_eq!(run(&mut store, cas(Some("2"), None)), swapped(true, None));
        assert!(store.is_empty());
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
