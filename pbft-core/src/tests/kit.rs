//! Test kit: keys for a cluster, a tiny application, message builders, and
//! `step`, which feeds one input and returns every output it caused.

use crate::{
    batch_digest, AppError, ClientId, Commit, Digest, KeyBook, Message, Output, PrePrepare, Prepare,
    ProtocolConfig, Replica, ReplicaId, ReplicatedStateMachine, Request, RequestKind, SecretKey, SeqNum,
    Signed, Time, View,
};

/// Sums the first byte of every operation; results are the running total.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Summer(pub(crate) u64);

impl ReplicatedStateMachine for Summer {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        self.0 += u64::from(op.first().copied().unwrap_or(0));
        self.0.to_le_bytes().to_vec()
    }
    fn query(&self, _op: &[u8]) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        let bytes: [u8; 8] = snapshot.try_into().map_err(|_| AppError("8 bytes".into()))?;
        self.0 = u64::from_le_bytes(bytes);
        Ok(())
    }
}

pub(crate) struct Kit {
    pub(crate) n: usize,
    pub(crate) replicas: Vec<SecretKey>,
    pub(crate) client: SecretKey,
    pub(crate) book: KeyBook,
}

pub(crate) const CLIENT: ClientId = ClientId(7);
pub(crate) const STATUS_INTERVAL_MS: u64 = 1_000_000;

impl Kit {
    pub(crate) fn new(n: usize) -> Kit {
        let replicas: Vec<SecretKey> = (0..n).map(|i| SecretKey::from_seed([i as u8 + 1; 32])).collect();
        let client = SecretKey::from_seed([200; 32]);
        let publics: Vec<_> = replicas.iter().map(SecretKey::public).collect();
        let book = KeyBook::new(&publics, [(CLIENT, client.public())]).unwrap();
        Kit { n, replicas, client, book }
    }

    pub(crate) fn config() -> ProtocolConfig {
        ProtocolConfig {
            max_batch_size: 4,
            max_request_bytes: 64,
            max_result_bytes: 64,
            max_batch_bytes: 128,
            batch_delay_ms: 0,
            checkpoint_interval: 4,
            watermark_window: 8,
            view_change_timeout_ms: 100,
            max_view_change_backoff: 6,
            view_term_ms: 0,
            // Far away, so status reports stay out of single-replica tests.
            status_interval_ms: STATUS_INTERVAL_MS,
            state_chunk_bytes: 64,
            max_state_bytes: 4096,
            max_pending_per_client: 4,
            max_future_messages_per_replica: 16,
        }
    }

    pub(crate) fn replica(&self, id: u32) -> Replica<Summer> {
        self.replica_with(id, Kit::config())
    }

    pub(crate) fn replica_with(&self, id: u32, config: ProtocolConfig) -> Replica<Summer> {
        Replica::new(
            ReplicaId(id),
            config,
            self.book.clone(),
            self.replicas[id as usize].clone(),
            Summer::default(),
        )
        .unwrap()
    }

    pub(crate) fn key(&self, id: u32) -> &SecretKey {
        &self.replicas[id as usize]
    }

    pub(crate) fn primary(&self, view: View) -> u32 {
        (view % self.n as u64) as u32
    }

    pub(crate) fn request(&self, timestamp: u64, op: u8) -> Signed<Request> {
        self.request_of(timestamp, vec![op])
    }

    /// A write of `op`, whatever its size.
    pub(crate) fn request_of(&self, timestamp: u64, op: Vec<u8>) -> Signed<Request> {
        Signed::sign(Request { client: CLIENT, timestamp, op, kind: RequestKind::Write }, &self.client)
    }

    pub(crate) fn pre_prepare(
        &self,
        view: View,
        seq: SeqNum,
        batch: Vec<Signed<Request>>,
    ) -> Signed<PrePrepare> {
        let primary = self.primary(view);
        let body = PrePrepare { view, seq, digest: batch_digest(&batch), primary: ReplicaId(primary), batch };
        Signed::sign(body, self.key(primary))
    }

    pub(crate) fn prepare(&self, from: u32, view: View, seq: SeqNum, digest: Digest) -> Signed<Prepare> {
        Signed::sign(Prepare { view, seq, digest, replica: ReplicaId(from) }, self.key(from))
    }

    pub(crate) fn commit(&self, from: u32, view: View, seq: SeqNum, digest: Digest) -> Signed<Commit> {
        Signed::sign(Commit { view, seq, digest, replica: ReplicaId(from) }, self.key(from))
    }
}

/// Feeds `message` at `now` and returns every output it caused, but for
/// [`Output::Persist`] records: these show what the world sees (the
/// persistence tests read the records with [`drain_all`]).
pub(crate) fn step<A: ReplicatedStateMachine>(
    replica: &mut Replica<A>,
    now: Time,
    message: Message,
) -> Vec<Output> {
    replica.receive(now, message);
    drain(replica)
}

/// Every output waiting but the persist records (see [`step`]).
pub(crate) fn drain<A: ReplicatedStateMachine>(replica: &mut Replica<A>) -> Vec<Output> {
    drain_all(replica).into_iter().filter(|o| !matches!(o, Output::Persist(_))).collect()
}

/// Every output waiting, persist records included.
pub(crate) fn drain_all<A: ReplicatedStateMachine>(replica: &mut Replica<A>) -> Vec<Output> {
    std::iter::from_fn(|| replica.poll_output()).collect()
}

/// The outputs a dropped message produces: exactly one rejection event.
pub(crate) fn rejected(from: u32, kind: crate::MessageKind, reason: crate::Reject) -> Vec<Output> {
    vec![Output::Event(crate::Event::Rejected {
        from: crate::Author::Replica(ReplicaId(from)),
        kind,
        reason,
    })]
}
