//! View-change rules of one replica (OSDI'99 §4.4).

use super::kit::{rejected, step, Kit};
use crate::replica::new_view_plan;
use crate::{
    batch_digest, CertificateRule, CheckpointProof, Event, Message, MessageKind, NewView, Output,
    PreparedCert, Reject, ReplicaId, Request, Signed, Status, Time, View, ViewChange,
};

const T: Time = Time(10);

/// A VIEW-CHANGE from `from` for `new_view` at the initial checkpoint.
pub(crate) fn view_change(
    kit: &Kit,
    from: u32,
    new_view: View,
    prepared: Vec<PreparedCert>,
) -> Signed<ViewChange> {
    let body =
        ViewChange { new_view, replica: ReplicaId(from), checkpoint: CheckpointProof::genesis(), prepared };
    Signed::sign(body, kit.key(from))
}

/// A prepared certificate for `batch` at (view, seq), prepared by `backups`,
/// as a VIEW-CHANGE carries it: its pre-prepare without the batch.
pub(crate) fn prepared_cert(
    kit: &Kit,
    view: View,
    seq: u64,
    batch: Vec<Signed<Request>>,
    backups: &[u32],
) -> PreparedCert {
    let pre_prepare = kit.pre_prepare(view, seq, batch);
    let digest = pre_prepare.payload().digest;
    PreparedCert {
        pre_prepare: pre_prepare.without_batch(),
        prepares: backups.iter().map(|b| kit.prepare(*b, view, seq, digest)).collect(),
    }
}

fn new_view(
    kit: &Kit,
    view: View,
    view_changes: Vec<Signed<ViewChange>>,
    batches: Vec<(u64, Vec<Signed<Request>>)>,
) -> Signed<NewView> {
    let primary = kit.primary(view);
    let pre_prepares =
        batches.into_iter().map(|(seq, batch)| kit.pre_prepare(view, seq, batch).without_batch()).collect();
    Signed::sign(NewView { view, primary: ReplicaId(primary), view_changes, pre_prepares }, kit.key(primary))
}

/// View-changes for view 1 from replicas 0, 1 and 3, where replica 3 holds a
/// prepared certificate for sequence number 2 (and 1 and 3 are gaps).
fn view_changes_with_one_certificate(kit: &Kit) -> (Vec<Signed<ViewChange>>, Vec<Signed<Request>>) {
    let batch = vec![kit.request(1, 9)];
    let cert = prepared_cert(kit, 0, 2, batch.clone(), &[2, 3]);
    let vcs = vec![
        view_change(kit, 0, 1, vec![]),
        view_change(kit, 1, 1, vec![]),
        view_change(kit, 3, 1, vec![cert]),
    ];
    (vcs, batch)
}

/// The plan keeps the certified batch at its sequence number and fills the gap below it with a null request.
#[test]
fn plan_re_proposes_certificates_and_fills_gaps() {
    let kit = Kit::new(4);
    let (vcs, batch) = view_changes_with_one_certificate(&kit);
    let plan = new_view_plan(&vcs);
    let got: Vec<(u64, crate::Digest)> = plan.proposals.iter().map(|p| (p.seq, p.digest)).collect();
    assert_eq!(got, vec![(1, batch_digest(&[])), (2, batch_digest(&batch))]);
}

/// The certificate from the highest view wins (OSDI'99 §4.4).
#[test]
fn plan_prefers_the_certificate_from_the_highest_view() {
    let kit = Kit::new(4);
    let old = prepared_cert(&kit, 0, 1, vec![kit.request(1, 1)], &[1, 2]);
    let newer_batch = vec![kit.request(2, 2)];
    let newer = prepared_cert(&kit, 1, 1, newer_batch.clone(), &[0, 2]);
    let vcs = vec![
        view_change(&kit, 0, 2, vec![old]),
        view_change(&kit, 1, 2, vec![newer]),
        view_change(&kit, 3, 2, vec![]),
    ];
    let plan = new_view_plan(&vcs);
    assert_eq!(plan.proposals.len(), 1);
    assert_eq!(plan.proposals[0].digest, batch_digest(&newer_batch));
}

