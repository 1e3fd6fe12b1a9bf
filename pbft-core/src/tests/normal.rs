//! Normal-case rules of one replica (OSDI'99 §4.2).

use super::kit::{drain, rejected, step, Kit};
use crate::{Event, Message, MessageKind, Output, Reject, ReplicaId, Signed, Time};

const T: Time = Time(10);

/// Issue test 3: a backup accepts a well-formed PRE-PREPARE by broadcasting
/// exactly its PREPARE.
#[test]
fn backup_prepares_a_valid_pre_prepare() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let pp = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]);
    let digest = pp.payload().digest;
    let out = step(&mut backup, T, Message::PrePrepare(pp));
    assert_eq!(out, vec![Output::Broadcast(Message::Prepare(kit.prepare(1, 0, 1, digest)))]);
}

/// Issue test 3 (OSDI'99 §4.2): a backup ignores a PRE-PREPARE whose digest
/// does not match its batch, and reports why.
#[test]
fn backup_ignores_pre_prepare_with_wrong_digest() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let mut body = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]).into_payload();
    body.digest = crate::Digest::of(b"something else");
    let forged = Signed::sign(body, kit.key(0));
    let out = step(&mut backup, T, Message::PrePrepare(forged));
    assert_eq!(out, rejected(0, MessageKind::PrePrepare, Reject::DigestMismatch));
    assert_eq!(backup.rejections()[&Reject::DigestMismatch], 1);
}

/// Issue test 3: a PRE-PREPARE outside the watermarks (h, h+L] is ignored.
#[test]
fn backup_ignores_pre_prepare_outside_watermarks() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let high = backup.high_watermark();
    for seq in [0, high + 1, high + 100] {
        let out = step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, seq, vec![])));
        assert_eq!(out, rejected(0, MessageKind::PrePrepare, Reject::OutsideWatermarks), "seq {seq}");
    }
    let out = step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, high, vec![])));
    assert!(matches!(out.as_slice(), [Output::Broadcast(Message::Prepare(_))]), "seq h+L is inside");
}

/// Issue test 3: a PRE-PREPARE signed by a replica that is not the primary of
/// its view is ignored.
#[test]
fn backup_ignores_pre_prepare_from_non_primary() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let batch = vec![kit.request(1, 5)];
    let body = crate::PrePrepare {
        view: 0,
        seq: 1,
        digest: crate::batch_digest(&batch),
        primary: ReplicaId(2),
        batch,
    };
    let out = step(&mut backup, T, Message::PrePrepare(Signed::sign(body, kit.key(2))));
    assert_eq!(out, rejected(2, MessageKind::PrePrepare, Reject::WrongPrimary));
}

/// Issue test 3: a PRE-PREPARE for an older view is ignored as stale; one for
/// a view not yet entered is held back, not acted on.
#[test]
fn backup_ignores_pre_prepare_for_another_view() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    // Future view: buffered without a PREPARE.
    let out = step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(1, 1, vec![])));
    assert_eq!(out, vec![]);
    assert_eq!(backup.buffer_usage().future_messages, 1);
    // f+1 = 2 replicas ask for view 1: replica 2 joins the view change.
    for from in [1, 3] {
        let vc = super::view_change::view_change(&kit, from, 1, vec![]);
        step(&mut backup, T, Message::ViewChange(vc));
    }
    assert_eq!(backup.view(), 1);
    let out = step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, 1, vec![])));
    assert_eq!(out, rejected(0, MessageKind::PrePrepare, Reject::StaleView));
}

/// A second, different PRE-PREPARE for the same view and sequence number is
/// equivocation and is reported.
#[test]
fn backup_reports_equivocating_primary() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, 1, vec![kit.request(1, 5)])));
    let out = step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, 1, vec![kit.request(1, 6)])));
    assert_eq!(out, rejected(0, MessageKind::PrePrepare, Reject::Equivocation));
}

