//! The persistence contract (see `crate::persist`): what a replica asks its
//! host to make durable, always before the sends that depend on it, and what
//! it restarts from.

use super::kit::{drain_all, Kit, Summer};
use crate::persist::Persist;
use crate::{Event, Message, Output, Replica, ReplicaId, Time};

const T: Time = Time(10);

fn feed(replica: &mut Replica<Summer>, message: Message) -> Vec<Output> {
    replica.receive(T, message);
    drain_all(replica)
}

fn records(outputs: &[Output]) -> Vec<Persist> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

/// OSDI'99 §4.2 with the persistence rule: a backup persists its view before
/// its first message of it (the PREPARE) and its prepared certificate before
/// its COMMIT; each comes before the output that depends on it and holds it
/// back. The executed batch, with its commit proof, is written before the
/// reply but does not hold it back (the certificates already make it
/// durable: `crate::persist`, rule 3).
#[test]
fn each_record_comes_before_the_send_that_depends_on_it() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let request = kit.request(1, 5);
    let pp = kit.pre_prepare(0, 1, vec![request]);
    let digest = pp.payload().digest;
    let out = feed(&mut backup, Message::PrePrepare(pp.clone()));
    assert_eq!(
        out,
        vec![
            Output::Persist(Persist::Accepted(pp.clone())),
            Output::Persist(Persist::View(0)),
            Output::Broadcast(Message::Prepare(kit.prepare(1, 0, 1, digest)))
        ]
    );
    assert!(!Persist::Accepted(pp.clone()).holds_back_sends(), "no sync on the PREPARE's path for it");
    let out = feed(&mut backup, Message::Prepare(kit.prepare(2, 0, 1, digest)));
    let [Output::Persist(Persist::Prepared(cert)), Output::Broadcast(Message::Commit(commit))] =
        out.as_slice()
    else {
        panic!("expected the certificate, then the COMMIT: {out:?}")
    };
    assert_eq!((cert.pre_prepare.payload().seq, cert.prepares.len()), (1, 2));
    assert!(Persist::View(0).holds_back_sends() && Persist::Prepared(cert.clone()).holds_back_sends());
    assert_eq!(commit.payload().digest, digest);
    feed(&mut backup, Message::Commit(kit.commit(0, 0, 1, digest)));
    let out = feed(&mut backup, Message::Commit(kit.commit(3, 0, 1, digest)));
    let Output::Persist(record @ Persist::Executed(proof)) = &out[0] else {
        panic!("expected the executed batch: {out:?}")
    };
    assert_eq!((&proof.pre_prepare, proof.commits.len()), (&pp, 3), "the batch with its 2f+1 COMMITs");
    assert!(!record.holds_back_sends(), "the reply does not wait for the executed batch");
    assert!(matches!(out[1], Output::Reply(_)), "{out:?}");
    assert!(matches!(out[2], Output::Event(Event::Executed { seq: 1, .. })), "{out:?}");
}

/// A replica restarted from its records has its executed state and reply
/// cache back, keeps its prepared certificates, and asks for the next view
/// (its VIEW-CHANGE carries the certificate), after persisting that view: it
/// never votes again in view 0.
#[test]
fn a_recovered_replica_has_its_state_and_asks_for_the_next_view() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let mut written = Vec::new();
    let executed = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]);
    let d1 = executed.payload().digest;
    written.extend(records(&feed(&mut backup, Message::PrePrepare(executed))));
    written.extend(records(&feed(&mut backup, Message::Prepare(kit.prepare(2, 0, 1, d1)))));
    written.extend(records(&feed(&mut backup, Message::Commit(kit.commit(0, 0, 1, d1)))));
    written.extend(records(&feed(&mut backup, Message::Commit(kit.commit(2, 0, 1, d1)))));
    let prepared = kit.pre_prepare(0, 2, vec![kit.request(2, 7)]);
    let d2 = prepared.payload().digest;
    written.extend(records(&feed(&mut backup, Message::PrePrepare(prepared))));
    written.extend(records(&feed(&mut backup, Message::Prepare(kit.prepare(2, 0, 2, d2)))));
    assert_eq!(backup.last_executed(), 1);

    let mut recovered = Replica::recover(
        ReplicaId(1),
        Kit::config(),
        kit.book.clone(),
        kit.key(1).clone(),
        Summer::default(),
        written,
        Time(0),
    )
    .unwrap();
    assert_eq!(recovered.last_executed(), 1);
    assert_eq!(recovered.app(), backup.app());
    assert_eq!(recovered.reply_cache(), backup.reply_cache());
    assert_eq!(recovered.view(), 1);
    let out = drain_all(&mut recovered);
    assert_eq!(out[0], Output::Event(Event::Recovered { last_executed: 1, view: 1 }));
    assert_eq!(out[1], Output::Persist(Persist::View(1)));
    let Output::Broadcast(Message::ViewChange(vc)) = &out[2] else {
        panic!("expected a VIEW-CHANGE: {out:?}")
    };
    assert_eq!(vc.payload().new_view, 1);
    let certified: Vec<u64> = vc.payload().prepared.iter().map(|c| c.pre_prepare.payload().seq).collect();
    assert_eq!(certified, vec![1, 2], "both prepared certificates survive the restart");
    // The batch it replayed is one it can still prove committed to a peer
    // that lags (what the status mechanism relays, §5.2).
    let out = feed(&mut recovered, report(&kit, 3, 1, 0));
    let relayed: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { to: ReplicaId(3), message: Message::Committed(c) } => Some(c.payload().seq()),
            _ => None,
        })
        .collect();
    assert_eq!(relayed, vec![1], "{out:?}");
    // No PREPARE for view 0 any more: a new pre-prepare of view 0 is refused.
    let other = kit.pre_prepare(0, 3, vec![kit.request(3, 1)]);
    let out = feed(&mut recovered, Message::PrePrepare(other));
    assert!(!out.iter().any(|o| matches!(o, Output::Broadcast(Message::Prepare(_)))), "{out:?}");
}