/// A correct NEW-VIEW is accepted: the backup enters the view and prepares every re-proposal.
#[test]
fn backup_accepts_a_correct_new_view() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let (vcs, batch) = view_changes_with_one_certificate(&kit);
    let nv = new_view(&kit, 1, vcs, vec![(1, vec![]), (2, batch.clone())]);
    let out = step(&mut backup, T, Message::NewView(nv));
    assert_eq!(
        out,
        vec![
            Output::Broadcast(Message::Prepare(kit.prepare(2, 1, 1, batch_digest(&[])))),
            Output::Broadcast(Message::Prepare(kit.prepare(2, 1, 2, batch_digest(&batch)))),
            Output::Event(Event::NewViewEntered { view: 1, primary: ReplicaId(1) }),
        ]
    );
    assert_eq!((backup.view(), backup.status()), (1, Status::Normal));
}

/// Issue test 10: a NEW-VIEW that drops a prepared certificate is rejected.
#[test]
fn backup_rejects_new_view_that_drops_a_prepared_certificate() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let (vcs, _) = view_changes_with_one_certificate(&kit);
    for dropped in [vec![(1, vec![]), (2, vec![])], vec![(1, vec![])], vec![]] {
        let nv = new_view(&kit, 1, vcs.clone(), dropped);
        let out = step(&mut backup, T, Message::NewView(nv));
        assert_eq!(out, rejected(1, MessageKind::NewView, Reject::NewViewMismatch));
    }
    assert_eq!((backup.view(), backup.status()), (0, Status::Normal));
}

/// Issue test 10: a NEW-VIEW that invents a batch no certificate supports is rejected.
#[test]
fn backup_rejects_new_view_that_invents_a_certificate() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let vcs = vec![
        view_change(&kit, 0, 1, vec![]),
        view_change(&kit, 1, 1, vec![]),
        view_change(&kit, 3, 1, vec![]),
    ];
    let nv = new_view(&kit, 1, vcs.clone(), vec![(1, vec![kit.request(1, 4)])]);
    let out = step(&mut backup, T, Message::NewView(nv));
    assert_eq!(out, rejected(1, MessageKind::NewView, Reject::NewViewMismatch));
    // Replacing the certified batch at a sequence number with another is invention too.
    let (vcs, _) = view_changes_with_one_certificate(&kit);
    let nv = new_view(&kit, 1, vcs, vec![(1, vec![]), (2, vec![kit.request(1, 4)])]);
    let out = step(&mut backup, T, Message::NewView(nv));
    assert_eq!(out, rejected(1, MessageKind::NewView, Reject::NewViewMismatch));
}

/// A NEW-VIEW with fewer than 2f+1 view-changes, or with a forged certificate inside, is rejected.
#[test]
fn backup_rejects_new_view_without_a_valid_quorum() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let (mut vcs, batch) = view_changes_with_one_certificate(&kit);
    vcs.truncate(2);
    let nv = new_view(&kit, 1, vcs, vec![]);
    assert_eq!(
        step(&mut backup, T, Message::NewView(nv)),
        rejected(1, MessageKind::NewView, Reject::InvalidCertificate(CertificateRule::TooFewSigners))
    );
    // A certificate with a single prepare (2f = 2 needed).
    let weak = prepared_cert(&kit, 0, 1, batch, &[3]);
    let vcs = vec![
        view_change(&kit, 0, 1, vec![]),
        view_change(&kit, 1, 1, vec![]),
        view_change(&kit, 3, 1, vec![weak]),
    ];
    let nv = new_view(&kit, 1, vcs, vec![]);
    assert_eq!(
        step(&mut backup, T, Message::NewView(nv)),
        rejected(1, MessageKind::NewView, Reject::InvalidCertificate(CertificateRule::TooFewSigners))
    );
}

