//! Runs one seed: a safety phase with faults on, then a liveness phase with
//! the network healed and every replica restarted, checking all the way.

use super::faulty_network::FaultyNetwork;
use super::profile::FaultProfile;
use super::report::{Execution, SimReport};
use crate::checkers::{
    Agreement, AppInvariant, BoundedResources, CaughtUp, EndState, ExactlyOnce, Linearizability, Liveness,
    OneVote, TotalOrder, Validity,
};
use crate::cluster::{Completion, DiskFault, SimCluster, SimConfig};
use crate::rng::Rng;
use crate::traitor::Behavior;
use pbft_core::{ClientId, Event, ReplicaId, ReplicatedStateMachine, Time};
use std::collections::{BTreeMap, BTreeSet};

/// What the simulator drives an application with: the operations clients
/// make up, and the application's own consistency rule. It is a type of its
/// own beside the application, so applications know nothing of the simulator.
pub trait Workload {
    /// The application under test; every replica starts from its default.
    type App: ReplicatedStateMachine + Default;

    /// Operation number `index` of `client`, drawn from `rng`.
    fn random_op(rng: &mut Rng, client: ClientId, index: usize) -> Vec<u8>;

    /// The application's own consistency rule, checked on every honest
    /// replica at every stable checkpoint (for a bank: no money made or lost).
    fn invariant(_app: &Self::App) -> Result<(), String> {
        Ok(())
    }
}

/// Which replicas of a run are traitors, and how they misbehave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TraitorSelection {
    /// Every replica is honest.
    #[default]
    None,
    /// f traitors (as many as the cluster tolerates), all with this
    /// behaviour, chosen by the seed. Behaviours that act as primary
    /// (`equivocate`, `slow-primary`, `collude`) always include replica 0,
    /// the first primary.
    Uniform(Behavior),
    /// f traitors with behaviours drawn by the seed.
    Mixed,
    /// f − 1 traitors with behaviours drawn by the seed, leaving room in
    /// the fault bound for a damaged disk (none with n = 4, one with n = 7).
    MixedBelowBound,
    /// Exactly these replicas with these behaviours (they collude together).
    Exactly(Vec<(ReplicaId, Behavior)>),
}

impl TraitorSelection {
    /// The traitors of a run of `profile`.
    pub fn choose(&self, profile: &FaultProfile) -> Vec<(ReplicaId, Behavior)> {
        let f = profile.quorum().f();
        let mut rng = Rng::stream(profile.seed, "traitors/choice");
        let mut pick = |count: usize, include_primary: bool| {
            let mut ids: Vec<u32> = (0..profile.n as u32).collect();
            let mut chosen = Vec::new();
            if include_primary {
                chosen.push(ids.remove(0));
            }
            while chosen.len() < count && !ids.is_empty() {
                chosen.push(ids.remove(rng.below(ids.len() as u64) as usize));
            }
            chosen.sort_unstable();
            chosen
        };
        match self {
            TraitorSelection::None => Vec::new(),
            TraitorSelection::Uniform(behavior) => {
                let acts_as_primary =
                    matches!(behavior, Behavior::Equivocate | Behavior::SlowPrimary | Behavior::Collude);
                pick(f, acts_as_primary).into_iter().map(|id| (ReplicaId(id), *behavior)).collect()
            }
            TraitorSelection::Mixed | TraitorSelection::MixedBelowBound => {
                let count = if *self == TraitorSelection::Mixed { f } else { f.saturating_sub(1) };
                let ids = pick(count, false);
                let mut kinds = Rng::stream(profile.seed, "traitors/behaviours");
                ids.into_iter()
                    .map(|id| {
                        let behavior = Behavior::ALL[kinds.below(Behavior::ALL.len() as u64) as usize];
                        (ReplicaId(id), behavior)
                    })
                    .collect()
            }
            TraitorSelection::Exactly(traitors) => traitors.clone(),
        }
    }
}

