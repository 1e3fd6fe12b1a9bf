//! cargo-fuzz target `frame`: see `pbft_fuzz_targets::frame` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbft_fuzz_targets::frame::run(data));
