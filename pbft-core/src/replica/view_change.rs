//! View change (OSDI'99 §4.4, TOCS'02 §4.5): VIEW-CHANGE, NEW-VIEW, and the
//! deterministic computation of the new view's pre-prepares.

use super::normal::normal_case_view;
use super::{Replica, Status, Timer};
use crate::app::ReplicatedStateMachine;
use crate::digest::Digest;
use crate::ids::{SeqNum, View};
use crate::message::{
    null_batch_digest, CheckpointProof, Message, NewView, PrePrepare, PreparedCert, Request, ViewChange,
};
use crate::output::Event;
use crate::reject::{CertificateRule, Reject};
use crate::signed::{Signable, Signed};
use crate::time::Time;
use std::collections::BTreeMap;

/// One re-proposal of a NEW-VIEW: a sequence number and the digest of its
/// batch (the null request's where nothing prepared). The batch itself does
/// not travel: certificates carry headers only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Proposal {
    /// The sequence number.
    pub(crate) seq: SeqNum,
    /// The batch digest.
    pub(crate) digest: Digest,
}

/// What a set of VIEW-CHANGE messages implies for the new view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewViewPlan {
    /// The highest stable checkpoint among the view-changes (min-s).
    pub(crate) checkpoint: CheckpointProof,
    /// For every sequence number above it up to the highest prepared
    /// certificate (max-s): the batch of the certificate from the highest view,
    /// or a null request where none prepared.
    pub(crate) proposals: Vec<Proposal>,
}

impl NewViewPlan {
    /// The last sequence number the plan covers.
    pub(crate) fn last_seq(&self) -> SeqNum {
        self.proposals.last().map_or(self.checkpoint.seq, |p| p.seq)
    }

    /// Whether `pre_prepares` are exactly the plan's proposals, in order.
    pub(crate) fn matches(&self, pre_prepares: &[Signed<PrePrepare>]) -> bool {
        pre_prepares.len() == self.proposals.len()
            && pre_prepares.iter().zip(&self.proposals).all(|(pp, proposal)| {
                pp.payload().seq == proposal.seq && pp.payload().digest == proposal.digest
            })
    }
}

/// Computes the NEW-VIEW's pre-prepares from a set of (verified) view-changes.
///
/// The new primary runs it to build NEW-VIEW and every backup runs it again to
/// check NEW-VIEW, so it depends only on the view-changes, in a fixed order.
pub(crate) fn new_view_plan(view_changes: &[Signed<ViewChange>]) -> NewViewPlan {
    let checkpoint = view_changes.iter().map(|vc| &vc.payload().checkpoint).fold(
        CheckpointProof::genesis(),
        |best, proof| if proof.seq > best.seq { proof.clone() } else { best },
    );
    let mut chosen: BTreeMap<SeqNum, (View, Digest)> = BTreeMap::new();
    for vc in view_changes {
        for cert in &vc.payload().prepared {
            if cert.seq() <= checkpoint.seq {
                continue;
            }
            let better = chosen.get(&cert.seq()).is_none_or(|(view, _)| cert.view() > *view);
            if better {
                chosen.insert(cert.seq(), (cert.view(), cert.digest()));
            }
        }
    }
    let max_seq = chosen.keys().next_back().copied().unwrap_or(checkpoint.seq);
    let proposals = (checkpoint.seq + 1..=max_seq)
        .map(|seq| match chosen.get(&seq) {
            Some((_, digest)) => Proposal { seq, digest: *digest },
            None => Proposal { seq, digest: null_batch_digest() },
        })
        .collect();
    NewViewPlan { checkpoint, proposals }
}

impl<A: ReplicatedStateMachine> Replica<A> {
    pub(super) fn on_request_timeout(&mut self, now: Time) {
        self.awaited = None;
        if self.status == Status::Normal && !self.is_primary() && !self.pending.is_empty() {
            self.start_view_change(now, self.view + 1);
        }
    }

