//! cargo-fuzz target `wire`: see `pbft_fuzz_targets::wire` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbft_fuzz_targets::wire::run(data));
