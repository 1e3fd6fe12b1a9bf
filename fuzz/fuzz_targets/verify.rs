//! cargo-fuzz target `verify`: see `pbft_fuzz_targets::verify` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbft_fuzz_targets::verify::run(data));