/// Issue test 4 (OSDI'99 §4.2): prepared needs the pre-prepare and 2f matching
/// PREPAREs from distinct backups. With n=7 (2f = 4), the backup's own
/// prepare and those of replicas 2 and 3 make three; the primary's PREPARE
/// and a repeat from replica 3 do not make a fourth; replica 4's does.
#[test]
fn prepared_needs_two_f_distinct_backups() {
    let kit = Kit::new(7);
    let mut backup = kit.replica(1);
    let pp = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]);
    let digest = pp.payload().digest;
    step(&mut backup, T, Message::PrePrepare(pp));
    for from in [2, 3] {
        assert_eq!(step(&mut backup, T, Message::Prepare(kit.prepare(from, 0, 1, digest))), vec![]);
    }
    let out = step(&mut backup, T, Message::Prepare(kit.prepare(0, 0, 1, digest)));
    assert_eq!(out, rejected(0, MessageKind::Prepare, Reject::PrepareFromPrimary));
    let out = step(&mut backup, T, Message::Prepare(kit.prepare(3, 0, 1, digest)));
    assert_eq!(out, rejected(3, MessageKind::Prepare, Reject::Duplicate));
    // A prepare for another digest from a fresh replica does not match either.
    let other = crate::Digest::of(b"other");
    assert_eq!(step(&mut backup, T, Message::Prepare(kit.prepare(5, 0, 1, other))), vec![]);
    let out = step(&mut backup, T, Message::Prepare(kit.prepare(4, 0, 1, digest)));
    assert_eq!(out, vec![Output::Broadcast(Message::Commit(kit.commit(1, 0, 1, digest)))]);
}

/// Replica 1's reply in view 0 to the kit client's `request`, the
/// Summer's running `total`.
fn reply_from_1(request: &Signed<crate::Request>, total: u64) -> crate::Reply {
    crate::Reply {
        view: 0,
        timestamp: request.payload().timestamp,
        client: super::kit::CLIENT,
        replica: ReplicaId(1),
        request: request.digest(),
        result: total.to_le_bytes().to_vec(),
        withheld: None,
        unordered: false,
    }
}

/// The event of `request` executing alone in the batch at `seq` of view 0.
fn executed_alone(seq: crate::SeqNum, digest: crate::Digest, request: &Signed<crate::Request>) -> Output {
    Output::Event(Event::Executed {
        view: 0,
        seq,
        digest,
        requests: vec![crate::ExecutedRequest {
            client: super::kit::CLIENT,
            timestamp: request.payload().timestamp,
            digest: request.digest(),
        }],
    })
}

/// Committed-local needs 2f+1 matching COMMITs from distinct replicas; then the
/// batch executes and the client gets a reply.
#[test]
fn committed_local_needs_two_f_plus_one_commits_then_executes() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let request = kit.request(1, 5);
    let pp = kit.pre_prepare(0, 1, vec![request.clone()]);
    let digest = pp.payload().digest;
    step(&mut backup, T, Message::PrePrepare(pp));
    step(&mut backup, T, Message::Prepare(kit.prepare(2, 0, 1, digest)));
    // Own commit plus replica 0's: two of three.
    assert_eq!(step(&mut backup, T, Message::Commit(kit.commit(0, 0, 1, digest))), vec![]);
    let out = step(&mut backup, T, Message::Commit(kit.commit(0, 0, 1, digest)));
    assert_eq!(out, rejected(0, MessageKind::Commit, Reject::Duplicate));
    let out = step(&mut backup, T, Message::Commit(kit.commit(3, 0, 1, digest)));
    assert_eq!(out, vec![Output::Reply(reply_from_1(&request, 5)), executed_alone(1, digest, &request)]);
    assert_eq!(backup.last_executed(), 1);
}

/// Backup 1 accepts `request` alone at `seq` of view 0 at `at`, with the
/// PREPARE and COMMITs that make it execute (OSDI'99 §4.2).
fn execute_alone_at_backup_1(
    kit: &Kit,
    backup: &mut crate::Replica<super::kit::Summer>,
    at: Time,
    seq: crate::SeqNum,
    request: Signed<crate::Request>,
) {
    let pp = kit.pre_prepare(0, seq, vec![request]);
    let digest = pp.payload().digest;
    step(backup, at, Message::PrePrepare(pp));
    step(backup, at, Message::Prepare(kit.prepare(2, 0, seq, digest)));
    step(backup, at, Message::Commit(kit.commit(0, 0, seq, digest)));
    step(backup, at, Message::Commit(kit.commit(3, 0, seq, digest)));
}

