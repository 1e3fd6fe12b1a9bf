//! One replica fed structure-aware sequences of messages from its peers and
//! clients: the fuzzer's bytes choose each message's kind and fields among
//! the real message types, and whether its signer is its claimed author
//! (with the author's real key), a stranger, or nobody (bytes decoded as a
//! message). Votes and certificates are built from what the replica and the
//! generator already said, so that sequences reach prepared, committed,
//! checkpointed, view-changing and state-transferring states rather than
//! being refused at the first check.
//!
//! Properties: no input panics (the replica's own invariant checks run
//! after every input); every buffer a peer can grow stays within
//! `Replica::buffer_limits`; the executed prefix only grows.

use crate::keys::{keys, CLIENTS, N};
use crate::verify::{author_key, resigned};
use arbitrary::{Result, Unstructured};
use pbft_app::apps::Counter;
use pbft_core::{
    batch_digest, codec, Checkpoint, CheckpointProof, Commit, Committed, Digest, FetchState, Message,
    NewView, Output, PrePrepare, Prepare, PreparedCert, ProtocolConfig, Replica, ReplicaId, Request,
    RequestKind, SeqNum, Signed, StableCheckpoint, StateChunk, StatusReport, Time, View, ViewChange,
};
use std::collections::BTreeMap;

/// Inputs one run feeds at most, so that each run stays short.
const MAX_INPUTS: usize = 96;

/// The protocol parameters under test: small windows and batches, so that
/// short sequences reach checkpoints, watermarks and buffer limits.
fn config() -> ProtocolConfig {
    ProtocolConfig {
        max_batch_size: 4,
        max_request_bytes: 64,
        // A counter's encoded result is its outcome tag and a zig-zag
        // varint: two bytes for totals within about ±125, more beyond, so
        // that withheld results are reached too.
        max_result_bytes: 2,
        max_batch_bytes: 512,
        batch_delay_ms: 0,
        checkpoint_interval: 4,
        watermark_window: 8,
        view_change_timeout_ms: 100,
        max_view_change_backoff: 4,
        view_term_ms: 0,
        status_interval_ms: 50,
        state_chunk_bytes: 64,
        max_state_bytes: 4096,
        max_pending_per_client: 4,
        max_future_messages_per_replica: 16,
    }
}

/// What was said so far, by the replica or by the generator: the material
/// votes and certificates are built from.
#[derive(Default)]
struct Said {
    pre_prepares: Vec<Signed<PrePrepare>>,
    prepares: Vec<Signed<Prepare>>,
    commits: Vec<Signed<Commit>>,
    checkpoints: Vec<Signed<Checkpoint>>,
    view_changes: BTreeMap<View, Vec<Signed<ViewChange>>>,
}

/// Keeps the newest `limit` items of `list`.
fn remember<T>(list: &mut Vec<T>, item: T, limit: usize) {
    if list.len() == limit {
        list.remove(0);
    }
    list.push(item);
}

impl Said {
    fn message(&mut self, message: &Message) {
        match message {
            Message::PrePrepare(m) => remember(&mut self.pre_prepares, m.clone(), 8),
            Message::Prepare(m) => remember(&mut self.prepares, m.clone(), 16),
            Message::Commit(m) => remember(&mut self.commits, m.clone(), 16),
            Message::Checkpoint(m) => remember(&mut self.checkpoints, m.clone(), 8),
            Message::ViewChange(m) => {
                let list = self.view_changes.entry(m.payload().new_view).or_default();
                if list.len() < N {
                    list.push(m.clone());
                }
                while self.view_changes.len() > 4 {
                    self.view_changes.pop_first();
                }
            }
            _ => {}
        }
    }
}

/// One fuzzing run: the replica, the clock, and what was said.
struct Run<'u, 'd> {
    u: &'u mut Unstructured<'d>,
    replica: Replica<Counter>,
    now: Time,
    said: Said,
    executed: SeqNum,
    /// Every message fed and sent, in order (see [`messages`]).
    log: Vec<Message>,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    messages(data);
}

/// Runs one input and returns every message fed to the replica and sent by
/// it: well-formed, mostly validly signed messages of every kind, which seed
/// the other targets' corpora.
pub fn messages(data: &[u8]) -> Vec<Message> {
    let mut u = Unstructured::new(data);
    let Ok(id) = u.int_in_range(0..=N as u32 - 1) else { return Vec::new() };
    let keys = keys();
    let replica =
        Replica::new(ReplicaId(id), config(), keys.book.clone(), keys.replica(id).clone(), Counter(0))
            .expect("the fixed cluster makes a valid replica");
    let mut run =
        Run { u: &mut u, replica, now: Time(0), said: Said::default(), executed: 0, log: Vec::new() };
    for _ in 0..MAX_INPUTS {
        if run.u.is_empty() || run.step().is_err() {
            break;
        }
    }
    run.log
}

