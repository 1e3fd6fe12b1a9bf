//! Issue 7, test 1: each example application under the simulator with
//! network faults and f traitors of mixed behaviours: every checker passes,
//! and the bank's total is intact at every checkpoint of every honest replica.

use fault_injector::sim::{simulate, SimOptions, SimReport, TraitorSelection, Workload};
use fault_injector::Rng;
use pbft_app::workloads::{BankWorkload, CounterWorkload, KvWorkload};
use pbft_core::{AppError, ClientId, ReplicatedStateMachine};

/// Seeds per application: `PBFT_APP_SEEDS` (default 100).
fn seeds() -> u64 {
    std::env::var("PBFT_APP_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100)
}

fn sweep<W: Workload>() -> Vec<SimReport> {
    let options = SimOptions { traitors: TraitorSelection::Mixed, ..SimOptions::default() };
    (0..seeds()).map(|seed| simulate::<W>(seed, &options).0).collect()
}

fn assert_all_pass(name: &str, reports: &[SimReport]) {
    let failures: Vec<&SimReport> = reports.iter().filter(|r| !r.passed()).collect();
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{name}: {} of {} runs failed", failures.len(), reports.len());
}

#[test]
fn the_key_value_store_survives_faults_and_traitors() {
    assert_all_pass("kv", &sweep::<KvWorkload>());
}

#[test]
fn the_counter_survives_faults_and_traitors() {
    assert_all_pass("counter", &sweep::<CounterWorkload>());
}

#[test]
fn the_bank_keeps_its_total_at_every_checkpoint_despite_faults_and_traitors() {
    let reports = sweep::<BankWorkload>();
    assert_all_pass("bank", &reports);
    let checks: u64 = reports.iter().map(|r| r.invariant_checks).sum();
    assert!(checks >= reports.len() as u64, "the total was checked at checkpoints ({checks} checks)");
}

/// An application whose invariant is broken from the start: the invariant
/// checker must say so (a checker that cannot fail proves nothing).
#[derive(Default)]
struct Broken(u64);

impl ReplicatedStateMachine for Broken {
    fn execute(&mut self, _op: &[u8]) -> Vec<u8> {
        self.0 += 1;
        Vec::new()
    }
    fn query(&self, _op: &[u8]) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError> {
        self.0 = u64::from_be_bytes(snapshot.try_into().map_err(|_| AppError("8 bytes".into()))?);
        Ok(())
    }
}

impl Workload for Broken {
    type App = Broken;

    fn random_op(_rng: &mut Rng, _client: ClientId, _index: usize) -> Vec<u8> {
        vec![1]
    }
    fn invariant(app: &Broken) -> Result<(), String> {
        Err(format!("broken after {} operations", app.0))
    }
}

#[test]
fn the_invariant_checker_catches_a_broken_invariant() {
    let (report, _) = simulate::<Broken>(3, &SimOptions::default());
    let verdict = report.verdicts.iter().find(|v| v.name == "app-invariant").expect("the checker ran");
    assert!(!verdict.passed(), "{report}");
}
