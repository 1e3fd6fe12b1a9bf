//! Issue 4: Twins-style runs. A replica runs as two instances with one key,
//! on different sides of per-phase partitions. With one twinned replica
//! (f = 1 of n = 4) every scenario is safe; with two (f+1) some scenario forks.

use fault_injector::twins::{enumerate, run, sample, Scenario, TwinsReport};
use pbft_core::ReplicaId;
use pbft_tests::RecordingApp;

/// The scenarios whose run broke a safety checker or, once the network
/// healed, left a request incomplete (one twinned replica is within f, so
/// the three honest replicas must finish everything).
fn failed_runs(scenarios: &[Scenario]) -> Vec<(usize, TwinsReport)> {
    scenarios
        .iter()
        .enumerate()
        .map(|(index, scenario)| (index, run::<RecordingApp>(scenario)))
        .filter(|(_, report)| !report.safe() || report.completed != report.issued)
        .collect()
}

#[test]
fn every_two_phase_scenario_with_a_twinned_primary_or_backup_is_safe() {
    for twin in [ReplicaId(0), ReplicaId(1)] {
        let scenarios = enumerate(&[twin], 2);
        assert_eq!(scenarios.len(), 256, "16 partitions of the 5 instances, per phase");
        let failures = failed_runs(&scenarios);
        for (index, report) in &failures {
            eprintln!("twin {twin}, scenario {index}: {:?}\n{report:?}", scenarios[*index]);
        }
        assert!(
            failures.is_empty(),
            "{} of 256 scenarios with twin {twin} were unsafe or incomplete",
            failures.len()
        );
    }
}

/// How many longer random scenarios to run: `PBFT_TWINS_SAMPLES` (default 1,000).
fn samples() -> u64 {
    std::env::var("PBFT_TWINS_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000)
}

#[test]
fn sampled_longer_scenarios_with_one_twin_are_safe() {
    let scenarios: Vec<Scenario> = (0..samples()).map(sample).collect();
    let failures = failed_runs(&scenarios);
    for (index, report) in &failures {
        eprintln!("sample {index}: {:?}\n{report:?}", scenarios[*index]);
    }
    assert!(
        failures.is_empty(),
        "{} of {} sampled scenarios were unsafe or incomplete",
        failures.len(),
        scenarios.len()
    );
}

#[test]
fn two_twinned_replicas_fork_in_some_two_phase_scenario() {
    let scenarios = enumerate(&[ReplicaId(0), ReplicaId(1)], 2);
    let fork = scenarios.iter().map(run::<RecordingApp>).find(|report| !report.safe());
    let fork = fork.expect("with f+1 twinned replicas some scenario breaks agreement");
    assert!(
        fork.conflicting_seq.is_some(),
        "the agreement checker names the sequence number: {:?}",
        fork.verdicts
    );
}
