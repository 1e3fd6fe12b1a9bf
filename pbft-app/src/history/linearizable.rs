//! The linearizability checker: is there one order of the operations, each
//! placed between its invocation and its completion, in which a single
//! key-value store returns exactly what the clients saw?
//!
//! Each operation touches one key, and linearizability is compositional
//! (Herlihy & Wing, TOPLAS 1990, §3.3), so each key is checked alone as a
//! register that starts absent. Per key the search is Wing & Gong's, with
//! Lowe's memoization, as Porcupine implements it: the calls and returns,
//! sorted by time, form a list; the search linearizes a call that comes
//! before the first return still in the list (one no pending operation must
//! precede), lifts it and its return out of the list, and backtracks when it
//! meets a return whose call it could not place. A set of (linearized
//! operations, register value) already explored is not explored again.
//!
//! A write of unknown outcome returns at +infinity with any result, so it
//! may take effect at any time after its invocation; the search succeeds
//! once every operation with a known outcome is placed, so it may also
//! never take effect. A read of unknown outcome constrains nothing and is
//! dropped. The search itself is in [`super::search`].

use super::search::{search, Deadline, Search, Searched};
use super::{Operation, Outcome};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Whether a history is linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations explains every result.
    Linearizable,
    /// No order explains the results on one key; here is why.
    NotLinearizable(Counterexample),
    /// The budget ran out before the search of `key` ended (the first such
    /// key, in key order), and no key was found non-linearizable: nothing
    /// is known of it.
    Unknown {
        /// The key whose search did not end.
        key: String,
        /// How far the search got.
        reason: String,
    },
}

/// Operations on one key whose results no order explains, found by
/// [`check`]: a sub-history that is not linearizable.
///
/// These operations alone are not linearizable, and neither is the key's
/// history with every other result forgotten: the key's other writes are
/// not shown because, whether and when they took effect (even more than
/// once), they cannot explain these results; a read here may still have
/// seen one of them.
///
/// When `minimal`, each result is needed: forget any one of them too (drop
/// it if a read, make its outcome unknown if a write) and the key's
/// history is linearizable, granting each forgotten write any number of
/// effects after its invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The key.
    pub key: String,
    /// The operations, by invocation time.
    pub operations: Vec<Operation>,
    /// Whether the minimisation finished; false when the budget ran out
    /// first (the operations still admit no order, but some may be spare).
    pub minimal: bool,
}

/// Checks whether `operations` are linearizable as a key-value store, key
/// by key in key order, within `budget` in all (counterexample
/// minimisation included). A search cut short gives [`Verdict::Unknown`],
/// never [`Verdict::Linearizable`]; a violation found on any key wins over
/// an unknown one.
pub fn check(operations: &[Operation], budget: Duration) -> Verdict {
    let deadline = Deadline::after(budget);
    let mut unknown = None;
    for (key, operations) in by_key(operations) {
        let exact: Vec<Searched> =
            operations.iter().map(|&operation| Searched { operation, repeats: false }).collect();
        match search(&exact, &deadline) {
            Search::Linearizable => {}
            Search::NotLinearizable => {
                return Verdict::NotLinearizable(minimise(key, operations, &deadline));
            }
            Search::OutOfTime { steps } => {
                let reason = format!(
                    "the {budget:?} budget ran out after {steps} search steps over {} operations",
                    operations.len()
                );
                unknown.get_or_insert(Verdict::Unknown { key: key.to_owned(), reason });
            }
        }
    }
    unknown.unwrap_or(Verdict::Linearizable)
}

/// The operations of each key, in key order, without unanswered reads.
fn by_key(operations: &[Operation]) -> BTreeMap<&str, Vec<&Operation>> {
    let mut keys: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in operations {
        if !(operation.call.is_read() && operation.outcome == Outcome::Unknown) {
            keys.entry(operation.call.key()).or_default().push(operation);
        }
    }
    keys
}

