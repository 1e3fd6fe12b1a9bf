//! The commands that make and run real clusters: init, check, replica, up,
//! kv and status.

use anyhow::Context;
use clap::{Args, Subcommand};
use pbft_app::apps::bank::{Bank, BankOp, BankQuery, BankResult};
use pbft_app::apps::kv::{KvOp, KvQuery, KvResult, KvStore};
use pbft_app::cluster_config::{AppKind, ClusterConfig};
use pbft_app::keyfile;
use pbft_app::node::{agreement, cluster_status, run_replica_node, Agreement};
use pbft_app::{BlockingClient, StateMachine};
use pbft_core::{ClientId, ReplicaId};
use pbft_net::NodeStatus;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

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
    #[arg(long, value_enum, default_value_t = AppKind::Kv)]
    app: AppKind,
}

/// `pbft check`, `pbft up`: a config file.
#[derive(Args)]
pub struct ConfigArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
}

/// `pbft replica`: run one replica in the foreground.
#[derive(Args)]
pub struct ReplicaArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Which replica of the config to run.
    #[arg(long)]
    id: u32,
    /// Threads of the replica's async runtime. With 1 (the default) the
    /// protocol, QUIC and signature checks share one thread, which was the
    /// fastest where replicas share cores (BENCHMARKS.md: four replicas on
    /// two cores, +12 % throughput and -28 % median latency against a
    /// runtime with a thread per core). More threads let a replica with
    /// cores of its own spread its QUIC work over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Stop when standard input closes (how `pbft up` makes sure its replicas
    /// never outlive it).
    #[arg(long, hide = true)]
    stop_when_stdin_closes: bool,
}

/// `pbft up`: run every replica of a config on this machine.
#[derive(Args)]
pub struct UpArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Print the cluster's status every this many seconds (0: only once, at start).
    #[arg(long, default_value_t = 10)]
    status_every: u64,
}

/// What every client command needs: the cluster, who to be, how long to wait.
#[derive(Args)]
pub struct ClientArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The client identity to use (one process per identity at a time).
    #[arg(long, default_value_t = 0)]
    client: u64,
    /// Give up after this many seconds without f+1 matching replies.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
}

/// `pbft kv`: one operation on the replicated key-value store (`get` exits
/// with code 1 when the key has no value).
#[derive(Args)]
pub struct KvArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    op: KvCommand,
}

/// One key-value operation or query, as typed on the command line.
#[derive(Subcommand)]
pub enum KvCommand {
    /// Operations (ordered).
    #[command(flatten)]
    Op(KvOp),
    /// Queries (read-only).
    #[command(flatten)]
    Query(KvQuery),
}

/// `pbft bank`: one operation on the replicated bank ledger (refusals, such
/// as an overdraft, exit with code 1 and change nothing).
#[derive(Args)]
pub struct BankArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    op: BankCommand,
}

/// One bank operation or query, as typed on the command line.
#[derive(Subcommand)]
pub enum BankCommand {
    /// Operations (ordered).
    #[command(flatten)]
    Op(BankOp),
    /// Queries (read-only).
    #[command(flatten)]
    Query(BankQuery),
}

/// `pbft status`: every replica's progress, and whether they agree.
#[derive(Args)]
pub struct StatusArgs {
    /// The cluster config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The client identity to ask as.
    #[arg(long, default_value_t = 0)]
    client: u64,
    /// How long to wait for replicas to answer.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// An async runtime on one thread, or on a pool of `threads`: what a replica
/// process and the bench's load generator run on.
pub(crate) fn runtime_on(threads: u16) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut pool = tokio::runtime::Builder::new_multi_thread();
        pool.worker_threads(usize::from(threads));
        pool
    };
    builder.enable_all().build().context("cannot start the async runtime")
}

pub(crate) fn load(path: &Path) -> anyhow::Result<ClusterConfig> {
    Ok(ClusterConfig::load(path)?)
}

