//! What one frame carries between two participants.

use pbft_core::codec::{self, CodecError};
use pbft_core::{Message, Reply};
use serde::{Deserialize, Serialize};

/// A unit of traffic: a protocol message (client requests included, verified
/// by the receiver) or a reply to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// A signed protocol message.
    Message(Message),
    /// A replica's reply to a client, authenticated by the channel.
    Reply(Reply),
}

/// The bytes of `wire`, as the payload of one frame.
pub fn encode_wire(wire: &Wire) -> Vec<u8> {
    codec::encode(wire)
}

/// Decodes one frame's payload; malformed input is an error, never a panic.
pub fn decode_wire(bytes: &[u8]) -> Result<Wire, CodecError> {
    codec::decode(bytes)
}
