//! The node runtime: a replica process and the client-side helpers the CLI
//! and tests share (connecting a client, reading every replica's status, and
//! judging whether the replicas agree).

use crate::apps::{Bank, Counter, KvStore};
use crate::cluster_config::AppKind;
use crate::cluster_config::{ClusterConfig, ConfigError};
use crate::storage::{Identity, Recovered, ReplicaLog, ReplicaLogError};
use fault_injector::traitor::{Traitor, TraitorNode, TraitorPlan};
use pbft_core::{ClientId, Replica, ReplicaError, ReplicaId, ReplicatedStateMachine};
use pbft_net::{
    query_status, replica_status, run_replica, ClientHandle, MetricsServer, NetError, NetLimits, NodeStatus,
    Observability, ReplicaNet,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

/// Why a replica could not run, or a client could not reach the cluster.
/// Each variant names what failed; the underlying error is its
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The config lacks what the node needs: a readable key file whose key
    /// matches the config, or a valid set of public keys. The error names
    /// the field at fault.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The protocol core refused to create the replica (a protocol
    /// parameter it does not accept).
    #[error("cannot start replica {}", .replica.0)]
    Replica {
        /// The replica that was to start.
        replica: ReplicaId,
        /// Why the core refused.
        #[source]
        source: ReplicaError,
    },
    /// The replica's QUIC transport did not start (its address cannot be
    /// bound, say).
    #[error("cannot start replica {}'s transport", .replica.0)]
    Transport {
        /// The replica whose transport failed.
        replica: ReplicaId,
        /// What the transport said.
        #[source]
        source: NetError,
    },
    /// The replica's metrics endpoint could not be bound (`metrics_address`
    /// or `--metrics`: the port is taken, or the address is not this host's).
    #[error("cannot serve replica {}'s metrics", .replica.0)]
    Metrics {
        /// The replica whose endpoint failed.
        replica: ReplicaId,
        /// What the transport said.
        #[source]
        source: NetError,
    },
    /// A client's transport did not start.
    #[error("cannot connect client {}", .client.0)]
    Client {
        /// The client that was to connect.
        client: ClientId,
        /// What the transport said.
        #[source]
        source: NetError,
    },
    /// The replica's data directory could not be opened or read.
    #[error("cannot open replica {}'s data directory", .replica.0)]
    Storage {
        /// The replica whose storage failed.
        replica: ReplicaId,
        /// What the storage said.
        #[source]
        source: ReplicaLogError,
    },
    /// The thread that writes the replica's log could not be started.
    #[error("cannot start replica {}'s storage thread", .replica.0)]
    StorageThread {
        /// The replica whose storage thread failed to start.
        replica: ReplicaId,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The status query could not be sent.
    #[error("cannot ask the replicas for their status as client {}", .client.0)]
    Status {
        /// The client the query was sent as.
        client: ClientId,
        /// What the transport said.
        #[source]
        source: NetError,
    },
}

/// Runs replica `id` of `config` with the config's application until
/// `shutdown` completes. Returns the replica's last status.
pub async fn run_replica_node(
    config: &ClusterConfig,
    id: ReplicaId,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeStatus, NodeError> {
    match config.app {
        AppKind::Kv => run_replica_with::<KvStore>(config, id, shutdown).await,
        AppKind::Bank => run_replica_with::<Bank>(config, id, shutdown).await,
        AppKind::Counter => run_replica_with::<Counter>(config, id, shutdown).await,
    }
}

/// Runs replica `id` of `config` with application `A` (whatever the
/// config's `app` says) until `shutdown` completes; how a binary of your own
/// serves your application. Returns the replica's last status.
pub async fn run_replica_with<A: ReplicatedStateMachine + Default>(
    config: &ClusterConfig,
    id: ReplicaId,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeStatus, NodeError> {
    let secret = config.replica_secret(id)?;
    let path = config.data_dir(id);
    let identity = Identity::new(config.name.clone(), id.0);
    let Recovered { log, records, report } = ReplicaLog::open(&path, &identity, config.storage.sync)
        .map_err(|source| NodeError::Storage { replica: id, source })?;
    let lost = report.damage.is_some() || report.fresh;
    if let Some(damage) = &report.damage {
        tracing::error!(
            replica = id.0,
            data_dir = %path.display(),
            ?damage,
            "DAMAGED LOG: the damaged files were kept aside; this replica does not trust what is left \
             and recovers from its peers, voting in nothing until it has learned how far they got"
        );
    } else if report.fresh {
        tracing::info!(
            replica = id.0,
            data_dir = %path.display(),
            "empty data directory: learning from the peers how far the cluster got before voting \
             (a new cluster starts in view 0)"
        );
    }
    if !config.storage.sync {
        tracing::warn!(
            replica = id.0,
            "storage sync is OFF: a crash loses operations clients were told had completed (benchmarks only)"
        );
    }
    if report.torn_tail_bytes > 0 {
        tracing::warn!(
            replica = id.0,
            bytes = report.torn_tail_bytes,
            "cut a torn last record off the log (a crash during a write)"
        );
    }
    tracing::info!(
        replica = id.0,
        data_dir = %path.display(),
        records = records.len(),
        fresh = report.fresh,
        "storage opened"
    );
    let (protocol, keys, start) = (config.protocol.clone(), config.key_book()?, pbft_core::Time::ZERO);
    let replica = if lost {
        Replica::recover_lost(id, protocol, keys, secret.clone(), A::default(), start)
    } else {
        Replica::recover(id, protocol, keys, secret.clone(), A::default(), records, start)
    }
    .map_err(|source| NodeError::Replica { replica: id, source })?;
    let entry = config.replicas.get(id.index());
    let metrics = match entry.and_then(|r| r.metrics_address) {
        Some(address) => {
            let server =
                MetricsServer::bind(address).map_err(|source| NodeError::Metrics { replica: id, source })?;
            tracing::info!(replica = id.0, address = %address, "serving metrics at http://{address}/metrics");
            Some(server)
        }
        None => None,
    };
    let request_traces = entry.is_none_or(|r| r.request_traces);
    if !request_traces {
        tracing::info!(replica = id.0, "request traces are off: trace queries get no record");
    }
    let observability = Observability { metrics, request_traces };
    let (net, inbox) = ReplicaNet::start(
        id,
        &secret,
        &config.replica_addresses(),
        &config.client_keys(),
        NetLimits::for_protocol(&config.protocol),
    )
    .map_err(|source| NodeError::Transport { replica: id, source })?;
    tracing::info!(
        replica = id.0,
        address = %config.replicas[id.index()].address,
        app = config.app.name(),
        n = config.n(),
        f = config.f,
        traitor = config.traitor(id).map(|b| b.name()),
        "replica started"
    );
    let thread_error = |source| NodeError::StorageThread { replica: id, source };
    let status = match config.traitor(id) {
        None => replica_status(
            &run_replica(replica, replica_status, log, net, inbox, observability, shutdown)
                .await
                .map_err(thread_error)?,
        ),
        Some(behavior) => {
            tracing::warn!(replica = id.0, %behavior, "this replica is a TRAITOR (demonstration)");
            let colluders: BTreeSet<ReplicaId> = config.traitors.iter().map(|t| t.replica).collect();
            let plan =
                TraitorPlan::new(id, colluders, replica.quorum(), config.protocol.view_change_timeout_ms);
            let traitor = Traitor::new(id, behavior, secret, replica.quorum(), plan);
            let node = TraitorNode::new(replica, traitor);
            let status = |node: &TraitorNode<A>| replica_status(node.replica());
            status(
                &run_replica(node, status, log, net, inbox, observability, shutdown)
                    .await
                    .map_err(thread_error)?,
            )
        }
    };
    tracing::info!(
        replica = id.0,
        view = status.view,
        last_executed = status.last_executed,
        "replica stopped"
    );
    Ok(status)
}

/// Connects client `id` of `config`. Must run inside a tokio runtime.
pub fn connect_client(config: &ClusterConfig, id: ClientId) -> Result<ClientHandle, NodeError> {
    let secret = config.client_secret(id)?;
    ClientHandle::connect_with(id, &secret, &config.replica_addresses(), config.client_options())
        .map_err(|source| NodeError::Client { client: id, source })
}

/// Every replica's status (`None` for those that did not answer within
/// `timeout`), asked as client `id`.
pub async fn cluster_status(
    config: &ClusterConfig,
    id: ClientId,
    timeout: Duration,
) -> Result<Vec<Option<NodeStatus>>, NodeError> {
    let secret = config.client_secret(id)?;
    query_status(&secret, &config.replica_addresses(), timeout)
        .await
        .map_err(|source| NodeError::Status { client: id, source })
}

/// What replica `id` of `config` is, as the status commands show it:
/// `honest`, or `traitor: BEHAVIOUR` for a demonstration traitor. It comes
/// from the config: the transport and the replicas know nothing of roles.
pub fn role(config: &ClusterConfig, id: ReplicaId) -> String {
    match config.traitor(id) {
        None => "honest".to_string(),
        Some(behavior) => format!("traitor: {behavior}"),
    }
}

/// Whether the replicas that answered have the same state where they can be compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Agreement {
    /// No two replicas disagree about the state at any sequence number both report.
    Agree,
    /// Two or more replicas report different state digests for one sequence number.
    Diverged {
        /// The sequence number.
        seq: u64,
        /// Which replicas hold which digest at it.
        digests: BTreeMap<String, Vec<u32>>,
    },
}

/// Compares the state digests replicas report for the same sequence number:
/// the current state of replicas that executed equally far, and their stable
/// checkpoints.
pub fn agreement(statuses: &[Option<NodeStatus>]) -> Agreement {
    let mut at_seq: BTreeMap<u64, BTreeMap<String, Vec<u32>>> = BTreeMap::new();
    for status in statuses.iter().flatten() {
        let mut note = |seq: u64, digest: &str| {
            let replicas = at_seq.entry(seq).or_default().entry(digest.to_string()).or_default();
            if !replicas.contains(&status.replica) {
                replicas.push(status.replica);
            }
        };
        note(status.last_executed, &status.state_digest);
        if status.stable_checkpoint > 0 {
            note(status.stable_checkpoint, &status.stable_checkpoint_digest);
        }
    }
    match at_seq.into_iter().find(|(_, digests)| digests.len() > 1) {
        Some((seq, digests)) => Agreement::Diverged { seq, digests },
        None => Agreement::Agree,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(replica: u32, last_executed: u64, state_digest: &str) -> Option<NodeStatus> {
        Some(NodeStatus {
            replica,
            view: 0,
            normal: true,
            primary: false,
            pending_requests: 0,
            held_reads: 0,
            log_slots: 0,
            peers: Vec::new(),
            open_connections: 0,
            recovering: false,
            last_executed,
            stable_checkpoint: 0,
            stable_checkpoint_digest: String::new(),
            state_digest: state_digest.into(),
            rejected_messages: 0,
            rejections: Default::default(),
            net: Default::default(),
            disagreement: None,
        })
    }

    #[test]
    fn replicas_at_different_points_agree_and_a_different_digest_at_one_point_diverges() {
        assert_eq!(agreement(&[status(0, 5, "aa"), status(1, 7, "bb"), None]), Agreement::Agree);
        let diverged = agreement(&[status(0, 5, "aa"), status(1, 5, "bb"), status(2, 5, "aa")]);
        let expected: BTreeMap<String, Vec<u32>> =
            [("aa".to_string(), vec![0, 2]), ("bb".to_string(), vec![1])].into();
        assert_eq!(diverged, Agreement::Diverged { seq: 5, digests: expected });
    }
}

#[cfg(test)]
mod error_tests {
    #![allow(clippy::unwrap_used)] // a panic is a failed test

    use super::*;
    use crate::apps::Counter;
    use std::path::PathBuf;

    /// A four-replica config with development keys in a fresh folder, replica
    /// 0 listening on `port`.
    fn config_with_replica_0_on(name: &str, port: u16) -> (PathBuf, ClusterConfig) {
        let dir = std::env::temp_dir().join(format!("pbft-node-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut toml = String::from("[cluster]\nkeys_dir = \"keys\"\ndev_keys = true\n\n");
        for (id, port) in [port, 1, 2, 3].into_iter().enumerate() {
            toml += &format!("[[replica]]\nid = {id}\naddress = \"127.0.0.1:{port}\"\n\n");
        }
        toml += "[[client]]\nid = 0\n";
        std::fs::write(dir.join("cluster.toml"), toml).unwrap();
        let config = ClusterConfig::load(&dir.join("cluster.toml")).unwrap();
        (dir, config)
    }

    fn run_replica_0(config: &ClusterConfig) -> Result<NodeStatus, NodeError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run_replica_with::<Counter>(config, ReplicaId(0), async {}))
    }

    #[test]
    fn a_replica_whose_address_is_taken_names_its_transport() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (dir, config) = config_with_replica_0_on("taken", port);
        let error = run_replica_0(&config).unwrap_err();
        assert!(matches!(error, NodeError::Transport { replica: ReplicaId(0), .. }), "{error:?}");
        assert_eq!(error.to_string(), "cannot start replica 0's transport");
        assert!(std::error::Error::source(&error).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_protocol_the_core_refuses_names_the_replica() {
        let (dir, mut config) = config_with_replica_0_on("refused", 9);
        config.protocol.checkpoint_interval = 0;
        let error = run_replica_0(&config).unwrap_err();
        assert!(matches!(error, NodeError::Replica { replica: ReplicaId(0), .. }), "{error:?}");
        assert_eq!(error.to_string(), "cannot start replica 0");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_client_without_its_key_file_is_a_config_error_naming_the_field() {
        let (dir, mut config) = config_with_replica_0_on("keyless", 9);
        config.clients[0].key_file = None;
        let error = connect_client(&config, ClientId(0)).map(|_| ()).unwrap_err();
        assert!(matches!(&error, NodeError::Config(e) if e.field == "client (id 0).key_file"), "{error:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
