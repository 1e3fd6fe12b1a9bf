//! Issue 20 (durability) on the simulator: replicas restart from what their
//! disks synced, and nothing a client saw complete is lost, even when every
//! replica crashes at once.

use fault_injector::{SimCluster, SimConfig};
use pbft_app::apps::kv::{KvOp, KvQuery, KvResult, KvStore};
use pbft_core::typed::{decode_output, encode_request};
use pbft_core::{ClientId, ProtocolConfig, ReplicaId, Time};

fn protocol() -> ProtocolConfig {
    ProtocolConfig { checkpoint_interval: 4, watermark_window: 16, ..ProtocolConfig::default() }
}

fn put(key: &str, value: &str) -> Vec<u8> {
    encode_request(&KvOp::Put { key: key.into(), value: value.into() }).unwrap()
}

/// Issue 20, test 3: every replica crashes at once at a point of the run
/// (mid-batch and mid-checkpoint included: the crash times sweep every
/// millisecond of a busy stretch) and restarts from its disk: every put a
/// client saw complete reads back, and the cluster serves new requests.
#[test]
fn a_whole_cluster_crash_at_any_moment_keeps_every_completed_operation() {
    for crash_at in (40..400).step_by(9) {
        let config = SimConfig { protocol: protocol(), ..SimConfig::new(4, 3) };
        let mut cluster = SimCluster::new(config, |_| KvStore::default());
        for c in 0..3u64 {
            for i in 0..20 {
                cluster.submit(ClientId(c), put(&format!("c{c}/k{i}"), &format!("v{i}")));
            }
        }
        cluster.run_until(Time(crash_at), |_| false);
        let completed: Vec<_> = cluster.all_completions().cloned().collect();
        for id in 0..4 {
            cluster.crash(ReplicaId(id));
        }
        for id in 0..4 {
            cluster.restart_from_disk(ReplicaId(id), KvStore::default());
        }
        assert!(
            cluster.run_until_complete(Time(crash_at + 60_000)),
            "crash at {crash_at} ms: the rest completes"
        );
        for completion in &completed {
            let Ok(KvOp::Put { key, value }) = pbft_core::codec::decode::<KvOp>(&completion.op) else {
                panic!("only puts were submitted")
            };
            let query = encode_request(&KvQuery::Get { key: key.clone() }).unwrap();
            cluster.submit_query(completion.client, query);
            assert!(cluster.run_until_complete(Time(cluster.now().as_millis() + 30_000)));
            let answer = cluster.completions(completion.client).last().unwrap();
            assert_eq!(
                decode_output::<KvResult>(&answer.result).unwrap(),
                KvResult::Value(Some(value)),
                "crash at {crash_at} ms: {key} had completed before it"
            );
        }
    }
}

/// Disk use is bounded by the window, not by uptime: after hundreds of
/// batches each replica's disk holds only what lies after its newest
/// snapshot.
#[test]
fn durable_records_stay_bounded_by_the_window() {
    let config = SimConfig { protocol: protocol(), ..SimConfig::new(4, 2) };
    let mut cluster = SimCluster::new(config, |_| KvStore::default());
    for i in 0..400 {
        cluster.submit(ClientId(i % 2), put(&format!("k{}", i % 10), &format!("v{i}")));
    }
    assert!(cluster.run_until_complete(Time(120_000)));
    for id in 0..4 {
        let records = cluster.durable_records(ReplicaId(id));
        // A snapshot, then per sequence number at most a prepared certificate
        // and an executed batch, over the window, plus a view record.
        let bound = 1 + 2 * protocol().watermark_window as usize + 1;
        assert!(records <= bound, "replica {id} holds {records} records, more than {bound}");
        assert!(cluster.replica(ReplicaId(id)).last_executed() > 100);
    }
}

/// Issue 20, test 6: the memory-loss fork. n = 4; replica 3 is cut off
/// while request A commits at seq 1 on replicas 0-2; replicas 0 and 1
/// restart; replica 3 reconnects (to 0 and 1: the link between 2 and 3
/// stays down); request B goes to replica 0. Returns the
/// digests replicas 2 and 3 executed at seq 1, and whether both requests
/// completed.
fn memory_loss_scenario(disks_lost: u32) -> (Option<pbft_core::Digest>, Option<pbft_core::Digest>, bool) {
    use fault_injector::NodeId;
    let config = SimConfig { protocol: protocol(), ..SimConfig::new(4, 2) };
    let mut cluster = SimCluster::new(config, |_| KvStore::default());
    let cut_off = NodeId::Replica(ReplicaId(3));
    cluster.set_filter(move |e| e.to != cut_off && e.from != cut_off);
    cluster.submit(ClientId(0), put("a", "A"));
    let committed = |c: &SimCluster<KvStore>| (0..3).all(|id| !c.executed(ReplicaId(id)).is_empty());
    assert!(cluster.run_until(Time(10_000), committed), "A commits on replicas 0-2");
    for id in [0, 1] {
        cluster.crash(ReplicaId(id));
        if id < disks_lost {
            cluster.restart_empty(ReplicaId(id), KvStore::default());
        } else {
            cluster.restart_from_disk(ReplicaId(id), KvStore::default());
        }
    }
    // Replica 3 reconnects to 0 and 1 only, so it cannot learn A from 2.
    let (two, three) = (NodeId::Replica(ReplicaId(2)), NodeId::Replica(ReplicaId(3)));
    cluster.set_filter(move |e| (e.from, e.to) != (two, three) && (e.from, e.to) != (three, two));
    cluster.submit(ClientId(1), put("b", "B"));
    let completed = cluster.run_until_complete(Time(60_000));
    // Give replica 3 time to execute what it will.
    let settle = cluster.now().as_millis() + 5_000;
    cluster.run_until(Time(settle), |_| false);
    let at_seq_1 =
        |id: u32| cluster.executed(ReplicaId(id)).iter().find(|(seq, _)| *seq == 1).map(|(_, d)| *d);
    (at_seq_1(2), at_seq_1(3), completed)
}

