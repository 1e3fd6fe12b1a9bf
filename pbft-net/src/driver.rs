//! The replica driver: pumps any sans-IO [`Node`] with real time and the QUIC
//! endpoint, following the core's call contract (input, drain outputs, read
//! the next deadline). It knows nothing of what the node wraps.

use crate::endpoint::ReplicaNet;
use crate::identity::Peer;
use crate::link::{frame_of, Inbound, Outbox};
use crate::wire::{NodeStatus, Wire};
use pbft_core::{ClientId, Event, Node, Output, Persist, Replica, ReplicatedStateMachine, Time};
use std::collections::BTreeMap;
use std::future::Future;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What `pbft status` shows of a replica (the driver fills in `net`).
pub fn replica_status<A: ReplicatedStateMachine>(replica: &Replica<A>) -> NodeStatus {
    let stable = replica.stable_checkpoint();
    NodeStatus {
        replica: replica.id().0,
        view: replica.view(),
        normal: replica.status() == pbft_core::Status::Normal,
        recovering: replica.is_recovering(),
        last_executed: replica.last_executed(),
        stable_checkpoint: stable.seq,
        stable_checkpoint_digest: stable.state_digest.to_string(),
        state_digest: replica.state_digest().to_string(),
        rejected_messages: replica.rejections().values().sum(),
        rejections: replica.rejections().iter().map(|(reason, count)| (reason.to_string(), *count)).collect(),
        net: Default::default(),
        disagreement: replica.last_disagreement().map(Into::into),
    }
}

