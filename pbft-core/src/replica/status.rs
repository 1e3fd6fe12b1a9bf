//! Recovery from lost messages (TOCS'02 §5.2): replicas report their status
//! periodically and peers resend what the report shows is missing.

use super::{CommitProof, Replica, Status, Timer};
use crate::app::ReplicatedStateMachine;
use crate::message::{Committed, Message, StableCheckpoint, StatusReport};
use crate::reject::Reject;
use crate::signed::{Signable, Signed};
use crate::time::Time;

/// Most commit proofs sent in answer to one status report; the next report
/// asks for the rest, so a peer far behind catches up at a bounded pace.
const MAX_PROOFS_PER_REPORT: u64 = 16;

/// An idle replica reports this many times less often than a waiting one.
const IDLE_STATUS_FACTOR: u64 = 8;

impl<A: ReplicatedStateMachine> Replica<A> {
    pub(super) fn on_status_timeout(&mut self, now: Time) {
        let report = StatusReport {
            view: self.view,
            view_changing: self.status == Status::ViewChanging,
            last_executed: self.last_executed,
            stable_seq: self.low_watermark(),
            replica: self.id,
        };
        self.broadcast(Message::Status(Signed::sign(report, &self.secret)));
        let interval = self.config.status_interval_ms;
        let next = if self.is_waiting() { interval } else { interval * IDLE_STATUS_FACTOR };
        self.timers.set(Timer::Status, now + next);
    }

    /// Whether this replica is waiting for something peers may have: a
    /// NEW-VIEW, the execution of a request it holds, or batches in its log
    /// that have not executed. An idle replica reports less often.
    fn is_waiting(&self) -> bool {
        self.status == Status::ViewChanging
            || self.recovering.is_some()
            || self.transfer.is_some()
            || !self.pending.is_empty()
            || self.log.keys().next_back().is_some_and(|seq| *seq > self.last_executed)
    }

    /// Resends to the reporting replica what it lacks and this replica has:
    /// the NEW-VIEW of a view it has not entered, this replica's VIEW-CHANGE
    /// for a view it has not asked for, and proofs of batches it has not executed.
    /// A peer is answered at most once per half status interval: an honest
    /// peer reports once per interval, and answering more often would let a
    /// traitor turn each cheap report into many signed proofs.
    pub(super) fn on_status(&mut self, now: Time, report: Signed<StatusReport>) {
        let report = report.into_payload();
        let to = report.replica;
        let spacing = self.config.status_interval_ms / 2;
        if self.status_answered.get(&to).is_some_and(|last| now < *last + spacing) {
            self.reject(report.author(), StatusReport::KIND, Reject::TooFrequent);
            return;
        }
        self.status_answered.insert(to, now);
        match self.status {
            Status::Normal => {
                let behind = report.view < self.view || (report.view == self.view && report.view_changing);
                if behind {
                    if let Some(new_view) = self.last_new_view.clone() {
                        self.send(to, Message::NewView(new_view));
                    }
                }
            }
            Status::ViewChanging => {
                if report.view < self.view || (report.view == self.view && report.view_changing) {
                    if let Some(own) = self.view_changes.get(&self.id).cloned() {
                        self.send(to, Message::ViewChange(own));
                    }
                }
            }
        }
        if report.last_executed < self.low_watermark() {
            let stable = StableCheckpoint { proof: self.stable_checkpoint.clone(), replica: self.id };
            self.send(to, Message::StableCheckpoint(Signed::sign(stable, &self.secret)));
        } else if report.last_executed < self.last_executed {
            let last = self.last_executed.min(report.last_executed + MAX_PROOFS_PER_REPORT);
            for seq in report.last_executed + 1..=last {
                let Some(proof) = self.commit_proofs.get(&seq).cloned() else { continue };
                let committed =
                    Committed { pre_prepare: proof.pre_prepare, commits: proof.commits, replica: self.id };
                self.send(to, Message::Committed(Signed::sign(committed, &self.secret)));
            }
        }
    }

    /// Accepts a relayed proof of commitment for a batch not yet executed here.
    pub(super) fn on_committed(&mut self, now: Time, committed: Signed<Committed>) {
        let body = committed.payload();
        let seq = body.seq();
        let reason = if seq <= self.last_executed || self.commit_proofs.contains_key(&seq) {
            Some(Reject::Duplicate)
        } else if !self.in_watermarks(seq) {
            Some(Reject::OutsideWatermarks)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.reject(body.author(), Committed::KIND, reason);
            return;
        }
        let body = committed.into_payload();
        self.commit_proofs.insert(seq, CommitProof { pre_prepare: body.pre_prepare, commits: body.commits });
        self.try_execute(now);
    }
}
