//! Twins (Bano et al., 2022): a Byzantine replica modelled as two honest
//! instances sharing one key, placed on different sides of a partition that
//! changes from phase to phase. Each instance runs the real protocol, so
//! together they equivocate in every way the protocol's own messages allow,
//! without hand-written attack code. Safety must hold with up to f twinned
//! replicas; with f+1 some scenario must fork.
//!
//! A scenario is a list of phases. In each phase every replica instance and
//! every client is on side 0 or side 1 and only same-side traffic arrives.
//! After the last phase the network heals and the run continues until every
//! request completes or a deadline passes.

use crate::checkers::{Agreement, ExactlyOnce, TotalOrder, Validity, Verdict};
use crate::cluster::{SimCluster, SimConfig};
use crate::sim::Workload;
use crate::NodeId;
use crate::Rng;
use pbft_core::{ClientId, Event, ProtocolConfig, ReplicaId, ReplicatedStateMachine, SeqNum, Time};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Replicas in every Twins scenario (f = 1).
pub const REPLICAS: usize = 4;
/// Clients in every scenario; client 0 starts on side 0 and client 1 on side 1.
pub const CLIENTS: usize = 2;
/// How long one phase lasts: long enough for a view change to complete.
pub const PHASE_MS: u64 = 700;

/// Which side of the partition a node is on during one phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// The side of every replica instance (originals and twins) and client;
    /// nodes not listed are on side 0.
    pub sides: BTreeMap<NodeId, u8>,
}

impl Phase {
    fn side(&self, node: NodeId) -> u8 {
        self.sides.get(&node).copied().unwrap_or(0)
    }
}

/// One Twins run: which replicas are twinned and the partition of each phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Replicas that run as two instances.
    pub twins: Vec<ReplicaId>,
    /// The partitions, one per phase.
    pub phases: Vec<Phase>,
}

/// What a scenario's run found.
#[derive(Clone, Debug)]
pub struct TwinsReport {
    /// Agreement, total order, validity and exactly-once over the honest replicas.
    pub verdicts: Vec<Verdict>,
    /// The first sequence number where honest replicas diverged, if any.
    pub conflicting_seq: Option<SeqNum>,
    /// Requests completed / issued.
    pub completed: usize,
    /// Requests issued.
    pub issued: usize,
}

impl TwinsReport {
    /// Whether every safety checker passed.
    pub fn safe(&self) -> bool {
        self.verdicts.iter().all(Verdict::passed)
    }
}

/// Every node of a scenario with `twins`: the replicas, their twins and the clients.
fn nodes(twins: &[ReplicaId]) -> Vec<NodeId> {
    let replicas = (0..REPLICAS as u32).map(|r| NodeId::Replica(ReplicaId(r)));
    let twin_nodes = twins.iter().map(|r| NodeId::Twin(*r));
    replicas.chain(twin_nodes).collect()
}

/// Every partition of the replica instances into two sides (side 0 holds
/// replica 0, so mirror images are not repeated), with client 0 on side 0
/// and client 1 on side 1.
pub fn partitions(twins: &[ReplicaId]) -> Vec<Phase> {
    let nodes = nodes(twins);
    let free = nodes.len() - 1;
    (0..1u32 << free)
        .map(|mask| {
            let mut sides: BTreeMap<NodeId, u8> =
                nodes.iter().skip(1).enumerate().map(|(i, node)| (*node, ((mask >> i) & 1) as u8)).collect();
            sides.insert(NodeId::Client(ClientId(1)), 1);
            Phase { sides }
        })
        .collect()
}

/// Every scenario of `phases` phases over [`partitions`], in a fixed order.
pub fn enumerate(twins: &[ReplicaId], phases: usize) -> Vec<Scenario> {
    let options = partitions(twins);
    let mut scenarios = vec![Vec::new()];
    for _ in 0..phases {
        scenarios = scenarios
            .into_iter()
            .flat_map(|prefix: Vec<Phase>| {
                options.iter().map(move |phase| {
                    let mut next = prefix.clone();
                    next.push(phase.clone());
                    next
                })
            })
            .collect();
    }
    scenarios.into_iter().map(|phases| Scenario { twins: twins.to_vec(), phases }).collect()
}

