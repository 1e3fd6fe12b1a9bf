//! `pbft sim`: replay one seed of the deterministic simulator, or sweep many.

use anyhow::{bail, Context, Result};
use clap::Args;
use fault_injector::sim::{simulate, SimOptions, SimReport, TraitorSelection};
use fault_injector::traitor::Behavior;
use pbft_app::workloads::KvWorkload;
use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// Options of `pbft sim`.
#[derive(Args)]
pub struct SimArgs {
    /// Run one seed and print its profile and every checker's verdict.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Sweep a range of seeds, `A..B` (B excluded), and print a summary.
    #[arg(long, value_name = "A..B")]
    seeds: Option<String>,
    /// With --seed: write a readable log of every event to FILE.
    #[arg(long, value_name = "FILE", requires = "seed")]
    trace: Option<std::path::PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Make f replicas traitors: a behaviour name (silent, equivocate,
    /// double-vote, forge, replay, view-change-liar, slow-primary, flood,
    /// selective, collude) for all of them, or `mixed` for one drawn per
    /// traitor; `mixed-below-bound` makes f − 1 mixed traitors, leaving room
    /// in the fault bound for damaged disks (with f traitors, restarts keep
    /// their disks).
    #[arg(long, value_name = "BEHAVIOUR|mixed|mixed-below-bound")]
    traitors: Option<String>,
}

fn parse_traitors(text: Option<&str>) -> Result<TraitorSelection> {
    Ok(match text {
        None => TraitorSelection::None,
        Some("mixed") => TraitorSelection::Mixed,
        Some("mixed-below-bound") => TraitorSelection::MixedBelowBound,
        Some(name) => TraitorSelection::Uniform(name.parse::<Behavior>().context("--traitors")?),
    })
}

fn parse_range(text: &str) -> Result<std::ops::Range<u64>> {
    let (a, b) = text.split_once("..").with_context(|| format!("--seeds expects A..B, found {text:?}"))?;
    let a: u64 = a.trim().parse().with_context(|| format!("--seeds: {a:?} is not a seed"))?;
    let b: u64 = b.trim().parse().with_context(|| format!("--seeds: {b:?} is not a seed"))?;
    if b <= a {
        bail!("--seeds {a}..{b} is empty: the end is excluded and must exceed the start");
    }
    Ok(a..b)
}

/// The command that replays `report`'s run, traitor flag included.
fn replay_command(report: &SimReport, flag: &str) -> String {
    format!("{}{flag}", report.replay_command())
}

fn report_json(report: &SimReport, flag: &str) -> serde_json::Value {
    serde_json::json!({
        "seed": report.profile.seed,
        "profile": report.profile.to_string(),
        "n": report.profile.n,
        "passed": report.passed(),
        "checkers": report.verdicts.iter().map(|v| serde_json::json!({
            "name": v.name,
            "passed": v.passed(),
            "violation": v.violation,
        })).collect::<Vec<_>>(),
        "conflicting_seq": report.conflicting_seq,
        "completed": report.completed,
        "issued": report.issued,
        "max_view": report.max_view,
        "end_ms": report.end_ms,
        "trace_hash": report.trace_hash.to_string(),
        "traitors": report.traitors.iter().map(|(id, b)| serde_json::json!({"replica": id.0, "behavior": b.name()})).collect::<Vec<_>>(),
        "disk_faults": report.disk_faults.iter().map(|(at, id, d)| serde_json::json!({"at_ms": at, "replica": id.0, "fault": d.to_string()})).collect::<Vec<_>>(),
        "replay": replay_command(report, flag),
    })
}

/// Runs `pbft sim`.
pub fn run(args: SimArgs) -> Result<ExitCode> {
    let traitors = parse_traitors(args.traitors.as_deref())?;
    let flag = args.traitors.as_deref().map(|t| format!(" --traitors {t}")).unwrap_or_default();
    let options = SimOptions { trace: args.trace.is_some(), traitors, ..SimOptions::default() };
    match (args.seed, &args.seeds) {
        (Some(seed), _) => run_one(seed, args.trace.as_deref(), args.json, &options, &flag),
        (None, Some(range)) => sweep(parse_range(range)?, args.json, &options, &flag),
        (None, None) => bail!("give --seed S to replay one run or --seeds A..B to sweep"),
    }
}

fn run_one(
    seed: u64,
    trace_file: Option<&std::path::Path>,
    json: bool,
    options: &SimOptions,
    flag: &str,
) -> Result<ExitCode> {
    let (report, trace) = simulate::<KvWorkload>(seed, options);
    if let Some(path) = trace_file {
        std::fs::write(path, trace.join("\n") + "\n")
            .with_context(|| format!("--trace: cannot write {}", path.display()))?;
    }
    if json {
        println!("{}", report_json(&report, flag));
    } else {
        print!("{report}");
        if !report.passed() && !flag.is_empty() {
            println!("  (with traitors: {})", replay_command(&report, flag));
        }
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn sweep(seeds: std::ops::Range<u64>, json: bool, options: &SimOptions, flag: &str) -> Result<ExitCode> {
    let total = seeds.end - seeds.start;
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut sizes = [0u64; 2];
    // A bar redrawn in place only where a person watches it: on a terminal
    // and without --json; into a file or pipe it would be thousands of
    // redraws, and the summary line says everything at the end.
    let bar = !json && std::io::stderr().is_terminal();
    for (done, seed) in seeds.clone().enumerate() {
        let (report, _) = simulate::<KvWorkload>(seed, options);
        sizes[usize::from(report.profile.n == 7)] += 1;
        if !report.passed() {
            if !json {
                if bar {
                    eprint!("\r");
                }
                print!("{report}");
            }
            failures.push(report);
        }
        if bar {
            progress(done as u64 + 1, total, failures.len());
        }
    }
    if bar {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    let per_minute = total as f64 * 60.0 / seconds.max(1e-9);
    if json {
        let summary = serde_json::json!({
            "seeds": [seeds.start, seeds.end],
            "runs": total,
            "n4_runs": sizes[0],
            "n7_runs": sizes[1],
            "failed": failures.iter().map(|r| report_json(r, flag)).collect::<Vec<_>>(),
            "seconds": seconds,
            "seeds_per_minute": per_minute,
        });
        println!("{summary}");
    } else {
        println!(
            "{} seeds ({} with n=4, {} with n=7): {} passed, {} failed in {:.1} s ({:.0} seeds/minute)",
            total,
            sizes[0],
            sizes[1],
            total as usize - failures.len(),
            failures.len(),
            seconds,
            per_minute
        );
        for failure in &failures {
            println!("  replay: {}", replay_command(failure, flag));
        }
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A one-line progress bar on standard error.
fn progress(done: u64, total: u64, failed: usize) {
    const WIDTH: u64 = 40;
    let filled = (done * WIDTH / total.max(1)) as usize;
    let bar = "#".repeat(filled) + &".".repeat(WIDTH as usize - filled);
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r[{bar}] {done}/{total} seeds, {failed} failed");
    let _ = stderr.flush();
}
