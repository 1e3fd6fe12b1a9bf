//! QUIC endpoints: a replica's (accepts everyone in the config, dials every
//! other replica) and a client's (dials every replica).
//!
//! Every connection carries one stream. A replica dials each other replica
//! once and sends on a unidirectional stream; the receiving side only reads.
//! A client dials each replica and uses one bidirectional stream: requests
//! go out, replies and status answers come back. Dialling retries forever
//! with exponential back-off, and every outgoing queue is bounded.

use crate::identity::{
    client_config, endpoint_config, peer_public_key, server_config, IdentityError, Peer, PinnedKeys,
};
use crate::link::{
    frame_of, read_frames, Delivery, Frame, FrameQueue, Inbound, InboxBudget, Outbox, PeerStats, Stats,
};
use crate::wire::{NetCounters, PeerCounters, Wire};
use pbft_core::{codec, ClientId, PublicKey, ReplicaId, SecretKey};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// First wait before re-dialling a peer that could not be reached.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two dial attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Concurrent connections one peer key may hold to a replica; a newer one
/// replaces the oldest.
const MAX_CONNECTIONS_PER_PEER: usize = 4;
/// The QUIC application error code for a refused connection.
const REFUSED: u32 = 2;
/// The TLS server name clients present; identity comes from the pinned key, not the name.
const SERVER_NAME: &str = "pbft";

/// Where a replica listens and the key it proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaAddress {
    /// Its ed25519 public key.
    pub key: PublicKey,
    /// Its UDP address.
    pub address: SocketAddr,
}

/// Sizes of the transport's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// The largest frame payload accepted, and sent: a peer announcing more
    /// is disconnected, and a frame over it is dropped before it is queued.
    pub max_frame_bytes: usize,
    /// The largest frame payload a replica accepts from a client: a client
    /// sends requests (at most `max_request_bytes` of operation) and small
    /// queries, so its connections need far less than a replica's.
    pub max_client_frame_bytes: usize,
    /// Frames queued per peer before new ones are dropped.
    pub send_queue_frames: usize,
    /// Bytes queued per peer before new frames are dropped; a frame always
    /// fits in an empty queue, so one peer's queue holds at most this plus
    /// one frame of `max_frame_bytes`.
    pub send_queue_bytes: usize,
    /// Bytes queued towards one client stream (its replies and answers)
    /// before new frames are dropped: a client has at most
    /// `max_pending_per_client` requests in flight, so this is that many
    /// replies of `max_result_bytes`, and one more, and never more than
    /// `send_queue_bytes`. A client that does not read loses replies, not
    /// the replica's memory.
    pub client_send_queue_bytes: usize,
    /// Decoded frames waiting for the protocol task before readers wait.
    pub inbox_frames: usize,
    /// Bytes (as framed) of one replica connection's frames waiting in the
    /// inbox before that connection's reader waits; a frame larger than
    /// this waits for the whole budget. A client connection's share is two
    /// of its largest frames.
    pub inbox_bytes_per_connection: usize,
}

/// What a frame between a client and a replica may hold beyond a
/// request's operation or a reply's result: the other fields, a signature
/// and the wire envelope, with room.
pub const CLIENT_FRAME_OVERHEAD_BYTES: usize = 4096;

/// The largest frame a reply of a cluster with `max_result_bytes` takes.
fn reply_frame_bytes(max_result_bytes: usize) -> usize {
    max_result_bytes.saturating_add(CLIENT_FRAME_OVERHEAD_BYTES)
}

/// The bytes of the replies a client with `window` requests in flight may
/// be owed by one replica, and one more frame (an answer to a query).
fn window_of_replies(max_result_bytes: usize, window: usize) -> usize {
    reply_frame_bytes(max_result_bytes).saturating_mul(window.saturating_add(1))
}

impl NetLimits {
    /// A replica's limits in a cluster with `protocol`: frames from a
    /// client hold one request of `max_request_bytes`, and a client's send
    /// queue one reply of `max_result_bytes` per request it may have in
    /// flight, and one more (never more than `send_queue_bytes`).
    pub fn for_protocol(protocol: &pbft_core::ProtocolConfig) -> NetLimits {
        let defaults = NetLimits::default();
        NetLimits {
            max_client_frame_bytes: protocol.max_request_bytes.saturating_add(CLIENT_FRAME_OVERHEAD_BYTES),
            client_send_queue_bytes: window_of_replies(
                protocol.max_result_bytes,
                protocol.max_pending_per_client,
            )
            .min(defaults.send_queue_bytes),
            ..defaults
        }
    }

