//! The replica driver: pumps any sans-IO [`Node`] with real time and the QUIC
//! endpoint, following the core's call contract (input, drain outputs, read
//! the next deadline). It knows nothing of what the node wraps.

use crate::endpoint::ReplicaNet;
use crate::identity::Peer;
use crate::link::{frame_of, Inbound, Outbox};
use crate::persister::{Persister, Progress, Ticket};
use crate::wire::{NodeStatus, Wire};
use pbft_core::{ClientId, Event, Node, Output, Persist, Replica, ReplicatedStateMachine, Time};
use std::collections::{BTreeMap, VecDeque};
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
/// status query is answered with (see [`replica_status`]). `storage` runs on
/// a thread of its own (see [`Storage`] for the persistence rule).
///
/// Clients announce themselves with [`Wire::Hello`]; each client's replies
/// go to the connection it said hello on most recently.
pub async fn run_replica<N: Node>(
    mut replica: N,
    status: impl Fn(&N) -> NodeStatus,
    storage: impl Storage,
    net: ReplicaNet,
    mut inbox: mpsc::Receiver<Inbound>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<N> {
    let start = Instant::now();
    let now = || Time(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut clients: BTreeMap<ClientId, Outbox> = BTreeMap::new();
    let mut outputs = HeldOutputs::new(Persister::start(storage)?);
    tokio::pin!(shutdown);
    loop {
        let deadline = replica.poll_timeout().map(|Time(ms)| start + std::time::Duration::from_millis(ms));
        tokio::select! {
            _ = &mut shutdown => break,
            () = outputs.persister.changed(), if outputs.waiting() => {}
            inbound = inbox.recv(), if outputs.has_room() => {
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
        outputs.take(&mut replica);
        outputs.release(&net, &mut clients);
    }
    outputs.persister.finish().await;
    net.close().await;
    Ok(replica)
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
///
/// The driver keeps the core's persistence rule: a send or reply waits
/// until every record before it that [`Persist::holds_back_sends`] is
/// durable. The storage runs on a thread of its own (see `persister`), so
/// the replica keeps receiving while a sync is in flight.
pub trait Storage: Send + 'static {
    /// Makes `records` durable, in order, with one write and one sync for
    /// all of them (group commit). An error means they may not be durable.
    fn persist(&mut self, records: &[Persist]) -> Result<(), String>;

    /// Whether `persist` waits for the disk. Storage that does not (no
    /// fdatasync: benchmarks, or nothing kept) is written inline on the
    /// replica's thread rather than on a storage thread of its own.
    fn syncs(&self) -> bool {
        true
    }
}

/// Storage that keeps nothing: a replica on it loses everything at a
/// restart (tests and demonstrations that start empty; never for data that
/// matters).
pub struct NoStorage;

impl Storage for NoStorage {
    fn persist(&mut self, _records: &[Persist]) -> Result<(), String> {
        Ok(())
    }

    fn syncs(&self) -> bool {
        false
    }
}

/// While this many bursts' outputs wait for the disk, the driver reads no
/// more input: what it holds is bounded by this many bursts of at most
/// [`MAX_BURST`] frames each (plus what the replica's timers make meanwhile,
/// a few messages per timer), and a slow disk slows the peers through their
/// links' queues instead of growing memory here.
const MAX_HELD_BURSTS: usize = 64;

/// The replica's sends and replies, held until the records they depend on
/// are durable.
struct HeldOutputs<S> {
    persister: Persister<S>,
    /// The newest ticket whose records hold back sends.
    barrier: Ticket,
    /// Bursts of outputs in the order the replica made them, each with the
    /// ticket that must be durable before it goes out.
    held: VecDeque<(Ticket, Vec<Output>)>,
    /// Set once a persist failed: nothing is sent again (until a restart),
    /// since what would be sent may rest on records that are not durable.
    failed: bool,
}

impl<S: Storage> HeldOutputs<S> {
    fn new(persister: Persister<S>) -> HeldOutputs<S> {
        HeldOutputs { persister, barrier: Ticket::default(), held: VecDeque::new(), failed: false }
    }

    fn waiting(&self) -> bool {
        !self.held.is_empty()
    }

    fn has_room(&self) -> bool {
        self.held.len() < MAX_HELD_BURSTS
    }

    /// Takes the replica's outputs: records go to the storage thread, events
    /// are logged now, sends and replies are held behind the burst's barrier.
    fn take<N: Node>(&mut self, replica: &mut N) {
        let mut records = Vec::new();
        let mut sends = Vec::new();
        while let Some(output) = replica.poll_output() {
            match output {
                Output::Persist(record) => records.push(record),
                Output::Event(event) => log_event(&event),
                other => sends.push(other),
            }
        }
        if !records.is_empty() {
            let barrier = records.iter().any(Persist::holds_back_sends);
            let ticket = self.persister.submit(records);
            if barrier {
                self.barrier = ticket;
            }
        }
        if !sends.is_empty() && !self.failed {
            self.held.push_back((self.barrier, sends));
        }
    }

    /// Sends every held burst whose records are durable, in order.
    fn release(&mut self, net: &ReplicaNet, clients: &mut BTreeMap<ClientId, Outbox>) {
        let durable = match self.persister.progress() {
            Progress::Durable(ticket) => ticket,
            Progress::Failed => {
                self.failed = true;
                self.held.clear();
                return;
            }
        };
        while self.held.front().is_some_and(|(ticket, _)| *ticket <= durable) {
            let Some((_, sends)) = self.held.pop_front() else { break };
            for output in sends {
                send(output, net, clients);
            }
        }
    }
}

fn send(output: Output, net: &ReplicaNet, clients: &mut BTreeMap<ClientId, Outbox>) {
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
        // `HeldOutputs::take` logs events and persists records; only sends
        // and replies are held.
        Output::Event(_) | Output::Persist(_) => {}
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
