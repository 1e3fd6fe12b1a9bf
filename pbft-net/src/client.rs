//! The client driver: a sans-IO [`Client`] pumped by a tokio task over a
//! [`ClientNet`], and a one-shot status probe.

use crate::endpoint::{ClientNet, NetError, NetLimits, ReplicaAddress};
use crate::identity::Peer;
use crate::link::{frame_of, Inbound};
use crate::request_trace::RequestTrace;
use crate::wire::{NodeStatus, Wire};
use pbft_core::{Client, ClientError, ClientId, ClientOutput, Message, Quorum, ReplicaId, SecretKey, Time};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// Why an invocation returned no result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvokeError {
    /// No f+1 matching replies arrived in time. The request is not sent
    /// again; what was sent may still execute, but it was not reported as
    /// done.
    #[error("no result within {0:?}: fewer than f+1 replicas answered alike")]
    TimedOut(Duration),
    /// The client task has stopped.
    #[error("the client has shut down")]
    Closed,
    /// f+1 replicas answered that another request of this client identity
    /// executed under the request's timestamp: another process is using
    /// the same client id, or this machine's clock went back. The request
    /// will not execute.
    #[error(
        "another request of this client id already executed under timestamp {0}: is another process \
         using the same client id? (this request did not execute)"
    )]
    TimestampReused(u64),
    /// The request executed, but its result was this many bytes, over the
    /// cluster's `max_result_bytes`: replicas withheld it.
    #[error(
        "the request executed, but its result was {0} bytes, over the cluster's protocol.max_result_bytes; \
         replicas did not keep or send it"
    )]
    ResultWithheld(u64),
    /// The operation is over the cluster's `max_request_bytes`: it was not
    /// sent, since every replica would drop it.
    #[error("the operation is {size} bytes, over the cluster's protocol.max_request_bytes ({limit}); it was not sent")]
    TooLarge {
        /// The operation's size.
        size: usize,
        /// The cluster's limit.
        limit: usize,
    },
}

/// How a [`ClientHandle`] talks to its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long before a request not yet completed is sent to every replica again.
    pub retry_timeout_ms: u64,
    /// Most requests outstanding at once: the cluster's `max_pending_per_client`.
    pub window: usize,
    /// Where timestamps start, if not at the wall clock in microseconds
    /// (still above what the replicas report): for an application that
    /// keeps its own counter.
    pub first_timestamp: Option<u64>,
    /// Largest operation sent: the cluster's `max_request_bytes`. Larger
    /// ones end in [`InvokeError::TooLarge`] without being sent.
    pub max_request_bytes: usize,
    /// Largest result a replica sends: the cluster's `max_result_bytes`.
    /// A replica's frame over what a reply of it (or a request) takes
    /// closes that connection (see [`NetLimits::for_client`]).
    pub max_result_bytes: usize,
}

impl ClientOptions {
    /// Retries every `retry_timeout_ms`, up to `window` outstanding, the
    /// default protocol's request size limit, timestamps from the clock,
    /// and results up to the largest any cluster may send (half a message):
    /// not knowing the cluster's `max_result_bytes`, it must not refuse a
    /// reply the cluster allows. `ClusterConfig::client_options` sets both
    /// limits from the cluster's config.
    pub fn new(retry_timeout_ms: u64, window: usize) -> ClientOptions {
        ClientOptions {
            retry_timeout_ms,
            window,
            first_timestamp: None,
            max_request_bytes: pbft_core::ProtocolConfig::default().max_request_bytes,
            max_result_bytes: pbft_core::codec::MAX_MESSAGE_BYTES / 2,
        }
    }
}

/// Where an invocation's outcome goes.
type Done = oneshot::Sender<Result<Completed, InvokeError>>;

struct Invocation {
    op: Vec<u8>,
    read_only: bool,
    done: Done,
}

/// An invocation's result, with which request carried it: what a trace of
/// the request asks the replicas about ([`query_traces`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The result f+1 replicas agreed on (2f+1 for an unordered read).
    pub result: Vec<u8>,
    /// The client that sent the request.
    pub client: ClientId,
    /// The request's timestamp (its id among the client's requests).
    pub timestamp: u64,
    /// When the request was first sent, in wall-clock microseconds since
    /// the Unix epoch (see [`crate::unix_micros`]).
    pub sent_at: u64,
}