/// A replica with no records starts as a new one: no view change.
#[test]
fn no_records_is_a_fresh_replica() {
    let kit = Kit::new(4);
    let mut fresh = Replica::recover(
        ReplicaId(2),
        Kit::config(),
        kit.book.clone(),
        kit.key(2).clone(),
        Summer::default(),
        [],
        T,
    )
    .unwrap();
    assert_eq!((fresh.view(), fresh.status()), (0, crate::Status::Normal));
    assert_eq!(drain_all(&mut fresh), vec![Output::Event(Event::Recovered { last_executed: 0, view: 0 })]);
}

/// A replica restarting from a snapshot record of state at seq 4 whose
/// pages hold the Summer's total 5 and whose encoded reply cache is
/// `replies`, certified by its own digest.
fn recover_from_snapshot(kit: &Kit, replies: Vec<u8>) -> Replica<Summer> {
    use crate::replica::checkpoint_state::CheckpointState;
    let pages = vec![crate::Page::new(5u64.to_le_bytes().to_vec())];
    let state_digest = CheckpointState::of_parts(pages.clone(), replies.clone()).digest();
    let proof = crate::CheckpointProof { seq: 4, state_digest, checkpoints: Vec::new() };
    let snapshot = crate::Snapshot {
        proof,
        pages,
        replies,
        view: 0,
        prepared: Vec::new(),
        batches: Vec::new(),
        executed: Vec::new(),
    };
    let records = [Persist::View(0), Persist::Snapshot(snapshot)];
    Replica::recover(
        ReplicaId(1),
        Kit::config(),
        kit.book.clone(),
        kit.key(1).clone(),
        Summer::default(),
        records,
        T,
    )
    .unwrap()
}

/// Issue 21, point 4 (and the durability rule of `crate::persist`): a
/// snapshot's reply cache may be larger than one message (16 results of
/// `max_result_bytes` per client add up), and restores whole; a snapshot
/// whose reply cache passed its checksum and digest but does not decode (a
/// format this build does not read) is damage: the replica starts in the
/// recovering mode and votes in nothing, instead of running on as a
/// replica that executed nothing.
#[test]
fn a_snapshot_restores_a_cache_larger_than_a_message_and_one_that_does_not_decode_means_recovery() {
    let kit = Kit::new(4);
    let big = vec![3u8; crate::codec::MAX_MESSAGE_BYTES + (1 << 20)];
    let cached = crate::CachedReply { request: crate::Digest::of(b"r"), result: big, withheld: None };
    let cache = std::collections::BTreeMap::from([(
        super::kit::CLIENT,
        crate::ClientReplies { newest: 1, recent: std::collections::BTreeMap::from([(1, cached)]) },
    )]);
    let restored = recover_from_snapshot(&kit, crate::codec::encode(&cache));
    assert!(!restored.is_recovering());
    assert_eq!((restored.last_executed(), restored.app().0), (4, 5));
    assert_eq!(restored.reply_cache(), &cache, "the 65 MiB cache came back");
    drop(restored);

    let mut damaged = recover_from_snapshot(&kit, vec![0xFF; 5]);
    assert!(damaged.is_recovering());
    assert_eq!(damaged.last_executed(), 0);
    let out = drain_all(&mut damaged);
    assert_eq!(out[0], Output::Event(Event::RecoveringFromPeers), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::Broadcast(Message::ViewChange(_)))), "{out:?}");
}

fn report(kit: &Kit, from: u32, view: u64, last_executed: u64) -> Message {
    let report = crate::message::StatusReport {
        view,
        view_changing: false,
        last_executed,
        stable_seq: 0,
        replica: ReplicaId(from),
    };
    Message::Status(crate::Signed::sign(report, kit.key(from)))
}

fn recovering(kit: &Kit, id: u32) -> Replica<Summer> {
    let mut replica = Replica::recover_lost(
        ReplicaId(id),
        Kit::config(),
        kit.book.clone(),
        kit.key(id).clone(),
        Summer::default(),
        T,
    )
    .unwrap();
    assert_eq!(drain_all(&mut replica), vec![Output::Event(Event::RecoveringFromPeers)]);
    replica
}

