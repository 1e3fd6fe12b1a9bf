//! View changes on the in-memory cluster (OSDI'99 §4.4).

use fault_injector::{NodeId, Payload};
use pbft_core::{ClientId, Event, Message, ProtocolConfig, ReplicaId, Time};
use pbft_tests::{assert_all_completed, assert_same_execution, op, recording_cluster, submit_all};
use std::cell::RefCell;
use std::rc::Rc;

fn protocol() -> ProtocolConfig {
    ProtocolConfig {
        max_batch_size: 4,
        batch_delay_ms: 1,
        checkpoint_interval: 8,
        watermark_window: 32,
        view_change_timeout_ms: 500,
        ..ProtocolConfig::default()
    }
}

fn view_changes_started(
    cluster: &fault_injector::SimCluster<pbft_tests::RecordingApp>,
    id: ReplicaId,
) -> Vec<(Time, u64)> {
    cluster
        .events()
        .iter()
        .filter(|(_, r, _)| *r == id)
        .filter_map(|(at, _, e)| match e {
            Event::ViewChangeStarted { view } => Some((*at, *view)),
            _ => None,
        })
        .collect()
}

/// Issue test 6: the primary is silent from the start; the backups change
/// view, every request completes, and none executes twice.
#[test]
fn silent_primary_is_replaced_and_every_request_completes_once() {
    let mut cluster = recording_cluster(4, 2, protocol());
    cluster.crash(ReplicaId(0));
    submit_all(&mut cluster, 2, 20);
    assert!(cluster.run_until_complete(Time(120_000)), "requests did not complete after the view change");
    for id in 1..4 {
        assert!(cluster.replica(ReplicaId(id)).view() >= 1, "replica {id} stayed in view 0");
    }
    assert_same_execution(&cluster, &[1, 2, 3]);
    assert_eq!(cluster.replica(ReplicaId(1)).app().history().len(), 40);
    assert_all_completed(&cluster, ReplicaId(1), 2, 20);
}

/// Issue test 7: a batch prepared at some replicas but committed at none
/// before the view change commits at the same sequence number in the new view.
#[test]
fn prepared_but_uncommitted_batch_keeps_its_sequence_number_across_view_change() {
    let mut cluster = recording_cluster(4, 1, protocol());
    // In view 0 no COMMIT is delivered, and replica 3 receives no PREPARE, so
    // replicas 0, 1 and 2 prepare sequence number 1 and replica 3 does not.
    let proposed = Rc::new(RefCell::new(None));
    let seen = proposed.clone();
    cluster.set_filter(move |e| match (&e.payload, e.to) {
        (Payload::Message(Message::PrePrepare(pp)), _) if pp.payload().view == 0 => {
            *seen.borrow_mut() = Some(pp.payload().digest);
            true
        }
        (Payload::Message(Message::Commit(c)), _) => c.payload().view != 0,
        (Payload::Message(Message::Prepare(p)), NodeId::Replica(ReplicaId(3))) => p.payload().view != 0,
        _ => true,
    });
    cluster.submit(ClientId(0), op(0, 0));
    // Let the pre-prepare and prepares flow, then silence the primary.
    cluster.run_until(Time(20), |_| false);
    assert!(
        !cluster.events().iter().any(|(_, _, e)| matches!(e, Event::Executed { .. })),
        "something committed in view 0 despite the filter"
    );
    let original = proposed.borrow().expect("the primary proposed in view 0");
    cluster.crash(ReplicaId(0));
    assert!(cluster.run_until_complete(Time(60_000)), "the request did not complete in the new view");

    // Every live replica executed exactly one batch: the original one, at
    // sequence number 1, committed in view 1.
    let mut executed: Vec<_> = cluster
        .events()
        .iter()
        .filter_map(|(_, r, e)| match e {
            Event::Executed { view, seq, digest, requests } => {
                Some((*r, *view, *seq, *digest, requests.len()))
            }
            _ => None,
        })
        .collect();
    executed.sort();
    let expected: Vec<_> = (1..4).map(|r| (ReplicaId(r), 1, 1, original, 1)).collect();
    assert_eq!(executed, expected);
    assert_same_execution(&cluster, &[1, 2, 3]);
    assert_eq!(cluster.replica(ReplicaId(3)).app().history(), &[op(0, 0)]);
}

/// Issue test 8: the primaries of views 1 and 2 are silent. The view-change
/// timeout doubles for each failed view and view 3 completes the requests.
#[test]
fn consecutive_silent_primaries_double_the_timeout_until_view_three() {
    let timeout = protocol().view_change_timeout_ms;
    let mut cluster = recording_cluster(7, 1, protocol());
    // f = 2: replicas 1 and 2 (the next two primaries) are crashed, and no
    // request reaches the current primary 0 until t = 5s, so the backups give
    // up on view 0 while replica 0 still takes part in the view changes.
    cluster.crash(ReplicaId(1));
    cluster.crash(ReplicaId(2));
    cluster.set_filter(|e| {
        let request_to_zero = matches!(e.payload, Payload::Message(Message::Request(_)))
            && e.to == NodeId::Replica(ReplicaId(0));
        !(request_to_zero && e.sent_at < Time(5_000))
    });
    submit_all(&mut cluster, 1, 10);
    assert!(cluster.run_until_complete(Time(120_000)), "requests did not complete");

    for id in [0, 3, 4, 5, 6] {
        assert_eq!(cluster.replica(ReplicaId(id)).view(), 3, "replica {id} is not in view 3");
    }
    // Replica 3 timed out in views 0, 1 and 2; each wait for a NEW-VIEW was
    // twice the last. The timer starts once 2f+1 replicas ask for the view,
    // which takes at most a few message delays after this replica asks.
    let started = view_changes_started(&cluster, ReplicaId(3));
    let views: Vec<u64> = started.iter().map(|(_, v)| *v).collect();
    assert_eq!(views, vec![1, 2, 3]);
    let (t1, t2, t3) = (started[0].0.as_millis(), started[1].0.as_millis(), started[2].0.as_millis());
    let slack = 5;
    assert!((timeout..=timeout + slack).contains(&(t2 - t1)), "view 1 was given {} ms", t2 - t1);
    assert!((2 * timeout..=2 * timeout + slack).contains(&(t3 - t2)), "view 2 was given {} ms", t3 - t2);
    let entered: Vec<_> = cluster
        .events()
        .iter()
        .filter_map(|(_, r, e)| match e {
            Event::NewViewEntered { view, primary } if *r == ReplicaId(3) => Some((*view, *primary)),
            _ => None,
        })
        .collect();
    assert_eq!(entered, vec![(3, ReplicaId(3))]);
    assert_same_execution(&cluster, &[0, 3, 4, 5, 6]);
    assert_all_completed(&cluster, ReplicaId(3), 1, 10);
}
