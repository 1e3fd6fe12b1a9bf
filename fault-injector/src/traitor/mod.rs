//! Traitor replicas: a real replica whose outgoing traffic is rewritten.
//!
//! A [`TraitorNode`] wraps a real `pbft_core::Replica` and is itself a
//! `pbft_core::Node`: every output of the replica goes through
//! [`Traitor::outgoing`], every message it receives first through
//! [`Traitor::incoming`], and the node carries out the [`TraitorAction`]s
//! (holding back delayed sends until their time). The simulator and the real
//! node's QUIC driver host it like any other node.

mod behavior;
mod node;
mod rewrite;

pub use behavior::{Behavior, UnknownBehavior};
pub use node::TraitorNode;
pub use rewrite::{Traitor, TraitorAction, TraitorPlan};
