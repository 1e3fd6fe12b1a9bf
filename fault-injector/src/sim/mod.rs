//! The deterministic simulator: a seed expands into a fault profile, the real
//! core runs under it on virtual time, and the checkers judge the run.

mod faulty_network;
mod profile;
mod report;
mod run;

pub use faulty_network::FaultyNetwork;
pub use profile::{FaultProfile, PartitionMode};
pub use report::{Execution, SimReport};
pub use run::{simulate, SimOptions, TraitorSelection, Workload};