    /// A client's limits for a cluster with requests of at most
    /// `max_request_bytes` and results of at most `max_result_bytes`, with
    /// `window` requests in flight: its frames, both ways, hold one request
    /// or one reply, and it holds at most `window + 1` replies per replica
    /// connection (never more than a replica link's share) before it stops
    /// reading, so a hostile replica cannot make it hold more.
    pub fn for_client(max_request_bytes: usize, max_result_bytes: usize, window: usize) -> NetLimits {
        let defaults = NetLimits::default();
        let request = max_request_bytes.saturating_add(CLIENT_FRAME_OVERHEAD_BYTES);
        NetLimits {
            max_frame_bytes: request.max(reply_frame_bytes(max_result_bytes)).min(defaults.max_frame_bytes),
            inbox_bytes_per_connection: window_of_replies(max_result_bytes, window)
                .min(defaults.inbox_bytes_per_connection),
            ..defaults
        }
    }

    fn client_inbox_bytes(&self) -> usize {
        self.max_client_frame_bytes.saturating_mul(2)
    }
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_frame_bytes: codec::MAX_MESSAGE_BYTES,
            max_client_frame_bytes: pbft_core::ProtocolConfig::default()
                .max_request_bytes
                .saturating_add(CLIENT_FRAME_OVERHEAD_BYTES),
            send_queue_frames: 1024,
            send_queue_bytes: 64 * 1024 * 1024,
            client_send_queue_bytes: {
                let protocol = pbft_core::ProtocolConfig::default();
                window_of_replies(protocol.max_result_bytes, protocol.max_pending_per_client)
            },
            inbox_frames: 4096,
            inbox_bytes_per_connection: codec::MAX_MESSAGE_BYTES,
        }
    }
}

/// Why an endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The UDP socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// TLS settings could not be made from the key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The metrics endpoint's TCP address could not be bound (taken, or not
    /// an address of this host).
    #[error("cannot serve metrics on {address}: {source}")]
    MetricsBind {
        /// The address asked for.
        address: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The replica id is not in the replica list.
    #[error("replica {0} is not in the list of replicas")]
    UnknownReplica(ReplicaId),
}

/// A replica's endpoint: accepts connections from every replica and client in
/// the config, and keeps one outgoing connection to every other replica.
pub struct ReplicaNet {
    endpoint: quinn::Endpoint,
    peers: Vec<Option<Outbox>>,
    stats: Arc<Stats>,
    traffic: Traffic,
    connections: OpenConnections,
}

/// Each peer's share of a replica's traffic: one entry per replica (its
/// own unused), and one for all clients together.
#[derive(Clone, Debug)]
struct Traffic {
    replicas: Arc<[Arc<PeerStats>]>,
    clients: Arc<PeerStats>,
}

impl Traffic {
    fn new(n: usize) -> Traffic {
        Traffic {
            replicas: (0..n).map(|_| Arc::new(PeerStats::default())).collect(),
            clients: Arc::new(PeerStats::default()),
        }
    }

    fn of(&self, peer: Peer) -> Arc<PeerStats> {
        match peer {
            Peer::Replica(id) => {
                self.replicas.get(id.index()).cloned().unwrap_or_else(|| self.clients.clone())
            }
            Peer::Client(_) => self.clients.clone(),
        }
    }
}

/// A replica's endpoint on `address`, accepting with `server` and with the
/// stateless-reset key that survives its restarts ([`endpoint_config`]).
fn bind_replica(
    secret: &SecretKey,
    server: quinn::ServerConfig,
    address: SocketAddr,
) -> Result<quinn::Endpoint, NetError> {
    let bind_error = |source| NetError::Bind { address, source };
    let socket = std::net::UdpSocket::bind(address).map_err(bind_error)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| bind_error(std::io::Error::other("no async runtime to run the endpoint on")))?;
    quinn::Endpoint::new(endpoint_config(secret), Some(server), socket, runtime).map_err(bind_error)
}

