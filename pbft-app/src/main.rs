//! The `pbft` command: run and inspect PBFT clusters.

mod demo;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(demo) => demo.run(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
