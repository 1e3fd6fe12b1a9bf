//! Replicas and clients in one process over real QUIC on 127.0.0.1.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

use pbft_core::{
    AppError, ClientId, KeyBook, ProtocolConfig, PublicKey, Replica, ReplicaId, ReplicatedStateMachine,
    SecretKey,
};
use pbft_net::{query_status, run_replica, ClientHandle, InvokeError, NetLimits, ReplicaAddress, ReplicaNet};
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
    fn snapshot(&self) -> Vec<u8> {
        self.0.concat()
    }
    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), AppError> {
        Err(AppError("not needed here".into()))
    }
}

fn free_addresses(n: usize) -> Vec<SocketAddr> {
    let sockets: Vec<UdpSocket> = (0..n).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    sockets.iter().map(|s| s.local_addr().unwrap()).collect()
}

struct Cluster {
    replicas: Vec<ReplicaAddress>,
    clients: Vec<(ClientId, SecretKey)>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Replica<Journal>>>,
}

fn replica_secret(i: usize) -> SecretKey {
    SecretKey::from_seed([i as u8 + 1; 32])
}

async fn start_cluster(n: usize) -> Cluster {
    let replicas: Vec<ReplicaAddress> = free_addresses(n)
        .into_iter()
        .enumerate()
        .map(|(i, address)| ReplicaAddress { key: replica_secret(i).public(), address })
        .collect();
    let clients: Vec<(ClientId, SecretKey)> =
        (0..2).map(|c| (ClientId(c), SecretKey::from_seed([100 + c as u8; 32]))).collect();
    let client_keys: Vec<(ClientId, PublicKey)> = clients.iter().map(|(id, s)| (*id, s.public())).collect();
    let public: Vec<PublicKey> = replicas.iter().map(|r| r.key).collect();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..n {
        let keys = KeyBook::new(&public, client_keys.clone()).unwrap();
        let replica = Replica::new(
            ReplicaId(i as u32),
            ProtocolConfig::default(),
            keys,
            replica_secret(i),
            Journal::default(),
        )
        .unwrap();
        let (net, inbox) = ReplicaNet::start(
            ReplicaId(i as u32),
            &replica_secret(i),
            &replicas,
            &client_keys,
            NetLimits::default(),
        )
        .unwrap();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(run_replica(replica, net, inbox, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    Cluster { replicas, clients, stop, tasks }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_over_quic_execute_requests_in_one_order() {
    let cluster = start_cluster(4).await;
    let (id, secret) = &cluster.clients[0];
    let client = ClientHandle::connect(*id, secret, &cluster.replicas, 500).unwrap();
    for expected in 1..=30u64 {
        let result =
            client.invoke_within(format!("op {expected}").into_bytes(), Duration::from_secs(10)).await;
        assert_eq!(result, Ok(expected.to_be_bytes().to_vec()), "the journal grows by one per operation");
    }
    let status = query_status(secret, &cluster.replicas, Duration::from_secs(5)).await.unwrap();
    let answered: Vec<_> = status.iter().flatten().collect();
    assert_eq!(answered.len(), 4, "every replica answers the status probe");
    cluster.stop.send(true).unwrap();
    let mut journals = Vec::new();
    for task in cluster.tasks {
        journals.push(task.await.unwrap().app().0.clone());
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
    let client = ClientHandle::connect(ClientId(0), &stranger, &cluster.replicas, 200).unwrap();
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
