//! A traitor: rewrites what a real replica sends, and reacts to what it
//! receives, according to its [`Behavior`].
//!
//! The traitor holds only its own secret key. Whatever it makes up it signs
//! with that key, so honest replicas can attribute it; what it cannot do is
//! forge another replica's signature (the `forge` behaviour tries, and is
//! caught). It is sans-IO like the replica it wraps: the simulator and the
//! real node both feed it outputs and incoming messages and carry out the
//! [`TraitorAction`]s it returns.

use super::behavior::Behavior;
use pbft_core::{
    batch_digest, Checkpoint, CheckpointProof, Commit, Digest, Message, Output, PrePrepare, Prepare, Quorum,
    ReplicaId, Reply, SecretKey, SeqNum, Signed, StatusReport, View, ViewChange,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Old messages a `replay` traitor keeps to re-send.
const REPLAY_HISTORY: usize = 64;
/// Junk messages a `flood` traitor adds to each message it sends.
const FLOOD_FACTOR: u64 = 8;
/// Slots a colluder remembers the primary's two pre-prepares for.
const FORK_SLOTS: usize = 1_024;
/// How far ahead a `view-change-liar` asks the view to jump.
const VIEW_STORM_JUMP: u64 = 1_000;

/// Something the host must do for a traitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraitorAction {
    /// Send `message` to replica `to`, `delay_ms` later than now.
    Send {
        /// The destination.
        to: ReplicaId,
        /// The message.
        message: Message,
        /// Extra delay the traitor adds before sending.
        delay_ms: u64,
    },
    /// Send a reply to a client.
    Reply(Reply),
}

/// Who a traitor works with and against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraitorPlan {
    /// Every traitor of the conspiracy, this one included (used by `collude`).
    pub colluders: BTreeSet<ReplicaId>,
    /// The replicas a `selective` traitor still talks to.
    pub selective_targets: BTreeSet<ReplicaId>,
    /// How long a `slow-primary` holds each PRE-PREPARE.
    pub slow_delay_ms: u64,
}

impl TraitorPlan {
    /// The plan for traitor `id` among `colluders` in a cluster of `quorum`
    /// whose view-change timeout is `view_change_timeout_ms`: `selective`
    /// talks to the lower half of the other replicas, `slow-primary` holds
    /// pre-prepares for 90 % of the timeout.
    pub fn new(
        id: ReplicaId,
        colluders: BTreeSet<ReplicaId>,
        quorum: Quorum,
        view_change_timeout_ms: u64,
    ) -> TraitorPlan {
        let others: Vec<ReplicaId> = quorum.replicas().filter(|r| *r != id).collect();
        let selective_targets = others.iter().take(others.len().div_ceil(2)).copied().collect();
        TraitorPlan { colluders, selective_targets, slow_delay_ms: view_change_timeout_ms * 9 / 10 }
    }
}

/// A replica's adversarial half: everything it sends passes through here.
pub struct Traitor {
    id: ReplicaId,
    behavior: Behavior,
    secret: SecretKey,
    quorum: Quorum,
    plan: TraitorPlan,
    sent: u64,
    history: VecDeque<Message>,
    /// `collude`: the colluding primary's pre-prepares per slot (at most two each).
    forks: BTreeMap<(View, SeqNum), Vec<Signed<PrePrepare>>>,
}

impl Traitor {
    /// Replica `id` turned traitor with `behavior`, signing with `secret`.
    pub fn new(
        id: ReplicaId,
        behavior: Behavior,
        secret: SecretKey,
        quorum: Quorum,
        plan: TraitorPlan,
    ) -> Traitor {
        Traitor {
            id,
            behavior,
            secret,
            quorum,
            plan,
            sent: 0,
            history: VecDeque::new(),
            forks: BTreeMap::new(),
        }
    }

    /// The behaviour.
    pub fn behavior(&self) -> Behavior {
        self.behavior
    }

    /// The honest replicas split in two halves, lower ids first: the two
    /// audiences of the fork attack.
    pub fn honest_halves(&self) -> (Vec<ReplicaId>, Vec<ReplicaId>) {
        let honest: Vec<ReplicaId> =
            self.quorum.replicas().filter(|r| !self.plan.colluders.contains(r)).collect();
        let (first, second) = honest.split_at(honest.len() / 2);
        (first.to_vec(), second.to_vec())
    }

