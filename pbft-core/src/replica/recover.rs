//! Restarting from persisted records, and the snapshot that bounds them
//! (see [`crate::persist`] for the rule and its safety argument).

use super::checkpoint_state::CheckpointState;
use super::{Replica, ReplicaError};
use crate::app::ReplicatedStateMachine;
use crate::config::ProtocolConfig;
use crate::ids::{ReplicaId, SeqNum, View};
use crate::keys::{KeyBook, SecretKey};
use crate::message::PrePrepare;
use crate::message::{Message, PreparedCert};
use crate::output::Output;
use crate::persist::{CommitProof, Persist, Snapshot};
use crate::signed::Signed;
use crate::time::Time;
use std::collections::BTreeMap;
use std::ops::Bound;

/// What recovery found in the records, before it is applied.
#[derive(Default)]
struct Found {
    snapshot: Option<Snapshot>,
    view: Option<View>,
    prepared: BTreeMap<SeqNum, PreparedCert>,
    executed: BTreeMap<SeqNum, CommitProof>,
    batches: Vec<Signed<PrePrepare>>,
}

impl Found {
    /// Folds the records in the order they were written: a snapshot
    /// supersedes everything before it.
    fn from_records(records: impl IntoIterator<Item = Persist>) -> Found {
        let mut found = Found::default();
        for record in records {
            match record {
                Persist::View(view) => found.view = found.view.max(Some(view)),
                Persist::Prepared(cert) => found.keep_certificate(cert),
                Persist::Accepted(pre_prepare) => found.batches.push(pre_prepare),
                Persist::Executed(proof) => {
                    found.executed.insert(proof.pre_prepare.payload().seq, proof);
                }
                Persist::Snapshot(snapshot) => {
                    let view = found.view.max(Some(snapshot.view));
                    found = Found { view, ..Found::default() };
                    for cert in &snapshot.prepared {
                        found.keep_certificate(cert.clone());
                    }
                    for proof in &snapshot.executed {
                        found.executed.insert(proof.pre_prepare.payload().seq, proof.clone());
                    }
                    found.batches.extend(snapshot.batches.iter().cloned());
                    found.snapshot = Some(snapshot);
                }
            }
        }
        found
    }

    /// Keeps the certificate of the latest view for each sequence number.
    fn keep_certificate(&mut self, cert: PreparedCert) {
        let seq = cert.pre_prepare.payload().seq;
        let view = cert.pre_prepare.payload().view;
        let newer = self.prepared.get(&seq).is_none_or(|kept| kept.pre_prepare.payload().view <= view);
        if newer {
            self.prepared.insert(seq, cert);
        }
    }
}

