//! State transfer against a Byzantine peer (issue 5 test 3): a snapshot that
//! does not match the certified digest, and a stream of chunks without end,
//! are refused; the replica fetches from an honest peer and its transfer
//! buffer never exceeds the configured bound.

use super::kit::{drain, rejected, step, Kit, CLIENT};
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
                crate::CachedReply { request: crate::Digest::of(b"r"), result: vec![5; 200], withheld: None },
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

/// Replica 3 after it fetched and installed checkpoint 4 from replica 1:
/// it holds that state and serves it. Returns the replica, the state's
/// bytes and its proof.
fn serving_replica(kit: &Kit) -> (crate::Replica<super::kit::Summer>, Vec<u8>, CheckpointProof) {
    let mut replica = kit.replica(3);
    let (state, digest, proof, _) = checkpoint_4(kit);
    let stable = Signed::sign(StableCheckpoint { proof: proof.clone(), replica: ReplicaId(1) }, kit.key(1));
    step(&mut replica, T, Message::StableCheckpoint(stable));
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in state.chunks(64) {
        out = step(&mut replica, T, chunk(kit, 1, &proof, offset, state.len() as u64, piece));
        offset += piece.len() as u64;
    }
    assert!(out.contains(&Output::Event(Event::StateTransferred { seq: 4, state_digest: digest })));
    (replica, state, proof)
}

fn fetch(kit: &Kit, from: u32, proof: &CheckpointProof, offset: u64) -> Message {
    let body = crate::FetchState {
        seq: proof.seq,
        state_digest: proof.state_digest,
        offset,
        replica: ReplicaId(from),
    };
    Message::FetchState(Signed::sign(body, kit.key(from)))
}

/// The offsets of the chunks `out` sends to `to`.
fn chunks_sent(out: &[Output], to: u32) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to: t, message: Message::StateChunk(c) } if t.0 == to => Some(c.payload().offset),
            _ => None,
        })
        .collect()
}

/// Issue 21, point 3: a peer is served state at the pace of a transfer.
/// Each request that continues the last chunk is answered at once, so a
/// whole pass goes at the speed of the round trips; asking for the same
/// chunk again, or starting over, is refused as `TooFrequent` until the
/// fetcher's retry interval (half the view-change timeout, plus 1 ms) has
/// passed since the last answer.
#[test]
fn a_peer_asking_for_state_in_a_loop_is_answered_at_the_pace_of_a_transfer() {
    let kit = Kit::new(4);
    let (mut replica, state, proof) = serving_replica(&kit);
    let mut now = Time(1_000);
    let mut offset = 0;
    while offset < state.len() as u64 {
        let out = step(&mut replica, now, fetch(&kit, 2, &proof, offset));
        assert_eq!(chunks_sent(&out, 2), vec![offset], "a continuing fetch is answered at once");
        offset = (offset + 64).min(state.len() as u64);
    }
    let out = step(&mut replica, now, fetch(&kit, 2, &proof, offset));
    assert_eq!(chunks_sent(&out, 2), vec![offset], "the end continues the last chunk: one empty chunk");
    let last = state.len() as u64 - (state.len() as u64 % 64);
    let too_soon = [offset, last, 0];
    for again in too_soon {
        let out = step(&mut replica, now, fetch(&kit, 2, &proof, again));
        assert_eq!(out, rejected(2, crate::MessageKind::FetchState, Reject::TooFrequent), "offset {again}");
    }
    let retry = Kit::config().view_change_timeout_ms / 2 + 1;
    now = Time(now.0 + retry - 1);
    let out = step(&mut replica, now, fetch(&kit, 2, &proof, 0));
    assert_eq!(chunks_sent(&out, 2), Vec::<u64>::new(), "1 ms before the retry interval");
    now = Time(now.0 + 1);
    let out = step(&mut replica, now, fetch(&kit, 2, &proof, 0));
    assert_eq!(chunks_sent(&out, 2), vec![0], "a new pass once the retry interval passed");
    let out = step(&mut replica, now, fetch(&kit, 0, &proof, 0));
    assert_eq!(chunks_sent(&out, 0), vec![0], "another peer is paced on its own");
}
