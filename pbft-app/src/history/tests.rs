//! The checker against hand-made histories, each a property of
//! linearizability: what it accepts and, as importantly, what it refuses.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use super::*;
use crate::apps::KvStore;
use pbft_core::typed::StateMachine;
use std::time::Instant;

const BUDGET: Duration = Duration::from_secs(1);

fn put(key: &str, value: &str) -> Call {
    Call::Op(KvOp::Put { key: key.into(), value: value.into() })
}

fn delete(key: &str) -> Call {
    Call::Op(KvOp::Delete { key: key.into() })
}

fn cas(key: &str, expected: Option<&str>, new: Option<&str>) -> Call {
    Call::Op(KvOp::CompareAndSwap {
        key: key.into(),
        expected: expected.map(Into::into),
        new: new.map(Into::into),
    })
}

fn get(key: &str) -> Call {
    Call::Query(KvQuery::Get { key: key.into() })
}

fn previous(value: Option<&str>) -> KvResult {
    KvResult::Previous(value.map(Into::into))
}

fn value(value: Option<&str>) -> KvResult {
    KvResult::Value(value.map(Into::into))
}

fn swapped(swapped: bool, current: Option<&str>) -> KvResult {
    KvResult::Swapped { swapped, current: current.map(Into::into) }
}

/// `client`'s `call`, invoked at `from` ms and answered `result` at `to` ms.
fn done(client: u64, call: Call, (from, to): (u64, u64), result: KvResult) -> Operation {
    let ms = Duration::from_millis;
    Operation { client, call, invoked: ms(from), completed: Some(ms(to)), outcome: Outcome::Ok(result) }
}

/// `client`'s `call`, invoked at `from` ms, never answered.
fn unknown(client: u64, call: Call, from: u64) -> Operation {
    Operation {
        client,
        call,
        invoked: Duration::from_millis(from),
        completed: None,
        outcome: Outcome::Unknown,
    }
}

fn counterexample(verdict: Verdict) -> Counterexample {
    match verdict {
        Verdict::NotLinearizable(counterexample) => counterexample,
        other => panic!("expected a violation, got {other}"),
    }
}

/// One client's calls one after the other, each seeing the last: every
/// operation kind, with the store's own results, is accepted.
#[test]
fn a_sequential_history_is_linearizable() {
    let history = [
        done(1, get("a"), (0, 1), value(None)),
        done(1, put("a", "1"), (2, 3), previous(None)),
        done(1, put("a", "2"), (4, 5), previous(Some("1"))),
        done(1, cas("a", Some("2"), Some("3")), (6, 7), swapped(true, Some("3"))),
        done(1, cas("a", Some("2"), Some("4")), (8, 9), swapped(false, Some("3"))),
        done(1, get("a"), (10, 11), value(Some("3"))),
        done(1, cas("a", Some("3"), None), (12, 13), swapped(true, None)),
        done(1, cas("a", None, Some("5")), (14, 15), swapped(true, Some("5"))),
        done(1, delete("a"), (16, 17), previous(Some("5"))),
        done(1, delete("a"), (18, 19), previous(None)),
        done(1, get("a"), (20, 21), value(None)),
    ];
    assert_eq!(check(&history, BUDGET), Verdict::Linearizable);
}

/// Two puts overlap and a read overlaps both: either put may take effect
/// first, and the read may see either value or none, as long as the puts'
/// results agree with the order chosen. Both puts seeing an absent key
/// agree with no order.
#[test]
fn overlapping_writes_and_reads_are_linearizable_in_either_order() {
    let history = |first: Option<&str>, second: Option<&str>, read: Option<&str>| {
        [
            done(1, put("a", "1"), (0, 10), previous(first)),
            done(2, put("a", "2"), (1, 11), previous(second)),
            done(3, get("a"), (2, 9), value(read)),
        ]
    };
    for read in [None, Some("1"), Some("2")] {
        assert_eq!(
            check(&history(None, Some("1"), read), BUDGET),
            Verdict::Linearizable,
            "1 then 2, read {read:?}"
        );
        assert_eq!(
            check(&history(Some("2"), None, read), BUDGET),
            Verdict::Linearizable,
            "2 then 1, read {read:?}"
        );
    }
    let both_first = counterexample(check(&history(None, None, None), BUDGET));
    assert_eq!(both_first.operations, history(None, None, None)[..2], "the read is not part of it");
}

/// OSDI'99 §2: a read sees every write that completed before it started. A
/// put of 1 completes, then a read that starts later sees the key absent:
/// the counterexample is exactly those two, without the operations around
/// them that play no part (a read and a failed swap overlapping the put, a
/// put of unknown outcome, another key).
#[test]
fn a_stale_read_is_not_linearizable_and_the_counterexample_is_those_two_operations() {
    let put_1 = done(1, put("a", "1"), (0, 1), previous(None));
    let stale = done(2, get("a"), (2, 3), value(None));
    let history = [
        done(3, get("a"), (0, 1), value(None)),
        put_1.clone(),
        done(5, cas("a", Some("x"), Some("y")), (0, 1), swapped(false, None)),
        done(4, put("b", "1"), (0, 1), previous(None)),
        stale.clone(),
        unknown(4, put("a", "9"), 2),
        done(4, get("b"), (4, 5), value(Some("1"))),
    ];
    let found = counterexample(check(&history, BUDGET));
    assert_eq!(found, Counterexample { key: "a".into(), operations: vec![put_1, stale], minimal: true });
    assert_eq!(
        found.to_string(),
        "no order of these 2 operations on key \"a\" explains their results (each result is needed):\n  \
         client 1: put a = \"1\"              -> previous None            [0.000..1.000 ms]\n  \
         client 2: get a                    -> value None               [2.000..3.000 ms]"
    );
}

