//! The simulator's workloads for the example applications: the operations
//! simulated clients make up and each application's invariant. They live
//! here, beside the applications and not in them, so the applications know
//! nothing of the simulator (`pbft sim` and the test suites use these).

use crate::apps::{Bank, BankOp, Counter, KvOp, KvStore};
use fault_injector::sim::Workload;
use fault_injector::Rng;
use pbft_core::typed::encode_request;
use pbft_core::ClientId;

/// The key-value store's workload: puts, deletes and compare-and-swaps over
/// a few keys, so operations conflict and order matters.
pub struct KvWorkload;

impl Workload for KvWorkload {
    type App = KvStore;

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

/// The bank's workload: a few accounts opened, many transfers between them
/// (some too large, so they fail); no money may be made or lost.
pub struct BankWorkload;

impl Workload for BankWorkload {
    type App = Bank;

    fn random_op(rng: &mut Rng, _client: ClientId, _index: usize) -> Vec<u8> {
        let account = |rng: &mut Rng| format!("acct{}", rng.below(5));
        let op = match rng.below(5) {
            0 => BankOp::Open { account: account(rng), deposit: 100 + rng.below(900) },
            _ => BankOp::Transfer { from: account(rng), to: account(rng), amount: rng.below(600) },
        };
        encode_request(&op).unwrap_or_default()
    }

    fn invariant(bank: &Bank) -> Result<(), String> {
        bank.check_total()
    }
}

/// The counter's workload: small additions and subtractions.
pub struct CounterWorkload;

impl Workload for CounterWorkload {
    type App = Counter;

    fn random_op(rng: &mut Rng, _client: ClientId, _index: usize) -> Vec<u8> {
        Counter::add(rng.below(21) as i64 - 10)
    }
}
