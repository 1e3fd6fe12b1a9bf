//! The node runtime: a replica process and the client-side helpers the CLI
//! and tests share (connecting a client, reading every replica's status, and
//! judging whether the replicas agree).

use crate::apps::{Bank, Counter, KvStore};
use crate::cluster_config::AppKind;
use crate::cluster_config::ClusterConfig;
use anyhow::Context;
use fault_injector::traitor::{Traitor, TraitorNode, TraitorPlan};
use pbft_core::{ClientId, Replica, ReplicaId, ReplicatedStateMachine};
use pbft_net::{query_status, replica_status, run_replica, ClientHandle, NetLimits, NodeStatus, ReplicaNet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

/// Runs replica `id` of `config` with the config's application until
/// `shutdown` completes. Returns the replica's last status.
pub async fn run_replica_node(
    config: &ClusterConfig,
    id: ReplicaId,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<NodeStatus> {
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
) -> anyhow::Result<NodeStatus> {
    let secret = config.replica_secret(id)?;
    let replica = Replica::new(id, config.protocol.clone(), config.key_book()?, secret.clone(), A::default())
        .with_context(|| format!("cannot start replica {}", id.0))?;
    let (net, inbox) = ReplicaNet::start(
        id,
        &secret,
        &config.replica_addresses(),
        &config.client_keys(),
        NetLimits::default(),
    )
    .with_context(|| format!("cannot start replica {}'s transport", id.0))?;
    tracing::info!(
        replica = id.0,
        address = %config.replicas[id.index()].address,
        app = config.app.name(),
        n = config.n(),
        f = config.f,
        traitor = config.traitor(id).map(|b| b.name()),
        "replica started"
    );
    let status = match config.traitor(id) {
        None => replica_status(&run_replica(replica, replica_status, net, inbox, shutdown).await),
        Some(behavior) => {
            tracing::warn!(replica = id.0, %behavior, "this replica is a TRAITOR (demonstration)");
            let colluders: BTreeSet<ReplicaId> = config.traitors.iter().map(|t| t.replica).collect();
            let plan =
                TraitorPlan::new(id, colluders, replica.quorum(), config.protocol.view_change_timeout_ms);
            let traitor = Traitor::new(id, behavior, secret, replica.quorum(), plan);
            let node = TraitorNode::new(replica, traitor);
            let status = |node: &TraitorNode<A>| replica_status(node.replica());
            status(&run_replica(node, status, net, inbox, shutdown).await)
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
pub fn connect_client(config: &ClusterConfig, id: ClientId) -> anyhow::Result<ClientHandle> {
    let secret = config.client_secret(id)?;
    Ok(ClientHandle::connect(
        id,
        &secret,
        &config.replica_addresses(),
        config.client_retry_ms,
        config.protocol.max_pending_per_client,
    )?)
}

/// Every replica's status (`None` for those that did not answer within
/// `timeout`), asked as client `id`.
pub async fn cluster_status(
    config: &ClusterConfig,
    id: ClientId,
    timeout: Duration,
) -> anyhow::Result<Vec<Option<NodeStatus>>> {
    let secret = config.client_secret(id)?;
    Ok(query_status(&secret, &config.replica_addresses(), timeout).await?)
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
