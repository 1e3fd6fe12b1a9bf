//! What travels on the simulated network.

use pbft_core::{ClientId, Message, ReplicaId, Reply, Time};

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
