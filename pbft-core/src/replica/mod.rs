//! The PBFT replica as a sans-IO state machine.
//!
//! Inputs: [`Replica::receive`] (or [`Replica::receive_all`] for messages
//! that arrived together) and [`Replica::handle_timeout`]; each checks the
//! replica's invariants once, at its end. Outputs: [`Replica::poll_output`]
//! until `None`, then [`Replica::poll_timeout`] for the next deadline.

mod checkpoint;
pub(crate) mod checkpoint_state;
pub(crate) mod execute;
mod future;
mod normal;
mod pending;
mod reads;
mod recover;
mod replies;
mod screen;
mod slot;
pub(crate) mod state_transfer;
mod status;
mod timers;
mod view_change;

pub use replies::{CachedReply, ClientReplies};
pub use timers::Timer;
#[cfg(test)]
pub(crate) use view_change::new_view_plan;

use crate::app::ReplicatedStateMachine;
use crate::config::{ConfigError, ProtocolConfig};
use crate::digest::Digest;
use crate::ids::{ClientId, ReplicaId, SeqNum, View};
use crate::keys::{KeyBook, SecretKey};
use crate::message::{CheckpointProof, Message, PreparedCert, Request, ViewChange};
use crate::output::{Event, Output};
use crate::quorum::Quorum;
use crate::reject::Reject;
use crate::signed::{Author, MessageKind, Signed};
use crate::time::Time;
use pending::Pending;
use replies::ReplyCache;
use slot::Slot;
use std::collections::{BTreeMap, VecDeque};
use timers::Timers;

/// Signatures a replica remembers having verified, so certificates that
/// repeat them cost no second verification. About 1.5 MiB at most.
const SIGNATURE_CACHE_ENTRIES: usize = 32 * 1024;

use crate::persist::CommitProof;

/// Whether the replica is processing requests or moving to a new view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Normal-case operation in the current view.
    Normal,
    /// Waiting for the NEW-VIEW of the current (target) view.
    ViewChanging,
}

/// How full each peer-growable buffer is; see [`Replica::buffer_limits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferUsage {
    /// Sequence numbers in the message log.
    pub log_slots: usize,
    /// Messages held in the log (pre-prepares, prepares, commits).
    pub log_messages: usize,
    /// Prepared certificates kept for view changes.
    pub prepared_certs: usize,
    /// Proofs of commitment kept to relay or to execute.
    pub commit_proofs: usize,
    /// CHECKPOINT messages above the stable checkpoint.
    pub checkpoint_messages: usize,
    /// VIEW-CHANGE messages held.
    pub view_changes: usize,
    /// Messages buffered for a view not yet entered.
    pub future_messages: usize,
    /// Requests waiting to execute.
    pub pending_requests: usize,
    /// Unordered reads waiting for execution to catch up.
    pub held_reads: usize,
    /// Bytes received for a state transfer in progress.
    pub transfer_bytes: usize,
    /// Encoded bytes of the messages buffered for a view not yet entered.
    pub future_bytes: usize,
    /// Batches kept of PRE-PREPAREs accepted above the stable checkpoint,
    /// in any view (at most 4 per sequence number), for view changes.
    pub batch_copies: usize,
}

