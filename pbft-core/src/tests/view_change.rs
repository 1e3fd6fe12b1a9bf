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

/// A prepared certificate for `batch` at (view, seq), prepared by `backups`.
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
        pre_prepare,
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
    let pre_prepares = batches.into_iter().map(|(seq, batch)| kit.pre_prepare(view, seq, batch)).collect();
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
