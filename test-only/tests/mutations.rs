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

/// The one-vote checker can fail: when a replica restarted from its disk
/// does not get back the views it persisted (a test-only mutation of the
/// simulated host), the primary, crashed right after its PRE-PREPARE and
/// restarted with its memory gone, resumes view 0 and assigns the same
/// sequence number to another request: the checker reports two
/// PRE-PREPAREs for one slot. With the records whole, the same run moves to
/// a new view and signs nothing twice.
#[test]
fn one_vote_checker_catches_a_primary_that_forgets_its_view_in_a_restart() {
    let verdict = |forget_views: bool| {
        let mut cluster = pbft_tests::recording_cluster(4, 2, pbft_core::ProtocolConfig::default());
        cluster.set_forget_views(forget_views);
        let primary = ReplicaId(0);
        cluster.submit(ClientId(0), pbft_tests::op(0, 0));
        assert!(cluster.run_until_complete(Time(5_000)), "the first request completes");
        cluster.submit(ClientId(0), pbft_tests::op(0, 1));
        let pre_prepared = |c: &fault_injector::SimCluster<RecordingApp>| {
            c.votes().iter().filter(|(_, r, v)| *r == primary && v.kind == MessageKind::PrePrepare).count()
                == 2
        };
        assert!(cluster.run_until(Time(5_000), pre_prepared), "the primary pre-prepares the second");
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
    let violation = broken.violation.expect("forgetting its view lets the primary sign twice");
    eprintln!("{violation}");
    assert!(violation.contains("PrePrepare"), "{violation}");
    assert!(verdict(false).passed(), "recovering into a new view, nothing is signed twice");
}

/// Safety rests on the persistence rule: with replicas that send before
/// their records are synced (a test-only mutation of the simulated host), a
/// crash, a power cut of the whole cluster included, loses what their votes
/// relied on, and some seed of the sweep breaks a safety checker (agreement,
/// one vote per slot, linearizability or exactly-once). With the rule kept
/// the same seed passes them all.
#[test]
fn safety_checkers_catch_a_host_that_sends_before_persisting() {
    const SAFETY: [&str; 5] = ["agreement", "one-vote", "linearizability", "exactly-once", "total-order"];
    let broken = |report: &fault_injector::sim::SimReport| {
        report.verdicts.iter().find(|v| SAFETY.contains(&v.name) && !v.passed()).cloned()
    };
    let options = SimOptions { send_before_persist: true, ..SimOptions::default() };
    let caught = (0..400u64).find_map(|seed| {
        let (report, _) = simulate::<RecordingApp>(seed, &options);
        broken(&report).map(|verdict| (seed, verdict))
    });
    let (seed, verdict) = caught.expect("no seed in 0..400 broke safety by sending before persisting");
    eprintln!("seed {seed}: {}: {:?}", verdict.name, verdict.violation);
    let (honest, _) = simulate::<RecordingApp>(seed, &SimOptions::default());
    assert!(broken(&honest).is_none(), "{honest}");
}

/// The caught-up checker can fail: when a replica that lost or damaged its
/// disk never leaves the recovering mode (a test-only mutation), some seed of
/// the sweep ends with that replica still recovering, and the checker says
/// so; without the mutation the same seed passes it.
#[test]
fn caught_up_checker_catches_a_replica_that_never_finishes_recovering() {
    let options = SimOptions { mutation: Some(Mutation::NeverFinishRecovery), ..SimOptions::default() };
    let caught = (0..200u64).find_map(|seed| {
        let (report, _) = simulate::<RecordingApp>(seed, &options);
        let caught_up = report.verdicts.iter().find(|v| v.name == "caught-up")?;
        caught_up.violation.clone().map(|violation| (seed, violation))
    });
    let (seed, violation) = caught.expect("no seed in 0..200 left a damaged replica recovering");
    eprintln!("seed {seed}: {violation}");
    assert!(violation.contains("still recovering"), "{violation}");
    let (honest, _) = simulate::<RecordingApp>(seed, &SimOptions::default());
    assert!(honest.verdicts.iter().find(|v| v.name == "caught-up").is_some_and(|v| v.passed()));
}