/// A VIEW-CHANGE whose prepared certificate counts the primary's prepare is invalid.
#[test]
fn view_change_with_primary_prepare_in_certificate_is_rejected() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let cert = prepared_cert(&kit, 0, 1, vec![kit.request(1, 1)], &[0, 3]);
    let out = step(&mut backup, T, Message::ViewChange(view_change(&kit, 3, 1, vec![cert])));
    assert_eq!(
        out,
        rejected(3, MessageKind::ViewChange, Reject::InvalidCertificate(CertificateRule::PrepareFromPrimary))
    );
}

/// The new primary sends NEW-VIEW once it holds 2f+1 view-changes, itself included.
#[test]
fn new_primary_sends_new_view_at_quorum() {
    let kit = Kit::new(4);
    let mut next_primary = kit.replica(1);
    let cert = prepared_cert(&kit, 0, 1, vec![kit.request(1, 1)], &[2, 3]);
    assert_eq!(step(&mut next_primary, T, Message::ViewChange(view_change(&kit, 3, 1, vec![cert]))), vec![]);
    // The second request for view 1 makes f+1: it joins, and with its own it has 2f+1.
    let out = step(&mut next_primary, T, Message::ViewChange(view_change(&kit, 2, 1, vec![])));
    let kinds: Vec<&str> = out
        .iter()
        .map(|o| match o {
            Output::Broadcast(Message::ViewChange(_)) => "view-change",
            Output::Broadcast(Message::NewView(_)) => "new-view",
            Output::Event(Event::ViewChangeStarted { view: 1 }) => "started",
            Output::Event(Event::NewViewEntered { view: 1, .. }) => "entered",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["view-change", "started", "new-view", "entered"]);
    let Some(Output::Broadcast(Message::NewView(nv))) = out.get(2) else { unreachable!() };
    assert_eq!(nv.payload().pre_prepares.len(), 1);
    assert_eq!(nv.payload().pre_prepares[0].payload().seq, 1);
    assert!(next_primary.is_primary());
}

/// With a view term, a replica leaves the view when the term ends even though
/// nothing is wrong (no primary keeps the role by being just fast enough),
/// and it does not end terms while it changes views.
#[test]
fn a_view_ends_with_its_term_and_the_term_starts_with_the_first_input() {
    let kit = Kit::new(4);
    let config = crate::ProtocolConfig { view_term_ms: 1_000, ..Kit::config() };
    let mut backup = kit.replica_with(1, config);
    let pp = kit.pre_prepare(0, 1, vec![kit.request(1, 1)]);
    step(&mut backup, T, Message::PrePrepare(pp));
    assert_eq!(backup.poll_timeout().map(|at| at <= T + 1_000), Some(true));
    backup.handle_timeout(T + 999);
    assert_eq!(backup.view(), 0, "the term is not over yet");
    backup.handle_timeout(T + 1_000);
    let out = super::kit::drain(&mut backup);
    let events: Vec<&Event> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(e @ (Event::TermEnded { .. } | Event::ViewChangeStarted { .. })) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events, [&Event::TermEnded { view: 0 }, &Event::ViewChangeStarted { view: 1 }]);
    assert!(out.iter().any(|o| matches!(o, Output::Broadcast(Message::ViewChange(_)))));
    assert_eq!((backup.view(), backup.status()), (1, Status::ViewChanging));
    backup.handle_timeout(T + 5_000);
    let later = super::kit::drain(&mut backup);
    assert!(
        !later.iter().any(|o| matches!(o, Output::Event(Event::TermEnded { .. }))),
        "no term runs while the replica changes views"
    );
}