impl BufferUsage {
    /// Every buffer by name, with its occupancy.
    pub fn fields(&self) -> [(&'static str, usize); 12] {
        [
            ("log slots", self.log_slots),
            ("log messages", self.log_messages),
            ("prepared certificates", self.prepared_certs),
            ("commit proofs", self.commit_proofs),
            ("checkpoint messages", self.checkpoint_messages),
            ("view-change messages", self.view_changes),
            ("future-view messages", self.future_messages),
            ("pending requests", self.pending_requests),
            ("held reads", self.held_reads),
            ("state-transfer bytes", self.transfer_bytes),
            ("future-view bytes", self.future_bytes),
            ("batch copies", self.batch_copies),
        ]
    }

    /// The first buffer over its limit in `limits`, as (name, used, limit).
    pub fn first_over(&self, limits: &BufferUsage) -> Option<(&'static str, usize, usize)> {
        self.fields()
            .into_iter()
            .zip(limits.fields())
            .find(|((_, used), (_, cap))| used > cap)
            .map(|((name, used), (_, cap))| (name, used, cap))
    }

    /// The larger occupancy of each buffer in `self` and `other`.
    pub fn max(self, other: BufferUsage) -> BufferUsage {
        BufferUsage {
            log_slots: self.log_slots.max(other.log_slots),
            log_messages: self.log_messages.max(other.log_messages),
            prepared_certs: self.prepared_certs.max(other.prepared_certs),
            commit_proofs: self.commit_proofs.max(other.commit_proofs),
            checkpoint_messages: self.checkpoint_messages.max(other.checkpoint_messages),
            view_changes: self.view_changes.max(other.view_changes),
            future_messages: self.future_messages.max(other.future_messages),
            pending_requests: self.pending_requests.max(other.pending_requests),
            held_reads: self.held_reads.max(other.held_reads),
            transfer_bytes: self.transfer_bytes.max(other.transfer_bytes),
            future_bytes: self.future_bytes.max(other.future_bytes),
            batch_copies: self.batch_copies.max(other.batch_copies),
        }
    }
}

/// A PBFT replica running application `A`.
pub struct Replica<A> {
    id: ReplicaId,
    quorum: Quorum,
    config: ProtocolConfig,
    keys: KeyBook,
    secret: SecretKey,
    app: A,

    view: View,
    status: Status,
    /// The view in which this replica last operated normally: the base of the
    /// view-change timeout's exponential back-off.
    last_normal_view: View,

    log: BTreeMap<SeqNum, Slot>,
    /// The primary's next sequence number to assign.
    next_seq: SeqNum,
    last_executed: SeqNum,
    prepared_certs: BTreeMap<SeqNum, PreparedCert>,
    /// Batches of PRE-PREPAREs accepted above the stable checkpoint, in any
    /// view, by sequence number and digest: a NEW-VIEW names batches by
    /// digest only (see `enter_view`).
    batch_copies: BTreeMap<SeqNum, Vec<Signed<crate::message::PrePrepare>>>,
    /// Proofs of commitment for sequence numbers above the stable checkpoint:
    /// of batches executed here (to relay to peers that are behind) and of
    /// batches relayed to this replica that it has not executed yet.
    commit_proofs: BTreeMap<SeqNum, CommitProof>,
    /// The highest view this replica has asked its host to persist (see
    /// [`crate::persist`]): its first send in a later view persists that view first.
    persisted_view: Option<View>,
    /// While recovering from a lost or damaged disk: the status reports
    /// gathered from peers (see [`crate::persist`]).
    recovering: Option<BTreeMap<ReplicaId, crate::message::StatusReport>>,
    /// The NEW-VIEW that started the current view, to resend to peers that missed it.
    last_new_view: Option<Signed<crate::message::NewView>>,

    stable_checkpoint: CheckpointProof,
    own_checkpoints: BTreeMap<SeqNum, Digest>,
    /// The states (application pages and reply cache) of this replica's
    /// checkpoints at and above the stable one, served to peers that fetch them.
    checkpoint_states: BTreeMap<SeqNum, checkpoint_state::CheckpointState>,
    /// The chunk each peer fetched last, of which checkpoint, and when: those
    /// states are kept past a newer stable checkpoint while the fetch goes
    /// on, and a peer is answered no faster than a transfer asks.
    serving: BTreeMap<ReplicaId, state_transfer::Served>,
    transfer: Option<state_transfer::Transfer>,
    checkpoint_votes: BTreeMap<SeqNum, BTreeMap<ReplicaId, Signed<crate::message::Checkpoint>>>,
    /// The latest checkpoint at which replicas signed different digests.
    last_disagreement: Option<crate::output::Disagreement>,

    pending: Pending,
    /// The pending request a backup's request timer waits for (OSDI'99
    /// §4.4): the timer restarts when that request executes, not when any
    /// does, so a primary that orders others' requests but never this one
    /// is still replaced.
    awaited: Option<pending::RequestKey>,
    reply_cache: ReplyCache,
    /// Unordered reads waiting until this replica has executed everything it
    /// had committed to when they arrived: (sequence number to reach, request).
    held_reads: BTreeMap<ClientId, VecDeque<(SeqNum, Signed<Request>)>>,

