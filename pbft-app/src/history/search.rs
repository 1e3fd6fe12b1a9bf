//! The search for one key's linearization: Wing & Gong's, with Lowe's
//! memoization, as Porcupine implements it (see [`super::linearizable`]).

use super::{Call, Operation, Outcome};
use crate::apps::{KvOp, KvQuery, KvResult};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// An operation as the search takes it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Searched<'a> {
    /// The operation; of unknown outcome, it returns at +infinity with any
    /// result, and need not be placed at all.
    pub operation: &'a Operation,
    /// Whether its effect may happen any number of times after its
    /// invocation, not just once: how the minimisation takes a write whose
    /// result it forgot (only ever more permissive, so still sound for a
    /// violation, and the search need not track which of them ran).
    pub repeats: bool,
}

/// When the budget runs out.
pub(super) struct Deadline(Option<Instant>);

impl Deadline {
    /// `budget` from now; never, if that is beyond the clock's range.
    pub(super) fn after(budget: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(budget))
    }

    fn passed(&self) -> bool {
        self.0.is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// How one search ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Search {
    Linearizable,
    NotLinearizable,
    /// The deadline passed after this many steps.
    OutOfTime {
        steps: u64,
    },
}

/// The search looks at the clock once per this many steps.
const STEPS_PER_CLOCK_READ: u64 = 1024;

/// Searches for a linearization of `operations`, all on one key, from an
/// absent key.
pub(super) fn search(operations: &[Searched<'_>], deadline: &Deadline) -> Search {
    let steps: Vec<Step> = compile(operations);
    let mut list = List::of(operations);
    let mut linearized = Bitset::new(steps.len());
    let mut register: Value = None;
    let mut seen: HashSet<(Bitset, Value)> = HashSet::from([(linearized.clone(), register)]);
    // The placements, last on top: list entry, operation, register before.
    let mut placed: Vec<(usize, usize, Value)> = Vec::new();
    let mut to_place = steps.iter().filter(|step| step.must_place()).count();
    let mut entry = list.first();
    let mut count: u64 = 0;
    while to_place > 0 {
        if count % STEPS_PER_CLOCK_READ == 0 && deadline.passed() {
            return Search::OutOfTime { steps: count };
        }
        count += 1;
        if let Entry::Call { op, .. } = list.entries[entry] {
            let step = steps[op];
            if let Some(after) = step.apply(register) {
                if !step.repeats {
                    linearized.insert(op);
                }
                if seen.insert((linearized.clone(), after)) {
                    placed.push((entry, op, register));
                    register = after;
                    if !step.repeats {
                        to_place -= usize::from(step.must_place());
                        list.lift(entry);
                    }
                    entry = list.first();
                    continue;
                }
                if !step.repeats {
                    linearized.remove(op);
                }
            }
            entry = list.next[entry];
        } else {
            // A return whose call could not be placed: undo the last placement.
            let Some((call, op, before)) = placed.pop() else {
                return Search::NotLinearizable;
            };
            register = before;
            if !steps[op].repeats {
                to_place += usize::from(steps[op].must_place());
                linearized.remove(op);
                list.unlift(call);
            }
            entry = list.next[call];
        }
    }
    Search::Linearizable
}

/// A register value: `None` for absent, else the index of the string.
type Value = Option<usize>;

/// What an operation does to the register, values interned.
#[derive(Clone, Copy, Debug)]
enum Input {
    Put(usize),
    Delete,
    Cas { expected: Value, new: Value },
    Get,
}

/// What an operation returned, values interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Previous(Value),
    Value(Value),
    Swapped { swapped: bool, current: Value },
}

/// One operation as the model runs it; `output` is `None` when unknown
/// (any result is accepted).
#[derive(Clone, Copy, Debug)]
struct Step {
    input: Input,
    output: Option<Output>,
    /// See [`Searched::repeats`].
    repeats: bool,
}

impl Step {
    /// Whether a linearization must place it: its outcome is known.
    fn must_place(&self) -> bool {
        self.output.is_some()
    }

    /// The register after this operation runs on `register`, or `None` if
    /// the operation would not return what it returned.
    fn apply(&self, register: Value) -> Option<Value> {
        let (after, output) = match self.input {
            Input::Put(value) => (Some(value), Output::Previous(register)),
            Input::Delete => (None, Output::Previous(register)),
            Input::Cas { expected, new } => {
                let swapped = register == expected;
                let after = if swapped { new } else { register };
                (after, Output::Swapped { swapped, current: after })
            }
            Input::Get => (register, Output::Value(register)),
        };
        self.output.is_none_or(|seen| seen == output).then_some(after)
    }
}

