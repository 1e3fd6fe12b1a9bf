//! State transfer against a Byzantine peer (issue 5 test 3): a snapshot that
//! does not match the certified digest, and a stream of chunks without end,
//! are refused; the replica fetches from an honest peer and its transfer
//! buffer never exceeds the configured bound.

use super::kit::{drain, step, Kit, CLIENT};
use crate::replica::checkpoint_state::CheckpointState;
use crate::{
    Checkpoint, CheckpointProof, ClientReplies, Event, Message, Output, Page, Reject, ReplicaId, Signed,
    StableCheckpoint, StateChunk, Time,
};
use std::collections::BTreeMap;

const T: Time = Time(10);

fn chunk(kit: &Kit, from: u32, proof: &CheckpointProof, offset: u64, total_len: u64, data: &[u8]) -> Message {
    let body = StateChunk {
        seq: proof.seq,
        state_digest: proof.state_digest,
        offset,
        total_len,
        data: data.to_vec(),
        replica: ReplicaId(from),
    };
    Message::StateChunk(Signed::sign(body, kit.key(from)))
}

fn fetch_target(out: &[Output]) -> Option<(ReplicaId, u64)> {
    out.iter().find_map(|o| match o {
        Output::Send { to, message: Message::FetchState(f) } => Some((*to, f.payload().offset)),
        _ => None,
    })
}

/// The certified state at checkpoint 4: the app at 5, one cached reply;
/// about 230 bytes, so it travels in several 64-byte chunks. Returns its
/// bytes, digest, proof (votes of replicas 0-2) and reply cache.
fn checkpoint_4(
    kit: &Kit,
) -> (Vec<u8>, crate::Digest, CheckpointProof, BTreeMap<crate::ClientId, ClientReplies>) {
    let replies = BTreeMap::from([(
        CLIENT,
        ClientReplies {
            newest: 1,
            recent: BTreeMap::from([(
                1,
                crate::CachedReply { request: crate::Digest::of(b"r"), result: vec![5; 200] },
            )]),
        },
    )]);
    let certified = CheckpointState::new(vec![Page::new(5u64.to_le_bytes().to_vec())], &replies);
    let digest = certified.digest();
    let checkpoints = (0..3)
        .map(|r| Signed::sign(Checkpoint { seq: 4, state_digest: digest, replica: ReplicaId(r) }, kit.key(r)))
        .collect();
    (certified.to_bytes(), digest, CheckpointProof { seq: 4, state_digest: digest, checkpoints }, replies)
}

/// Issue 21, point 2: a peer that trickles the state (a chunk shorter than
/// `state_chunk_bytes` that does not end it) is refused as soon as it does,
/// and the fetch asks the next peer from the start; a short last chunk is
/// what every honest transfer ends with, and is taken.
#[test]
fn a_peer_that_trickles_the_state_is_left_at_once() {
    let kit = Kit::new(4);
    let mut behind = kit.replica(3);
    let (state, digest, proof, _) = checkpoint_4(&kit);
    let stable = Signed::sign(StableCheckpoint { proof: proof.clone(), replica: ReplicaId(0) }, kit.key(0));
    let out = step(&mut behind, T, Message::StableCheckpoint(stable));
    assert_eq!(fetch_target(&out), Some((ReplicaId(0), 0)));
    let total = state.len() as u64;
    let out = step(&mut behind, T, chunk(&kit, 0, &proof, 0, total, &state[..1]));
    let rejected = Output::Event(Event::Rejected {
        from: crate::Author::Replica(ReplicaId(0)),
        kind: crate::MessageKind::StateChunk,
        reason: Reject::ShortChunk,
    });
    assert_eq!(out.first(), Some(&rejected));
    assert_eq!(behind.buffer_usage().transfer_bytes, 0, "the trickled byte was not kept");
    assert_eq!(fetch_target(&out), Some((ReplicaId(1), 0)), "moved on to the next peer, from the start");
    let mut offset = 0;
    let mut out = Vec::new();
    for piece in state.chunks(64) {
        out = step(&mut behind, T, chunk(&kit, 1, &proof, offset, total, piece));
        offset += piece.len() as u64;
    }
    assert!(state.len() % 64 != 0, "the last chunk is short");
    assert!(out.contains(&Output::Event(Event::StateTransferred { seq: 4, state_digest: digest })));
}

#[test]
fn byzantine_state_is_refused_and_an_honest_peer_supplies_it() {
    let kit = Kit::new(4);
    let mut behind = kit.replica(3);
    let limit = Kit::config().max_state_bytes as usize;

    let (state, digest, proof, replies) = checkpoint_4(&kit);

    // The traitor, replica 0, tells replica 3 it is behind and is asked first.
    let stable = Signed::sign(StableCheckpoint { proof: proof.clone(), replica: ReplicaId(0) }, kit.key(0));
    let out = step(&mut behind, T, Message::StableCheckpoint(stable));
    assert_eq!(fetch_target(&out), Some((ReplicaId(0), 0)));

    // An endless stream: a total beyond the limit is refused at once.
    let out = step(&mut behind, T, chunk(&kit, 0, &proof, 0, limit as u64 + 1, &[0; 64]));
    assert!(out.contains(&Output::Event(Event::Rejected {
        from: crate::Author::Replica(ReplicaId(0)),
        kind: crate::MessageKind::StateChunk,
        reason: Reject::BufferFull,
    })));
    assert_eq!(fetch_target(&out), Some((ReplicaId(1), 0)), "moved on to the next peer");
    assert_eq!(behind.buffer_usage().transfer_bytes, 0);

    // Replica 1 is asked now; suppose it too lies: a well-formed state of the
    // right length whose digest does not match. Chunks past the end are refused.
    let forged = CheckpointState::new(vec![Page::new(9u64.to_le_bytes().to_vec())], &replies).to_bytes();
    let mut offset = 0;
    let mut last = Vec::new();
    for piece in forged.chunks(64) {
        last = step(&mut behind, T, chunk(&kit, 1, &proof, offset, forged.len() as u64, piece));
        offset += piece.len() as u64;
        assert!(behind.buffer_usage().transfer_bytes <= limit);
    }
    assert!(last.contains(&Output::Event(Event::Rejected {
        from: crate::Author::Replica(ReplicaId(1)),
        kind: crate::MessageKind::StateChunk,
        reason: Reject::DigestMismatch,
    })));
    assert_eq!(fetch_target(&last), Some((ReplicaId(2), 0)));
    assert_eq!(behind.last_executed(), 0, "wrong state was not installed");
    assert_eq!(behind.app().0, 0);
    // Chunks from a peer that was not asked are ignored.
    assert_eq!(step(&mut behind, T, chunk(&kit, 1, &proof, 0, state.len() as u64, &state[..16])), vec![]);

    // Replica 2 is honest.
    let mut offset = 0;
    let mut out = Vec::new();
    for piece in state.chunks(64) {
        out = step(&mut behind, T, chunk(&kit, 2, &proof, offset, state.len() as u64, piece));
        offset += piece.len() as u64;
    }
    assert!(out.contains(&Output::Event(Event::StateTransferred { seq: 4, state_digest: digest })));
    assert_eq!((behind.last_executed(), behind.low_watermark(), behind.app().0), (4, 4, 5));
    assert_eq!(behind.reply_cache(), &replies);
    assert_eq!(behind.state_digest(), digest);
    assert_eq!(behind.buffer_usage().transfer_bytes, 0);
    drain(&mut behind);
}
