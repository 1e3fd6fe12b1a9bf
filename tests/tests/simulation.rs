//! Seed sweeps of the deterministic simulator: every checker on every seed.

use fault_injector::sim::{simulate, SimOptions, SimReport};
use pbft_tests::RecordingApp;

fn sweep(seeds: std::ops::Range<u64>, options: &SimOptions) -> Vec<SimReport> {
    seeds.map(|seed| simulate::<RecordingApp>(seed, options).0).collect()
}

/// How many seeds each of the CI sweep's parts runs: `PBFT_SIM_SEEDS` (the
/// total, default 300) split over three tests so they run in parallel.
fn part(index: u64) -> std::ops::Range<u64> {
    let total: u64 = std::env::var("PBFT_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let size = total.div_ceil(3);
    (index * size).min(total)..((index + 1) * size).min(total)
}

/// Every seed passes agreement, total order, validity, exactly-once,
/// linearizability, liveness and bounded resources. A failure prints the run
/// and the command that replays it.
fn assert_sweep_passes(seeds: std::ops::Range<u64>) {
    let reports = sweep(seeds, &SimOptions::default());
    let failures: Vec<&SimReport> = reports.iter().filter(|r| !r.passed()).collect();
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {} seeds failed", failures.len(), reports.len());
}

#[test]
fn seed_sweep_part_one_passes_every_checker() {
    assert_sweep_passes(part(0));
}

#[test]
fn seed_sweep_part_two_passes_every_checker() {
    assert_sweep_passes(part(1));
}

#[test]
fn seed_sweep_part_three_passes_every_checker() {
    assert_sweep_passes(part(2));
}

/// The CI sweep mixes n=4 and n=7 and exercises every partition mode.
#[test]
fn ci_sweep_covers_both_cluster_sizes_and_every_partition_mode() {
    let profiles: Vec<_> = (0..300).map(fault_injector::sim::FaultProfile::from_seed).collect();
    let sizes: std::collections::BTreeSet<usize> = profiles.iter().map(|p| p.n).collect();
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![4, 7]);
    let modes: std::collections::BTreeSet<&str> = profiles.iter().map(|p| p.partition.name()).collect();
    assert_eq!(modes.len(), 5, "{modes:?}");
    assert!(profiles.iter().any(|p| p.crash_restarts > 0) && profiles.iter().any(|p| p.open_loop));
    let power_cuts = profiles.iter().filter(|p| p.whole_cluster_crash.is_some()).count();
    assert!(power_cuts >= 50, "only {power_cuts} of 300 seeds cut every replica's power at once");
}

/// The same seed gives a byte-identical run: equal trace hashes and reports;
/// a different seed gives a different run.
#[test]
fn same_seed_gives_identical_runs() {
    for seed in [3, 17, 233] {
        let (a, trace_a) =
            simulate::<RecordingApp>(seed, &SimOptions { trace: true, ..SimOptions::default() });
        let (b, trace_b) =
            simulate::<RecordingApp>(seed, &SimOptions { trace: true, ..SimOptions::default() });
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(trace_a, trace_b, "seed {seed}");
        assert_eq!(a.to_string(), b.to_string());
    }
    let (x, _) = simulate::<RecordingApp>(3, &SimOptions::default());
    let (y, _) = simulate::<RecordingApp>(4, &SimOptions::default());
    assert_ne!(x.trace_hash, y.trace_hash);
}
