//! Issue 21, point 3: cheap checks come before signatures. Each message
//! below is signed with the wrong key, so verifying it would fail with
//! `BadSignature`; it is refused for what its unverified fields show
//! instead, which proves its signatures were never checked.

use super::kit::{rejected, step, Kit, CLIENT};
use super::view_change::{prepared_cert, view_change};
use crate::{
    Author, CertificateRule, Event, Message, MessageKind, NewView, Output, PrePrepare, Reject, ReplicaId,
    Request, RequestKind, Signed, Time,
};

const T: Time = Time(10);

/// `body` signed by replica 3, whoever its author is.
fn forged<S: crate::signed::Signable>(kit: &Kit, body: S) -> Signed<S> {
    Signed::sign(body, kit.key(3))
}

#[test]
fn messages_condemned_by_their_fields_are_dropped_before_their_signatures_are_checked() {
    let kit = Kit::new(4);
    let config = Kit::config();
    let mut backup = kit.replica(2);
    let window = config.watermark_window;
    let header = |view, seq, batch: Vec<Signed<Request>>| PrePrepare {
        view,
        seq,
        digest: crate::batch_digest(&batch),
        primary: ReplicaId(kit.primary(view)),
        batch,
    };

    let oversized = Request {
        client: CLIENT,
        timestamp: 1,
        op: vec![1; config.max_request_bytes + 1],
        kind: RequestKind::Write,
    };
    let out = step(&mut backup, T, Message::Request(forged(&kit, oversized)));
    let reason = Reject::RequestTooLarge;
    assert_eq!(
        out,
        vec![Output::Event(Event::Rejected {
            from: Author::Client(CLIENT),
            kind: MessageKind::Request,
            reason
        })]
    );

    let high = backup.high_watermark();
    let cases: Vec<(&str, Message, MessageKind, Reject)> = vec![
        (
            "a PRE-PREPARE above the high watermark",
            Message::PrePrepare(forged(&kit, header(0, high + 1, vec![]))),
            MessageKind::PrePrepare,
            Reject::OutsideWatermarks,
        ),
        (
            "a PRE-PREPARE with more requests than max_batch_size",
            Message::PrePrepare(forged(&kit, header(0, 1, (1..=5).map(|t| kit.request(t, 1)).collect()))),
            MessageKind::PrePrepare,
            Reject::BatchTooLarge,
        ),
        (
            "a PREPARE above the high watermark",
            Message::Prepare(forged(
                &kit,
                crate::Prepare {
                    view: 0,
                    seq: high + 1,
                    digest: crate::Digest::default(),
                    replica: ReplicaId(1),
                },
            )),
            MessageKind::Prepare,
            Reject::OutsideWatermarks,
        ),
        (
            "a VIEW-CHANGE with more certificates than one window",
            Message::ViewChange(forged(
                &kit,
                view_change(
                    &kit,
                    1,
                    1,
                    (1..=window + 1).map(|seq| prepared_cert(&kit, 0, seq, vec![], &[2, 3])).collect(),
                )
                .into_payload(),
            )),
            MessageKind::ViewChange,
            Reject::InvalidCertificate(CertificateRule::BeyondWindow),
        ),
        (
            "a NEW-VIEW with more re-proposals than one window",
            Message::NewView(forged(
                &kit,
                NewView {
                    view: 1,
                    primary: ReplicaId(1),
                    view_changes: vec![],
                    pre_prepares: (1..=window + 1).map(|seq| forged(&kit, header(1, seq, vec![]))).collect(),
                },
            )),
            MessageKind::NewView,
            Reject::InvalidCertificate(CertificateRule::BeyondWindow),
        ),
        (
            "a NEW-VIEW with more view-changes than replicas",
            Message::NewView(forged(
                &kit,
                NewView {
                    view: 1,
                    primary: ReplicaId(1),
                    view_changes: (0..5).map(|_| view_change(&kit, 0, 1, vec![])).collect(),
                    pre_prepares: vec![],
                },
            )),
            MessageKind::NewView,
            Reject::InvalidCertificate(CertificateRule::RepeatedSigner),
        ),
        (
            "a NEW-VIEW for the view the replica already runs",
            Message::NewView(forged(
                &kit,
                NewView { view: 0, primary: ReplicaId(0), view_changes: vec![], pre_prepares: vec![] },
            )),
            MessageKind::NewView,
            Reject::StaleView,
        ),
    ];
    for (case, message, kind, reason) in cases {
        let from = match message.author() {
            Author::Replica(id) => id.0,
            Author::Client(_) => unreachable!("replica messages only"),
        };
        assert_eq!(step(&mut backup, T, message), rejected(from, kind, reason), "{case}");
    }
    assert_eq!(backup.rejections().get(&Reject::BadSignature), None, "no signature was checked");
}
