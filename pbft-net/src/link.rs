//! The pieces every connection is made of: counters, a bounded outgoing
//! queue, a frame reader and a frame writer.

use crate::endpoint::NetLimits;
use crate::frame::{encode_frame, FrameDecoder, LENGTH_PREFIX_BYTES};
use crate::identity::Peer;
use crate::wire::{decode_wire, encode_wire, NetCounters, PeerCounters, Wire};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// One encoded, length-prefixed frame, shared between the queues of a broadcast.
pub type Frame = Arc<[u8]>;

/// Frames a reader asks quinn for at once.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The QUIC application error code for a stream that broke the framing rules.
const FRAMING_VIOLATION: u32 = 1;

/// `wire` as a frame ready for any number of queues.
pub fn frame_of(wire: &Wire) -> Frame {
    Arc::from(encode_frame(&encode_wire(wire)))
}

/// Transport counters shared by every task of one endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    frames_in: AtomicU64,
    malformed_frames: AtomicU64,
    forbidden_frames: AtomicU64,
    oversized_frames: AtomicU64,
    send_queue_drops: AtomicU64,
    oversized_frames_out: AtomicU64,
    refused_frames: AtomicU64,
    failed_handshakes: AtomicU64,
    links_up: AtomicU64,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> NetCounters {
        NetCounters {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            malformed_frames: self.malformed_frames.load(Ordering::Relaxed),
            forbidden_frames: self.forbidden_frames.load(Ordering::Relaxed),
            oversized_frames: self.oversized_frames.load(Ordering::Relaxed),
            send_queue_drops: self.send_queue_drops.load(Ordering::Relaxed),
            oversized_frames_out: self.oversized_frames_out.load(Ordering::Relaxed),
            refused_frames: self.refused_frames.load(Ordering::Relaxed),
            failed_handshakes: self.failed_handshakes.load(Ordering::Relaxed),
            links_up: self.links_up.load(Ordering::Relaxed),
        }
    }

    /// An outgoing link opened its stream; `link_down` when it closes.
    pub(crate) fn link_up(&self) {
        self.links_up.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn link_down(&self) {
        self.links_up.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn failed_handshake(&self) {
        self.failed_handshakes.fetch_add(1, Ordering::Relaxed);
    }
}

/// One peer's share of the traffic (a replica peer; or all clients
/// together, so that the number of label values stays bounded), counted
/// since start.
#[derive(Debug, Default)]
pub struct PeerStats {
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    malformed_frames: AtomicU64,
    forbidden_frames: AtomicU64,
    oversized_frames: AtomicU64,
    send_queue_drops: AtomicU64,
    oversized_frames_out: AtomicU64,
    refused_frames: AtomicU64,
    links_up: AtomicU64,
}

impl PeerStats {
    /// The counters now, under `peer`'s name, with `queued` frames waiting
    /// in its send queue.
    pub(crate) fn snapshot(&self, peer: String, queued: u64) -> PeerCounters {
        PeerCounters {
            peer,
            link_up: self.links_up.load(Ordering::Relaxed) > 0,
            send_queue_frames: queued,
            frames_in: self.frames_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            malformed_frames: self.malformed_frames.load(Ordering::Relaxed),
            forbidden_frames: self.forbidden_frames.load(Ordering::Relaxed),
            oversized_frames: self.oversized_frames.load(Ordering::Relaxed),
            send_queue_drops: self.send_queue_drops.load(Ordering::Relaxed),
            oversized_frames_out: self.oversized_frames_out.load(Ordering::Relaxed),
            refused_frames: self.refused_frames.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn link_up(&self) {
        self.links_up.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn link_down(&self) {
        self.links_up.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sending end of one peer's bounded queue. When the queue is full (the
/// peer is slow, dead or reconnecting) the frame is dropped and counted rather
/// than held: PBFT recovers lost messages through retransmission and state
/// transfer, while an unbounded queue would let one dead peer exhaust memory.
#[derive(Clone, Debug)]
pub struct Outbox {
    queue: mpsc::Sender<Frame>,
    /// Bytes of the frames in the queue, shared with its [`FrameQueue`].
    queued_bytes: Arc<AtomicUsize>,
    /// What `queued_bytes` may reach (but for a frame in an empty queue).
    max_queued_bytes: usize,
    stats: Arc<Stats>,
    peer: Arc<PeerStats>,
    /// Largest frame payload sent: the limit every receiver enforces. A
    /// larger frame would make the receiver close the connection.
    max_frame_bytes: usize,
}

impl Outbox {
    /// A queue of `limits.send_queue_frames` frames and
    /// `limits.send_queue_bytes` bytes, of frames of at most
    /// `limits.max_frame_bytes`, to the peer counted in `peer`, and the
    /// receiving end its writer drains.
    pub(crate) fn bounded(
        limits: &NetLimits,
        stats: Arc<Stats>,
        peer: Arc<PeerStats>,
    ) -> (Outbox, FrameQueue) {
        let (queue, receiver) = mpsc::channel(limits.send_queue_frames.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            queue,
            queued_bytes: queued_bytes.clone(),
            max_queued_bytes: limits.send_queue_bytes,
            stats,
            peer,
            max_frame_bytes: limits.max_frame_bytes,
        };
        (outbox, FrameQueue { receiver, queued_bytes })
    }

    /// Bytes waiting in the queue now.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Frames waiting in the queue now.
    pub(crate) fn queued(&self) -> u64 {
        (self.queue.max_capacity() - self.queue.capacity()) as u64
    }

    /// Queues `frame`; returns false if it was dropped (over the frame size
    /// limit, or queue full) or the writer is gone. A frame over the limit
    /// is never sent: the receiver would close the connection on it.
    pub fn push(&self, frame: Frame) -> bool {
        let payload = frame.len().saturating_sub(LENGTH_PREFIX_BYTES);
        if payload > self.max_frame_bytes {
            self.stats.oversized_frames_out.fetch_add(1, Ordering::Relaxed);
            self.peer.oversized_frames_out.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                bytes = payload,
                limit = self.max_frame_bytes,
                "dropped a frame over the size limit"
            );
            return false;
        }
        let len = frame.len();
        let max = self.max_queued_bytes;
        let charged = self.queued_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
            (queued == 0 || queued.saturating_add(len) <= max).then_some(queued + len)
        });
        if charged.is_err() {
            self.count_drop();
            return false;
        }
        match self.queue.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.count_drop();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                false
            }
        }
    }

    fn count_drop(&self) {
        self.stats.send_queue_drops.fetch_add(1, Ordering::Relaxed);
        self.peer.send_queue_drops.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the connection this queue feeds has its stream open now.
    pub(crate) fn is_up(&self) -> bool {
        self.peer.links_up.load(Ordering::Relaxed) > 0
    }

    /// Whether the writer behind this queue has stopped.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// The receiving end of an [`Outbox`]: its frames in order, each taken off
/// the queue's byte count as the writer takes it.
#[derive(Debug)]
pub(crate) struct FrameQueue {
    receiver: mpsc::Receiver<Frame>,
    queued_bytes: Arc<AtomicUsize>,
}

impl FrameQueue {
    /// The next frame, or `None` once every [`Outbox`] is gone. Cancel-safe,
    /// as `mpsc::Receiver::recv` is: a frame is uncounted only when taken.
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        let frame = self.receiver.recv().await?;
        self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }

    /// Whether every [`Outbox`] of this queue is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.receiver.is_closed()
    }
}

/// A decoded frame and who sent it, with the way back to the sender when it
/// is a client connection.
#[derive(Debug)]
pub struct Inbound {
    /// The authenticated sender.
    pub from: Peer,
    /// What it sent.
    pub wire: Wire,
    /// The connection's own outgoing queue, for answering on it (clients only).
    pub reply_to: Option<Outbox>,
    /// This frame's share of its connection's inbox budget, given back when
    /// the frame is dropped (handled).
    _charge: Option<OwnedSemaphorePermit>,
}

impl Inbound {
    /// A frame from `from` that counts against no connection's inbox budget
    /// (for hosts and benchmarks that make their own input).
    pub fn new(from: Peer, wire: Wire, reply_to: Option<Outbox>) -> Inbound {
        Inbound { from, wire, reply_to, _charge: None }
    }
}

/// Where a reader delivers: the endpoint's inbox, with who the frames come
/// from and how to answer them.
pub(crate) struct Delivery {
    inbox: mpsc::Sender<Inbound>,
    from: Peer,
    reply_to: Option<Outbox>,
    /// Where the sender's share of the traffic is counted.
    peer: Arc<PeerStats>,
    /// The connection's inbox budget, shared by all its streams.
    budget: InboxBudget,
}

/// Bytes of one connection's frames in the inbox, not yet handled, may
/// reach this (`NetLimits::inbox_bytes_per_connection` for a replica, two
/// of its largest frames for a client): its readers wait beyond, so one
/// peer's flood slows that peer, not the others. One budget per connection,
/// shared by every stream the peer opens on it, so opening a new stream
/// gets no fresh budget.
#[derive(Clone, Debug)]
pub(crate) struct InboxBudget {
    semaphore: Arc<Semaphore>,
    bytes: usize,
}

impl InboxBudget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> InboxBudget {
        let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        InboxBudget { semaphore: Arc::new(Semaphore::new(bytes)), bytes }
    }
}

