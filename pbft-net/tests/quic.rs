//! Replicas and clients in one process over real QUIC on 127.0.0.1.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

use pbft_core::{
    AppError, ClientId, KeyBook, ProtocolConfig, PublicKey, Replica, ReplicaId, ReplicatedStateMachine,
    SecretKey,
};
use pbft_net::{
    encode_frame, frame_of, query_status, replica_status, run_replica, ClientHandle, Inbound, InvokeError,
    NetLimits, NoStorage, Observability, ReplicaAddress, ReplicaNet, Wire,
};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use tokio::sync::watch;

/// Appends every operation to a log; the result is the log's length.
#[derive(Default)]
struct Journal(Vec<Vec<u8>>);

impl ReplicatedStateMachine for Journal {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        self.0.push(op.to_vec());
        (self.0.len() as u64).to_be_bytes().to_vec()
    }
    fn query(&self, _op: &[u8]) -> Vec<u8> {
        (self.0.len() as u64).to_be_bytes().to_vec()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.concat()
    }
    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), AppError> {
        Err(AppError("not needed here".into()))
    }
}

/// A journal whose snapshot also holds a per-replica salt: the same
/// operations give different states on different replicas, as an application
/// that reads a clock or a random number generator would.
struct Salted(Journal, u8);

impl ReplicatedStateMachine for Salted {
    fn execute(&mut self, op: &[u8]) -> Vec<u8> {
        self.0.execute(op)
    }
    fn query(&self, op: &[u8]) -> Vec<u8> {
        self.0.query(op)
    }
    fn snapshot(&self) -> Vec<u8> {
        let mut snapshot = self.0.snapshot();
        snapshot.push(self.1);
        snapshot
    }
    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), AppError> {
        Err(AppError("not needed here".into()))
    }
}

fn free_addresses(n: usize) -> Vec<SocketAddr> {
    let sockets: Vec<UdpSocket> = (0..n).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    sockets.iter().map(|s| s.local_addr().unwrap()).collect()
}

struct Cluster<A> {
    replicas: Vec<ReplicaAddress>,
    clients: Vec<(ClientId, SecretKey)>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<Replica<A>>>>,
}

fn replica_secret(i: usize) -> SecretKey {
    SecretKey::from_seed([i as u8 + 1; 32])
}

async fn start_cluster(n: usize) -> Cluster<Journal> {
    start_cluster_with(n, |_| Journal::default()).await
}

async fn start_cluster_with<A: ReplicatedStateMachine + Send + 'static>(
    n: usize,
    app: impl Fn(usize) -> A,
) -> Cluster<A> {
    let (replicas, clients) = plan_cluster(n);
    start_planned(replicas, clients, app)
}

/// Addresses and keys for a cluster of `n` replicas and two clients.
fn plan_cluster(n: usize) -> (Vec<ReplicaAddress>, Vec<(ClientId, SecretKey)>) {
    let replicas: Vec<ReplicaAddress> = free_addresses(n)
        .into_iter()
        .enumerate()
        .map(|(i, address)| ReplicaAddress { key: replica_secret(i).public(), address })
        .collect();
    let clients: Vec<(ClientId, SecretKey)> =
        (0..2).map(|c| (ClientId(c), SecretKey::from_seed([100 + c as u8; 32]))).collect();
    (replicas, clients)
}

/// Starts the replicas of a planned cluster. Must run inside a tokio runtime.
fn start_planned<A: ReplicatedStateMachine + Send + 'static>(
    replicas: Vec<ReplicaAddress>,
    clients: Vec<(ClientId, SecretKey)>,
    app: impl Fn(usize) -> A,
) -> Cluster<A> {
    start_planned_with(replicas, clients, app, ProtocolConfig::default(), NetLimits::default())
}

/// [`start_planned`] with protocol settings and transport limits of its own.
fn start_planned_with<A: ReplicatedStateMachine + Send + 'static>(
    replicas: Vec<ReplicaAddress>,
    clients: Vec<(ClientId, SecretKey)>,
    app: impl Fn(usize) -> A,
    config: ProtocolConfig,
    limits: NetLimits,
) -> Cluster<A> {
    let n = replicas.len();
    let client_keys: Vec<(ClientId, PublicKey)> = clients.iter().map(|(id, s)| (*id, s.public())).collect();
    let public: Vec<PublicKey> = replicas.iter().map(|r| r.key).collect();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..n {
        let keys = KeyBook::new(&public, client_keys.clone()).unwrap();
        let replica =
            Replica::new(ReplicaId(i as u32), config.clone(), keys, replica_secret(i), app(i)).unwrap();
        let (net, inbox) =
            ReplicaNet::start(ReplicaId(i as u32), &replica_secret(i), &replicas, &client_keys, limits)
                .unwrap();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(run_replica(
            replica,
            replica_status,
            NoStorage,
            net,
            inbox,
            Observability::default(),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )));
    }
    Cluster { replicas, clients, stop, tasks }
}