/// Issue 21, point 6: a different request under a timestamp at which the
/// client's request already executed (a second process with the same
/// client identity, a clock stepped back) is answered with what executed,
/// its digest included, so that the client can tell the result is not its
/// request's, and counted; it never executes.
#[test]
fn a_different_request_under_an_executed_timestamp_is_answered_with_the_executed_ones_digest() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let request = kit.request(1, 5);
    execute_alone_at_backup_1(&kit, &mut backup, T, 1, request.clone());
    assert_eq!(backup.last_executed(), 1);
    let reused = kit.request(1, 9);
    assert_ne!(reused.digest(), request.digest());
    let out = step(&mut backup, T, Message::Request(reused));
    let mut expected = vec![Output::Event(Event::Rejected {
        from: crate::Author::Client(super::kit::CLIENT),
        kind: MessageKind::Request,
        reason: Reject::TimestampReused,
    })];
    expected.push(Output::Reply(reply_from_1(&request, 5)));
    assert_eq!(out, expected);
    assert_eq!(backup.rejections().get(&Reject::TimestampReused), Some(&1));
}

/// Issue 21, point 4: a result over `max_result_bytes` is withheld. The
/// request executes (the batch is reported executed, the state moves on),
/// but the reply carries the result's size instead of its bytes, and the
/// reply cache, which checkpoints copy, keeps only that size, so a repeat
/// of the request is answered the same way. The replica reports the
/// withheld result as an event (the QUIC driver logs it as a warning). A
/// result of exactly the limit is kept whole. The Summer's results are 8
/// bytes.
#[test]
fn a_result_over_max_result_bytes_is_withheld_and_only_its_size_kept() {
    let kit = Kit::new(4);
    let request = kit.request(1, 5);
    let whole = reply_from_1(&request, 5);
    let withheld = Event::ResultWithheld { client: super::kit::CLIENT, timestamp: 1, bytes: 8 };
    for (limit, expected, event) in [
        (8, whole.clone(), None),
        (7, crate::Reply { result: Vec::new(), withheld: Some(8), ..whole.clone() }, Some(withheld)),
    ] {
        let mut backup =
            kit.replica_with(1, crate::ProtocolConfig { max_result_bytes: limit, ..Kit::config() });
        let pp = kit.pre_prepare(0, 1, vec![request.clone()]);
        let digest = pp.payload().digest;
        step(&mut backup, T, Message::PrePrepare(pp));
        step(&mut backup, T, Message::Prepare(kit.prepare(2, 0, 1, digest)));
        step(&mut backup, T, Message::Commit(kit.commit(0, 0, 1, digest)));
        let out = step(&mut backup, T, Message::Commit(kit.commit(3, 0, 1, digest)));
        let mut outputs: Vec<Output> = event.map(Output::Event).into_iter().collect();
        outputs.extend([Output::Reply(expected.clone()), executed_alone(1, digest, &request)]);
        assert_eq!(out, outputs, "limit {limit}");
        let cached = &backup.reply_cache()[&super::kit::CLIENT].recent[&1];
        assert_eq!((&cached.result, cached.withheld), (&expected.result, expected.withheld), "limit {limit}");
        let out = step(&mut backup, T, Message::Request(request.clone()));
        assert_eq!(out, vec![Output::Reply(expected)], "the repeat, from the cache, limit {limit}");
    }
}

