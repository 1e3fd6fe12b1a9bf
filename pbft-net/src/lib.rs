//! # pbft-net
//!
//! The transport around the sans-IO core: QUIC (quinn) with mutual TLS in
//! which every participant proves its ed25519 key and peers pin the keys of
//! the cluster config; length-delimited frames with a size limit checked
//! before any allocation; bounded per-peer queues; reconnect with back-off;
//! and drivers that pump any sans-IO [`pbft_core::Node`] (a replica, or
//! a wrapper around one) or a [`pbft_core::Client`] with real time.

mod client;
mod driver;
mod endpoint;
mod frame;
mod identity;
mod link;
mod metrics;
mod metrics_server;
mod persister;
pub mod procfs;
mod request_trace;
mod status_cache;
mod wire;

pub use client::{query_status, query_traces, ClientHandle, ClientOptions, Completed, InvokeError};
pub use driver::{replica_status, run_replica, NoStorage, Observability, Observers, Storage};
pub use endpoint::{ClientNet, NetError, NetLimits, ReplicaAddress, ReplicaNet};
pub use frame::{encode_frame, FrameDecoder, FrameError, LENGTH_PREFIX_BYTES};
pub use identity::{
    client_config, public_key_spki, server_config, spki_public_key, IdentityError, Peer, PinnedKeys, ALPN,
};
pub use link::{frame_of, Frame, Inbound, Outbox};
pub use metrics::ReplicaMetrics;
pub use metrics_server::{MetricsServer, MAX_SCRAPE_CONNECTIONS};
pub use request_trace::{unix_micros, PhaseTimes, RequestTrace, TraceAnswer, MAX_TRACED_REQUESTS};
pub use status_cache::STATUS_REFRESH_MS;
pub use wire::{decode_wire, encode_wire, DisagreementReport, NetCounters, NodeStatus, PeerCounters, Wire};