/// Writes `dir/cluster.toml` with fresh keys in `dir/keys/`.
pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let f = args.replicas.saturating_sub(1) / 3;
    anyhow::ensure!(args.replicas >= 1, "--replicas: need at least one replica");
    let last_port = usize::from(args.base_port) + args.replicas - 1;
    anyhow::ensure!(
        args.base_port > 0 && last_port <= 65_535,
        "--base-port: ports {}..={last_port} do not fit in 1-65535",
        args.base_port
    );
    let config_path = args.dir.join("cluster.toml");
    anyhow::ensure!(!config_path.exists(), "{} already exists; choose another --dir", config_path.display());
    let keys = args.dir.join("keys");
    let mut toml = format!(
        "# Written by `pbft init`. n = {n} replicas tolerate f = {f} traitors.\n\
         # Secret keys are in keys/; share only this file's public keys.\n\n\
         [cluster]\nf = {f}\nkeys_dir = \"keys\"\napp = \"{app}\"\n\n[protocol]\n\n",
        n = args.replicas,
        app = args.app.name()
    );
    for id in 0..args.replicas {
        let path = keys.join(format!("replica-{id}.key"));
        let public = fresh_key(&path)?;
        let port = usize::from(args.base_port) + id;
        let address = std::net::SocketAddr::new(args.host, u16::try_from(port).unwrap_or(u16::MAX));
        toml.push_str(&format!(
            "[[replica]]\nid = {id}\naddress = \"{address}\"\npublic_key = \"{public}\"\n\n"
        ));
    }
    for id in 0..args.clients {
        let public = fresh_key(&keys.join(format!("client-{id}.key")))?;
        toml.push_str(&format!("[[client]]\nid = {id}\npublic_key = \"{public}\"\n\n"));
    }
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

fn fresh_key(path: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(!path.exists(), "{} already exists", path.display());
    keyfile::create_secret(path)?;
    Ok(keyfile::public_key_hex(&keyfile::read_secret(path)?.public()))
}

