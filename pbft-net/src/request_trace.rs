//! Request traces: when this replica saw each of the most recent requests
//! reach each phase of the normal case (OSDI'99 §4.2), kept in a bounded
//! ring so that a client (`pbft kv … --trace`, `pbft trace`) can ask every
//! replica afterwards and line their answers up into one timeline.
//!
//! Times are wall-clock microseconds since the Unix epoch, so that answers
//! from several processes and the client's own send time share one axis; on
//! one machine they line up exactly, across machines as well as their
//! clocks agree.
//!
//! Memory is bounded: [`MAX_TRACED_REQUESTS`] requests (the oldest is
//! forgotten first) and as many batches, each a fixed-size record of under
//! 100 bytes: under a megabyte in all.

use pbft_core::{ClientId, Event, SeqNum, View};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many requests a replica remembers the phases of: about 100 bytes
/// each, so under half a megabyte.
pub const MAX_TRACED_REQUESTS: usize = 4096;

/// When one replica saw one request reach each phase; `None` for a phase it
/// did not see (a backup does not receive a request its client sent only to
/// the primary; a repeat answered from the reply cache is not ordered again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// The request first reached this replica: from its client, or inside
    /// the primary's PRE-PREPARE (see [`RequestTrace::from_client`]).
    pub received: Option<u64>,
    /// The batch holding it was pre-prepared (sent by the primary, accepted by a backup).
    pub pre_prepared: Option<u64>,
    /// That batch became prepared.
    pub prepared: Option<u64>,
    /// It became committed-local.
    pub committed_local: Option<u64>,
    /// The batch that last ordered it executed (a repeat in that batch was
    /// answered from the reply cache instead of running again).
    pub executed: Option<u64>,
    /// The reply left for the client.
    pub replied: Option<u64>,
}

impl PhaseTimes {
    /// The phases in protocol order, with their names.
    pub fn in_order(&self) -> [(&'static str, Option<u64>); 6] {
        [
            ("received", self.received),
            ("pre-prepared", self.pre_prepared),
            ("prepared", self.prepared),
            ("committed", self.committed_local),
            ("executed", self.executed),
            ("replied", self.replied),
        ]
    }
}

/// One replica's record of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTrace {
    /// The replica that kept it.
    pub replica: u32,
    /// The view of the latest PRE-PREPARE holding the request, if any.
    pub view: Option<u64>,
    /// That PRE-PREPARE's sequence number.
    pub seq: Option<u64>,
    /// The primary of that view.
    pub primary: Option<u32>,
    /// The request had executed before and was answered from the reply cache.
    pub from_cache: bool,
    /// The request reached this replica from its client's own connection
    /// (rather than only inside a PRE-PREPARE: clients send to the primary
    /// first, and to every replica when they retry).
    pub from_client: bool,
    /// When each phase was reached (microseconds since the Unix epoch).
    pub phases: PhaseTimes,
}

/// A replica's answer to a trace query: its record, or `None` if it has none
/// (never saw the request, or forgot it among more recent ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceAnswer {
    /// The client asked about.
    pub client: u64,
    /// The request's timestamp.
    pub timestamp: u64,
    /// What the replica knows.
    pub trace: Option<RequestTrace>,
}

/// Wall-clock microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

type Key = (ClientId, u64);

/// What a replica keeps of one request; the ordering phases are its batch's.
#[derive(Clone, Copy, Default)]
struct RequestEntry {
    /// The view and sequence number of the latest PRE-PREPARE holding it.
    batch: Option<(View, SeqNum)>,
    received: Option<u64>,
    replied: Option<u64>,
    from_client: bool,
    from_cache: bool,
}

/// When one batch reached each phase here.
#[derive(Clone, Copy)]
struct BatchEntry {
    view: View,
    pre_prepared: u64,
    prepared: Option<u64>,
    committed_local: Option<u64>,
    executed: Option<u64>,
}

/// The ring of recent requests' phase times of one replica. The ordering
/// phases are kept once per batch, not once per request: a batch of a
/// hundred requests costs one update per phase, and each request a few
/// lookups in all (arrival, pre-prepare, reply).
pub(crate) struct RequestTraces {
    replica: u32,
    n: u64,
    /// A hash map, not a B-tree: it is looked up several times per request
    /// on every replica, and nothing ever iterates it (so its order cannot
    /// show anywhere).
    requests: HashMap<Key, RequestEntry>,
    /// Keys in the order they were first seen, to forget the oldest.
    order: VecDeque<Key>,
    /// The most recent batches by sequence number (at most
    /// [`MAX_TRACED_REQUESTS`]: each holds at least one request).
    batches: BTreeMap<SeqNum, BatchEntry>,
}

