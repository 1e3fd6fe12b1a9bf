//! `pbft demo bound`: why consensus needs n ≥ 3f+1, shown by running the
//! same fork attack with f and with f+1 colluding traitors.

use anyhow::{bail, Result};
use clap::Args;
use fault_injector::bound::{demonstrate, BoundDemo, BoundScenario};
use pbft_app::workloads::KvWorkload;
use std::process::ExitCode;

/// Options of `pbft demo bound`.
#[derive(Args)]
pub struct BoundArgs {
    /// The fault bound: the cluster has n = 3f+1 replicas.
    #[arg(long, default_value_t = 1)]
    f: usize,
    /// Print a machine-readable report instead of prose and tables.
    #[arg(long)]
    json: bool,
}

/// Runs both scenarios and explains them; exit code 0 when both outcomes are as the theory predicts.
pub fn run(args: BoundArgs) -> Result<ExitCode> {
    if args.f == 0 || args.f > 5 {
        bail!("--f must be between 1 and 5 (n = 3f+1 replicas are simulated)");
    }
    let demo = demonstrate::<KvWorkload>(args.f);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&demo))?);
    } else {
        explain(&demo);
    }
    Ok(if demo.as_predicted() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn json(demo: &BoundDemo) -> serde_json::Value {
    let scenario = |s: &BoundScenario| {
        serde_json::json!({
            "traitors": s.traitors,
            "agreement_held": s.agreement_held(),
            "conflicting_seq": s.report.conflicting_seq,
            "completed": s.report.completed,
            "issued": s.report.issued,
            "checkers": s.report.verdicts.iter().map(|v| serde_json::json!({
                "name": v.name, "passed": v.passed(), "violation": v.violation,
            })).collect::<Vec<_>>(),
            "executions": s.report.executions.iter().map(|e| serde_json::json!({
                "replica": e.replica.0,
                "seq": e.seq,
                "digest": e.digest.to_string(),
                "requests": e.requests.iter().map(|(c, t)| serde_json::json!({"client": c.0, "timestamp": t})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    };
    serde_json::json!({
        "f": demo.f,
        "n": 3 * demo.f + 1,
        "quorum": 2 * demo.f + 1,
        "safe": scenario(&demo.safe),
        "fork": scenario(&demo.fork),
        "as_predicted": demo.as_predicted(),
    })
}

fn explain(demo: &BoundDemo) {
    let f = demo.f;
    let (n, q) = (3 * f + 1, 2 * f + 1);
    println!("The bound n ≥ 3f+1, on n = {n} replicas (f = {f}); a batch commits with {q} commits.");
    println!();
    println!("The attack: the traitor primary (replica 0) sends one batch to one half of the honest");
    println!("replicas and the same requests in another order to the other half, for the same sequence");
    println!("number; every other traitor prepares and commits each batch towards its half.");
    println!();
    for (title, scenario) in [("(a)", &demo.safe), ("(b)", &demo.fork)] {
        let traitors: Vec<String> = scenario.report.traitors.iter().map(|(id, _)| id.0.to_string()).collect();
        println!("{title} {} colluding traitor(s): replicas {}", scenario.traitors, traitors.join(", "));
        table(scenario);
        for verdict in &scenario.report.verdicts {
            match &verdict.violation {
                None => println!("    {:<18} ok", verdict.name),
                Some(violation) => println!("    {:<18} FAILED: {violation}", verdict.name),
            }
        }
        println!("    {}/{} client requests completed", scenario.report.completed, scenario.report.issued);
        println!();
    }
    println!(
        "Why: any two quorums of {q} out of {n} replicas share at least {q} + {q} - {n} = {} replicas.",
        f + 1
    );
    println!("With {f} traitor(s), at least one replica in every overlap is honest and commits only one");
    println!("batch per sequence number, so two different batches can never both gather {q} commits.");
    println!("With {} traitors the overlap can consist of traitors alone, who commit both batches:", f + 1);
    println!("each honest half sees a full quorum for a different batch, and the replicas fork.");
    println!();
    let verdict = if demo.as_predicted() { "as the theory predicts" } else { "NOT as the theory predicts" };
    println!(
        "Outcome: (a) agreement {}, (b) agreement {}: {verdict}.",
        if demo.safe.agreement_held() { "held" } else { "BROKEN" },
        if demo.fork.agreement_held() { "held" } else { "broken" }
    );
}

fn table(scenario: &BoundScenario) {
    let seq = scenario.report.executions.first().map_or(1, |e| e.seq);
    println!("    honest replicas at sequence number {seq}:");
    println!("      replica  batch digest      requests (client:timestamp)");
    for execution in &scenario.report.executions {
        let requests: Vec<String> = execution.requests.iter().map(|(c, t)| format!("{}:{t}", c.0)).collect();
        println!(
            "      {:<8} {:<17} {}",
            execution.replica.0,
            &execution.digest.to_string()[..12],
            if requests.is_empty() { "(none)".to_string() } else { requests.join(" ") }
        );
    }
}
