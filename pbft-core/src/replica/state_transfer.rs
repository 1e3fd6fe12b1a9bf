//! State transfer (OSDI'99 §4.3, TOCS'02 §5.3): a replica behind a stable
//! checkpoint fetches that checkpoint's state from peers in bounded chunks,
//! checks it against the certified digest, and installs it.
//!
//! Every chunk but the last is exactly `state_chunk_bytes` long, and each
//! must arrive within the fetch timeout (half the view-change timeout) of
//! the request for it, or the fetch moves on to the next peer. So one peer
//! holds a transfer of S bytes up for at most ⌈S / state_chunk_bytes⌉ fetch
//! timeouts before its data is checked, and f lying or slow peers for at
//! most f times that before an honest peer is asked.

use super::checkpoint_state::CheckpointState;
use super::{Replica, Timer};
use crate::app::ReplicatedStateMachine;
use crate::digest::Digest;
use crate::ids::{ReplicaId, SeqNum};
use crate::message::{CheckpointProof, FetchState, Message, StableCheckpoint, StateChunk};
use crate::output::Event;
use crate::reject::Reject;
use crate::signed::{Signable, Signed};
use crate::time::Time;

/// A fetch in progress: the certified checkpoint, the peer asked, and the
/// bytes received so far (never more than the configured maximum).
#[derive(Debug)]
pub(crate) struct Transfer {
    proof: CheckpointProof,
    peer: ReplicaId,
    buffer: Vec<u8>,
    total: Option<u64>,
}

impl Transfer {
    /// Bytes held for the transfer.
    pub(crate) fn held(&self) -> usize {
        self.buffer.len()
    }
}

impl<A: ReplicatedStateMachine> Replica<A> {
    /// Starts (or retargets) a fetch of the state proven by `proof`, if it is
    /// ahead of what this replica has executed and of any fetch in progress.
    pub(super) fn start_transfer(&mut self, now: Time, proof: CheckpointProof, from: ReplicaId) {
        if proof.seq <= self.last_executed || self.transfer.as_ref().is_some_and(|t| t.proof.seq >= proof.seq)
        {
            return;
        }
        self.emit(Event::FellBehind { seq: proof.seq, last_executed: self.last_executed });
        let peer = if from == self.id { self.next_peer(from) } else { from };
        self.transfer = Some(Transfer { proof, peer, buffer: Vec::new(), total: None });
        self.request_chunk(now);
    }

    fn next_peer(&self, after: ReplicaId) -> ReplicaId {
        let n = self.quorum.n() as u32;
        let mut peer = ReplicaId((after.0 + 1) % n);
        if peer == self.id {
            peer = ReplicaId((peer.0 + 1) % n);
        }
        peer
    }

    fn request_chunk(&mut self, now: Time) {
        let Some(transfer) = &self.transfer else { return };
        let fetch = FetchState {
            seq: transfer.proof.seq,
            state_digest: transfer.proof.state_digest,
            offset: transfer.buffer.len() as u64,
            replica: self.id,
        };
        let peer = transfer.peer;
        self.send(peer, Message::FetchState(Signed::sign(fetch, &self.secret)));
        self.timers.set(Timer::Fetch, now + self.config.view_change_timeout_ms / 2 + 1);
    }

    /// The peer did not answer in time, or answered with bad data: ask the
    /// next one, starting over.
    fn switch_peer(&mut self, now: Time) {
        let Some(peer) = self.transfer.as_ref().map(|t| t.peer) else { return };
        let next = self.next_peer(peer);
        if let Some(transfer) = &mut self.transfer {
            transfer.peer = next;
            transfer.buffer = Vec::new();
            transfer.total = None;
        }
        self.request_chunk(now);
    }

    pub(super) fn on_fetch_timeout(&mut self, now: Time) {
        self.switch_peer(now);
    }

    /// Drops a fetch that execution has overtaken.
    pub(super) fn abandon_stale_transfer(&mut self) {
        if self.transfer.as_ref().is_some_and(|t| t.proof.seq <= self.last_executed) {
            self.transfer = None;
            self.timers.cancel(Timer::Fetch);
        }
    }

    pub(super) fn on_stable_checkpoint(&mut self, now: Time, message: Signed<StableCheckpoint>) {
        let body = message.into_payload();
        if body.proof.seq <= self.last_executed {
            self.reject(
                crate::signed::Author::Replica(body.replica),
                StableCheckpoint::KIND,
                Reject::Duplicate,
            );
            return;
        }
        self.start_transfer(now, body.proof, body.replica);
    }

