//! A rejected certificate names the rule it breaks (checkpoint proofs
//! OSDI'99 §4.3, prepared certificates §4.2, view changes §4.4), so logs and
//! counters say why, not just that, a certificate was refused.

use super::kit::{rejected, step, Kit};
use super::view_change::{prepared_cert, view_change};
use crate::{
    CertificateRule, Checkpoint, CheckpointProof, Commit, Committed, Digest, Message, MessageKind, NewView,
    PrePrepare, PreparedCert, Reject, ReplicaId, Signed, StableCheckpoint, Time, ViewChange,
};

const T: Time = Time(10);

/// A CHECKPOINT vote from `from` for `digest` at `seq`.
fn vote(kit: &Kit, from: u32, seq: u64, digest: Digest) -> Signed<Checkpoint> {
    Signed::sign(Checkpoint { seq, state_digest: digest, replica: ReplicaId(from) }, kit.key(from))
}

/// A STABLE-CHECKPOINT from replica 3 carrying `proof`.
fn stable(kit: &Kit, proof: CheckpointProof) -> Message {
    Message::StableCheckpoint(Signed::sign(StableCheckpoint { proof, replica: ReplicaId(3) }, kit.key(3)))
}

/// A NEW-VIEW for view 1 from its primary, replica 1.
fn new_view(
    kit: &Kit,
    view_changes: Vec<Signed<ViewChange>>,
    pre_prepares: Vec<Signed<PrePrepare>>,
) -> Message {
    let body = NewView { view: 1, primary: ReplicaId(1), view_changes, pre_prepares };
    Message::NewView(Signed::sign(body, kit.key(1)))
}

