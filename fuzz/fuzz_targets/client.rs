//! cargo-fuzz target `client`: see `pbft_fuzz_targets::client` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbft_fuzz_targets::client::run(data));
