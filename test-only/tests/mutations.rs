//! Mutation tests: the simulator's checkers fail when the protocol is broken
//! on purpose (pbft-core's `mutations` feature, which only this workspace
//! enables).

use fault_injector::sim::{simulate, SimOptions};
use pbft_core::Mutation;
use pbft_tests::RecordingApp;

/// The checkers can fail: with view changes that forget prepared
/// certificates (a test-only mutation), a new view reuses a sequence number
/// at which a replica already executed a batch, and the agreement checker
/// reports the fork within a few hundred seeds.
#[test]
fn agreement_checker_catches_a_view_change_that_forgets_prepared_certificates() {
    let options =
        SimOptions { mutation: Some(Mutation::ForgetPreparedCertificates), ..SimOptions::default() };
    let caught = (0..400u64).find_map(|seed| {
        let (report, _) = simulate::<RecordingApp>(seed, &options);
        let agreement = report.verdicts.iter().find(|v| v.name == "agreement")?;
        agreement.violation.clone().map(|violation| (seed, violation, report.conflicting_seq))
    });
    let (seed, violation, conflicting_seq) =
        caught.expect("no seed in 0..400 exposed the broken view change");
    eprintln!("seed {seed}: {violation}");
    assert!(conflicting_seq.is_some());
    // Without the mutation the same seed is safe.
    let (honest, _) = simulate::<RecordingApp>(seed, &SimOptions::default());
    assert!(honest.verdicts.iter().find(|v| v.name == "agreement").is_some_and(|v| v.passed()));
}
