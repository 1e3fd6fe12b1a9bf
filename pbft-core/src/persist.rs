//! What a replica must make durable, and why that is enough.
//!
//! The core does no I/O: it emits [`Output::Persist`](crate::Output::Persist)
//! records, and **the host writes every record in order, and makes every
//! record that [holds back sends](Persist::holds_back_sends) durable before
//! it performs any later send or reply** (group commit: one write and one
//! fdatasync for all records of a burst, or of every burst queued while the
//! last sync ran, then the sends). After a crash the
//! host hands the records it finds back to [`Replica::recover`](crate::Replica::recover),
//! in the order they were written.
//!
//! ## The safety argument
//!
//! PBFT's safety (OSDI'99 §4.4; TOCS'02 §4.2) rests on two things an honest
//! replica must never do, and one thing it must never forget:
//!
//! 1. **Sign two conflicting messages for one (view, sequence number)**, or
//!    two VIEW-CHANGEs for one view. Rule: before its first message of view
//!    `v` the replica persists [`Persist::View`]`(v)`; a recovered replica
//!    never signs another PREPARE, COMMIT or PRE-PREPARE in any view up to
//!    the highest one it persisted, because recovery starts a view change to
//!    the next view (`v + 1`, fresh: nothing was ever signed in it, or its
//!    `View` record would say so). So no vote of a view is ever cast twice,
//!    whatever was lost in memory. (Viewstamped Replication Revisited makes a
//!    recovering replica take the same care.)
//! 2. **Forget a prepared certificate** it may have contributed to a commit:
//!    a request that committed at sequence number n in view v was prepared at
//!    f+1 honest replicas, and every later view's NEW-VIEW is built from 2f+1
//!    VIEW-CHANGEs, at least one of them from such a replica, which must
//!    still carry the certificate (§4.4 "view changes"). Rule: the
//!    certificate is persisted ([`Persist::Prepared`]) before the replica
//!    sends its COMMIT, and a recovered replica's VIEW-CHANGE carries every
//!    persisted certificate above its stable checkpoint.
//! 3. **Forget what it told a client** (exactly-once, and "nothing
//!    acknowledged is lost" even when every replica crashes at once). A
//!    reply goes out only for a committed batch, and a batch committed at
//!    (v, n) was prepared at 2f+1 replicas, f+1 of them honest, each of
//!    which made its certificate durable (rule 2) before its COMMIT. So
//!    even if every replica restarts, any 2f+1 of them that form the next
//!    NEW-VIEW include one that still holds the certificate, and the new
//!    view re-proposes the batch at n (§4.4; or, if n is below the new
//!    view's stable checkpoint, the state transferred there includes it,
//!    §4.3; a certificate is deleted only by a durable snapshot of a later
//!    checkpoint): the application and the reply
//!    cache are rebuilt by executing it again, with the same result, since
//!    execution is deterministic. The certificates are therefore what makes
//!    an acknowledged operation durable. [`Persist::Executed`] records the
//!    batch as executed too, but only so that a restarted replica can replay
//!    its own execution without waiting for a view change and peers: it
//!    does **not** hold back the reply ([`Persist::holds_back_sends`] is
//!    false for it), which saves a second sync on every request's path. A
//!    crash may lose the newest `Executed` records (never an older one
//!    without the newer: records are written in order); the replica then
//!    re-executes those batches when the next view re-proposes them, or
//!    fetches them from its peers.
//! 4. **Lose the batch a certificate names.** VIEW-CHANGEs and NEW-VIEWs
//!    name batches by digest only (issue 21, point 1), so the new view
//!    executes a re-proposed batch from replicas' own copies. The f+1 honest
//!    replicas that accepted it (as its certificate's signers) write it as
//!    [`Persist::Accepted`], which does not hold back sends; a certificate
//!    they prepare is written after it and does, so a replica that prepared
//!    the batch has it durable before its COMMIT (rule 3 stands). One that
//!    only accepted it may lose its copy to a crash before its next sync.
//!
//! A replica that lost its records, or cannot trust them, restarts with
//! [`Replica::recover_lost`](crate::Replica::recover_lost): it signs nothing
//! until 2f+1 other replicas have reported their views, then asks for the
//! view two above the highest reported. Any view it voted in was entered by
//! f+1 honest replicas, one of which is among any 2f+1 reporters, so it was
//! at most the highest reported, and it can have asked for at most one view
//! beyond (a replica joins a view change only once f+1 replicas ask, or by
//! itself for the next view). While recovering it persists nothing, so that
//! a crash in the middle finds the host's record of the damage unchanged (a
//! data directory still empty, or a quarantine not yet followed by a
//! snapshot) and recovers again; it ends by persisting a snapshot of the
//! checkpoint it caught up to. Until it has caught up its lost certificates
//! are missing from view changes: a lost disk counts as one of the f faults
//! until then. (A replica that loses its disk twice while the cluster stays in
//! one view may ask for the same view twice.)
//!
//! **A new cluster.** A host cannot tell a data directory that was never
//! used from one that was lost, so every replica of a new cluster starts
//! recovering. When the reports of 2f other replicas (with itself, a
//! quorum) all show a cluster that has not started (view 0, nothing
//! executed, no view change), it joins view 0: so a new cluster starts
//! with f of its replicas silent. A replica that lost its disk while the
//! cluster still looked like that (its first batch not yet executed
//! anywhere) may rejoin view 0 after voting in it; it then votes again only
//! for what the primary proposes, and a primary that proposes two batches
//! for one slot would be a second fault beside the lost disk. (The
//! simulator restarts a replica that never synced anything as a new one,
//! which is what it is.)
//!
//! At each stable checkpoint a [`Snapshot`] carries everything still needed
//! (the checkpoint's state with its proof, the view, the certificates and
//! executed batches above it), so a host may delete every record before the
//! newest snapshot: disk use is bounded by the watermark window and the state
//! size, not by uptime.

