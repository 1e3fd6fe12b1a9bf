//! Replays every fuzz corpus through its target: an input the fuzzer once
//! found (a crash it reported included, once fixed) must keep passing. The
//! fuzzing itself is `cargo +nightly fuzz run <target>` (fuzz/README.md).

use std::path::PathBuf;

#[test]
fn every_corpus_input_passes_its_target() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (name, run) in pbft_fuzz_targets::TARGETS {
        let dir = root.join(name);
        let inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for target {name} at {}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable corpus folder").path())
            .collect();
        assert!(!inputs.is_empty(), "the corpus of target {name} is empty");
        for input in inputs {
            let data = std::fs::read(&input).expect("a readable corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "target {name} fails on {}", input.display());
        }
    }
}

/// Each target here has its cargo-fuzz binary in fuzz/Cargo.toml, and each
/// binary there is a target here, so no target is fuzzed without being
/// replayed, or replayed without being fuzzed.
#[test]
fn every_target_has_a_fuzz_binary_and_every_binary_a_target() {
    let manifest = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .expect("fuzz/Cargo.toml is readable");
    let mut binaries: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| section.lines().find_map(|line| line.strip_prefix("name = ")))
        .map(|name| name.trim_matches('"'))
        .collect();
    let mut targets: Vec<&str> = pbft_fuzz_targets::TARGETS.iter().map(|(name, _)| *name).collect();
    binaries.sort_unstable();
    targets.sort_unstable();
    assert_eq!(binaries, targets);
}
