//! The simulated network: what travels on it, and the messages in flight.

use pbft_core::{ClientId, Message, ReplicaId, Reply, Time};
use std::collections::BTreeMap;

/// A participant of a simulated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    /// A replica.
    Replica(ReplicaId),
    /// A client.
    Client(ClientId),
    /// The second instance of a replica that runs twice with the same key
    /// (a Twins-style Byzantine replica).
    Twin(ReplicaId),
}

impl NodeId {
    /// The author this node's channel speaks for: a twin speaks for the
    /// replica it doubles.
    pub fn author(self) -> pbft_core::Author {
        match self {
            NodeId::Replica(id) | NodeId::Twin(id) => pbft_core::Author::Replica(id),
            NodeId::Client(id) => pbft_core::Author::Client(id),
        }
    }
}

/// The contents of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A protocol message (client requests included), verified on receipt.
    Message(Message),
    /// A reply to a client over its authenticated channel.
    Reply(Reply),
}

/// One message in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender (the authenticated channel's end, not a claim in the payload).
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// When it was sent.
    pub sent_at: Time,
    /// What it carries.
    pub payload: Payload,
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

/// The messages in flight, in delivery order, and what decides their fate:
/// the network model when they are sent, the filter when they arrive.
pub(crate) struct InFlight {
    model: Box<dyn NetworkModel>,
    filter: Option<Filter>,
    /// By arrival time, then by the order they were sent.
    queue: BTreeMap<(Time, u64), Envelope>,
    sent: u64,
}

impl InFlight {
    pub(crate) fn new(model: impl NetworkModel + 'static) -> InFlight {
        InFlight { model: Box::new(model), filter: None, queue: BTreeMap::new(), sent: 0 }
    }

    /// Sends `envelope` now: each copy the model lets through arrives after its delay (at least 1 ms).
    pub(crate) fn post(&mut self, now: Time, envelope: Envelope) {
        let delays = self.model.route(&envelope);
        let Some((last, copies)) = delays.split_last() else { return };
        for delay in copies {
            self.queue.insert((now + (*delay).max(1), self.sent), envelope.clone());
            self.sent += 1;
        }
        self.queue.insert((now + (*last).max(1), self.sent), envelope);
        self.sent += 1;
    }

    /// When the next envelope arrives.
    pub(crate) fn next_arrival(&self) -> Option<Time> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// The next envelope to arrive, with its arrival time, if the filter lets
    /// it through (`Some((at, None))`: it arrived and was dropped).
    pub(crate) fn pop(&mut self) -> Option<(Time, Option<Envelope>)> {
        let ((at, _), envelope) = self.queue.pop_first()?;
        let admitted = self.filter.as_mut().is_none_or(|filter| filter(&envelope));
        Some((at, admitted.then_some(envelope)))
    }

    pub(crate) fn set_filter(&mut self, filter: Option<Filter>) {
        self.filter = filter;
    }

    pub(crate) fn set_model(&mut self, model: Box<dyn NetworkModel>) {
        self.model = model;
    }
}