impl<A: ReplicatedStateMachine> Replica<A> {
    /// A replica restarted from the records its host persisted, in the order
    /// they were written (none: a fresh replica, as [`Replica::new`]).
    ///
    /// It restores the newest snapshot's state (checked against its
    /// certified digest; a snapshot that does not decode or does not match
    /// is damage, and the replica starts in the recovering mode of
    /// [`Replica::recover_lost`] instead of acting on the records around
    /// it), re-executes the persisted batches
    /// above it in order (rebuilding the application and the reply cache;
    /// nothing is replied again), keeps the prepared certificates above it,
    /// and, if it had ever sent anything, starts a view change to the view
    /// after the highest it persisted: it never votes again in a view in
    /// which it may have voted before. Its first outputs are that
    /// VIEW-CHANGE (after the record of its view).
    pub fn recover(
        id: ReplicaId,
        config: ProtocolConfig,
        keys: KeyBook,
        secret: SecretKey,
        app: A,
        records: impl IntoIterator<Item = Persist>,
        now: Time,
    ) -> Result<Replica<A>, ReplicaError> {
        let mut replica = Replica::new(id, config, keys, secret, app)?;
        let found = Found::from_records(records);
        if let Some(snapshot) = found.snapshot {
            if !replica.restore_snapshot(snapshot) {
                // The record passed its checksum, so this is not a torn
                // write: a bug, a format this build does not read, or
                // damage no checksum caught. Nothing it holds is trusted,
                // and the application (possibly half restored) is replaced
                // by the state transfer recovery brings.
                replica.start_recovering(now);
                return Ok(replica);
            }
        }
        for (seq, proof) in found.executed {
            if seq != replica.last_executed + 1 {
                continue;
            }
            replica.execute_batch(&proof.pre_prepare);
            replica.last_executed = seq;
            // Kept, as after executing it the first time: peers that lag
            // may need it relayed, and the next snapshot carries it.
            replica.commit_proofs.insert(seq, proof);
            if seq % replica.config.checkpoint_interval == 0 {
                replica.take_checkpoint(now, seq);
            }
        }
        let (h, high) = (replica.low_watermark(), replica.high_watermark());
        replica.prepared_certs =
            found.prepared.into_iter().filter(|(seq, _)| *seq > h && *seq <= high).collect();
        for pre_prepare in found.batches.iter().filter(|pp| pp.payload().seq > h && pp.payload().seq <= high)
        {
            replica.store_batch_copy(pre_prepare);
        }
        // Replaying produced replies and events the world already saw; its
        // CHECKPOINT votes go out again (peers lost theirs if they crashed
        // too, and a checkpoint needs 2f+1 of them to become stable).
        replica.outputs.retain(|o| matches!(o, Output::Broadcast(Message::Checkpoint(_))));
        let (last_executed, view) = (replica.last_executed, found.view.map_or(0, |v| v + 1));
        replica.emit(crate::output::Event::Recovered { last_executed, view });
        if let Some(view) = found.view {
            replica.view = view;
            replica.last_normal_view = view;
            replica.persisted_view = Some(view);
            replica.start_view_change(now, view + 1);
        }
        replica.check_invariants();
        Ok(replica)
    }

    /// A replica that lost its records, or cannot trust them (a damaged
    /// log): it may have voted in views it no longer knows of. It starts in
    /// a recovering mode in which it signs no PRE-PREPARE, PREPARE, COMMIT,
    /// VIEW-CHANGE or NEW-VIEW. It reports its status, catches up from what
    /// peers send it (stable checkpoints, state, proofs of commitment), and
    /// once it holds status reports from 2f+1 other replicas and has executed
    /// up to the stable checkpoint at least f+1 of them report, it asks for
    /// the view two above the highest reported, a view it cannot have signed
    /// anything in (see [`crate::persist`]). If the reports of 2f other
    /// replicas all show a cluster that has not started (view 0, nothing
    /// executed, no view change), it joins view 0 instead: that is how a
    /// whole new cluster starts, even with f of its replicas silent.
    pub fn recover_lost(
        id: ReplicaId,
        config: ProtocolConfig,
        keys: KeyBook,
        secret: SecretKey,
        app: A,
        now: Time,
    ) -> Result<Replica<A>, ReplicaError> {
        let mut replica = Replica::new(id, config, keys, secret, app)?;
        replica.start_recovering(now);
        Ok(replica)
    }

    /// Enters the recovering mode (see [`Replica::recover_lost`]).
    fn start_recovering(&mut self, now: Time) {
        self.recovering = Some(BTreeMap::new());
        self.emit(crate::output::Event::RecoveringFromPeers);
        // Report at once, so peers start sending what this replica lacks.
        self.timers.set(super::Timer::Status, now);
        self.check_invariants();
    }

    /// Whether the replica is recovering from a lost or damaged disk.
    pub fn is_recovering(&self) -> bool {
        self.recovering.is_some()
    }

    /// While recovering, only what lets the replica learn and catch up is
    /// handled; votes and view changes are refused.
    pub(super) fn admit_while_recovering(&mut self, message: Message) -> Option<Message> {
        match &message {
            Message::PrePrepare(_)
            | Message::Prepare(_)
            | Message::Commit(_)
            | Message::ViewChange(_)
            | Message::NewView(_) => {
                self.reject(message.author(), message.kind(), crate::reject::Reject::Recovering);
                None
            }
            Message::Status(report) => {
                let report = report.payload().clone();
                if let Some(reports) = &mut self.recovering {
                    reports.insert(report.replica, report);
                }
                Some(message)
            }
            _ => Some(message),
        }
    }

