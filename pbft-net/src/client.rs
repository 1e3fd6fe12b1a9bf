//! The client driver: a sans-IO [`Client`] pumped by a tokio task over a
//! [`ClientNet`], and a one-shot status probe.

use crate::endpoint::{ClientNet, NetError, NetLimits, ReplicaAddress};
use crate::identity::Peer;
use crate::link::{frame_of, Inbound};
use crate::request_trace::RequestTrace;
use crate::wire::{NodeStatus, Wire};
use pbft_core::{Client, ClientId, ClientOutput, Message, Quorum, ReplicaId, SecretKey, Time};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Why an invocation returned no result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvokeError {
    /// No f+1 matching replies arrived in time. The operation may still
    /// execute later; it was not reported as done.
    #[error("no result within {0:?}: fewer than f+1 replicas answered alike")]
    TimedOut(Duration),
    /// The client task has stopped.
    #[error("the client has shut down")]
    Closed,
}

struct Invocation {
    op: Vec<u8>,
    read_only: bool,
    done: oneshot::Sender<Completed>,
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
}

impl ClientHandle {
    /// Connects client `id` to `replicas`; requests it has not completed are
    /// re-sent to every replica every `retry_timeout_ms`, and at most
    /// `window` are outstanding (the cluster's `max_pending_per_client`).
    /// Must run inside a tokio runtime.
    pub fn connect(
        id: ClientId,
        secret: &SecretKey,
        replicas: &[ReplicaAddress],
        retry_timeout_ms: u64,
        window: usize,
    ) -> Result<ClientHandle, NetError> {
        let quorum = Quorum::new(replicas.len()).ok_or(NetError::UnknownReplica(ReplicaId(0)))?;
        let (net, inbox) = ClientNet::connect(secret, replicas, true, NetLimits::default())?;
        let client =
            Client::new(id, secret.clone(), quorum, retry_timeout_ms, fresh_timestamp()).with_window(window);
        let (invocations, queue) = mpsc::channel(1024);
        let ready =
            LinksReady { links: quorum.quorum() as u64, within: Duration::from_millis(retry_timeout_ms) };
        tokio::spawn(run_client(client, net, inbox, queue, ready));
        Ok(ClientHandle { invocations })
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
        tokio::time::timeout(timeout, self.submit(op, read_only))
            .await
            .map_err(|_| InvokeError::TimedOut(timeout))?
    }

    async fn submit(&self, op: Vec<u8>, read_only: bool) -> Result<Completed, InvokeError> {
        let (done, result) = oneshot::channel();
        let invocation = Invocation { op, read_only, done };
        self.invocations.send(invocation).await.map_err(|_| InvokeError::Closed)?;
        result.await.map_err(|_| InvokeError::Closed)
    }

    /// [`ClientHandle::invoke`], giving up after `timeout`.
    pub async fn invoke_within(&self, op: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        tokio::time::timeout(timeout, self.invoke(op)).await.map_err(|_| InvokeError::TimedOut(timeout))?
    }

    /// [`ClientHandle::query`], giving up after `timeout`.
    pub async fn query_within(&self, query: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, InvokeError> {
        tokio::time::timeout(timeout, self.query(query)).await.map_err(|_| InvokeError::TimedOut(timeout))?
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

async fn run_client(
    mut client: Client,
    net: ClientNet,
    mut inbox: mpsc::Receiver<Inbound>,
    mut queue: mpsc::Receiver<Invocation>,
    ready: LinksReady,
) {
    wait_for_links(&net, &ready).await;
    let start = Instant::now();
    let now = || Time(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let id = client.id();
    let mut waiting: BTreeMap<u64, (oneshot::Sender<Completed>, u64)> = BTreeMap::new();
    let mut accepting = true;
    loop {
        if !client.is_busy() && !accepting && waiting.is_empty() {
            break;
        }
        let deadline = client.poll_timeout().map(|Time(ms)| start + Duration::from_millis(ms));
        tokio::select! {
            invocation = queue.recv(), if accepting && client.can_start() => match invocation {
                Some(Invocation { op, read_only, done }) => {
                    let sent_at = crate::request_trace::unix_micros();
                    let started = if read_only { client.query(now(), op) } else { client.invoke(now(), op) };
                    if let Ok(timestamp) = started {
                        waiting.insert(timestamp, (done, sent_at));
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
            _ = sleep_until(deadline) => client.handle_timeout(now()),
        }
        while let Some(output) = client.poll_output() {
            match output {
                ClientOutput::Send { to, request } => {
                    net.send(to, frame_of(&Wire::Message(Message::Request(request))))
                }
                ClientOutput::Broadcast(request) => {
                    net.broadcast(&frame_of(&Wire::Message(Message::Request(request))))
                }
                ClientOutput::Completed { timestamp, result } => {
                    if let Some((done, sent_at)) = waiting.remove(&timestamp) {
                        let _ = done.send(Completed { result, client: id, timestamp, sent_at });
                    }
                }
            }
        }
    }
    net.close().await;
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