/// Knobs of a run that are not part of the seed's profile.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Collect a readable log of every event (for `--trace`).
    pub trace: bool,
    /// Traitor replicas.
    pub traitors: TraitorSelection,
    /// Run this many replicas instead of the seed's choice (4 or 7).
    pub replicas: Option<usize>,
    /// Run this profile instead of the seed's (its `seed` still seeds keys and workload).
    pub profile: Option<FaultProfile>,
    /// A deliberate protocol bug to prove the checkers can fail (test builds only).
    #[cfg(feature = "mutations")]
    pub mutation: Option<pbft_core::Mutation>,
    /// Break the persistence rule: sends before their records are synced
    /// (test builds only; see `SimCluster::set_send_before_persist`).
    #[cfg(feature = "mutations")]
    pub send_before_persist: bool,
}

/// Something scheduled to happen at a virtual time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Submit(ClientId, Vec<u8>),
    Crash(ReplicaId),
    /// Restart with empty memory from what the disk synced, as after a power cut.
    RestartFromDisk(ReplicaId),
    /// Restart after the disk was damaged or lost: empty memory (same
    /// keys), recovering from peers.
    RestartDamaged(ReplicaId, DiskFault),
}

struct Checkers {
    agreement: Agreement,
    app_invariant: AppInvariant,
    total_order: TotalOrder,
    validity: Validity,
    exactly_once: ExactlyOnce,
    linearizability: Linearizability,
    liveness: Liveness,
    bounded: BoundedResources,
    one_vote: OneVote,
    caught_up: CaughtUp,
}

/// One run in progress: the cluster, what is still scheduled, and the checkers.
struct Run<'o, W: Workload> {
    cluster: SimCluster<W::App>,
    schedule: Vec<(Time, Action)>,
    honest: BTreeSet<ReplicaId>,
    checkers: Checkers,
    cursor: usize,
    vote_cursor: usize,
    options: &'o SimOptions,
    trace: Vec<String>,
}

