//! An in-memory cluster on virtual time: real replicas and clients, a message
//! queue, and a fixed order of processing that makes every run reproducible.

use crate::keys::ClusterKeys;
use crate::network::{Envelope, NodeId, Payload};
use crate::trace::TraceHash;
use crate::traitor::{Behavior, Traitor, TraitorAction, TraitorPlan, Traitors};
use pbft_core::{
    Client, ClientId, ClientOutput, Event, Message, Output, ProtocolConfig, Quorum, Replica, ReplicaId,
    ReplicatedStateMachine, Request, SeqNum, Time,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The shape of a simulated cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Number of replicas.
    pub n: usize,
    /// Number of clients.
    pub clients: usize,
    /// Protocol parameters shared by every replica.
    pub protocol: ProtocolConfig,
    /// One-way delay of every message, in milliseconds (at least 1).
    pub latency_ms: u64,
    /// How long a client waits before re-sending to every replica.
    pub client_retry_ms: u64,
    /// Seed of every participant's keys.
    pub key_seed: u64,
}

impl ClusterConfig {
    /// `n` replicas and `clients` clients with the default protocol parameters.
    pub fn new(n: usize, clients: usize) -> ClusterConfig {
        ClusterConfig {
            n,
            clients,
            protocol: ProtocolConfig::default(),
            latency_ms: 1,
            client_retry_ms: 1_000,
            key_seed: 0,
        }
    }
}

/// A request a client saw complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The client.
    pub client: ClientId,
    /// The request's timestamp.
    pub timestamp: u64,
    /// The operation.
    pub op: Vec<u8>,
    /// The result f+1 replicas agreed on (2f+1 for an unordered read).
    pub result: Vec<u8>,
    /// Whether it was a read-only query (answered by the application's
    /// `query`, possibly without being ordered).
    pub read_only: bool,
    /// When the client invoked it.
    pub invoked_at: Time,
    /// When the client accepted the result.
    pub completed_at: Time,
}

struct SimClient {
    client: Client,
    workload: VecDeque<(Vec<u8>, bool)>,
    current: Option<(Vec<u8>, bool, Time)>,
    completed: Vec<Completion>,
}

/// Decides whether an envelope is delivered: `false` drops it.
pub type Filter = Box<dyn FnMut(&Envelope) -> bool>;

/// Decides what becomes of each message sent: the delays after which copies
/// of it arrive (none: lost; two: duplicated).
pub trait NetworkModel {
    /// The delays, in milliseconds, of the copies of `envelope` that arrive.
    fn route(&mut self, envelope: &Envelope) -> Vec<u64>;
}

/// Every message arrives exactly once after the same delay.
pub struct FixedLatency(pub u64);

impl NetworkModel for FixedLatency {
    fn route(&mut self, _envelope: &Envelope) -> Vec<u64> {
        vec![self.0.max(1)]
    }
}

/// n replicas running `A` and their clients on a simulated network.
pub struct Cluster<A> {
    now: Time,
    network: Box<dyn NetworkModel>,
    keys: ClusterKeys,
    replicas: Vec<Replica<A>>,
    crashed: BTreeSet<ReplicaId>,
    clients: Vec<SimClient>,
    queue: BTreeMap<(Time, u64), Envelope>,
    sent: u64,
    filter: Option<Filter>,
    events: Vec<(Time, ReplicaId, Event)>,
    executed: Vec<Vec<(SeqNum, pbft_core::Digest)>>,
    requests_sent: BTreeMap<pbft_core::Digest, Request>,
    trace: TraceHash,
    traitors: Traitors,
    twins: BTreeMap<ReplicaId, Replica<A>>,
}

