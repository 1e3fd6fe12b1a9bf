//! `pbft init`: writes a new cluster config and fresh keys.

use crate::config_file::load;
use anyhow::Context;
use clap::Args;
use pbft_app::cluster_config::{AppKind, NewCluster};
use pbft_app::keyfile;
use pbft_core::{ProtocolConfig, PublicKey};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `pbft init`: writes a cluster config and fresh keys.
#[derive(Args)]
pub struct InitArgs {
    /// Number of replicas (n = 3f+1 tolerates f traitors: 4, 7, 10, …).
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// Number of client identities to create.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// Replica i listens on UDP port base-port + i.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// The IP address replicas listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Folder to write cluster.toml and keys/ into (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// The application the replicas run.
    #[arg(long, value_enum, default_value_t = AppArg::Kv)]
    app: AppArg,
    /// Replica i serves Prometheus metrics on TCP port metrics-base-port + i
    /// of --host (`metrics_address`). Default: base-port + 2000 (7100 → 9100).
    #[arg(long, conflicts_with = "no_metrics")]
    metrics_base_port: Option<u16>,
    /// Write no metrics addresses: the replicas serve no metrics.
    #[arg(long)]
    no_metrics: bool,
}

/// Writes `dir/cluster.toml` with fresh keys in `dir/keys/`.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let f = args.replicas.saturating_sub(1) / 3;
    anyhow::ensure!(args.replicas >= 1, "--replicas: need at least one replica");
    let last_port = usize::from(args.base_port) + args.replicas - 1;
    anyhow::ensure!(
        args.base_port > 0 && last_port <= 65_535,
        "--base-port: ports {}..={last_port} do not fit in 1-65535",
        args.base_port
    );
    let metrics_addresses = if args.no_metrics {
        Vec::new()
    } else {
        let metrics_base = args.metrics_base_port.map_or(usize::from(args.base_port) + 2000, usize::from);
        let last = metrics_base + args.replicas - 1;
        anyhow::ensure!(
            metrics_base > 0 && last <= 65_535,
            "--metrics-base-port: ports {metrics_base}..={last} do not fit in 1-65535 (choose one, or --no-metrics)"
        );
        (0..args.replicas)
            .map(|id| {
                std::net::SocketAddr::new(args.host, u16::try_from(metrics_base + id).unwrap_or(u16::MAX))
            })
            .collect()
    };
    let config_path = args.dir.join("cluster.toml");
    anyhow::ensure!(!config_path.exists(), "{} already exists; choose another --dir", config_path.display());
    let keys_dir = PathBuf::from("keys");
    let keys = args.dir.join(&keys_dir);
    let mut replicas = Vec::new();
    for id in 0..args.replicas {
        let port = usize::from(args.base_port) + id;
        let address = std::net::SocketAddr::new(args.host, u16::try_from(port).unwrap_or(u16::MAX));
        replicas.push((address, fresh_key(&keys.join(format!("replica-{id}.key")))?));
    }
    let mut clients = Vec::new();
    for id in 0..args.clients {
        clients.push(fresh_key(&keys.join(format!("client-{id}.key")))?);
    }
    let new = NewCluster {
        f,
        keys_dir,
        app: args.app.into(),
        protocol: ProtocolConfig::default(),
        replicas,
        clients,
        metrics_addresses,
    };
    let toml = new.to_toml()?;
    std::fs::write(&config_path, toml).with_context(|| format!("cannot write {}", config_path.display()))?;
    load(&config_path)?;
    println!(
        "wrote {} ({} replicas, f = {f}, {} clients)",
        config_path.display(),
        args.replicas,
        args.clients
    );
    println!("start it with: pbft up --config {}", config_path.display());
    Ok(ExitCode::SUCCESS)
}

/// Creates a secret key file at `path` (which must not exist yet) and
/// returns its public key.
fn fresh_key(path: &Path) -> anyhow::Result<PublicKey> {
    anyhow::ensure!(!path.exists(), "{} already exists", path.display());
    keyfile::create_secret(path)?;
    Ok(keyfile::read_secret(path)?.public())
}

/// `--app`: the applications a config can name, as the command line offers
/// them (the library's [`AppKind`] knows nothing of command lines).
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum AppArg {
    /// The key-value store (`pbft kv`).
    Kv,
    /// The bank ledger (`pbft bank`).
    Bank,
    /// The counter.
    Counter,
}

impl From<AppArg> for AppKind {
    fn from(app: AppArg) -> AppKind {
        match app {
            AppArg::Kv => AppKind::Kv,
            AppArg::Bank => AppKind::Bank,
            AppArg::Counter => AppKind::Counter,
        }
    }
}