    /// Serves a chunk of a checkpoint this replica holds the state of.
    pub(super) fn on_fetch_state(&mut self, _now: Time, fetch: Signed<FetchState>) {
        let body = fetch.payload();
        let Some(state) = self.checkpoint_states.get(&body.seq) else { return };
        if self.own_checkpoints_digest(body.seq) != Some(body.state_digest) {
            return;
        }
        let Ok(offset) = usize::try_from(body.offset) else { return };
        let total_len = state.len();
        if offset > total_len {
            return;
        }
        let chunk = StateChunk {
            seq: body.seq,
            state_digest: body.state_digest,
            offset: body.offset,
            total_len: total_len as u64,
            data: state.read(offset, self.config.state_chunk_bytes),
            replica: self.id,
        };
        let to = body.replica;
        self.send(to, Message::StateChunk(Signed::sign(chunk, &self.secret)));
    }

    fn own_checkpoints_digest(&self, seq: SeqNum) -> Option<Digest> {
        if self.stable_checkpoint.seq == seq {
            return Some(self.stable_checkpoint.state_digest);
        }
        self.own_checkpoints.get(&seq).copied()
    }

    /// Why a chunk does not continue the transfer in progress.
    fn check_chunk(&self, chunk: &StateChunk) -> Result<(), Reject> {
        let Some(transfer) = &self.transfer else { return Err(Reject::Duplicate) };
        if chunk.replica != transfer.peer
            || chunk.seq != transfer.proof.seq
            || chunk.state_digest != transfer.proof.state_digest
            || chunk.offset != transfer.buffer.len() as u64
        {
            return Err(Reject::Duplicate);
        }
        let end = chunk.offset.saturating_add(chunk.data.len() as u64);
        if chunk.total_len > self.config.max_state_bytes
            || transfer.total.is_some_and(|total| total != chunk.total_len)
            || chunk.data.len() > self.config.state_chunk_bytes
            || end > chunk.total_len
            || (chunk.data.is_empty() && end < chunk.total_len)
        {
            return Err(Reject::BufferFull);
        }
        let full_chunk = (chunk.total_len - chunk.offset).min(self.config.state_chunk_bytes as u64);
        if (chunk.data.len() as u64) < full_chunk {
            return Err(Reject::ShortChunk);
        }
        Ok(())
    }

    pub(super) fn on_state_chunk(&mut self, now: Time, chunk: Signed<StateChunk>) {
        let chunk = chunk.into_payload();
        match self.check_chunk(&chunk) {
            Ok(()) => {}
            Err(Reject::Duplicate) => return,
            Err(reason) => {
                self.reject(crate::signed::Author::Replica(chunk.replica), StateChunk::KIND, reason);
                self.switch_peer(now);
                return;
            }
        }
        let Some(transfer) = &mut self.transfer else { return };
        if transfer.total.is_none() {
            // Room for the whole state at once: growing by doubling would
            // keep up to twice the state, and the buffer becomes the
            // checkpoint copy this replica serves. `check_chunk` bounded the
            // total by `max_state_bytes`.
            let total = usize::try_from(chunk.total_len).unwrap_or(usize::MAX);
            transfer.buffer.reserve_exact(total);
        }
        transfer.total = Some(chunk.total_len);
        transfer.buffer.extend_from_slice(&chunk.data);
        if (transfer.buffer.len() as u64) < chunk.total_len {
            self.request_chunk(now);
            return;
        }
        self.finish_transfer(now);
    }

    /// All bytes arrived: install them if they match the certified digest,
    /// otherwise start over with another peer.
    fn finish_transfer(&mut self, now: Time) {
        let Some(transfer) = self.transfer.take() else { return };
        if transfer.proof.seq <= self.last_executed {
            // Execution overtook the fetch; the fetched state is older than ours.
            self.timers.cancel(Timer::Fetch);
            return;
        }
        let proof = transfer.proof;
        let installed = CheckpointState::decode(transfer.buffer).and_then(|(state, replies)| {
            if state.digest() != proof.state_digest {
                return None;
            }
            self.app.restore_pages(state.pages()).ok()?;
            Some((state, replies))
        });
        let Some((state, replies)) = installed else {
            let peer = transfer.peer;
            self.reject(crate::signed::Author::Replica(peer), StateChunk::KIND, Reject::DigestMismatch);
            self.transfer = Some(Transfer { proof, peer, buffer: Vec::new(), total: None });
            self.switch_peer(now);
            return;
        };
        self.timers.cancel(Timer::Fetch);
        let window = self.config.max_pending_per_client;
        for (client, client_replies) in &replies {
            self.pending.remove_settled(*client, client_replies, window);
        }
        self.reply_cache = replies;
        let (seq, state_digest) = (proof.seq, proof.state_digest);
        self.last_executed = seq;
        self.own_checkpoints.insert(seq, state_digest);
        self.checkpoint_states.insert(seq, state);
        self.emit(Event::StateTransferred { seq, state_digest });
        self.make_stable(now, proof);
        self.try_execute(now);
    }
}
