//! Seed sweeps of the deterministic simulator: every checker on every seed.

use fault_injector::sim::{simulate, SimOptions, SimReport};
use pbft_tests::RecordingApp;

fn sweep(seeds: std::ops::Range<u64>, options: &SimOptions) -> Vec<SimReport> {
    seeds.map(|seed| simulate::<RecordingApp>(seed, options).0).collect()
}

/// The seeds CI runs: `PBFT_SIM_SEEDS` overrides the count.
fn ci_seeds() -> std::ops::Range<u64> {
    let count = std::env::var("PBFT_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    0..count
}

/// Every seed of the CI sweep passes agreement, total order, validity,
/// exactly-once, linearizability, liveness and bounded resources; n=4 and
/// n=7 both occur. A failure prints the run and the command that replays it.
#[test]
fn seed_sweep_passes_every_checker() {
    let reports = sweep(ci_seeds(), &SimOptions::default());
    let failures: Vec<&SimReport> = reports.iter().filter(|r| !r.passed()).collect();
    for failure in &failures {
        eprintln!("{failure}");
    }
    let sizes: std::collections::BTreeSet<usize> = reports.iter().map(|r| r.profile.n).collect();
    assert!(sizes.contains(&4) && sizes.contains(&7), "the sweep covers n=4 and n=7");
    assert!(failures.is_empty(), "{} of {} seeds failed", failures.len(), reports.len());
}
