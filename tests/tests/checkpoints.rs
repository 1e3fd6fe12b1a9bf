//! Checkpoints and garbage collection on the in-memory cluster (OSDI'99 §4.3).

use fault_injector::{NodeId, Payload};
use pbft_core::{ClientId, Event, Message, ProtocolConfig, ReplicaId, Time};
use pbft_tests::{assert_all_completed, assert_same_execution, op, recording_cluster, submit_all};

/// Issue test 5: while 10,000 requests go through, checkpoints become stable
/// with 2f+1 matching CHECKPOINTs and the log never holds more than the
/// watermark window (measured after every event, not just at the end).
#[test]
fn ten_thousand_requests_keep_the_log_within_the_watermark_window() {
    let protocol = ProtocolConfig {
        max_batch_size: 10,
        batch_delay_ms: 1,
        checkpoint_interval: 20,
        watermark_window: 40,
        ..ProtocolConfig::default()
    };
    let window = protocol.watermark_window as usize;
    let mut cluster = recording_cluster(4, 10, protocol);
    submit_all(&mut cluster, 10, 1_000);
    let mut max_slots = 0;
    let mut max_certs = 0;
    let done = cluster.run_until(Time(10_000_000), |c| {
        for replica in c.replicas() {
            let usage = replica.buffer_usage();
            max_slots = max_slots.max(usage.log_slots);
            max_certs = max_certs.max(usage.prepared_certs);
        }
        c.all_completions().count() == 10_000
    });
    assert!(done, "only {} of 10,000 requests completed", cluster.all_completions().count());
    assert!(max_slots <= window, "the log grew to {max_slots} slots, window is {window}");
    assert!(max_certs <= window, "{max_certs} prepared certificates held, window is {window}");
    assert!(max_slots > 0);

    let quorum = cluster.quorum().quorum();
    for replica in cluster.replicas() {
        let stable = replica.stable_checkpoint();
        // 10,000 requests in batches of at most 10: at least 1,000 batches.
        assert!(stable.seq >= 980, "{} only reached checkpoint {}", replica.id(), stable.seq);
        let signers: std::collections::BTreeSet<_> =
            stable.checkpoints.iter().map(|c| c.payload().replica).collect();
        assert!(signers.len() >= quorum, "stable checkpoint proven by {} replicas", signers.len());
        assert!(stable.checkpoints.iter().all(|c| c.payload().state_digest == stable.state_digest));
    }
    assert_same_execution(&cluster, &[0, 1, 2, 3]);
    assert_all_completed(&cluster, ReplicaId(0), 10, 1_000);
}

/// A checkpoint becomes stable at the (2f+1)-th matching CHECKPOINT and not before.
#[test]
fn checkpoint_becomes_stable_at_exactly_two_f_plus_one() {
    let protocol = ProtocolConfig {
        max_batch_size: 1,
        batch_delay_ms: 0,
        checkpoint_interval: 2,
        ..ProtocolConfig::default()
    };
    let mut cluster = recording_cluster(4, 1, protocol);
    // Hold back every CHECKPOINT addressed to replica 0, keeping them to deliver by hand.
    let held = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = held.clone();
    cluster.set_filter(move |e| match (&e.payload, e.to) {
        (Payload::Message(m @ Message::Checkpoint(_)), NodeId::Replica(ReplicaId(0))) => {
            sink.borrow_mut().push(m.clone());
            false
        }
        _ => true,
    });
    cluster.submit(ClientId(0), op(0, 0));
    cluster.submit(ClientId(0), op(0, 1));
    assert!(cluster.run_until_complete(Time(10_000)));
    let probe = held.clone();
    assert!(cluster.run_until(Time(20_000), move |_| probe.borrow().len() == 3));
    assert!(cluster.replicas().skip(1).all(|r| r.low_watermark() == 2));
    assert_eq!(cluster.replica(ReplicaId(0)).last_executed(), 2);
    assert_eq!(cluster.replica(ReplicaId(0)).low_watermark(), 0, "stable with only its own checkpoint");

    let mut held: Vec<Message> = held.borrow().clone();
    held.sort_by_key(|m| m.author());
    assert_eq!(held.len(), 3);
    cluster.inject(ReplicaId(0), held[0].clone());
    assert_eq!(cluster.replica(ReplicaId(0)).low_watermark(), 0, "stable with 2 of the 3 needed");
    cluster.inject(ReplicaId(0), held[1].clone());
    assert_eq!(cluster.replica(ReplicaId(0)).low_watermark(), 2, "not stable with 2f+1 = 3 matching");
    assert!(cluster
        .events()
        .iter()
        .any(|(_, r, e)| *r == ReplicaId(0) && matches!(e, Event::CheckpointStable { seq: 2, .. })));
}