use crate::app::Page;
use crate::ids::View;
use crate::message::{CheckpointProof, Commit, PrePrepare, PreparedCert};
use crate::signed::Signed;
use serde::{Deserialize, Serialize};

/// One record a replica needs durable: before its next send or reply when
/// it [holds back sends](Persist::holds_back_sends), eventually otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persist {
    /// The replica is about to send its first message of this view.
    View(View),
    /// The replica prepared this certificate and is about to send COMMIT.
    Prepared(PreparedCert),
    /// The replica accepted (or, as primary, made) this PRE-PREPARE, batch
    /// included. A VIEW-CHANGE names batches by digest only, so the f+1
    /// honest replicas that accepted a batch some certificate names must
    /// still hold it after a restart: this record keeps their copy. It does
    /// not hold back sends (no sync on the PREPARE's path); written in order,
    /// it is durable once any later record that holds back sends is, such as
    /// the certificate before this replica's COMMIT.
    Accepted(Signed<PrePrepare>),
    /// The replica executed this batch (the pre-prepare carries its
    /// requests); the reply does not wait for it (see rule 3 above). The
    /// proof comes along so that a restarted replica can still relay it to
    /// peers that lag (status-driven catch-up).
    Executed(CommitProof),
    /// A stable checkpoint and everything above it: the host may delete
    /// every record written before this one.
    Snapshot(Snapshot),
}

impl Persist {
    /// Whether every send and reply after this record must wait until it is
    /// durable. Only [`Persist::Executed`] does not: an executed batch is
    /// already durable as the prepared certificates of the replicas that
    /// committed it (rule 3 above). Hosts still write every record in order.
    pub fn holds_back_sends(&self) -> bool {
        !matches!(self, Persist::Executed(_) | Persist::Accepted(_))
    }
}

/// What a replica restarts from: a stable checkpoint and what lies above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stable checkpoint with its quorum of signatures.
    pub proof: CheckpointProof,
    /// The application's pages at the checkpoint (shared with the
    /// replica's own copy: building the record copies no state).
    pub pages: Vec<Page>,
    /// The encoded reply cache at the checkpoint; with the pages, its
    /// digest is `proof.state_digest`.
    pub replies: Vec<u8>,
    /// The highest view the replica had persisted.
    pub view: View,
    /// The prepared certificates above the checkpoint.
    pub prepared: Vec<PreparedCert>,
    /// The batches of the PRE-PREPAREs accepted above the checkpoint (see
    /// [`Persist::Accepted`]).
    pub batches: Vec<Signed<PrePrepare>>,
    /// The batches executed above the checkpoint, in order.
    pub executed: Vec<CommitProof>,
}

/// A batch's pre-prepare with a quorum of matching COMMITs: proof that it
/// committed (OSDI'99 §4.2, "committed-local").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitProof {
    /// The batch, as the primary proposed it.
    pub pre_prepare: Signed<PrePrepare>,
    /// 2f+1 COMMITs for it from distinct replicas.
    pub commits: Vec<Signed<Commit>>,
}
