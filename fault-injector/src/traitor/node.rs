//! A traitor replica as a [`Node`]: a real [`Replica`] whose traffic a
//! [`Traitor`] rewrites. The simulator and the QUIC driver both host it the
//! way they host an honest replica, so there is one model of a traitor (and
//! of its held-back sends) for both.

use super::rewrite::{Traitor, TraitorAction};
use super::Behavior;
use pbft_core::{ClientId, Message, Node, Output, Replica, ReplicatedStateMachine, Time};
use std::collections::{BTreeMap, VecDeque};

/// A replica and the traitor that rewrites what it sends. Events and
/// persist records pass through unchanged. Sends the traitor holds back (the slow primary's) wait
/// in a queue whose earliest deadline joins the replica's own.
pub struct TraitorNode<A> {
    replica: Replica<A>,
    traitor: Traitor,
    ready: VecDeque<Output>,
    /// Held-back sends by release time, then by the order they were made.
    held: BTreeMap<(Time, u64), Output>,
    held_count: u64,
}

impl<A: ReplicatedStateMachine> TraitorNode<A> {
    /// Wraps `replica` with `traitor`.
    pub fn new(replica: Replica<A>, traitor: Traitor) -> TraitorNode<A> {
        TraitorNode { replica, traitor, ready: VecDeque::new(), held: BTreeMap::new(), held_count: 0 }
    }

    /// The real replica inside.
    pub fn replica(&self) -> &Replica<A> {
        &self.replica
    }

    /// Mutable access to the real replica inside.
    pub fn replica_mut(&mut self) -> &mut Replica<A> {
        &mut self.replica
    }

    /// The behaviour this traitor runs.
    pub fn behavior(&self) -> Behavior {
        self.traitor.behavior()
    }

    /// Unwraps the real replica; the traitor and whatever it held back are dropped.
    pub fn into_replica(self) -> Replica<A> {
        self.replica
    }

    /// Replaces the replica inside with `replica` (a restart with empty
    /// memory); sends not yet made are lost with the old one.
    pub fn replace_replica(&mut self, replica: Replica<A>) {
        self.replica = replica;
        self.ready.clear();
        self.held.clear();
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

    /// Passes the replica's outputs through the traitor, in order.
    fn pump(&mut self, now: Time) {
        while let Some(output) = self.replica.poll_output() {
            if let Output::Event(_) | Output::Persist(_) = output {
                // A traitor's replica persists what it does honestly; only
                // what it sends is rewritten.
                self.ready.push_back(output);
                continue;
            }
            let actions = self.traitor.outgoing(output);
            self.carry_out(now, actions);
        }
    }
}

impl<A: ReplicatedStateMachine> Node for TraitorNode<A> {
    fn receive(&mut self, now: Time, message: Message) {
        let actions = self.traitor.incoming(&message);
        self.carry_out(now, actions);
        self.replica.receive(now, message);
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Time) {
        if self.replica.poll_timeout().is_some_and(|at| at <= now) {
            self.replica.handle_timeout(now);
        }
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

    fn report_phases(&mut self, on: bool) {
        self.replica.report_phases(on);
    }

    fn newest_timestamp(&self, client: ClientId) -> u64 {
        self.replica.newest_timestamp(client)
    }

    fn poll_timeout(&self) -> Option<Time> {
        let held = self.held.keys().next().map(|(at, _)| *at);
        match (self.replica.poll_timeout(), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
