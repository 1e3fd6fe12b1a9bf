//! Mutation tests: the simulator's checkers fail when the protocol is broken
//! on purpose (pbft-core's `mutations` feature, which only this workspace
//! enables).

use fault_injector::checkers::OneVote;
use fault_injector::sim::{simulate, SimOptions};
use pbft_core::{ClientId, MessageKind, Mutation, ReplicaId, Time};
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

/// The one-vote checker can fail: with the persistence rule broken on
/// purpose (a replica's records are synced only at its next input, after the
/// sends that depended on them), the primary crashes right after sending its
/// PRE-PREPARE, restarts from a disk that lacks the record of its view, and
/// assigns the same sequence number in the same view to another request: the
/// checker reports two PRE-PREPAREs for one slot. With the rule kept, the
/// same run recovers into a view change and signs nothing twice.
#[test]
fn one_vote_checker_catches_a_replica_that_sends_before_persisting() {
    let verdict = |send_before_persist: bool| {
        let mut cluster = pbft_tests::recording_cluster(4, 2, pbft_core::ProtocolConfig::default());
        cluster.set_send_before_persist(send_before_persist);
        let primary = ReplicaId(0);
        cluster.submit(ClientId(0), pbft_tests::op(0, 0));
        let pre_prepared = |c: &fault_injector::SimCluster<RecordingApp>| {
            c.votes().iter().any(|(_, r, v)| *r == primary && v.kind == MessageKind::PrePrepare)
        };
        assert!(cluster.run_until(Time(5_000), pre_prepared), "the primary pre-prepares");
        cluster.crash(primary);
        cluster.restart_from_disk(primary, RecordingApp::default());
        cluster.submit(ClientId(1), pbft_tests::op(1, 0));
        cluster.run_until(Time(10_000), |_| false);
        let mut one_vote = OneVote::default();
        for (at, replica, vote) in cluster.votes() {
            one_vote.on_sent(*at, *replica, *vote);
        }
        one_vote.verdict()
    };
    let broken = verdict(true);
    let violation = broken.violation.expect("sending before persisting lets the primary sign twice");
    eprintln!("{violation}");
    assert!(violation.contains("PrePrepare"), "{violation}");
    assert!(verdict(false).passed(), "with the persistence rule, nothing is signed twice");
}
