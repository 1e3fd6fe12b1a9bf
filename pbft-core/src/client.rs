//! The sans-IO client (OSDI'99 §4.1, §5.1): signs requests, collects f+1
//! matching replies (2f+1 for unordered reads), re-sends to every replica on
//! timeout, falls back to ordering a read whose answers disagree, and tracks
//! the view.
//!
//! A client keeps up to `window` requests outstanding (the protocol's
//! `max_pending_per_client`). It issues timestamp `t` only once every
//! timestamp up to `t - window` has completed, which is what lets replicas
//! execute a client's concurrent requests exactly once in any order.

use crate::config::ProtocolConfig;
use crate::ids::{ClientId, ReplicaId, View};
use crate::keys::SecretKey;
use crate::message::{Reply, Request, RequestKind};
use crate::quorum::Quorum;
use crate::signed::Signed;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
    /// The request with this timestamp completed with this result.
    Completed {
        /// The request's timestamp, as [`Client::invoke`] or [`Client::query`] returned it.
        timestamp: u64,
        /// The agreed result.
        result: Vec<u8>,
    },
    /// The request with this timestamp completed, but its result was
    /// `bytes` long, over the cluster's `max_result_bytes`, so replicas
    /// withheld it. The request executed; only its result is lost.
    ResultWithheld {
        /// The request's timestamp.
        timestamp: u64,
        /// The size of the result the application returned.
        bytes: u64,
    },
    /// f+1 replicas answered that another request of this client had
    /// executed under this timestamp (another process uses the same client
    /// identity, or the clock the timestamps came from went back). This
    /// request will never execute; the client stopped sending it.
    TimestampReused {
        /// The request's timestamp.
        timestamp: u64,
    },
}

/// Why a client could not start a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// The window is full: the oldest outstanding request (this timestamp)
    /// must complete first.
    #[error("the request window is full until the request with timestamp {0} completes")]
    Busy(u64),
    /// The operation is larger than the cluster's `max_request_bytes`:
    /// replicas would drop it, so it is not sent.
    #[error("the operation is {size} bytes, over the cluster's protocol.max_request_bytes ({limit})")]
    TooLarge {
        /// The operation's size.
        size: usize,
        /// The cluster's limit.
        limit: usize,
    },
}

/// What one replica answered: the result, or the size of a withheld one.
/// Replies are counted towards a result only when their answers are equal.
type Answer = (Option<u64>, Vec<u8>);

struct InFlight {
    request: Signed<Request>,
    replies: BTreeMap<ReplicaId, (View, Answer)>,
    /// Replicas whose reply named another request under this timestamp.
    reused: BTreeSet<ReplicaId>,
    deadline: Time,
}

/// A PBFT client with up to `window` requests in flight.
pub struct Client {
    id: ClientId,
    secret: SecretKey,
    quorum: Quorum,
    view: View,
    next_timestamp: u64,
    retry_timeout_ms: u64,
    window: u64,
    max_request_bytes: usize,
    in_flight: BTreeMap<u64, InFlight>,
    outputs: VecDeque<ClientOutput>,
}

impl Client {
    /// A client of a cluster with `quorum`, whose next request gets
    /// `first_timestamp` (which must exceed every timestamp this client id used
    /// before, or replicas treat its requests as old). One request at a time
    /// until [`Client::with_window`] allows more.
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
            window: 1,
            max_request_bytes: ProtocolConfig::default().max_request_bytes,
            in_flight: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Allows `window` requests in flight at once. Must not exceed the
    /// cluster's `max_pending_per_client`, or replicas may drop requests.
    pub fn with_window(mut self, window: usize) -> Client {
        self.window = u64::try_from(window.max(1)).unwrap_or(u64::MAX);
        self
    }

