//! Cheap checks before expensive ones (issue 21, point 3): a message that
//! its unverified fields already condemn is dropped before any signature in
//! it is checked, so a peer cannot make a replica verify what it would drop
//! anyway. Every rule here is one a handler applies after verification too,
//! so screening changes which reason a forged message is counted under,
//! never what an honest one achieves.

use super::{Replica, Status};
use crate::app::ReplicatedStateMachine;
use crate::message::{Message, NewView, PrePrepare, ViewChange};
use crate::reject::{CertificateRule, Reject};
use crate::signed::Signed;

impl<A: ReplicatedStateMachine> Replica<A> {
    /// Why `message` would be dropped whatever its signatures, if it would:
    /// a vote that can no longer matter, a message for a view this replica
    /// has left, a sequence number outside the watermarks, a batch or
    /// request over its bound, certificates or re-proposals beyond one
    /// window. Looks at unverified fields only, to decide to drop.
    pub(super) fn screen(&self, message: &Message) -> Option<Reject> {
        if self.recovering.is_some() {
            return None;
        }
        if self.vote_unneeded(message) {
            return Some(Reject::Unneeded);
        }
        match message {
            Message::Request(m) => {
                (m.payload().op.len() > self.config.max_request_bytes).then_some(Reject::RequestTooLarge)
            }
            Message::PrePrepare(m) => self.screen_pre_prepare(m),
            Message::Prepare(m) => self.screen_vote(m.payload().view, m.payload().seq),
            Message::Commit(m) => self.screen_vote(m.payload().view, m.payload().seq),
            Message::ViewChange(m) => self.screen_view_change(m),
            Message::NewView(m) => self.screen_new_view(m),
            _ => None,
        }
    }

    /// A view this replica has left, or a sequence number outside the
    /// watermarks of the view it is in.
    fn screen_vote(&self, view: crate::View, seq: crate::SeqNum) -> Option<Reject> {
        if view < self.view {
            return Some(Reject::StaleView);
        }
        let current = view == self.view && self.status == Status::Normal;
        (current && !self.in_watermarks(seq)).then_some(Reject::OutsideWatermarks)
    }

    fn screen_pre_prepare(&self, pre_prepare: &Signed<PrePrepare>) -> Option<Reject> {
        let body = pre_prepare.payload();
        if let Some(reason) = self.screen_vote(body.view, body.seq) {
            return Some(reason);
        }
        let oversized = body.batch.len() > self.config.max_batch_size || !self.fits_a_batch(&body.batch);
        oversized.then_some(Reject::BatchTooLarge)
    }

    /// Whether a view change or NEW-VIEW for `view` comes too late: this
    /// replica is in a later view, or already runs this one.
    pub(super) fn is_stale_view_change(&self, view: crate::View) -> bool {
        view < self.view || (view == self.view && self.status == Status::Normal)
    }

    /// More certificates than one window holds: they cannot all lie above
    /// the checkpoint and within the window, so the message is refused
    /// before its signatures, however many, are checked.
    fn beyond_window(&self, count: usize) -> bool {
        u64::try_from(count).map_or(true, |count| count > self.config.watermark_window)
    }

    fn screen_view_change(&self, view_change: &Signed<ViewChange>) -> Option<Reject> {
        let body = view_change.payload();
        if self.is_stale_view_change(body.new_view) {
            return Some(Reject::StaleView);
        }
        self.oversized_view_change(body)
    }

    /// A VIEW-CHANGE holding more than its parts can: certificates beyond
    /// one window, or more votes in a certificate or checkpoint proof than
    /// there are replicas to cast them (one must repeat a signer). Bounds
    /// the signatures a batch check of it can be made to verify.
    fn oversized_view_change(&self, body: &ViewChange) -> Option<Reject> {
        if self.beyond_window(body.prepared.len()) {
            return Some(Reject::InvalidCertificate(CertificateRule::BeyondWindow));
        }
        let n = self.quorum.n();
        let too_many_votes = body.checkpoint.checkpoints.len() > n
            || body.prepared.iter().any(|cert| cert.prepares.len() >= n);
        too_many_votes.then_some(Reject::InvalidCertificate(CertificateRule::RepeatedSigner))
    }

    /// A NEW-VIEW for a view already entered or left, with more view-changes
    /// than there are replicas (one must repeat a signer), or with more
    /// re-proposals or certificates than one window holds.
    fn screen_new_view(&self, new_view: &Signed<NewView>) -> Option<Reject> {
        let body = new_view.payload();
        if self.is_stale_view_change(body.view) {
            return Some(Reject::StaleView);
        }
        if body.view_changes.len() > self.quorum.n() {
            return Some(Reject::InvalidCertificate(CertificateRule::RepeatedSigner));
        }
        if self.beyond_window(body.pre_prepares.len()) {
            return Some(Reject::InvalidCertificate(CertificateRule::BeyondWindow));
        }
        body.view_changes.iter().find_map(|vc| self.oversized_view_change(vc.payload()))
    }
}
