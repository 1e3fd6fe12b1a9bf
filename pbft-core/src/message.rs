//! The protocol's messages (OSDI'99 §4), as plain data.

use crate::digest::Digest;
use crate::ids::{ClientId, ReplicaId, SeqNum, View};
use crate::signed::{Author, MessageKind, Signable, Signed};
use serde::{Deserialize, Serialize};

/// A client's request to run `op` on the replicated state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The client that signs the request and receives the replies.
    pub client: ClientId,
    /// Per-client, strictly increasing; orders a client's requests and makes
    /// execution exactly-once.
    pub timestamp: u64,
    /// The application operation, opaque to the protocol.
    #[serde(with = "crate::codec::bytes")]
    pub op: Vec<u8>,
    /// Whether the operation changes state, and how it is ordered.
    pub kind: RequestKind,
}

/// How a request is carried out. Only [`RequestKind::Write`] may change the
/// application's state; the other two run the application's read-only `query`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RequestKind {
    /// Ordered by the protocol and executed with `execute`.
    #[default]
    Write,
    /// Ordered by the protocol like a write, but answered with `query`: the
    /// fallback of an unordered read whose replies did not agree.
    Read,
    /// The read-only optimisation (OSDI'99 §5.1): every replica answers from
    /// its committed state without ordering, and the client needs 2f+1
    /// matching answers. Never part of a batch.
    UnorderedRead,
}

/// The primary's proposal: batch `batch` gets sequence number `seq` in `view`.
/// An empty batch is the null request that fills a gap after a view change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare {
    /// The view of the proposal.
    pub view: View,
    /// The sequence number assigned.
    pub seq: SeqNum,
    /// [`batch_digest`] of `batch`.
    pub digest: Digest,
    /// The primary of `view`, the signer.
    pub primary: ReplicaId,
    /// The client requests, each signed by its client.
    pub batch: Vec<Signed<Request>>,
}

/// A backup's vote that it accepted the pre-prepare `(view, seq, digest)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepare {
    /// The view.
    pub view: View,
    /// The sequence number.
    pub seq: SeqNum,
    /// The batch digest.
    pub digest: Digest,
    /// The signer.
    pub replica: ReplicaId,
}

/// A replica's vote that `(view, seq, digest)` is prepared at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The view.
    pub view: View,
    /// The sequence number.
    pub seq: SeqNum,
    /// The batch digest.
    pub digest: Digest,
    /// The signer.
    pub replica: ReplicaId,
}

/// A replica's statement that after executing `seq` its state has digest `state_digest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last sequence number executed in the checkpointed state.
    pub seq: SeqNum,
    /// Digest of the application snapshot and the reply cache.
    pub state_digest: Digest,
    /// The signer.
    pub replica: ReplicaId,
}

/// Proof that checkpoint `seq` is stable: a quorum of matching CHECKPOINTs.
/// The initial state (`seq == 0`) needs no proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointProof {
    /// The checkpoint's sequence number.
    pub seq: SeqNum,
    /// The agreed state digest.
    pub state_digest: Digest,
    /// The matching checkpoint messages from distinct replicas.
    pub checkpoints: Vec<Signed<Checkpoint>>,
}

impl CheckpointProof {
    /// The proof of the initial state, which every replica starts from.
    pub fn genesis() -> CheckpointProof {
        CheckpointProof { seq: 0, state_digest: Digest::default(), checkpoints: Vec::new() }
    }
}

/// Proof that a batch was prepared: its pre-prepare and 2f matching prepares
/// from distinct backups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCert {
    /// The primary's pre-prepare.
    pub pre_prepare: Signed<PrePrepare>,
    /// Matching prepares from distinct backups.
    pub prepares: Vec<Signed<Prepare>>,
}

impl PreparedCert {
    /// The certificate with its pre-prepare's batch left out, as a
    /// VIEW-CHANGE carries it.
    pub fn without_batch(&self) -> PreparedCert {
        PreparedCert { pre_prepare: self.pre_prepare.without_batch(), prepares: self.prepares.clone() }
    }

