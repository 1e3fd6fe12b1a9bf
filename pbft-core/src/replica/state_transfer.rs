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
//!
//! Under load the cluster makes newer checkpoints stable while a transfer
//! runs. A transfer under way is not restarted for them: it finishes, then
//! the newest one learned meanwhile is fetched. The peer keeps the state
//! being fetched past its own newer stable checkpoints for as long as the
//! fetch goes on (a view-change timeout between requests at most), one such
//! state per fetching peer. So a replica behind completes a transfer every
//! ⌈S / state_chunk_bytes⌉ round trips, and its lag stays within what the
//! cluster executes in that time plus one checkpoint interval.

use super::checkpoint_state::CheckpointState;
use super::{Replica, Timer};
use crate::app::ReplicatedStateMachine;
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
    /// A newer stable checkpoint learned while this transfer made progress:
    /// fetched next, when this one ends or fails, instead of restarting
    /// from zero at once (under load that restarted every transfer slower
    /// than one checkpoint interval, for ever).
    newer: Option<CheckpointProof>,
}

/// The last chunk served to a peer: what it fetches, and when.
#[derive(Debug)]
pub(crate) struct Served {
    /// The checkpoint it fetches (its state stays pinned while it does).
    seq: SeqNum,
    /// When it was last answered.
    at: Time,
    /// The offset it asked for then.
    offset: u64,
    /// Where the chunk sent then ended: the offset a continuing fetch asks for.
    next: u64,
}

impl Served {
    /// Whether a peer that was served `self` may be answered `fetch` at `now`.
    fn allows(&self, fetch: &FetchState, now: Time, retry_ms: u64) -> bool {
        let continues = fetch.seq == self.seq && fetch.offset == self.next && self.next > self.offset;
        continues || fetch.seq > self.seq || now.0 >= self.at.0.saturating_add(retry_ms)
    }
}

impl Transfer {
    /// Bytes held for the transfer: what was reserved for the announced
    /// state, not only what arrived.
    pub(crate) fn held(&self) -> usize {
        self.buffer.capacity()
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
        if let Some(transfer) = self.transfer.as_mut().filter(|t| t.total.is_some()) {
            // Under way: finish it first, then fetch the newer one.
            if transfer.newer.as_ref().is_none_or(|newer| newer.seq < proof.seq) {
                transfer.newer = Some(proof);
            }
            return;
        }
        self.emit(Event::FellBehind { seq: proof.seq, last_executed: self.last_executed });
        let peer = if from == self.id { self.next_peer(from) } else { from };
        self.transfer = Some(Transfer { proof, peer, buffer: Vec::new(), total: None, newer: None });
        self.request_chunk(now);
    }

    /// Gives up the transfer in progress for the newer checkpoint learned
    /// meanwhile, if there is one; true if it did.
    fn move_to_newer(&mut self, now: Time) -> bool {
        let Some(newer) = self.transfer.as_mut().and_then(|t| t.newer.take()) else { return false };
        // The peer asked last failed or stalled: start with the next one.
        let peer = self.transfer.as_ref().map_or(self.id, |t| self.next_peer(t.peer));
        self.transfer = None;
        self.start_transfer(now, newer, peer);
        self.transfer.is_some()
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
        self.timers.set(Timer::Fetch, now + self.fetch_retry_ms());
    }

    /// The peer did not answer in time, or answered with bad data: ask the
    /// next one, starting over.
    fn switch_peer(&mut self, now: Time) {
        if self.move_to_newer(now) {
            return;
        }
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
    ///
    /// Each peer is answered at the pace of a transfer, never faster (issue
    /// 21, point 3): a request that continues the chunk it was last sent, or
    /// asks for a newer checkpoint, is answered at once; any other (the same
    /// chunk again, a jump back, the start of another pass) only once the
    /// fetcher's own retry interval has passed since its last answer.
    /// Honest fetchers never ask sooner, so a peer that asks in a loop gets
    /// at most one pass over each state held, plus one chunk, per retry
    /// interval: signing and hashing a chunk per request it sends is no
    /// longer on offer.
    pub(super) fn on_fetch_state(&mut self, now: Time, fetch: Signed<FetchState>) {
        let body = fetch.payload();
        if !self.checkpoint_states.contains_key(&body.seq) {
            return;
        }
        if !self
            .serving
            .get(&body.replica)
            .is_none_or(|served| served.allows(body, now, self.fetch_retry_ms()))
        {
            self.reject(crate::signed::Author::Replica(body.replica), FetchState::KIND, Reject::TooFrequent);
            return;
        }
        self.serving
            .insert(body.replica, Served { seq: body.seq, at: now, offset: body.offset, next: body.offset });
        self.prune_checkpoint_states(now);
        let Some(state) = self.checkpoint_states.get(&body.seq) else { return };
        // The state's own digest: a state kept for a peer's fetch lies below
        // the stable checkpoint, where this replica's votes are gone.
        if state.digest() != body.state_digest {
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
        if let Some(served) = self.serving.get_mut(&to) {
            served.next = body.offset + chunk.data.len() as u64;
        }
        self.send(to, Message::StateChunk(Signed::sign(chunk, &self.secret)));
    }

    /// How long a fetcher waits for a chunk before it asks again (elsewhere).
    fn fetch_retry_ms(&self) -> u64 {
        self.config.view_change_timeout_ms / 2 + 1
    }

    /// Drops the checkpoint states below the stable checkpoint but those a
    /// peer fetched within the last view-change timeout: a fetch slower than
    /// one checkpoint interval keeps the state it reads until it ends or
    /// stalls. At most one such state per peer.
    pub(super) fn prune_checkpoint_states(&mut self, now: Time) {
        let keep_for = self.config.view_change_timeout_ms;
        self.serving.retain(|_, served| now.0 < served.at.0.saturating_add(keep_for));
        let stable = self.stable_checkpoint.seq;
        let serving: std::collections::BTreeSet<SeqNum> =
            self.serving.values().map(|served| served.seq).collect();
        self.checkpoint_states.retain(|seq, _| *seq >= stable || serving.contains(seq));
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
        // The digest first, in constant memory: nothing is built from bytes
        // a quorum did not certify.
        let certified = CheckpointState::digest_of_transferred(&transfer.buffer) == Some(proof.state_digest);
        let decoded = if certified { CheckpointState::decode(transfer.buffer) } else { None };
        let installed = decoded.and_then(|(state, replies)| {
            self.app.restore_pages(state.pages()).ok()?;
            Some((state, replies))
        });
        let Some((state, replies)) = installed else {
            let peer = transfer.peer;
            self.reject(crate::signed::Author::Replica(peer), StateChunk::KIND, Reject::DigestMismatch);
            self.transfer =
                Some(Transfer { proof, peer, buffer: Vec::new(), total: None, newer: transfer.newer });
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
        if let Some(newer) = transfer.newer {
            let peer = transfer.peer;
            self.start_transfer(now, newer, peer);
        }
    }
}
