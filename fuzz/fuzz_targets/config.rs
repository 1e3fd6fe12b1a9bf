//! cargo-fuzz target `config`: see `pbft_fuzz_targets::config` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbft_fuzz_targets::config::run(data));