    /// The view in which the batch was prepared.
    pub fn view(&self) -> View {
        self.pre_prepare.payload().view
    }

    /// The sequence number of the batch.
    pub fn seq(&self) -> SeqNum {
        self.pre_prepare.payload().seq
    }

    /// The batch digest.
    pub fn digest(&self) -> Digest {
        self.pre_prepare.payload().digest
    }
}

/// A replica's request to move to `new_view`, with what it knows that must survive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    /// The view the replica wants to move to.
    pub new_view: View,
    /// The signer.
    pub replica: ReplicaId,
    /// The replica's stable checkpoint with its proof.
    pub checkpoint: CheckpointProof,
    /// For every sequence number above the checkpoint that prepared at the
    /// replica, the certificate from the highest view in which it did, its
    /// pre-prepare without the batch ([`PreparedCert::without_batch`]).
    pub prepared: Vec<PreparedCert>,
}

/// The new primary's announcement of `view`: the view-changes it is based on
/// and the pre-prepares they imply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    /// The new view.
    pub view: View,
    /// Its primary, the signer.
    pub primary: ReplicaId,
    /// A quorum of VIEW-CHANGEs for `view` from distinct replicas.
    pub view_changes: Vec<Signed<ViewChange>>,
    /// Re-proposals for every sequence number between the highest stable
    /// checkpoint and the highest prepared certificate in `view_changes`,
    /// without their batches: each replica takes a batch from its own log,
    /// or executes the sequence number from a peer's proof of commitment.
    pub pre_prepares: Vec<Signed<PrePrepare>>,
}

/// A replica's periodic report of where it is (TOCS'02 §5.2), so that peers
/// can resend what it is missing: a NEW-VIEW, a VIEW-CHANGE, committed batches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The replica's view (the target view while changing views).
    pub view: View,
    /// Whether it is waiting for the NEW-VIEW of `view`.
    pub view_changing: bool,
    /// The highest sequence number it executed.
    pub last_executed: SeqNum,
    /// Its stable checkpoint.
    pub stable_seq: SeqNum,
    /// The signer.
    pub replica: ReplicaId,
}

/// Proof that a batch committed: its pre-prepare and a quorum of matching
/// COMMITs from distinct replicas. Sent by `replica` to a peer that is behind;
/// the peer may execute the batch without taking part in its agreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The pre-prepare of the batch.
    pub pre_prepare: Signed<PrePrepare>,
    /// Matching commits from distinct replicas.
    pub commits: Vec<Signed<Commit>>,
    /// The replica relaying the proof, the signer.
    pub replica: ReplicaId,
}

impl Committed {
    /// The sequence number of the batch.
    pub fn seq(&self) -> SeqNum {
        self.pre_prepare.payload().seq
    }
}

/// A stable checkpoint's proof, sent to a replica whose status shows it is
/// behind that checkpoint: the cue to fetch the checkpointed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableCheckpoint {
    /// The proof (2f+1 matching CHECKPOINTs).
    pub proof: CheckpointProof,
    /// The sender, the signer.
    pub replica: ReplicaId,
}

/// A request for the bytes of the state at checkpoint `seq`, from `offset` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchState {
    /// The checkpoint.
    pub seq: SeqNum,
    /// Its certified state digest.
    pub state_digest: Digest,
    /// The first byte wanted.
    pub offset: u64,
    /// The replica fetching, the signer.
    pub replica: ReplicaId,
}

/// A chunk of the state at checkpoint `seq`. The receiver checks the whole
/// against the certified digest, so a chunk needs no proof of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChunk {
    /// The checkpoint.
    pub seq: SeqNum,
    /// The state digest the sender claims.
    pub state_digest: Digest,
    /// Where the chunk starts.
    pub offset: u64,
    /// The length of the whole state in bytes.
    pub total_len: u64,
    /// The bytes.
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
    /// The sender, the signer.
    pub replica: ReplicaId,
}

