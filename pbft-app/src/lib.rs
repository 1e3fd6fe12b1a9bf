//! # pbft-app
//!
//! Build replicated services on pbft. The application trait
//! [`ReplicatedStateMachine`] is re-exported from `pbft-core`; [`apps`] holds
//! example applications. The `pbft` binary in this crate runs them.

pub mod apps;
pub mod cluster_config;
pub mod keyfile;
pub mod node;
pub mod traitor_node;

pub use pbft_core::{AppError, ReplicatedStateMachine};