impl ReplicaNet {
    /// Binds `replicas[me]`'s address and starts accepting and dialling.
    /// Decoded frames arrive on the returned receiver. Must run inside a tokio runtime.
    pub fn start(
        me: ReplicaId,
        secret: &SecretKey,
        replicas: &[ReplicaAddress],
        clients: &[(ClientId, PublicKey)],
        limits: NetLimits,
    ) -> Result<(ReplicaNet, mpsc::Receiver<Inbound>), NetError> {
        let own = replicas.get(me.index()).ok_or(NetError::UnknownReplica(me))?;
        let keys: Vec<PublicKey> = replicas.iter().map(|r| r.key).collect();
        let pinned = Arc::new(PinnedKeys::new(&keys, clients.iter().copied()));
        let endpoint = bind_replica(secret, server_config(secret, &pinned)?, own.address)?;
        let stats = Arc::new(Stats::default());
        let traffic = Traffic::new(replicas.len());
        let connections: OpenConnections = Arc::new(Mutex::new(BTreeMap::new()));
        let (inbox, receiver) = mpsc::channel(limits.inbox_frames.max(1));
        let acceptor = Acceptor {
            pinned,
            inbox,
            limits,
            stats: stats.clone(),
            traffic: traffic.clone(),
            connections: connections.clone(),
        };
        tokio::spawn(acceptor.clone().run(endpoint.clone()));
        let mut peers = Vec::with_capacity(replicas.len());
        for (index, replica) in replicas.iter().enumerate() {
            if index == me.index() {
                peers.push(None);
                continue;
            }
            let peer = traffic.of(Peer::Replica(ReplicaId(index as u32)));
            let (outbox, queue) = Outbox::bounded(&limits, stats.clone(), peer.clone());
            let dialer = Dialer::new(&endpoint, secret, replica, &stats, peer, limits, None)?;
            tokio::spawn(dialer.run(queue));
            peers.push(Some(outbox));
        }
        Ok((ReplicaNet { endpoint, peers, stats, traffic, connections }, receiver))
    }

    /// Queues `frame` for replica `to` (dropped and counted if its queue is full).
    pub fn send(&self, to: ReplicaId, frame: Frame) {
        if let Some(Some(outbox)) = self.peers.get(to.index()) {
            outbox.push(frame);
        }
    }

    /// Queues `frame` for every other replica.
    pub fn broadcast(&self, frame: &Frame) {
        for outbox in self.peers.iter().flatten() {
            outbox.push(frame.clone());
        }
    }

    /// The transport's counters.
    pub fn counters(&self) -> NetCounters {
        self.stats.snapshot()
    }

    /// The number of replicas in the cluster.
    pub fn n(&self) -> usize {
        self.peers.len()
    }

