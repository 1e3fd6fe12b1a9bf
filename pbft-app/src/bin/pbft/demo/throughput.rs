//! `pbft demo throughput`: what a slow primary and a flooding replica cost
//! the honest ones, measured on the simulator in virtual time.

use anyhow::{bail, Result};
use clap::Args;
use fault_injector::throughput::{measure, measure_with, protocol, CLIENTS};
use fault_injector::traitor::Behavior;
use pbft_app::workloads::KvWorkload;
use pbft_core::ReplicaId;
use std::process::ExitCode;

/// Options of `pbft demo throughput`.
#[derive(Args)]
pub struct ThroughputArgs {
    /// Virtual seconds each run lasts.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs fault-free and attacked clusters of 4 and 7 replicas and prints
/// throughput under attack as a fraction of fault-free throughput.
pub fn run(args: ThroughputArgs) -> Result<ExitCode> {
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let mut rows = Vec::new();
    for n in [4usize, 7] {
        let baseline = measure::<KvWorkload>(n, None, args.seconds);
        let attacks = [
            ("slow-primary (replica 0, the primary)", ReplicaId(0), Behavior::SlowPrimary),
            ("flood (replica 0, the primary)", ReplicaId(0), Behavior::Flood),
            ("flood (a backup)", ReplicaId(n as u32 - 1), Behavior::Flood),
        ];
        rows.push((n, "fault-free".to_string(), baseline, 1.0));
        for (name, id, behavior) in attacks {
            let attacked = measure::<KvWorkload>(n, Some((id, behavior)), args.seconds);
            rows.push((n, name.to_string(), attacked, attacked / baseline.max(f64::MIN_POSITIVE)));
        }
        let fixed = pbft_core::ProtocolConfig { view_term_ms: 0, ..protocol() };
        let stuck =
            measure_with::<KvWorkload>(fixed, n, Some((ReplicaId(0), Behavior::SlowPrimary)), args.seconds);
        let name = "slow-primary (replica 0) without rotation (view_term_ms = 0)";
        rows.push((n, name.to_string(), stuck, stuck / baseline.max(f64::MIN_POSITIVE)));
    }
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(n, scenario, ops, fraction)| {
                serde_json::json!({"n": n, "scenario": scenario, "ops_per_virtual_second": ops, "fraction_of_fault_free": fraction})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"virtual_seconds": args.seconds, "clients": CLIENTS, "rows": rows})
        );
    } else {
        println!(
            "{CLIENTS} closed-loop clients, {} virtual seconds per run, 1 ms links, views rotate every {} ms",
            args.seconds,
            protocol().view_term_ms
        );
        println!("| n | scenario | requests / virtual s | fraction of fault-free |");
        println!("|---|---|---:|---:|");
        for (n, scenario, ops, fraction) in &rows {
            println!("| {n} | {scenario} | {ops:.0} | {:.0} % |", fraction * 100.0);
        }
    }
    Ok(ExitCode::SUCCESS)
}