/// With their disks, the restarted replicas never vote again in view 0: no
/// fork, and every request completes.
#[test]
fn the_memory_loss_fork_does_not_happen_with_disks() {
    let (two, three, completed) = memory_loss_scenario(0);
    assert!(completed, "A and B complete");
    assert!(two.is_some() && two == three, "replicas 2 and 3 executed the same batch at seq 1");
}

/// With the primary's disk lost, it recovers from its peers in the
/// recovering mode and signs nothing in view 0 again: no fork, and every
/// request completes. (With both disks lost there are two faults, more than
/// f = 1 tolerates; nothing is promised then.)
#[test]
fn the_memory_loss_fork_does_not_happen_with_one_disk_lost() {
    let (two, three, completed) = memory_loss_scenario(1);
    assert!(completed, "A and B complete");
    assert!(two.is_some() && two == three, "replicas 2 and 3 executed the same batch at seq 1");
}

/// Issue 20, test 4: damaged disks. With n = 7 (f = 2), a crashed replica
/// restarts with a flipped bit in a synced record, its log file lost or its
/// whole disk lost, on up to f replicas at a time, together with f − 1
/// traitors of mixed behaviours (so damaged disks plus traitors stay within
/// f) or with none (then two disks at once): every checker passes on every
/// seed, including that each damaged replica ends out of its recovering mode
/// and caught up (`caught-up`). The sweep must hit every kind of fault, two
/// at once, and faults beside a traitor, or it proves nothing.
#[test]
fn damaged_disks_on_up_to_f_replicas_leave_every_checker_passing() {
    use fault_injector::sim::{simulate, SimOptions, TraitorSelection};
    use fault_injector::DiskFault;
    let seeds: u64 = std::env::var("PBFT_TRAITOR_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let (mut failures, mut kinds, mut two_at_once, mut beside_traitor) = (Vec::new(), Vec::new(), 0, 0);
    for traitors in [TraitorSelection::None, TraitorSelection::MixedBelowBound] {
        for seed in 0..seeds {
            let options =
                SimOptions { traitors: traitors.clone(), replicas: Some(7), ..SimOptions::default() };
            let (report, _) = simulate::<pbft_tests::RecordingApp>(seed, &options);
            assert_eq!(report.traitors.len(), if traitors == TraitorSelection::None { 0 } else { 1 });
            kinds.extend(report.disk_faults.iter().map(|(_, _, fault)| *fault));
            let at = |i: usize| report.disk_faults.get(i).map(|(at, _, _)| *at);
            two_at_once += usize::from((1..report.disk_faults.len()).any(|i| at(i) == at(i - 1)));
            beside_traitor += usize::from(!report.traitors.is_empty() && !report.disk_faults.is_empty());
            if !report.passed() {
                failures.push(report.to_string());
            }
        }
    }
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} runs with damaged disks failed", failures.len());
    for fault in DiskFault::ALL {
        assert!(kinds.contains(&fault), "no run had a {fault} disk");
    }
    assert!(two_at_once >= 3, "only {two_at_once} runs damaged two disks at once");
    assert!(beside_traitor >= 10, "only {beside_traitor} runs damaged a disk beside a traitor");
}

/// A new cluster starts as the node starts it: every replica from an empty
/// data directory, so in the recovering mode. It begins serving with f
/// replicas silent from the very start (replica 3 never comes up), and
/// after a power cut of the others it restarts from their disks with every
/// completed put, and no replica signs anything twice.
#[test]
fn a_new_cluster_of_empty_data_directories_starts_with_f_replicas_silent() {
    let config = SimConfig { protocol: protocol(), ..SimConfig::new(4, 1) };
    let mut cluster = SimCluster::new(config, |_| KvStore::default());
    for id in 0..4 {
        cluster.restart_empty(ReplicaId(id), KvStore::default());
    }
    cluster.crash(ReplicaId(3));
    for i in 0..6 {
        cluster.submit(ClientId(0), put(&format!("k{i}"), "v"));
    }
    assert!(cluster.run_until_complete(Time(30_000)), "three replicas start the cluster");
    for id in 0..3 {
        cluster.crash(ReplicaId(id));
    }
    for id in 0..3 {
        cluster.restart_from_disk(ReplicaId(id), KvStore::default());
    }
    let get = encode_request(&KvQuery::Get { key: "k5".into() }).unwrap();
    cluster.submit_query(ClientId(0), get);
    assert!(cluster.run_until_complete(Time(cluster.now().as_millis() + 30_000)));
    let answer = cluster.completions(ClientId(0)).last().unwrap();
    assert_eq!(decode_output::<KvResult>(&answer.result).unwrap(), KvResult::Value(Some("v".into())));
    let mut one_vote = fault_injector::checkers::OneVote::default();
    for (at, replica, vote) in cluster.votes() {
        one_vote.on_sent(*at, *replica, *vote);
    }
    assert!(one_vote.verdict().passed(), "{:?}", one_vote.verdict());
}