/// Issue 21, point 6: a request whose caller gave up (its `invoke_within`
/// timed out while no replica was up) is never sent later: once the
/// replicas start, the next operation executes and the given-up one never
/// does, and the given-up one no longer holds the window of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_given_up_on_is_not_sent_later() {
    let (replicas, clients) = plan_cluster(4);
    let (id, secret) = clients[0].clone();
    let client = ClientHandle::connect(id, &secret, &replicas, 100, 1).unwrap();
    let given_up = client.invoke_within(b"given up".to_vec(), Duration::from_millis(300)).await;
    assert_eq!(given_up, Err(InvokeError::TimedOut(Duration::from_millis(300))));
    let cluster = start_planned(replicas, clients, |_| Journal::default());
    let wanted: Vec<Vec<u8>> = (0..5).map(|i| format!("wanted {i}").into_bytes()).collect();
    for (done, op) in (1u64..).zip(&wanted) {
        let result = client.invoke_within(op.clone(), Duration::from_secs(10)).await;
        assert_eq!(result, Ok(done.to_be_bytes().to_vec()), "only wanted operations are in the journal");
    }
    cluster.stop.send(true).unwrap();
    for task in cluster.tasks {
        let journal = task.await.unwrap().unwrap().app().0.clone();
        assert_eq!(journal[..], wanted[..journal.len()], "the given-up request never executed");
    }
}