/// Runs the simulation of `seed` with workload `W`; returns the report
/// and, if `options.trace`, the event log.
pub fn simulate<W: Workload>(seed: u64, options: &SimOptions) -> (SimReport, Vec<String>) {
    let mut profile = options.profile.clone().unwrap_or_else(|| FaultProfile::from_seed(seed));
    if let Some(n) = options.replicas {
        profile.n = n;
    }
    let config = SimConfig {
        n: profile.n,
        clients: profile.clients,
        protocol: profile.protocol.clone(),
        latency_ms: profile.min_delay_ms,
        client_retry_ms: profile.client_retry_ms,
        key_seed: seed,
    };
    let mut cluster = SimCluster::new(config, |_| W::App::default());
    #[cfg(feature = "mutations")]
    {
        cluster.set_mutation(options.mutation);
        cluster.set_send_before_persist(options.send_before_persist);
    }
    cluster.set_network(FaultyNetwork::new(&profile));
    let traitors = options.traitors.choose(&profile);
    let colluders: BTreeSet<ReplicaId> = traitors.iter().map(|(id, _)| *id).collect();
    for (id, behavior) in &traitors {
        cluster.make_traitor(*id, *behavior, colluders.clone());
    }
    let honest = cluster.quorum().replicas().filter(|id| !colluders.contains(id)).collect();
    let mut run = Run::<W> {
        cluster,
        schedule: schedule::<W>(&profile, profile.quorum().f().saturating_sub(colluders.len())),
        honest,
        checkers: Checkers {
            agreement: Agreement::default(),
            app_invariant: AppInvariant::default(),
            total_order: TotalOrder::default(),
            validity: Validity::default(),
            exactly_once: ExactlyOnce::default(),
            linearizability: Linearizability::default(),
            liveness: Liveness::default(),
            bounded: BoundedResources::default(),
            one_vote: OneVote::default(),
            caught_up: CaughtUp::default(),
        },
        cursor: 0,
        vote_cursor: 0,
        options,
        trace: Vec::new(),
    };
    let issued = profile.clients * profile.requests_per_client;

    // Safety phase: faults on.
    let heal_at = Time(profile.safety_ms);
    run.phase(heal_at, |_| false);

    // Liveness phase: heal the network, restart every replica.
    let mut healed = FaultyNetwork::new(&profile);
    healed.heal();
    run.cluster.set_network(healed);
    run.schedule.retain(|(_, action)| matches!(action, Action::Submit(..)));
    for id in run.cluster.quorum().replicas() {
        run.cluster.restart(id);
    }
    let last_arrival = run.schedule.last().map_or(heal_at, |(at, _)| (*at).max(heal_at));
    let deadline = last_arrival + profile.liveness_bound_ms();
    run.phase(deadline, |c| c.all_complete());
    let completions: Vec<Completion> = run.cluster.all_completions().cloned().collect();
    let last_completion = completions.iter().map(|c| c.completed_at).max();

    // Views must stop changing: a view change asked for during the faults may
    // still complete while the cluster settles (one view-change timeout with
    // the longest back-off), but in the quiet window after that no newer view
    // may start. (A replica that lagged may still catch up into the current view.)
    let p = &profile.protocol;
    let settle = (p.view_change_timeout_ms << p.max_view_change_backoff) + p.view_change_timeout_ms;
    let settle_end = run.cluster.now() + settle;
    run.phase(settle_end, |_| false);
    let view_before = run.highest_view_entered();
    let events_before = run.cluster.events().len();
    let quiet_end = run.cluster.now() + 4 * profile.protocol.view_change_timeout_ms;
    run.phase(quiet_end, |_| false);
    // With views rotating on a term they never stop changing; the check
    // applies to suspicion only, so it is off for rotating profiles.
    let rotating = profile.protocol.view_term_ms > 0;
    let newer_views = run.cluster.events()[events_before..]
        .iter()
        .filter(|(_, r, e)| {
            !rotating
                && run.honest.contains(r)
                && matches!(e, Event::NewViewEntered { view, .. } if *view > view_before)
        })
        .count();

    let ends: BTreeMap<ReplicaId, EndState> = run
        .cluster
        .replicas()
        .filter(|r| run.honest.contains(&r.id()))
        .map(|r| (r.id(), EndState { recovering: r.is_recovering(), last_executed: r.last_executed() }))
        .collect();
    let checkers = &mut run.checkers;
    checkers.caught_up.judge(&ends);
    checkers.liveness.judge(completions.len(), issued, last_completion, deadline, newer_views);
    checkers.linearizability.finish::<W::App>(run.cluster.requests_sent(), &completions);
    let verdicts = vec![
        checkers.agreement.verdict(),
        checkers.total_order.verdict(),
        checkers.validity.verdict(),
        checkers.exactly_once.verdict(),
        checkers.linearizability.verdict(),
        checkers.liveness.verdict(),
        checkers.bounded.verdict(),
        checkers.app_invariant.verdict(),
        checkers.one_vote.verdict(),
        checkers.caught_up.verdict(),
    ];
    let report = SimReport {
        profile,
        verdicts,
        conflicting_seq: checkers.agreement.conflicting_seq(),
        completed: completions.len(),
        issued,
        max_view: run
            .cluster
            .replicas()
            .filter(|r| run.honest.contains(&r.id()))
            .map(|r| r.view())
            .max()
            .unwrap_or(0),
        traitors,
        disk_faults: run
            .cluster
            .disk_faults()
            .iter()
            .map(|(at, id, fault)| (at.as_millis(), *id, *fault))
            .collect(),
        invariant_checks: checkers.app_invariant.checked(),
        executions: executions_at(
            &run.cluster,
            &run.honest,
            checkers.agreement.conflicting_seq().unwrap_or(1),
        ),
        peak_buffers: checkers.bounded.peak(),
        end_ms: run.cluster.now().as_millis(),
        trace_hash: run.cluster.trace_hash(),
        liveness_summary: checkers.liveness.summary().to_string(),
    };
    (report, run.trace)
}

/// What each honest replica executed at `seq`: the batch digest and its requests.
fn executions_at<A: ReplicatedStateMachine>(
    cluster: &SimCluster<A>,
    honest: &BTreeSet<ReplicaId>,
    seq: u64,
) -> Vec<Execution> {
    cluster
        .events()
        .iter()
        .filter(|(_, replica, _)| honest.contains(replica))
        .filter_map(|(_, replica, event)| match event {
            Event::Executed { seq: at, digest, requests, .. } if at == &seq => Some(Execution {
                replica: *replica,
                seq,
                digest: *digest,
                requests: requests.iter().map(|r| (r.client, r.timestamp)).collect(),
            }),
            _ => None,
        })
        .collect()
}