impl Delivery {
    /// Delivery into `inbox` of frames from `from`, counted in `peer`,
    /// within its connection's `budget`.
    pub(crate) fn new(
        inbox: mpsc::Sender<Inbound>,
        from: Peer,
        reply_to: Option<Outbox>,
        peer: Arc<PeerStats>,
        budget: InboxBudget,
    ) -> Delivery {
        Delivery { inbox, from, reply_to, peer, budget }
    }

    /// Waits until `bytes` fit in this connection's inbox budget (a frame
    /// larger than the whole budget waits for all of it); `None` if closed.
    async fn charge(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let permits = u32::try_from(bytes.clamp(1, self.budget.bytes)).unwrap_or(u32::MAX);
        self.budget.semaphore.clone().acquire_many_owned(permits).await.ok()
    }
}

/// Reads frames from `recv` until the stream ends and delivers each decoded
/// one, waiting while the inbox is full (so QUIC flow control slows the
/// sender down instead of memory growing). Undecodable payloads are counted
/// and skipped; a frame announced above `limit` closes the connection, since
/// the stream cannot be resynchronised.
pub(crate) async fn read_frames(
    mut recv: quinn::RecvStream,
    connection: &quinn::Connection,
    limit: usize,
    stats: &Stats,
    delivery: Delivery,
) {
    let mut decoder = FrameDecoder::new(limit);
    loop {
        let chunk = match recv.read_chunk(READ_CHUNK_BYTES, true).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) | Err(_) => return,
        };
        delivery.peer.bytes_in.fetch_add(chunk.bytes.len() as u64, Ordering::Relaxed);
        let mut frames = Vec::new();
        let framing = decoder.push(&chunk.bytes, &mut frames);
        for payload in frames {
            match decode_wire(&payload) {
                Ok(wire) if !may_send(delivery.from, &wire) => {
                    stats.forbidden_frames.fetch_add(1, Ordering::Relaxed);
                    delivery.peer.forbidden_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %connection.remote_address(), "dropped a protocol message its channel may not carry");
                }
                Ok(wire) => {
                    stats.frames_in.fetch_add(1, Ordering::Relaxed);
                    delivery.peer.frames_in.fetch_add(1, Ordering::Relaxed);
                    let charge = delivery.charge(payload.len()).await;
                    let inbound = Inbound {
                        from: delivery.from,
                        wire,
                        reply_to: delivery.reply_to.clone(),
                        _charge: charge,
                    };
                    if delivery.inbox.send(inbound).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                    delivery.peer.malformed_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %connection.remote_address(), %error, "dropped malformed frame");
                }
            }
        }
        if let Err(error) = framing {
            stats.oversized_frames.fetch_add(1, Ordering::Relaxed);
            delivery.peer.oversized_frames.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %connection.remote_address(), %error, "closing connection");
            connection.close(FRAMING_VIOLATION.into(), b"frame too large");
            return;
        }
    }
}

