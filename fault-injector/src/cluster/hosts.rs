//! The nodes a simulated cluster hosts: one per replica (honest, or a
//! traitor around a real replica), the twins, and which replicas are down.
//! Every one of them is driven through the same [`Node`] seam.

use super::network::NodeId;
use crate::traitor::{Behavior, TraitorNode};
use pbft_core::{Node, Replica, ReplicaId, ReplicatedStateMachine};
use std::collections::{BTreeMap, BTreeSet};

/// What the simulator runs in a replica's place: a [`Node`] with a real
/// replica inside, which the checkers inspect. (A cluster holds a handful,
/// one per replica, so the variants' difference in size costs nothing.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum Hosted<A> {
    /// The replica itself.
    Honest(Replica<A>),
    /// The replica wrapped in a traitor.
    Traitor(TraitorNode<A>),
}

impl<A: ReplicatedStateMachine> Hosted<A> {
    /// The real replica.
    pub(crate) fn replica(&self) -> &Replica<A> {
        match self {
            Hosted::Honest(replica) => replica,
            Hosted::Traitor(node) => node.replica(),
        }
    }

    /// Mutable access to the real replica.
    pub(crate) fn replica_mut(&mut self) -> &mut Replica<A> {
        match self {
            Hosted::Honest(replica) => replica,
            Hosted::Traitor(node) => node.replica_mut(),
        }
    }

    /// The real replica, without whatever wrapped it.
    fn into_replica(self) -> Replica<A> {
        match self {
            Hosted::Honest(replica) => replica,
            Hosted::Traitor(node) => node.into_replica(),
        }
    }

    /// Replaces the real replica (a restart with empty memory), keeping the wrapper.
    fn replace_replica(&mut self, replica: Replica<A>) {
        match self {
            Hosted::Honest(old) => *old = replica,
            Hosted::Traitor(node) => node.replace_replica(replica),
        }
    }

    /// The traitor behaviour wrapped around the replica, if any.
    fn behavior(&self) -> Option<Behavior> {
        match self {
            Hosted::Honest(_) => None,
            Hosted::Traitor(node) => Some(node.behavior()),
        }
    }

    fn node(&self) -> &dyn Node {
        match self {
            Hosted::Honest(replica) => replica,
            Hosted::Traitor(node) => node,
        }
    }

    /// The node the host drives.
    pub(crate) fn node_mut(&mut self) -> &mut dyn Node {
        match self {
            Hosted::Honest(replica) => replica,
            Hosted::Traitor(node) => node,
        }
    }
}

/// Every node of the cluster, by [`NodeId`].
pub(crate) struct Hosts<A> {
    /// One per replica, by id.
    replicas: Vec<Hosted<A>>,
    /// Second instances of replicas (Twins), by the replica they double.
    twins: BTreeMap<ReplicaId, Hosted<A>>,
    crashed: BTreeSet<ReplicaId>,
}

impl<A: ReplicatedStateMachine> Hosts<A> {
    pub(crate) fn new(replicas: Vec<Replica<A>>) -> Hosts<A> {
        let replicas = replicas.into_iter().map(Hosted::Honest).collect();
        Hosts { replicas, twins: BTreeMap::new(), crashed: BTreeSet::new() }
    }

    /// The node at `id`, unless there is none or it is a crashed replica.
    pub(crate) fn live_mut(&mut self, id: NodeId) -> Option<&mut dyn Node> {
        match id {
            NodeId::Replica(r) if self.crashed.contains(&r) => None,
            _ => self.any_mut(id),
        }
    }

    /// The node at `id`, crashed or not.
    pub(crate) fn any_mut(&mut self, id: NodeId) -> Option<&mut dyn Node> {
        match id {
            NodeId::Replica(r) => self.replicas.get_mut(r.index()).map(Hosted::node_mut),
            NodeId::Twin(r) => self.twins.get_mut(&r).map(Hosted::node_mut),
            NodeId::Client(_) => None,
        }
    }

    /// Every node that runs, in the order their timers are served: replicas by id, then twins.
    pub(crate) fn live_ids(&self) -> Vec<NodeId> {
        let replicas = (0..self.replicas.len() as u32)
            .map(ReplicaId)
            .filter(|r| !self.crashed.contains(r))
            .map(NodeId::Replica);
        replicas.chain(self.twins.keys().map(|r| NodeId::Twin(*r))).collect()
    }

    /// The earliest deadline of any running node.
    pub(crate) fn next_timer(&self) -> Option<pbft_core::Time> {
        let replicas = self
            .replicas
            .iter()
            .filter(|r| !self.crashed.contains(&r.replica().id()))
            .filter_map(|r| r.node().poll_timeout());
        replicas.chain(self.twins.values().filter_map(|t| t.node().poll_timeout())).min()
    }

    pub(crate) fn replica(&self, id: ReplicaId) -> &Replica<A> {
        self.replicas[id.index()].replica()
    }

    pub(crate) fn replica_mut(&mut self, id: ReplicaId) -> &mut Replica<A> {
        self.replicas[id.index()].replica_mut()
    }

    pub(crate) fn replicas(&self) -> impl DoubleEndedIterator<Item = &Replica<A>> + ExactSizeIterator {
        self.replicas.iter().map(|r| r.replica())
    }

    /// Wraps replica `id` in `wrap` (its state is kept).
    pub(crate) fn wrap(&mut self, id: ReplicaId, wrap: impl FnOnce(Replica<A>) -> Hosted<A>) {
        let index = id.index();
        let replica = self.replicas.remove(index).into_replica();
        self.replicas.insert(index, wrap(replica));
    }

    /// Replaces replica `id`'s real replica with `replica`, whatever wraps it.
    pub(crate) fn replace(&mut self, id: ReplicaId, replica: Replica<A>) {
        self.replicas[id.index()].replace_replica(replica);
    }

    pub(crate) fn add_twin(&mut self, id: ReplicaId, twin: Replica<A>) {
        self.twins.insert(id, Hosted::Honest(twin));
    }

    pub(crate) fn has_twin(&self, id: ReplicaId) -> bool {
        self.twins.contains_key(&id)
    }

    /// The traitors and their behaviours, by id.
    pub(crate) fn traitors(&self) -> impl Iterator<Item = (ReplicaId, Behavior)> + '_ {
        self.replicas.iter().filter_map(|r| r.behavior().map(|b| (r.replica().id(), b)))
    }

    pub(crate) fn set_crashed(&mut self, id: ReplicaId, crashed: bool) {
        if crashed {
            self.crashed.insert(id);
        } else {
            self.crashed.remove(&id);
        }
    }

    pub(crate) fn is_crashed(&self, id: ReplicaId) -> bool {
        self.crashed.contains(&id)
    }
}
