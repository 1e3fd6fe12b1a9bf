//! The normal case (OSDI'99 §4.2): requests, PRE-PREPARE, PREPARE, COMMIT.

use super::pending::Admit;
use super::replies::{seen, Seen};
use super::{Replica, Status, Timer};
use crate::app::ReplicatedStateMachine;
use crate::ids::{SeqNum, View};
use crate::message::{batch_digest, Commit, Message, PrePrepare, Prepare, Request, RequestKind};
use crate::output::Event;
use crate::reject::Reject;
use crate::signed::{Signable, Signed};
use crate::time::Time;

/// How many batch digests a replica keeps copies of per sequence number
/// across view changes: each needs a prepared certificate to be named by a
/// NEW-VIEW, which honest replicas sign for one digest per view, so more
/// than a few at one sequence number only happen under attack.
pub(super) const BATCH_COPIES_PER_SEQ: usize = 4;

/// Whether a normal-case message for some view can be handled now.
enum Admission {
    Now,
    Stale,
    Later,
}

/// The view a normal-case message belongs to; `None` for other kinds.
pub(super) fn normal_case_view(message: &Message) -> Option<View> {
    match message {
        Message::PrePrepare(m) => Some(m.payload().view),
        Message::Prepare(m) => Some(m.payload().view),
        Message::Commit(m) => Some(m.payload().view),
        _ => None,
    }
}

/// A sender gets one vote per slot: given whether the vote already held from
/// it (if any) is the same as the new one, a repeat is a duplicate and a
/// different vote is equivocation.
pub(super) fn first_from_sender(held_is_same: Option<bool>) -> Result<(), Reject> {
    match held_is_same {
        Some(true) => Err(Reject::Duplicate),
        Some(false) => Err(Reject::Equivocation),
        None => Ok(()),
    }
}

impl<A: ReplicatedStateMachine> Replica<A> {
    /// Decides whether `message` is for the current view; buffers it (bounded
    /// per sender) if it is for a view this replica has not entered yet.
    /// Returns the message back if it should be handled now.
    pub(super) fn admit_normal_case(&mut self, message: Message) -> Option<Message> {
        let Some(view) = normal_case_view(&message) else {
            return Some(message);
        };
        let admission = if view < self.view {
            Admission::Stale
        } else if view == self.view && self.status == Status::Normal {
            Admission::Now
        } else {
            Admission::Later
        };
        match admission {
            Admission::Now => Some(message),
            Admission::Stale => {
                self.reject(message.author(), message.kind(), Reject::StaleView);
                None
            }
            Admission::Later => {
                let crate::signed::Author::Replica(from) = message.author() else {
                    return None;
                };
                let (author, kind) = (message.author(), message.kind());
                if let Err(reason) = self.future.push(from, message, &self.config, self.quorum.n()) {
                    self.reject(author, kind, reason);
                }
                None
            }
        }
    }

    /// Whether `message` is a vote that can no longer matter here: a PREPARE
    /// for a slot of the current view that is already prepared, or a COMMIT
    /// for one already committed-local. The prepared certificate and the
    /// commit quorum are complete, so no vote, genuine or forged, changes
    /// anything, and checking its signature would be wasted work (with n = 4,
    /// a third of all vote verifications). Looks at unverified fields only to
    /// decide to drop.
    pub(super) fn vote_unneeded(&self, message: &Message) -> bool {
        if self.status != Status::Normal {
            return false;
        }
        let slot = |view: View, seq: SeqNum| if view == self.view { self.log.get(&seq) } else { None };
        match message {
            Message::Prepare(m) => slot(m.payload().view, m.payload().seq).is_some_and(|s| s.prepared),
            Message::Commit(m) => slot(m.payload().view, m.payload().seq).is_some_and(|s| s.committed),
            _ => false,
        }
    }