/// The operations as model steps.
fn compile(operations: &[Searched<'_>]) -> Vec<Step> {
    let mut strings = Interner::default();
    operations.iter().map(|searched| step(searched.operation, searched.repeats, &mut strings)).collect()
}

/// One operation as a model step, its strings numbered by `strings`.
fn step<'a>(operation: &'a Operation, repeats: bool, strings: &mut Interner<'a>) -> Step {
    let input = match &operation.call {
        Call::Op(KvOp::Put { value, .. }) => Input::Put(strings.string(value)),
        Call::Op(KvOp::Delete { .. }) => Input::Delete,
        Call::Op(KvOp::CompareAndSwap { expected, new, .. }) => {
            Input::Cas { expected: strings.value(expected), new: strings.value(new) }
        }
        Call::Query(KvQuery::Get { .. }) => Input::Get,
    };
    let output = match &operation.outcome {
        Outcome::Ok(KvResult::Previous(old)) => Some(Output::Previous(strings.value(old))),
        Outcome::Ok(KvResult::Value(value)) => Some(Output::Value(strings.value(value))),
        Outcome::Ok(KvResult::Swapped { swapped, current }) => {
            Some(Output::Swapped { swapped: *swapped, current: strings.value(current) })
        }
        Outcome::Unknown => None,
    };
    Step { input, output, repeats }
}

/// Numbers for strings, so the model compares and remembers small values.
#[derive(Default)]
struct Interner<'a>(HashMap<&'a str, usize>);

impl<'a> Interner<'a> {
    fn string(&mut self, string: &'a str) -> usize {
        let next = self.0.len();
        *self.0.entry(string).or_insert(next)
    }

    fn value(&mut self, value: &'a Option<String>) -> Value {
        value.as_deref().map(|string| self.string(string))
    }
}

/// A list entry: a call (with its operation and its return's index) or a
/// return; two sentinels bound the list.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Head,
    Tail,
    Call { op: usize, ret: usize },
    Return,
}

/// The calls and returns of one key's operations in time order, as a
/// doubly linked list over indices, so lifting a placed operation out and
/// putting it back on backtracking are O(1).
struct List {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

const HEAD: usize = 0;
const TAIL: usize = 1;

impl List {
    /// The entries sorted by time; a call before a return at the same
    /// instant (they overlap). An unknown outcome returns at +infinity.
    fn of(operations: &[Searched<'_>]) -> List {
        let mut events: Vec<(Duration, bool, usize)> = Vec::with_capacity(2 * operations.len());
        for (op, Searched { operation, .. }) in operations.iter().enumerate() {
            let returned = match (&operation.outcome, operation.completed) {
                (Outcome::Ok(_), Some(completed)) => completed.max(operation.invoked),
                _ => Duration::MAX,
            };
            events.push((operation.invoked, false, op));
            events.push((returned, true, op));
        }
        events.sort();
        let first = TAIL + 1;
        let mut return_at = vec![TAIL; operations.len()];
        for (position, &(_, is_return, op)) in events.iter().enumerate() {
            if is_return {
                return_at[op] = first + position;
            }
        }
        let entry = |&(_, is_return, op): &(Duration, bool, usize)| {
            if is_return {
                Entry::Return
            } else {
                Entry::Call { op, ret: return_at[op] }
            }
        };
        let real = events.iter().map(entry);
        let entries: Vec<Entry> = [Entry::Head, Entry::Tail].into_iter().chain(real).collect();
        let count = entries.len();
        let order: Vec<usize> = [HEAD].into_iter().chain(first..count).chain([TAIL]).collect();
        let (mut next, mut prev) = (vec![TAIL; count], vec![HEAD; count]);
        for pair in order.windows(2) {
            next[pair[0]] = pair[1];
            prev[pair[1]] = pair[0];
        }
        List { entries, next, prev }
    }

    /// The first entry still in the list.
    fn first(&self) -> usize {
        self.next[HEAD]
    }

    /// Takes call `entry` and its return out of the list.
    fn lift(&mut self, entry: usize) {
        self.unlink(entry);
        self.unlink(self.ret(entry));
    }

    /// Puts back what [`List::lift`] took out, in reverse order.
    fn unlift(&mut self, entry: usize) {
        self.relink(self.ret(entry));
        self.relink(entry);
    }

    fn ret(&self, entry: usize) -> usize {
        match self.entries[entry] {
            Entry::Call { ret, .. } => ret,
            Entry::Head | Entry::Tail | Entry::Return => entry,
        }
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    /// Undoes [`List::unlink`]: `entry` kept its own links.
    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        self.prev[next] = entry;
    }
}

/// A set of operation indices: which are linearized.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new(len: usize) -> Bitset {
        Bitset(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    fn insert(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn remove(&mut self, index: usize) {
        self.0[index / 64] &= !(1 << (index % 64));
    }
}
