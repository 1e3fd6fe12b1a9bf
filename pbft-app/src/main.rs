//! The `pbft` command: run and inspect PBFT clusters.

mod demo;
mod sim;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Byzantine fault-tolerant state-machine replication (PBFT).
#[derive(Parser)]
#[command(name = "pbft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Demonstrations on the deterministic in-memory simulator.
    #[command(subcommand)]
    Demo(demo::Demo),
    /// Runs the deterministic simulator: one seed (`--seed S`) or a sweep
    /// (`--seeds A..B`), with faults, then checks safety and liveness.
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(demo) => demo.run(),
        Command::Sim(args) => sim::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
