//! Why an input was ignored: every dropped message has a named reason.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The reason a message or request was dropped. Surfaces as an event and a
/// counter, so tests and operators can see that honest replicas noticed a traitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reject {
    /// The author is not in the key book.
    UnknownSigner,
    /// The signature does not verify under the author's key.
    BadSignature,
    /// A PRE-PREPARE's digest does not match its batch.
    DigestMismatch,
    /// The message is for a view older than the replica's.
    StaleView,
    /// The message is for a view the replica has not entered; it may be buffered.
    FutureView,
    /// The PRE-PREPARE or NEW-VIEW does not come from the primary of its view.
    WrongPrimary,
    /// The sequence number lies outside the low and high watermarks.
    OutsideWatermarks,
    /// The sender already sent a different message for the same view and sequence number.
    Equivocation,
    /// A nested certificate (prepared certificate, checkpoint proof, view-change set) is invalid.
    InvalidCertificate,
    /// A NEW-VIEW whose pre-prepares differ from what its view-changes imply.
    NewViewMismatch,
    /// The replica is changing views and ignores normal-case messages.
    ViewChangeInProgress,
    /// The request's timestamp lies below its client's window: it executed
    /// long ago or the client gave up on it.
    StaleRequest,
    /// A PRE-PREPARE whose batch holds an unordered read, which is never ordered.
    UnorderedReadInBatch,
    /// A per-peer buffer is full; the message was dropped to keep memory bounded.
    BufferFull,
    /// A batch larger than the configured maximum.
    BatchTooLarge,
    /// A PREPARE from the primary of its view: the primary pre-prepares instead.
    PrepareFromPrimary,
    /// A message claims to come from this replica itself.
    FromSelf,
    /// The message duplicates one already held.
    Duplicate,
    /// A peer asked again before its previous request was due (status
    /// reports): answering every one would let a peer amplify its traffic.
    TooFrequent,
    /// A PREPARE for a slot already prepared, or a COMMIT for one already
    /// committed-local, in the current view: it could change nothing, so it
    /// is dropped before its signature is checked.
    Unneeded,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
