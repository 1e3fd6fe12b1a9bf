//! `pbft-testnet`: a local pbft cluster whose replicas run on hosts of their
//! own (network namespaces), with WAN-like links between them, so a user can
//! watch and measure a cluster spread over regions on one machine.
//!
//! Needs root, `ip` and `iptables` (see the pbft-testnet crate's docs).

use anyhow::{Context, Result};
use clap::Parser;
use pbft_testnet::{Link, NetCluster};
use std::process::Stdio;
use std::time::Duration;

/// Starts n replicas, each on its own network namespace, with the given delay,
/// jitter and loss on every link, plus a host for clients; then either runs
/// `pbft bench` from the clients' host and stops, or waits for Ctrl-C.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Example: sudo pbft-testnet --replicas 4 --delay-ms 25 --jitter-ms 5 --loss 1 --bench '--clients 16 --duration 10'"
)]
struct Args {
    /// Replicas (n = 3f + 1).
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// One-way delay of every link, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// The largest deviation from the delay, either way, in milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Percentage of packets lost on every link (0-100).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// A `[protocol]` line to add to the generated config (repeatable),
    /// e.g. --protocol view_change_timeout_ms=2000.
    #[arg(long = "protocol", value_name = "NAME = VALUE")]
    protocol: Vec<String>,
    /// Run `pbft bench --config <the cluster's config> ARGS` on the clients'
    /// host, print its result and stop the cluster.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    bench: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(0.0..=100.0).contains(&args.loss) {
        anyhow::bail!("--loss is a percentage from 0 to 100, not {}", args.loss);
    }
    let mut cluster = NetCluster::new(args.replicas, &args.protocol.join("\n"))?;
    let link =
        Link::wan(Duration::from_millis(args.delay_ms), Duration::from_millis(args.jitter_ms), args.loss);
    cluster.net.set_all_links(link)?;
    cluster.start_all()?;
    let clients = cluster.net.namespace_name(cluster.client_host()).to_string();
    let config = cluster.config_path().display().to_string();
    println!("{} replicas on hosts 10.77.0.1-{}; every link {link:?}", args.replicas, args.replicas);
    println!("config: {config}");
    for i in 0..args.replicas {
        println!("replica {i} log: {}", cluster.log_path(i).display());
    }
    match args.bench {
        Some(bench) => {
            let pbft = pbft_testnet::net::sibling_binary("pbft")?;
            let status = cluster
                .net
                .command(cluster.client_host(), pbft)
                .args(["bench", "--config", &config])
                .args(bench.split_whitespace())
                .stdin(Stdio::null())
                .status()
                .context("running pbft bench on the clients' host")?;
            anyhow::ensure!(status.success(), "pbft bench failed: {status}");
        }
        None => {
            println!("clients: sudo ip netns exec {clients} pbft kv --config {config} put hello world");
            println!("Ctrl-C stops the cluster and removes its namespaces.");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(tokio::signal::ctrl_c())?;
        }
    }
    Ok(())
}
