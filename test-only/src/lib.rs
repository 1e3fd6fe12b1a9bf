//! pbft's tests and benchmarks that need pbft-core's test-only features
//! (`mutations`, `unverified-input`). This crate is a workspace of its own,
//! so those features never reach the `pbft` binary; see its `Cargo.toml`.
//! The library itself is empty: the tests are in `tests/`, the benchmarks
//! in `benches/`.