impl Run<'_, '_> {
    /// Feeds one input, then checks every property.
    fn step(&mut self) -> Result<()> {
        match self.u.int_in_range(0..=3u8)? {
            0 => self.advance_time()?,
            1 => {
                let count = self.u.int_in_range(2..=4usize)?;
                let messages = (0..count).map(|_| self.message()).collect::<Result<Vec<_>>>()?;
                messages.iter().for_each(|m| self.said.message(m));
                self.log.extend(messages.iter().cloned());
                self.replica.receive_all(self.now, messages);
            }
            _ => {
                let message = self.message()?;
                self.said.message(&message);
                self.log.push(message.clone());
                self.replica.receive(self.now, message);
            }
        }
        self.drain();
        self.check();
        Ok(())
    }

    fn advance_time(&mut self) -> Result<()> {
        let step = u64::from(self.u.int_in_range(1..=200u8)?);
        self.now = Time(self.now.0 + step);
        if self.replica.poll_timeout().is_some_and(|due| due <= self.now) {
            self.replica.handle_timeout(self.now);
        }
        Ok(())
    }

    fn drain(&mut self) {
        while let Some(output) = self.replica.poll_output() {
            match output {
                Output::Send { message, .. } | Output::Broadcast(message) => {
                    self.said.message(&message);
                    self.log.push(message);
                }
                Output::Reply(_) | Output::Persist(_) | Output::Event(_) => {}
            }
        }
    }

    fn check(&mut self) {
        let over = self.replica.buffer_usage().first_over(&self.replica.buffer_limits());
        assert!(over.is_none(), "a buffer over its limit (name, used, limit): {over:?}");
        let executed = self.replica.last_executed();
        assert!(executed >= self.executed, "the executed prefix shrank from {} to {executed}", self.executed);
        self.executed = executed;
    }

    /// A message of any kind, signed by its claimed author (most often), by
    /// a stranger, or made of raw bytes.
    fn message(&mut self) -> Result<Message> {
        let message = match self.u.int_in_range(0..=15u8)? {
            0 | 1 => Message::Request(self.request()?),
            2 => Message::PrePrepare(self.pre_prepare()?),
            3 | 4 => self.prepare()?,
            5 | 6 => self.commit()?,
            7 => self.checkpoint()?,
            8 => self.view_change()?,
            9 => self.new_view()?,
            10 => self.status()?,
            11 => self.committed()?,
            12 => self.stable_checkpoint()?,
            13 => self.fetch_state()?,
            14 => self.state_chunk()?,
            _ => return self.raw(),
        };
        Ok(match self.u.int_in_range(0..=15u8)? {
            0 => resigned(&message, &keys().stranger),
            _ => message,
        })
    }

    /// Any bytes that decode as a message, or else a request.
    fn raw(&mut self) -> Result<Message> {
        let len = self.u.int_in_range(0..=256usize)?;
        let bytes = self.u.bytes(len)?;
        match codec::decode::<Message>(bytes) {
            Ok(message) if self.u.arbitrary()? => {
                Ok(author_key(&message).map_or(message.clone(), |k| resigned(&message, k)))
            }
            Ok(message) => Ok(message),
            Err(_) => Ok(Message::Request(self.request()?)),
        }
    }

    fn replica_id(&mut self) -> Result<ReplicaId> {
        Ok(ReplicaId(self.u.int_in_range(0..=N as u32 - 1)?))
    }

    /// A view near the replica's: mostly its own, sometimes the next ones,
    /// rarely an old or a far one.
    fn view(&mut self) -> Result<View> {
        let view = self.replica.view();
        Ok(match self.u.int_in_range(0..=7u8)? {
            0 => view.saturating_sub(1),
            1 => view + 1,
            2 => view + u64::from(self.u.int_in_range(2..=40u8)?),
            _ => view,
        })
    }

    /// A sequence number near the replica's window.
    fn seq(&mut self) -> Result<SeqNum> {
        let low = self.replica.low_watermark();
        Ok(match self.u.int_in_range(0..=7u8)? {
            0 => self.u.arbitrary()?,
            1 => low + u64::from(self.u.int_in_range(0..=12u8)?),
            _ => self.replica.last_executed() + u64::from(self.u.int_in_range(1..=2u8)?),
        })
    }

