//! Real replicas on a real network stack: four `pbft replica` processes,
//! each on a host (network namespace) of its own, clients on a fifth, and
//! faults made by the kernel (delay, loss, cuts) or by signals (pauses).
//! Every scenario records what the clients saw and checks the history is
//! linearizable, then checks the property the scenario is about.
//!
//! They need root, `ip` and `iptables`; without them each reports itself
//! `SKIPPED <name>: <why>` on standard error, and fails instead when
//! `PBFT_REQUIRE_TESTNET` is set (`.ci/run` sets it).
//!
//! The holds (a partition kept for 5 s, a pause of 3 s) are the fault
//! schedule, not waits for something to happen: every check of an outcome
//! polls for it with a bound.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use pbft_app::history::{check, Operation, Outcome, Verdict};
use pbft_app::node::cluster_status;
use pbft_core::ClientId;
use pbft_net::NodeStatus;
use pbft_testnet::thread::on_host;
use pbft_testnet::workload::{Mix, Workload};
use pbft_testnet::{Link, NetCluster, NetError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The view-change timeout every scenario's cluster runs with.
const VIEW_CHANGE_TIMEOUT_MS: u64 = 1000;

/// One scenario at a time: two clusters on the two cores of CI slow each
/// other's view changes and catch-up past the bounds the scenarios state.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A 4-replica cluster on the test network, started and with every link up,
/// and the right to run alone; `None` (after saying so) where namespaces
/// are not available.
fn cluster(name: &str) -> Option<(MutexGuard<'static, ()>, NetCluster)> {
    let alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let protocol = format!("view_change_timeout_ms = {VIEW_CHANGE_TIMEOUT_MS}");
    let mut cluster = match NetCluster::new(4, &protocol) {
        Ok(cluster) => cluster,
        Err(NetError::Unsupported(why)) => {
            pbft_testnet::net::skip_unless_required(name, &why);
            return None;
        }
        Err(error) => panic!("{name}: building the test network: {error:#}"),
    };
    cluster.start_all().unwrap();
    wait_for(&cluster, Duration::from_secs(20), "every replica up and linked to its peers", |s| {
        s.iter().all(|s| s.as_ref().is_some_and(|s| s.net.links_up >= 3))
    });
    Some((alone, cluster))
}

/// Every replica's status, asked from the clients' host.
fn statuses(cluster: &NetCluster) -> Vec<Option<NodeStatus>> {
    let config = cluster.config().unwrap();
    on_host(&cluster.net, cluster.client_host(), "status", move || async move {
        cluster_status(&config, ClientId(15), Duration::from_millis(500)).await
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap()
    .unwrap()
}

/// Polls the statuses until `done` holds of them; fails after `limit`.
fn wait_for(
    cluster: &NetCluster,
    limit: Duration,
    what: &str,
    done: impl Fn(&[Option<NodeStatus>]) -> bool,
) -> Vec<Option<NodeStatus>> {
    let start = Instant::now();
    loop {
        let statuses = statuses(cluster);
        if done(&statuses) {
            return statuses;
        }
        assert!(start.elapsed() < limit, "after {limit:?}, still not {what}: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The highest sequence number any of the replicas `which` has executed.
fn highest_executed(statuses: &[Option<NodeStatus>], which: &[usize]) -> u64 {
    which.iter().filter_map(|&i| statuses[i].as_ref()).map(|s| s.last_executed).max().unwrap_or(0)
}

/// Replica `replica` has executed at least up to `target` (what the others
/// had executed when it was let back in): it caught up, whatever the others
/// did meanwhile.
fn reached(statuses: &[Option<NodeStatus>], replica: usize, target: u64) -> bool {
    statuses[replica].as_ref().is_some_and(|s| s.last_executed >= target)
}

/// The history is linearizable, or the test fails with a minimal counterexample.
/// The whole history is written to a temp file whose path the failure names.
fn assert_linearizable(name: &str, operations: &[Operation]) {
    let verdict = check(operations, Duration::from_secs(30));
    if matches!(verdict, Verdict::Linearizable) {
        return;
    }
    let path = std::env::temp_dir().join(format!("pbft-history-{name}-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string_pretty(operations).unwrap()).unwrap();
    match verdict {
        Verdict::NotLinearizable(counterexample) => {
            panic!(
                "{name}: the clients' history (all of it in {}) is not linearizable:\n{counterexample}",
                path.display()
            )
        }
        _ => {
            panic!("{name}: linearizability not decided ({verdict:?}); the history is in {}", path.display())
        }
    }
}

/// The writes that completed (with an answer) within `window`.
fn writes_completed(operations: &[Operation], window: std::ops::Range<Duration>) -> Vec<&Operation> {
    operations
        .iter()
        .filter(|op| !op.call.is_read() && matches!(op.outcome, Outcome::Ok(_)))
        .filter(|op| op.completed.is_some_and(|at| window.contains(&at)))
        .collect()
}

/// The writes invoked at or after `from` that completed (with an answer) before `until`.
fn writes_invoked_in(operations: &[Operation], from: Duration, until: Duration) -> Vec<&Operation> {
    writes_completed(operations, from..until).into_iter().filter(|op| op.invoked >= from).collect()
}

/// The reads answered within `window`.
fn reads_answered(operations: &[Operation], window: std::ops::Range<Duration>) -> usize {
    operations
        .iter()
        .filter(|op| op.call.is_read() && op.completed.is_some_and(|at| window.contains(&at)))
        .count()
}

/// How long after `from` the first write completed, if one did.
fn first_write_after(operations: &[Operation], from: Duration) -> Option<Duration> {
    writes_completed(operations, from..Duration::MAX)
        .iter()
        .filter_map(|op| op.completed)
        .min()
        .map(|at| at - from)
}

/// The `q` quantile of the answered calls' latencies.
fn latency(operations: &[Operation], q: f64) -> Duration {
    let mut latencies: Vec<Duration> =
        operations.iter().filter_map(|op| op.completed.map(|at| at - op.invoked)).collect();
    latencies.sort();
    latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default()
}

/// The primary every answering replica names in its status, if one view is agreed.
fn agreed_view(statuses: &[Option<NodeStatus>]) -> Option<u64> {
    let views: Vec<u64> = statuses.iter().flatten().filter(|s| s.normal).map(|s| s.view).collect();
    (views.len() == statuses.len() && views.windows(2).all(|w| w[0] == w[1])).then(|| views[0])
}

/// The p50 of the answered writes' latencies.
fn write_latency_p50(operations: &[Operation]) -> Duration {
    let writes: Vec<Operation> = operations.iter().filter(|op| !op.call.is_read()).cloned().collect();
    latency(&writes, 0.5)
}

/// Scenario 1, a WAN: 25 ms ± 5 ms one way and 1 % loss on every link.
/// Operations complete, the history is linearizable, latency is reported.
#[test]
fn wan_delay_and_loss() {
    let Some((_alone, mut cluster)) = cluster("wan_delay_and_loss") else { return };
    cluster.net.set_all_links(Link::wan(Duration::from_millis(25), Duration::from_millis(5), 1.0)).unwrap();
    let workload = Workload::start(&cluster, Mix::default(), 1).unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let operations = workload.stop().unwrap().operations();
    cluster.net.check_netems().unwrap();
    let answered = operations.iter().filter(|op| op.completed.is_some()).count();
    eprintln!(
        "wan_delay_and_loss: {answered} of {} calls answered in 10 s; latency p50 {:?}, p99 {:?}; writes p50 {:?}",
        operations.len(),
        latency(&operations, 0.5),
        latency(&operations, 0.99),
        write_latency_p50(&operations),
    );
    assert!(answered >= 40, "only {answered} calls answered in 10 s over the WAN links");
    // A write crosses five one-way delays of 20-30 ms: the request, the
    // PRE-PREPARE, the PREPAREs, the COMMITs and the reply.
    assert!(write_latency_p50(&operations) >= Duration::from_millis(100), "the links did not delay");
    assert_linearizable("wan_delay_and_loss", &operations);
}

/// Scenario 2: the primary cut off from the other replicas for 5 s while
/// clients reach everyone. The backups change view and commit writes
/// invoked after the cut (which the old view cannot); after the heal the old
/// primary catches up.
#[test]
fn primary_partitioned_from_backups() {
    let Some((_alone, mut cluster)) = cluster("primary_partitioned_from_backups") else { return };
    let workload = Workload::start(&cluster, Mix::default(), 2).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    cluster.net.partition(&[&[0], &[1, 2, 3]]).unwrap();
    let cut = workload.history().elapsed();
    std::thread::sleep(Duration::from_secs(5));
    let healed = workload.history().elapsed();
    cluster.net.heal().unwrap();
    let target = highest_executed(&statuses(&cluster), &[1, 2, 3]);
    let start = Instant::now();
    let after =
        wait_for(&cluster, Duration::from_secs(20), "the old primary caught up", |s| reached(s, 0, target));
    let caught_up = start.elapsed();
    let operations = workload.stop().unwrap().operations();
    let new_view = writes_invoked_in(&operations, cut, healed);
    let first = new_view.iter().filter_map(|op| op.completed).min().map(|at| at - cut);
    eprintln!(
        "primary_partitioned_from_backups: the first write invoked after the cut completed {first:?} after it; \
         {} such writes before the heal; view {:?} after; the old primary caught up {caught_up:?} after the heal",
        new_view.len(),
        agreed_view(&after)
    );
    assert!(after.iter().flatten().all(|s| s.view > 0), "no view change: {after:#?}");
    assert!(!new_view.is_empty(), "no write invoked during the cut completed before the heal");
    assert_linearizable("primary_partitioned_from_backups", &operations);
}

/// Scenario 3: one replica (not the primary) cut off from the others, while
/// clients reach it. The majority proceeds and the cut-off replica falls
/// behind; reads keep being answered and never make a client accept what
/// the majority did not decide (the history stays linearizable, reads
/// included); after the heal it catches up.
#[test]
fn minority_partitioned() {
    let Some((_alone, mut cluster)) = cluster("minority_partitioned") else { return };
    let workload = Workload::start(&cluster, Mix::default(), 3).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    cluster.net.partition(&[&[3], &[0, 1, 2]]).unwrap();
    let cut = workload.history().elapsed();
    std::thread::sleep(Duration::from_secs(5));
    let during = statuses(&cluster);
    let healed = workload.history().elapsed();
    cluster.net.heal().unwrap();
    let target = highest_executed(&during, &[0, 1, 2]);
    let start = Instant::now();
    wait_for(&cluster, Duration::from_secs(30), "the cut-off replica caught up", |s| reached(s, 3, target));
    let catch_up = start.elapsed();
    let operations = workload.stop().unwrap().operations();
    let majority_writes = writes_invoked_in(&operations, cut, healed).len();
    let reads = reads_answered(&operations, cut..healed);
    let minority = during[3].as_ref().map(|s| s.last_executed);
    eprintln!(
        "minority_partitioned: {majority_writes} writes and {reads} reads answered during the cut; replica 3 at \
         {minority:?} against {target} then; caught up {catch_up:?} after the heal",
    );
    assert!(majority_writes > 0, "the majority made no progress");
    assert!(minority.is_some_and(|seq| seq < target), "the cut-off replica kept up: the cut did not cut");
    assert!(reads > 0, "no read was answered during the cut: the stale-read check had nothing to check");
    assert_linearizable("minority_partitioned", &operations);
}

/// Scenario 4: the replicas split 2 | 2 for 4 s. No side has a quorum: no
/// write invoked during the split completes before the heal, and progress
/// resumes within a bound after it.
#[test]
fn even_split_stops_writes_until_healed() {
    let Some((_alone, mut cluster)) = cluster("even_split_stops_writes_until_healed") else { return };
    // Clients give up on a call after 1 s, well inside the 4 s split, so
    // writes are invoked during it (a client waiting out a longer timeout
    // on a write from before the split would invoke none).
    let mix = Mix { timeout: Duration::from_secs(1), ..Mix::default() };
    let workload = Workload::start(&cluster, mix, 4).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    cluster.net.partition(&[&[0, 1], &[2, 3]]).unwrap();
    let cut = workload.history().elapsed();
    std::thread::sleep(Duration::from_secs(4));
    let healed = workload.history().elapsed();
    cluster.net.heal().unwrap();
    let start = Instant::now();
    let operations = loop {
        let operations = workload.history().operations();
        if first_write_after(&operations, healed).is_some() {
            break workload.stop().unwrap().operations();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no write completed within 30 s of the heal");
        std::thread::sleep(Duration::from_millis(100));
    };
    let resumed = first_write_after(&operations, healed);
    let attempted =
        operations.iter().filter(|op| !op.call.is_read() && (cut..healed).contains(&op.invoked)).count();
    let told_success = writes_invoked_in(&operations, cut, healed);
    eprintln!(
        "even_split_stops_writes_until_healed: {attempted} writes invoked during the split; \
         the first write completed {resumed:?} after the heal"
    );
    assert!(attempted > 0, "no write was invoked during the split: nothing was checked");
    assert!(told_success.is_empty(), "writes invoked during the 2 | 2 split completed: {told_success:#?}");
    assert_linearizable("even_split_stops_writes_until_healed", &operations);
}

/// Scenario 5: the primary paused (SIGSTOP) for 3 s, then resumed. The
/// backups move to view 1 and commit writes invoked during the pause; the
/// old primary rejoins that view without another view change, and
/// operations keep completing.
#[test]
fn paused_primary_rejoins_without_a_view_change_storm() {
    let Some((_alone, cluster)) = cluster("paused_primary_rejoins_without_a_view_change_storm") else {
        return;
    };
    let workload = Workload::start(&cluster, Mix::default(), 5).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    cluster.pause(0).unwrap();
    let paused = workload.history().elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let resumed = workload.history().elapsed();
    cluster.resume(0).unwrap();
    let target = highest_executed(&statuses(&cluster), &[1, 2, 3]);
    let start = Instant::now();
    let settled =
        wait_for(&cluster, Duration::from_secs(20), "the old primary back in the agreed view", |s| {
            agreed_view(s).is_some() && reached(s, 0, target)
        });
    let view = agreed_view(&settled);
    let rejoined = start.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let later = statuses(&cluster);
    let operations = workload.stop().unwrap().operations();
    let during = writes_invoked_in(&operations, paused, resumed);
    eprintln!(
        "paused_primary_rejoins_without_a_view_change_storm: view {view:?}, old primary rejoined {rejoined:?} \
         after its resume; the first write invoked during the pause completed {:?} after the pause",
        during.iter().filter_map(|op| op.completed).min().map(|at| at - paused)
    );
    assert_eq!(view, Some(1), "the pause should cost exactly one view change: {settled:#?}");
    assert_eq!(
        agreed_view(&later),
        view,
        "the view kept changing after the old primary rejoined: {later:#?}"
    );
    assert!(!during.is_empty(), "no write invoked during the pause completed before the resume");
    assert!(
        !writes_completed(&operations, resumed + rejoined..Duration::MAX).is_empty(),
        "no write completed after the old primary rejoined"
    );
    assert_linearizable("paused_primary_rejoins_without_a_view_change_storm", &operations);
}

/// Scenario 6: 5 % loss everywhere, and the link between the primary and
/// replica 1 going down and up every 500 ms for 10 s. Operations keep
/// completing in every 2-second window, and the history is linearizable.
#[test]
fn flapping_link_and_loss() {
    let Some((_alone, mut cluster)) = cluster("flapping_link_and_loss") else { return };
    cluster.net.set_all_links(Link::wan(Duration::ZERO, Duration::ZERO, 5.0)).unwrap();
    let workload = Workload::start(&cluster, Mix::default(), 6).unwrap();
    let start = workload.history().elapsed();
    for flip in 0..20 {
        if flip % 2 == 0 {
            cluster.net.partition(&[&[0], &[1]]).unwrap();
        } else {
            cluster.net.heal().unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    cluster.net.heal().unwrap();
    let operations = workload.stop().unwrap().operations();
    cluster.net.check_netems().unwrap();
    let windows: Vec<usize> = (0..5)
        .map(|w| {
            let from = start + Duration::from_secs(2 * w);
            writes_completed(&operations, from..from + Duration::from_secs(2)).len()
        })
        .collect();
    eprintln!("flapping_link_and_loss: writes completed per 2 s window: {windows:?}");
    assert!(windows.iter().all(|&count| count > 0), "a 2 s window without a completed write: {windows:?}");
    assert_linearizable("flapping_link_and_loss", &operations);
}

/// Kill -9 on real processes, with their data directories kept: one backup
/// killed and restarted catches up, and then every replica killed at once
/// and restarted loses nothing a client was told was done (the reads after
/// the restart keep the history linearizable).
#[test]
fn killed_replicas_restart_from_their_disks() {
    let Some((_alone, mut cluster)) = cluster("killed_replicas_restart_from_their_disks") else { return };
    cluster.net.set_all_links(Link::wan(Duration::from_millis(5), Duration::from_millis(2), 0.0)).unwrap();
    let workload = Workload::start(&cluster, Mix::default(), 7).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill(2).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    cluster.start(2).unwrap();
    let target = highest_executed(&statuses(&cluster), &[0, 1, 3]);
    let start = Instant::now();
    wait_for(&cluster, Duration::from_secs(30), "the restarted backup caught up", |s| reached(s, 2, target));
    let backup = start.elapsed();
    let crash = workload.history().elapsed();
    for i in 0..4 {
        cluster.kill(i).unwrap();
    }
    for i in 0..4 {
        cluster.start(i).unwrap();
    }
    let restarted = workload.history().elapsed();
    let start = Instant::now();
    let operations = loop {
        let operations = workload.history().operations();
        if writes_completed(&operations, restarted..Duration::MAX).len() >= 10 {
            break workload.stop().unwrap().operations();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "fewer than 10 writes within 30 s of the restart");
        std::thread::sleep(Duration::from_millis(100));
    };
    cluster.net.check_netems().unwrap();
    eprintln!(
        "killed_replicas_restart_from_their_disks: the killed backup caught up {backup:?} after its restart; \
         {} writes acknowledged before the whole cluster was killed, first write {:?} after its restart",
        writes_completed(&operations, Duration::ZERO..crash).len(),
        first_write_after(&operations, restarted)
    );
    // Clients hold QUIC connections to the killed processes; only a stateless
    // reset from the new ones closes them before the 10 s idle timeout
    // (pbft_net::identity::endpoint_config), so a bound under 10 s fails
    // when restarted replicas cannot reset them.
    let resumed = first_write_after(&operations, restarted).expect("writes after the restart");
    assert!(resumed < Duration::from_secs(6), "clients waited {resumed:?} for the restarted cluster");
    assert_linearizable("killed_replicas_restart_from_their_disks", &operations);
}