    /// Starts the current view's term on the first input that finds none
    /// running (a replica's clock starts with its first input, so a
    /// restarted replica does not rotate at once).
    pub(super) fn arm_term(&mut self, now: Time) {
        if self.config.view_term_ms > 0 && self.status == Status::Normal {
            self.timers.set_if_unset(Timer::Term, now + self.config.view_term_ms);
        }
    }

    /// The view's term is over: move to the next view, whoever the primary
    /// is, so no primary keeps the role by being just fast enough.
    pub(super) fn on_term_timeout(&mut self, now: Time) {
        if self.status == Status::Normal {
            self.emit(Event::TermEnded { view: self.view });
            self.start_view_change(now, self.view + 1);
        }
    }

    pub(super) fn on_view_change_timeout(&mut self, now: Time) {
        if self.status == Status::ViewChanging {
            self.start_view_change(now, self.view + 1);
        }
    }

    /// Leaves the current view and asks for `target`, with the stable checkpoint
    /// and every prepared certificate above it.
    pub(super) fn start_view_change(&mut self, now: Time, target: View) {
        if self.recovering.is_some() {
            // It may have signed a VIEW-CHANGE for this view before it lost its disk.
            return;
        }
        debug_assert!(target > self.view || self.status == Status::Normal);
        self.view = target;
        self.status = Status::ViewChanging;
        self.last_new_view = None;
        self.timers.cancel(Timer::Batch);
        self.timers.cancel(Timer::Request);
        self.awaited = None;
        self.timers.cancel(Timer::Term);
        self.log.clear();
        self.view_changes.retain(|_, vc| vc.payload().new_view >= target);
        self.future.retain(|m| normal_case_view(m).is_none_or(|v| v >= target));
        #[allow(unused_mut)]
        let mut prepared: Vec<_> = self.prepared_certs.values().map(PreparedCert::without_batch).collect();
        #[cfg(feature = "mutations")]
        if self.mutation == Some(crate::Mutation::ForgetPreparedCertificates) {
            prepared.clear();
        }
        let view_change = Signed::sign(
            ViewChange {
                new_view: target,
                replica: self.id,
                checkpoint: self.stable_checkpoint.clone(),
                prepared,
            },
            &self.secret,
        );
        self.view_changes.insert(self.id, view_change.clone());
        self.broadcast(Message::ViewChange(view_change));
        self.timers.cancel(Timer::ViewChange);
        self.emit(Event::ViewChangeStarted { view: target });
        self.maybe_start_view_change_timer(now);
        self.try_send_new_view(now);
    }

    /// The view-change timer runs once a quorum asks for the target view
    /// (OSDI'99 §4.5.2): a replica that alone suspects the primary waits
    /// rather than racing through views by itself. A replica asking for a
    /// later view counts too: it has given up on this one, so this view may
    /// never gather 2f+1 requests and waiting for them would deadlock (seen
    /// with f silent traitors, where every honest replica is needed). Each
    /// consecutive failed view doubles the wait, up to the configured limit.
    fn maybe_start_view_change_timer(&mut self, now: Time) {
        if self.status != Status::ViewChanging || self.timers.is_set(Timer::ViewChange) {
            return;
        }
        let asking = self.view_changes.values().filter(|vc| vc.payload().new_view >= self.view).count();
        if asking < self.quorum.quorum() {
            return;
        }
        let failed_views =
            (self.view - self.last_normal_view - 1).min(u64::from(self.config.max_view_change_backoff));
        let timeout = self.config.view_change_timeout_ms.saturating_mul(1 << failed_views);
        self.timers.set(Timer::ViewChange, now + timeout);
    }

    /// A view-change's certificates lie within one watermark window above its
    /// checkpoint (they are sorted, so the last is the highest); more would
    /// let a peer make the new view's plan, and this replica's memory, grow.
    fn check_certificates_in_window(&self, vc: &ViewChange) -> Result<(), Reject> {
        let window_end = vc.checkpoint.seq + self.config.watermark_window;
        if vc.prepared.last().is_some_and(|cert| cert.seq() > window_end) {
            return Err(Reject::InvalidCertificate(CertificateRule::BeyondWindow));
        }
        Ok(())
    }

