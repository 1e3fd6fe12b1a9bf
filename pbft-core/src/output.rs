//! What a replica asks its host to do, and what it reports to observers.

use crate::digest::Digest;
use crate::ids::{ClientId, ReplicaId, SeqNum, View};
use crate::message::{Message, Reply};
use crate::persist::Persist;
use crate::reject::Reject;
use crate::signed::{Author, MessageKind};
use std::collections::{BTreeMap, BTreeSet};

/// Which replicas signed which state digest for the checkpoint at `seq`,
/// when they did not all sign the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    /// The checkpoint's sequence number.
    pub seq: SeqNum,
    /// Each digest and the replicas (this one included) that signed it.
    pub digests: BTreeMap<Digest, BTreeSet<ReplicaId>>,
}

/// One thing the host must do for a replica, drained with `poll_output`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `message` to one replica.
    Send {
        /// The destination.
        to: ReplicaId,
        /// The message.
        message: Message,
    },
    /// Send `message` to every other replica.
    Broadcast(Message),
    /// Send `reply` to the client it names.
    Reply(Reply),
    /// Write `record` after every earlier one, and, if it
    /// [holds back sends](Persist::holds_back_sends), make it durable before
    /// performing any later output that sends (group commit: one write and
    /// one sync for a burst's records, then its sends). See [`crate::persist`].
    Persist(Persist),
    /// Something observers may want to know; nothing needs sending.
    Event(Event),
}

/// Observable protocol progress and problems.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This replica accepted the PRE-PREPARE for `seq` in `view` (a backup),
    /// or sent it (the primary), with these requests as `(client,
    /// timestamp)`. Reported only with [`Replica::report_phases`](crate::Replica::report_phases),
    /// like the phases below.
    PrePrepared {
        /// The view.
        view: View,
        /// Its sequence number.
        seq: SeqNum,
        /// The batch's requests, in order.
        requests: Vec<(ClientId, u64)>,
    },
    /// `seq` became prepared in `view` (OSDI'99 §4.2: a pre-prepare and 2f
    /// matching PREPAREs); this replica sends its COMMIT now.
    Prepared {
        /// The view.
        view: View,
        /// Its sequence number.
        seq: SeqNum,
    },
    /// `seq` became committed-local in `view` (prepared, and 2f+1 matching
    /// COMMITs); it executes once every batch before it has.
    CommittedLocal {
        /// The view.
        view: View,
        /// Its sequence number.
        seq: SeqNum,
    },
    /// A request that had already executed arrived again, and this replica
    /// answered it from its reply cache.
    RepliedFromCache {
        /// The client.
        client: ClientId,
        /// The request's timestamp.
        timestamp: u64,
    },
    /// The batch at `seq` committed in `view` and was executed.
    Executed {
        /// The view in which it committed locally.
        view: View,
        /// Its sequence number.
        seq: SeqNum,
        /// The batch digest.
        digest: Digest,
        /// The requests that ran, in order; requests of the batch that had
        /// already run (a client's repeat) are not listed. Empty for a null request.
        requests: Vec<ExecutedRequest>,
    },
    /// The checkpoint at `seq` became stable; the log below it was discarded.
    CheckpointStable {
        /// The checkpoint's sequence number, now the low watermark.
        seq: SeqNum,
        /// The agreed state digest.
        state_digest: Digest,
    },
    /// Replicas signed different state digests for the checkpoint at one
    /// sequence number: some replica is Byzantine, or the application is not
    /// deterministic (it differs on honest replicas). Reported every time a
    /// differing digest arrives.
    CheckpointDisagreement(Disagreement),
    /// `view` lasted its configured term; this replica moves on to the next
    /// one (a [`Event::ViewChangeStarted`] follows).
    TermEnded {
        /// The view whose term ended.
        view: View,
    },
    /// This replica asked to move to `view`.
    ViewChangeStarted {
        /// The view asked for.
        view: View,
    },
    /// This replica entered `view` through a valid NEW-VIEW.
    NewViewEntered {
        /// The view entered.
        view: View,
        /// Its primary.
        primary: ReplicaId,
    },
    /// An input was dropped, and why.
    Rejected {
        /// The claimed author.
        from: Author,
        /// The kind of message.
        kind: MessageKind,
        /// Why it was dropped.
        reason: Reject,
    },
    /// This replica restarted from its persisted records with its state as
    /// of `last_executed` (what it executed above that was not durable is
    /// gone and will execute again), and asks for `view`.
    Recovered {
        /// The last batch the restored state includes.
        last_executed: SeqNum,
        /// The view it asks for (its view change's target); 0 if it had never sent anything.
        view: View,
    },
    /// The application returned a result over `max_result_bytes` for
    /// `client`'s request `timestamp`: the request executed, and its
    /// result was withheld (only its size is kept and sent).
    ResultWithheld {
        /// The client.
        client: ClientId,
        /// The request's timestamp.
        timestamp: u64,
        /// The result's size.
        bytes: u64,
    },
    /// This replica lost its records (or found them damaged) and is
    /// recovering from its peers: it votes in nothing until it has learned
    /// how far the cluster got (then [`Event::Recovered`]).
    RecoveringFromPeers,
    /// This replica installed the state of stable checkpoint `seq` fetched from a peer.
    StateTransferred {
        /// The checkpoint installed.
        seq: SeqNum,
        /// Its state digest.
        state_digest: Digest,
    },
    /// A stable checkpoint proven by a quorum lies beyond what this replica has
    /// executed: it starts fetching that checkpoint's state.
    FellBehind {
        /// The proven checkpoint.
        seq: SeqNum,
        /// What this replica has executed.
        last_executed: SeqNum,
    },
}

/// A request that a replica executed, for observers that check what ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExecutedRequest {
    /// The client.
    pub client: ClientId,
    /// The request's timestamp.
    pub timestamp: u64,
    /// The digest of the signed request (see [`crate::Signed::digest`]).
    pub digest: Digest,
}
