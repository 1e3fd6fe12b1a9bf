//! Checkpoints, stability and garbage collection (OSDI'99 §4.3).

use super::normal::first_from_sender;
use super::Replica;
use crate::app::ReplicatedStateMachine;
use crate::digest::Digest;
use crate::ids::{ReplicaId, SeqNum};
use crate::message::{Checkpoint, CheckpointProof};
use crate::output::{Disagreement, Event};
use crate::reject::Reject;
use crate::signed::{Signable, Signed};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

impl<A: ReplicatedStateMachine> Replica<A> {
    fn check_checkpoint(&self, body: &Checkpoint) -> Result<(), Reject> {
        if !self.in_watermarks(body.seq) {
            return Err(Reject::OutsideWatermarks);
        }
        if body.seq % self.config.checkpoint_interval != 0 {
            return Err(Reject::NotACheckpointSeq);
        }
        let held = self.checkpoint_votes.get(&body.seq).and_then(|votes| votes.get(&body.replica));
        first_from_sender(held.map(|held| held.payload().state_digest == body.state_digest))
    }

    pub(super) fn on_checkpoint(&mut self, now: Time, checkpoint: Signed<Checkpoint>) {
        let body = checkpoint.payload();
        let stable = &self.stable_checkpoint;
        if body.seq == stable.seq && body.seq > 0 && body.state_digest != stable.state_digest {
            // A late vote against the checkpoint a quorum already certified.
            let mut digests: BTreeMap<Digest, BTreeSet<ReplicaId>> = BTreeMap::new();
            for vote in &stable.checkpoints {
                digests.entry(stable.state_digest).or_default().insert(vote.payload().replica);
            }
            digests.entry(body.state_digest).or_default().insert(body.replica);
            self.record_disagreement(Disagreement { seq: body.seq, digests });
        }
        if let Err(reason) = self.check_checkpoint(body) {
            self.reject(body.author(), Checkpoint::KIND, reason);
            return;
        }
        let (seq, replica) = (body.seq, body.replica);
        self.checkpoint_votes.entry(seq).or_default().insert(replica, checkpoint);
        self.note_disagreements(seq);
        self.try_stabilize(now, seq);
    }

    /// Reports when the checkpoint votes held for `seq` (this replica's own
    /// included) name more than one state digest.
    pub(super) fn note_disagreements(&mut self, seq: SeqNum) {
        let Some(votes) = self.checkpoint_votes.get(&seq) else { return };
        let mut digests: BTreeMap<Digest, BTreeSet<ReplicaId>> = BTreeMap::new();
        for vote in votes.values() {
            let body = vote.payload();
            digests.entry(body.state_digest).or_default().insert(body.replica);
        }
        if digests.len() > 1 {
            self.record_disagreement(Disagreement { seq, digests });
        }
    }

    /// Records and reports `disagreement`, unless it repeats the last one
    /// word for word (a peer resending its late vote must not flood the log).
    fn record_disagreement(&mut self, disagreement: Disagreement) {
        if self.last_disagreement.as_ref() == Some(&disagreement) {
            return;
        }
        self.last_disagreement = Some(disagreement.clone());
        self.emit(Event::CheckpointDisagreement(disagreement));
    }

    /// Makes checkpoint `seq` stable once a quorum matches this replica's own
    /// digest for it; reports falling behind when a quorum agrees on a
    /// checkpoint this replica has not reached.
    pub(super) fn try_stabilize(&mut self, now: Time, seq: SeqNum) {
        let Some(votes) = self.checkpoint_votes.get(&seq) else { return };
        let quorum = self.quorum.quorum();
        match self.own_checkpoints.get(&seq) {
            Some(own) => {
                let matching: Vec<Signed<Checkpoint>> =
                    votes.values().filter(|c| c.payload().state_digest == *own).cloned().collect();
                if matching.len() >= quorum {
                    let proof = CheckpointProof { seq, state_digest: *own, checkpoints: matching };
                    self.make_stable(now, proof);
                }
            }
            None if self.last_executed < seq => {
                let mut by_digest: std::collections::BTreeMap<_, Vec<Signed<Checkpoint>>> =
                    Default::default();
                for vote in votes.values() {
                    by_digest.entry(vote.payload().state_digest).or_default().push(vote.clone());
                }
                let proven = by_digest.into_iter().find(|(_, votes)| votes.len() >= quorum);
                if let Some((state_digest, checkpoints)) = proven {
                    let from = checkpoints[0].payload().replica;
                    self.start_transfer(now, CheckpointProof { seq, state_digest, checkpoints }, from);
                }
            }
            None => {}
        }
    }

    /// Adopts `proof` as the stable checkpoint: moves the low watermark and
    /// discards everything at or below it.
    pub(super) fn make_stable(&mut self, now: Time, proof: CheckpointProof) {
        let seq = proof.seq;
        if seq <= self.low_watermark() || seq > self.last_executed {
            return;
        }
        let state_digest = proof.state_digest;
        self.stable_checkpoint = proof;
        self.log.retain(|s, _| *s > seq);
        self.prepared_certs.retain(|s, _| *s > seq);
        self.batch_copies.retain(|s, _| *s > seq);
        self.commit_proofs.retain(|s, _| *s > seq);
        self.checkpoint_votes.retain(|s, _| *s > seq);
        self.own_checkpoints.retain(|s, _| *s > seq);
        self.prune_checkpoint_states(now);
        self.next_seq = self.next_seq.max(seq + 1);
        self.persist_snapshot();
        self.emit(Event::CheckpointStable { seq, state_digest });
        self.try_propose(now, false);
    }
}