    pub(super) fn on_request(&mut self, now: Time, request: Signed<Request>) {
        let body = request.payload();
        if body.kind == RequestKind::UnorderedRead {
            self.on_unordered_read(request);
            return;
        }
        if body.op.len() > self.config.max_request_bytes {
            self.reject(body.author(), Request::KIND, Reject::RequestTooLarge);
            return;
        }
        match seen(&self.reply_cache, body.client, body.timestamp, self.config.max_pending_per_client) {
            Seen::New => {}
            Seen::Executed(cached) => {
                let cached = cached.clone();
                let (client, timestamp) = (body.client, body.timestamp);
                if cached.request != request.digest() {
                    // Another request executed under this timestamp: the
                    // reply names it, so the client never takes its result
                    // for this one's.
                    self.reject(body.author(), Request::KIND, Reject::TimestampReused);
                }
                self.emit_phase(|| Event::RepliedFromCache { client, timestamp });
                self.reply(client, timestamp, cached, false);
                return;
            }
            Seen::Stale => {
                self.reject(body.author(), Request::KIND, Reject::StaleRequest);
                return;
            }
        }
        // A client sends timestamp t only once everything up to t - window
        // completed (committed): those need no proposal or timer here any
        // more, even if this replica has not executed them yet.
        let window = self.config.max_pending_per_client as u64;
        self.pending.remove_up_to(body.client, body.timestamp.saturating_sub(window));
        match self.pending.admit(request.clone()) {
            Admit::Full => {
                self.reject(body.author(), Request::KIND, Reject::BufferFull);
                return;
            }
            Admit::Known | Admit::New => {}
        }
        if self.status != Status::Normal {
            return;
        }
        if self.is_primary() {
            self.try_propose(now, false);
        } else {
            let primary = self.quorum.primary(self.view);
            self.send(primary, Message::Request(request));
            if !self.timers.is_set(Timer::Request) {
                self.await_oldest_request(now);
            }
        }
    }

    /// A backup (re)starts its request timer for the request it has held
    /// longest, or stops it when it holds none (OSDI'99 §4.4: "it stops the
    /// timer when it is no longer waiting to execute the request, but
    /// restarts it if at that point it is waiting to execute some other
    /// request").
    pub(super) fn await_oldest_request(&mut self, now: Time) {
        self.awaited = self.pending.oldest();
        match self.awaited {
            Some(_) => self.timers.set(Timer::Request, now + self.config.view_change_timeout_ms),
            None => self.timers.cancel(Timer::Request),
        }
    }

    pub(super) fn on_batch_timeout(&mut self, now: Time) {
        self.try_propose(now, true);
    }

    /// The primary proposes pending requests in batches while the window allows:
    /// a full batch at once; a partial one when `force` (the batch delay
    /// passed), when there is no batch delay, or when every batch it proposed
    /// has executed. Waiting for a batch to fill only pays while earlier
    /// batches are still in flight; on an idle pipeline it is pure latency.
    pub(super) fn try_propose(&mut self, now: Time, force: bool) {
        if self.status != Status::Normal || !self.is_primary() || self.recovering.is_some() {
            return;
        }
        let max = self.config.max_batch_size;
        while self.next_seq <= self.high_watermark() {
            let waiting = self.pending.unproposed();
            if waiting == 0 {
                self.timers.cancel(Timer::Batch);
                return;
            }
            let idle = self.next_seq <= self.last_executed + 1;
            if waiting < max && !force && !idle && self.config.batch_delay_ms > 0 {
                self.timers.set_if_unset(Timer::Batch, now + self.config.batch_delay_ms);
                return;
            }
            let batch = self.pending.take_batch(max, self.config.max_batch_bytes);
            self.propose(now, batch);
        }
    }

    fn propose(&mut self, now: Time, batch: Vec<Signed<Request>>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pre_prepare = Signed::sign(
            PrePrepare { view: self.view, seq, digest: batch_digest(&batch), primary: self.id, batch },
            &self.secret,
        );
        self.note_pre_prepared(&pre_prepare);
        self.keep_batch_copy(&pre_prepare);
        self.log.entry(seq).or_default().pre_prepare = Some(pre_prepare.clone());
        self.broadcast(Message::PrePrepare(pre_prepare));
        self.advance(now, seq);
    }