impl RequestTraces {
    /// An empty ring for `replica` of a cluster of `n` replicas.
    pub(crate) fn new(replica: u32, n: usize) -> RequestTraces {
        RequestTraces {
            replica,
            n: n.max(1) as u64,
            requests: HashMap::with_capacity(MAX_TRACED_REQUESTS),
            order: VecDeque::with_capacity(MAX_TRACED_REQUESTS),
            batches: BTreeMap::new(),
        }
    }

    /// The record of `key`, made (and the oldest forgotten) if there is none.
    fn entry(&mut self, key: Key) -> &mut RequestEntry {
        if !self.requests.contains_key(&key) {
            if self.order.len() >= MAX_TRACED_REQUESTS {
                if let Some(oldest) = self.order.pop_front() {
                    self.requests.remove(&oldest);
                }
            }
            self.order.push_back(key);
        }
        self.requests.entry(key).or_default()
    }

    /// A request arrived from its client's own connection at `now`.
    pub(crate) fn received(&mut self, client: ClientId, timestamp: u64, now: u64) {
        let entry = self.entry((client, timestamp));
        entry.received.get_or_insert(now);
        entry.from_client = true;
    }

    /// A reply to the request left at `now`.
    pub(crate) fn replied(&mut self, client: ClientId, timestamp: u64, now: u64) {
        if let Some(entry) = self.requests.get_mut(&(client, timestamp)) {
            entry.replied.get_or_insert(now);
        }
    }

    /// Notes the phase `event` marks, if it marks one, at the time `now`
    /// tells (asked only for events that mark a phase).
    pub(crate) fn on_event(&mut self, event: &Event, now: impl Fn() -> u64) {
        match event {
            Event::PrePrepared { view, seq, requests } => {
                // A NEW-VIEW re-proposes batches this replica has already
                // executed (above its stable checkpoint): they run no
                // second time, so their trace stays the first one's.
                if self.batches.get(seq).is_some_and(|held| held.executed.is_some()) {
                    return;
                }
                let now = now();
                // A view change re-proposes requests: the latest proposal
                // of a sequence number is the one that counts.
                let batch = BatchEntry {
                    view: *view,
                    pre_prepared: now,
                    prepared: None,
                    committed_local: None,
                    executed: None,
                };
                if self.batches.get(seq).is_none_or(|held| held.view != *view) {
                    self.batches.insert(*seq, batch);
                    if self.batches.len() > MAX_TRACED_REQUESTS {
                        self.batches.pop_first();
                    }
                }
                for &key in requests {
                    let entry = self.entry(key);
                    entry.received.get_or_insert(now);
                    entry.batch = Some((*view, *seq));
                }
            }
            Event::Prepared { view, seq } => self.mark(*view, *seq, now, |b| &mut b.prepared),
            Event::CommittedLocal { view, seq } => self.mark(*view, *seq, now, |b| &mut b.committed_local),
            Event::Executed { view, seq, .. } => self.mark(*view, *seq, now, |b| &mut b.executed),
            Event::RepliedFromCache { client, timestamp } => {
                self.entry((*client, *timestamp)).from_cache = true;
            }
            _ => {}
        }
    }

    fn mark(
        &mut self,
        view: View,
        seq: SeqNum,
        now: impl Fn() -> u64,
        phase: impl Fn(&mut BatchEntry) -> &mut Option<u64>,
    ) {
        if let Some(batch) = self.batches.get_mut(&seq).filter(|b| b.view == view) {
            phase(batch).get_or_insert_with(now);
        }
    }