/// With phases reported, a backup marks each step of OSDI'99 §4.2 as it
/// reaches it: pre-prepared when it accepts the PRE-PREPARE (naming the
/// batch's requests), prepared with the 2f-th matching PREPARE (as it sends
/// its COMMIT), committed-local with the 2f+1-th COMMIT, then executed; a
/// repeat of the executed request is answered from the reply cache and says
/// so. Without phases (every other test) none of these events appear.
#[test]
fn reported_phases_follow_the_normal_case_in_order() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    backup.report_phases(true);
    let request = kit.request(1, 5);
    let pp = kit.pre_prepare(0, 1, vec![request.clone()]);
    let digest = pp.payload().digest;
    let out = step(&mut backup, T, Message::PrePrepare(pp));
    assert_eq!(
        out,
        vec![
            Output::Event(Event::PrePrepared { view: 0, seq: 1, requests: vec![(super::kit::CLIENT, 1)] }),
            Output::Broadcast(Message::Prepare(kit.prepare(1, 0, 1, digest))),
        ]
    );
    let out = step(&mut backup, T, Message::Prepare(kit.prepare(2, 0, 1, digest)));
    assert_eq!(
        out,
        vec![
            Output::Event(Event::Prepared { view: 0, seq: 1 }),
            Output::Broadcast(Message::Commit(kit.commit(1, 0, 1, digest))),
        ]
    );
    assert_eq!(step(&mut backup, T, Message::Commit(kit.commit(0, 0, 1, digest))), vec![]);
    let out = step(&mut backup, T, Message::Commit(kit.commit(3, 0, 1, digest)));
    let reply = reply_from_1(&request, 5);
    assert_eq!(
        out,
        vec![
            Output::Event(Event::CommittedLocal { view: 0, seq: 1 }),
            Output::Reply(reply.clone()),
            executed_alone(1, digest, &request),
        ]
    );
    let out = step(&mut backup, T, Message::Request(request));
    assert_eq!(
        out,
        vec![
            Output::Event(Event::RepliedFromCache { client: super::kit::CLIENT, timestamp: 1 }),
            Output::Reply(reply),
        ]
    );
}

/// Batches execute strictly in sequence order: a committed seq 2 waits for seq 1.
#[test]
fn execution_waits_for_the_previous_sequence_number() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let commit_all = |backup: &mut crate::Replica<super::kit::Summer>, seq, op| {
        let pp = kit.pre_prepare(0, seq, vec![kit.request(seq, op)]);
        let digest = pp.payload().digest;
        step(backup, T, Message::PrePrepare(pp));
        step(backup, T, Message::Prepare(kit.prepare(2, 0, seq, digest)));
        step(backup, T, Message::Commit(kit.commit(0, 0, seq, digest)));
        step(backup, T, Message::Commit(kit.commit(2, 0, seq, digest)))
    };
    let out = commit_all(&mut backup, 2, 7);
    assert!(!out.iter().any(|o| matches!(o, Output::Event(Event::Executed { .. }))));
    assert_eq!(backup.last_executed(), 0);
    let out = commit_all(&mut backup, 1, 3);
    let executed: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::Executed { seq, .. }) => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(executed, vec![1, 2]);
    assert_eq!(backup.app().0, 10);
}

/// The primary proposes at once when nothing is in flight; while a batch is
/// in flight it proposes a full batch at once and a partial one after the
/// batch delay.
#[test]
fn primary_batches_requests() {
    let kit = Kit::new(4);
    let mut config = Kit::config();
    config.batch_delay_ms = 5;
    config.max_pending_per_client = 8;
    let mut primary = kit.replica_with(0, config);
    let offer = |primary: &mut crate::Replica<super::kit::Summer>, ts| {
        primary.receive(T, Message::Request(kit.request(ts, 1)));
        drain(primary)
    };
    let first = kit.pre_prepare(0, 1, vec![kit.request(1, 1)]);
    assert_eq!(offer(&mut primary, 1), vec![Output::Broadcast(Message::PrePrepare(first))], "idle: at once");
    for ts in 2..=4 {
        assert_eq!(offer(&mut primary, ts), vec![], "a partial batch waits while seq 1 is in flight");
    }
    assert_eq!(primary.poll_timeout(), Some(Time(15)));
    let full = kit.pre_prepare(0, 2, (2..=5).map(|ts| kit.request(ts, 1)).collect());
    assert_eq!(offer(&mut primary, 5), vec![Output::Broadcast(Message::PrePrepare(full))]);
    assert_eq!(primary.poll_timeout(), Some(Time(super::kit::STATUS_INTERVAL_MS)), "nothing left to batch");
    assert_eq!(offer(&mut primary, 6), vec![]);
    primary.handle_timeout(Time(15));
    let expected = kit.pre_prepare(0, 3, vec![kit.request(6, 1)]);
    assert_eq!(drain(&mut primary), vec![Output::Broadcast(Message::PrePrepare(expected))]);
}

