//! The bodies of pbft's fuzz targets, one module each.
//!
//! Each module's `run` takes the fuzzer's bytes, feeds them to one piece of
//! the framework that reads untrusted input, and panics if a property that
//! module states breaks: a panic inside the code under test, or a wrong
//! answer the module checks for. The cargo-fuzz crate in `fuzz/` wraps each
//! `run` in a `fuzz_target!`; `tests/corpus_replay.rs` here runs every input
//! of `fuzz/corpus/<target>/` through it, so `cargo test` catches a
//! regression on an input the fuzzer once found interesting.
//!
//! The bodies live in this ordinary crate, not in the cargo-fuzz one, so that
//! they build on the stable toolchain with the rest of the workspace.

pub mod client;
pub mod config;
pub mod frame;
pub mod keys;
pub mod replica;
pub mod verify;
pub mod wire;

/// A target's body: takes the fuzzer's bytes, panics when a property breaks.
pub type Target = fn(&[u8]);

/// Every target by the name its corpus folder and cargo-fuzz binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame::run),
    ("wire", wire::run),
    ("verify", verify::run),
    ("replica", replica::run),
    ("client", client::run),
    ("config", config::run),
];