    /// Reports the phase a PRE-PREPARE this replica sent or accepted starts.
    fn note_pre_prepared(&mut self, pre_prepare: &Signed<PrePrepare>) {
        let body = pre_prepare.payload();
        self.emit_phase(|| Event::PrePrepared {
            view: body.view,
            seq: body.seq,
            requests: body.batch.iter().map(|r| (r.payload().client, r.payload().timestamp)).collect(),
        });
    }

    /// Whether `batch` keeps the byte bounds a primary's batches keep: every
    /// operation within `max_request_bytes`, all of them within
    /// `max_batch_bytes` (or a single request).
    pub(super) fn fits_a_batch(&self, batch: &[Signed<Request>]) -> bool {
        let sizes = || batch.iter().map(|r| r.payload().op.len());
        sizes().all(|size| size <= self.config.max_request_bytes)
            && (batch.len() <= 1 || sizes().sum::<usize>() <= self.config.max_batch_bytes)
    }

    /// Why a backup would ignore a PRE-PREPARE for the current view.
    fn check_pre_prepare(&self, body: &PrePrepare) -> Result<(), Reject> {
        if !self.in_watermarks(body.seq) {
            return Err(Reject::OutsideWatermarks);
        }
        if body.batch.len() > self.config.max_batch_size || !self.fits_a_batch(&body.batch) {
            return Err(Reject::BatchTooLarge);
        }
        first_from_sender(self.log.get(&body.seq).and_then(|slot| slot.digest()).map(|d| d == body.digest))
    }

    pub(super) fn on_pre_prepare(&mut self, now: Time, pre_prepare: Signed<PrePrepare>) {
        let body = pre_prepare.payload();
        if let Err(reason) = self.check_pre_prepare(body) {
            self.reject(body.author(), PrePrepare::KIND, reason);
            return;
        }
        let (view, seq, digest) = (body.view, body.seq, body.digest);
        self.accept_pre_prepare(pre_prepare);
        self.send_prepare(view, seq, digest);
        self.advance(now, seq);
    }

    pub(super) fn accept_pre_prepare(&mut self, pre_prepare: Signed<PrePrepare>) {
        let seq = pre_prepare.payload().seq;
        self.note_pre_prepared(&pre_prepare);
        self.keep_batch_copy(&pre_prepare);
        self.log.entry(seq).or_default().pre_prepare = Some(pre_prepare);
    }

    /// Keeps the batch of an accepted (or proposed) PRE-PREPARE beyond its
    /// view, so that a NEW-VIEW naming it by digest finds it (see
    /// `enter_view`), and persists it, so that a restart keeps it too.
    pub(super) fn keep_batch_copy(&mut self, pre_prepare: &Signed<PrePrepare>) {
        if self.store_batch_copy(pre_prepare) {
            self.persist(crate::persist::Persist::Accepted(pre_prepare.clone()));
        }
    }

    /// [`Replica::keep_batch_copy`] without persisting (a restart restoring
    /// its records); false if there was nothing new to keep. At most
    /// [`BATCH_COPIES_PER_SEQ`] digests per sequence number, the newest; the
    /// requests are shared with the log, so a copy costs a pointer each.
    pub(super) fn store_batch_copy(&mut self, pre_prepare: &Signed<PrePrepare>) -> bool {
        let body = pre_prepare.payload();
        if body.batch.is_empty() || pre_prepare.lacks_batch() {
            return false;
        }
        let copies = self.batch_copies.entry(body.seq).or_default();
        if copies.iter().any(|copy| copy.payload().digest == body.digest) {
            return false;
        }
        if copies.len() == BATCH_COPIES_PER_SEQ {
            copies.remove(0);
        }
        copies.push(pre_prepare.clone());
        true
    }