/// After `handle_timeout(now)`, the next deadline is later than `now` (no
/// busy loop). A backup whose request times out asks for view 1 and, alone,
/// waits there rather than racing through views (OSDI'99 §4.5.2: the
/// view-change timer starts only once 2f+1 replicas ask for the view).
#[test]
fn timeouts_move_forward_and_a_lone_backup_waits_in_its_view_change() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    backup.receive(T, Message::Request(kit.request(1, 1)));
    drain(&mut backup);
    for _ in 0..10 {
        let Some(now) = backup.poll_timeout() else { break };
        backup.handle_timeout(now);
        drain(&mut backup);
        assert!(backup.poll_timeout().is_none_or(|next| next > now));
    }
    assert_eq!((backup.view(), backup.status()), (1, crate::Status::ViewChanging));
}

/// A client sends timestamp t only after everything up to t - window
/// completed, so a replica that has not executed those yet (it lags the f+1
/// that answered) forgets them instead of refusing t as over its buffer.
#[test]
fn a_request_beyond_the_window_displaces_completed_ones_instead_of_being_refused() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let window = Kit::config().max_pending_per_client as u64;
    for timestamp in 1..=window {
        let out = step(&mut backup, T, Message::Request(kit.request(timestamp, 1)));
        assert!(!out.iter().any(|o| matches!(o, Output::Event(Event::Rejected { .. }))), "{out:?}");
    }
    assert_eq!(backup.buffer_usage().pending_requests, window as usize);
    let out = step(&mut backup, T, Message::Request(kit.request(window + 1, 1)));
    assert!(!out.iter().any(|o| matches!(o, Output::Event(Event::Rejected { .. }))), "{out:?}");
    assert_eq!(backup.buffer_usage().pending_requests, window as usize, "timestamp 1 was forgotten");
    step(&mut backup, T, Message::Request(kit.request(3 * window, 1)));
    assert_eq!(backup.buffer_usage().pending_requests, 1, "everything up to 2 × window was forgotten");
}

/// Checkpoint votes naming different state digests for one sequence number
/// are reported with who signed what; a late vote against the stable
/// checkpoint is reported once however often its sender repeats it.
#[test]
fn differing_checkpoint_digests_are_reported_once_each() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let vote = |from: u32, digest: crate::Digest| {
        Message::Checkpoint(Signed::sign(
            crate::Checkpoint { seq: 4, state_digest: digest, replica: ReplicaId(from) },
            kit.key(from),
        ))
    };
    let reports = |out: &[Output]| -> Vec<crate::Disagreement> {
        out.iter()
            .filter_map(|o| match o {
                Output::Event(Event::CheckpointDisagreement(d)) => Some(d.clone()),
                _ => None,
            })
            .collect()
    };
    let mut own = None;
    for seq in 1..=4 {
        let pp = kit.pre_prepare(0, seq, vec![kit.request(seq, 1)]);
        let digest = pp.payload().digest;
        step(&mut backup, T, Message::PrePrepare(pp));
        step(&mut backup, T, Message::Prepare(kit.prepare(2, 0, seq, digest)));
        step(&mut backup, T, Message::Commit(kit.commit(0, 0, seq, digest)));
        for output in step(&mut backup, T, Message::Commit(kit.commit(2, 0, seq, digest))) {
            if let Output::Broadcast(Message::Checkpoint(c)) = output {
                own = Some(c.payload().state_digest);
            }
        }
    }
    let own = own.expect("replica 1 checkpoints at seq 4");
    let other = crate::Digest::of_parts(&[b"another state"]);
    assert!(reports(&step(&mut backup, T, vote(0, own))).is_empty(), "agreeing votes are no news");
    let out = step(&mut backup, T, vote(3, other));
    let expected = crate::Disagreement {
        seq: 4,
        digests: [(own, [ReplicaId(0), ReplicaId(1)].into()), (other, [ReplicaId(3)].into())].into(),
    };
    assert_eq!(reports(&out), vec![expected.clone()]);
    assert_eq!(backup.last_disagreement(), Some(&expected));
    let grown = crate::Disagreement {
        seq: 4,
        digests: [(own, [ReplicaId(0), ReplicaId(1), ReplicaId(2)].into()), (other, [ReplicaId(3)].into())]
            .into(),
    };
    assert_eq!(reports(&step(&mut backup, T, vote(2, own))), vec![grown], "a new signer is news");
    assert_eq!(backup.stable_checkpoint().seq, 4, "three matching votes make seq 4 stable");
    let reported: Vec<_> = (0..5).flat_map(|_| reports(&step(&mut backup, T, vote(3, other)))).collect();
    assert_eq!(reported, vec![], "the dissenter repeating its late vote adds nothing");
}

