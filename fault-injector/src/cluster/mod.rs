//! An in-memory cluster on virtual time: real replicas and clients, a message
//! queue, and a fixed order of processing that makes every run reproducible.
//!
//! Split by concern: [`config`] (its shape), [`hosts`] (the nodes, honest,
//! traitors and twins, all driven through [`pbft_core::Node`]), [`clients`]
//! (workloads and what clients saw complete), [`network`] (envelopes, the
//! network model and the messages in flight) and [`record`] (events, executed
//! batches and the trace hash). This file is the event loop and the one
//! place where any node's outputs are routed.

mod clients;
mod config;
mod disk;
mod hosts;
mod network;
mod record;

pub use clients::Completion;
pub use config::SimConfig;
pub use network::{Envelope, FixedLatency, NetworkModel, NodeId, Payload};

use crate::checkers::Vote;
use crate::keys::ClusterKeys;
use crate::traitor::{Behavior, Traitor, TraitorNode, TraitorPlan};
use clients::SimClient;
pub use disk::DiskFault;
use disk::SimDisk;
use hosts::{Hosted, Hosts};
use network::InFlight;
use pbft_core::{
    Client, ClientId, Event, Message, Output, Quorum, Replica, ReplicaId, ReplicatedStateMachine, Request,
    SeqNum, Time,
};
use record::Record;
use std::collections::{BTreeMap, BTreeSet};

/// n replicas running `A` and their clients on a simulated network.
pub struct SimCluster<A> {
    now: Time,
    keys: ClusterKeys,
    hosts: Hosts<A>,
    clients: Vec<SimClient>,
    network: InFlight,
    record: Record,
    /// One per replica: what it persisted (twins persist nothing).
    disks: Vec<SimDisk>,
    /// Test-only mutation: records are synced at the node's next input, after
    /// the sends that depended on them.
    #[cfg(feature = "mutations")]
    send_before_persist: bool,
    /// Test-only protocol bug of every replica, restarted ones included.
    #[cfg(feature = "mutations")]
    mutation: Option<pbft_core::Mutation>,
    /// Test-only mutation: a restart reads the disk back without its records
    /// of views.
    #[cfg(feature = "mutations")]
    forget_views: bool,
}

impl<A: ReplicatedStateMachine> SimCluster<A> {
    /// Builds the cluster; `app` makes each replica's initial application.
    ///
    /// # Panics
    /// If the protocol parameters are invalid or `n == 0`.
    pub fn new(config: SimConfig, mut app: impl FnMut(ReplicaId) -> A) -> SimCluster<A> {
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
            .map(|i| {
                let id = ClientId(i);
                SimClient::new(Client::new(id, keys.client(id).clone(), quorum, config.client_retry_ms, 1))
            })
            .collect();
        SimCluster {
            now: Time::ZERO,
            keys,
            hosts: Hosts::new(replicas),
            clients,
            network: InFlight::new(FixedLatency(config.latency_ms)),
            record: Record::new(config.n),
            disks: (0..config.n).map(|_| SimDisk::default()).collect(),
            #[cfg(feature = "mutations")]
            send_before_persist: false,
            #[cfg(feature = "mutations")]
            mutation: None,
            #[cfg(feature = "mutations")]
            forget_views: false,
        }
    }

    /// Breaks recovery on purpose (mutation tests only): a replica restarted
    /// from its disk gets its records without the views it persisted, so it
    /// resumes its old view as if it had never voted in it.
    #[cfg(feature = "mutations")]
    pub fn set_forget_views(&mut self, on: bool) {
        self.forget_views = on;
    }

    /// Breaks every replica's protocol on purpose (mutation tests only),
    /// including replicas restarted later.
    #[cfg(feature = "mutations")]
    pub fn set_mutation(&mut self, mutation: Option<pbft_core::Mutation>) {
        self.mutation = mutation;
        for id in self.quorum().replicas() {
            self.replica_mut(id).set_mutation(mutation);
        }
    }

    /// Puts a restarted replica in place of replica `id`.
    fn install(&mut self, id: ReplicaId, #[allow(unused_mut)] mut replica: Replica<A>) {
        #[cfg(feature = "mutations")]
        replica.set_mutation(self.mutation);
        self.hosts.replace(id, replica);
    }

    /// Breaks the persistence rule on purpose (mutation tests only): the
    /// host syncs every replica's records on a timer, as a lazy fsync policy
    /// would, not before the sends that depend on them, so a crash loses up
    /// to the last [`SimDisk::LAZY_SYNC_MS`] of them.
    #[cfg(feature = "mutations")]
    pub fn set_send_before_persist(&mut self, on: bool) {
        self.send_before_persist = on;
    }

