//! One sequence number's entry in the message log of the current view.

use crate::digest::Digest;
use crate::ids::ReplicaId;
use crate::message::{Commit, PrePrepare, Prepare, PreparedCert};
use crate::signed::Signed;
use std::collections::BTreeMap;

/// The pre-prepare, prepares and commits for one sequence number in the
/// current view, at most one message of each kind per replica.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) pre_prepare: Option<Signed<PrePrepare>>,
    pub(crate) prepares: BTreeMap<ReplicaId, Signed<Prepare>>,
    pub(crate) commits: BTreeMap<ReplicaId, Signed<Commit>>,
    /// Prepared at this replica (OSDI'99 §4.2); this replica sent its COMMIT.
    pub(crate) prepared: bool,
    /// Committed-local at this replica: ready to execute in order.
    pub(crate) committed: bool,
}

impl Slot {
    pub(crate) fn digest(&self) -> Option<Digest> {
        self.pre_prepare.as_ref().map(|pp| pp.payload().digest)
    }

    /// Prepares matching the pre-prepare's digest. The primary never
    /// contributes: its prepares are refused on arrival.
    pub(crate) fn matching_prepares(&self) -> Vec<&Signed<Prepare>> {
        match self.digest() {
            Some(digest) => self.prepares.values().filter(|p| p.payload().digest == digest).collect(),
            None => Vec::new(),
        }
    }

    pub(crate) fn matching_commits(&self) -> usize {
        match self.digest() {
            Some(digest) => self.commits.values().filter(|c| c.payload().digest == digest).count(),
            None => 0,
        }
    }

    /// The prepared certificate, once prepared.
    pub(crate) fn certificate(&self) -> Option<PreparedCert> {
        let pre_prepare = self.pre_prepare.clone()?;
        Some(PreparedCert { pre_prepare, prepares: self.matching_prepares().into_iter().cloned().collect() })
    }

    pub(crate) fn message_count(&self) -> usize {
        usize::from(self.pre_prepare.is_some()) + self.prepares.len() + self.commits.len()
    }
}