    /// Refuses operations over `bytes` (the cluster's `max_request_bytes`;
    /// the default's unless set).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Client {
        self.max_request_bytes = bytes;
        self
    }

    /// Signs `op` as the next request, a state-changing operation, and sends
    /// it to the believed primary. Returns the request's timestamp.
    pub fn invoke(&mut self, now: Time, op: Vec<u8>) -> Result<u64, ClientError> {
        self.start(now, op, RequestKind::Write)
    }

    /// Signs `op` as a read-only query and sends it to every replica, which
    /// answer without ordering it; completes on 2f+1 matching answers, and
    /// orders the query instead when they disagree or do not arrive in time.
    /// Returns the request's timestamp.
    pub fn query(&mut self, now: Time, op: Vec<u8>) -> Result<u64, ClientError> {
        self.start(now, op, RequestKind::UnorderedRead)
    }

    /// Whether a new request would fit in the window.
    pub fn can_start(&self) -> bool {
        self.in_flight.keys().next().is_none_or(|oldest| self.next_timestamp < oldest + self.window)
    }

    fn start(&mut self, now: Time, op: Vec<u8>, kind: RequestKind) -> Result<u64, ClientError> {
        if let Some(oldest) = self.in_flight.keys().next().filter(|_| !self.can_start()) {
            return Err(ClientError::Busy(*oldest));
        }
        if op.len() > self.max_request_bytes {
            return Err(ClientError::TooLarge { size: op.len(), limit: self.max_request_bytes });
        }
        let timestamp = self.next_timestamp;
        self.next_timestamp += 1;
        let request = Signed::sign(Request { client: self.id, timestamp, op, kind }, &self.secret);
        self.send(&request);
        let in_flight = InFlight {
            request,
            replies: BTreeMap::new(),
            reused: BTreeSet::new(),
            deadline: now + self.retry_timeout_ms,
        };
        self.in_flight.insert(timestamp, in_flight);
        Ok(timestamp)
    }

    fn send(&mut self, request: &Signed<Request>) {
        let output = match request.payload().kind {
            RequestKind::UnorderedRead => ClientOutput::Broadcast(request.clone()),
            RequestKind::Write | RequestKind::Read => {
                ClientOutput::Send { to: self.quorum.primary(self.view), request: request.clone() }
            }
        };
        self.outputs.push_back(output);
    }

    /// Handles a reply that arrived over the authenticated channel from `from`.
    /// Replies that match no request in flight, that claim another sender than
    /// the channel's, or whose kind (ordered or not) differs from the
    /// request's, are ignored. A reply naming another request than the one
    /// in flight under its timestamp never counts towards a result; f+1 of
    /// them end the request with [`ClientOutput::TimestampReused`].
    pub fn handle_reply(&mut self, now: Time, from: ReplicaId, reply: Reply) {
        if reply.replica != from || reply.client != self.id || !self.quorum.contains(from) {
            return;
        }
        let timestamp = reply.timestamp;
        let Some(in_flight) = self.in_flight.get_mut(&timestamp) else { return };
        let unordered = in_flight.request.payload().kind == RequestKind::UnorderedRead;
        if reply.unordered != unordered {
            return;
        }
        if reply.request != in_flight.request.digest() {
            in_flight.reused.insert(from);
            // At least one of f+1 is honest: another request did execute
            // under this timestamp, so this one never will.
            if !unordered && in_flight.reused.len() >= self.quorum.weak() {
                self.in_flight.remove(&timestamp);
                self.outputs.push_back(ClientOutput::TimestampReused { timestamp });
            }
            return;
        }
        in_flight.replies.entry(from).or_insert((reply.view, (reply.withheld, reply.result)));
        let needed = if unordered { self.quorum.quorum() } else { self.quorum.weak() };
        let mut votes: BTreeMap<&Answer, Vec<View>> = BTreeMap::new();
        for (view, result) in in_flight.replies.values() {
            votes.entry(result).or_default().push(*view);
        }
        let most = votes.values().map(Vec::len).max().unwrap_or(0);
        let Some((result, mut views)) = votes.into_iter().find(|(_, views)| views.len() >= needed) else {
            let unanswered = self.quorum.n() - in_flight.replies.len();
            if unordered && most + unanswered < needed {
                self.order_read(now, timestamp);
            }
            return;
        };
        if !unordered {
            // At least one of any f+1 replies is honest: the view that f+1 of
            // the matching replies reach is one an honest replica is in.
            views.sort_unstable_by(|a, b| b.cmp(a));
            self.view = self.view.max(views[needed - 1]);
        }
        let output = match result.clone() {
            (Some(bytes), _) => ClientOutput::ResultWithheld { timestamp, bytes },
            (None, result) => ClientOutput::Completed { timestamp, result },
        };
        self.in_flight.remove(&timestamp);
        self.outputs.push_back(output);
    }

    /// The unordered read `timestamp` cannot gather 2f+1 matching answers:
    /// order it under the same timestamp. Replies to the unordered attempt
    /// are discarded and, marked unordered, never count again.
    fn order_read(&mut self, now: Time, timestamp: u64) {
        let Some(in_flight) = self.in_flight.get_mut(&timestamp) else { return };
        let body = in_flight.request.payload();
        let request =
            Request { client: body.client, timestamp, op: body.op.clone(), kind: RequestKind::Read };
        in_flight.request = Signed::sign(request, &self.secret);
        in_flight.replies.clear();
        in_flight.reused.clear();
        in_flight.deadline = now + self.retry_timeout_ms;
        let request = in_flight.request.clone();
        self.send(&request);
    }

    /// On a retry deadline: re-sends an ordered request to every replica;
    /// orders an unordered read that has not completed.
    pub fn handle_timeout(&mut self, now: Time) {
        let due: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(timestamp, _)| *timestamp)
            .collect();
        for timestamp in due {
            let Some(in_flight) = self.in_flight.get_mut(&timestamp) else { continue };
            if in_flight.request.payload().kind == RequestKind::UnorderedRead {
                self.order_read(now, timestamp);
            } else {
                in_flight.deadline = now + self.retry_timeout_ms;
                self.outputs.push_back(ClientOutput::Broadcast(in_flight.request.clone()));
            }
        }
    }

    /// Makes the next request's timestamp exceed `timestamp` (if it does
    /// not already): how a client starting afresh moves past what its
    /// identity used before, as the replicas report it. Call it before the
    /// first request.
    pub fn skip_past(&mut self, timestamp: u64) {
        self.next_timestamp = self.next_timestamp.max(timestamp.saturating_add(1));
    }

    /// Gives up on the request `timestamp`: it is never sent again and no
    /// longer holds a place in the window. Returns whether it was in flight.
    ///
    /// What was sent already may still execute; once the client's
    /// timestamps have moved `window` past it, replicas treat it as stale
    /// and never execute it (see `replies`), so a request given up on does
    /// not run long after its caller was told it had no result.
    pub fn abandon(&mut self, timestamp: u64) -> bool {
        self.in_flight.remove(&timestamp).is_some()
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.outputs.pop_front()
    }

    /// When [`Client::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.in_flight.values().map(|f| f.deadline).min()
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The view the client believes the cluster is in.
    pub fn view(&self) -> View {
        self.view
    }

    /// Whether any request is in flight.
    pub fn is_busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// How many requests are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn client(window: usize) -> Client {
        let quorum = Quorum::new(4).expect("4 replicas make a quorum system");
        Client::new(ClientId(7), SecretKey::from_seed([7; 32]), quorum, 100, 1).with_window(window)
    }

    fn reply(replica: u32, timestamp: u64, request: Digest, result: &[u8]) -> Reply {
        Reply {
            view: 0,
            timestamp,
            client: ClientId(7),
            replica: ReplicaId(replica),
            request,
            result: result.to_vec(),
            withheld: None,
            unordered: false,
        }
    }

    /// The digest of every request `client` sent, by timestamp.
    fn sent_digests(client: &mut Client) -> BTreeMap<u64, Digest> {
        drain(client)
            .into_iter()
            .filter_map(|output| match output {
                ClientOutput::Send { request, .. } => Some((request.payload().timestamp, request.digest())),
                _ => None,
            })
            .collect()
    }

    /// Issue 21, point 6: replies naming another request under the same
    /// timestamp (what replicas answer when a second process with this
    /// client's identity, or a clock stepped back, reuses it) never count
    /// towards the result, however many there are; f+1 of them end the
    /// request as TimestampReused. Replies naming the request complete it.
    #[test]
    fn a_result_of_another_request_under_the_same_timestamp_is_never_taken() {
        let mut client = client(2);
        let mine = client.invoke(Time(0), b"put k mine".to_vec()).unwrap();
        let theirs = client.invoke(Time(0), b"put k theirs".to_vec()).unwrap();
        let digests = sent_digests(&mut client);
        let other = Digest::of(b"another process's request");
        client.handle_reply(Time(1), ReplicaId(0), reply(0, mine, other, b"their result"));
        assert_eq!(drain(&mut client), Vec::new(), "one reply completes nothing");
        client.handle_reply(Time(1), ReplicaId(1), reply(1, mine, other, b"their result"));
        assert_eq!(drain(&mut client), vec![ClientOutput::TimestampReused { timestamp: mine }]);
        for replica in 2..4 {
            client.handle_reply(Time(2), ReplicaId(replica), reply(replica, mine, digests[&mine], b"mine"));
        }
        assert_eq!(drain(&mut client), Vec::new(), "the request ended: nothing more completes it");
        for replica in 0..2 {
            client.handle_reply(Time(3), ReplicaId(replica), reply(replica, theirs, digests[&theirs], b"ok"));
        }
        assert_eq!(
            drain(&mut client),
            vec![ClientOutput::Completed { timestamp: theirs, result: b"ok".to_vec() }]
        );
    }

    /// Issue 21, point 4: f+1 replies saying the result was withheld (over
    /// the cluster's `max_result_bytes`) end the request as ResultWithheld
    /// with its size; one such reply (a traitor's) never outvotes the
    /// results: withheld and whole answers are different answers.
    #[test]
    fn f_plus_one_withheld_replies_end_a_request_and_one_does_not() {
        let mut client = client(2);
        let first = client.invoke(Time(0), b"put k big".to_vec()).unwrap();
        let second = client.invoke(Time(0), b"put k small".to_vec()).unwrap();
        let digests = sent_digests(&mut client);
        let withheld = |replica, timestamp, bytes| Reply {
            result: Vec::new(),
            withheld: Some(bytes),
            ..reply(replica, timestamp, digests[&timestamp], b"")
        };
        client.handle_reply(Time(1), ReplicaId(0), withheld(0, first, 5_000_000));
        assert_eq!(drain(&mut client), Vec::new(), "one reply completes nothing");
        client.handle_reply(Time(1), ReplicaId(1), withheld(1, first, 5_000_000));
        assert_eq!(
            drain(&mut client),
            vec![ClientOutput::ResultWithheld { timestamp: first, bytes: 5_000_000 }]
        );
        client.handle_reply(Time(2), ReplicaId(0), withheld(0, second, 9));
        client.handle_reply(Time(2), ReplicaId(1), reply(1, second, digests[&second], b""));
        assert_eq!(drain(&mut client), Vec::new(), "a withheld answer does not match an empty result");
        client.handle_reply(Time(2), ReplicaId(2), reply(2, second, digests[&second], b""));
        assert_eq!(
            drain(&mut client),
            vec![ClientOutput::Completed { timestamp: second, result: Vec::new() }]
        );
    }

    /// An operation over the limit is refused before it is signed or sent,
    /// and takes no timestamp: the next request gets the one it would have.
    #[test]
    fn an_operation_over_the_request_limit_is_refused_and_never_sent() {
        let mut client = client(1).with_max_request_bytes(8);
        assert_eq!(client.invoke(Time(0), vec![7; 9]), Err(ClientError::TooLarge { size: 9, limit: 8 }));
        assert_eq!(client.query(Time(0), vec![7; 9]), Err(ClientError::TooLarge { size: 9, limit: 8 }));
        assert_eq!(drain(&mut client), Vec::new(), "nothing was sent");
        let first = client.invoke(Time(0), vec![7; 8]).unwrap();
        assert_eq!(first, 1, "the refused operations used no timestamp");
        assert!(matches!(drain(&mut client).as_slice(), [ClientOutput::Send { .. }]));
    }

    fn drain(client: &mut Client) -> Vec<ClientOutput> {
        std::iter::from_fn(|| client.poll_output()).collect()
    }

    /// A request given up on is never re-sent, frees its place in the
    /// window at once, and a late reply to it completes nothing.
    #[test]
    fn an_abandoned_request_is_never_sent_again() {
        let mut client = client(1);
        let first = client.invoke(Time(0), b"a".to_vec()).unwrap();
        assert!(matches!(drain(&mut client).as_slice(), [ClientOutput::Send { .. }]));
        assert_eq!(client.invoke(Time(1), b"b".to_vec()), Err(ClientError::Busy(first)));
        assert!(client.abandon(first));
        assert!(!client.abandon(first), "abandoned once only");
        let second = client.invoke(Time(2), b"b".to_vec()).unwrap();
        assert_eq!(second, first + 1);
        drain(&mut client);
        client.handle_timeout(Time(500));
        let resent: Vec<u64> = drain(&mut client)
            .into_iter()
            .filter_map(|output| match output {
                ClientOutput::Broadcast(request) => Some(request.payload().timestamp),
                _ => None,
            })
            .collect();
        assert_eq!(resent, vec![second], "only the request still wanted is re-sent");
        for replica in 0..4 {
            let reply = reply(replica, first, Digest::of(b"any"), b"late");
            client.handle_reply(Time(501), ReplicaId(replica), reply);
        }
        assert_eq!(drain(&mut client), Vec::new(), "late replies to it complete nothing");
    }
}