/// Runs `replica` (any [`Node`]: a [`Replica`], or a wrapper around one)
/// on `net` until `shutdown` completes, then returns it. `status` says what a
/// status query is answered with (see [`replica_status`]).
///
/// Clients announce themselves with [`Wire::Hello`]; each client's replies
/// go to the connection it said hello on most recently.
pub async fn run_replica<N: Node>(
    mut replica: N,
    status: impl Fn(&N) -> NodeStatus,
    mut storage: impl Storage,
    net: ReplicaNet,
    mut inbox: mpsc::Receiver<Inbound>,
    shutdown: impl Future<Output = ()>,
) -> N {
    let start = Instant::now();
    let now = || Time(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut clients: BTreeMap<ClientId, Outbox> = BTreeMap::new();
    let mut persisting = Persisting::Healthy;
    tokio::pin!(shutdown);
    loop {
        let deadline = replica.poll_timeout().map(|Time(ms)| start + std::time::Duration::from_millis(ms));
        tokio::select! {
            _ = &mut shutdown => break,
            inbound = inbox.recv() => {
                let Some(inbound) = inbound else { break };
                let mut burst = vec![inbound];
                while burst.len() < MAX_BURST {
                    match inbox.try_recv() {
                        Ok(more) => burst.push(more),
                        Err(_) => break,
                    }
                }
                handle_burst(&mut replica, &status, &net, &mut clients, now(), burst);
            }
            _ = sleep_until(deadline) => replica.handle_timeout(now()),
        }
        drain(&mut replica, &net, &mut clients, &mut storage, &mut persisting);
    }
    net.close().await;
    replica
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// At most this many frames waiting in the inbox are taken at once, so that
/// their signatures can be checked together and outputs flushed between bursts.
const MAX_BURST: usize = 256;

/// Handles frames in arrival order, passing each run of protocol messages
/// to the replica in one call.
fn handle_burst<N: Node>(
    replica: &mut N,
    status: &impl Fn(&N) -> NodeStatus,
    net: &ReplicaNet,
    clients: &mut BTreeMap<ClientId, Outbox>,
    now: Time,
    burst: Vec<Inbound>,
) {
    let mut messages = Vec::new();
    for inbound in burst {
        match inbound.wire {
            Wire::Message(message) => messages.push(message),
            _ => {
                replica.receive_all(now, std::mem::take(&mut messages));
                handle_inbound(replica, status, net, clients, now, inbound);
            }
        }
    }
    replica.receive_all(now, messages);
}

fn handle_inbound<N: Node>(
    replica: &mut N,
    status: &impl Fn(&N) -> NodeStatus,
    net: &ReplicaNet,
    clients: &mut BTreeMap<ClientId, Outbox>,
    now: Time,
    inbound: Inbound,
) {
    match (inbound.wire, inbound.from, inbound.reply_to) {
        (Wire::Message(message), _, _) => replica.receive(now, message),
        (Wire::Hello, Peer::Client(client), Some(link)) => {
            clients.insert(client, link);
        }
        (Wire::StatusQuery, _, Some(link)) => {
            let mut report = status(replica);
            report.net = net.counters();
            link.push(frame_of(&Wire::Status(report)));
        }
        (wire, from, _) => {
            tracing::debug!(%from, ?wire, "ignored a frame that makes no sense from this peer")
        }
    }
}

/// Where a replica's persist records go (see [`pbft_core::persist`]).
pub trait Storage {
    /// Makes `records` durable, in order, with one write and one sync for
    /// all of them (group commit). An error means they may not be durable.
    fn persist(&mut self, records: &[Persist]) -> Result<(), String>;
}

/// Storage that keeps nothing: a replica on it loses everything at a
/// restart (tests and demonstrations that start empty; never for data that
/// matters).
pub struct NoStorage;

impl Storage for NoStorage {
    fn persist(&mut self, _records: &[Persist]) -> Result<(), String> {
        Ok(())
    }
}

/// Whether the replica may still send: once a persist failed, it never
/// sends again (until it is restarted), since what it would send may rest on
/// records that are not durable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Persisting {
    Healthy,
    Failed,
}

/// Carries out the replica's outputs with the persistence rule: the burst's
/// persist records are made durable first, in one write and one sync, then
/// its sends and replies go out.
fn drain<N: Node>(
    replica: &mut N,
    net: &ReplicaNet,
    clients: &mut BTreeMap<ClientId, Outbox>,
    storage: &mut impl Storage,
    persisting: &mut Persisting,
) {
    let (records, outputs): (Vec<Output>, Vec<Output>) =
        std::iter::from_fn(|| replica.poll_output()).partition(|o| matches!(o, Output::Persist(_)));
    let records: Vec<Persist> = records
        .into_iter()
        .filter_map(|o| match o {
            Output::Persist(record) => Some(record),
            _ => None,
        })
        .collect();
    if !records.is_empty() && *persisting == Persisting::Healthy {
        if let Err(error) = storage.persist(&records) {
            tracing::error!(
                %error,
                "CANNOT PERSIST: this replica stops sending and signing until it is restarted                  (it never acknowledges what it could not make durable)"
            );
            *persisting = Persisting::Failed;
        }
    }
    for output in outputs {
        if *persisting == Persisting::Failed && !matches!(output, Output::Event(_)) {
            continue;
        }
        match output {
            Output::Send { to, message } => net.send(to, frame_of(&Wire::Message(message))),
            Output::Broadcast(message) => net.broadcast(&frame_of(&Wire::Message(message))),
            Output::Reply(reply) => {
                let client = reply.client;
                if let Some(link) = clients.get(&client) {
                    if link.is_closed() {
                        clients.remove(&client);
                    } else {
                        link.push(frame_of(&Wire::Reply(reply)));
                    }
                }
            }
            Output::Event(event) => log_event(&event),
            Output::Persist(_) => {}
        }
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Executed { view, seq, requests, .. } => {
            tracing::trace!(view, seq, requests = requests.len(), "executed");
        }
        Event::CheckpointStable { seq, state_digest } => {
            tracing::debug!(seq, %state_digest, "checkpoint stable");
        }
        Event::TermEnded { view } => tracing::info!(view, "view term ended; rotating the primary"),
        Event::ViewChangeStarted { view } => tracing::info!(view, "view change started"),
        Event::NewViewEntered { view, primary } => tracing::info!(view, %primary, "entered new view"),
        Event::Rejected { .. } => tracing::debug!(?event, "rejected"),
        Event::CheckpointDisagreement(disagreement) => {
            let report = crate::wire::DisagreementReport::from(disagreement);
            tracing::error!(
                seq = report.seq,
                digests = ?report.digests,
                "REPLICAS DISAGREE on the state at this checkpoint: a replica is Byzantine or the \
                 application is not deterministic (check for clocks, randomness, HashMap iteration)"
            );
        }
        other => tracing::info!(event = ?other),
    }
}
