//! `pbft init`: writes a new cluster config and fresh keys.

use crate::config_file::load;
use anyhow::Context;
use clap::Args;
use pbft_app::cluster_config::{AppKind, NewCluster};
use pbft_app::keyfile;
use pbft_core::{ProtocolConfig, PublicKey};
use std::net::{IpAddr, SocketAddr};
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
    /// Replica i listens on UDP port base-port + i of --host; with --hosts,
    /// every replica listens on base-port itself, each on its own machine.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// The IP address every replica listens on: the whole cluster on one
    /// machine (for one replica per machine, see --hosts).
    #[arg(long, default_value = "127.0.0.1", conflicts_with = "hosts")]
    host: IpAddr,
    /// One IP address per replica, comma-separated, in id order: replica i
    /// runs on the machine at hosts[i] and listens on hosts[i]:base-port
    /// (one replica per machine; docs/deploying.md). As many addresses as
    /// --replicas, each once; IP addresses, not host names.
    #[arg(long, value_delimiter = ',', value_name = "IP,IP,...", conflicts_with = "host")]
    hosts: Vec<IpAddr>,
    /// Folder to write cluster.toml and keys/ into (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// The application the replicas run.
    #[arg(long, value_enum, default_value_t = AppArg::Kv)]
    app: AppArg,
    /// Replica i serves Prometheus metrics on TCP port metrics-base-port + i
    /// of --host, or on metrics-base-port of hosts[i] with --hosts
    /// (`metrics_address`). Default: base-port + 2000 (7100 → 9100).
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
    let placement = Placement::of(&args)?;
    let last_port = usize::from(args.base_port) + placement.last_offset();
    anyhow::ensure!(
        args.base_port > 0 && last_port <= 65_535,
        "--base-port: ports {}..={last_port} do not fit in 1-65535",
        args.base_port
    );
    let metrics_addresses = if args.no_metrics {
        Vec::new()
    } else {
        let metrics_base = args.metrics_base_port.map_or(usize::from(args.base_port) + 2000, usize::from);
        let last = metrics_base + placement.last_offset();
        anyhow::ensure!(
            metrics_base > 0 && last <= 65_535,
            "--metrics-base-port: ports {metrics_base}..={last} do not fit in 1-65535 (choose one, or --no-metrics)"
        );
        (0..args.replicas).map(|id| placement.address(id, metrics_base)).collect()
    };
    let config_path = args.dir.join("cluster.toml");
    anyhow::ensure!(!config_path.exists(), "{} already exists; choose another --dir", config_path.display());
    let keys_dir = PathBuf::from("keys");
    let keys = args.dir.join(&keys_dir);
    let mut replicas = Vec::new();
    for id in 0..args.replicas {
        let address = placement.address(id, usize::from(args.base_port));
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
    if placement.one_machine_each() {
        println!(
            "on replica N's machine: pbft replica --config {} --id N (docs/deploying.md: which key files go where)",
            config_path.display()
        );
    } else {
        println!("start it with: pbft up --config {}", config_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the replicas run: every one on one machine (`--host`), replica i
/// on port base + i, or each on a machine of its own (`--hosts`), every one
/// on port base.
struct Placement {
    /// Replica i's IP address, in id order.
    hosts: Vec<IpAddr>,
    /// How far replica i's port is from the base port, per id: 1 on one
    /// machine, 0 on a machine each.
    port_step: usize,
}

impl Placement {
    /// The placement `args` asks for, checked: `--hosts` names one address
    /// per replica, none twice, all of one IP family.
    fn of(args: &InitArgs) -> anyhow::Result<Placement> {
        if args.hosts.is_empty() {
            return Ok(Placement { hosts: vec![args.host; args.replicas], port_step: 1 });
        }
        anyhow::ensure!(
            args.hosts.len() == args.replicas,
            "--hosts: expected one address per replica ({} for --replicas {}), found {}",
            args.replicas,
            args.replicas,
            args.hosts.len()
        );
        for (id, host) in args.hosts.iter().enumerate() {
            if let Some(first) = args.hosts[..id].iter().position(|h| h == host) {
                anyhow::bail!(
                    "--hosts: {host} is listed for replicas {first} and {id}; with --hosts every replica \
                     listens on --base-port, so each needs an address of its own"
                );
            }
        }
        if let Some(other) = args.hosts.iter().position(|h| h.is_ipv4() != args.hosts[0].is_ipv4()) {
            anyhow::bail!(
                "--hosts: replica 0's address {} and replica {other}'s {} are of different IP families; a \
                 client dials every replica from one socket, so use all IPv4 or all IPv6",
                args.hosts[0],
                args.hosts[other]
            );
        }
        Ok(Placement { hosts: args.hosts.clone(), port_step: 0 })
    }

    /// Whether each replica has a machine of its own.
    fn one_machine_each(&self) -> bool {
        self.port_step == 0
    }

    /// The largest distance from the base port of any replica's port.
    fn last_offset(&self) -> usize {
        self.hosts.len().saturating_sub(1) * self.port_step
    }

    /// Replica `id`'s address for a port numbering that starts at `base`
    /// (the caller has checked that every port fits).
    fn address(&self, id: usize, base: usize) -> SocketAddr {
        let port = u16::try_from(base + id * self.port_step).unwrap_or(u16::MAX);
        SocketAddr::new(self.hosts[id], port)
    }
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