impl<A: ReplicatedStateMachine> Cluster<A> {
    /// Builds the cluster; `app` makes each replica's initial application.
    ///
    /// # Panics
    /// If the protocol parameters are invalid or `n == 0`.
    pub fn new(config: ClusterConfig, mut app: impl FnMut(ReplicaId) -> A) -> Cluster<A> {
        let keys = ClusterKeys::derive(config.key_seed, config.n, config.clients);
        let quorum = keys.book().quorum();
        let replicas = quorum
            .replicas()
            .map(|id| {
                Replica::new(
                    id,
                    config.protocol.clone(),
                    keys.book().clone(),
                    keys.replica(id).clone(),
                    app(id),
                )
                .unwrap_or_else(|e| panic!("cluster configuration: {e}"))
            })
            .collect();
        let clients = (0..config.clients as u64)
            .map(|i| SimClient {
                client: Client::new(
                    ClientId(i),
                    keys.client(ClientId(i)).clone(),
                    quorum,
                    config.client_retry_ms,
                    1,
                ),
                workload: VecDeque::new(),
                current: None,
                completed: Vec::new(),
            })
            .collect();
        Cluster {
            now: Time::ZERO,
            network: Box::new(FixedLatency(config.latency_ms)),
            keys,
            replicas,
            crashed: BTreeSet::new(),
            clients,
            queue: BTreeMap::new(),
            sent: 0,
            filter: None,
            events: Vec::new(),
            executed: vec![Vec::new(); config.n],
            requests_sent: BTreeMap::new(),
            trace: TraceHash::default(),
            traitors: Traitors::new(),
            twins: BTreeMap::new(),
        }
    }

    /// Queues `op` for `client`; it is invoked once the client's earlier operations complete.
    pub fn submit(&mut self, client: ClientId, op: Vec<u8>) {
        let index = client.0 as usize;
        self.clients[index].workload.push_back((op, false));
        self.start_next(index);
    }

    /// Queues the read-only `query` for `client` (see [`pbft_core::Client::query`]);
    /// it is invoked once the client's earlier operations complete.
    pub fn submit_query(&mut self, client: ClientId, query: Vec<u8>) {
        let index = client.0 as usize;
        self.clients[index].workload.push_back((query, true));
        self.start_next(index);
    }

    /// Turns replica `id` into a traitor with `behavior`; `colluders` is the
    /// whole conspiracy (it matters to `collude`). The replica keeps running
    /// the real protocol; what it sends is rewritten from now on.
    pub fn make_traitor(&mut self, id: ReplicaId, behavior: Behavior, colluders: BTreeSet<ReplicaId>) {
        let quorum = self.quorum();
        let timeout = self.replicas[id.index()].config().view_change_timeout_ms;
        let plan = TraitorPlan::new(id, colluders, quorum, timeout);
        let traitor = Traitor::new(id, behavior, self.keys.replica(id).clone(), quorum, plan);
        self.traitors.insert(id, traitor);
    }

    /// Starts a second instance of replica `id` with the same key and a fresh
    /// `app` (Twins): it receives a copy of everything sent to `id` and sends
    /// as `id`, so together the two equivocate naturally. Its envelopes come
    /// from and go to [`NodeId::Twin`], so filters can partition the twins apart.
    pub fn make_twin(&mut self, id: ReplicaId, app: A) {
        let twin = self.fresh_replica(id, app);
        self.twins.insert(id, twin);
    }

