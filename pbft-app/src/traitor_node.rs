//! A traitor replica for real processes: a real [`Replica`] whose traffic a
//! [`Traitor`] rewrites, behind the same sans-IO contract the QUIC driver
//! pumps. For demonstrations only (`[[traitor]]` in a cluster config).

use fault_injector::traitor::{Traitor, TraitorAction};
use pbft_core::{Message, Output, Replica, ReplicatedStateMachine, Time};
use pbft_net::{NodeStatus, ReplicaRuntime};
use std::collections::{BTreeMap, VecDeque};

/// A replica and the traitor that rewrites what it sends. Held-back sends
/// (the slow primary's) wait in a queue whose deadline joins the replica's.
pub struct TraitorNode<A> {
    replica: Replica<A>,
    traitor: Traitor,
    ready: VecDeque<Output>,
    held: BTreeMap<(Time, u64), Output>,
    held_count: u64,
}

impl<A: ReplicatedStateMachine> TraitorNode<A> {
    /// Wraps `replica` with `traitor`.
    pub fn new(replica: Replica<A>, traitor: Traitor) -> TraitorNode<A> {
        TraitorNode { replica, traitor, ready: VecDeque::new(), held: BTreeMap::new(), held_count: 0 }
    }

    fn carry_out(&mut self, now: Time, actions: Vec<TraitorAction>) {
        for action in actions {
            match action {
                TraitorAction::Send { to, message, delay_ms: 0 } => {
                    self.ready.push_back(Output::Send { to, message })
                }
                TraitorAction::Send { to, message, delay_ms } => {
                    self.held.insert((now + delay_ms, self.held_count), Output::Send { to, message });
                    self.held_count += 1;
                }
                TraitorAction::Reply(reply) => self.ready.push_back(Output::Reply(reply)),
            }
        }
    }

    fn pump(&mut self, now: Time) {
        while let Some(output) = self.replica.poll_output() {
            if let Output::Event(_) = output {
                self.ready.push_back(output);
                continue;
            }
            let actions = self.traitor.outgoing(output);
            self.carry_out(now, actions);
        }
    }
}

impl<A: ReplicatedStateMachine> ReplicaRuntime for TraitorNode<A> {
    fn receive(&mut self, now: Time, message: Message) {
        let actions = self.traitor.incoming(&message);
        self.carry_out(now, actions);
        self.replica.receive(now, message);
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Time) {
        self.replica.handle_timeout(now);
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.ready.push_back(entry.remove());
        }
        self.pump(now);
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.ready.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        let held = self.held.keys().next().map(|(at, _)| *at);
        match (self.replica.poll_timeout(), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn node_status(&self) -> NodeStatus {
        let mut status = self.replica.node_status();
        status.traitor = Some(self.traitor.behavior().to_string());
        status
    }
}