/// Votes that can no longer change anything are dropped before their
/// signature is checked: once a slot is prepared another PREPARE for it is
/// `Unneeded` even with a forged signature, and once it is committed-local so
/// is another COMMIT. Before that, the same forged votes are caught as bad
/// signatures, so the shortcut only skips work that could not matter.
#[test]
fn votes_after_the_quorum_are_dropped_unverified() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let pp = kit.pre_prepare(0, 1, vec![kit.request(1, 5)]);
    let digest = pp.payload().digest;
    let forged_prepare = || {
        let genuine = kit.prepare(3, 0, 1, digest);
        Message::Prepare(Signed::from_parts(genuine.payload().clone(), vec![0; 64]))
    };
    let forged_commit = || {
        let genuine = kit.commit(3, 0, 1, digest);
        Message::Commit(Signed::from_parts(genuine.payload().clone(), vec![0; 64]))
    };
    step(&mut backup, T, Message::PrePrepare(pp));
    let out = step(&mut backup, T, forged_prepare());
    assert_eq!(out, rejected(3, MessageKind::Prepare, Reject::BadSignature), "not prepared yet");
    step(&mut backup, T, Message::Prepare(kit.prepare(2, 0, 1, digest)));
    let out = step(&mut backup, T, forged_prepare());
    assert_eq!(out, rejected(3, MessageKind::Prepare, Reject::Unneeded), "prepared");
    let out = step(&mut backup, T, forged_commit());
    assert_eq!(out, rejected(3, MessageKind::Commit, Reject::BadSignature), "not committed yet");
    step(&mut backup, T, Message::Commit(kit.commit(0, 0, 1, digest)));
    step(&mut backup, T, Message::Commit(kit.commit(2, 0, 1, digest)));
    assert_eq!(backup.last_executed(), 1);
    let out = step(&mut backup, T, forged_commit());
    assert_eq!(out, rejected(3, MessageKind::Commit, Reject::Unneeded), "committed");
    assert_eq!(backup.rejections()[&Reject::Unneeded], 2);
}

