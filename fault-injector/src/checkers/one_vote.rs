//! One vote per slot, across restarts: no honest replica signs two different
//! PRE-PREPAREs, PREPAREs or COMMITs for one (view, sequence number), or two
//! different VIEW-CHANGEs for one view (OSDI'99 §4.4: a replica that did
//! could make two quorums certify two batches). A replica restarted from its
//! disk is the same replica: what it signed before the crash counts.

use super::{FirstViolation, Verdict};
use pbft_core::{Digest, Message, MessageKind, ReplicaId, SeqNum, Time, View};
use std::collections::BTreeMap;

/// What a signed protocol message commits its author to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The message kind.
    pub kind: MessageKind,
    /// Its view (the new view, for a VIEW-CHANGE).
    pub view: View,
    /// Its sequence number (0 for a VIEW-CHANGE).
    pub seq: SeqNum,
    /// What it votes for: the batch digest, or the whole VIEW-CHANGE's digest.
    pub digest: Digest,
}

impl Vote {
    /// The vote `message` casts, if it is a vote.
    pub fn of(message: &Message) -> Option<Vote> {
        let kind = message.kind();
        let (view, seq, digest) = match message {
            Message::PrePrepare(m) => (m.payload().view, m.payload().seq, m.payload().digest),
            Message::Prepare(m) => (m.payload().view, m.payload().seq, m.payload().digest),
            Message::Commit(m) => (m.payload().view, m.payload().seq, m.payload().digest),
            Message::ViewChange(m) => (m.payload().new_view, 0, m.digest()),
            _ => return None,
        };
        Some(Vote { kind, view, seq, digest })
    }
}

/// Checks one vote per slot online.
#[derive(Debug, Default)]
pub struct OneVote {
    cast: BTreeMap<(ReplicaId, MessageKind, View, SeqNum), Digest>,
    first: FirstViolation,
}

impl OneVote {
    /// An honest replica sent `vote`.
    pub fn on_sent(&mut self, at: Time, replica: ReplicaId, vote: Vote) {
        let key = (replica, vote.kind, vote.view, vote.seq);
        match self.cast.get(&key) {
            Some(earlier) if *earlier != vote.digest => self.first.record(|| {
                format!(
                    "at {} ms {replica} signed a second {:?} for view {} seq {}: {} after {earlier}",
                    at.as_millis(),
                    vote.kind,
                    vote.view,
                    vote.seq,
                    vote.digest
                )
            }),
            Some(_) => {}
            None => {
                self.cast.insert(key, vote.digest);
            }
        }
    }

    /// `replica` lost its disk: it is a faulty replica until it has caught
    /// up, and what it signed before is not held against it.
    pub fn forget(&mut self, replica: ReplicaId) {
        self.cast.retain(|(r, ..), _| *r != replica);
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.first.verdict("one-vote")
    }
}