/// A replica's answer to a client, sent over the authenticated channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The view in which the request executed (lets the client find the primary).
    pub view: View,
    /// The request's timestamp.
    pub timestamp: u64,
    /// The client.
    pub client: ClientId,
    /// The replica that executed it.
    pub replica: ReplicaId,
    /// The digest of the request that executed under this timestamp. A
    /// client counts only replies naming its own request: another request
    /// under the same timestamp (a second process with the same client
    /// identity, a clock stepped back) never lends it its result.
    pub request: Digest,
    /// The application's result; empty when it was withheld.
    #[serde(with = "crate::codec::bytes")]
    pub result: Vec<u8>,
    /// `Some(bytes)` when the result was larger than the cluster's
    /// `max_result_bytes` and is not kept or sent: the request executed,
    /// and this is all a client learns of its result.
    pub withheld: Option<u64>,
    /// True when the replica answered an [`RequestKind::UnorderedRead`] from
    /// its state without ordering it. A client never counts such an answer
    /// towards the f+1 replies that complete an ordered request.
    pub unordered: bool,
}

/// Every message replicas exchange, as it travels (signatures unchecked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A client request, sent by a client or relayed by a backup.
    Request(Signed<Request>),
    /// PRE-PREPARE.
    PrePrepare(Signed<PrePrepare>),
    /// PREPARE.
    Prepare(Signed<Prepare>),
    /// COMMIT.
    Commit(Signed<Commit>),
    /// CHECKPOINT.
    Checkpoint(Signed<Checkpoint>),
    /// VIEW-CHANGE.
    ViewChange(Signed<ViewChange>),
    /// NEW-VIEW.
    NewView(Signed<NewView>),
    /// STATUS.
    Status(Signed<StatusReport>),
    /// A relayed proof that a batch committed.
    Committed(Signed<Committed>),
    /// A stable checkpoint's proof for a replica that is behind it.
    StableCheckpoint(Signed<StableCheckpoint>),
    /// A request for checkpointed state.
    FetchState(Signed<FetchState>),
    /// A chunk of checkpointed state.
    StateChunk(Signed<StateChunk>),
}

impl Message {
    /// The kind of this message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Request(_) => MessageKind::Request,
            Message::PrePrepare(_) => MessageKind::PrePrepare,
            Message::Prepare(_) => MessageKind::Prepare,
            Message::Commit(_) => MessageKind::Commit,
            Message::Checkpoint(_) => MessageKind::Checkpoint,
            Message::ViewChange(_) => MessageKind::ViewChange,
            Message::NewView(_) => MessageKind::NewView,
            Message::Status(_) => MessageKind::Status,
            Message::Committed(_) => MessageKind::Committed,
            Message::StableCheckpoint(_) => MessageKind::StableCheckpoint,
            Message::FetchState(_) => MessageKind::FetchState,
            Message::StateChunk(_) => MessageKind::StateChunk,
        }
    }

    /// The claimed author (checked only by verification).
    pub fn author(&self) -> Author {
        match self {
            Message::Request(m) => m.payload().author(),
            Message::PrePrepare(m) => m.payload().author(),
            Message::Prepare(m) => m.payload().author(),
            Message::Commit(m) => m.payload().author(),
            Message::Checkpoint(m) => m.payload().author(),
            Message::ViewChange(m) => m.payload().author(),
            Message::NewView(m) => m.payload().author(),
            Message::Status(m) => m.payload().author(),
            Message::Committed(m) => m.payload().author(),
            Message::StableCheckpoint(m) => m.payload().author(),
            Message::FetchState(m) => m.payload().author(),
            Message::StateChunk(m) => m.payload().author(),
        }
    }
}

/// The digest of a batch: over the digests of its requests, in order.
pub fn batch_digest(batch: &[Signed<Request>]) -> Digest {
    batch_digest_of(&batch.iter().map(Signed::digest).collect::<Vec<_>>())
}