    view_changes: BTreeMap<ReplicaId, Signed<ViewChange>>,
    /// When each peer's status report was last answered (one entry per replica).
    status_answered: BTreeMap<ReplicaId, Time>,
    /// Verified normal-case messages for a view this replica has not entered
    /// yet, per sender, handled once it enters that view.
    future: future::FutureBuffer,

    signatures: crate::verify::SignatureCache,
    timers: Timers,
    outputs: VecDeque<Output>,
    rejections: BTreeMap<Reject, u64>,
    /// Whether the normal-case phases are reported as events (see
    /// [`Replica::report_phases`]).
    phase_events: bool,
    #[cfg(feature = "mutations")]
    mutation: Option<crate::Mutation>,
}

/// Why a replica could not be created.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplicaError {
    /// A protocol parameter is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The id is not a replica of the key book.
    #[error("replica id {id} is out of range: the key book has {n} replicas")]
    UnknownId {
        /// The id given.
        id: u32,
        /// The number of replicas.
        n: usize,
    },
    /// The secret key does not match the key book's public key for this id.
    #[error("the secret key of replica {0} does not match its public key in the key book")]
    KeyMismatch(u32),
}

impl<A: ReplicatedStateMachine> Replica<A> {
    /// A replica with id `id` in view 0, starting from `app`'s current state.
    pub fn new(
        id: ReplicaId,
        config: ProtocolConfig,
        keys: KeyBook,
        secret: SecretKey,
        app: A,
    ) -> Result<Replica<A>, ReplicaError> {
        let quorum = keys.quorum();
        config.validate_for(quorum.n())?;
        if !quorum.contains(id) {
            return Err(ReplicaError::UnknownId { id: id.0, n: quorum.n() });
        }
        if !keys.replica_key_matches(id, &secret.public()) {
            return Err(ReplicaError::KeyMismatch(id.0));
        }
        let config_status_interval = config.status_interval_ms;
        Ok(Replica {
            id,
            quorum,
            pending: Pending::new(config.max_pending_per_client),
            awaited: None,
            config,
            keys,
            secret,
            app,
            view: 0,
            status: Status::Normal,
            last_normal_view: 0,
            log: BTreeMap::new(),
            next_seq: 1,
            last_executed: 0,
            prepared_certs: BTreeMap::new(),
            batch_copies: BTreeMap::new(),
            commit_proofs: BTreeMap::new(),
            persisted_view: None,
            recovering: None,
            last_new_view: None,
            stable_checkpoint: CheckpointProof::genesis(),
            own_checkpoints: BTreeMap::new(),
            checkpoint_states: BTreeMap::new(),
            serving: BTreeMap::new(),
            transfer: None,
            checkpoint_votes: BTreeMap::new(),
            last_disagreement: None,
            reply_cache: BTreeMap::new(),
            held_reads: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            status_answered: BTreeMap::new(),
            future: future::FutureBuffer::default(),
            signatures: crate::verify::SignatureCache::new(SIGNATURE_CACHE_ENTRIES),
            timers: Timers::starting_with(Timer::Status, Time(config_status_interval)),
            outputs: VecDeque::new(),
            rejections: BTreeMap::new(),
            phase_events: false,
            #[cfg(feature = "mutations")]
            mutation: None,
        })
    }

    /// Verifies `message` against the key book, then handles it. A message that
    /// fails verification is dropped, counted and reported, and so is a vote
    /// this replica no longer needs, without its signature being checked.
    pub fn receive(&mut self, now: Time, message: Message) {
        self.verify_and_dispatch(now, message);
        self.check_invariants();
    }

    /// [`Replica::receive`] for messages that arrived together, in order.
    /// Their signatures (client requests, those inside PRE-PREPAREs, and the
    /// replicas' own) are checked as one batch first, for about half the cost
    /// of checking each; votes this replica no longer needs are left out.
    pub fn receive_all(&mut self, now: Time, messages: Vec<Message>) {
        if messages.len() > 1 {
            let needed: Vec<&Message> = messages.iter().filter(|m| self.screen(m).is_none()).collect();
            self.keys.precheck(needed, &mut self.signatures);
        }
        for message in messages {
            self.verify_and_dispatch(now, message);
        }
        self.check_invariants();
    }