    /// What this replica knows of `client`'s request `timestamp`.
    pub(crate) fn get(&self, client: ClientId, timestamp: u64) -> Option<RequestTrace> {
        let entry = self.requests.get(&(client, timestamp))?;
        let batch = entry
            .batch
            .and_then(|(view, seq)| self.batches.get(&seq).filter(|b| b.view == view).map(|b| (seq, b)));
        Some(RequestTrace {
            replica: self.replica,
            view: entry.batch.map(|(view, _)| view),
            seq: entry.batch.map(|(_, seq)| seq),
            primary: entry.batch.map(|(view, _)| (view % self.n) as u32),
            from_cache: entry.from_cache,
            from_client: entry.from_client,
            phases: PhaseTimes {
                received: entry.received,
                pre_prepared: batch.map(|(_, b)| b.pre_prepared),
                prepared: batch.and_then(|(_, b)| b.prepared),
                committed_local: batch.and_then(|(_, b)| b.committed_local),
                executed: batch.and_then(|(_, b)| b.executed),
                replied: entry.replied,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::{Digest, ExecutedRequest};

    const C: ClientId = ClientId(3);

    fn executed(view: View, seq: SeqNum, timestamps: &[u64]) -> Event {
        let requests = timestamps
            .iter()
            .map(|&timestamp| ExecutedRequest { client: C, timestamp, digest: Digest::of(b"r") })
            .collect();
        Event::Executed { view, seq, digest: Digest::of(b"b"), requests }
    }

    /// Each phase is stamped once, when first reached, for every request of
    /// the batch; a phase of another view does not count. A request seen
    /// first inside the PRE-PREPARE was received then.
    #[test]
    fn phases_are_stamped_for_every_request_of_the_batch() {
        let mut traces = RequestTraces::new(1, 4);
        traces.received(C, 10, 100);
        traces.on_event(&Event::PrePrepared { view: 5, seq: 7, requests: vec![(C, 10), (C, 11)] }, || 110);
        traces.on_event(&Event::Prepared { view: 4, seq: 7 }, || 115);
        traces.on_event(&Event::Prepared { view: 5, seq: 7 }, || 120);
        traces.on_event(&Event::Prepared { view: 5, seq: 7 }, || 999);
        traces.on_event(&Event::CommittedLocal { view: 5, seq: 7 }, || 130);
        traces.on_event(&executed(4, 7, &[10, 11]), || 135);
        traces.on_event(&executed(5, 7, &[10, 11]), || 140);
        traces.replied(C, 10, 150);
        let want = PhaseTimes {
            received: Some(100),
            pre_prepared: Some(110),
            prepared: Some(120),
            committed_local: Some(130),
            executed: Some(140),
            replied: Some(150),
        };
        let trace = traces.get(C, 10).unwrap();
        assert_eq!(
            trace,
            RequestTrace {
                replica: 1,
                view: Some(5),
                seq: Some(7),
                primary: Some(1),
                from_cache: false,
                from_client: true,
                phases: want
            }
        );
        let second = traces.get(C, 11).unwrap();
        assert_eq!(second.phases, PhaseTimes { received: Some(110), replied: None, ..want });
        assert!(!second.from_client);
        assert_eq!(traces.batches.len(), 1, "one record for the batch, not one per request");
        assert_eq!(traces.get(C, 12), None);
    }

    /// A request re-proposed in a later view keeps only the later view's
    /// phases.
    #[test]
    fn a_view_change_restarts_the_ordering_phases() {
        let mut traces = RequestTraces::new(0, 4);
        traces.on_event(&Event::PrePrepared { view: 0, seq: 3, requests: vec![(C, 1)] }, || 10);
        traces.on_event(&Event::Prepared { view: 0, seq: 3 }, || 20);
        traces.on_event(&Event::PrePrepared { view: 1, seq: 3, requests: vec![(C, 1)] }, || 30);
        let trace = traces.get(C, 1).unwrap();
        assert_eq!(
            (trace.view, trace.primary, trace.phases.pre_prepared, trace.phases.prepared),
            (Some(1), Some(1), Some(30), None)
        );
        traces.on_event(&Event::Prepared { view: 1, seq: 3 }, || 35);
        assert_eq!(traces.get(C, 1).unwrap().phases.prepared, Some(35));
        // Once executed, a re-proposal in a NEW-VIEW changes nothing.
        traces.on_event(&executed(1, 3, &[1]), || 40);
        traces.on_event(&Event::PrePrepared { view: 2, seq: 3, requests: vec![(C, 1)] }, || 50);
        let trace = traces.get(C, 1).unwrap();
        assert_eq!(
            (trace.view, trace.phases.pre_prepared, trace.phases.executed),
            (Some(1), Some(30), Some(40))
        );
    }

    /// The ring never holds more than its bound, and forgets the oldest first.
    #[test]
    fn the_ring_is_bounded_and_forgets_the_oldest() {
        let mut traces = RequestTraces::new(0, 4);
        for timestamp in 0..(MAX_TRACED_REQUESTS as u64 + 10) {
            traces.received(C, timestamp, timestamp);
        }
        assert_eq!(traces.requests.len(), MAX_TRACED_REQUESTS);
        assert_eq!(traces.order.len(), MAX_TRACED_REQUESTS);
        assert_eq!(traces.get(C, 9), None);
        assert!(traces.get(C, 10).is_some());
    }
}