/// Issue 21, point 5: a backup's request timer waits for one request
/// (OSDI'99 §4.4). A primary that keeps ordering another client's requests
/// but never the one the backup relayed is replaced once the timer runs
/// out: executing other requests does not restart it. When the awaited
/// request itself executes and another is still held, the timer restarts.
#[test]
fn a_primary_that_orders_others_but_never_the_relayed_request_is_replaced() {
    let kit = Kit::new(4);
    let other_key = crate::SecretKey::from_seed([201; 32]);
    let other = crate::ClientId(8);
    let publics: Vec<_> = kit.replicas.iter().map(crate::SecretKey::public).collect();
    let book = crate::KeyBook::new(
        &publics,
        [(super::kit::CLIENT, kit.client.public()), (other, other_key.public())],
    )
    .unwrap();
    let mut backup = crate::Replica::new(
        ReplicaId(1),
        Kit::config(),
        book,
        kit.key(1).clone(),
        super::kit::Summer::default(),
    )
    .unwrap();
    let starved = kit.request(1, 1);
    let out = step(&mut backup, Time(0), Message::Request(starved.clone()));
    assert_eq!(out, vec![Output::Send { to: ReplicaId(0), message: Message::Request(starved) }]);
    assert_eq!(backup.poll_timeout(), Some(Time(100)));
    // The primary orders the other client's requests at 40 and 80 ms.
    for (seq, at) in [(1, 40), (2, 80)] {
        let request =
            crate::Request { client: other, timestamp: seq, op: vec![1], kind: crate::RequestKind::Write };
        execute_alone_at_backup_1(&kit, &mut backup, Time(at), seq, Signed::sign(request, &other_key));
        assert_eq!(backup.last_executed(), seq);
        assert_eq!(backup.poll_timeout(), Some(Time(100)), "executing others' requests restarts nothing");
    }
    backup.handle_timeout(Time(100));
    let asked: Vec<crate::View> = drain(&mut backup)
        .into_iter()
        .filter_map(|output| match output {
            Output::Broadcast(Message::ViewChange(vc)) => Some(vc.payload().new_view),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![1], "the starving primary is voted out");
}

/// The other half of §4.4: once the awaited request executes while the
/// backup holds another, the timer restarts for that one.
#[test]
fn the_request_timer_restarts_when_the_awaited_request_executes() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let first = kit.request(1, 1);
    step(&mut backup, Time(0), Message::Request(first.clone()));
    step(&mut backup, Time(30), Message::Request(kit.request(2, 1)));
    assert_eq!(backup.poll_timeout(), Some(Time(100)));
    execute_alone_at_backup_1(&kit, &mut backup, Time(60), 1, first);
    assert_eq!(backup.last_executed(), 1);
    assert_eq!(backup.poll_timeout(), Some(Time(160)), "a fresh timeout for the request still held");
}

/// Byte bounds small enough to reach with a few requests: operations of at
/// most 8 bytes, batches of at most 10, and a batch delay so that requests
/// wait for the primary to batch them.
fn byte_bounded() -> crate::ProtocolConfig {
    crate::ProtocolConfig { max_request_bytes: 8, max_batch_bytes: 10, batch_delay_ms: 5, ..Kit::config() }
}

/// Issue 21, point 1: a request whose operation is over `max_request_bytes`
/// is dropped and counted before any replica holds it, so the primary never
/// proposes it; one of exactly the limit is proposed.
#[test]
fn a_request_over_max_request_bytes_is_dropped_and_counted() {
    let kit = Kit::new(4);
    let mut primary = kit.replica_with(0, byte_bounded());
    let out = step(&mut primary, T, Message::Request(kit.request_of(1, vec![1; 9])));
    assert_eq!(
        out,
        vec![Output::Event(Event::Rejected {
            from: crate::Author::Client(super::kit::CLIENT),
            kind: MessageKind::Request,
            reason: Reject::RequestTooLarge,
        })]
    );
    assert_eq!(primary.rejections().get(&Reject::RequestTooLarge), Some(&1));
    assert_eq!(primary.buffer_usage().pending_requests, 0, "nothing is held");
    let at_limit = kit.request_of(2, vec![1; 8]);
    let out = step(&mut primary, T, Message::Request(at_limit.clone()));
    let expected = kit.pre_prepare(0, 1, vec![at_limit]);
    assert_eq!(out, vec![Output::Broadcast(Message::PrePrepare(expected))]);
}

/// Issue 21, point 1: the primary cuts batches by operation bytes as well
/// as by count, oldest request first: 6 + 4 bytes fill a batch of 10, and
/// the next 8 go in a batch of their own.
#[test]
fn the_primary_cuts_batches_at_max_batch_bytes() {
    let kit = Kit::new(4);
    let mut primary = kit.replica_with(0, byte_bounded());
    let first = kit.request_of(1, vec![1; 8]);
    let out = step(&mut primary, T, Message::Request(first.clone()));
    assert_eq!(out, vec![Output::Broadcast(Message::PrePrepare(kit.pre_prepare(0, 1, vec![first])))]);
    let waiting =
        [kit.request_of(2, vec![2; 6]), kit.request_of(3, vec![3; 4]), kit.request_of(4, vec![4; 8])];
    for request in &waiting {
        assert_eq!(
            step(&mut primary, T, Message::Request(request.clone())),
            vec![],
            "waits for the batch delay"
        );
    }
    primary.handle_timeout(Time(T.0 + 5));
    let [second, third, fourth] = waiting;
    assert_eq!(
        drain(&mut primary),
        vec![
            Output::Broadcast(Message::PrePrepare(kit.pre_prepare(0, 2, vec![second, third]))),
            Output::Broadcast(Message::PrePrepare(kit.pre_prepare(0, 3, vec![fourth]))),
        ]
    );
}