    fn request(&mut self) -> Result<Signed<Request>> {
        let index = self.u.int_in_range(0..=CLIENTS.len() - 1)?;
        let kind = match self.u.int_in_range(0..=7u8)? {
            0 => RequestKind::UnorderedRead,
            1 => RequestKind::Read,
            _ => RequestKind::Write,
        };
        let op = if self.u.arbitrary()? {
            Counter::add(i64::from(self.u.int_in_range(-3..=3i8)?))
        } else {
            self.u.arbitrary()?
        };
        let timestamp = u64::from(self.u.int_in_range(1..=12u8)?);
        let body = Request { client: CLIENTS[index], timestamp, op, kind };
        Ok(Signed::sign(body, &keys().clients[index]))
    }

    fn batch(&mut self) -> Result<Vec<Signed<Request>>> {
        let len = self.u.int_in_range(0..=3usize)?;
        (0..len).map(|_| self.request()).collect()
    }

    /// A PRE-PREPARE from the view's primary (mostly), with a batch or, as
    /// in view changes, its header only.
    fn pre_prepare(&mut self) -> Result<Signed<PrePrepare>> {
        let view = self.view()?;
        let seq = self.seq()?;
        let primary = if self.u.int_in_range(0..=7u8)? == 0 {
            self.replica_id()?
        } else {
            ReplicaId((view % N as u64) as u32)
        };
        let batch = self.batch()?;
        let digest = if self.u.int_in_range(0..=7u8)? == 0 {
            Digest::of(self.u.bytes(2)?)
        } else {
            batch_digest(&batch)
        };
        let batch = if self.u.int_in_range(0..=5u8)? == 0 { Vec::new() } else { batch };
        Ok(Signed::sign(PrePrepare { view, seq, digest, primary, batch }, keys().replica(primary.0)))
    }

    /// The header of a PRE-PREPARE already said, or a new one.
    fn header(&mut self) -> Result<(View, SeqNum, Digest)> {
        if !self.said.pre_prepares.is_empty() && self.u.int_in_range(0..=4u8)? > 0 {
            let pp = self.u.choose(&self.said.pre_prepares)?.payload();
            return Ok((pp.view, pp.seq, pp.digest));
        }
        let pp = self.pre_prepare()?;
        let body = pp.payload();
        Ok((body.view, body.seq, body.digest))
    }

    fn prepare(&mut self) -> Result<Message> {
        let (view, seq, digest) = self.header()?;
        let replica = self.replica_id()?;
        Ok(Message::Prepare(Signed::sign(Prepare { view, seq, digest, replica }, keys().replica(replica.0))))
    }

    fn commit(&mut self) -> Result<Message> {
        let (view, seq, digest) = self.header()?;
        let replica = self.replica_id()?;
        Ok(Message::Commit(Signed::sign(Commit { view, seq, digest, replica }, keys().replica(replica.0))))
    }

    /// A checkpoint digest: the replica's own state's, one already said, or
    /// nonsense.
    fn checkpoint_body(&mut self) -> Result<(SeqNum, Digest)> {
        let interval = config().checkpoint_interval;
        if !self.said.checkpoints.is_empty() && self.u.arbitrary()? {
            let c = self.u.choose(&self.said.checkpoints)?.payload();
            return Ok((c.seq, c.state_digest));
        }
        let seq = (self.seq()? / interval) * interval;
        let digest =
            if self.u.arbitrary()? { self.replica.state_digest() } else { Digest::of(self.u.bytes(2)?) };
        Ok((seq, digest))
    }

    fn checkpoint(&mut self) -> Result<Message> {
        let (seq, state_digest) = self.checkpoint_body()?;
        let replica = self.replica_id()?;
        Ok(Message::Checkpoint(Signed::sign(
            Checkpoint { seq, state_digest, replica },
            keys().replica(replica.0),
        )))
    }

    /// A checkpoint proof signed by `count` distinct replicas.
    fn checkpoint_proof(&mut self) -> Result<CheckpointProof> {
        if self.u.arbitrary()? {
            return Ok(self.replica.stable_checkpoint().clone());
        }
        let (seq, state_digest) = self.checkpoint_body()?;
        let count = self.u.int_in_range(1..=N as u32)?;
        let checkpoints = (0..count)
            .map(|r| Signed::sign(Checkpoint { seq, state_digest, replica: ReplicaId(r) }, keys().replica(r)))
            .collect();
        Ok(CheckpointProof { seq, state_digest, checkpoints })
    }

    /// A prepared certificate for a header already said: the pre-prepare
    /// (its header only) and PREPAREs of every other replica.
    fn prepared_cert(&mut self) -> Result<Option<PreparedCert>> {
        if self.said.pre_prepares.is_empty() {
            return Ok(None);
        }
        let pp = self.u.choose(&self.said.pre_prepares)?.without_batch();
        let body = pp.payload().clone();
        let prepares = (0..N as u32)
            .filter(|&r| r != body.primary.0)
            .take(self.u.int_in_range(1..=N - 1)?)
            .map(|r| {
                let vote =
                    Prepare { view: body.view, seq: body.seq, digest: body.digest, replica: ReplicaId(r) };
                Signed::sign(vote, keys().replica(r))
            })
            .collect();
        Ok(Some(PreparedCert { pre_prepare: pp, prepares }))
    }