/// A random scenario of 3 to 6 phases with one twin (any replica), clients
/// on random sides: the longer runs CI samples.
pub fn sample(seed: u64) -> Scenario {
    let mut rng = Rng::stream(seed, "twins/scenario");
    let twin = ReplicaId(rng.below(REPLICAS as u64) as u32);
    let options = partitions(&[twin]);
    let phases = (0..3 + rng.below(4))
        .map(|_| {
            let mut phase = options[rng.below(options.len() as u64) as usize].clone();
            for c in 0..CLIENTS as u64 {
                phase.sides.insert(NodeId::Client(ClientId(c)), rng.below(2) as u8);
            }
            phase
        })
        .collect();
    Scenario { twins: vec![twin], phases }
}

/// Runs `scenario` with workload `W`: each client submits three
/// operations at the start; phases follow one another, then the network heals.
pub fn run<W: Workload>(scenario: &Scenario) -> TwinsReport {
    let protocol = ProtocolConfig {
        batch_delay_ms: 2,
        view_change_timeout_ms: 200,
        max_view_change_backoff: 2,
        status_interval_ms: 50,
        checkpoint_interval: 4,
        watermark_window: 16,
        ..ProtocolConfig::default()
    };
    let config =
        SimConfig { protocol, latency_ms: 1, client_retry_ms: 150, ..SimConfig::new(REPLICAS, CLIENTS) };
    let mut cluster = SimCluster::new(config, |_| W::App::default());
    for twin in &scenario.twins {
        cluster.make_twin(*twin, W::App::default());
    }
    let phase_index = Rc::new(Cell::new(0usize));
    let phases = scenario.phases.clone();
    let current = phase_index.clone();
    cluster.set_filter(move |envelope| match phases.get(current.get()) {
        Some(phase) => phase.side(envelope.from) == phase.side(envelope.to),
        None => true,
    });
    let mut ops = Rng::stream(0, "twins/ops");
    for c in 0..CLIENTS as u64 {
        for i in 0..3 {
            cluster.submit(ClientId(c), W::random_op(&mut ops, ClientId(c), i));
        }
    }
    for index in 0..scenario.phases.len() {
        phase_index.set(index);
        cluster.run_until(Time((index as u64 + 1) * PHASE_MS), |_| false);
    }
    phase_index.set(usize::MAX);
    let healed_at = scenario.phases.len() as u64 * PHASE_MS;
    cluster.run_until(Time(healed_at + 20_000), |c| c.all_complete());
    judge(&cluster, scenario)
}

fn judge<A: ReplicatedStateMachine>(cluster: &SimCluster<A>, scenario: &Scenario) -> TwinsReport {
    let twinned: BTreeSet<ReplicaId> = scenario.twins.iter().copied().collect();
    let mut agreement = Agreement::default();
    let mut total_order = TotalOrder::default();
    let mut validity = Validity::default();
    let mut exactly_once = ExactlyOnce::default();
    for (at, replica, event) in cluster.events() {
        if twinned.contains(replica) {
            continue;
        }
        match event {
            Event::Executed { seq, digest, requests, .. } => {
                agreement.on_executed(*at, *replica, *seq, *digest);
                total_order.on_executed(*at, *replica, *seq);
                validity.on_executed(*at, *replica, requests, cluster.requests_sent());
                exactly_once.on_executed(*at, *replica, *seq, requests);
            }
            Event::StateTransferred { seq, .. } => total_order.on_state_transferred(*replica, *seq),
            Event::CheckpointStable { seq, state_digest } => {
                agreement.on_stable_checkpoint(*at, *replica, *seq, *state_digest)
            }
            _ => {}
        }
    }
    TwinsReport {
        verdicts: vec![
            agreement.verdict(),
            total_order.verdict(),
            validity.verdict(),
            exactly_once.verdict(),
        ],
        conflicting_seq: agreement.conflicting_seq(),
        completed: cluster.all_completions().count(),
        issued: CLIENTS * 3,
    }
}