/// Checks a config and summarises it.
pub fn check(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    println!(
        "{}: cluster `{}` running {}: n = {} replicas, f = {}, {} clients, {} traitors: ok",
        args.config.display(),
        config.name,
        config.app.name(),
        config.n(),
        config.f,
        config.clients.len(),
        config.traitors.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs one replica until Ctrl-C, SIGTERM or (when asked) the end of stdin.
pub fn replica(args: ReplicaArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    let id = ReplicaId(args.id);
    anyhow::ensure!(
        id.index() < config.n(),
        "--id: the config has replicas 0 to {}, not {}",
        config.n() - 1,
        args.id
    );
    runtime_on(args.threads)?.block_on(async {
        let shutdown = shutdown_signal(args.stop_when_stdin_closes);
        run_replica_node(&config, id, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal(watch_stdin: bool) {
    let stdin_closed = async {
        if !watch_stdin {
            return std::future::pending().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 64];
        while let Ok(read) = tokio::io::AsyncReadExt::read(&mut stdin, &mut buffer).await {
            if read == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
        _ = stdin_closed => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}

/// Replica processes started on this machine. Dropping it stops them: their
/// stdin lifelines close and the children are killed.
pub(crate) struct LocalReplicas {
    /// Each replica's id and process.
    pub(crate) children: Vec<(ReplicaId, tokio::process::Child)>,
    /// The write ends of their stdin: a replica stops when its end closes.
    pub(crate) lifelines: Vec<Option<tokio::process::ChildStdin>>,
}

impl LocalReplicas {
    /// Stops the replicas and returns once every process has exited, so
    /// that their ports are free: closes their lifelines, then kills any
    /// replica still running after `grace`.
    pub(crate) async fn stop(self, grace: Duration) {
        let LocalReplicas { children, lifelines } = self;
        drop(lifelines);
        for (id, mut child) in children {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                if let Err(error) = child.kill().await {
                    eprintln!("warning: cannot stop replica {}: {error}", id.0);
                }
            }
        }
    }
}

/// Starts every replica of the config at `path` as a `pbft replica` child
/// process. Must run inside a tokio runtime.
pub(crate) fn spawn_replicas(path: &Path, config: &ClusterConfig) -> anyhow::Result<LocalReplicas> {
    let exe = std::env::current_exe().context("cannot find the pbft executable")?;
    let mut children = Vec::new();
    let mut lifelines = Vec::new();
    for replica in &config.replicas {
        let mut command = tokio::process::Command::new(&exe);
        command
            .arg("replica")
            .arg("--config")
            .arg(path)
            .arg("--id")
            .arg(replica.id.0.to_string())
            .arg("--stop-when-stdin-closes")
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true);
        if crate::LOG_JSON.load(std::sync::atomic::Ordering::Relaxed) {
            command.arg("--log-json");
        }
        let mut child = command.spawn().with_context(|| format!("cannot start replica {}", replica.id.0))?;
        lifelines.push(child.stdin.take());
        children.push((replica.id, child));
    }
    Ok(LocalReplicas { children, lifelines })
}

/// Starts every replica as a child process, shows status, stops them all on Ctrl-C or SIGTERM.
pub fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    runtime()?.block_on(async {
        let mut local = spawn_replicas(&args.config, &config)?;
        println!(
            "started {} replicas of `{}` (f = {}); Ctrl-C stops them",
            config.n(),
            config.name,
            config.f
        );
        let client = config.clients[0].id;
        let (mut shown, mut attempts) = (false, 0);
        let mut next_status = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = shutdown_signal(false) => break,
                _ = tokio::time::sleep_until(next_status) => {
                    let statuses = cluster_status(&config, client, Duration::from_secs(1)).await?;
                    attempts += 1;
                    let wait = if statuses.iter().all(Option::is_some) || attempts >= 10 {
                        if !shown || args.status_every > 0 {
                            print_table(&statuses, &config);
                        }
                        shown = true;
                        Duration::from_secs(if args.status_every > 0 { args.status_every } else { 86_400 })
                    } else {
                        Duration::from_millis(500)
                    };
                    next_status = tokio::time::Instant::now() + wait;
                }
                (index, exit) = first_exit(&mut local.children) => {
                    println!("replica {} exited ({exit}); the others keep running", local.children[index].0 .0);
                    local.children.remove(index);
                    if local.children.is_empty() { break; }
                }
            }
        }
        println!("stopping {} replicas", local.children.len());
        local.stop(Duration::from_secs(5)).await;
        println!("all replicas stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for the first child to exit. (Waiting on a tokio child closes its
/// stdin, so the lifelines are kept apart from the children.)
async fn first_exit(children: &mut [(ReplicaId, tokio::process::Child)]) -> (usize, String) {
    if children.is_empty() {
        return std::future::pending().await;
    }
    let waits = children.iter_mut().enumerate().map(|(index, (_, child))| {
        Box::pin(async move {
            let status = child.wait().await;
            (index, status.map_or_else(|e| e.to_string(), |s| s.to_string()))
        })
    });
    futures_select_all(waits).await
}

async fn futures_select_all<F: std::future::Future + Unpin>(
    futures: impl IntoIterator<Item = F>,
) -> F::Output {
    let mut futures: Vec<F> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for future in &mut futures {
            if let std::task::Poll::Ready(output) = std::pin::Pin::new(future).poll(cx) {
                return std::task::Poll::Ready(output);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Loads `path` and checks that its replicas run `app`.
fn load_for(path: &Path, app: AppKind) -> anyhow::Result<ClusterConfig> {
    let config = load(path)?;
    anyhow::ensure!(
        config.app == app,
        "{}: cluster.app is \"{}\"; this command talks to \"{}\" clusters",
        path.display(),
        config.app.name(),
        app.name()
    );
    Ok(config)
}

/// An operation or a read-only query of application `S`.
enum Call<S: StateMachine> {
    Invoke(S::Op),
    Query(S::Query),
}

/// Runs `call` on the `app` cluster `args` names and returns the agreed output.
fn call<S: StateMachine>(args: &ClientArgs, app: AppKind, call: Call<S>) -> anyhow::Result<S::Output> {
    let config = load_for(&args.config, app)?;
    let client = BlockingClient::<S>::connect(&config, ClientId(args.client))?
        .with_timeout(Duration::from_secs(args.timeout_secs));
    Ok(match call {
        Call::Invoke(op) => client.invoke(&op)?,
        Call::Query(query) => client.query(&query)?,
    })
}

/// Runs one bank operation.
pub fn bank(args: BankArgs) -> anyhow::Result<ExitCode> {
    let request = match args.op {
        BankCommand::Op(op) => Call::Invoke(op),
        BankCommand::Query(query) => Call::Query(query),
    };
    match call::<Bank>(&args.client, AppKind::Bank, request)? {
        BankResult::Opened => println!("opened"),
        BankResult::Transferred => println!("transferred"),
        BankResult::Balance(balance) => println!("{balance}"),
        refused => {
            eprintln!("refused: {refused:?}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one key-value operation.
pub fn kv(args: KvArgs) -> anyhow::Result<ExitCode> {
    let request = match args.op {
        KvCommand::Op(op) => Call::Invoke(op),
        KvCommand::Query(query) => Call::Query(query),
    };
    match call::<KvStore>(&args.client, AppKind::Kv, request)? {
        KvResult::Value(Some(value)) => println!("{value}"),
        KvResult::Value(None) => {
            eprintln!("no value for that key");
            return Ok(ExitCode::from(1));
        }
        KvResult::Previous(Some(previous)) => println!("ok (was: {previous})"),
        KvResult::Previous(None) => println!("ok"),
        KvResult::Swapped { swapped, current } => {
            println!(
                "{} (now: {})",
                if swapped { "swapped" } else { "not swapped" },
                current.as_deref().unwrap_or("absent")
            );
            if !swapped {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every replica's status and whether they agree.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    let statuses = runtime()?.block_on(cluster_status(
        &config,
        ClientId(args.client),
        Duration::from_millis(args.timeout_ms),
    ))?;
    let verdict = agreement(&statuses);
    if args.json {
        let report = serde_json::json!({
            "cluster": config.name,
            "replicas": statuses,
            "agreement": verdict,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&statuses, &config);
    }
    let reachable = statuses.iter().flatten().count();
    Ok(if matches!(verdict, Agreement::Agree) && reachable > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_table(statuses: &[Option<NodeStatus>], config: &ClusterConfig) {
    println!("replica  address                 view  mode         links  executed  checkpoint  state digest");
    let peers = config.n().saturating_sub(1);
    for (replica, status) in config.replicas.iter().zip(statuses) {
        match status {
            Some(s) => println!(
                "{:<8} {:<23} {:>4}  {:<11} {:>5}  {:>8}  {:>10}  {}{}",
                s.replica,
                replica.address,
                s.view,
                if s.normal { "normal" } else { "view-change" },
                format!("{}/{peers}", s.net.links_up),
                s.last_executed,
                s.stable_checkpoint,
                short(&s.state_digest),
                config.traitor(ReplicaId(s.replica)).map(|t| format!("  (traitor: {t})")).unwrap_or_default()
            ),
            None => println!("{:<8} {:<23} unreachable", replica.id.0, replica.address),
        }
    }
    match agreement(statuses) {
        Agreement::Agree => {
            println!("agreement: replicas report the same state wherever they can be compared")
        }
        Agreement::Diverged { seq, digests } => {
            println!("DIVERGED at sequence number {seq}:");
            for (digest, replicas) in digests {
                println!("  replicas {replicas:?} hold state {}", short(&digest));
            }
        }
    }
    for status in statuses.iter().flatten() {
        if let Some(disagreement) = &status.disagreement {
            println!(
                "replica {} saw CHECKPOINT DIGESTS DISAGREE at sequence number {} \
                 (a Byzantine replica, or an application that is not deterministic):",
                status.replica, disagreement.seq
            );
            for (digest, replicas) in &disagreement.digests {
                println!("  replicas {replicas:?} signed {}", short(digest));
            }
        }
    }
}

/// The first 16 characters of a digest a replica reported. A replica's
/// answer is peer input: cut by characters, never by bytes, so odd text
/// cannot make the status command panic.
fn short(digest: &str) -> String {
    digest.chars().take(16).collect()
}