    fn view_change(&mut self) -> Result<Message> {
        let new_view = self.replica.view() + u64::from(self.u.int_in_range(1..=2u8)?);
        let replica = self.replica_id()?;
        let checkpoint = self.checkpoint_proof()?;
        let prepared = match self.u.int_in_range(0..=2u8)? {
            0 => self.prepared_cert()?.into_iter().collect(),
            _ => Vec::new(),
        };
        let body = ViewChange { new_view, replica, checkpoint, prepared };
        Ok(Message::ViewChange(Signed::sign(body, keys().replica(replica.0))))
    }

    /// A NEW-VIEW from the view's primary, carrying the VIEW-CHANGEs said for
    /// that view and a re-proposal (header only) of each certificate in them.
    fn new_view(&mut self) -> Result<Message> {
        let views: Vec<View> = self.said.view_changes.keys().copied().collect();
        let view = if views.is_empty() { self.replica.view() + 1 } else { *self.u.choose(&views)? };
        let primary = ReplicaId((view % N as u64) as u32);
        let view_changes = self.said.view_changes.get(&view).cloned().unwrap_or_default();
        let mut pre_prepares: BTreeMap<SeqNum, Signed<PrePrepare>> = BTreeMap::new();
        if self.u.arbitrary()? {
            for vc in &view_changes {
                for cert in &vc.payload().prepared {
                    let old = cert.pre_prepare.payload();
                    let header =
                        PrePrepare { view, seq: old.seq, digest: old.digest, primary, batch: Vec::new() };
                    pre_prepares
                        .entry(old.seq)
                        .or_insert_with(|| Signed::sign(header, keys().replica(primary.0)));
                }
            }
        }
        let body =
            NewView { view, primary, view_changes, pre_prepares: pre_prepares.into_values().collect() };
        Ok(Message::NewView(Signed::sign(body, keys().replica(primary.0))))
    }

    fn status(&mut self) -> Result<Message> {
        let replica = self.replica_id()?;
        let body = StatusReport {
            view: self.view()?,
            view_changing: self.u.arbitrary()?,
            last_executed: self.seq()?,
            stable_seq: self.seq()?,
            replica,
        };
        Ok(Message::Status(Signed::sign(body, keys().replica(replica.0))))
    }

    /// A proof that a PRE-PREPARE already said committed: COMMITs of some
    /// replicas for its header.
    fn committed(&mut self) -> Result<Message> {
        let pp = if self.said.pre_prepares.is_empty() {
            self.pre_prepare()?
        } else {
            self.u.choose(&self.said.pre_prepares)?.clone()
        };
        let body = pp.payload().clone();
        let count = self.u.int_in_range(1..=N as u32)?;
        let commits = (0..count)
            .map(|r| {
                let vote =
                    Commit { view: body.view, seq: body.seq, digest: body.digest, replica: ReplicaId(r) };
                Signed::sign(vote, keys().replica(r))
            })
            .collect();
        let replica = self.replica_id()?;
        let proof = Committed { pre_prepare: pp, commits, replica };
        Ok(Message::Committed(Signed::sign(proof, keys().replica(replica.0))))
    }

    fn stable_checkpoint(&mut self) -> Result<Message> {
        let proof = self.checkpoint_proof()?;
        let replica = self.replica_id()?;
        Ok(Message::StableCheckpoint(Signed::sign(
            StableCheckpoint { proof, replica },
            keys().replica(replica.0),
        )))
    }

    fn fetch_state(&mut self) -> Result<Message> {
        let (seq, state_digest) = self.checkpoint_body()?;
        let replica = self.replica_id()?;
        let offset = u64::from(self.u.int_in_range(0..=255u8)?) * 16;
        let body = FetchState { seq, state_digest, offset, replica };
        Ok(Message::FetchState(Signed::sign(body, keys().replica(replica.0))))
    }

    fn state_chunk(&mut self) -> Result<Message> {
        let (seq, state_digest) = self.checkpoint_body()?;
        let replica = self.replica_id()?;
        let offset = u64::from(self.u.int_in_range(0..=64u8)?) * 16;
        let total_len = if self.u.arbitrary()? {
            u64::from(self.u.int_in_range(0..=2048u16)?)
        } else {
            self.u.arbitrary()?
        };
        let len = self.u.int_in_range(0..=96usize)?;
        let data = self.u.bytes(len)?.to_vec();
        let body = StateChunk { seq, state_digest, offset, total_len, data, replica };
        Ok(Message::StateChunk(Signed::sign(body, keys().replica(replica.0))))
    }
}