    /// Handles `message` as if its signatures had been verified, so a
    /// benchmark can measure the protocol without the cryptography (only
    /// with the `unverified-input` feature; hosts use [`Replica::receive`]).
    #[cfg(feature = "unverified-input")]
    pub fn handle_message(&mut self, now: Time, message: crate::signed::Verified<Message>) {
        self.dispatch(now, message.into_inner());
        self.check_invariants();
    }

    /// Handles a client request as if its signature had been verified, for
    /// benchmarks (only with the `unverified-input` feature; hosts use
    /// [`Replica::receive`]).
    #[cfg(feature = "unverified-input")]
    pub fn handle_request(&mut self, now: Time, request: crate::signed::Verified<Signed<Request>>) {
        self.on_request(now, request.into_inner());
        self.check_invariants();
    }

    /// Fires every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.fire_timers(now);
        self.check_invariants();
    }

    /// [`Replica::receive`] without the invariant check, which its callers
    /// run once per input.
    fn verify_and_dispatch(&mut self, now: Time, message: Message) {
        let (author, kind) = (message.author(), message.kind());
        if let Some(reason) = self.screen(&message) {
            self.reject(author, kind, reason);
            return;
        }
        match self.keys.verify_cached(message, &mut self.signatures) {
            Ok(verified) => self.dispatch(now, verified.into_inner()),
            Err(reason) => self.reject(author, kind, reason),
        }
    }

    /// Hands a verified message to its handler: [`Replica::receive`] after
    /// verifying it, and the replay of messages buffered for a view this
    /// replica has just entered.
    fn dispatch(&mut self, now: Time, message: Message) {
        self.arm_term(now);
        if message.author() == Author::Replica(self.id) {
            self.reject(message.author(), message.kind(), Reject::FromSelf);
            return;
        }
        if self.recovering.is_some() {
            let Some(message) = self.admit_while_recovering(message) else { return };
            self.dispatch_admitted(now, message);
            self.try_finish_recovery(now);
            return;
        }
        let Some(message) = self.admit_normal_case(message) else {
            return;
        };
        self.dispatch_admitted(now, message);
    }

    /// Hands a message that passed the view checks to its handler.
    fn dispatch_admitted(&mut self, now: Time, message: Message) {
        match message {
            Message::Request(request) => self.on_request(now, request),
            Message::PrePrepare(m) => self.on_pre_prepare(now, m),
            Message::Prepare(m) => self.on_prepare(now, m),
            Message::Commit(m) => self.on_commit(now, m),
            Message::Checkpoint(m) => self.on_checkpoint(now, m),
            Message::ViewChange(m) => self.on_view_change(now, m),
            Message::NewView(m) => self.on_new_view(now, m),
            Message::Status(m) => self.on_status(now, m),
            Message::Committed(m) => self.on_committed(now, m),
            Message::StableCheckpoint(m) => self.on_stable_checkpoint(now, m),
            Message::FetchState(m) => self.on_fetch_state(now, m),
            Message::StateChunk(m) => self.on_state_chunk(now, m),
        }
    }

    /// Runs the handler of every timer whose deadline is at or before `now`.
    fn fire_timers(&mut self, now: Time) {
        self.arm_term(now);
        for timer in self.timers.expire(now) {
            match timer {
                Timer::Batch => self.on_batch_timeout(now),
                Timer::Request => self.on_request_timeout(now),
                Timer::ViewChange => self.on_view_change_timeout(now),
                Timer::Status => self.on_status_timeout(now),
                Timer::Fetch => self.on_fetch_timeout(now),
                Timer::Term => self.on_term_timeout(now),
            }
        }
    }

    /// The next thing to do, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest deadline at which [`Replica::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// Breaks the protocol on purpose (mutation tests only).
    #[cfg(feature = "mutations")]
    pub fn set_mutation(&mut self, mutation: Option<crate::Mutation>) {
        self.mutation = mutation;
    }

    /// Whether to report each batch's normal-case phases as events
    /// ([`Event::PrePrepared`], [`Event::Prepared`],
    /// [`Event::CommittedLocal`]) and answers from the reply cache
    /// ([`Event::RepliedFromCache`]): what a host needs to time requests
    /// and batches (metrics, traces). Off by default: three more events per
    /// batch are noise to a host that does not time them.
    pub fn report_phases(&mut self, on: bool) {
        self.phase_events = on;
    }

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// The current view (the target view while changing views).
    pub fn view(&self) -> View {
        self.view
    }

    /// Normal operation or view change.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether this replica is the primary of its current view.
    pub fn is_primary(&self) -> bool {
        self.quorum.primary(self.view) == self.id
    }

    /// The highest sequence number executed.
    pub fn last_executed(&self) -> SeqNum {
        self.last_executed
    }

    /// The low watermark h: the sequence number of the stable checkpoint.
    pub fn low_watermark(&self) -> SeqNum {
        self.stable_checkpoint.seq
    }

    /// The high watermark h + L.
    pub fn high_watermark(&self) -> SeqNum {
        self.low_watermark() + self.config.watermark_window
    }

    /// The stable checkpoint with its proof.
    pub fn stable_checkpoint(&self) -> &CheckpointProof {
        &self.stable_checkpoint
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The quorum system.
    pub fn quorum(&self) -> Quorum {
        self.quorum
    }

    /// The protocol parameters.
    pub fn config(&self) -> &ProtocolConfig {
        &self.config
    }

    /// The replies kept per client (exactly-once).
    pub fn reply_cache(&self) -> &BTreeMap<ClientId, ClientReplies> {
        &self.reply_cache
    }

    /// The highest timestamp of `client`'s that executed here (0 if none):
    /// what a client starting afresh asks, so that its new requests do not
    /// fall below its window (see `replies`).
    pub fn newest_timestamp(&self, client: ClientId) -> u64 {
        self.reply_cache.get(&client).map_or(0, |replies| replies.newest)
    }

    /// Digest of the current application state and reply cache: what
    /// checkpoints agree on.
    pub fn state_digest(&self) -> Digest {
        checkpoint_state::CheckpointState::new(self.app.snapshot_pages(), &self.reply_cache).digest()
    }

    /// The latest checkpoint at which replicas signed different state
    /// digests, if any: a Byzantine replica or a non-deterministic application.
    pub fn last_disagreement(&self) -> Option<&crate::output::Disagreement> {
        self.last_disagreement.as_ref()
    }

    /// How many inputs were dropped, by reason.
    pub fn rejections(&self) -> &BTreeMap<Reject, u64> {
        &self.rejections
    }

    /// Current occupancy of every buffer a peer can grow.
    pub fn buffer_usage(&self) -> BufferUsage {
        BufferUsage {
            log_slots: self.log.len(),
            log_messages: self.log.values().map(Slot::message_count).sum(),
            prepared_certs: self.prepared_certs.len(),
            commit_proofs: self.commit_proofs.len(),
            checkpoint_messages: self.checkpoint_votes.values().map(BTreeMap::len).sum(),
            view_changes: self.view_changes.len(),
            future_messages: self.future.len(),
            pending_requests: self.pending.len(),
            held_reads: self.held_reads.values().map(VecDeque::len).sum(),
            transfer_bytes: self.transfer.as_ref().map_or(0, state_transfer::Transfer::held),
            future_bytes: self.future.bytes(),
            batch_copies: self.batch_copies.values().map(Vec::len).sum(),
        }
    }

    /// The most each buffer may hold under this configuration, whatever peers send.
    pub fn buffer_limits(&self) -> BufferUsage {
        let n = self.quorum.n();
        let window = self.config.watermark_window as usize;
        let checkpoints_in_window = window / self.config.checkpoint_interval as usize;
        BufferUsage {
            log_slots: window,
            log_messages: window * (1 + 2 * n),
            prepared_certs: window,
            commit_proofs: window,
            checkpoint_messages: checkpoints_in_window * n,
            view_changes: n,
            future_messages: n * self.config.max_future_messages_per_replica,
            pending_requests: self.keys.client_count() * self.config.max_pending_per_client,
            held_reads: self.keys.client_count() * self.config.max_pending_per_client,
            transfer_bytes: usize::try_from(self.config.max_state_bytes).unwrap_or(usize::MAX),
            future_bytes: n.saturating_mul(self.config.future_bytes_per_replica(n)),
            batch_copies: window * normal::BATCH_COPIES_PER_SEQ,
        }
    }

    fn reject(&mut self, from: Author, kind: MessageKind, reason: Reject) {
        *self.rejections.entry(reason).or_insert(0) += 1;
        self.outputs.push_back(Output::Event(Event::Rejected { from, kind, reason }));
    }

    /// Answers `client`'s request `timestamp` with what executed under it
    /// (the request's digest and its result, or the size of a withheld
    /// one); `unordered` for a read answered without ordering.
    fn reply(&mut self, client: ClientId, timestamp: u64, cached: CachedReply, unordered: bool) {
        let reply = crate::message::Reply {
            view: self.view,
            timestamp,
            client,
            replica: self.id,
            request: cached.request,
            result: cached.result,
            withheld: cached.withheld,
            unordered,
        };
        self.outputs.push_back(Output::Reply(reply));
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Emits the phase event `event` makes, if phases are reported: the
    /// closure is not even called otherwise, so a host that does not time
    /// phases pays nothing for them.
    fn emit_phase(&mut self, event: impl FnOnce() -> Event) {
        if self.phase_events {
            self.emit(event());
        }
    }

    fn broadcast(&mut self, message: Message) {
        self.persist_view();
        self.outputs.push_back(Output::Broadcast(message));
    }

    fn send(&mut self, to: ReplicaId, message: Message) {
        self.persist_view();
        self.outputs.push_back(Output::Send { to, message });
    }

    /// Asks the host to make `record` durable (before any later send or
    /// reply, if it holds back sends).
    ///
    /// A recovering replica persists nothing: its host still knows that its
    /// disk was lost or damaged, so a crash now restarts the recovery, where
    /// records written meanwhile would make it look like a replica that
    /// never voted. Recovery ends by persisting a snapshot of what it caught
    /// up to (see [`crate::persist`]).
    fn persist(&mut self, record: crate::persist::Persist) {
        if self.recovering.is_some() {
            return;
        }
        self.outputs.push_back(Output::Persist(record));
    }

    /// Before the first message of a view, that view is persisted: a replica
    /// restarted from its records never signs again in a view up to it.
    /// While recovering nothing is persisted (see [`Replica::persist`]), so
    /// nothing is marked persisted either: the first send after recovery
    /// writes the view it is sent in.
    fn persist_view(&mut self) {
        if self.recovering.is_some() {
            return;
        }
        if self.persisted_view.is_none_or(|v| v < self.view) {
            self.persisted_view = Some(self.view);
            self.persist(crate::persist::Persist::View(self.view));
        }
    }

    fn in_watermarks(&self, seq: SeqNum) -> bool {
        seq > self.low_watermark() && seq <= self.high_watermark()
    }

    /// Assertions on this replica's own state (never on what peers sent),
    /// run once at the end of every input.
    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            let h = self.low_watermark();
            assert!(self.last_executed >= h, "executed {} below stable checkpoint {h}", self.last_executed);
            if let (Some(first), Some(last)) = (self.log.keys().next(), self.log.keys().next_back()) {
                assert!(*first > h && *last <= self.high_watermark(), "log outside watermarks");
            }
            assert!(self.prepared_certs.keys().all(|s| *s > h), "certificate at or below h");
            assert!(
                self.commit_proofs.keys().all(|s| *s > h && *s <= self.high_watermark()),
                "proof outside window"
            );
            assert!(self.checkpoint_votes.keys().all(|s| *s > h), "checkpoint vote at or below h");
            let over = self.buffer_usage().first_over(&self.buffer_limits());
            assert!(over.is_none(), "buffer over its limit (name, used, limit): {over:?}");
            if self.status == Status::Normal && self.is_primary() {
                assert!(self.next_seq > h, "primary would assign a sequence number at or below h");
            }
        }
    }
}

impl KeyBook {
    fn replica_key_matches(&self, id: ReplicaId, key: &crate::keys::PublicKey) -> bool {
        self.replica_key(id).is_some_and(|k| k.to_bytes() == key.0)
    }
}