/// [`batch_digest`] from the requests' digests, for a caller that has them.
pub(crate) fn batch_digest_of(request_digests: &[Digest]) -> Digest {
    let parts: Vec<&[u8]> = request_digests.iter().map(|d| d.as_bytes().as_slice()).collect();
    Digest::of_parts(&parts)
}

macro_rules! signable {
    ($ty:ty, $kind:ident, |$m:ident| $author:expr) => {
        impl Signable for $ty {
            const KIND: MessageKind = MessageKind::$kind;
            fn author(&self) -> Author {
                let $m = self;
                $author
            }
        }
    };
}

signable!(Request, Request, |m| Author::Client(m.client));

/// A PRE-PREPARE's signature covers its header (view, sequence number,
/// digest, primary), not its batch: the digest commits to the batch, and a
/// batch travels with the signature only where it is needed. A VIEW-CHANGE
/// or NEW-VIEW carries PRE-PREPAREs without their batches
/// ([`Signed::without_batch`]), so its size is bounded by the watermark
/// window, not by the requests' payloads (issue 21, point 1).
impl Signable for PrePrepare {
    const KIND: MessageKind = MessageKind::PrePrepare;
    fn author(&self) -> Author {
        Author::Replica(self.primary)
    }
    fn signing_digest(&self) -> Digest {
        crate::signed::signing_digest_of::<PrePrepare, _>(&(self.view, self.seq, self.digest, self.primary))
    }
}

impl Signed<PrePrepare> {
    /// The same signed PRE-PREPARE without its batch: what a VIEW-CHANGE and
    /// a NEW-VIEW carry. The signature still holds (it covers the header).
    pub fn without_batch(&self) -> Signed<PrePrepare> {
        if self.payload().batch.is_empty() {
            return self.clone();
        }
        Signed::from_parts(self.payload().clone_header(), self.signature().to_vec())
    }

    /// The same signed PRE-PREPARE carrying `batch`, which the caller has
    /// checked against the digest ([`batch_digest`]).
    pub(crate) fn with_batch(&self, batch: Vec<Signed<Request>>) -> Signed<PrePrepare> {
        let full = PrePrepare { batch, ..self.payload().clone_header() };
        Signed::from_parts(full, self.signature().to_vec())
    }

    /// Whether this PRE-PREPARE names a batch it does not carry: one taken
    /// from a NEW-VIEW whose requests this replica has not seen.
    pub fn lacks_batch(&self) -> bool {
        let body = self.payload();
        body.batch.is_empty() && body.digest != null_batch_digest()
    }
}

impl PrePrepare {
    /// The header alone (an empty batch).
    fn clone_header(&self) -> PrePrepare {
        PrePrepare {
            view: self.view,
            seq: self.seq,
            digest: self.digest,
            primary: self.primary,
            batch: Vec::new(),
        }
    }
}

/// The digest of the empty batch: the null request of a NEW-VIEW.
pub fn null_batch_digest() -> Digest {
    static NULL: std::sync::OnceLock<Digest> = std::sync::OnceLock::new();
    *NULL.get_or_init(|| batch_digest(&[]))
}
signable!(Prepare, Prepare, |m| Author::Replica(m.replica));
signable!(Commit, Commit, |m| Author::Replica(m.replica));
signable!(Checkpoint, Checkpoint, |m| Author::Replica(m.replica));
signable!(ViewChange, ViewChange, |m| Author::Replica(m.replica));
signable!(NewView, NewView, |m| Author::Replica(m.primary));
signable!(StatusReport, Status, |m| Author::Replica(m.replica));
signable!(Committed, Committed, |m| Author::Replica(m.replica));
signable!(StableCheckpoint, StableCheckpoint, |m| Author::Replica(m.replica));
signable!(FetchState, FetchState, |m| Author::Replica(m.replica));
signable!(StateChunk, StateChunk, |m| Author::Replica(m.replica));