/// The counterexample blames only results that conflict. Here two
/// compare-and-swaps both succeed from the absent key (the violation), and
/// later a put, a delete and a read see what they should. Removing the
/// swaps outright would leave a put whose previous value nobody wrote, a
/// violation of its own; forgetting their results does not, so the
/// counterexample is the two swaps and nothing else.
#[test]
fn the_counterexample_does_not_blame_operations_whose_results_are_explained() {
    let first = done(1, cas("a", None, Some("x")), (0, 10), swapped(true, Some("x")));
    let second = done(2, cas("a", None, Some("y")), (1, 11), swapped(true, Some("y")));
    let history = [
        first.clone(),
        second.clone(),
        done(1, put("a", "1"), (20, 21), previous(Some("y"))),
        done(1, delete("a"), (22, 23), previous(Some("1"))),
        done(1, get("a"), (24, 25), value(None)),
    ];
    let found = counterexample(check(&history, BUDGET));
    assert_eq!(found, Counterexample { key: "a".into(), operations: vec![first, second], minimal: true });
}

/// A lost update: two clients compare-and-swap from the same (absent)
/// value at once and both are told they swapped. Only one can have.
#[test]
fn a_lost_update_by_compare_and_swap_is_not_linearizable() {
    let first = done(1, cas("a", None, Some("1")), (0, 10), swapped(true, Some("1")));
    let second = done(2, cas("a", None, Some("2")), (1, 11), swapped(true, Some("2")));
    let history = [first.clone(), second.clone()];
    let found = counterexample(check(&history, BUDGET));
    assert_eq!(found, Counterexample { key: "a".into(), operations: vec![first, second], minimal: true });
    let honest = [history[0].clone(), done(2, cas("a", None, Some("2")), (1, 11), swapped(false, Some("1")))];
    assert_eq!(check(&honest, BUDGET), Verdict::Linearizable, "the second one failing is fine");
}

/// A put whose client never heard back may have taken effect, so it
/// explains a later read of its value; but only after its invocation, and
/// without it the read is a violation (so the put is what explains it).
#[test]
fn an_unknown_put_explains_a_later_read() {
    let read = done(2, get("a"), (5, 6), value(Some("1")));
    let explained = [unknown(1, put("a", "1"), 0), read.clone()];
    assert_eq!(check(&explained, BUDGET), Verdict::Linearizable);
    assert!(
        matches!(check(std::slice::from_ref(&read), BUDGET), Verdict::NotLinearizable(_)),
        "nothing wrote 1"
    );
    let too_late = [unknown(1, put("a", "1"), 7), read];
    assert!(matches!(check(&too_late, BUDGET), Verdict::NotLinearizable(_)), "invoked after the read");
}

/// A put whose client never heard back took effect at most once: it
/// cannot explain its value coming back after a delete removed it.
#[test]
fn an_unknown_put_takes_effect_at_most_once() {
    let history = [
        unknown(1, put("a", "1"), 0),
        done(2, get("a"), (5, 6), value(Some("1"))),
        done(2, delete("a"), (7, 8), previous(Some("1"))),
        done(2, get("a"), (9, 10), value(Some("1"))),
    ];
    let found = counterexample(check(&history, BUDGET));
    assert_eq!(found.operations, history[2..], "{found}");
    assert_eq!(check(&history[..3], BUDGET), Verdict::Linearizable);
}

/// A put whose client never heard back may also never take effect: later
/// reads and writes that never see it are fine, and so is a read that was
/// never answered (it is dropped, whatever key it names).
#[test]
fn an_unknown_put_whose_value_is_never_seen_is_linearizable() {
    let history = [
        unknown(1, put("a", "1"), 0),
        done(2, get("a"), (5, 6), value(None)),
        done(2, put("a", "2"), (7, 8), previous(None)),
        unknown(3, get("a"), 8),
        done(2, get("a"), (9, 10), value(Some("2"))),
        done(2, delete("a"), (11, 12), previous(Some("2"))),
        done(2, get("a"), (13, 14), value(None)),
    ];
    assert_eq!(check(&history, BUDGET), Verdict::Linearizable);
}