/// A replica that lost its disk takes part in no agreement while it
/// recovers: a PRE-PREPARE is refused (it may have voted in this view).
#[test]
fn a_recovering_replica_votes_in_nothing() {
    let kit = Kit::new(4);
    let mut replica = recovering(&kit, 1);
    let out = feed(&mut replica, Message::PrePrepare(kit.pre_prepare(0, 1, vec![kit.request(1, 5)])));
    assert_eq!(out, super::kit::rejected(0, crate::MessageKind::PrePrepare, crate::Reject::Recovering));
    assert!(replica.is_recovering());
}

/// Once 2f+1 other replicas reported (the highest in view 3), it asks for
/// view 5: two above, a view it cannot have signed anything in.
#[test]
fn a_recovering_replica_asks_for_a_view_two_above_what_peers_report() {
    let kit = Kit::new(4);
    let mut replica = recovering(&kit, 1);
    assert!(feed(&mut replica, report(&kit, 0, 3, 9))
        .iter()
        .all(|o| !matches!(o, Output::Broadcast(Message::ViewChange(_)))));
    feed(&mut replica, report(&kit, 2, 2, 9));
    let out = feed(&mut replica, report(&kit, 3, 3, 9));
    assert!(!replica.is_recovering());
    assert!(out.contains(&Output::Event(Event::Recovered { last_executed: 0, view: 5 })), "{out:?}");
    let asked: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Broadcast(Message::ViewChange(vc)) => Some(vc.payload().new_view),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![5]);
    assert!(out.contains(&Output::Persist(Persist::View(5))));
}

/// When the reports of 2f other replicas show a cluster that has not
/// started, it joins view 0: how a new cluster of replicas with empty data
/// directories starts, even with f replicas silent (replica 3 here). Its
/// status reports went out while it recovered, but its first vote still
/// comes after the record of view 0: restarted from its disk, it must know
/// it voted in view 0.
#[test]
fn a_recovering_replica_joins_a_cluster_that_has_not_started() {
    let kit = Kit::new(4);
    let mut replica = recovering(&kit, 1);
    replica.handle_timeout(T);
    let reports = drain_all(&mut replica);
    assert!(reports.iter().any(|o| matches!(o, Output::Broadcast(Message::Status(_)))), "{reports:?}");
    assert!(records(&reports).is_empty(), "{reports:?}");
    for from in [0, 2] {
        feed(&mut replica, report(&kit, from, 0, 0));
    }
    assert!(!replica.is_recovering());
    assert_eq!((replica.view(), replica.status()), (0, crate::Status::Normal));
    let pp = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]);
    let out = feed(&mut replica, Message::PrePrepare(pp));
    let prepare = out.iter().position(|o| matches!(o, Output::Broadcast(Message::Prepare(_))));
    let view = out.iter().position(|o| *o == Output::Persist(Persist::View(0)));
    assert!(matches!((view, prepare), (Some(v), Some(p)) if v < p), "{out:?}");
}

/// A recovering replica persists nothing, not even the batches it executes
/// as it catches up from proofs its peers relay: a crash now must find the
/// host's record of the lost disk unchanged, so that it recovers again
/// rather than restart as a replica that never voted. Once recovered, its
/// first record is the view it asks for.
#[test]
fn a_recovering_replica_persists_nothing_until_it_has_recovered() {
    let kit = Kit::new(4);
    let mut replica = recovering(&kit, 1);
    feed(&mut replica, report(&kit, 0, 3, 1));
    feed(&mut replica, report(&kit, 2, 3, 1));
    let pp = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]);
    let digest = pp.payload().digest;
    let commits = [0, 2, 3].map(|from| kit.commit(from, 0, 1, digest)).to_vec();
    let committed = crate::message::Committed { pre_prepare: pp, commits, replica: ReplicaId(0) };
    let out = feed(&mut replica, Message::Committed(crate::Signed::sign(committed, kit.key(0))));
    assert_eq!(replica.last_executed(), 1, "it caught up by the relayed proof: {out:?}");
    assert!(records(&out).is_empty(), "nothing is persisted while recovering: {out:?}");
    let out = feed(&mut replica, report(&kit, 3, 3, 1));
    assert!(!replica.is_recovering());
    assert_eq!(records(&out), vec![Persist::View(5)], "{out:?}");
}

/// Two reports are not enough when one shows a cluster that has started:
/// then it waits for 2f+1 (OSDI'99 §4.4's quorum intersection, as above).
#[test]
fn a_recovering_replica_waits_for_2f_plus_1_reports_once_the_cluster_started() {
    let kit = Kit::new(4);
    let mut replica = recovering(&kit, 1);
    feed(&mut replica, report(&kit, 0, 0, 0));
    feed(&mut replica, report(&kit, 2, 1, 0));
    assert!(replica.is_recovering());
    feed(&mut replica, report(&kit, 3, 1, 0));
    assert!(!replica.is_recovering());
    assert_eq!(replica.view(), 3, "it asks for two above the highest view reported");
}