    /// Rewrites one output of the wrapped replica. Events are not outputs to
    /// rewrite; the host passes them on itself.
    pub fn outgoing(&mut self, output: Output) -> Vec<TraitorAction> {
        let mut actions = Vec::new();
        match output {
            Output::Send { to, message } => self.rewrite(to, message, &mut actions),
            Output::Broadcast(message) => {
                let others: Vec<ReplicaId> = self.quorum.replicas().filter(|r| *r != self.id).collect();
                for to in others {
                    self.rewrite(to, message.clone(), &mut actions);
                }
            }
            Output::Reply(mut reply) => match self.behavior {
                Behavior::Silent => {}
                Behavior::Forge => {
                    reply.result = b"a result no replica computed".to_vec();
                    actions.push(TraitorAction::Reply(reply));
                }
                _ => actions.push(TraitorAction::Reply(reply)),
            },
            Output::Event(_) | Output::Persist(_) => {}
        }
        actions
    }

    /// Reacts to a message the wrapped replica received (before it sees it).
    pub fn incoming(&mut self, message: &Message) -> Vec<TraitorAction> {
        match (self.behavior, message) {
            (Behavior::Collude, Message::PrePrepare(pre_prepare)) => self.conspire(pre_prepare),
            (Behavior::Replay, Message::Status(_)) => {
                // Peers' reports join what it replays: answered, a replay
                // would spend its signer's answer budget (issue 21, point 7).
                self.remember(message.clone());
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Keeps `message` among the last [`REPLAY_HISTORY`] a replaying
    /// traitor may send again.
    fn remember(&mut self, message: Message) {
        self.history.push_back(message);
        if self.history.len() > REPLAY_HISTORY {
            self.history.pop_front();
        }
    }

    fn send(actions: &mut Vec<TraitorAction>, to: ReplicaId, message: Message) {
        actions.push(TraitorAction::Send { to, message, delay_ms: 0 });
    }

    fn rewrite(&mut self, to: ReplicaId, message: Message, actions: &mut Vec<TraitorAction>) {
        self.sent += 1;
        match self.behavior {
            Behavior::Silent => {}
            Behavior::Equivocate => self.equivocate(to, message, actions),
            Behavior::DoubleVote => {
                let second = self.other_vote(&message);
                Self::send(actions, to, message);
                if let Some(second) = second {
                    Self::send(actions, to, second);
                }
            }
            Behavior::Forge => {
                let forgeries = self.forgeries(&message);
                Self::send(actions, to, message);
                for forged in forgeries {
                    Self::send(actions, to, forged);
                }
            }
            Behavior::Replay => {
                let old = (!self.history.is_empty())
                    .then(|| self.history[(self.sent as usize * 7) % self.history.len()].clone());
                self.remember(message.clone());
                Self::send(actions, to, message);
                if let Some(old) = old {
                    Self::send(actions, to, old);
                }
            }
            Behavior::ViewChangeLiar => self.lie_in_view_change(to, message, actions),
            Behavior::SlowPrimary => {
                let delay_ms =
                    if matches!(message, Message::PrePrepare(_)) { self.plan.slow_delay_ms } else { 0 };
                actions.push(TraitorAction::Send { to, message, delay_ms });
            }
            Behavior::Flood => {
                let junk = self.junk(&message);
                Self::send(actions, to, message);
                for message in junk {
                    Self::send(actions, to, message);
                }
            }
            Behavior::Selective => {
                if self.plan.selective_targets.contains(&to) {
                    Self::send(actions, to, message);
                }
            }
            Behavior::Collude => self.collude_outgoing(to, message, actions),
        }
    }

    /// Whether `to` is in the second half of the replicas other than this one.
    fn in_second_half(&self, to: ReplicaId) -> bool {
        let others: Vec<ReplicaId> = self.quorum.replicas().filter(|r| *r != self.id).collect();
        others.iter().position(|r| *r == to).is_some_and(|i| i >= others.len() / 2)
    }

    /// The first replica of the second half: it hears both versions, so it
    /// can tell (and report) that this replica equivocates.
    fn first_of_second_half(&self) -> Option<ReplicaId> {
        let others: Vec<ReplicaId> = self.quorum.replicas().filter(|r| *r != self.id).collect();
        others.get(others.len() / 2).copied()
    }

    fn equivocate(&mut self, to: ReplicaId, message: Message, actions: &mut Vec<TraitorAction>) {
        let alternative = match &message {
            Message::PrePrepare(m) => Some(self.alternative_pre_prepare(m.payload())),
            Message::Prepare(_) | Message::Commit(_) => self.other_vote(&message),
            _ => None,
        };
        match alternative {
            Some(alternative) if self.in_second_half(to) => {
                if self.first_of_second_half() == Some(to) {
                    Self::send(actions, to, message);
                }
                Self::send(actions, to, alternative);
            }
            _ => Self::send(actions, to, message),
        }
    }

    /// The same requests in another order (or none), signed: a pre-prepare
    /// for the same slot with a different digest.
    fn alternative_pre_prepare(&self, genuine: &PrePrepare) -> Message {
        let mut batch = genuine.batch.clone();
        if batch.len() >= 2 {
            batch.reverse();
        } else {
            batch.clear();
        }
        self.signed_pre_prepare(genuine, batch)
    }

    fn signed_pre_prepare(&self, like: &PrePrepare, batch: Vec<Signed<pbft_core::Request>>) -> Message {
        let digest = batch_digest(&batch);
        Message::PrePrepare(Signed::sign(
            PrePrepare { view: like.view, seq: like.seq, digest, primary: self.id, batch },
            &self.secret,
        ))
    }

    /// A second, conflicting vote for the slot of a PREPARE or COMMIT.
    fn other_vote(&self, message: &Message) -> Option<Message> {
        let bogus = |digest: &Digest| Digest::of_parts(&[b"traitor", digest.as_bytes()]);
        match message {
            Message::Prepare(m) => {
                let p = m.payload();
                let vote = Prepare { view: p.view, seq: p.seq, digest: bogus(&p.digest), replica: self.id };
                Some(Message::Prepare(Signed::sign(vote, &self.secret)))
            }
            Message::Commit(m) => {
                let c = m.payload();
                let vote = Commit { view: c.view, seq: c.seq, digest: bogus(&c.digest), replica: self.id };
                Some(Message::Commit(Signed::sign(vote, &self.secret)))
            }
            _ => None,
        }
    }

    /// Copies of `message` that honest replicas must refuse: one with a
    /// corrupted signature, and (for votes) one claiming another replica wrote it.
    fn forgeries(&self, message: &Message) -> Vec<Message> {
        let mut forged = Vec::new();
        if let Message::Prepare(m) = message {
            let mut corrupted = m.signature().to_vec();
            if let Some(byte) = corrupted.last_mut() {
                *byte ^= 0x01;
            }
            forged.push(Message::Prepare(Signed::from_parts(m.payload().clone(), corrupted)));
            let victim =
                self.quorum.replicas().find(|r| *r != self.id && *r != self.quorum.primary(m.payload().view));
            if let Some(victim) = victim {
                let claim = Prepare { replica: victim, ..m.payload().clone() };
                let signature = Signed::sign(claim.clone(), &self.secret).signature().to_vec();
                forged.push(Message::Prepare(Signed::from_parts(claim, signature)));
            }
        }
        if let Message::Commit(m) = message {
            let mut corrupted = m.signature().to_vec();
            if let Some(byte) = corrupted.first_mut() {
                *byte ^= 0x80;
            }
            forged.push(Message::Commit(Signed::from_parts(m.payload().clone(), corrupted)));
        }
        forged
    }

    /// Valid-looking messages that serve no purpose: votes for views far
    /// ahead (they fill the future-message buffers), checkpoints nobody
    /// agrees with, status reports claiming odd progress.
    fn junk(&self, like: &Message) -> Vec<Message> {
        let (view, seq) = match like {
            Message::PrePrepare(m) => (m.payload().view, m.payload().seq),
            Message::Prepare(m) => (m.payload().view, m.payload().seq),
            Message::Commit(m) => (m.payload().view, m.payload().seq),
            Message::Status(m) => (m.payload().view, m.payload().last_executed),
            _ => (0, 0),
        };
        (0..FLOOD_FACTOR)
            .map(|i| {
                let salt = self.sent.wrapping_mul(FLOOD_FACTOR).wrapping_add(i);
                let digest = Digest::of(&salt.to_be_bytes());
                match i % 3 {
                    0 => Message::Prepare(Signed::sign(
                        Prepare { view: view + 1 + i, seq: seq + i, digest, replica: self.id },
                        &self.secret,
                    )),
                    1 => Message::Checkpoint(Signed::sign(
                        Checkpoint { seq: seq + salt % 64, state_digest: digest, replica: self.id },
                        &self.secret,
                    )),
                    _ => Message::Status(Signed::sign(
                        StatusReport {
                            view,
                            view_changing: false,
                            last_executed: salt % 3,
                            stable_seq: 0,
                            replica: self.id,
                        },
                        &self.secret,
                    )),
                }
            })
            .collect()
    }

    fn lie_in_view_change(&mut self, to: ReplicaId, message: Message, actions: &mut Vec<TraitorAction>) {
        match message {
            Message::ViewChange(m) => {
                let lie = ViewChange {
                    new_view: m.payload().new_view,
                    replica: self.id,
                    checkpoint: CheckpointProof::genesis(),
                    prepared: Vec::new(),
                };
                Self::send(actions, to, Message::ViewChange(Signed::sign(lie, &self.secret)));
            }
            Message::Status(m) => {
                let storm = ViewChange {
                    new_view: m.payload().view + VIEW_STORM_JUMP + self.sent % 7,
                    replica: self.id,
                    checkpoint: CheckpointProof::genesis(),
                    prepared: Vec::new(),
                };
                Self::send(actions, to, Message::Status(m));
                Self::send(actions, to, Message::ViewChange(Signed::sign(storm, &self.secret)));
            }
            other => Self::send(actions, to, other),
        }
    }

    /// The fork attack, as the primary: one batch to each honest half (and
    /// both to the other colluders), with this replica's commit for each.
    /// The wrapped replica's own prepares and commits are withheld: the
    /// conspiracy votes instead.
    fn collude_outgoing(&mut self, to: ReplicaId, message: Message, actions: &mut Vec<TraitorAction>) {
        match message {
            Message::PrePrepare(m) if m.payload().primary == self.id => {
                let (low, high) = self.fork_pair(m.payload());
                let (first, second) = self.honest_halves();
                let audience = if first.contains(&to) {
                    vec![low.clone()]
                } else if second.contains(&to) {
                    vec![high.clone()]
                } else {
                    vec![low.clone(), high.clone()]
                };
                for pre_prepare in audience {
                    if let Message::PrePrepare(signed) = &pre_prepare {
                        let body = signed.payload();
                        let commit =
                            Commit { view: body.view, seq: body.seq, digest: body.digest, replica: self.id };
                        Self::send(actions, to, pre_prepare.clone());
                        if !self.plan.colluders.contains(&to) {
                            Self::send(actions, to, Message::Commit(Signed::sign(commit, &self.secret)));
                        }
                    }
                }
            }
            Message::Prepare(_) | Message::Commit(_) => {}
            other => Self::send(actions, to, other),
        }
    }

    /// The two batches of the fork: the requests sorted by digest, the first
    /// half for the first honest half of the replicas and the rest (nothing,
    /// for a single request) for the second. So the two halves execute
    /// different requests at one sequence number.
    fn fork_pair(&self, genuine: &PrePrepare) -> (Message, Message) {
        let mut sorted = genuine.batch.clone();
        sorted.sort_by_key(|r| *r.digest().as_bytes());
        let second = sorted.split_off(sorted.len().div_ceil(2));
        (self.signed_pre_prepare(genuine, sorted), self.signed_pre_prepare(genuine, second))
    }

    /// A colluding backup's part: once the colluding primary's two
    /// pre-prepares for a slot have arrived, prepare and commit each towards
    /// the honest half it was meant for. The two are told apart as the
    /// primary split them: the batch whose first request sorts first (a
    /// non-empty one before an empty one) is the first half's.
    fn conspire(&mut self, pre_prepare: &Signed<PrePrepare>) -> Vec<TraitorAction> {
        let body = pre_prepare.payload();
        if !self.plan.colluders.contains(&body.primary) || body.primary == self.id {
            return Vec::new();
        }
        let slot = self.forks.entry((body.view, body.seq)).or_default();
        if slot.iter().any(|p| p.payload().digest == body.digest) || slot.len() >= 2 {
            return Vec::new();
        }
        slot.push(pre_prepare.clone());
        if slot.len() < 2 {
            return Vec::new();
        }
        let order = |p: &Signed<PrePrepare>| {
            let first = p.payload().batch.first().map(|r| *r.digest().as_bytes());
            (first.is_none(), first)
        };
        let mut pair = slot.clone();
        pair.sort_by_key(order);
        while self.forks.len() > FORK_SLOTS {
            self.forks.pop_first();
        }
        let (first, second) = self.honest_halves();
        let mut actions = Vec::new();
        for (pre_prepare, audience) in pair.iter().zip([first, second]) {
            let body = pre_prepare.payload();
            let prepare = Prepare { view: body.view, seq: body.seq, digest: body.digest, replica: self.id };
            let commit = Commit { view: body.view, seq: body.seq, digest: body.digest, replica: self.id };
            let prepare = Message::Prepare(Signed::sign(prepare, &self.secret));
            let commit = Message::Commit(Signed::sign(commit, &self.secret));
            for to in audience {
                Self::send(&mut actions, to, prepare.clone());
                Self::send(&mut actions, to, commit.clone());
            }
        }
        actions
    }
}