/// How a writer stopped.
pub(crate) enum WriteEnd {
    /// Everyone holding the queue let go of it: the endpoint is shutting down.
    QueueClosed,
    /// The connection broke; carries the frame that was being written, if
    /// any, to be sent first on the next connection.
    Broken(Option<Frame>),
    /// The receiver closed the connection because a frame broke its framing
    /// rules (its size limit is below ours). The frame being written is
    /// dropped, never sent again: resending it first after every reconnect
    /// would keep the link down for good.
    Refused,
}

/// Writes queued frames (`first` before them) to `send` until the queue
/// closes or the connection breaks, counting the bytes in `peer`.
pub(crate) async fn write_frames(
    send: &mut quinn::SendStream,
    queue: &mut FrameQueue,
    connection: &quinn::Connection,
    peer: &PeerStats,
    mut first: Option<Frame>,
) -> WriteEnd {
    loop {
        let frame = match first.take() {
            Some(frame) => frame,
            None => tokio::select! {
                frame = queue.recv() => match frame {
                    Some(frame) => frame,
                    None => return WriteEnd::QueueClosed,
                },
                _ = connection.closed() => return WriteEnd::Broken(None),
            },
        };
        if let Err(error) = send.write_all(&frame).await {
            return if refused_framing(&error) { WriteEnd::Refused } else { WriteEnd::Broken(Some(frame)) };
        }
        peer.bytes_out.fetch_add(frame.len() as u64, Ordering::Relaxed);
    }
}

