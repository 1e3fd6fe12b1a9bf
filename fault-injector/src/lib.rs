//! # fault-injector
//!
//! The adversary and the deterministic simulator for pbft. Its first piece is
//! [`SimCluster`]: n real [`pbft_core::Replica`]s and their clients on a virtual
//! network with virtual time, driven one event at a time in a fixed order, so
//! a run is reproducible from its inputs alone. Keys are real ed25519 keys
//! derived from a seed ([`ClusterKeys`]); nothing in the crypto path is faked.
//! The cluster hosts every replica, traitor and twin as a
//! [`pbft_core::Node`] and routes all their outputs in one place.
//!
//! On top of it: [`traitor`] (ten Byzantine behaviours that rewrite a real
//! replica's traffic, and [`traitor::TraitorNode`], the one wrapper that
//! makes a traitor a `Node`, hosted alike by the simulator and by real
//! processes), [`sim`] (a seed expands into network faults, crashes and
//! traitors; a [`sim::Workload`] says what clients do; checkers judge the
//! honest replicas), [`twins`] (a replica run twice with one key under
//! changing partitions), [`bound`] (the fork attack with f and f+1
//! colluders) and [`throughput`] (requests per virtual second under attack).

pub mod bound;
pub mod checkers;
mod cluster;
mod keys;
mod rng;
pub mod sim;
pub mod throughput;
mod trace;
pub mod traitor;
pub mod twins;

pub use cluster::{
    Completion, DiskFault, Envelope, FixedLatency, NetworkModel, NodeId, Payload, SimCluster, SimConfig,
};
pub use keys::ClusterKeys;
pub use rng::Rng;
pub use trace::TraceHash;