    /// What the host syncs before a send and at the end of a burst: every
    /// record that holds back sends ([`SimDisk::sync_barriers`]); with the
    /// send-before-persist mutation, only what is older than
    /// [`SimDisk::LAZY_SYNC_MS`].
    fn sync_before_send(&mut self, replica: ReplicaId) {
        #[cfg(feature = "mutations")]
        if self.send_before_persist {
            let now = self.now;
            self.disks[replica.index()].sync_lazily(now);
            return;
        }
        self.disks[replica.index()].sync_barriers();
    }

    /// Turns replica `id` into a traitor with `behavior`; `colluders` is the
    /// whole conspiracy (it matters to `collude`). The replica keeps running
    /// the real protocol; what it sends is rewritten from now on.
    pub fn make_traitor(&mut self, id: ReplicaId, behavior: Behavior, colluders: BTreeSet<ReplicaId>) {
        let quorum = self.quorum();
        let timeout = self.replica(id).config().view_change_timeout_ms;
        let plan = TraitorPlan::new(id, colluders, quorum, timeout);
        let traitor = Traitor::new(id, behavior, self.keys.replica(id).clone(), quorum, plan);
        self.hosts.wrap(id, |replica| Hosted::Traitor(TraitorNode::new(replica, traitor)));
    }

    /// Starts a second instance of replica `id` with the same key and a fresh
    /// `app` (Twins): it receives a copy of everything sent to `id` and sends
    /// as `id`, so together the two equivocate naturally. Its envelopes come
    /// from and go to [`NodeId::Twin`], so filters can partition the twins apart.
    pub fn make_twin(&mut self, id: ReplicaId, app: A) {
        let twin = self.fresh_replica(id, app);
        self.hosts.add_twin(id, twin);
    }