/// The client arrivals and crash/restart episodes of a profile, by time.
///
/// An episode crashes one replica, which restarts from its disk (what it
/// synced) or, with probability one half, with a damaged or lost disk; in
/// runs where `damage_allowance` (f minus the traitors) is 2 or more, half
/// of the damaging episodes damage that many disks at once. A replica
/// restarted from a damaged disk is faulty until it has caught up (it may
/// have forgotten prepared certificates a view change relies on), so damaged
/// disks plus traitors stay within f; with f traitors every restart is from
/// the disk. A restart from the disk is only slowness, which PBFT tolerates
/// on top of f.
fn schedule<W: Workload>(profile: &FaultProfile, damage_allowance: usize) -> Vec<(Time, Action)> {
    let mut ops = Rng::stream(profile.seed, "workload/ops");
    let mut arrivals = Rng::stream(profile.seed, "workload/arrivals");
    let mut crashes = Rng::stream(profile.seed, "faults/crashes");
    let mut amnesia_draws = Rng::stream(profile.seed, "faults/amnesia");
    let mut damage = Rng::stream(profile.seed, "faults/damage");
    let mut schedule = Vec::new();
    for c in 0..profile.clients as u64 {
        let mut at = 0;
        for i in 0..profile.requests_per_client {
            let op = W::random_op(&mut ops, ClientId(c), i);
            if profile.open_loop {
                at += arrivals.below(2 * profile.arrival_gap_ms + 1);
            }
            schedule.push((Time(at), Action::Submit(ClientId(c), op)));
        }
    }
    // Crash-restart episodes one after another: one replica down at a time,
    // or the damaged ones of one episode together.
    let slot = profile.safety_ms / (profile.crash_restarts as u64 + 1);
    for episode in 0..profile.crash_restarts as u64 {
        let start = episode * slot + crashes.below(slot / 2 + 1);
        let end = start + 1 + crashes.below(slot / 2);
        let victim = ReplicaId(crashes.below(profile.n as u64) as u32);
        schedule.push((Time(start), Action::Crash(victim)));
        let damaged = amnesia_draws.chance(1, 2) && damage_allowance > 0;
        if !damaged {
            schedule.push((Time(end), Action::RestartFromDisk(victim)));
            continue;
        }
        let mut victims = vec![victim];
        if damage_allowance > 1 && damage.chance(1, 2) {
            while victims.len() < damage_allowance {
                let more = ReplicaId(damage.below(profile.n as u64) as u32);
                if !victims.contains(&more) {
                    schedule.push((Time(start), Action::Crash(more)));
                    victims.push(more);
                }
            }
        }
        for id in victims {
            let fault = DiskFault::ALL[damage.below(DiskFault::ALL.len() as u64) as usize];
            schedule.push((Time(end), Action::RestartDamaged(id, fault)));
        }
    }
    if let Some((at, down)) = profile.whole_cluster_crash {
        for id in (0..profile.n as u32).map(ReplicaId) {
            schedule.push((Time(at), Action::Crash(id)));
            schedule.push((Time(at + down), Action::RestartFromDisk(id)));
        }
    }
    schedule.sort();
    schedule
}