    /// Each other replica's traffic, in id order, then all clients' together.
    pub fn peer_counters(&self) -> Vec<PeerCounters> {
        let mut counters: Vec<PeerCounters> = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(index, outbox)| {
                let outbox = outbox.as_ref()?;
                let stats = self.traffic.replicas.get(index)?;
                Some(stats.snapshot(format!("replica {index}"), outbox.queued()))
            })
            .collect();
        counters.push(self.traffic.clients.snapshot("clients".into(), 0));
        counters
    }

    /// Connections open now: those peers made to this replica, and this
    /// replica's own links to the other replicas that are up.
    pub fn open_connections(&self) -> u64 {
        let open = self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.values().map(|list| list.len() as u64).sum::<u64>() + self.stats.snapshot().links_up
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    /// Closes every connection and waits briefly for peers to be told.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

/// A client's endpoint: one connection to every replica.
pub struct ClientNet {
    endpoint: quinn::Endpoint,
    links: Vec<Outbox>,
    stats: Arc<Stats>,
}

impl ClientNet {
    /// Dials every replica as the client holding `secret`. With `hello`, each
    /// connection asks its replica to send this client's replies on it (what a
    /// client that issues requests needs; a status probe does not).
    /// Must run inside a tokio runtime.
    pub fn connect(
        secret: &SecretKey,
        replicas: &[ReplicaAddress],
        hello: bool,
        limits: NetLimits,
    ) -> Result<(ClientNet, mpsc::Receiver<Inbound>), NetError> {
        let bind: SocketAddr = match replicas.first().map(|r| r.address) {
            Some(SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
            _ => SocketAddr::from(([0u8; 4], 0)),
        };
        let endpoint =
            quinn::Endpoint::client(bind).map_err(|source| NetError::Bind { address: bind, source })?;
        let stats = Arc::new(Stats::default());
        let (inbox, receiver) = mpsc::channel(limits.inbox_frames.max(1));
        let mut links = Vec::with_capacity(replicas.len());
        for (index, replica) in replicas.iter().enumerate() {
            let peer = Arc::new(PeerStats::default());
            let (outbox, queue) = Outbox::bounded(&limits, stats.clone(), peer.clone());
            let link = ClientLink { inbox: inbox.clone(), replica: ReplicaId(index as u32), hello };
            let dialer = Dialer::new(&endpoint, secret, replica, &stats, peer, limits, Some(link))?;
            tokio::spawn(dialer.run(queue));
            links.push(outbox);
        }
        Ok((ClientNet { endpoint, links, stats }, receiver))
    }

    /// Queues `frame` for replica `to`.
    pub fn send(&self, to: ReplicaId, frame: Frame) {
        if let Some(outbox) = self.links.get(to.index()) {
            outbox.push(frame);
        }
    }

    /// Queues `frame` for every replica.
    pub fn broadcast(&self, frame: &Frame) {
        for outbox in &self.links {
            outbox.push(frame.clone());
        }
    }

    /// Queues `frame` for replica `to` only if its link is up now, else
    /// drops it. For requests: one queued while its replica is unreachable
    /// would go out whenever the link came back, perhaps long after its
    /// caller gave up; the client's retry, to every replica, covers a link
    /// that was down.
    pub fn send_if_up(&self, to: ReplicaId, frame: Frame) {
        if let Some(outbox) = self.links.get(to.index()).filter(|outbox| outbox.is_up()) {
            outbox.push(frame);
        }
    }

    /// [`ClientNet::send_if_up`] to every replica.
    pub fn broadcast_if_up(&self, frame: &Frame) {
        for outbox in self.links.iter().filter(|outbox| outbox.is_up()) {
            outbox.push(frame.clone());
        }
    }

    /// The transport's counters.
    pub fn counters(&self) -> NetCounters {
        self.stats.snapshot()
    }

    /// Closes every connection.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_millis(500), self.endpoint.wait_idle()).await;
    }
}

/// Accepts connections for a replica and reads what they send.
#[derive(Clone)]
struct Acceptor {
    pinned: Arc<PinnedKeys>,
    inbox: mpsc::Sender<Inbound>,
    limits: NetLimits,
    stats: Arc<Stats>,
    traffic: Traffic,
    connections: OpenConnections,
}

impl Acceptor {
    async fn run(self, endpoint: quinn::Endpoint) {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(self.clone().serve(incoming));
        }
    }

    async fn serve(self, incoming: quinn::Incoming) {
        let remote = incoming.remote_address();
        let connection = match incoming.await {
            Ok(connection) => connection,
            Err(error) => {
                self.stats.failed_handshake();
                tracing::debug!(%remote, %error, "refused connection");
                return;
            }
        };
        let Some(peer) = peer_public_key(&connection).and_then(|key| self.pinned.owner(&key)) else {
            self.stats.failed_handshake();
            connection.close(REFUSED.into(), b"unknown key");
            return;
        };
        let _slot = ConnectionSlot::take(&self.connections, peer, &connection);
        tracing::debug!(%remote, %peer, "accepted connection");
        let traffic = self.traffic.of(peer);
        match peer {
            Peer::Replica(_) => {
                let budget = InboxBudget::new(self.limits.inbox_bytes_per_connection);
                while let Ok(recv) = connection.accept_uni().await {
                    let delivery =
                        Delivery::new(self.inbox.clone(), peer, None, traffic.clone(), budget.clone());
                    read_frames(recv, &connection, self.limits.max_frame_bytes, &self.stats, delivery).await;
                }
            }
            Peer::Client(_) => {
                let budget = InboxBudget::new(self.limits.client_inbox_bytes());
                let replies =
                    NetLimits { send_queue_bytes: self.limits.client_send_queue_bytes, ..self.limits };
                while let Ok((mut send, recv)) = connection.accept_bi().await {
                    let (outbox, mut queue) = Outbox::bounded(&replies, self.stats.clone(), traffic.clone());
                    let (writer_connection, writer_traffic) = (connection.clone(), traffic.clone());
                    tokio::spawn(async move {
                        crate::link::write_frames(
                            &mut send,
                            &mut queue,
                            &writer_connection,
                            &writer_traffic,
                            None,
                        )
                        .await;
                    });
                    let delivery = Delivery::new(
                        self.inbox.clone(),
                        peer,
                        Some(outbox),
                        traffic.clone(),
                        budget.clone(),
                    );
                    let limit = self.limits.max_client_frame_bytes;
                    read_frames(recv, &connection, limit, &self.stats, delivery).await;
                }
            }
        }
    }
}

/// The open connections of each peer key, oldest first.
type OpenConnections = Arc<Mutex<BTreeMap<Peer, VecDeque<quinn::Connection>>>>;

/// Registers a peer's connection; forgets it when dropped. A peer over its
/// limit loses its *oldest* connection: an honest client that restarted (or
/// whose process exited without closing) reconnects with a new one, and the
/// old one may be dead but not yet timed out.
struct ConnectionSlot {
    connections: OpenConnections,
    peer: Peer,
    stable_id: usize,
}

