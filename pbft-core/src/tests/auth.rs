//! The signed-message layer as the replica sees it: forged, unknown and
//! cross-kind signatures are rejected and counted.

use super::kit::{step, Kit};
use crate::{
    Author, ClientId, Commit, Event, Message, MessageKind, Output, Reject, ReplicaId, Request, SecretKey,
    Signable, Signed, Time,
};

const T: Time = Time(10);

/// `signed` with one bit of its signature's byte `byte` flipped: a forgery.
fn flipped<T: Signable + Clone>(signed: &Signed<T>, byte: usize) -> Signed<T> {
    let mut signature = signed.signature().to_vec();
    signature[byte] ^= 1;
    Signed::from_parts(signed.payload().clone(), signature)
}

fn rejection(out: &[Output]) -> Option<(Author, MessageKind, Reject)> {
    match out {
        [Output::Event(Event::Rejected { from, kind, reason })] => Some((*from, *kind, *reason)),
        _ => None,
    }
}

/// Issue test 9: a signature with a flipped bit, a signature by another
/// replica's key, and a truncated signature are all rejected as bad signatures.
#[test]
fn forged_signatures_are_rejected_and_counted() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let prepare = kit.prepare(2, 0, 1, crate::Digest::of(b"x"));
    let forgeries = [
        flipped(&prepare, 10),
        Signed::sign(prepare.payload().clone(), kit.key(3)),
        Signed::from_parts(prepare.payload().clone(), prepare.signature()[..63].to_vec()),
    ];
    for forged in forgeries {
        let out = step(&mut backup, T, Message::Prepare(forged));
        assert_eq!(
            rejection(&out),
            Some((Author::Replica(ReplicaId(2)), MessageKind::Prepare, Reject::BadSignature))
        );
    }
    assert_eq!(backup.rejections()[&Reject::BadSignature], 3);
    assert_eq!(backup.buffer_usage().log_messages, 0, "nothing forged was stored");
}

/// Issue test 9: messages from signers outside the key book are rejected and counted.
#[test]
fn unknown_signers_are_rejected_and_counted() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let stranger = SecretKey::from_seed([99; 32]);
    let prepare = Signed::sign(
        crate::Prepare { view: 0, seq: 1, digest: crate::Digest::of(b"x"), replica: ReplicaId(9) },
        &stranger,
    );
    let out = step(&mut backup, T, Message::Prepare(prepare));
    assert_eq!(
        rejection(&out),
        Some((Author::Replica(ReplicaId(9)), MessageKind::Prepare, Reject::UnknownSigner))
    );
    let request = Signed::sign(
        Request { client: ClientId(1234), timestamp: 1, op: vec![1], kind: crate::RequestKind::Write },
        &stranger,
    );
    let out = step(&mut backup, T, Message::Request(request));
    assert_eq!(
        rejection(&out),
        Some((Author::Client(ClientId(1234)), MessageKind::Request, Reject::UnknownSigner))
    );
    // A request inside a pre-prepare from an unknown client spoils the whole pre-prepare.
    let pp = kit.pre_prepare(
        0,
        1,
        vec![Signed::sign(
            Request { client: ClientId(1234), timestamp: 1, op: vec![1], kind: crate::RequestKind::Write },
            &stranger,
        )],
    );
    let out = step(&mut backup, T, Message::PrePrepare(pp));
    assert_eq!(
        rejection(&out),
        Some((Author::Replica(ReplicaId(0)), MessageKind::PrePrepare, Reject::UnknownSigner))
    );
    assert_eq!(backup.rejections()[&Reject::UnknownSigner], 3);
}