    fn check_view_change(&self, body: &ViewChange) -> Result<(), Reject> {
        if self.is_stale_view_change(body.new_view) {
            return Err(Reject::StaleView);
        }
        self.check_certificates_in_window(body)?;
        match self.view_changes.get(&body.replica) {
            Some(held) if held.payload().new_view >= body.new_view => Err(Reject::Duplicate),
            _ => Ok(()),
        }
    }

    pub(super) fn on_view_change(&mut self, now: Time, view_change: Signed<ViewChange>) {
        let body = view_change.payload();
        if let Err(reason) = self.check_view_change(body) {
            self.reject(body.author(), ViewChange::KIND, reason);
            return;
        }
        self.view_changes.insert(body.replica, view_change);
        self.maybe_join_view_change(now);
        self.maybe_start_view_change_timer(now);
        self.try_send_new_view(now);
    }

    /// Joins a view change once f+1 other replicas ask for views above this
    /// one's, moving to the highest view that f+1 of them ask for (OSDI'99 §4.5.2).
    fn maybe_join_view_change(&mut self, now: Time) {
        let mut higher: Vec<View> = self
            .view_changes
            .iter()
            .filter(|(replica, _)| **replica != self.id)
            .map(|(_, vc)| vc.payload().new_view)
            .filter(|view| *view > self.view)
            .collect();
        let weak = self.quorum.weak();
        if higher.len() >= weak {
            higher.sort_unstable_by(|a, b| b.cmp(a));
            self.start_view_change(now, higher[weak - 1]);
        }
    }

    /// The new primary sends NEW-VIEW once it holds a quorum of view-changes for its view.
    fn try_send_new_view(&mut self, now: Time) {
        if self.status != Status::ViewChanging || !self.is_primary() {
            return;
        }
        let view_changes: Vec<Signed<ViewChange>> =
            self.view_changes.values().filter(|vc| vc.payload().new_view == self.view).cloned().collect();
        if view_changes.len() < self.quorum.quorum() {
            return;
        }
        let plan = new_view_plan(&view_changes);
        let pre_prepares: Vec<Signed<PrePrepare>> = plan
            .proposals
            .iter()
            .map(|p| {
                let body = PrePrepare {
                    view: self.view,
                    seq: p.seq,
                    digest: p.digest,
                    primary: self.id,
                    batch: Vec::new(),
                };
                Signed::sign(body, &self.secret)
            })
            .collect();
        let new_view =
            NewView { view: self.view, primary: self.id, view_changes, pre_prepares: pre_prepares.clone() };
        let new_view = Signed::sign(new_view, &self.secret);
        self.broadcast(Message::NewView(new_view.clone()));
        self.last_new_view = Some(new_view);
        self.enter_view(now, &plan, pre_prepares);
    }

    /// The plan a NEW-VIEW must follow, recomputed from its view-changes,
    /// if the NEW-VIEW is for a view this replica can enter and its
    /// pre-prepares are exactly that plan; otherwise why it is ignored.
    fn plan_for_new_view(&self, body: &NewView) -> Result<NewViewPlan, Reject> {
        if self.is_stale_view_change(body.view) {
            return Err(Reject::StaleView);
        }
        for vc in &body.view_changes {
            self.check_certificates_in_window(vc.payload())?;
        }
        let plan = new_view_plan(&body.view_changes);
        if !plan.matches(&body.pre_prepares) {
            return Err(Reject::NewViewMismatch);
        }
        Ok(plan)
    }

    pub(super) fn on_new_view(&mut self, now: Time, new_view: Signed<NewView>) {
        let body = new_view.payload();
        let plan = match self.plan_for_new_view(body) {
            Ok(plan) => plan,
            Err(reason) => {
                self.reject(body.author(), NewView::KIND, reason);
                return;
            }
        };
        self.view = body.view;
        let pre_prepares = body.pre_prepares.clone();
        self.last_new_view = Some(new_view);
        self.enter_view(now, &plan, pre_prepares);
    }

