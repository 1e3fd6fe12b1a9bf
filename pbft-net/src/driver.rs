//! The replica driver: pumps any sans-IO [`Node`] with real time and the QUIC
//! endpoint, following the core's call contract (input, drain outputs, read
//! the next deadline). It knows nothing of what the node wraps.

use crate::endpoint::ReplicaNet;
use crate::identity::Peer;
use crate::link::{frame_of, Inbound, Outbox};
use crate::metrics::{BatchClock, ReplicaMetrics};
use crate::metrics_server::{MetricsServer, StatusRequest};
use crate::persister::{Persister, Progress, Ticket};
use crate::request_trace::{unix_micros, RequestTraces, TraceAnswer};
use crate::status_cache::StatusCache;
use crate::wire::{NodeStatus, Wire};
use pbft_core::{
    ClientId, Event, Message, Node, Output, Persist, Replica, ReplicatedStateMachine, Reply, Time,
};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What `pbft status` shows of a replica (the driver fills in `net`).
pub fn replica_status<A: ReplicatedStateMachine>(replica: &Replica<A>) -> NodeStatus {
    let stable = replica.stable_checkpoint();
    let buffers = replica.buffer_usage();
    NodeStatus {
        replica: replica.id().0,
        view: replica.view(),
        normal: replica.status() == pbft_core::Status::Normal,
        primary: replica.is_primary(),
        pending_requests: buffers.pending_requests as u64,
        held_reads: buffers.held_reads as u64,
        log_slots: buffers.log_slots as u64,
        peers: Vec::new(),
        open_connections: 0,
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
/// `observability` says whether the replica serves Prometheus metrics (see
/// [`MetricsServer`]) and keeps request traces.
///
/// Clients announce themselves with [`Wire::Hello`]; each client's replies
/// go to the connection it said hello on most recently. A replica keeping
/// request traces answers [`Wire::TraceQuery`] with the phase times of its
/// recent requests (see `request_trace`); one without answers "no record".
pub async fn run_replica<N: Node>(
    mut replica: N,
    status: impl Fn(&N) -> NodeStatus,
    storage: impl Storage,
    net: ReplicaNet,
    mut inbox: mpsc::Receiver<Inbound>,
    observability: Observability,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<N> {
    let start = Instant::now();
    let now = || Time(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut clients: BTreeMap<ClientId, Outbox> = BTreeMap::new();
    let mut status_cache = StatusCache::default();
    // The core builds phase events only for someone who reads them.
    replica.report_phases(observability.metrics.is_some() || observability.request_traces);
    let (mut observers, mut scrapes, server) =
        Observers::start(status(&replica).replica, net.n(), observability)?;
    let storage_metrics = observers.metrics.as_ref().map(|m| m.storage.clone());
    let mut outputs = HeldOutputs::new(Persister::start(storage, storage_metrics)?);
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
                let mut host = Host {
                    status: &status,
                    status_cache: &mut status_cache,
                    net: &net,
                    clients: &mut clients,
                    observers: &mut observers,
                };
                host.handle_burst(&mut replica, now(), burst);
            }
            Some(scrape) = scrapes.recv() => {
                let _ = scrape.send(observers.scrape_status(|| status_report(&replica, &status, &net)));
            }
            _ = sleep_until(deadline) => replica.handle_timeout(now()),
        }
        outputs.take(&mut replica, &mut observers);
        outputs.release(&net, &mut clients, &mut observers);
    }
    if let Some(server) = server {
        server.abort();
    }
    outputs.persister.finish().await;
    net.close().await;
    Ok(replica)
}

/// `status`'s report of `replica` with the transport's counters filled in.
fn status_report<N: Node>(replica: &N, status: &impl Fn(&N) -> NodeStatus, net: &ReplicaNet) -> NodeStatus {
    let mut report = status(replica);
    report.net = net.counters();
    report.peers = net.peer_counters();
    report.open_connections = net.open_connections();
    report
}

/// What a replica shows of itself besides `pbft status`.
pub struct Observability {
    /// Serve Prometheus metrics here.
    pub metrics: Option<MetricsServer>,
    /// Keep the phase times of the most recent requests (under a megabyte,
    /// see `request_trace`) and answer trace queries with them.
    pub request_traces: bool,
}

impl Default for Observability {
    /// No metrics; request traces kept.
    fn default() -> Observability {
        Observability { metrics: None, request_traces: true }
    }
}

/// What the driver keeps about the replica besides running it: the recent
/// requests' phase times if they are kept, and its metrics if they are served.
/// Public so that another host can keep the same record, and so that its
/// cost per request can be measured alone (the `observers` benchmark in
/// `test-only/`).
pub struct Observers {
    traces: Option<RequestTraces>,
    metrics: Option<Arc<ReplicaMetrics>>,
    clock: BatchClock,
    /// The status the latest scrape got, and when: scrapes within
    /// [`SCRAPE_STATUS_REUSE`] of it get it again, so that however often
    /// the (unauthenticated) endpoint is asked, the replica computes its
    /// status (digests of the whole state included) at most once a second.
    scraped: Option<(Instant, NodeStatus)>,
}

/// How long a status computed for a scrape is reused.
const SCRAPE_STATUS_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

impl Observers {
    /// Observers of replica `id` of `n`, and the metrics endpoint serving
    /// if there is one (with the scrapes' status requests it sends).
    #[allow(clippy::type_complexity)]
    fn start(
        id: u32,
        n: usize,
        observability: Observability,
    ) -> std::io::Result<(Observers, mpsc::Receiver<StatusRequest>, Option<tokio::task::JoinHandle<()>>)>
    {
        let (requests, scrapes) = mpsc::channel(crate::metrics_server::MAX_SCRAPE_CONNECTIONS);
        let (metrics, task) = match observability.metrics {
            Some(server) => {
                let metrics = Arc::new(ReplicaMetrics::new(n));
                let task = server.spawn(metrics.clone(), requests)?;
                (Some(metrics), Some(task))
            }
            None => (None, None),
        };
        Ok((Observers::new(id, n, metrics, observability.request_traces), scrapes, task))
    }

    /// Observers of replica `id` of `n` that count into `metrics` (if any)
    /// and keep request traces if `request_traces`.
    pub fn new(id: u32, n: usize, metrics: Option<Arc<ReplicaMetrics>>, request_traces: bool) -> Observers {
        Observers {
            traces: request_traces.then(|| RequestTraces::new(id, n)),
            metrics,
            clock: BatchClock::default(),
            scraped: None,
        }
    }

    /// The status for a scrape: the last one if it is recent, else `fresh`'s.
    fn scrape_status(&mut self, fresh: impl FnOnce() -> NodeStatus) -> NodeStatus {
        let now = Instant::now();
        match &self.scraped {
            Some((at, status)) if now.duration_since(*at) < SCRAPE_STATUS_REUSE => status.clone(),
            _ => {
                let status = fresh();
                self.scraped = Some((now, status.clone()));
                status
            }
        }
    }

    /// Notes what the replica's `event` marks: a phase, a rejection, a
    /// view change.
    pub fn on_event(&mut self, event: &Event) {
        if let Some(traces) = &mut self.traces {
            traces.on_event(event, unix_micros);
        }
        if let Some(metrics) = &self.metrics {
            metrics.events.on_event(&mut self.clock, event, std::time::Instant::now);
        }
    }

    /// Notes what `inbound` starts: a client's request, a state chunk.
    pub fn on_inbound(&mut self, inbound: &Inbound) {
        match (&inbound.wire, inbound.from) {
            // Only a request on its own client's channel is that client's
            // (the signature is checked later, by the core).
            (Wire::Message(Message::Request(request)), Peer::Client(client))
                if request.payload().client == client =>
            {
                if let Some(traces) = &mut self.traces {
                    traces.received(client, request.payload().timestamp, unix_micros());
                }
                if let Some(metrics) = &self.metrics {
                    metrics.events.client_request();
                }
            }
            (Wire::Message(Message::StateChunk(chunk)), Peer::Replica(_)) => {
                if let Some(metrics) = &self.metrics {
                    metrics.events.state_chunk(chunk.payload().data.len());
                }
            }
            _ => {}
        }
    }

    /// Notes that `reply` left for its client.
    pub fn on_reply(&mut self, reply: &Reply) {
        if let Some(traces) = &mut self.traces {
            traces.replied(reply.client, reply.timestamp, unix_micros());
        }
        if let Some(metrics) = &self.metrics {
            metrics.events.reply();
        }
    }
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

/// What handling input needs of the driver besides the replica.
struct Host<'a, S> {
    status: &'a S,
    status_cache: &'a mut StatusCache,
    net: &'a ReplicaNet,
    clients: &'a mut BTreeMap<ClientId, Outbox>,
    observers: &'a mut Observers,
}

impl<S> Host<'_, S> {
    /// Handles frames in arrival order, passing each run of protocol
    /// messages to the replica in one call.
    fn handle_burst<N: Node>(&mut self, replica: &mut N, now: Time, burst: Vec<Inbound>)
    where
        S: Fn(&N) -> NodeStatus,
    {
        let mut messages = Vec::new();
        for inbound in burst {
            self.observers.on_inbound(&inbound);
            match inbound.wire {
                Wire::Message(message) => messages.push(message),
                _ => {
                    replica.receive_all(now, std::mem::take(&mut messages));
                    self.handle_inbound(replica, now, inbound);
                }
            }
        }
        replica.receive_all(now, messages);
    }

    fn handle_inbound<N: Node>(&mut self, replica: &mut N, now: Time, inbound: Inbound)
    where
        S: Fn(&N) -> NodeStatus,
    {
        match (inbound.wire, inbound.from, inbound.reply_to) {
            (Wire::Message(message), _, _) => replica.receive(now, message),
            (Wire::Hello, Peer::Client(client), Some(link)) => {
                self.clients.insert(client, link);
            }
            (Wire::StatusQuery, _, Some(link)) => {
                let (status, net) = (self.status, self.net);
                link.push(self.status_cache.answer(now, || status_report(replica, status, net)));
            }
            (Wire::TimestampQuery, Peer::Client(client), Some(link)) => {
                link.push(frame_of(&Wire::Timestamp { newest: replica.newest_timestamp(client) }));
            }
            (Wire::TraceQuery { client, timestamp }, _, Some(link)) => {
                let traces = self.observers.traces.as_ref();
                let trace = traces.and_then(|traces| traces.get(ClientId(client), timestamp));
                link.push(frame_of(&Wire::Trace(TraceAnswer { client, timestamp, trace })));
            }
            (wire, from, _) => {
                tracing::debug!(%from, ?wire, "ignored a frame that makes no sense from this peer")
            }
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
    /// all of them (group commit), and returns the bytes it wrote. An error
    /// means they may not be durable.
    fn persist(&mut self, records: &[Persist]) -> Result<u64, String>;

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
    fn persist(&mut self, _records: &[Persist]) -> Result<u64, String> {
        Ok(0)
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
    fn take<N: Node>(&mut self, replica: &mut N, observers: &mut Observers) {
        let mut records = Vec::new();
        let mut sends = Vec::new();
        while let Some(output) = replica.poll_output() {
            match output {
                Output::Persist(record) => records.push(record),
                Output::Event(event) => {
                    log_event(&event);
                    observers.on_event(&event);
                }
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
    fn release(
        &mut self,
        net: &ReplicaNet,
        clients: &mut BTreeMap<ClientId, Outbox>,
        observers: &mut Observers,
    ) {
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
                send(output, net, clients, observers);
            }
        }
    }
}

fn send(
    output: Output,
    net: &ReplicaNet,
    clients: &mut BTreeMap<ClientId, Outbox>,
    observers: &mut Observers,
) {
    match output {
        Output::Send { to, message } => net.send(to, frame_of(&Wire::Message(message))),
        Output::Broadcast(message) => net.broadcast(&frame_of(&Wire::Message(message))),
        Output::Reply(reply) => {
            observers.on_reply(&reply);
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
        Event::PrePrepared { view, seq, requests } => {
            tracing::trace!(view, seq, requests = requests.len(), "pre-prepared");
        }
        Event::Prepared { view, seq } => tracing::trace!(view, seq, "prepared"),
        Event::CommittedLocal { view, seq } => tracing::trace!(view, seq, "committed-local"),
        Event::RepliedFromCache { .. } => tracing::trace!(?event, "answered from the reply cache"),
        Event::CheckpointDisagreement(disagreement) => {
            let report = crate::wire::DisagreementReport::from(disagreement);
            tracing::error!(
                seq = report.seq,
                digests = ?report.digests,
                "REPLICAS DISAGREE on the state at this checkpoint: a replica is Byzantine or the \
                 application is not deterministic (check for clocks, randomness, HashMap iteration)"
            );
        }
        Event::ResultWithheld { client, timestamp, bytes } => tracing::warn!(
            %client,
            timestamp,
            bytes,
            "a result over protocol.max_result_bytes was withheld: the request executed, the client learns only its size"
        ),
        other => tracing::info!(event = ?other),
    }
}
