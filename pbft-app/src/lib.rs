//! # pbft-app
//!
//! Build replicated services on pbft. Write a typed [`StateMachine`] (or a
//! byte-level [`ReplicatedStateMachine`]), run it on replicas with
//! [`node::run_replica_with`] or the `pbft` binary, and call it with
//! [`Client`] or [`BlockingClient`]. [`apps`] holds the example
//! applications; `docs/building-an-app.md` is the tutorial.

pub mod apps;
pub mod client;
pub mod cluster_config;
pub mod keyfile;
pub mod node;
pub mod workloads;

pub use client::{BlockingClient, Client, ClientError};
pub use pbft_core::typed;
pub use pbft_core::{AppError, ClientId, ReplicatedStateMachine, StateMachine};

/// The tutorial `docs/building-an-app.md`, compiled and run as a doctest so
/// its code cannot drift from the library.
#[cfg(doctest)]
#[doc = include_str!("../../docs/building-an-app.md")]
pub struct BuildingAnApp;
