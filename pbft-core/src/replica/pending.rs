//! Requests a replica knows of that have not executed yet, bounded per client.

use crate::ids::ClientId;
use crate::message::Request;
use crate::signed::Signed;
use std::collections::{BTreeMap, BTreeSet};

/// Identifies a request: its client and timestamp.
pub(crate) type RequestKey = (ClientId, u64);

/// Outcome of offering a request to the pending set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Newly held.
    New,
    /// Already held.
    Known,
    /// The client already has as many pending requests as allowed.
    Full,
}

/// Pending requests in arrival order; those not yet proposed in the current
/// view are kept in their own queue, so the primary takes a batch without
/// walking past the ones it already proposed.
#[derive(Debug)]
pub(crate) struct Pending {
    cap_per_client: usize,
    requests: BTreeMap<RequestKey, (u64, Signed<Request>)>,
    arrival: BTreeMap<u64, RequestKey>,
    per_client: BTreeMap<ClientId, usize>,
    unproposed: BTreeMap<u64, RequestKey>,
    next_arrival: u64,
}

impl Pending {
    pub(crate) fn new(cap_per_client: usize) -> Pending {
        Pending {
            cap_per_client,
            requests: BTreeMap::new(),
            arrival: BTreeMap::new(),
            per_client: BTreeMap::new(),
            unproposed: BTreeMap::new(),
            next_arrival: 0,
        }
    }

    pub(crate) fn admit(&mut self, request: Signed<Request>) -> Admit {
        let key = (request.payload().client, request.payload().timestamp);
        if self.requests.contains_key(&key) {
            return Admit::Known;
        }
        let count = self.per_client.entry(key.0).or_insert(0);
        if *count >= self.cap_per_client {
            return Admit::Full;
        }
        *count += 1;
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.arrival.insert(arrival, key);
        self.unproposed.insert(arrival, key);
        self.requests.insert(key, (arrival, request));
        Admit::New
    }

    /// Forgets the request `(client, timestamp)`, which executed, and every
    /// request of `client` up to `stale_up_to`, which never will.
    pub(crate) fn remove_executed(&mut self, client: ClientId, timestamp: u64, stale_up_to: u64) {
        self.remove_up_to(client, stale_up_to);
        self.remove(client, timestamp);
    }

    /// Forgets every request of `client` with a timestamp up to `up_to`.
    pub(crate) fn remove_up_to(&mut self, client: ClientId, up_to: u64) {
        let keys: Vec<RequestKey> =
            self.requests.range((client, 0)..=(client, up_to)).map(|(k, _)| *k).collect();
        for (client, timestamp) in keys {
            self.remove(client, timestamp);
        }
    }

    fn remove(&mut self, client: ClientId, timestamp: u64) {
        let key = (client, timestamp);
        if let Some((arrival, _)) = self.requests.remove(&key) {
            self.arrival.remove(&arrival);
            self.unproposed.remove(&arrival);
            if let Some(count) = self.per_client.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    self.per_client.remove(&client);
                }
            }
        }
    }

    /// Forgets every request of `client` that `replies` shows executed or stale.
    pub(crate) fn remove_settled(&mut self, client: ClientId, replies: &super::ClientReplies, window: usize) {
        let keys: Vec<RequestKey> = self
            .requests
            .range((client, 0)..=(client, u64::MAX))
            .filter(|(k, _)| replies.seen(k.1, window) != super::replies::Seen::New)
            .map(|(k, _)| *k)
            .collect();
        for (client, timestamp) in keys {
            self.remove(client, timestamp);
        }
    }

    /// The request held longest.
    pub(crate) fn oldest(&self) -> Option<RequestKey> {
        self.arrival.first_key_value().map(|(_, key)| *key)
    }

    /// Whether `key` is held.
    pub(crate) fn contains(&self, key: RequestKey) -> bool {
        self.requests.contains_key(&key)
    }

    pub(crate) fn len(&self) -> usize {
        self.requests.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// How many held requests have not been proposed in the current view.
    pub(crate) fn unproposed(&self) -> usize {
        self.unproposed.len()
    }

    /// Takes up to `max` unproposed requests, oldest first, whose operations
    /// total at most `max_bytes` (the first one whatever its size), and marks
    /// them proposed.
    pub(crate) fn take_batch(&mut self, max: usize, max_bytes: usize) -> Vec<Signed<Request>> {
        let mut batch = Vec::with_capacity(max.min(self.unproposed.len()));
        let mut bytes = 0usize;
        while batch.len() < max {
            let Some((&arrival, &key)) = self.unproposed.first_key_value() else { break };
            let Some((_, request)) = self.requests.get(&key) else {
                self.unproposed.remove(&arrival);
                continue;
            };
            let size = request.payload().op.len();
            if !batch.is_empty() && bytes.saturating_add(size) > max_bytes {
                break;
            }
            self.unproposed.remove(&arrival);
            bytes = bytes.saturating_add(size);
            batch.push(request.clone());
        }
        batch
    }

    /// A new view starts: only the requests in `in_flight` count as proposed.
    pub(crate) fn reset_proposed<'a>(&mut self, in_flight: impl IntoIterator<Item = &'a Request>) {
        let in_flight: BTreeSet<RequestKey> =
            in_flight.into_iter().map(|r| (r.client, r.timestamp)).collect();
        self.unproposed =
            self.arrival.iter().filter(|(_, key)| !in_flight.contains(key)).map(|(a, k)| (*a, *k)).collect();
    }

    /// Every held request, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Signed<Request>> {
        self.arrival.values().filter_map(|key| self.requests.get(key).map(|(_, r)| r))
    }
}
