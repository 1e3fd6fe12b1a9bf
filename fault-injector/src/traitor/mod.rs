//! Traitor replicas: a real replica whose outgoing traffic is rewritten.
//!
//! A traitor wraps a real `pbft_core::Replica` (the host keeps both): every
//! output of the replica goes through [`Traitor::outgoing`], every message it
//! receives first through [`Traitor::incoming`], and the host carries out the
//! [`TraitorAction`]s. The simulator and the real node do exactly that.

mod behavior;
mod rewrite;

pub use behavior::{Behavior, UnknownBehavior};
pub use rewrite::{Traitor, TraitorAction, TraitorPlan, Traitors};