impl<W: Workload> Run<'_, W> {
    /// Runs until `done` holds with nothing left scheduled, or time passes `until`.
    fn phase(&mut self, until: Time, done: impl Fn(&SimCluster<W::App>) -> bool) {
        loop {
            if self.schedule.is_empty() && done(&self.cluster) {
                return;
            }
            let next_action = self.schedule.first().map(|(at, _)| *at);
            let next_event = self.cluster.next_event_time();
            let action_first = match (next_action, next_event) {
                (Some(a), Some(e)) => a <= e,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let next = if action_first { next_action } else { next_event };
            if next.is_none_or(|at| at > until) {
                self.cluster.run_until(until, |_| true);
                return;
            }
            if action_first {
                let (at, action) = self.schedule.remove(0);
                self.cluster.run_until(at, |_| false);
                if self.options.trace {
                    self.trace.push(format!("{:>8} ms  {action:?}", at.as_millis()));
                }
                match action {
                    Action::Submit(client, op) => self.cluster.submit(client, op),
                    Action::Crash(id) => self.cluster.crash(id),
                    Action::RestartFromDisk(id) => {
                        self.cluster.restart_from_disk(id, W::App::default());
                        if self.cluster.replica(id).is_recovering() {
                            // It crashed while recovering from a damaged
                            // disk and recovers again: it re-executes from
                            // nothing. (It signed nothing while recovering,
                            // and its votes from before the damage were
                            // forgotten then; the one-vote checker keeps
                            // everything since.)
                            self.checkers.total_order.forget(id);
                            self.checkers.exactly_once.forget(id);
                        }
                    }
                    Action::RestartDamaged(id, fault) => {
                        self.cluster.restart_damaged(id, fault, W::App::default());
                        self.checkers.caught_up.on_damaged(id);
                        // A new incarnation: its earlier executions are
                        // history. A lost disk is a fault until the replica
                        // has caught up (damaged disks plus traitors stay
                        // within f): its recovering mode keeps it from voting
                        // in any view it may have voted in, but a replica that
                        // loses its disk twice while the cluster stays in one
                        // view may ask for the same new view twice, so its
                        // earlier votes are not held against it.
                        self.forget(id);
                    }
                }
            } else {
                self.cluster.step();
            }
            self.observe();
        }
    }

    /// Replica `id` restarted with nothing from before: what it executed
    /// and signed before is history.
    fn forget(&mut self, id: ReplicaId) {
        self.checkers.total_order.forget(id);
        self.checkers.exactly_once.forget(id);
        self.checkers.one_vote.forget(id);
    }

    /// Feeds the events since the last call to the checkers.
    fn observe(&mut self) {
        let events = self.cluster.events();
        let checkers = &mut self.checkers;
        for (at, replica, event) in &events[self.cursor..] {
            if self.options.trace {
                self.trace.push(format!("{:>8} ms  {replica}: {event:?}", at.as_millis()));
            }
            if !self.honest.contains(replica) {
                continue;
            }
            match event {
                Event::Executed { seq, digest, requests, .. } => {
                    checkers.agreement.on_executed(*at, *replica, *seq, *digest);
                    checkers.total_order.on_executed(*at, *replica, *seq);
                    checkers.validity.on_executed(*at, *replica, requests, self.cluster.requests_sent());
                    checkers.exactly_once.on_executed(*at, *replica, *seq, requests);
                    checkers.linearizability.on_executed(*seq, requests);
                }
                Event::StateTransferred { seq, .. } => {
                    checkers.total_order.on_state_transferred(*replica, *seq)
                }
                Event::Recovered { last_executed, .. } => {
                    checkers.total_order.on_recovered(*replica, *last_executed);
                    checkers.exactly_once.on_recovered(*replica, *last_executed);
                }
                Event::CheckpointStable { seq, state_digest } => {
                    checkers.agreement.on_stable_checkpoint(*at, *replica, *seq, *state_digest);
                    let invariant = W::invariant(self.cluster.replica(*replica).app());
                    checkers.app_invariant.on_checkpoint(*at, *replica, *seq, invariant);
                }
                _ => {}
            }
        }
        self.cursor = events.len();
        let votes = self.cluster.votes();
        for (at, replica, vote) in &votes[self.vote_cursor..] {
            if self.honest.contains(replica) {
                checkers.one_vote.on_sent(*at, *replica, *vote);
            }
        }
        self.vote_cursor = votes.len();
        for replica in self.cluster.replicas() {
            if self.honest.contains(&replica.id()) {
                checkers.bounded.observe(
                    self.cluster.now(),
                    replica.id(),
                    replica.buffer_usage(),
                    replica.buffer_limits(),
                );
            }
        }
    }

    /// The highest view any honest replica has entered so far.
    fn highest_view_entered(&self) -> u64 {
        self.cluster
            .events()
            .iter()
            .filter(|(_, r, _)| self.honest.contains(r))
            .filter_map(|(_, _, e)| match e {
                Event::NewViewEntered { view, .. } => Some(*view),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}
