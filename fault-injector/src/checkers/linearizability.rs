//! Linearizability of what clients accepted, with the canonical log as the
//! witness: each accepted result is what the canonical order computes for that
//! request, and an operation that completed before another was invoked comes
//! first in the canonical order.

use super::{FirstViolation, Verdict};
use crate::cluster::Completion;
use pbft_core::{ClientId, Digest, ExecutedRequest, ReplicatedStateMachine, Request, SeqNum};
use pbft_core::{RequestKind, Time};
use std::collections::BTreeMap;

/// Runs `request` on `app` the way a replica does at its place in the order.
fn apply<A: ReplicatedStateMachine>(app: &mut A, request: &Request) -> Vec<u8> {
    match request.kind {
        RequestKind::Write => app.execute(&request.op),
        RequestKind::Read | RequestKind::UnorderedRead => app.query(&request.op),
    }
}

/// Collects the canonical log: for each sequence number, the requests the
/// first honest replica to execute it ran (agreement makes them all the same).
#[derive(Debug, Default)]
pub struct Linearizability {
    canonical: BTreeMap<SeqNum, Vec<ExecutedRequest>>,
    first: FirstViolation,
}

impl Linearizability {
    /// An honest replica executed `requests` at `seq`.
    pub fn on_executed(&mut self, seq: SeqNum, requests: &[ExecutedRequest]) {
        self.canonical.entry(seq).or_insert_with(|| requests.to_vec());
    }

    /// Replays the canonical log on a fresh `A` and
    /// compares every client's accepted results and real-time order with it.
    pub fn finish<A: ReplicatedStateMachine + Default>(
        &mut self,
        sent: &BTreeMap<Digest, Request>,
        completions: &[Completion],
    ) {
        if let Some(gap) = (1..).zip(self.canonical.keys()).find(|(expected, seq)| *expected != **seq) {
            self.first.record(|| format!("no honest replica executed seq {}", gap.0));
            return;
        }
        let canonical: Vec<ExecutedRequest> = self.canonical.values().flatten().copied().collect();
        let mut app = A::default();
        let mut position: BTreeMap<(ClientId, u64), (usize, Vec<u8>)> = BTreeMap::new();
        for (index, executed) in canonical.iter().enumerate() {
            let Some(request) = sent.get(&executed.digest) else {
                self.first
                    .record(|| format!("canonical log holds a request no client sent at position {index}"));
                return;
            };
            let result = apply(&mut app, request);
            position.insert((executed.client, executed.timestamp), (index, result));
        }
        let mut placed = Vec::new();
        let mut unordered_reads = Vec::new();
        for completion in completions {
            if completion.read_only && !position.contains_key(&(completion.client, completion.timestamp)) {
                unordered_reads.push(completion);
                continue;
            }
            let key = (completion.client, completion.timestamp);
            match position.get(&key) {
                None => self.first.record(|| {
                    format!("{} accepted a result for ts {} that the canonical log never executed", key.0, key.1)
                }),
                Some((index, expected)) if *expected != completion.result => self.first.record(|| {
                    format!(
                        "{} accepted a result for ts {} that differs from the canonical log's at position {index}",
                        key.0, key.1
                    )
                }),
                Some((index, _)) => placed.push((completion.invoked_at, completion.completed_at, *index, key)),
            }
        }
        self.check_unordered_reads::<A>(sent, &canonical, &placed, &unordered_reads);
        // Real-time order: sweeping by invocation time, every operation that
        // completed earlier must sit earlier in the canonical log.
        let mut by_completion: Vec<_> = placed.clone();
        by_completion.sort_by_key(|(_, completed, _, _)| *completed);
        placed.sort_by_key(|(invoked, _, _, _)| *invoked);
        let mut done = 0;
        let mut latest: Option<(usize, (ClientId, u64))> = None;
        for (invoked, _, index, key) in &placed {
            while done < by_completion.len() && by_completion[done].1 < *invoked {
                let (_, _, earlier, earlier_key) = by_completion[done];
                if latest.is_none_or(|(i, _)| earlier > i) {
                    latest = Some((earlier, earlier_key));
                }
                done += 1;
            }
            if let Some((earlier, earlier_key)) = latest {
                if earlier >= *index {
                    self.first.record(|| {
                        format!(
                            "{} ts {} completed before {} ts {} was invoked but comes later in the canonical log",
                            earlier_key.0, earlier_key.1, key.0, key.1
                        )
                    });
                }
            }
        }
    }

    /// An unordered read is linearizable if its result is what the query
    /// answers after some prefix of the canonical log that holds every
    /// operation completed before the read was invoked and none invoked after
    /// it completed.
    fn check_unordered_reads<A: ReplicatedStateMachine + Default>(
        &mut self,
        sent: &BTreeMap<Digest, Request>,
        canonical: &[ExecutedRequest],
        placed: &[(Time, Time, usize, (ClientId, u64))],
        reads: &[&Completion],
    ) {
        if reads.is_empty() {
            return;
        }
        let bounds: Vec<(usize, usize)> = reads
            .iter()
            .map(|read| {
                let at_least = placed
                    .iter()
                    .filter(|(_, completed, _, _)| *completed < read.invoked_at)
                    .map(|(_, _, index, _)| index + 1)
                    .max()
                    .unwrap_or(0);
                let at_most = placed
                    .iter()
                    .filter(|(invoked, _, _, _)| *invoked > read.completed_at)
                    .map(|(_, _, index, _)| *index)
                    .min()
                    .unwrap_or(canonical.len());
                (at_least, at_most)
            })
            .collect();
        let mut matched = vec![false; reads.len()];
        let mut app = A::default();
        for prefix in 0..=canonical.len() {
            for (i, read) in reads.iter().enumerate() {
                let (at_least, at_most) = bounds[i];
                if !matched[i] && (at_least..=at_most).contains(&prefix) {
                    matched[i] = app.query(&read.op) == read.result;
                }
            }
            if let Some(request) = canonical.get(prefix).and_then(|e| sent.get(&e.digest)) {
                apply(&mut app, request);
            }
        }
        if let Some(i) = matched.iter().position(|m| !m) {
            let read = reads[i];
            self.first.record(|| {
                format!(
                    "{} accepted a read (ts {}) whose result no state between its invocation and completion gives",
                    read.client, read.timestamp
                )
            });
        }
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("linearizability")
    }
}
