//! Issue 4: traitors. With up to f traitors of any behaviour the honest
//! replicas pass every checker; they notice and report what traitors send;
//! with f+1 colluders they can be made to fork.

use fault_injector::bound::{demonstrate, fork_attack};
use fault_injector::sim::{simulate, SimOptions, SimReport, TraitorSelection};
use fault_injector::traitor::Behavior;
use pbft_core::{Author, Event, MessageKind, ProtocolConfig, Reject, ReplicaId};
use pbft_tests::{recording_cluster, submit_all, RecordingApp};
use std::collections::BTreeSet;

/// Seeds per cluster size and behaviour: `PBFT_TRAITOR_SEEDS` (default 100).
fn seeds() -> u64 {
    std::env::var("PBFT_TRAITOR_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100)
}

/// f traitors (f = 1 with n = 4, f = 2 with n = 7) under the simulator's
/// network faults: every checker passes on every seed, for both sizes.
fn assert_honest_replicas_survive(traitors: TraitorSelection) {
    assert_honest_replicas_survive_rotating(traitors, false, seeds());
}

/// [`assert_honest_replicas_survive`] over `seeds` seeds, with views rotating
/// on a term of twice the view-change timeout when `rotate`.
fn assert_honest_replicas_survive_rotating(traitors: TraitorSelection, rotate: bool, seeds: u64) {
    let mut failures: Vec<SimReport> = Vec::new();
    for n in [4, 7] {
        for seed in 0..seeds {
            let mut profile = fault_injector::sim::FaultProfile::from_seed(seed);
            if rotate {
                profile.protocol.view_term_ms = 2 * profile.protocol.view_change_timeout_ms;
            }
            let options = SimOptions {
                traitors: traitors.clone(),
                replicas: Some(n),
                profile: Some(profile),
                ..SimOptions::default()
            };
            let (report, _) = simulate::<RecordingApp>(seed, &options);
            let f = (n - 1) / 3;
            assert_eq!(report.traitors.len(), f, "seed {seed}: the run has f traitors");
            if !report.passed() {
                failures.push(report);
            }
        }
    }
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} runs failed with traitors {traitors:?}", failures.len());
}

macro_rules! behaviour_sweep {
    ($($name:ident => $behavior:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            assert_honest_replicas_survive(TraitorSelection::Uniform($behavior));
        }
    )*};
}

behaviour_sweep! {
    silent_traitors_leave_every_checker_passing => Behavior::Silent,
    equivocating_traitors_leave_every_checker_passing => Behavior::Equivocate,
    double_voting_traitors_leave_every_checker_passing => Behavior::DoubleVote,
    forging_traitors_leave_every_checker_passing => Behavior::Forge,
    replaying_traitors_leave_every_checker_passing => Behavior::Replay,
    view_change_liars_leave_every_checker_passing => Behavior::ViewChangeLiar,
    slow_primaries_leave_every_checker_passing => Behavior::SlowPrimary,
    flooding_traitors_leave_every_checker_passing => Behavior::Flood,
    selective_traitors_leave_every_checker_passing => Behavior::Selective,
    f_colluders_leave_every_checker_passing => Behavior::Collude,
}

#[test]
fn traitors_of_mixed_behaviours_leave_every_checker_passing() {
    assert_honest_replicas_survive(TraitorSelection::Mixed);
}

/// Rotation makes view changes routine: every checker still passes with
/// mixed traitors and slow primaries when views end on a short term.
#[test]
fn traitors_with_rotating_views_leave_every_checker_passing() {
    assert_honest_replicas_survive_rotating(TraitorSelection::Mixed, true, seeds() / 2);
    assert_honest_replicas_survive_rotating(
        TraitorSelection::Uniform(Behavior::SlowPrimary),
        true,
        seeds() / 2,
    );
}

/// How often honest replicas (all but `traitor`) rejected something for `reason`.
fn honest_rejections(
    cluster: &fault_injector::SimCluster<RecordingApp>,
    traitor: ReplicaId,
    reason: Reject,
) -> u64 {
    cluster
        .replicas()
        .filter(|r| r.id() != traitor)
        .map(|r| r.rejections().get(&reason).copied().unwrap_or(0))
        .sum()
}

/// Runs n = 4 with `traitor` misbehaving as `behavior` on a clean network
/// until 3 clients × 10 requests complete (they must: one traitor is within f).
fn run_with_traitor(traitor: ReplicaId, behavior: Behavior) -> fault_injector::SimCluster<RecordingApp> {
    let protocol = ProtocolConfig { view_change_timeout_ms: 500, ..ProtocolConfig::default() };
    let mut cluster = recording_cluster(4, 3, protocol);
    cluster.make_traitor(traitor, behavior, BTreeSet::from([traitor]));
    submit_all(&mut cluster, 3, 10);
    assert!(cluster.run_until_complete(pbft_core::Time(60_000)), "{behavior}: every request completes");
    cluster
}

#[test]
fn honest_replicas_report_forged_signatures() {
    let cluster = run_with_traitor(ReplicaId(2), Behavior::Forge);
    assert!(honest_rejections(&cluster, ReplicaId(2), Reject::BadSignature) > 0);
}

