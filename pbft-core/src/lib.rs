//! # pbft-core
//!
//! Practical Byzantine Fault Tolerance (Castro and Liskov, OSDI'99; TOCS'02) as
//! a sans-IO state machine: no sockets, clocks, threads or randomness. The
//! same code runs under the deterministic simulator and under a real network
//! driver.
//!
//! ## The call contract
//!
//! A host owns a [`Replica`] (or a [`Client`]), or any [`Node`] that wraps
//! one, and:
//!
//! 1. feeds it inputs, each with the current [`Time`]:
//!    [`Replica::receive`] for a message off the wire, client requests
//!    included (it is verified against the [`KeyBook`] first),
//!    [`Replica::receive_all`] for messages that arrived together, and
//!    [`Replica::handle_timeout`] when the deadline passes; a message whose
//!    channel may not carry it ([`channel::may_carry`]: a client's anything
//!    but a REQUEST, another replica's STATUS report) is dropped and counted
//!    by the host before it gets here;
//! 2. after **every** input, drains [`Replica::poll_output`] until it returns
//!    `None`, doing what each [`Output`] says (send, broadcast, reply) and
//!    passing [`Event`]s to observers;
//! 3. then reads [`Replica::poll_timeout`] again and arranges to call
//!    `handle_timeout` at that instant.
//!
//! Outputs depend only on the inputs and their order: no `HashMap` iteration,
//! no hidden clock. Bad input from the network never panics; it is dropped,
//! counted in [`Replica::rejections`] and reported as [`Event::Rejected`].
//!
//! ## Trust
//!
//! Protocol logic only sees [`Verified`] values, which only [`KeyBook::verify`]
//! makes: every signature checked, nested certificates included. Every
//! signature binds the message kind, so a PREPARE's signature never verifies
//! as a COMMIT's.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod app;
pub mod channel;
mod client;
pub mod codec;
mod config;
mod digest;
mod ids;
mod keys;
mod message;
#[cfg(feature = "mutations")]
mod mutation;
mod node;
mod output;
pub mod persist;
mod quorum;
mod reject;
mod replica;
mod signature_rule;
mod signed;
mod time;
pub mod typed;
mod verify;

#[cfg(test)]
mod tests;

/// The test-only features this build of pbft-core carries (`mutations`:
/// deliberate protocol bugs; `unverified-input`: inputs that skip signature
/// checks), or `none`. Only the `test-only/` workspace enables them; the
/// `pbft` binary prints this (`pbft build-info`) so CI can check it is `none`.
pub const TEST_ONLY_FEATURES: &str = match (cfg!(feature = "mutations"), cfg!(feature = "unverified-input")) {
    (false, false) => "none",
    (true, false) => "mutations",
    (false, true) => "unverified-input",
    (true, true) => "mutations, unverified-input",
};

pub use app::{AppError, Page, ReplicatedStateMachine};
pub use client::{Client, ClientError, ClientOutput};
pub use config::{ConfigError, ProtocolConfig};
pub use digest::Digest;
pub use ids::{ClientId, ReplicaId, SeqNum, View};
pub use keys::{KeyBook, KeyBookError, PublicKey, SecretKey};
pub use message::{
    batch_digest, null_batch_digest, Checkpoint, CheckpointProof, Commit, Committed, FetchState, Message,
    NewView, PrePrepare, Prepare, PreparedCert, Reply, Request, RequestKind, StableCheckpoint, StateChunk,
    StatusReport, ViewChange,
};
#[cfg(feature = "mutations")]
pub use mutation::Mutation;
pub use node::Node;
pub use output::{Disagreement, Event, ExecutedRequest, Output};
pub use persist::{CommitProof, Persist, Snapshot};
pub use quorum::Quorum;
pub use reject::{CertificateRule, Reject};
pub use replica::{BufferUsage, CachedReply, ClientReplies, Replica, ReplicaError, Status, Timer};
pub use signed::{Author, MessageKind, Signable, Signed, Verified};
pub use time::Time;
pub use typed::StateMachine;