    /// Enters `self.view` with the NEW-VIEW's pre-prepares: adopts the
    /// checkpoint, prepares every re-proposal, and resumes normal operation.
    ///
    /// The pre-prepares carry no batches. Each takes its batch from this
    /// replica's own copies ([`Replica::batch_copy`]); one whose batch this
    /// replica never saw is still prepared and committed by digest (OSDI'99
    /// §4.4: agreement is on the digest) and executes from a peer's proof of
    /// commitment, which status reports bring (TOCS'02 §5.2). Some honest
    /// replica holds every batch a NEW-VIEW can name: a prepared certificate
    /// has 2f+1 signers (the primary that made the PRE-PREPARE and 2f
    /// backups that accepted it), so f+1 of them are honest, and each keeps
    /// a copy while the sequence number is in the window, persisted
    /// ([`crate::persist::Persist::Accepted`]) so that a restart keeps it
    /// too. A crash before that record is synced loses that one copy.
    fn enter_view(&mut self, now: Time, plan: &NewViewPlan, pre_prepares: Vec<Signed<PrePrepare>>) {
        let pre_prepares: Vec<Signed<PrePrepare>> = pre_prepares
            .into_iter()
            .map(|pp| match self.batch_copy(pp.payload().seq, pp.payload().digest) {
                Some(batch) if pp.lacks_batch() => pp.with_batch(batch),
                _ => pp,
            })
            .collect();
        self.status = Status::Normal;
        self.last_normal_view = self.view;
        self.timers.cancel(Timer::ViewChange);
        self.timers.cancel(Timer::Term);
        self.arm_term(now);
        let view = self.view;
        self.view_changes.retain(|_, vc| vc.payload().new_view > view);
        self.log.clear();

        // The plan's sequence numbers are taken before anything can propose
        // (adopting the checkpoint below may): a primary that proposed first
        // would assign one of them twice, two PRE-PREPAREs for one slot.
        self.next_seq = plan.last_seq().max(self.low_watermark()) + 1;
        let primary = self.quorum.primary(view);
        self.pending.reset_proposed(
            pre_prepares.iter().flat_map(|pp| pp.payload().batch.iter().map(|r| r.payload())),
        );
        if plan.checkpoint.seq > self.low_watermark() {
            if self.own_checkpoints.get(&plan.checkpoint.seq) == Some(&plan.checkpoint.state_digest) {
                self.make_stable(now, plan.checkpoint.clone());
            } else if self.last_executed < plan.checkpoint.seq {
                let from = self.quorum.primary(self.view);
                self.start_transfer(now, plan.checkpoint.clone(), from);
            }
        }
        let mut seqs = Vec::new();
        for pre_prepare in pre_prepares {
            let (seq, digest) = (pre_prepare.payload().seq, pre_prepare.payload().digest);
            if !self.in_watermarks(seq) {
                continue;
            }
            self.accept_pre_prepare(pre_prepare);
            if primary != self.id {
                self.send_prepare(view, seq, digest);
            }
            seqs.push(seq);
        }
        self.emit(Event::NewViewEntered { view, primary });
        for seq in seqs {
            self.advance(now, seq);
        }
        self.replay_future(now);
        if self.is_primary() {
            self.try_propose(now, false);
        } else if !self.pending.is_empty() {
            let requests: Vec<Signed<Request>> = self.pending.iter().cloned().collect();
            for request in requests {
                self.send(primary, Message::Request(request));
            }
            self.await_oldest_request(now);
        }
    }

    /// Hands buffered messages of the view just entered back to the handlers
    /// (they were verified when they arrived).
    fn replay_future(&mut self, now: Time) {
        let view = self.view;
        for message in self.future.take() {
            if normal_case_view(&message).is_some_and(|v| v >= view) {
                self.dispatch(now, message);
            }
        }
    }
}
