//! The sans-IO client (OSDI'99 §4.1): signs requests, collects f+1 matching
//! replies, re-sends to every replica on timeout, and tracks the view.

use crate::ids::{ClientId, ReplicaId, View};
use crate::keys::SecretKey;
use crate::message::{Reply, Request};
use crate::quorum::Quorum;
use crate::signed::Signed;
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};

/// What a client asks its host to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Send the request to one replica (the primary the client believes in).
    Send {
        /// The replica.
        to: ReplicaId,
        /// The request.
        request: Signed<Request>,
    },
    /// Send the request to every replica.
    Broadcast(Signed<Request>),
    /// The request with this timestamp completed: f+1 replicas sent this result.
    Completed {
        /// The request's timestamp.
        timestamp: u64,
        /// The agreed result.
        result: Vec<u8>,
    },
}

/// Why a client could not start a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// One request at a time: the previous one has not completed.
    #[error("a request (timestamp {0}) is still in flight")]
    Busy(u64),
}

struct InFlight {
    request: Signed<Request>,
    replies: BTreeMap<ReplicaId, (View, Vec<u8>)>,
    deadline: Time,
}

/// A PBFT client with at most one request in flight.
pub struct Client {
    id: ClientId,
    secret: SecretKey,
    quorum: Quorum,
    view: View,
    next_timestamp: u64,
    retry_timeout_ms: u64,
    in_flight: Option<InFlight>,
    outputs: VecDeque<ClientOutput>,
}

impl Client {
    /// A client of a cluster with `quorum`, whose next request gets
    /// `first_timestamp` (which must exceed every timestamp this client id used
    /// before, or replicas treat its requests as old).
    pub fn new(
        id: ClientId,
        secret: SecretKey,
        quorum: Quorum,
        retry_timeout_ms: u64,
        first_timestamp: u64,
    ) -> Client {
        Client {
            id,
            secret,
            quorum,
            view: 0,
            next_timestamp: first_timestamp.max(1),
            retry_timeout_ms: retry_timeout_ms.max(1),
            in_flight: None,
            outputs: VecDeque::new(),
        }
    }

    /// Signs `op` as the next request and sends it to the believed primary.
    /// Returns the request's timestamp.
    pub fn invoke(&mut self, now: Time, op: Vec<u8>) -> Result<u64, ClientError> {
        if let Some(in_flight) = &self.in_flight {
            return Err(ClientError::Busy(in_flight.request.payload().timestamp));
        }
        let timestamp = self.next_timestamp;
        self.next_timestamp += 1;
        let request = Signed::sign(Request { client: self.id, timestamp, op }, &self.secret);
        self.outputs
            .push_back(ClientOutput::Send { to: self.quorum.primary(self.view), request: request.clone() });
        self.in_flight =
            Some(InFlight { request, replies: BTreeMap::new(), deadline: now + self.retry_timeout_ms });
        Ok(timestamp)
    }

    /// Handles a reply that arrived over the authenticated channel from `from`.
    /// Replies that do not match the request in flight, or that claim another
    /// sender than the channel's, are ignored.
    pub fn handle_reply(&mut self, _now: Time, from: ReplicaId, reply: Reply) {
        let Some(in_flight) = &mut self.in_flight else { return };
        let expected = in_flight.request.payload();
        if reply.replica != from
            || reply.client != self.id
            || reply.timestamp != expected.timestamp
            || !self.quorum.contains(from)
        {
            return;
        }
        in_flight.replies.entry(from).or_insert((reply.view, reply.result));
        let mut votes: BTreeMap<&Vec<u8>, Vec<View>> = BTreeMap::new();
        for (view, result) in in_flight.replies.values() {
            votes.entry(result).or_default().push(*view);
        }
        let weak = self.quorum.weak();
        let Some((result, mut views)) = votes.into_iter().find(|(_, views)| views.len() >= weak) else {
            return;
        };
        // At least one of any f+1 replies is honest: the view that f+1 of the
        // matching replies reach is one an honest replica is in.
        views.sort_unstable_by(|a, b| b.cmp(a));
        self.view = self.view.max(views[weak - 1]);
        let (timestamp, result) = (expected.timestamp, result.clone());
        self.in_flight = None;
        self.outputs.push_back(ClientOutput::Completed { timestamp, result });
    }

    /// On the retry deadline, re-sends the request in flight to every replica.
    pub fn handle_timeout(&mut self, now: Time) {
        if let Some(in_flight) = &mut self.in_flight {
            if in_flight.deadline <= now {
                in_flight.deadline = now + self.retry_timeout_ms;
                self.outputs.push_back(ClientOutput::Broadcast(in_flight.request.clone()));
            }
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.outputs.pop_front()
    }

    /// When [`Client::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.in_flight.as_ref().map(|f| f.deadline)
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The view the client believes the cluster is in.
    pub fn view(&self) -> View {
        self.view
    }

    /// Whether a request is in flight.
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }
}
