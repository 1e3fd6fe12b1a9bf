//! What one frame carries between two participants.

use pbft_core::codec::{self, CodecError};
use pbft_core::{Message, Reply};
use serde::{Deserialize, Serialize};

/// A unit of traffic: a protocol message (client requests included, verified
/// by the receiver), a reply to a client, or the small status exchange that
/// operators' tools use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// A signed protocol message.
    Message(Message),
    /// A replica's reply to a client, authenticated by the channel.
    Reply(Reply),
    /// A client asks to receive its replies on this connection. Backups learn
    /// of a request from the primary, not from the client, so they need to be
    /// told where the client listens.
    Hello,
    /// Asks the replica for its [`NodeStatus`].
    StatusQuery,
    /// The answer to a [`Wire::StatusQuery`].
    Status(NodeStatus),
    /// Asks the replica what it knows of one request's phases.
    TraceQuery {
        /// The client that sent the request.
        client: u64,
        /// The request's timestamp.
        timestamp: u64,
    },
    /// The answer to a [`Wire::TraceQuery`].
    Trace(crate::request_trace::TraceAnswer),
    /// A client asks for the highest of its own timestamps that executed,
    /// before its first request (see [`crate::ClientHandle`]).
    TimestampQuery,
    /// The answer to a [`Wire::TimestampQuery`], on the client's own
    /// connection only.
    Timestamp {
        /// The highest timestamp of the asking client's that executed here
        /// (0 if none).
        newest: u64,
    },
}

/// One replica's view of its own progress, as the status command shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The replica's id.
    pub replica: u32,
    /// Its current view (the target view while changing views).
    pub view: u64,
    /// Whether it is in normal operation (false while changing views).
    pub normal: bool,
    /// Whether it is the primary of its view.
    pub primary: bool,
    /// Whether it is recovering from a lost or damaged disk (voting in
    /// nothing until it has learned how far its peers got).
    pub recovering: bool,
    /// The highest sequence number it executed.
    pub last_executed: u64,
    /// The sequence number of its stable checkpoint (the low watermark).
    pub stable_checkpoint: u64,
    /// The state digest certified by that checkpoint, in hex.
    pub stable_checkpoint_digest: String,
    /// The digest of its current application state and reply cache, in hex.
    pub state_digest: String,
    /// Inputs the protocol dropped (bad signatures, stale views, …), all reasons together.
    pub rejected_messages: u64,
    /// The same count by reason (`BadSignature`, `StaleView`, `BufferFull`, …).
    pub rejections: std::collections::BTreeMap<String, u64>,
    /// Requests waiting to execute.
    pub pending_requests: u64,
    /// Unordered reads waiting for execution to catch up.
    pub held_reads: u64,
    /// Sequence numbers in the message log.
    pub log_slots: u64,
    /// Transport counters.
    pub net: NetCounters,
    /// Each peer's traffic (the driver fills it in).
    pub peers: Vec<PeerCounters>,
    /// QUIC connections open now (the driver fills it in).
    pub open_connections: u64,
    /// The latest checkpoint at which replicas signed different state
    /// digests: a Byzantine replica, or an application that is not deterministic.
    pub disagreement: Option<DisagreementReport>,
}

/// Which replicas signed which state digest at one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisagreementReport {
    /// The checkpoint's sequence number.
    pub seq: u64,
    /// Each digest (hex) with the replicas that signed it.
    pub digests: std::collections::BTreeMap<String, Vec<u32>>,
}

impl From<&pbft_core::Disagreement> for DisagreementReport {
    fn from(disagreement: &pbft_core::Disagreement) -> DisagreementReport {
        let digests = disagreement
            .digests
            .iter()
            .map(|(digest, replicas)| (digest.to_string(), replicas.iter().map(|r| r.0).collect()))
            .collect();
        DisagreementReport { seq: disagreement.seq, digests }
    }
}

/// What the transport dropped or refused, counted since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCounters {
    /// Frames received and decoded.
    pub frames_in: u64,
    /// Frames whose payload did not decode (dropped).
    pub malformed_frames: u64,
    /// Protocol messages their channel may not carry (dropped): anything but
    /// a request from a client, another replica's STATUS report from a replica.
    pub forbidden_frames: u64,
    /// Streams that announced a frame above the size limit (connection closed).
    pub oversized_frames: u64,
    /// Frames dropped because a peer's send queue was full.
    pub send_queue_drops: u64,
    /// Frames over the frame size limit that were never sent (dropped).
    pub oversized_frames_out: u64,
    /// Frames whose receiver closed the connection on them (it refused
    /// their size): dropped, never sent again.
    pub refused_frames: u64,
    /// Incoming connections whose TLS handshake failed (unknown key, garbage).
    pub failed_handshakes: u64,
    /// Outgoing links to replicas whose stream is open now (not a count
    /// since start): a replica of n that reaches every peer reports n − 1.
    pub links_up: u64,
}

/// One peer's traffic as a replica sees it: another replica, or `clients`
/// (every client together).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCounters {
    /// `replica N`, or `clients`.
    pub peer: String,
    /// Whether this replica's outgoing link to the peer is up (always false
    /// for `clients`: they dial in).
    pub link_up: bool,
    /// Frames waiting in the send queue to the peer now.
    pub send_queue_frames: u64,
    /// Frames received from it and decoded.
    pub frames_in: u64,
    /// Bytes received from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
    /// Its frames whose payload did not decode (dropped).
    pub malformed_frames: u64,
    /// Its protocol messages its channel may not carry (dropped): any but
    /// a request from a client, another replica's STATUS report from a replica.
    pub forbidden_frames: u64,
    /// Its frames announced above the size limit (connection closed).
    pub oversized_frames: u64,
    /// Frames to it dropped because its send queue was full.
    pub send_queue_drops: u64,
    /// Frames to it over the frame size limit, never sent (dropped).
    pub oversized_frames_out: u64,
    /// Frames to it on which it closed the connection (it refused their
    /// size): dropped, never sent again.
    pub refused_frames: u64,
}

/// The bytes of `wire`, as the payload of one frame.
pub fn encode_wire(wire: &Wire) -> Vec<u8> {
    codec::encode(wire)
}

/// Decodes one frame's payload; malformed input is an error, never a panic.
pub fn decode_wire(bytes: &[u8]) -> Result<Wire, CodecError> {
    codec::decode(bytes)
}
