//! Execution in sequence order, replies, and taking checkpoints (OSDI'99 §4.2–4.3).

use super::checkpoint_state::CheckpointState;
use super::replies::{bounded, seen, CachedReply, Seen};
use super::{CommitProof, Replica, Status};
use crate::app::ReplicatedStateMachine;
use crate::ids::{ClientId, SeqNum};
use crate::message::{Checkpoint, Message, PrePrepare, RequestKind};
use crate::output::{Event, ExecutedRequest};
use crate::signed::Signed;
use crate::time::Time;

impl<A: ReplicatedStateMachine> Replica<A> {
    /// The proof that `seq` committed, if this replica has one: from its own
    /// log (committed-local) or relayed by a peer.
    fn commit_proof(&self, seq: SeqNum) -> Option<CommitProof> {
        if let Some(proof) = self.commit_proofs.get(&seq) {
            return Some(proof.clone());
        }
        let slot = self.log.get(&seq).filter(|slot| slot.committed)?;
        // Committed by digest without the batch (see `enter_view`): it
        // executes from a peer's proof instead.
        let pre_prepare = slot.pre_prepare.clone().filter(|pp| !pp.lacks_batch())?;
        let digest = pre_prepare.payload().digest;
        let commits = slot.commits.values().filter(|c| c.payload().digest == digest).cloned().collect();
        Some(CommitProof { pre_prepare, commits })
    }

    /// Executes every committed batch that is next in sequence order.
    pub(super) fn try_execute(&mut self, now: Time) {
        let mut executed_any = false;
        loop {
            let seq = self.last_executed + 1;
            let Some(proof) = self.commit_proof(seq) else { break };
            self.persist(crate::persist::Persist::Executed(proof.clone()));
            let requests = self.execute_batch(&proof.pre_prepare);
            self.last_executed = seq;
            executed_any = true;
            let body = proof.pre_prepare.payload();
            self.emit(Event::Executed { view: body.view, seq, digest: body.digest, requests });
            self.commit_proofs.insert(seq, proof);
            if seq % self.config.checkpoint_interval == 0 {
                self.take_checkpoint(now, seq);
            }
        }
        if executed_any {
            self.abandon_stale_transfer();
            self.answer_held_reads();
            // The pipeline may have drained: a waiting partial batch goes now.
            self.try_propose(now, false);
        }
        // The request timer restarts only once the request it waits for
        // is done: progress on other requests is no excuse for never
        // ordering this one.
        let awaited_done = self.awaited.is_none_or(|key| !self.pending.contains(key));
        if executed_any && awaited_done && self.status == Status::Normal && !self.is_primary() {
            self.await_oldest_request(now);
        }
    }

    pub(super) fn execute_batch(&mut self, pre_prepare: &Signed<PrePrepare>) -> Vec<ExecutedRequest> {
        let window = self.config.max_pending_per_client;
        let mut executed = Vec::new();
        for request in &pre_prepare.payload().batch {
            let body = request.payload();
            if seen(&self.reply_cache, body.client, body.timestamp, window) != Seen::New {
                continue;
            }
            let result = match body.kind {
                RequestKind::Write => self.app.execute(&body.op),
                RequestKind::Read => self.app.query(&body.op),
                // Verification refuses batches holding unordered reads.
                RequestKind::UnorderedRead => continue,
            };
            executed.push(ExecutedRequest {
                client: body.client,
                timestamp: body.timestamp,
                digest: request.digest(),
            });
            let (result, withheld) = self.bounded_result(body.client, body.timestamp, result);
            let cached = CachedReply { request: request.digest(), result, withheld };
            let stale_up_to = self.reply_cache.entry(body.client).or_default().record(
                body.timestamp,
                cached.clone(),
                window,
            );
            self.pending.remove_executed(body.client, body.timestamp, stale_up_to);
            self.reply(body.client, body.timestamp, cached, false);
        }
        executed
    }

    /// `result` as this replica keeps and sends it (see [`bounded`]),
    /// reporting a withheld one.
    pub(super) fn bounded_result(
        &mut self,
        client: ClientId,
        timestamp: u64,
        result: Vec<u8>,
    ) -> (Vec<u8>, Option<u64>) {
        let (result, withheld) = bounded(result, self.config.max_result_bytes);
        if let Some(bytes) = withheld {
            self.emit(Event::ResultWithheld { client, timestamp, bytes });
        }
        (result, withheld)
    }

    pub(super) fn take_checkpoint(&mut self, now: Time, seq: SeqNum) {
        let state = CheckpointState::new(self.app.snapshot_pages(), &self.reply_cache);
        let state_digest = state.digest();
        self.own_checkpoints.insert(seq, state_digest);
        self.checkpoint_states.insert(seq, state);
        let checkpoint = Signed::sign(Checkpoint { seq, state_digest, replica: self.id }, &self.secret);
        self.checkpoint_votes.entry(seq).or_default().insert(self.id, checkpoint.clone());
        self.broadcast(Message::Checkpoint(checkpoint));
        self.note_disagreements(seq);
        self.try_stabilize(now, seq);
    }
}