    /// This replica's copy of the batch with `digest` at `seq`, if it has
    /// one: kept from an accepted PRE-PREPARE, or in a prepared certificate
    /// or proof of commitment (what a restarted replica recovered).
    pub(super) fn batch_copy(&self, seq: SeqNum, digest: crate::Digest) -> Option<Vec<Signed<Request>>> {
        let kept = self
            .batch_copies
            .get(&seq)
            .and_then(|copies| copies.iter().find(|c| c.payload().digest == digest));
        if let Some(copy) = kept {
            return Some(copy.payload().batch.clone());
        }
        let certified = self.prepared_certs.get(&seq).map(|cert| &cert.pre_prepare);
        let committed = self.commit_proofs.get(&seq).map(|proof| &proof.pre_prepare);
        [certified, committed]
            .into_iter()
            .flatten()
            .find(|pp| pp.payload().digest == digest && !pp.lacks_batch())
            .map(|pp| pp.payload().batch.clone())
    }

    pub(super) fn send_prepare(&mut self, view: View, seq: SeqNum, digest: crate::Digest) {
        let prepare = Signed::sign(Prepare { view, seq, digest, replica: self.id }, &self.secret);
        self.log.entry(seq).or_default().prepares.insert(self.id, prepare.clone());
        self.broadcast(Message::Prepare(prepare));
    }

    fn check_prepare(&self, body: &Prepare) -> Result<(), Reject> {
        if !self.in_watermarks(body.seq) {
            return Err(Reject::OutsideWatermarks);
        }
        if body.replica == self.quorum.primary(body.view) {
            return Err(Reject::PrepareFromPrimary);
        }
        let held = self.log.get(&body.seq).and_then(|slot| slot.prepares.get(&body.replica));
        first_from_sender(held.map(|held| held.payload().digest == body.digest))
    }

    pub(super) fn on_prepare(&mut self, now: Time, prepare: Signed<Prepare>) {
        let body = prepare.payload();
        if let Err(reason) = self.check_prepare(body) {
            self.reject(body.author(), Prepare::KIND, reason);
            return;
        }
        let (seq, replica) = (body.seq, body.replica);
        self.log.entry(seq).or_default().prepares.insert(replica, prepare);
        self.advance(now, seq);
    }

    fn check_commit(&self, body: &Commit) -> Result<(), Reject> {
        if !self.in_watermarks(body.seq) {
            return Err(Reject::OutsideWatermarks);
        }
        let held = self.log.get(&body.seq).and_then(|slot| slot.commits.get(&body.replica));
        first_from_sender(held.map(|held| held.payload().digest == body.digest))
    }

    pub(super) fn on_commit(&mut self, now: Time, commit: Signed<Commit>) {
        let body = commit.payload();
        if let Err(reason) = self.check_commit(body) {
            self.reject(body.author(), Commit::KIND, reason);
            return;
        }
        let (seq, replica) = (body.seq, body.replica);
        self.log.entry(seq).or_default().commits.insert(replica, commit);
        self.advance(now, seq);
    }

    /// Moves `seq` to prepared (then sends COMMIT) and to committed-local (then
    /// executes what is in order) as soon as the quorums are there.
    pub(super) fn advance(&mut self, now: Time, seq: SeqNum) {
        let prepare_quorum = self.quorum.prepare_quorum();
        let commit_quorum = self.quorum.quorum();
        let Some(slot) = self.log.get_mut(&seq) else { return };
        let Some(digest) = slot.digest() else { return };
        if !slot.prepared && slot.matching_prepares().len() >= prepare_quorum {
            slot.prepared = true;
            let view = self.view;
            if let Some(cert) = slot.certificate() {
                self.prepared_certs.insert(seq, cert.clone());
                self.persist(crate::persist::Persist::Prepared(cert));
            }
            self.emit_phase(|| Event::Prepared { view, seq });
            let commit =
                Signed::sign(Commit { view: self.view, seq, digest, replica: self.id }, &self.secret);
            if let Some(slot) = self.log.get_mut(&seq) {
                slot.commits.insert(self.id, commit.clone());
            }
            self.broadcast(Message::Commit(commit));
        }
        let Some(slot) = self.log.get_mut(&seq) else { return };
        if slot.prepared && !slot.committed && slot.matching_commits() >= commit_quorum {
            slot.committed = true;
            let view = self.view;
            self.emit_phase(|| Event::CommittedLocal { view, seq });
            self.try_execute(now);
        }
    }
}