    /// Leaves the recovering mode once 2f+1 other replicas reported (2f, if
    /// all of them show a cluster that has not started) and this replica
    /// has caught up to the stable checkpoint f+1 of them vouch for.
    pub(super) fn try_finish_recovery(&mut self, now: Time) {
        #[cfg(feature = "mutations")]
        if self.mutation == Some(crate::Mutation::NeverFinishRecovery) {
            return;
        }
        let Some(reports) = &self.recovering else { return };
        let pristine = reports.values().all(|r| r.view == 0 && !r.view_changing && r.last_executed == 0);
        // A cluster that has not started is joined on the word of 2f others
        // (with itself, a quorum): every replica of a new cluster starts
        // here, and must not need a report from a replica that never comes.
        let needed = if pristine { self.quorum.quorum() - 1 } else { self.quorum.quorum() };
        if reports.len() < needed {
            return;
        }
        let mut stable: Vec<SeqNum> = reports.values().map(|r| r.stable_seq).collect();
        stable.sort_unstable_by(|a, b| b.cmp(a));
        // The (f+1)-th highest: at least one honest replica is that far.
        let vouched = stable.get(self.quorum.f()).copied().unwrap_or(0);
        if self.last_executed < vouched {
            return;
        }
        let highest = reports.values().map(|r| r.view).max().unwrap_or(0);
        self.recovering = None;
        let target = if pristine { 0 } else { highest + 2 };
        self.emit(crate::output::Event::Recovered { last_executed: self.last_executed, view: target });
        if pristine {
            self.try_propose(now, false);
        } else {
            self.view = highest + 1;
            self.last_normal_view = highest + 1;
            self.status = super::Status::Normal;
            self.start_view_change(now, target);
            // After the view change's own record: the snapshot then carries
            // the view asked for, so a restart from it asks for a later one.
            if self.stable_checkpoint.seq > 0 {
                self.persist_snapshot();
            }
        }
    }

    /// Installs a persisted stable checkpoint; false if its state does not
    /// match its proof, or does not decode. The reply cache is decoded
    /// without the message size limit (it may be larger than one message,
    /// and the record passed its checksum), but only once its digest
    /// matches the proof.
    fn restore_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let state = CheckpointState::of_parts(snapshot.pages, snapshot.replies);
        if state.digest() != snapshot.proof.state_digest {
            return false;
        }
        let Ok(replies) = crate::codec::decode_certified(state.replies()) else { return false };
        if self.app.restore_pages(state.pages()).is_err() {
            return false;
        }
        let seq = snapshot.proof.seq;
        self.reply_cache = replies;
        self.last_executed = seq;
        self.next_seq = seq + 1;
        self.own_checkpoints.insert(seq, snapshot.proof.state_digest);
        self.checkpoint_states.insert(seq, state);
        self.stable_checkpoint = snapshot.proof;
        true
    }

    /// Persists the stable checkpoint just reached, with everything above it
    /// that a restart needs (see [`Snapshot`]).
    pub(super) fn persist_snapshot(&mut self) {
        let seq = self.stable_checkpoint.seq;
        let Some(state) = self.checkpoint_states.get(&seq) else { return };
        let snapshot = Snapshot {
            proof: self.stable_checkpoint.clone(),
            pages: state.pages().to_vec(),
            replies: state.replies().to_vec(),
            view: self.persisted_view.unwrap_or(self.view),
            prepared: self.prepared_certs.values().cloned().collect(),
            batches: self.batch_copies.values().flatten().cloned().collect(),
            executed: self
                .commit_proofs
                .range((Bound::Excluded(seq), Bound::Included(self.last_executed.max(seq))))
                .map(|(_, proof)| proof.clone())
                .collect(),
        };
        self.persist(Persist::Snapshot(snapshot));
    }
}
