//! What one simulated run found.

use super::profile::FaultProfile;
use crate::checkers::Verdict;
use crate::cluster::DiskFault;
use crate::traitor::Behavior;
use pbft_core::{BufferUsage, Digest, ReplicaId, SeqNum};
use std::fmt;

/// The outcome of one run: its profile, every checker's verdict, and measurements.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// The profile the seed expanded into.
    pub profile: FaultProfile,
    /// One verdict per checker.
    pub verdicts: Vec<Verdict>,
    /// The first sequence number at which honest replicas diverged, if any.
    pub conflicting_seq: Option<SeqNum>,
    /// Requests that completed / were issued.
    pub completed: usize,
    /// Requests issued.
    pub issued: usize,
    /// The highest view any replica reached.
    pub max_view: u64,
    /// Largest buffer occupancy seen.
    pub peak_buffers: BufferUsage,
    /// Virtual time at the end of the run, in milliseconds.
    pub end_ms: u64,
    /// The rolling hash of every delivery and event: equal hashes, equal runs.
    pub trace_hash: Digest,
    /// What the liveness checker measured.
    pub liveness_summary: String,
    /// The traitor replicas and their behaviours (the checkers judge the others).
    pub traitors: Vec<(ReplicaId, Behavior)>,
    /// The damaged or lost disks replicas restarted with, in order: when
    /// (milliseconds), which replica, what.
    pub disk_faults: Vec<(u64, ReplicaId, DiskFault)>,
    /// How many (replica, stable checkpoint) pairs the app invariant was checked at.
    pub invariant_checks: u64,
    /// What each honest replica executed at the conflicting sequence number
    /// (at sequence number 1 when there is none).
    pub executions: Vec<Execution>,
}

/// One honest replica's execution of one sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    /// The replica.
    pub replica: ReplicaId,
    /// The sequence number.
    pub seq: SeqNum,
    /// The batch digest.
    pub digest: Digest,
    /// The requests of the batch, as (client, timestamp).
    pub requests: Vec<(pbft_core::ClientId, u64)>,
}

impl SimReport {
    /// Whether every checker passed.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(Verdict::passed)
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!("pbft sim --seed {}", self.profile.seed)
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}: {}", self.profile.seed, self.profile)?;
        if !self.traitors.is_empty() {
            let list: Vec<String> = self.traitors.iter().map(|(id, b)| format!("{id} {b}")).collect();
            writeln!(f, "  traitors: {}", list.join(", "))?;
        }
        if !self.disk_faults.is_empty() {
            let list: Vec<String> =
                self.disk_faults.iter().map(|(at, id, d)| format!("{id} {d} at {at} ms")).collect();
            writeln!(f, "  disk faults: {}", list.join(", "))?;
        }
        for verdict in &self.verdicts {
            match &verdict.violation {
                None if verdict.name == "liveness" => {
                    writeln!(f, "  {:<18} ok ({})", verdict.name, self.liveness_summary)?
                }
                None => writeln!(f, "  {:<18} ok", verdict.name)?,
                Some(violation) => writeln!(f, "  {:<18} FAILED: {violation}", verdict.name)?,
            }
        }
        writeln!(
            f,
            "  {}/{} requests completed, highest view {}, ended at {} ms, trace {}",
            self.completed, self.issued, self.max_view, self.end_ms, self.trace_hash
        )?;
        if !self.passed() {
            writeln!(f, "  replay: {}", self.replay_command())?;
        }
        Ok(())
    }
}