/// A connected PBFT client: hands operations to the cluster in the order they
/// were invoked, up to `window` at once, and returns each result that f+1
/// replicas agreed on (2f+1 for an unordered read). Invocations may run
/// concurrently from many tasks: share the handle behind an `Arc`.
pub struct ClientHandle {
    invocations: mpsc::Sender<Invocation>,
    /// Wakes the client task when a caller gave up waiting, so that the
    /// request leaves the window at once.
    given_up: Arc<Notify>,
}

impl ClientHandle {
    /// Connects client `id` to `replicas`; requests it has not completed are
    /// re-sent to every replica every `retry_timeout_ms`, and at most
    /// `window` are outstanding (the cluster's `max_pending_per_client`).
    /// Must run inside a tokio runtime.
    ///
    /// Timestamps start at the wall clock in microseconds, or above the
    /// highest one of this client id that the replicas executed if that is
    /// higher: before its first request the client asks every replica, and
    /// takes the (f+1)-th highest of the first 2f+1 answers (at most f
    /// replicas lie, so it is no higher than an honest replica's), waiting
    /// at most `retry_timeout_ms`. So a clock stepped back, or a restart on
    /// a machine whose clock is behind, does not leave the client's
    /// requests below its window, refused as stale.
    pub fn connect(
        id: ClientId,
        secret: &SecretKey,
        replicas: &[ReplicaAddress],
        retry_timeout_ms: u64,
        window: usize,
    ) -> Result<ClientHandle, NetError> {
        Self::connect_with(id, secret, replicas, ClientOptions::new(retry_timeout_ms, window))
    }

    /// [`ClientHandle::connect`] with timestamps from `first_timestamp`
    /// instead of the wall clock (still above what the replicas report): for
    /// an application that keeps its own counter.
    pub fn connect_from(
        id: ClientId,
        secret: &SecretKey,
        replicas: &[ReplicaAddress],
        retry_timeout_ms: u64,
        window: usize,
        first_timestamp: u64,
    ) -> Result<ClientHandle, NetError> {
        let options = ClientOptions {
            first_timestamp: Some(first_timestamp),
            ..ClientOptions::new(retry_timeout_ms, window)
        };
        Self::connect_with(id, secret, replicas, options)
    }

    /// [`ClientHandle::connect`] with every option spelled out: what a
    /// client of a cluster config uses, with the config's limits.
    pub fn connect_with(
        id: ClientId,
        secret: &SecretKey,
        replicas: &[ReplicaAddress],
        options: ClientOptions,
    ) -> Result<ClientHandle, NetError> {
        let quorum = Quorum::new(replicas.len()).ok_or(NetError::UnknownReplica(ReplicaId(0)))?;
        let limits =
            NetLimits::for_client(options.max_request_bytes, options.max_result_bytes, options.window);
        let (net, inbox) = ClientNet::connect(secret, replicas, true, limits)?;
        let first_timestamp = options.first_timestamp.unwrap_or_else(fresh_timestamp);
        let client = Client::new(id, secret.clone(), quorum, options.retry_timeout_ms, first_timestamp)
            .with_window(options.window)
            .with_max_request_bytes(options.max_request_bytes);
        let (invocations, queue) = mpsc::channel(1024);
        let ready = LinksReady {
            links: quorum.quorum() as u64,
            within: Duration::from_millis(options.retry_timeout_ms),
        };
        let given_up = Arc::new(Notify::new());
        tokio::spawn(run_client(client, quorum, net, inbox, queue, ready, given_up.clone()));
        Ok(ClientHandle { invocations, given_up })
    }

    /// Runs `op` on the replicated service and returns its result.
    pub async fn invoke(&self, op: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        Ok(self.submit(op, false).await?.result)
    }

    /// Runs the read-only `query` (the application's `query`), unordered
    /// when 2f+1 replicas answer alike, ordered otherwise.
    pub async fn query(&self, query: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        Ok(self.submit(query, true).await?.result)
    }

    /// [`ClientHandle::invoke`] (or, with `read_only`, [`ClientHandle::query`])
    /// within `timeout`, telling which request carried it.
    pub async fn submit_within(
        &self,
        op: Vec<u8>,
        read_only: bool,
        timeout: Duration,
    ) -> Result<Completed, InvokeError> {
        self.within(timeout, self.submit(op, read_only)).await
    }

    /// `invocation`'s outcome, or [`InvokeError::TimedOut`] after `timeout`
    /// (and then the request is given up on: never sent again).
    async fn within<T>(
        &self,
        timeout: Duration,
        invocation: impl Future<Output = Result<T, InvokeError>>,
    ) -> Result<T, InvokeError> {
        let outcome = tokio::time::timeout(timeout, invocation).await;
        if outcome.is_err() {
            self.given_up.notify_one();
        }
        outcome.map_err(|_| InvokeError::TimedOut(timeout))?
    }