/// Issue 21, point 1: a backup refuses a PRE-PREPARE whose batch breaks the
/// byte bounds an honest primary keeps (a request over `max_request_bytes`,
/// or operations over `max_batch_bytes` in all), as it refuses one with too
/// many requests; a batch of one request at the limit is accepted.
#[test]
fn a_backup_refuses_a_batch_over_the_byte_bounds() {
    let kit = Kit::new(4);
    let mut backup = kit.replica_with(1, byte_bounded());
    let oversized = [
        vec![kit.request_of(1, vec![1; 9])],
        vec![kit.request_of(1, vec![1; 6]), kit.request_of(2, vec![2; 5])],
    ];
    for batch in oversized {
        let out = step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, 1, batch)));
        assert_eq!(out, rejected(0, MessageKind::PrePrepare, Reject::BatchTooLarge));
    }
    let pp = kit.pre_prepare(0, 1, vec![kit.request_of(1, vec![1; 6]), kit.request_of(2, vec![2; 4])]);
    let digest = pp.payload().digest;
    let out = step(&mut backup, T, Message::PrePrepare(pp));
    assert_eq!(out, vec![Output::Broadcast(Message::Prepare(kit.prepare(1, 0, 1, digest)))]);
}

/// Issue 21, point 5 (the gap attack): a client sends the primary a window
/// of timestamps around a gap (1, 2, 3 and 5, with a window of 4) and the
/// missing one, 4, to the backups only, hoping the primary's share for it
/// is full of requests in flight when a backup relays 4, so that the relay
/// is dropped and the backups time out. It is not full: a client sends 5
/// only once 1 completed, so taking 5 lets the primary forget 1, and the
/// relayed 4 is proposed.
#[test]
fn a_relayed_request_is_proposed_while_the_clients_others_are_in_flight() {
    let kit = Kit::new(4);
    let mut primary = kit.replica(0);
    for (seq, timestamp) in [(1, 1), (2, 2), (3, 3), (4, 5)] {
        let request = kit.request(timestamp, 1);
        let out = step(&mut primary, T, Message::Request(request.clone()));
        let expected = kit.pre_prepare(0, seq, vec![request]);
        assert_eq!(out, vec![Output::Broadcast(Message::PrePrepare(expected))], "timestamp {timestamp}");
    }
    let relayed = kit.request(4, 1);
    let out = step(&mut primary, T, Message::Request(relayed.clone()));
    assert_eq!(out, vec![Output::Broadcast(Message::PrePrepare(kit.pre_prepare(0, 5, vec![relayed])))]);
}

/// Issue 21, point 5: the one gap the primary's share does drop a relay
/// for is below a full window (2 to 5 in flight, 1 relayed), and that
/// request is abandoned by the client's own rule: once 5 executes, 1 lies
/// below the window, every replica forgets it, and the backup's request
/// timer, which waited for it, stops instead of forcing a view change.
#[test]
fn a_relayed_request_below_the_clients_window_stops_the_backups_timer() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let below = kit.request(1, 1);
    let out = step(&mut backup, T, Message::Request(below.clone()));
    assert_eq!(out, vec![Output::Send { to: ReplicaId(0), message: Message::Request(below) }]);
    for (seq, timestamp) in [(1, 2), (2, 3), (3, 4), (4, 5)] {
        execute_alone_at_backup_1(&kit, &mut backup, T, seq, kit.request(timestamp, 1));
    }
    assert_eq!(backup.last_executed(), 4);
    assert_eq!(backup.buffer_usage().pending_requests, 0, "the request below the window is forgotten");
    backup.handle_timeout(Time(T.0 + Kit::config().view_change_timeout_ms));
    assert_eq!(drain(&mut backup), vec![], "no request timer fired: no view change");
    assert_eq!(backup.status(), crate::Status::Normal);
}