/// Issue 21, point 1: a VIEW-CHANGE carries its prepared certificates
/// without their batches, so its size does not depend on the requests'
/// payloads: a certificate for a 64-byte operation makes a VIEW-CHANGE of
/// exactly the size one for a 1-byte operation does.
#[test]
fn a_view_change_carries_certificates_without_their_batches() {
    let kit = Kit::new(4);
    let size_of_view_change = |op: Vec<u8>| {
        let mut backup = kit.replica(1);
        let pp = kit.pre_prepare(0, 1, vec![kit.request_of(1, op)]);
        let digest = pp.payload().digest;
        step(&mut backup, T, Message::PrePrepare(pp));
        step(&mut backup, T, Message::Prepare(kit.prepare(2, 0, 1, digest)));
        let mut out = Vec::new();
        for from in [2, 3] {
            out.extend(step(&mut backup, T, Message::ViewChange(view_change(&kit, from, 1, vec![]))));
        }
        let own = out.into_iter().find_map(|o| match o {
            Output::Broadcast(Message::ViewChange(vc)) => Some(vc),
            _ => None,
        });
        let own = own.expect("backup 1 joined the view change");
        let certs = &own.payload().prepared;
        assert_eq!(certs.len(), 1, "the prepared batch is in the view change");
        assert_eq!(certs[0].digest(), digest);
        assert!(certs[0].pre_prepare.payload().batch.is_empty() && certs[0].pre_prepare.lacks_batch());
        crate::codec::encode(&own).len()
    };
    assert_eq!(size_of_view_change(vec![1; 64]), size_of_view_change(vec![1]));
}

/// The NEW-VIEW's re-proposals for view 1 from `view_changes_with_one_certificate`
/// (a null request at 1, the certified batch at 2), prepared by backups 0
/// and 3 and committed by 0, 1 and 3, fed to `backup`.
fn prepare_and_commit_view_1(
    kit: &Kit,
    backup: &mut crate::Replica<super::kit::Summer>,
    batch: &[Signed<Request>],
) {
    for (seq, digest) in [(1, batch_digest(&[])), (2, batch_digest(batch))] {
        for from in [0, 3] {
            step(backup, T, Message::Prepare(kit.prepare(from, 1, seq, digest)));
        }
        for from in [0, 1, 3] {
            step(backup, T, Message::Commit(kit.commit(from, 1, seq, digest)));
        }
    }
}

/// Issue 21, point 1: a backup that accepted a batch's PRE-PREPARE in view 0
/// keeps a copy across the view change, and when the NEW-VIEW names the batch
/// by digest only, it executes the batch from that copy.
#[test]
fn a_backup_executes_a_new_views_batch_from_its_own_copy() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let (vcs, batch) = view_changes_with_one_certificate(&kit);
    step(&mut backup, T, Message::PrePrepare(kit.pre_prepare(0, 2, batch.clone())));
    let nv = new_view(&kit, 1, vcs, vec![(1, vec![]), (2, batch.clone())]);
    step(&mut backup, T, Message::NewView(nv));
    prepare_and_commit_view_1(&kit, &mut backup, &batch);
    assert_eq!(backup.last_executed(), 2, "the batch executed from the backup's own copy");
    assert_eq!(backup.app().0, 9);
}