    /// The traitors and their behaviours.
    pub fn traitors(&self) -> impl Iterator<Item = (ReplicaId, Behavior)> + '_ {
        self.hosts.traitors()
    }

    /// Installs a filter that decides which envelopes are delivered.
    pub fn set_filter(&mut self, filter: impl FnMut(&Envelope) -> bool + 'static) {
        self.network.set_filter(Some(Box::new(filter)));
    }

    /// Removes the filter: every envelope is delivered from now on.
    pub fn clear_filter(&mut self) {
        self.network.set_filter(None);
    }

    /// Replaces the network model from now on (messages in flight keep their delays).
    pub fn set_network(&mut self, network: impl NetworkModel + 'static) {
        self.network.set_model(Box::new(network));
    }

    /// Stops a replica: it receives nothing, sends nothing and its timers stop.
    pub fn crash(&mut self, id: ReplicaId) {
        self.hosts.set_crashed(id, true);
    }

    /// Resumes a crashed replica with the memory it had; timers that fell due
    /// while it was down fire at once.
    pub fn restart(&mut self, id: ReplicaId) {
        self.hosts.set_crashed(id, false);
    }

    /// A new replica `id` with the cluster's keys and protocol parameters and
    /// empty memory, running `app`.
    fn fresh_replica(&self, id: ReplicaId, app: A) -> Replica<A> {
        let config = self.replica(id).config().clone();
        Replica::new(id, config, self.keys.book().clone(), self.keys.replica(id).clone(), app)
            .unwrap_or_else(|e| panic!("the configuration was valid at start: {e}"))
    }

    /// Restarts replica `id` with empty memory from what its disk synced
    /// (what it wrote but did not sync is lost), as after a power cut: it
    /// recovers with [`Replica::recover`]; or, if it crashed while it was
    /// recovering from a lost or damaged disk (nothing synced since), with
    /// [`Replica::recover_lost`] again. A replica that synced nothing
    /// because it never sent anything restarts as a new one. (The node
    /// cannot tell those two apart in an empty data directory and treats
    /// both as lost: see "A new cluster" in `pbft_core::persist`.) A traitor
    /// stays a traitor.
    pub fn restart_from_disk(&mut self, id: ReplicaId, app: A) {
        let disk = &mut self.disks[id.index()];
        disk.crash();
        #[allow(unused_mut)]
        let mut records = disk.records();
        #[cfg(feature = "mutations")]
        if self.forget_views {
            records.retain(|r| !matches!(r, pbft_core::Persist::View(_)));
        }
        if disk.is_lost() {
            self.restart_empty(id, app);
            return;
        }
        let config = self.replica(id).config().clone();
        let replica = Replica::recover(
            id,
            config,
            self.keys.book().clone(),
            self.keys.replica(id).clone(),
            app,
            records,
            self.now,
        )
        .unwrap_or_else(|e| panic!("the configuration was valid at start: {e}"));
        let recovered = replica.last_executed();
        self.install(id, replica);
        self.record.executed[id.index()].retain(|(seq, _)| *seq <= recovered);
        self.hosts.set_crashed(id, false);
        self.drain(NodeId::Replica(id));
    }

    /// How many records replica `id`'s disk holds durably now.
    pub fn durable_records(&self, id: ReplicaId) -> usize {
        self.disks[id.index()].durable_records()
    }

    /// Restarts replica `id` after `fault` hit its disk while it was down:
    /// as the node does with a damaged or empty data directory, it trusts
    /// none of its records and recovers from its peers
    /// ([`SimCluster::restart_empty`]).
    pub fn restart_damaged(&mut self, id: ReplicaId, fault: DiskFault, app: A) {
        self.record.disk_faults.push((self.now, id, fault));
        self.restart_empty(id, app);
    }

    /// The disk faults so far: when, which replica, what.
    pub fn disk_faults(&self) -> &[(Time, ReplicaId, DiskFault)] {
        &self.record.disk_faults
    }

    /// Restarts replica `id` with its keys but empty memory and the
    /// application `app`, as after losing its disk or finding it damaged
    /// (its records are not used): it recovers from its peers in the
    /// recovering mode of [`Replica::recover_lost`]. A traitor stays a traitor.
    pub fn restart_empty(&mut self, id: ReplicaId, app: A) {
        let config = self.replica(id).config().clone();
        let (book, secret) = (self.keys.book().clone(), self.keys.replica(id).clone());
        let recovering = Replica::recover_lost(id, config, book, secret, app, self.now)
            .unwrap_or_else(|e| panic!("the configuration was valid at start: {e}"));
        self.disks[id.index()].wipe();
        self.install(id, recovering);
        self.record.executed[id.index()].clear();
        self.hosts.set_crashed(id, false);
        self.drain(NodeId::Replica(id));
    }

    /// Whether replica `id` is crashed.
    pub fn is_crashed(&self, id: ReplicaId) -> bool {
        self.hosts.is_crashed(id)
    }

    /// Every request a client signed and sent, by digest.
    pub fn requests_sent(&self) -> &BTreeMap<pbft_core::Digest, Request> {
        &self.record.requests_sent
    }

    /// The time of the next delivery or timer, if anything is left to happen.
    pub fn next_event_time(&self) -> Option<Time> {
        self.peek_next()
    }

    /// Processes the next event (a delivery, or the timers due first).
    /// Returns `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let next_delivery = self.network.next_arrival();
        let next_timer = self.next_timer();
        match (next_delivery, next_timer) {
            (None, None) => false,
            (Some(delivery), timer) if timer.is_none_or(|t| delivery <= t) => {
                if let Some((at, envelope)) = self.network.pop() {
                    self.now = self.now.max(at);
                    if let Some(envelope) = envelope {
                        self.deliver(envelope);
                    }
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

    /// The replicas, by id (the real replica inside a traitor).
    pub fn replicas(&self) -> impl DoubleEndedIterator<Item = &Replica<A>> + ExactSizeIterator {
        self.hosts.replicas()
    }

    /// Replica `id`.
    pub fn replica(&self, id: ReplicaId) -> &Replica<A> {
        self.hosts.replica(id)
    }

    /// Mutable access to replica `id`, for injecting inputs directly.
    pub fn replica_mut(&mut self, id: ReplicaId) -> &mut Replica<A> {
        self.hosts.replica_mut(id)
    }

    /// Hands `message` to replica `to` now, as if it arrived from the network,
    /// and routes what the replica outputs in response. It comes from no
    /// channel, so no channel rule ([`pbft_core::channel::may_carry`])
    /// applies: tests inject requests and messages they held back.
    pub fn inject(&mut self, to: ReplicaId, message: Message) {
        let now = self.now;
        if let Some(node) = self.hosts.any_mut(NodeId::Replica(to)) {
            node.receive(now, message);
        }
        self.drain(NodeId::Replica(to));
    }

    /// How many messages were dropped because the channel they came on may
    /// not carry them (see [`pbft_core::channel::may_carry`]).
    pub fn forbidden_messages(&self) -> u64 {
        self.record.forbidden
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
        &self.record.events
    }

    /// The batches replica `id` executed, as (sequence number, digest), in order.
    pub fn executed(&self, id: ReplicaId) -> &[(SeqNum, pbft_core::Digest)] {
        &self.record.executed[id.index()]
    }

    /// Every vote a replica sent, with when and by whom (twins' votes are not included).
    pub fn votes(&self) -> &[(Time, ReplicaId, Vote)] {
        &self.record.votes
    }

    /// The hash of every delivery and event so far.
    pub fn trace_hash(&self) -> pbft_core::Digest {
        self.record.trace.digest()
    }

    /// Replicas that have not crashed.
    pub fn live_replicas(&self) -> impl Iterator<Item = &Replica<A>> {
        self.replicas().filter(|r| !self.is_crashed(r.id()))
    }

    fn peek_next(&self) -> Option<Time> {
        match (self.network.next_arrival(), self.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_timer(&self) -> Option<Time> {
        let clients = self.clients.iter().filter_map(|c| c.client.poll_timeout());
        self.hosts.next_timer().into_iter().chain(clients).min()
    }

    /// Fires the timers due now: replicas by id, then twins, then clients.
    fn fire_timers(&mut self) {
        let now = self.now;
        for id in self.hosts.live_ids() {
            let Some(node) = self.hosts.live_mut(id) else { continue };
            if node.poll_timeout().is_some_and(|at| at <= now) {
                if let NodeId::Replica(replica) = id {
                    self.record.trace.record(format!("timeout {now:?} {replica:?}").as_bytes());
                }
                node.handle_timeout(now);
                self.drain(id);
            }
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
        match (envelope.to, envelope.payload) {
            (to @ (NodeId::Replica(_) | NodeId::Twin(_)), Payload::Message(message)) => {
                if !pbft_core::channel::may_carry(envelope.from.author(), &message) {
                    self.record.forbidden += 1;
                    return;
                }
                let Some(node) = self.hosts.live_mut(to) else { return };
                match to {
                    NodeId::Twin(id) => self.record.trace.record_encoded(&(now, "twin", id, &message)),
                    NodeId::Replica(id) => self.record.trace.record_encoded(&(now, id, &message)),
                    NodeId::Client(_) => {}
                }
                node.receive(now, message);
                self.drain(to);
            }
            (NodeId::Client(to), Payload::Reply(reply)) => {
                let (NodeId::Replica(from) | NodeId::Twin(from)) = envelope.from else { return };
                let index = to.0 as usize;
                if index < self.clients.len() {
                    self.record.trace.record_encoded(&(now, to, &reply));
                    self.clients[index].client.handle_reply(now, from, reply);
                    self.drain_client(index);
                }
            }
            _ => {}
        }
    }

    /// Sends `payload` from `from` to `to`; what is sent to a twinned
    /// replica reaches its twin too.
    fn post(&mut self, from: NodeId, to: NodeId, payload: Payload) {
        if let NodeId::Replica(id) = to {
            if self.hosts.has_twin(id) {
                let copy =
                    Envelope { from, to: NodeId::Twin(id), sent_at: self.now, payload: payload.clone() };
                self.network.post(self.now, copy);
            }
        }
        self.network.post(self.now, Envelope { from, to, sent_at: self.now, payload });
    }

    /// Routes everything node `id` (a replica, a traitor or a twin) outputs.
    /// A crashed replica's outputs are lost.
    fn drain(&mut self, id: NodeId) {
        let (NodeId::Replica(replica) | NodeId::Twin(replica)) = id else { return };
        loop {
            let Some(node) = self.hosts.any_mut(id) else { return };
            let Some(output) = node.poll_output() else {
                // The burst is over: the QUIC driver's storage thread syncs
                // its records whether or not it sent anything, except that
                // records which hold back no send may wait for a later sync
                // (the worst the rule allows; see `SimDisk::sync_barriers`).
                if id == NodeId::Replica(replica) {
                    self.sync_before_send(replica);
                }
                return;
            };
            let own = id == NodeId::Replica(replica);
            if self.hosts.is_crashed(replica) && own {
                continue;
            }
            if own && !matches!(output, Output::Persist(_) | Output::Event(_)) {
                // The persistence rule: what was persisted is durable before
                // anything that depends on it is sent.
                self.sync_before_send(replica);
                let message = match &output {
                    Output::Send { message, .. } | Output::Broadcast(message) => Some(message),
                    _ => None,
                };
                if let Some(vote) = message.and_then(Vote::of) {
                    self.record.votes.push((self.now, replica, vote));
                }
            }
            match output {
                Output::Send { to, message } => self.post(id, NodeId::Replica(to), Payload::Message(message)),
                Output::Broadcast(message) => {
                    for to in self.quorum().replicas().filter(|r| *r != replica) {
                        self.post(id, NodeId::Replica(to), Payload::Message(message.clone()));
                    }
                }
                Output::Reply(reply) => self.post(id, NodeId::Client(reply.client), Payload::Reply(reply)),
                Output::Persist(record) if own => self.disks[replica.index()].write(record),
                Output::Persist(_) => {}
                Output::Event(event) => {
                    self.record.event(self.now, replica, matches!(id, NodeId::Twin(_)), event)
                }
            }
        }
    }
}