impl ConnectionSlot {
    fn take(connections: &OpenConnections, peer: Peer, connection: &quinn::Connection) -> ConnectionSlot {
        let mut open = connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = open.entry(peer).or_default();
        list.push_back(connection.clone());
        while list.len() > MAX_CONNECTIONS_PER_PEER {
            if let Some(oldest) = list.pop_front() {
                oldest.close(REFUSED.into(), b"replaced by a newer connection");
            }
        }
        ConnectionSlot { connections: connections.clone(), peer, stable_id: connection.stable_id() }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(list) = open.get_mut(&self.peer) {
            list.retain(|c| c.stable_id() != self.stable_id);
            if list.is_empty() {
                open.remove(&self.peer);
            }
        }
    }
}

/// A client's side of a link: where replies go and whether to say hello.
struct ClientLink {
    inbox: mpsc::Sender<Inbound>,
    replica: ReplicaId,
    hello: bool,
}

/// Keeps one outgoing connection to one replica alive and drains its queue into it.
struct Dialer {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    address: SocketAddr,
    stats: Arc<Stats>,
    /// The dialled replica's share of the traffic.
    peer: Arc<PeerStats>,
    limits: NetLimits,
    client: Option<ClientLink>,
}

/// How one attempt to reach a peer ended.
enum Dial {
    Connected(quinn::Connection),
    /// Try again after a back-off.
    Failed,
    /// This side was closed: stop trying.
    EndpointClosed,
}

impl Dialer {
    /// A dialler of `replica` from `endpoint`, proving `secret`'s key.
    fn new(
        endpoint: &quinn::Endpoint,
        secret: &SecretKey,
        replica: &ReplicaAddress,
        stats: &Arc<Stats>,
        peer: Arc<PeerStats>,
        limits: NetLimits,
        client: Option<ClientLink>,
    ) -> Result<Dialer, NetError> {
        Ok(Dialer {
            endpoint: endpoint.clone(),
            config: client_config(secret, replica.key)?,
            address: replica.address,
            stats: stats.clone(),
            peer,
            limits,
            client,
        })
    }

    /// Keeps the link up, reconnecting with back-off, until its queue closes
    /// or the endpoint is closed.
    async fn run(self, mut queue: FrameQueue) {
        let mut backoff = MIN_BACKOFF;
        let mut unsent = None;
        loop {
            let dialled = match self.dial().await {
                Dial::Connected(connection) => Some(connection),
                Dial::Failed => None,
                Dial::EndpointClosed => return,
            };
            if let Some(connection) = dialled {
                backoff = MIN_BACKOFF;
                if let Some(mut send) = self.open_stream(&connection).await {
                    self.stats.link_up();
                    self.peer.link_up();
                    let end = crate::link::write_frames(
                        &mut send,
                        &mut queue,
                        &connection,
                        &self.peer,
                        unsent.take(),
                    )
                    .await;
                    self.stats.link_down();
                    self.peer.link_down();
                    match end {
                        crate::link::WriteEnd::QueueClosed => {
                            connection.close(0u32.into(), b"done");
                            return;
                        }
                        crate::link::WriteEnd::Broken(frame) => unsent = frame,
                        crate::link::WriteEnd::Refused => {
                            tracing::warn!(address = %self.address, "the peer refused a frame; dropped it");
                            self.stats.refused_frame(&self.peer);
                        }
                    }
                }
            }
            if queue.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn dial(&self) -> Dial {
        let connecting = match self.endpoint.connect_with(self.config.clone(), self.address, SERVER_NAME) {
            Ok(connecting) => connecting,
            Err(quinn::ConnectError::EndpointStopping) => return Dial::EndpointClosed,
            Err(error) => {
                tracing::debug!(address = %self.address, %error, "cannot dial");
                return Dial::Failed;
            }
        };
        match connecting.await {
            Ok(connection) => Dial::Connected(connection),
            Err(error) => {
                tracing::debug!(address = %self.address, %error, "dial failed");
                Dial::Failed
            }
        }
    }

    async fn open_stream(&self, connection: &quinn::Connection) -> Option<quinn::SendStream> {
        let Some(client) = &self.client else {
            return connection.open_uni().await.ok();
        };
        let (mut send, recv) = connection.open_bi().await.ok()?;
        if client.hello {
            send.write_all(&frame_of(&Wire::Hello)).await.ok()?;
        }
        let delivery = Delivery::new(
            client.inbox.clone(),
            Peer::Replica(client.replica),
            None,
            self.peer.clone(),
            InboxBudget::new(self.limits.inbox_bytes_per_connection),
        );
        let (reader_connection, stats, limit) =
            (connection.clone(), self.stats.clone(), self.limits.max_frame_bytes);
        tokio::spawn(async move {
            read_frames(recv, &reader_connection, limit, &stats, delivery).await;
        });
        Some(send)
    }
}