/// Keys are independent registers: a put of `k3` followed by a read of
/// `k4` that finds it absent is fine (one register for all keys would
/// refuse it), and a stale read on one key among fifty is found on that
/// key, with that key's operations only.
#[test]
fn each_key_is_checked_on_its_own() {
    let key = |i: u64| format!("k{i}");
    let mut history: Vec<Operation> = (0..50)
        .flat_map(|i| {
            [
                done(i, put(&key(i), "v"), (10 * i + 2, 10 * i + 3), previous(None)),
                done(i, get(&key(i + 1)), (10 * i + 4, 10 * i + 5), value(None)),
            ]
        })
        .collect();
    assert_eq!(check(&history, BUDGET), Verdict::Linearizable);
    let stale = done(99, get("k17"), (2000, 2001), value(None));
    history.push(stale.clone());
    let found = counterexample(check(&history, BUDGET));
    let put_17 = history[2 * 17].clone();
    assert_eq!(put_17.call, put("k17", "v"));
    assert_eq!(found, Counterexample { key: "k17".into(), operations: vec![put_17, stale], minimal: true });
}

/// A small deterministic random number generator (xorshift64*), so the
/// generated history is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// A linearizable history by construction: `clients` clients each make
/// `per_client` calls on `keys` keys one after another, each call taking
/// effect on a real [`KvStore`] at a random instant between its invocation
/// and its completion. One write in ten is never answered, and half of
/// those never take effect.
fn generated_history(seed: u64, clients: u64, per_client: u64, keys: u64) -> Vec<Operation> {
    let mut rng = Rng(seed);
    let mut planned: Vec<(Option<u64>, Operation)> = Vec::new();
    for client in 0..clients {
        let mut now = rng.below(5);
        for i in 0..per_client {
            let key = format!("k{}", rng.below(keys));
            let mine = format!("{client}.{i}");
            let call = match rng.below(5) {
                0 => get(&key),
                1 => delete(&key),
                2 => cas(&key, None, Some(&mine)),
                3 => {
                    let guess = format!("{}.{}", rng.below(clients), rng.below(i + 1));
                    cas(&key, Some(&guess), Some(&mine))
                }
                _ => put(&key, &mine),
            };
            let length = 1 + rng.below(20);
            let mut effect = Some(now + rng.below(length + 1));
            let mut operation = done(client, call, (now, now + length), value(None));
            if !operation.call.is_read() && rng.below(10) == 0 {
                operation.completed = None;
                operation.outcome = Outcome::Unknown;
                effect = effect.filter(|_| rng.below(2) == 0);
            }
            planned.push((effect, operation));
            now += length + rng.below(3);
        }
    }
    planned.sort_by_key(|(effect, operation)| (*effect, operation.client));
    let mut store = KvStore::default();
    for (_, operation) in planned.iter_mut().filter(|(effect, _)| effect.is_some()) {
        let result = match operation.call.clone() {
            Call::Op(op) => StateMachine::execute(&mut store, op),
            Call::Query(query) => StateMachine::query(&store, query),
        };
        if operation.outcome != Outcome::Unknown {
            operation.outcome = Outcome::Ok(result);
        }
    }
    planned.into_iter().map(|(_, operation)| operation).collect()
}

/// 240 operations of ten clients on three keys, each overlapping several
/// others, check as linearizable within a second; with one read's answer
/// changed they check as not linearizable, and the counterexample is that
/// read alone (nothing wrote what it saw).
#[test]
fn two_hundred_and_forty_concurrent_operations_check_within_a_second() {
    let history = generated_history(7, 10, 24, 3);
    assert_eq!(history.len(), 240);
    let overlapping = |a: &Operation| {
        history
            .iter()
            .filter(|b| {
                b.invoked < a.completed.unwrap_or(Duration::MAX)
                    && a.invoked < b.completed.unwrap_or(Duration::MAX)
            })
            .count()
    };
    assert!(history.iter().map(overlapping).sum::<usize>() > 5 * history.len(), "a concurrent history");
    let started = Instant::now();
    assert_eq!(check(&history, BUDGET), Verdict::Linearizable);
    assert!(started.elapsed() < BUDGET, "took {:?}", started.elapsed());

    let mut broken = history.clone();
    let read =
        broken.iter().rposition(|op| op.call.is_read() && op.outcome == Outcome::Ok(value(None))).unwrap();
    broken[read].outcome = Outcome::Ok(value(Some("never written")));
    let found = counterexample(check(&broken, Duration::from_secs(10)));
    assert_eq!(found.operations, [broken[read].clone()], "{found}");
    assert!(found.minimal, "{found}");
}

/// With no time to search, a history with anything to check is neither
/// linearizable nor not: the verdict is unknown, naming the key.
#[test]
fn a_zero_budget_gives_unknown_not_linearizable() {
    let fine =
        [done(1, put("a", "1"), (0, 10), previous(None)), done(2, get("a"), (1, 11), value(Some("1")))];
    let stale = [done(1, put("a", "1"), (0, 1), previous(None)), done(2, get("a"), (2, 3), value(None))];
    for (history, first_key) in
        [(&fine[..], "a"), (&stale[..], "a"), (&generated_history(3, 10, 24, 3), "k0")]
    {
        let verdict = check(history, Duration::ZERO);
        assert!(matches!(&verdict, Verdict::Unknown { key, .. } if key == first_key), "{verdict}");
    }
    assert_eq!(check(&fine, BUDGET), Verdict::Linearizable, "the budget, not the history, made it unknown");
}