/// Whether `error` is the receiver closing the connection for a framing
/// violation (what [`read_frames`] does on a frame over its limit).
fn refused_framing(error: &quinn::WriteError) -> bool {
    matches!(
        error,
        quinn::WriteError::ConnectionLost(quinn::ConnectionError::ApplicationClosed(close))
            if close.error_code == quinn::VarInt::from_u32(FRAMING_VIOLATION)
    )
}

impl Stats {
    /// A frame the receiver refused was dropped (see [`WriteEnd::Refused`]).
    pub(crate) fn refused_frame(&self, peer: &PeerStats) {
        self.refused_frames.fetch_add(1, Ordering::Relaxed);
        peer.refused_frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether `from`'s channel may carry `wire` (see
/// [`pbft_core::channel::may_carry`]): a client's only protocol message is
/// its REQUEST, and a STATUS report comes only from its author. Anything
/// else is dropped here, before any signature is checked.
fn may_send(from: Peer, wire: &Wire) -> bool {
    match wire {
        Wire::Message(message) => pbft_core::channel::may_carry(from.author(), message),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: usize) -> Frame {
        Arc::from(vec![0u8; bytes])
    }

    /// Issue 21, point 4: a send queue is bounded in bytes, not only in
    /// frames. Frames that would take it past `send_queue_bytes` are dropped
    /// and counted; a frame always fits in an empty queue; what the writer
    /// takes is taken off the count.
    #[tokio::test]
    async fn a_send_queue_holds_at_most_its_bytes() {
        let limits = NetLimits { send_queue_bytes: 1_000, ..NetLimits::default() };
        let peer = Arc::new(PeerStats::default());
        let (outbox, mut queue) = Outbox::bounded(&limits, Arc::new(Stats::default()), peer.clone());
        assert!(outbox.push(frame(400)));
        assert!(outbox.push(frame(400)));
        assert!(!outbox.push(frame(400)), "1,200 bytes would pass the 1,000 allowed");
        assert_eq!(outbox.queued_bytes(), 800);
        assert_eq!(peer.send_queue_drops.load(Ordering::Relaxed), 1);
        assert_eq!(queue.recv().await.map(|f| f.len()), Some(400));
        assert_eq!(outbox.queued_bytes(), 400);
        assert!(outbox.push(frame(600)), "fits again once the writer took a frame");
        assert_eq!(queue.recv().await.map(|f| f.len()), Some(400));
        assert_eq!(queue.recv().await.map(|f| f.len()), Some(600));
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(outbox.push(frame(5_000)), "a frame over the budget fits an empty queue");
        assert!(!outbox.push(frame(1)), "and nothing fits beside it");
    }

    /// Whether `future` completes at its first poll.
    fn ready_at_once<F: std::future::Future>(future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }

    /// Issue 21, point 4: one connection's frames in the inbox are bounded
    /// in bytes. Its reader waits (so QUIC flow control slows that sender
    /// alone) until handled frames give their bytes back; a frame over the
    /// whole budget waits for all of it.
    #[test]
    fn a_connections_inbox_share_is_bounded_in_bytes() {
        let (inbox, _receiver) = mpsc::channel(16);
        let budget = InboxBudget::new(1_000);
        let peer = Peer::Replica(pbft_core::ReplicaId(1));
        let delivery = Delivery::new(inbox.clone(), peer, None, Arc::default(), budget.clone());
        let next_stream = Delivery::new(inbox, peer, None, Arc::default(), budget);
        let first = ready_at_once(delivery.charge(400)).flatten().expect("400 of 1,000 bytes");
        let second = ready_at_once(delivery.charge(400)).flatten().expect("800 of 1,000 bytes");
        assert!(ready_at_once(delivery.charge(400)).is_none(), "1,200 bytes wait");
        assert!(ready_at_once(next_stream.charge(400)).is_none(), "a new stream of the connection waits too");
        drop(first);
        let third = ready_at_once(delivery.charge(400)).flatten().expect("fits once a frame was handled");
        assert!(ready_at_once(delivery.charge(5_000)).is_none(), "a huge frame waits for the whole budget");
        drop((second, third));
        assert!(ready_at_once(delivery.charge(5_000)).flatten().is_some(), "and gets it");
    }
}
