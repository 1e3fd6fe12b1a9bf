//! cargo-fuzz target `replica`: see `pbft_fuzz_targets::replica` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbft_fuzz_targets::replica::run(data));