/// Verification refuses each broken certificate with the rule it breaks.
#[test]
fn each_broken_certificate_names_its_rule() {
    let kit = Kit::new(4);
    let (state, other) = (Digest::of(b"state"), Digest::of(b"other"));
    let batch = || vec![kit.request(1, 1)];
    let quorum_for_view_1 = || vec![view_change(&kit, 0, 1, vec![]), view_change(&kit, 2, 1, vec![])];
    let pp = kit.pre_prepare(0, 1, batch());
    let digest = pp.payload().digest;
    let commits = |seqs: [u64; 3]| -> Vec<Signed<Commit>> {
        (0..3).map(|i| kit.commit(i, 0, seqs[i as usize], digest)).collect()
    };
    let mut genesis_with_a_vote = CheckpointProof::genesis();
    genesis_with_a_vote.checkpoints.push(vote(&kit, 0, 0, Digest::default()));
    let cases: Vec<(&str, Message, CertificateRule)> = vec![
        (
            "a prepared certificate counting replica 2 twice",
            Message::ViewChange(view_change(&kit, 3, 1, vec![prepared_cert(&kit, 0, 1, batch(), &[2, 2])])),
            CertificateRule::RepeatedSigner,
        ),
        (
            "a checkpoint proof with 2 of the 3 votes it needs",
            stable(
                &kit,
                CheckpointProof {
                    seq: 4,
                    state_digest: state,
                    checkpoints: vec![vote(&kit, 0, 4, state), vote(&kit, 1, 4, state)],
                },
            ),
            CertificateRule::TooFewSigners,
        ),
        (
            "a checkpoint proof with a vote for another digest",
            stable(
                &kit,
                CheckpointProof {
                    seq: 4,
                    state_digest: state,
                    checkpoints: vec![
                        vote(&kit, 0, 4, state),
                        vote(&kit, 1, 4, state),
                        vote(&kit, 2, 4, other),
                    ],
                },
            ),
            CertificateRule::VoteMismatch,
        ),
        (
            "a proof of commitment with a commit for another sequence number",
            Message::Committed(Signed::sign(
                Committed { pre_prepare: pp.clone(), commits: commits([1, 1, 2]), replica: ReplicaId(3) },
                kit.key(3),
            )),
            CertificateRule::VoteMismatch,
        ),
        (
            "a prepared certificate counting the primary's prepare",
            Message::ViewChange(view_change(&kit, 3, 1, vec![prepared_cert(&kit, 0, 1, batch(), &[0, 3])])),
            CertificateRule::PrepareFromPrimary,
        ),
        (
            "a NEW-VIEW for view 1 holding a view-change for view 2",
            new_view(&kit, [quorum_for_view_1(), vec![view_change(&kit, 3, 2, vec![])]].concat(), vec![]),
            CertificateRule::WrongView,
        ),
        (
            "a NEW-VIEW for view 1 holding a pre-prepare of view 0",
            new_view(
                &kit,
                [quorum_for_view_1(), vec![view_change(&kit, 3, 1, vec![])]].concat(),
                vec![pp.clone()],
            ),
            CertificateRule::WrongView,
        ),
        (
            "a VIEW-CHANGE whose certificate carries its batch",
            Message::ViewChange(view_change(
                &kit,
                3,
                1,
                vec![PreparedCert { pre_prepare: pp.clone(), ..prepared_cert(&kit, 0, 1, batch(), &[2, 3]) }],
            )),
            CertificateRule::BatchIncluded,
        ),
        (
            "a NEW-VIEW whose pre-prepare carries its batch",
            new_view(
                &kit,
                [quorum_for_view_1(), vec![view_change(&kit, 3, 1, vec![])]].concat(),
                vec![kit.pre_prepare(1, 1, batch())],
            ),
            CertificateRule::BatchIncluded,
        ),
        (
            "a VIEW-CHANGE for view 1 with a certificate prepared in view 1",
            Message::ViewChange(view_change(&kit, 3, 1, vec![prepared_cert(&kit, 1, 1, batch(), &[2, 3])])),
            CertificateRule::PreparedInNewView,
        ),
        (
            "a VIEW-CHANGE listing sequence number 2 before 1",
            Message::ViewChange(view_change(
                &kit,
                3,
                1,
                vec![
                    prepared_cert(&kit, 0, 2, batch(), &[2, 3]),
                    prepared_cert(&kit, 0, 1, batch(), &[2, 3]),
                ],
            )),
            CertificateRule::CertificatesOutOfOrder,
        ),
        (
            "a VIEW-CHANGE whose initial checkpoint carries a vote",
            Message::ViewChange(Signed::sign(
                ViewChange {
                    new_view: 1,
                    replica: ReplicaId(3),
                    checkpoint: genesis_with_a_vote,
                    prepared: vec![],
                },
                kit.key(3),
            )),
            CertificateRule::VotesForGenesis,
        ),
    ];
    for (case, message, rule) in cases {
        assert_eq!(kit.book.verify(message).err(), Some(Reject::InvalidCertificate(rule)), "{case}");
    }
}

/// A VIEW-CHANGE whose certificates reach past one watermark window above
/// its checkpoint (window 8 in the kit) is refused by the replica as beyond
/// the window, though each certificate is valid on its own.
#[test]
fn a_view_change_reaching_beyond_the_window_says_so() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(2);
    let cert = prepared_cert(&kit, 0, 9, vec![kit.request(1, 1)], &[1, 3]);
    let out = step(&mut backup, T, Message::ViewChange(view_change(&kit, 3, 1, vec![cert])));
    assert_eq!(
        out,
        rejected(3, MessageKind::ViewChange, Reject::InvalidCertificate(CertificateRule::BeyondWindow))
    );
}

/// A CHECKPOINT at a sequence number off the checkpoint interval (4 in the
/// kit) is no certificate: it is refused as not a checkpoint's sequence number.
#[test]
fn a_checkpoint_off_the_interval_is_refused() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let out = step(&mut backup, T, Message::Checkpoint(vote(&kit, 2, 3, Digest::of(b"state"))));
    assert_eq!(out, rejected(2, MessageKind::Checkpoint, Reject::NotACheckpointSeq));
}

/// The rule shows in the rejection's text, which status reports and logs print.
#[test]
fn the_rule_shows_in_the_rejection_text() {
    let reason = Reject::InvalidCertificate(CertificateRule::TooFewSigners);
    assert_eq!(reason.to_string(), "InvalidCertificate(TooFewSigners)");
}
