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
    /// The PRE-PREPARE or NEW-VIEW does not come from the primary of its view.
    WrongPrimary,
    /// The sequence number lies outside the low and high watermarks.
    OutsideWatermarks,
    /// The sender already sent a different message for the same view and sequence number.
    Equivocation,
    /// A certificate (checkpoint proof, prepared certificate, proof of
    /// commitment, the view-changes of a NEW-VIEW or the certificates of a
    /// VIEW-CHANGE) breaks the named rule.
    InvalidCertificate(CertificateRule),
    /// A CHECKPOINT for a sequence number that is not a multiple of the
    /// checkpoint interval: no replica takes a checkpoint there.
    NotACheckpointSeq,
    /// A NEW-VIEW whose pre-prepares differ from what its view-changes imply.
    NewViewMismatch,
    /// The request's timestamp lies below its client's window: it executed
    /// long ago or the client gave up on it.
    StaleRequest,
    /// A client request under a timestamp at which another request of that
    /// client already executed: answered with the executed request's
    /// digest and result, which the client does not take for its own.
    TimestampReused,
    /// A PRE-PREPARE whose batch holds an unordered read, which is never ordered.
    UnorderedReadInBatch,
    /// A per-peer buffer is full; the message was dropped to keep memory bounded.
    BufferFull,
    /// A batch with more requests or more operation bytes than the
    /// configured maximum (`max_batch_size`, `max_batch_bytes`), or with a
    /// request over `max_request_bytes`.
    BatchTooLarge,
    /// A request whose operation is over `max_request_bytes`: dropped before
    /// it is held, so no client can make a batch outgrow a link's frames.
    RequestTooLarge,
    /// A PREPARE from the primary of its view: the primary pre-prepares instead.
    PrepareFromPrimary,
    /// A message claims to come from this replica itself.
    FromSelf,
    /// The message duplicates one already held.
    Duplicate,
    /// A peer asked again before its previous request was due (status
    /// reports, and state fetches that do not continue the last chunk sent):
    /// answering every one would let a peer amplify its traffic.
    TooFrequent,
    /// A PREPARE for a slot already prepared, or a COMMIT for one already
    /// committed-local, in the current view: it could change nothing, so it
    /// is dropped before its signature is checked.
    Unneeded,
    /// A state chunk shorter than the configured chunk size that does not
    /// end the state: honest peers always send full chunks, and a peer that
    /// sends a trickle (a byte at a time, each just before the fetch timer
    /// runs out) would stretch a transfer without bound. The fetch moves on
    /// to the next peer.
    ShortChunk,
    /// This replica is recovering from a lost or damaged disk: it takes part
    /// in no agreement (no PRE-PREPARE, PREPARE, COMMIT, VIEW-CHANGE or
    /// NEW-VIEW) until it has learned how far the cluster got.
    Recovering,
}

/// The rule a certificate breaks, so a rejected certificate says why in logs
/// and counters (`InvalidCertificate(TooFewSigners)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CertificateRule {
    /// One replica signed two of the certificate's messages: each signer counts once.
    RepeatedSigner,
    /// Fewer distinct signers than the quorum the certificate needs (2f+1,
    /// or 2f prepares besides the pre-prepare).
    TooFewSigners,
    /// A vote in the certificate names another view, sequence number or
    /// digest than the certificate itself.
    VoteMismatch,
    /// A prepared certificate counts a PREPARE from the primary of its view,
    /// which pre-prepares instead (OSDI'99 §4.2).
    PrepareFromPrimary,
    /// A message inside a NEW-VIEW (a view-change or a pre-prepare) is for
    /// another view than the NEW-VIEW.
    WrongView,
    /// A VIEW-CHANGE carries a prepared certificate from the view it asks
    /// for or a later one, where nothing can have prepared yet.
    PreparedInNewView,
    /// A VIEW-CHANGE's prepared certificates are not listed once per
    /// sequence number, in ascending order, above its checkpoint.
    CertificatesOutOfOrder,
    /// A VIEW-CHANGE's prepared certificates reach beyond one watermark
    /// window above its checkpoint.
    BeyondWindow,
    /// A pre-prepare inside a VIEW-CHANGE or a NEW-VIEW carries its batch:
    /// those carry headers only, so that their size is bounded by the
    /// watermark window and not by the requests' payloads.
    BatchIncluded,
    /// The checkpoint proof of sequence number 0 (the initial state) carries
    /// votes: it is the one proof that needs none.
    VotesForGenesis,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