#[test]
fn honest_replicas_report_replayed_messages() {
    let cluster = run_with_traitor(ReplicaId(2), Behavior::Replay);
    let replayed = honest_rejections(&cluster, ReplicaId(2), Reject::Duplicate)
        + honest_rejections(&cluster, ReplicaId(2), Reject::StaleView)
        + honest_rejections(&cluster, ReplicaId(2), Reject::OutsideWatermarks);
    assert!(replayed > 0, "replays are refused as duplicates, stale views or outside the watermarks");
}

/// Issue 21, point 7: the replaying traitor also resends other replicas'
/// STATUS reports. Replicas answer each signer's reports at most once per
/// half interval, so a replayed report answered would make the signer's
/// next real one "too frequent". The simulated network, like the QUIC
/// driver, drops a report read from any channel but its author's
/// (`pbft_core::channel::may_carry`): the replays are dropped, and no honest
/// replica's report is ever refused as too frequent.
#[test]
fn replayed_status_reports_are_dropped_at_the_channel() {
    let traitor = ReplicaId(2);
    let idle_for = |mut cluster: fault_injector::SimCluster<RecordingApp>| {
        // Reports go out every status interval (longer when idle): run on.
        let deadline = pbft_core::Time(cluster.now().0 + 20_000);
        cluster.run_until(deadline, |_| false);
        cluster
    };
    let honest_reports_refused = |cluster: &fault_injector::SimCluster<RecordingApp>| {
        let refused = |event: &Event| match event {
            Event::Rejected {
                from: Author::Replica(from),
                kind: MessageKind::Status,
                reason: Reject::TooFrequent,
            } => *from != traitor,
            _ => false,
        };
        cluster.events().iter().filter(|(_, _, event)| refused(event)).count()
    };
    let replayed = idle_for(run_with_traitor(traitor, Behavior::Replay));
    assert!(replayed.forbidden_messages() > 0, "the traitor's replays of others' reports were dropped");
    assert_eq!(honest_reports_refused(&replayed), 0, "no honest report was refused as too frequent");
    let silent = idle_for(run_with_traitor(traitor, Behavior::Silent));
    assert_eq!(silent.forbidden_messages(), 0, "honest replicas send only their own reports");
}

#[test]
fn honest_replicas_report_an_equivocating_primary_and_double_votes() {
    let cluster = run_with_traitor(ReplicaId(0), Behavior::Equivocate);
    assert!(
        honest_rejections(&cluster, ReplicaId(0), Reject::Equivocation) > 0,
        "the conflicting pre-prepare"
    );
    let cluster = run_with_traitor(ReplicaId(1), Behavior::DoubleVote);
    assert!(honest_rejections(&cluster, ReplicaId(1), Reject::Equivocation) > 0, "the second vote");
}

#[test]
fn honest_replicas_refuse_a_flood_and_keep_buffers_bounded() {
    let cluster = run_with_traitor(ReplicaId(3), Behavior::Flood);
    let refused = honest_rejections(&cluster, ReplicaId(3), Reject::TooFrequent)
        + honest_rejections(&cluster, ReplicaId(3), Reject::BufferFull)
        + honest_rejections(&cluster, ReplicaId(3), Reject::OutsideWatermarks);
    assert!(refused > 0, "junk is refused");
    for replica in cluster.replicas().filter(|r| r.id() != ReplicaId(3)) {
        let (usage, limits) = (replica.buffer_usage(), replica.buffer_limits());
        assert!(usage.future_messages <= limits.future_messages, "{}: {usage:?}", replica.id());
        assert!(usage.checkpoint_messages <= limits.checkpoint_messages, "{}: {usage:?}", replica.id());
    }
}

/// With f+1 colluders the fork attack succeeds and the agreement checker
/// catches it; with f the same attack fails and every checker passes.
#[test]
fn f_plus_one_colluders_fork_the_honest_replicas_for_f_one_and_two() {
    for f in [1, 2] {
        let demo = demonstrate::<RecordingApp>(f);
        assert!(demo.safe.report.passed(), "f = {f}, {} colluders:\n{}", f, demo.safe.report);
        assert_eq!(demo.safe.report.completed, demo.safe.report.issued);
        let fork = &demo.fork.report;
        assert_eq!(
            fork.conflicting_seq,
            Some(1),
            "f = {f}, {} colluders fork at the first slot:\n{fork}",
            f + 1
        );
        let agreement = fork.verdicts.iter().find(|v| v.name == "agreement").expect("agreement checker ran");
        assert!(!agreement.passed(), "the agreement checker reports the fork");
        let digests: BTreeSet<_> = fork.executions.iter().map(|e| e.digest).collect();
        let requests: BTreeSet<_> = fork.executions.iter().map(|e| e.requests.clone()).collect();
        assert_eq!(digests.len(), 2, "two different batches executed at one sequence number");
        assert_eq!(requests.len(), 2, "with different requests in them");
        assert!(demo.as_predicted());
    }
}

#[test]
fn the_fork_needs_the_extra_traitor_not_luck() {
    let with_f = fork_attack::<RecordingApp>(1, 1);
    let with_f_plus_one = fork_attack::<RecordingApp>(1, 2);
    assert!(with_f.agreement_held());
    assert!(!with_f_plus_one.agreement_held());
}