/// Issue test 9: a PREPARE's signature replayed on a COMMIT with the same
/// fields does not verify: the kind is bound into what is signed.
#[test]
fn prepare_signature_does_not_verify_as_commit() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let digest = crate::Digest::of(b"x");
    let prepare = kit.prepare(2, 0, 1, digest);
    let commit = Signed::from_parts(
        Commit { view: 0, seq: 1, digest, replica: ReplicaId(2) },
        prepare.signature().to_vec(),
    );
    let out = step(&mut backup, T, Message::Commit(commit));
    assert_eq!(
        rejection(&out),
        Some((Author::Replica(ReplicaId(2)), MessageKind::Commit, Reject::BadSignature))
    );
    assert_eq!(backup.rejections()[&Reject::BadSignature], 1);
}

/// A message that claims to come from the receiving replica itself is dropped.
#[test]
fn own_messages_from_the_network_are_dropped() {
    let kit = Kit::new(4);
    let mut backup = kit.replica(1);
    let out = step(&mut backup, T, Message::Prepare(kit.prepare(1, 0, 1, crate::Digest::of(b"x"))));
    assert_eq!(
        rejection(&out),
        Some((Author::Replica(ReplicaId(1)), MessageKind::Prepare, Reject::FromSelf))
    );
}

/// Requests that arrive together are checked as one signature batch; when
/// one of them is forged the batch fails and each is checked alone, so the
/// forgery alone is refused and the genuine ones are admitted.
#[test]
fn requests_received_together_are_judged_one_by_one_when_their_batch_fails() {
    let kit = Kit::new(4);
    let genuine: Vec<Message> = (1..=4).map(|t| Message::Request(kit.request(t, 1))).collect();
    let mut all_good = kit.replica(1);
    all_good.receive_all(T, genuine.clone());
    assert_eq!(all_good.buffer_usage().pending_requests, 4);
    assert!(all_good.rejections().is_empty());

    let mut with_forgery = kit.replica(1);
    let mut messages = genuine;
    let Message::Request(third) = &messages[2] else { unreachable!("built as requests") };
    messages[2] = Message::Request(flipped(third, 5));
    with_forgery.receive_all(T, messages);
    assert_eq!(with_forgery.buffer_usage().pending_requests, 3);
    assert_eq!(with_forgery.rejections()[&Reject::BadSignature], 1);
    assert_eq!(with_forgery.rejections().len(), 1);
}

/// A backup that receives a whole round at once (the PRE-PREPARE with its
/// requests, the prepares and the commits) checks their signatures as one
/// batch. With every signature genuine it executes the batch and refuses
/// nothing as forged; with one commit forged the batch fails, each message is
/// checked alone, the forgery alone is refused, and the genuine commit from
/// the remaining replica still completes the quorum.
#[test]
fn a_round_received_together_is_judged_one_by_one_when_its_batch_fails() {
    let kit = Kit::new(4);
    let pre_prepare = kit.pre_prepare(0, 1, vec![kit.request(1, 1), kit.request(2, 2)]);
    let digest = pre_prepare.payload().digest;
    let round = vec![
        Message::PrePrepare(pre_prepare),
        Message::Prepare(kit.prepare(2, 0, 1, digest)),
        Message::Prepare(kit.prepare(3, 0, 1, digest)),
        Message::Commit(kit.commit(2, 0, 1, digest)),
        Message::Commit(kit.commit(0, 0, 1, digest)),
        Message::Commit(kit.commit(3, 0, 1, digest)),
    ];
    let mut all_good = kit.replica(1);
    all_good.receive_all(T, round.clone());
    assert_eq!(all_good.last_executed(), 1);
    assert_eq!(all_good.rejections().get(&Reject::BadSignature), None);

    let mut with_forgery = kit.replica(1);
    let mut messages = round;
    let Message::Commit(from_two) = &messages[3] else { unreachable!("built as a commit") };
    messages[3] = Message::Commit(flipped(from_two, 7));
    with_forgery.receive_all(T, messages);
    assert_eq!(with_forgery.last_executed(), 1);
    assert_eq!(with_forgery.rejections()[&Reject::BadSignature], 1);
}