/// Issue 21, point 1: a backup that never saw a batch the NEW-VIEW names
/// prepares and commits it by digest (OSDI'99 §4.4), does not execute it
/// without its requests, and executes it from a peer's proof of
/// commitment, which carries them.
#[test]
fn a_backup_that_never_saw_a_new_views_batch_executes_it_from_a_peers_proof() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let (vcs, batch) = view_changes_with_one_certificate(&kit);
    let nv = new_view(&kit, 1, vcs, vec![(1, vec![]), (2, batch.clone())]);
    step(&mut backup, T, Message::NewView(nv));
    prepare_and_commit_view_1(&kit, &mut backup, &batch);
    assert_eq!(backup.last_executed(), 1, "committed by digest, but not executed without the batch");
    let digest = batch_digest(&batch);
    let proof = crate::Committed {
        pre_prepare: kit.pre_prepare(1, 2, batch.clone()),
        commits: [0, 1, 3].into_iter().map(|from| kit.commit(from, 1, 2, digest)).collect(),
        replica: ReplicaId(3),
    };
    let out = step(&mut backup, T, Message::Committed(Signed::sign(proof, kit.key(3))));
    let request = &batch[0];
    let reply = crate::Reply {
        view: 1,
        timestamp: request.payload().timestamp,
        client: super::kit::CLIENT,
        replica: ReplicaId(2),
        request: request.digest(),
        result: 9u64.to_le_bytes().to_vec(),
        withheld: None,
        unordered: false,
    };
    let executed = Event::Executed {
        view: 1,
        seq: 2,
        digest,
        requests: vec![crate::ExecutedRequest {
            client: super::kit::CLIENT,
            timestamp: request.payload().timestamp,
            digest: request.digest(),
        }],
    };
    assert_eq!(out, vec![Output::Reply(reply), Output::Event(executed)]);
    assert_eq!(backup.last_executed(), 2);
}

/// The NEW-VIEW size bound the config checks against the message limit
/// (`ProtocolConfig::new_view_bytes`) holds for a NEW-VIEW as large as the
/// window allows (three VIEW-CHANGEs with a certificate of every backup's
/// prepare at every sequence number, of the largest operations), and is no
/// more than twice its size.
#[test]
fn a_full_windows_new_view_is_within_the_configured_bound() {
    let kit = Kit::new(4);
    let config = Kit::config();
    let window = config.watermark_window;
    let big = |seq: u64| vec![kit.request_of(seq, vec![7; config.max_request_bytes])];
    let certs: Vec<PreparedCert> =
        (1..=window).map(|seq| prepared_cert(&kit, 0, seq, big(seq), &[1, 2, 3])).collect();
    let vcs = [0, 2, 3].into_iter().map(|from| view_change(&kit, from, 1, certs.clone())).collect();
    let nv = new_view(&kit, 1, vcs, (1..=window).map(|seq| (seq, big(seq))).collect());
    let size = crate::codec::encode(&nv).len();
    let bound = config.new_view_bytes(4);
    assert!(size <= bound && bound <= 2 * size, "size {size}, bound {bound}");
}

/// Issue 21, point 1 (review): the copy of a batch a replica accepted but
/// did not prepare survives a restart (`Persist::Accepted`), so when a
/// NEW-VIEW later names the batch by digest only, the restarted replica
/// executes it without anyone's help: the f+1 honest holders of a batch a
/// certificate names stay holders across restarts.
#[test]
fn a_batch_accepted_before_a_restart_executes_when_a_new_view_names_it() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let (vcs, batch) = view_changes_with_one_certificate(&kit);
    backup.receive(T, Message::PrePrepare(kit.pre_prepare(0, 2, batch.clone())));
    let records: Vec<crate::Persist> = super::kit::drain_all(&mut backup)
        .into_iter()
        .filter_map(|o| match o {
            Output::Persist(record) => Some(record),
            _ => None,
        })
        .collect();
    let mut restarted = crate::Replica::recover(
        ReplicaId(2),
        Kit::config(),
        kit.book.clone(),
        kit.key(2).clone(),
        super::kit::Summer::default(),
        records,
        T,
    )
    .unwrap();
    super::kit::drain_all(&mut restarted);
    let nv = new_view(&kit, 1, vcs, vec![(1, vec![]), (2, batch.clone())]);
    step(&mut restarted, T, Message::NewView(nv));
    prepare_and_commit_view_1(&kit, &mut restarted, &batch);
    assert_eq!(restarted.last_executed(), 2, "executed from the copy it kept across the restart");
    assert_eq!(restarted.app().0, 9);
}
