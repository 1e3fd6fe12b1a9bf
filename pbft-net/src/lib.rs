//! # pbft-net
//!
//! The transport around the sans-IO core. This crate starts with the part
//! every transport needs and that is independent of sockets: the wire
//! envelope and length-delimited framing with a size limit checked before
//! any allocation. The QUIC endpoint and the tokio driver build on it.

mod frame;
mod wire;

pub use frame::{encode_frame, FrameDecoder, FrameError, LENGTH_PREFIX_BYTES};
pub use wire::{decode_wire, encode_wire, Wire};