/// Shrinks the non-linearizable `operations` of `key` to a 1-minimal set
/// of results, by delta debugging: forget the results of runs of halving
/// length while the key's history stays non-linearizable, then of single
/// operations until forgetting any one makes it linearizable.
///
/// Forgetting, not removing: removing a write can leave a read of a value
/// nobody wrote, a violation the history does not have. A write whose
/// result is forgotten stays, as of unknown outcome and free to take effect
/// any number of times after its invocation; a read whose result is
/// forgotten is dropped. Forgetting only allows more orders, so a violation
/// that survives it is one of the whole history, and of the results kept
/// alone.
fn minimise(key: &str, operations: Vec<&Operation>, deadline: &Deadline) -> Counterexample {
    let forgotten: Vec<Option<Operation>> = operations.iter().map(|operation| forget(operation)).collect();
    let history = Remembering { operations: &operations, forgotten: &forgotten };
    let mut kept: Vec<usize> =
        (0..operations.len()).filter(|&i| operations[i].outcome != Outcome::Unknown).collect();
    let mut chunk = (kept.len() / 2).max(1);
    let minimal = loop {
        match history.forget_chunks(&mut kept, chunk, deadline) {
            None => break false,
            Some(false) if chunk == 1 => break true,
            Some(_) => chunk = (chunk / 2).max(1),
        }
    };
    let mut operations: Vec<Operation> = kept.into_iter().map(|i| operations[i].clone()).collect();
    operations.sort_by_key(|operation| (operation.invoked, operation.client));
    Counterexample { key: key.to_owned(), operations, minimal }
}

/// `operation` with its result forgotten: a write of unknown outcome, or
/// nothing for a read.
fn forget(operation: &Operation) -> Option<Operation> {
    let forgotten = Operation { completed: None, outcome: Outcome::Unknown, ..operation.clone() };
    (!operation.call.is_read()).then_some(forgotten)
}

/// One key's operations, each with its result as recorded or forgotten.
struct Remembering<'a> {
    operations: &'a [&'a Operation],
    forgotten: &'a [Option<Operation>],
}

impl<'a> Remembering<'a> {
    /// The history with only the results of `kept` (ascending) remembered.
    /// A write of unknown outcome stays as it was: at most once.
    fn history(&self, kept: &[usize]) -> Vec<Searched<'a>> {
        let searched = |i: usize| {
            let operation = self.operations[i];
            if kept.binary_search(&i).is_ok() || operation.outcome == Outcome::Unknown {
                Some(Searched { operation, repeats: false })
            } else {
                self.forgotten[i].as_ref().map(|operation| Searched { operation, repeats: true })
            }
        };
        (0..self.operations.len()).filter_map(searched).collect()
    }

    /// One pass of delta debugging: forgets each run of `chunk` results of
    /// `kept` whose forgetting leaves the history non-linearizable. Returns
    /// whether any was forgotten, or `None` if the deadline passed.
    fn forget_chunks(&self, kept: &mut Vec<usize>, chunk: usize, deadline: &Deadline) -> Option<bool> {
        let mut forgot = false;
        let mut start = 0;
        while start < kept.len() {
            let end = (start + chunk).min(kept.len());
            let rest: Vec<usize> = [&kept[..start], &kept[end..]].concat();
            match search(&self.history(&rest), deadline) {
                Search::NotLinearizable => {
                    *kept = rest;
                    forgot = true;
                }
                Search::Linearizable => start = end,
                Search::OutOfTime { .. } => return None,
            }
        }
        Some(forgot)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::NotLinearizable(counterexample) => write!(f, "not linearizable: {counterexample}"),
            Verdict::Unknown { key, reason } => write!(f, "unknown: key {key:?}: {reason}"),
        }
    }
}

impl fmt::Display for Counterexample {
    /// A heading, then one operation per line by invocation time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.minimal { "each result is needed" } else { "not minimised: the budget ran out" };
        let count = self.operations.len();
        write!(
            f,
            "no order of these {count} operations on key {:?} explains their results ({how}):",
            self.key
        )?;
        for operation in &self.operations {
            write!(f, "\n  {operation}")?;
        }
        Ok(())
    }
}