    async fn submit(&self, op: Vec<u8>, read_only: bool) -> Result<Completed, InvokeError> {
        let (done, result) = oneshot::channel();
        let invocation = Invocation { op, read_only, done };
        self.invocations.send(invocation).await.map_err(|_| InvokeError::Closed)?;
        result.await.map_err(|_| InvokeError::Closed)?
    }

    /// [`ClientHandle::invoke`], giving up after `timeout`.
    pub async fn invoke_within(&self, op: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        self.within(timeout, self.invoke(op)).await
    }

    /// [`ClientHandle::query`], giving up after `timeout`.
    pub async fn query_within(&self, query: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        self.within(timeout, self.query(query)).await
    }
}

/// A timestamp above any this client id used before: microseconds of wall
/// time, so a restarted client process never reuses one.
fn fresh_timestamp() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How many replicas must have this client's hello before its first request
/// goes out, and how long to wait for them at most.
struct LinksReady {
    links: u64,
    within: Duration,
}

/// Waits until `ready.links` links are up or `ready.within` passed. A replica
/// answers a client only once it has the client's hello: a request sent
/// while fewer than f+1 replicas have it can execute with too few answers
/// delivered, and then waits for the retry (seen as 0.5 s stalls at the start
/// of benchmark runs). A quorum is enough, so f dead replicas cost nothing.
async fn wait_for_links(net: &ClientNet, ready: &LinksReady) {
    let deadline = Instant::now() + ready.within;
    while net.counters().links_up < ready.links && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asks every replica for the highest timestamp of this client's that
/// executed, and returns the (f+1)-th highest of the first 2f+1 answers
/// (`None` if fewer than f+1 answered within `within`): at most f answers
/// lie, so it is no higher than an honest replica's.
async fn newest_executed(
    net: &ClientNet,
    inbox: &mut mpsc::Receiver<Inbound>,
    quorum: Quorum,
    within: Duration,
) -> Option<u64> {
    net.broadcast(&frame_of(&Wire::TimestampQuery));
    let deadline = Instant::now() + within;
    let mut answers: BTreeMap<ReplicaId, u64> = BTreeMap::new();
    while answers.len() < quorum.quorum() {
        match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Ok(Some(Inbound { from: Peer::Replica(replica), wire: Wire::Timestamp { newest }, .. })) => {
                answers.insert(replica, newest);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let mut newest: Vec<u64> = answers.into_values().collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    newest.get(quorum.weak() - 1).copied()
}

async fn run_client(
    mut client: Client,
    quorum: Quorum,
    net: ClientNet,
    mut inbox: mpsc::Receiver<Inbound>,
    mut queue: mpsc::Receiver<Invocation>,
    ready: LinksReady,
    given_up: Arc<Notify>,
) {
    wait_for_links(&net, &ready).await;
    if let Some(newest) = newest_executed(&net, &mut inbox, quorum, ready.within).await {
        client.skip_past(newest);
    }
    let start = Instant::now();
    let now = || Time(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let id = client.id();
    let mut waiting: BTreeMap<u64, (Done, u64)> = BTreeMap::new();
    let mut accepting = true;
    loop {
        abandon_given_up(&mut client, &mut waiting);
        if !client.is_busy() && !accepting && waiting.is_empty() {
            break;
        }
        let deadline = client.poll_timeout().map(|Time(ms)| start + Duration::from_millis(ms));
        tokio::select! {
            invocation = queue.recv(), if accepting && client.can_start() => match invocation {
                // Its caller stopped waiting before it could start: it is
                // never sent.
                Some(Invocation { done, .. }) if done.is_closed() => {}
                Some(Invocation { op, read_only, done }) => {
                    let sent_at = crate::request_trace::unix_micros();
                    let started = if read_only { client.query(now(), op) } else { client.invoke(now(), op) };
                    match started {
                        Ok(timestamp) => {
                            waiting.insert(timestamp, (done, sent_at));
                        }
                        Err(ClientError::TooLarge { size, limit }) => {
                            let _ = done.send(Err(InvokeError::TooLarge { size, limit }));
                        }
                        // Never: a request starts only while the window has room.
                        Err(ClientError::Busy(_)) => {}
                    }
                }
                None => accepting = false,
            },
            inbound = inbox.recv() => match inbound {
                Some(Inbound { from: Peer::Replica(replica), wire: Wire::Reply(reply), .. }) => {
                    client.handle_reply(now(), replica, reply);
                }
                Some(_) => {}
                None => break,
            },
            () = given_up.notified() => {}
            _ = sleep_until(deadline) => {
                abandon_given_up(&mut client, &mut waiting);
                client.handle_timeout(now());
            }
        }
        while let Some(output) = client.poll_output() {
            match output {
                // Never queued for a link that is down (see `send_if_up`),
                // so a request given up on is not delivered later.
                ClientOutput::Send { to, request } => {
                    net.send_if_up(to, frame_of(&Wire::Message(Message::Request(request))))
                }
                ClientOutput::Broadcast(request) => {
                    net.broadcast_if_up(&frame_of(&Wire::Message(Message::Request(request))))
                }
                ClientOutput::Completed { timestamp, result } => {
                    if let Some((done, sent_at)) = waiting.remove(&timestamp) {
                        let _ = done.send(Ok(Completed { result, client: id, timestamp, sent_at }));
                    }
                }
                ClientOutput::TimestampReused { timestamp } => {
                    if let Some((done, _)) = waiting.remove(&timestamp) {
                        let _ = done.send(Err(InvokeError::TimestampReused(timestamp)));
                    }
                }
                ClientOutput::ResultWithheld { timestamp, bytes } => {
                    if let Some((done, _)) = waiting.remove(&timestamp) {
                        let _ = done.send(Err(InvokeError::ResultWithheld(bytes)));
                    }
                }
            }
        }
    }
    net.close().await;
}

/// Requests whose caller stopped waiting (a `*_within` that timed out, which
/// wakes the task at once; a dropped future, noticed by the next retry at
/// the latest) are given up on: never re-sent, and out of the window so that
/// the next invocation need not wait for them.
fn abandon_given_up(client: &mut Client, waiting: &mut BTreeMap<u64, (Done, u64)>) {
    waiting.retain(|timestamp, (done, _)| {
        let given_up = done.is_closed();
        if given_up {
            client.abandon(*timestamp);
        }
        !given_up
    });
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Asks every replica for its status as the client holding `secret`, waiting
/// at most `timeout`. Entry `i` is replica `i`'s answer, `None` if it did not
/// answer in time.
pub async fn query_status(
    secret: &SecretKey,
    replicas: &[ReplicaAddress],
    timeout: Duration,
) -> Result<Vec<Option<NodeStatus>>, NetError> {
    ask_every_replica(secret, replicas, Wire::StatusQuery, timeout, |wire| match wire {
        Wire::Status(status) => Some(status),
        _ => None,
    })
    .await
}

/// Asks every replica, as the client holding `secret`, what it knows of
/// `client`'s request `timestamp` (see [`crate::RequestTrace`]), waiting at
/// most `timeout`. Entry `i` is replica `i`'s record; `None` if it did not
/// answer in time or keeps no record of that request.
pub async fn query_traces(
    secret: &SecretKey,
    replicas: &[ReplicaAddress],
    client: ClientId,
    timestamp: u64,
    timeout: Duration,
) -> Result<Vec<Option<RequestTrace>>, NetError> {
    let question = Wire::TraceQuery { client: client.0, timestamp };
    let answers = ask_every_replica(secret, replicas, question, timeout, |wire| match wire {
        Wire::Trace(answer) if answer.client == client.0 && answer.timestamp == timestamp => Some(answer),
        _ => None,
    })
    .await?;
    Ok(answers.into_iter().map(|answer| answer.and_then(|a| a.trace)).collect())
}

/// Sends `question` to every replica and collects the first answer each
/// gives that `answer` accepts, until all answered or `timeout` passed.
async fn ask_every_replica<T: Clone>(
    secret: &SecretKey,
    replicas: &[ReplicaAddress],
    question: Wire,
    timeout: Duration,
    answer: impl Fn(Wire) -> Option<T>,
) -> Result<Vec<Option<T>>, NetError> {
    let (net, mut inbox) = ClientNet::connect(secret, replicas, false, NetLimits::default())?;
    net.broadcast(&frame_of(&question));
    let mut answers: Vec<Option<T>> = vec![None; replicas.len()];
    let deadline = Instant::now() + timeout;
    while answers.iter().any(Option::is_none) {
        match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Ok(Some(Inbound { from: Peer::Replica(replica), wire, .. })) => {
                if let (Some(slot), Some(value)) = (answers.get_mut(replica.index()), answer(wire)) {
                    *slot = Some(value);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    net.close().await;
    Ok(answers)
}