/// Issue 21, point 6: a client whose timestamps would start below what its
/// identity already used (a clock stepped back, a restart on a machine
/// whose clock is behind: here a counter started at 5 after one at
/// 1,000,000) learns the highest executed one from the replicas before its
/// first request, so its requests are not refused as stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_clock_is_behind_starts_above_its_executed_timestamps() {
    let cluster = start_cluster(4).await;
    let (id, secret) = &cluster.clients[0];
    let ahead = ClientHandle::connect_from(*id, secret, &cluster.replicas, 500, 1, 1_000_000).unwrap();
    let result = ahead.invoke_within(b"first".to_vec(), Duration::from_secs(10)).await;
    assert_eq!(result, Ok(1u64.to_be_bytes().to_vec()));
    drop(ahead);
    let behind = ClientHandle::connect_from(*id, secret, &cluster.replicas, 500, 1, 5).unwrap();
    let result = behind.invoke_within(b"second".to_vec(), Duration::from_secs(10)).await;
    assert_eq!(result, Ok(2u64.to_be_bytes().to_vec()), "the second client's request executed");
    cluster.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_over_quic_execute_requests_in_one_order() {
    let cluster = start_cluster(4).await;
    let (id, secret) = &cluster.clients[0];
    let client = ClientHandle::connect(*id, secret, &cluster.replicas, 500, 1).unwrap();
    for expected in 1..=30u64 {
        let result =
            client.invoke_within(format!("op {expected}").into_bytes(), Duration::from_secs(10)).await;
        assert_eq!(result, Ok(expected.to_be_bytes().to_vec()), "the journal grows by one per operation");
    }
    let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
    let answered: Vec<_> = status.iter().flatten().collect();
    assert_eq!(answered.len(), 4, "every replica answers the status probe");
    // Every replica reports its outgoing links to the three others as up
    // (they may still be connecting right after start, so ask until they are).
    let mut links = Vec::new();
    for _ in 0..100 {
        let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
        links = status.iter().map(|s| s.as_ref().map(|s| s.net.links_up)).collect();
        if links.iter().all(|l| *l == Some(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(links, vec![Some(3); 4], "each replica reaches the other three");
    cluster.stop.send(true).unwrap();
    let mut journals = Vec::new();
    for task in cluster.tasks {
        journals.push(task.await.unwrap().unwrap().app().0.clone());
    }
    let longest = journals.iter().map(Vec::len).max().unwrap();
    assert_eq!(longest, 30);
    for journal in &journals {
        assert_eq!(journal[..], journals[0][..journal.len()], "replicas executed operations in one order");
    }
    assert!(journals.iter().filter(|j| j.len() == 30).count() >= 3, "a quorum executed everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_key_is_not_in_the_config_gets_nothing() {
    let cluster = start_cluster(4).await;
    let stranger = SecretKey::from_seed([77; 32]);
    let client = ClientHandle::connect(ClientId(0), &stranger, &cluster.replicas, 200, 1).unwrap();
    let result = client.invoke_within(b"let me in".to_vec(), Duration::from_secs(2)).await;
    assert_eq!(result, Err(InvokeError::TimedOut(Duration::from_secs(2))));
    let (_, secret) = &cluster.clients[1];
    let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
    for answer in status.iter().flatten() {
        assert_eq!(answer.last_executed, 0, "nothing from the stranger executed");
        assert!(
            answer.net.failed_handshakes >= 1,
            "replica {} counted the refused handshake",
            answer.replica
        );
    }
    assert_eq!(status.iter().flatten().count(), 4);
    cluster.stop.send(true).unwrap();
}

/// Issue 7, test 4: an application that is not deterministic makes honest
/// replicas sign different checkpoint digests; every replica notices, and its
/// status (what `pbft status` prints) names the sequence number and which
/// replicas signed which digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_deterministic_application_is_reported_in_every_replicas_status() {
    let cluster = start_cluster_with(4, |i| Salted(Journal::default(), i as u8)).await;
    let (id, secret) = &cluster.clients[0];
    let client = ClientHandle::connect(*id, secret, &cluster.replicas, 500, 16).unwrap();
    let interval = ProtocolConfig::default().checkpoint_interval;
    for i in 0..interval {
        client.invoke_within(format!("op {i}").into_bytes(), Duration::from_secs(10)).await.unwrap();
    }
    let mut reported = Vec::new();
    for _ in 0..100 {
        let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
        reported = status.iter().flatten().filter_map(|s| s.disagreement.clone()).collect();
        if reported.len() == 4 && reported.iter().all(|d| d.digests.len() == 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reported.len(), 4, "every replica reports the disagreement");
    for disagreement in &reported {
        assert_eq!(disagreement.seq, interval);
        assert_eq!(disagreement.digests.len(), 4, "four replicas, four different states");
        let signers: Vec<u32> = disagreement.digests.values().flatten().copied().collect();
        assert_eq!(signers.len(), 4, "each replica is named once: {disagreement:?}");
    }
    let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
    assert!(
        status.iter().flatten().all(|s| s.stable_checkpoint == 0),
        "no quorum certifies differing states"
    );
    cluster.stop.send(true).unwrap();
}

/// The same cluster with a deterministic application reports no disagreement
/// (the report above is not raised by every checkpoint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deterministic_application_reports_no_disagreement() {
    let cluster = start_cluster(4).await;
    let (id, secret) = &cluster.clients[0];
    let client = ClientHandle::connect(*id, secret, &cluster.replicas, 500, 16).unwrap();
    let interval = ProtocolConfig::default().checkpoint_interval;
    for i in 0..interval {
        client.invoke_within(format!("op {i}").into_bytes(), Duration::from_secs(10)).await.unwrap();
    }
    let mut status = Vec::new();
    for _ in 0..100 {
        status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
        if status.iter().flatten().filter(|s| s.stable_checkpoint == interval).count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(status.iter().flatten().filter(|s| s.stable_checkpoint == interval).count() >= 3);
    assert!(status.iter().flatten().all(|s| s.disagreement.is_none()), "{status:?}");
    cluster.stop.send(true).unwrap();
}

/// Issue 21, point 7: a client's channel carries requests, nothing else. A
/// CHECKPOINT read from a client's connection (claiming replica 1) is
/// dropped at the link and counted as forbidden on every replica, never
/// handed to the protocol (no rejection is counted for it), and the client
/// is still served afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_message_from_a_client_is_dropped_and_counted() {
    use pbft_core::{Checkpoint, Digest, Message, ReplicaId, Signed};
    use pbft_net::{frame_of, ClientNet, Wire};
    let cluster = start_cluster(4).await;
    let (id, secret) = &cluster.clients[0];
    let (net, _inbox) = ClientNet::connect(secret, &cluster.replicas, true, NetLimits::default()).unwrap();
    let forged = Checkpoint { seq: 64, state_digest: Digest([7; 32]), replica: ReplicaId(1) };
    net.broadcast(&frame_of(&Wire::Message(Message::Checkpoint(Signed::sign(forged, secret)))));
    let mut counted = Vec::new();
    for _ in 0..100 {
        let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
        counted = status
            .iter()
            .map(|s| s.as_ref().map(|s| (s.net.forbidden_frames, s.rejected_messages)))
            .collect();
        if counted.iter().all(|c| c.is_some_and(|(forbidden, _)| forbidden >= 1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counted,
        vec![Some((1, 0)); 4],
        "each replica dropped the one forbidden frame before the protocol saw it"
    );
    let client = ClientHandle::connect(*id, secret, &cluster.replicas, 500, 1).unwrap();
    let result = client.invoke_within(b"still served".to_vec(), Duration::from_secs(10)).await;
    assert_eq!(result, Ok(1u64.to_be_bytes().to_vec()));
    cluster.stop.send(true).unwrap();
}

/// Issue 21, point 4: a client's frames are limited to what a request of
/// `max_request_bytes` needs (`max_client_frame_bytes`), not to the 64 MiB
/// a replica may send. A 2 MiB request frame from a client closes its
/// connection and is counted as oversized on every replica before anything
/// is decoded or held; the client's next connection is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_frame_over_the_client_limit_closes_its_connection() {
    use pbft_core::{Message, Request, RequestKind, Signed};
    use pbft_net::{frame_of, ClientNet, Wire};
    let cluster = start_cluster(4).await;
    let (id, secret) = &cluster.clients[0];
    assert!(2 << 20 > NetLimits::default().max_client_frame_bytes);
    let (net, _inbox) = ClientNet::connect(secret, &cluster.replicas, true, NetLimits::default()).unwrap();
    let request = Request { client: *id, timestamp: 1, op: vec![1; 2 << 20], kind: RequestKind::Write };
    net.broadcast(&frame_of(&Wire::Message(Message::Request(Signed::sign(request, secret)))));
    let mut counted = Vec::new();
    for _ in 0..100 {
        let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
        counted = status.iter().map(|s| s.as_ref().map(|s| s.net.oversized_frames)).collect();
        if counted.iter().all(|c| c.is_some_and(|oversized| oversized >= 1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted, vec![Some(1); 4], "each replica refused the frame once");
    let client = ClientHandle::connect(*id, secret, &cluster.replicas, 500, 1).unwrap();
    let result = client.invoke_within(b"still served".to_vec(), Duration::from_secs(10)).await;
    assert_eq!(result, Ok(1u64.to_be_bytes().to_vec()));
    cluster.stop.send(true).unwrap();
}

/// Two bare transports, replica 0 (sending) and replica 1 (receiving), each
/// with its own limits, once 0's link to 1 is up.
async fn two_transports(
    sender: NetLimits,
    receiver: NetLimits,
) -> ((ReplicaNet, tokio::sync::mpsc::Receiver<Inbound>), (ReplicaNet, tokio::sync::mpsc::Receiver<Inbound>))
{
    let (replicas, _) = plan_cluster(2);
    let start =
        |i: usize, limits| ReplicaNet::start(ReplicaId(i as u32), &replica_secret(i), &replicas, &[], limits);
    let (zero, one) = (start(0, sender).unwrap(), start(1, receiver).unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while zero.0.counters().links_up < 1 {
        assert!(tokio::time::Instant::now() < deadline, "replica 0 never reached replica 1");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (zero, one)
}

/// Sends small, valid frames from `net` to replica 1 until one reaches
/// `inbox`; panics after 10 s.
async fn deliver_one(net: &ReplicaNet, inbox: &mut tokio::sync::mpsc::Receiver<Inbound>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        net.send(ReplicaId(1), frame_of(&Wire::TimestampQuery));
        if let Ok(Some(inbound)) = tokio::time::timeout(Duration::from_millis(200), inbox.recv()).await {
            assert!(matches!(inbound.wire, Wire::TimestampQuery), "{:?}", inbound.wire);
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no frame got through");
    }
}

/// Issue 21, point 7: a STATUS report is read only from its author's own
/// channel. Replica 0 replaying replica 1's signed report to replica 1 has
/// it dropped at the link and counted as forbidden, before the protocol (which
/// answers each signer's reports at most once per interval) could spend the
/// signer's budget on it; replica 0's own report, sent after it on the same
/// stream, arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_report_replayed_by_another_replica_is_dropped_and_counted() {
    use pbft_core::{Message, Signed, StatusReport};
    let ((sender, _), (receiver, mut inbox)) =
        two_transports(NetLimits::default(), NetLimits::default()).await;
    let report = |replica: usize| {
        let report = StatusReport {
            view: 0,
            view_changing: false,
            last_executed: 0,
            stable_seq: 0,
            replica: ReplicaId(replica as u32),
        };
        frame_of(&Wire::Message(Message::Status(Signed::sign(report, &replica_secret(replica)))))
    };
    sender.send(ReplicaId(1), report(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let arrived = loop {
        sender.send(ReplicaId(1), report(0));
        if let Ok(Some(inbound)) = tokio::time::timeout(Duration::from_millis(200), inbox.recv()).await {
            break inbound;
        }
        assert!(tokio::time::Instant::now() < deadline, "no report got through");
    };
    let Wire::Message(Message::Status(arrived)) = arrived.wire else { panic!("{:?}", arrived.wire) };
    assert_eq!(arrived.payload().replica, ReplicaId(0), "only replica 0's own report reaches replica 1");
    assert_eq!(receiver.counters().forbidden_frames, 1, "the replayed report was dropped once");
}

/// Where the next client hello read from `inbox` says replies go; panics
/// after 10 s.
async fn next_hello(inbox: &mut tokio::sync::mpsc::Receiver<Inbound>) -> pbft_net::Outbox {
    let hello = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match inbox.recv().await {
                Some(Inbound { wire: Wire::Hello, reply_to: Some(link), .. }) => break link,
                Some(_) => {}
                None => panic!("the transport stopped"),
            }
        }
    });
    hello.await.expect("a hello within 10 s")
}

/// Issue 21, point 4: a client accepts from a replica frames of one reply
/// of the cluster's `max_result_bytes` (`NetLimits::for_client`), not the
/// 64 MiB replicas accept from each other. A bare replica transport answers
/// the client's hello with a 64 KiB frame, over a 1 KiB result's reply: the
/// client counts it as oversized and reads nothing of it; after it redials,
/// a frame within the limit arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_frame_over_the_clients_result_limit_is_refused() {
    use pbft_net::ClientNet;
    let (replicas, clients) = plan_cluster(1);
    let client_keys: Vec<(ClientId, PublicKey)> = clients.iter().map(|(id, s)| (*id, s.public())).collect();
    let (_replica, mut replica_inbox) =
        ReplicaNet::start(ReplicaId(0), &replica_secret(0), &replicas, &client_keys, NetLimits::default())
            .unwrap();
    let limits = NetLimits::for_client(512, 1024, 2);
    assert!(limits.max_frame_bytes < 64 * 1024);
    let (client, mut client_inbox) = ClientNet::connect(&clients[0].1, &replicas, true, limits).unwrap();
    next_hello(&mut replica_inbox).await.push(std::sync::Arc::from(encode_frame(&vec![0u8; 64 * 1024])));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.counters().oversized_frames == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the client never refused the frame");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(client_inbox.try_recv().is_err(), "nothing of the oversized frame was delivered");
    let small = next_hello(&mut replica_inbox).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            small.push(frame_of(&Wire::Timestamp { newest: 7 }));
            if let Ok(Some(inbound)) =
                tokio::time::timeout(Duration::from_millis(200), client_inbox.recv()).await
            {
                break inbound.wire;
            }
        }
    })
    .await
    .expect("a frame within the limit arrives on the new connection");
    assert!(matches!(answer, Wire::Timestamp { newest: 7 }), "{answer:?}");
}

/// A client's frame limit (`NetLimits::for_client`) holds its largest
/// request as well as its largest reply: in a cluster whose results are
/// far smaller than its requests (1 KiB against 256 KiB), a 200 KiB put is
/// sent, executes and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_larger_than_the_result_limit_is_sent() {
    const KIB: usize = 1024;
    let config =
        ProtocolConfig { max_request_bytes: 256 * KIB, max_result_bytes: KIB, ..ProtocolConfig::default() };
    let limits = NetLimits::for_protocol(&config);
    let (replicas, clients) = plan_cluster(4);
    let cluster = start_planned_with(replicas, clients, |_| Journal::default(), config.clone(), limits);
    let (id, secret) = &cluster.clients[0];
    let options = pbft_net::ClientOptions {
        max_request_bytes: config.max_request_bytes,
        max_result_bytes: config.max_result_bytes,
        ..pbft_net::ClientOptions::new(500, 16)
    };
    let client = ClientHandle::connect_with(*id, secret, &cluster.replicas, options).unwrap();
    let result = client.invoke_within(vec![1; 200 * KIB], Duration::from_secs(20)).await;
    assert_eq!(result, Ok(1u64.to_be_bytes().to_vec()));
    cluster.stop.send(true).unwrap();
}

/// Issue 21, point 1: a frame the receiver refuses (over its size limit,
/// so it closes the connection) is dropped by the sender and counted, never
/// sent again first after the reconnect: later frames get through, and the
/// receiver saw the oversized frame once. The frame is larger than QUIC's
/// flow-control window, so its write is still under way when the receiver
/// closes, the case where the sender used to keep it for the next connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_the_receiver_refused_is_dropped_not_sent_again() {
    let small = NetLimits { max_frame_bytes: 1024, ..NetLimits::default() };
    let ((sender, _), (receiver, mut inbox)) = two_transports(NetLimits::default(), small).await;
    sender.send(ReplicaId(1), std::sync::Arc::from(encode_frame(&vec![0u8; 8 << 20])));
    deliver_one(&sender, &mut inbox).await;
    assert_eq!(receiver.counters().oversized_frames, 1, "the refused frame came once");
    assert_eq!(sender.counters().refused_frames, 1);
    let counters = sender.peer_counters();
    let to_one = counters.iter().find(|p| p.peer == "replica 1").unwrap();
    assert_eq!(to_one.refused_frames, 1);
}