    /// The traitors and their behaviours.
    pub fn traitors(&self) -> impl Iterator<Item = (ReplicaId, Behavior)> + '_ {
        self.traitors.iter().map(|(id, t)| (*id, t.behavior()))
    }

    /// Installs a filter that decides which envelopes are delivered.
    pub fn set_filter(&mut self, filter: impl FnMut(&Envelope) -> bool + 'static) {
        self.filter = Some(Box::new(filter));
    }

    /// Removes the filter: every envelope is delivered from now on.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Replaces the network model from now on (messages in flight keep their delays).
    pub fn set_network(&mut self, network: impl NetworkModel + 'static) {
        self.network = Box::new(network);
    }

    /// Stops a replica: it receives nothing, sends nothing and its timers stop.
    pub fn crash(&mut self, id: ReplicaId) {
        self.crashed.insert(id);
    }

    /// Resumes a crashed replica with the memory it had; timers that fell due
    /// while it was down fire at once.
    pub fn restart(&mut self, id: ReplicaId) {
        self.crashed.remove(&id);
    }

    /// A new replica `id` with the cluster's keys and protocol parameters and
    /// empty memory, running `app`.
    fn fresh_replica(&self, id: ReplicaId, app: A) -> Replica<A> {
        let config = self.replicas[id.index()].config().clone();
        Replica::new(id, config, self.keys.book().clone(), self.keys.replica(id).clone(), app)
            .unwrap_or_else(|e| panic!("the configuration was valid at start: {e}"))
    }

    /// Restarts replica `id` with its keys but empty memory and the
    /// application `app`, as after losing its disk: it must catch up from peers.
    pub fn restart_empty(&mut self, id: ReplicaId, app: A) {
        self.replicas[id.index()] = self.fresh_replica(id, app);
        self.executed[id.index()].clear();
        self.crashed.remove(&id);
    }

    /// Whether replica `id` is crashed.
    pub fn is_crashed(&self, id: ReplicaId) -> bool {
        self.crashed.contains(&id)
    }

    /// Every request a client signed and sent, by digest.
    pub fn requests_sent(&self) -> &BTreeMap<pbft_core::Digest, Request> {
        &self.requests_sent
    }

    /// Whether every submitted operation completed.
    pub fn all_complete(&self) -> bool {
        self.clients.iter().all(|s| s.current.is_none() && s.workload.is_empty())
    }

    /// The time of the next delivery or timer, if anything is left to happen.
    pub fn next_event_time(&self) -> Option<Time> {
        self.peek_next()
    }

    /// Processes the next event (a delivery, or the timers due first).
    /// Returns `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let next_delivery = self.queue.keys().next().map(|(at, _)| *at);
        let next_timer = self.next_timer();
        match (next_delivery, next_timer) {
            (None, None) => false,
            (Some(delivery), timer) if timer.is_none_or(|t| delivery <= t) => {
                if let Some((_, envelope)) = self.queue.pop_first() {
                    self.now = self.now.max(delivery);
                    self.deliver(envelope);
                }
                true
            }
            (_, Some(timer)) => {
                // A replica restarted after its deadline passed fires late, never in the past.
                self.now = self.now.max(timer);
                self.fire_timers();
                true
            }
            (Some(_), None) => unreachable!("covered by the guard above"),
        }
    }

    /// Runs until `done` holds or virtual time passes `deadline`; returns
    /// whether `done` held.
    pub fn run_until(&mut self, deadline: Time, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if self.peek_next().is_none_or(|at| at > deadline) {
                self.now = self.now.max(deadline);
                return done(self);
            }
            self.step();
        }
    }

    /// Runs until every submitted operation completed, or `deadline`.
    pub fn run_until_complete(&mut self, deadline: Time) -> bool {
        self.run_until(deadline, |c| c.all_complete())
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The replicas, by id.
    pub fn replicas(&self) -> &[Replica<A>] {
        &self.replicas
    }

    /// Replica `id`.
    pub fn replica(&self, id: ReplicaId) -> &Replica<A> {
        &self.replicas[id.index()]
    }

    /// Mutable access to replica `id`, for injecting inputs directly.
    pub fn replica_mut(&mut self, id: ReplicaId) -> &mut Replica<A> {
        &mut self.replicas[id.index()]
    }

    /// Hands `message` to replica `to` now, as if it arrived from the network,
    /// and routes what the replica outputs in response.
    pub fn inject(&mut self, to: ReplicaId, message: Message) {
        let now = self.now;
        self.replicas[to.index()].receive(now, message);
        self.drain_replica(to);
    }

    /// The keys of every participant.
    pub fn keys(&self) -> &ClusterKeys {
        &self.keys
    }

    /// The quorum system.
    pub fn quorum(&self) -> Quorum {
        self.keys.book().quorum()
    }

    /// Every event replicas reported, with when and by whom.
    pub fn events(&self) -> &[(Time, ReplicaId, Event)] {
        &self.events
    }

    /// The batches replica `id` executed, as (sequence number, digest), in order.
    pub fn executed(&self, id: ReplicaId) -> &[(SeqNum, pbft_core::Digest)] {
        &self.executed[id.index()]
    }

    /// The requests `client` saw complete, in order.
    pub fn completions(&self, client: ClientId) -> &[Completion] {
        &self.clients[client.0 as usize].completed
    }

    /// Every completion of every client.
    pub fn all_completions(&self) -> impl Iterator<Item = &Completion> {
        self.clients.iter().flat_map(|c| c.completed.iter())
    }

    /// The hash of every delivery and event so far.
    pub fn trace_hash(&self) -> pbft_core::Digest {
        self.trace.digest()
    }

    /// Replicas that have not crashed.
    pub fn live_replicas(&self) -> impl Iterator<Item = &Replica<A>> {
        self.replicas.iter().filter(|r| !self.crashed.contains(&r.id()))
    }

    fn peek_next(&self) -> Option<Time> {
        let delivery = self.queue.keys().next().map(|(at, _)| *at);
        match (delivery, self.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_timer(&self) -> Option<Time> {
        let replicas =
            self.replicas.iter().filter(|r| !self.crashed.contains(&r.id())).filter_map(|r| r.poll_timeout());
        let clients = self.clients.iter().filter_map(|c| c.client.poll_timeout());
        let twins = self.twins.values().filter_map(|t| t.poll_timeout());
        replicas.chain(clients).chain(twins).min()
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for index in 0..self.replicas.len() {
            let id = ReplicaId(index as u32);
            if self.crashed.contains(&id) {
                continue;
            }
            if self.replicas[index].poll_timeout().is_some_and(|at| at <= now) {
                self.trace.record(format!("timeout {now:?} {id:?}").as_bytes());
                self.replicas[index].handle_timeout(now);
                self.drain_replica(id);
            }
        }
        let due: Vec<ReplicaId> = self
            .twins
            .iter()
            .filter(|(_, t)| t.poll_timeout().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(twin) = self.twins.get_mut(&id) {
                twin.handle_timeout(now);
            }
            self.drain_twin(id);
        }
        for index in 0..self.clients.len() {
            if self.clients[index].client.poll_timeout().is_some_and(|at| at <= now) {
                self.clients[index].client.handle_timeout(now);
                self.drain_client(index);
            }
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        let now = self.now;
        if let Some(filter) = &mut self.filter {
            if !filter(&envelope) {
                return;
            }
        }
        match (envelope.to, envelope.payload) {
            (NodeId::Replica(to), Payload::Message(message)) => {
                if self.crashed.contains(&to) {
                    return;
                }
                self.trace.record_encoded(&(now, to, &message));
                if let Some(traitor) = self.traitors.get_mut(&to) {
                    let actions = traitor.incoming(&message);
                    self.post_traitor_actions(to, actions);
                }
                self.replicas[to.index()].receive(now, message);
                self.drain_replica(to);
            }
            (NodeId::Twin(to), Payload::Message(message)) => {
                self.trace.record_encoded(&(now, "twin", to, &message));
                if let Some(twin) = self.twins.get_mut(&to) {
                    twin.receive(now, message);
                    self.drain_twin(to);
                }
            }
            (NodeId::Client(to), Payload::Reply(reply)) => {
                let (NodeId::Replica(from) | NodeId::Twin(from)) = envelope.from else { return };
                let index = to.0 as usize;
                if index < self.clients.len() {
                    self.trace.record_encoded(&(now, to, &reply));
                    self.clients[index].client.handle_reply(now, from, reply);
                    self.drain_client(index);
                }
            }
            _ => {}
        }
    }

    fn post(&mut self, from: NodeId, to: NodeId, payload: Payload) {
        if let NodeId::Replica(id) = to {
            if self.twins.contains_key(&id) {
                self.post_after(from, NodeId::Twin(id), payload.clone(), 0);
            }
        }
        self.post_after(from, to, payload, 0);
    }

    /// Posts a message that leaves its sender `hold_ms` from now.
    fn post_after(&mut self, from: NodeId, to: NodeId, payload: Payload, hold_ms: u64) {
        let envelope = Envelope { from, to, sent_at: self.now, payload };
        let delays = self.network.route(&envelope);
        let Some((last, copies)) = delays.split_last() else { return };
        for delay in copies {
            self.queue.insert((self.now + hold_ms + (*delay).max(1), self.sent), envelope.clone());
            self.sent += 1;
        }
        self.queue.insert((self.now + hold_ms + (*last).max(1), self.sent), envelope);
        self.sent += 1;
    }

    fn post_traitor_actions(&mut self, id: ReplicaId, actions: Vec<TraitorAction>) {
        let from = NodeId::Replica(id);
        for action in actions {
            match action {
                TraitorAction::Send { to, message, delay_ms } => {
                    self.post_after(from, NodeId::Replica(to), Payload::Message(message), delay_ms)
                }
                TraitorAction::Reply(reply) => {
                    self.post(from, NodeId::Client(reply.client), Payload::Reply(reply))
                }
            }
        }
    }

    fn drain_replica(&mut self, id: ReplicaId) {
        let from = NodeId::Replica(id);
        while let Some(output) = self.replicas[id.index()].poll_output() {
            if self.crashed.contains(&id) {
                continue;
            }
            if let (Some(traitor), false) = (self.traitors.get_mut(&id), matches!(output, Output::Event(_))) {
                let actions = traitor.outgoing(output);
                self.post_traitor_actions(id, actions);
                continue;
            }
            match output {
                Output::Send { to, message } => {
                    self.post(from, NodeId::Replica(to), Payload::Message(message))
                }
                Output::Broadcast(message) => {
                    for to in self.quorum().replicas().filter(|r| *r != id) {
                        self.post(from, NodeId::Replica(to), Payload::Message(message.clone()));
                    }
                }
                Output::Reply(reply) => self.post(from, NodeId::Client(reply.client), Payload::Reply(reply)),
                Output::Event(event) => {
                    self.trace.record(format!("{:?} {id:?} {event:?}", self.now).as_bytes());
                    if let Event::Executed { seq, digest, .. } = &event {
                        self.executed[id.index()].push((*seq, *digest));
                    }
                    self.events.push((self.now, id, event));
                }
            }
        }
    }

    /// Routes a twin's outputs as its replica's, from [`NodeId::Twin`]. Its
    /// events are recorded under the replica's id (checkers ignore both: the
    /// twinned replica is the Byzantine one).
    fn drain_twin(&mut self, id: ReplicaId) {
        let from = NodeId::Twin(id);
        loop {
            let Some(output) = self.twins.get_mut(&id).and_then(Replica::poll_output) else { return };
            match output {
                Output::Send { to, message } => {
                    self.post(from, NodeId::Replica(to), Payload::Message(message))
                }
                Output::Broadcast(message) => {
                    for to in self.quorum().replicas().filter(|r| *r != id) {
                        self.post(from, NodeId::Replica(to), Payload::Message(message.clone()));
                    }
                }
                Output::Reply(reply) => self.post(from, NodeId::Client(reply.client), Payload::Reply(reply)),
                Output::Event(event) => self.events.push((self.now, id, event)),
            }
        }
    }

    fn drain_client(&mut self, index: usize) {
        let from = NodeId::Client(ClientId(index as u64));
        while let Some(output) = self.clients[index].client.poll_output() {
            match output {
                ClientOutput::Send { to, request } => {
                    self.requests_sent.insert(request.digest(), request.payload().clone());
                    self.post(from, NodeId::Replica(to), Payload::Message(Message::Request(request)))
                }
                ClientOutput::Broadcast(request) => {
                    self.requests_sent.insert(request.digest(), request.payload().clone());
                    for to in self.quorum().replicas() {
                        self.post(
                            from,
                            NodeId::Replica(to),
                            Payload::Message(Message::Request(request.clone())),
                        );
                    }
                }
                ClientOutput::Completed { timestamp, result } => {
                    let sim = &mut self.clients[index];
                    if let Some((op, read_only, invoked_at)) = sim.current.take() {
                        sim.completed.push(Completion {
                            client: ClientId(index as u64),
                            timestamp,
                            op,
                            result,
                            read_only,
                            invoked_at,
                            completed_at: self.now,
                        });
                    }
                    self.start_next(index);
                }
            }
        }
    }

    fn start_next(&mut self, index: usize) {
        let now = self.now;
        let sim = &mut self.clients[index];
        if sim.current.is_some() {
            return;
        }
        let Some((op, read_only)) = sim.workload.pop_front() else { return };
        let started =
            if read_only { sim.client.query(now, op.clone()) } else { sim.client.invoke(now, op.clone()) };
        if started.is_ok() {
            sim.current = Some((op, read_only, now));
        }
        self.drain_client(index);
    }
}