/// Issue 21, point 1: a frame over the sender's own limit (the limit every
/// receiver enforces) is never written: it is dropped and counted before it
/// is queued, and the link stays up for the next frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_size_limit_is_never_sent() {
    let small = NetLimits { max_frame_bytes: 1024, ..NetLimits::default() };
    let ((sender, _), (receiver, mut inbox)) = two_transports(small, small).await;
    let links_before = receiver.open_connections();
    sender.send(ReplicaId(1), std::sync::Arc::from(encode_frame(&vec![0u8; 1025])));
    assert_eq!(sender.counters().oversized_frames_out, 1);
    deliver_one(&sender, &mut inbox).await;
    assert_eq!(receiver.counters().oversized_frames, 0, "the receiver never saw it");
    assert_eq!(receiver.open_connections(), links_before, "the link was never closed");
    assert_eq!(sender.counters().refused_frames, 0);
}

/// Issue 21, point 1: VIEW-CHANGEs and NEW-VIEWs carry prepared
/// certificates without their batches, so their frames stay small whatever
/// the requests' sizes. Here twelve 200 KiB operations are prepared, more
/// than the 1 MiB frame limit if a VIEW-CHANGE carried them, and views
/// rotate every second: the replicas move through view changes with no frame
/// over the limit, and requests keep executing in the later views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_changes_after_large_requests_stay_within_the_frame_limit() {
    const KIB: usize = 1024;
    let config = ProtocolConfig {
        max_request_bytes: 256 * KIB,
        max_batch_bytes: 256 * KIB,
        state_chunk_bytes: 256 * KIB,
        view_change_timeout_ms: 500,
        view_term_ms: 1_000,
        ..ProtocolConfig::default()
    };
    let limits = NetLimits { max_frame_bytes: 1024 * KIB, ..NetLimits::default() };
    let (replicas, clients) = plan_cluster(4);
    let cluster = start_planned_with(replicas, clients, |_| Journal::default(), config, limits);
    let (id, secret) = &cluster.clients[0];
    let client = std::sync::Arc::new(ClientHandle::connect(*id, secret, &cluster.replicas, 500, 16).unwrap());
    let puts: Vec<_> = (0..12u8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(
                async move { client.invoke_within(vec![i; 200 * KIB], Duration::from_secs(20)).await },
            )
        })
        .collect();
    for put in puts {
        assert!(put.await.unwrap().is_ok(), "every large operation executed");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = query_status(secret, &cluster.replicas, Duration::from_secs(2)).await.unwrap();
        if status.iter().flatten().filter(|s| s.view >= 2).count() >= 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the views never moved on: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = client.invoke_within(b"after the view changes".to_vec(), Duration::from_secs(20)).await;
    assert_eq!(after, Ok(13u64.to_be_bytes().to_vec()));
    let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
    for (i, replica) in status.iter().enumerate() {
        let net = replica.as_ref().unwrap_or_else(|| panic!("replica {i} answers")).net;
        assert_eq!(
            (net.oversized_frames_out, net.oversized_frames, net.refused_frames),
            (0, 0, 0),
            "replica {i}"
        );
    }
    cluster.stop.send(true).unwrap();
}
