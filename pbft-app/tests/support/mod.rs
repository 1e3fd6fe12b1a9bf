//! Real `pbft` processes on 127.0.0.1 for the cluster tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test helpers: a panic is a failed test

use pbft_app::cluster_config::ClusterConfig;
use pbft_app::node::cluster_status;
use pbft_core::ClientId;
use pbft_net::NodeStatus;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `pbft` binary under test.
pub fn pbft() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pbft"))
}

/// A fresh folder under cargo's test scratch space.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` consecutive UDP ports on 127.0.0.1 that are free right now.
fn free_port_run(n: usize, salt: u64) -> u16 {
    let mut candidate = 20_000 + ((u64::from(std::process::id()) * 97 + salt * 7_919) % 30_000) as u16;
    loop {
        let sockets: Vec<_> = (0..n as u16).map(|i| UdpSocket::bind(("127.0.0.1", candidate + i))).collect();
        if sockets.iter().all(Result::is_ok) {
            return candidate;
        }
        candidate = 20_000 + (candidate - 20_000 + 101) % 30_000;
    }
}

/// `pbft init` into a scratch folder, with `protocol` lines added to the
/// `[protocol]` section. Returns the config path.
pub fn init_cluster(name: &str, n: usize, protocol: &str) -> PathBuf {
    init_app_cluster(name, n, protocol, "kv")
}

/// [`init_cluster`] for the application `app` (`kv`, `bank`, `counter`).
pub fn init_app_cluster(name: &str, n: usize, protocol: &str, app: &str) -> PathBuf {
    let dir = scratch(name);
    let salt = name.bytes().map(u64::from).sum();
    let base = free_port_run(n, salt);
    let status = pbft()
        .args(["init", "--app", app, "--replicas", &n.to_string(), "--base-port", &base.to_string()])
        // Tests that scrape metrics choose free TCP ports of their own.
        .args(["--no-metrics", "--dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pbft init failed");
    let path = dir.join("cluster.toml");
    let text =
        std::fs::read_to_string(&path).unwrap().replace("[protocol]\n", &format!("[protocol]\n{protocol}\n"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A fresh directory under the system's temp directory, removed when dropped:
/// tests never write data into the repository.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `name`.
    pub fn new(name: &str) -> TempDir {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pbft-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replica processes started one by one, killed when dropped, with their
/// data in a temporary directory of their own (kept across restarts of one
/// replica, removed when dropped).
pub struct Replicas {
    config: PathBuf,
    children: Vec<Option<Child>>,
    /// The data directory every replica of this cluster uses (`--data-dir`).
    pub data: TempDir,
}

impl Replicas {
    /// Starts every replica of `config` as its own `pbft replica` process.
    pub fn start_all(config: &Path, n: usize) -> Replicas {
        let mut replicas = Replicas::new(config, n);
        for id in 0..n {
            replicas.start(id);
        }
        replicas
    }

    /// The `n` replicas of `config`, none started yet.
    pub fn new(config: &Path, n: usize) -> Replicas {
        Replicas {
            config: config.to_path_buf(),
            children: (0..n).map(|_| None).collect(),
            data: TempDir::new("replicas"),
        }
    }

    /// Starts replica `id` (with empty memory, from what its data directory holds).
    pub fn start(&mut self, id: usize) {
        self.start_with(id, &[]);
    }

    /// Deletes replica `id`'s data directory (a lost disk); it must be stopped.
    pub fn wipe(&mut self, id: usize) {
        assert!(self.children[id].is_none(), "replica {id} is running");
        let _ = std::fs::remove_dir_all(self.data.0.join(format!("replica-{id}")));
    }

    /// Starts replica `id` (with empty memory, from what its data directory
    /// holds) with more `pbft replica` options.
    pub fn start_with(&mut self, id: usize, options: &[&str]) {
        assert!(self.children[id].is_none(), "replica {id} is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(id)).unwrap();
        let child = pbft()
            .args(["replica", "--config"])
            .arg(&self.config)
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(&self.data.0)
            .args(options)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[id] = Some(child);
    }

    /// Where replica `id`'s standard error goes (appended across restarts).
    pub fn log_path(&self, id: usize) -> PathBuf {
        let stem = self.config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let parent = self.config.parent().and_then(Path::file_name).map(|s| s.to_string_lossy().into_owned());
        let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replica-logs");
        std::fs::create_dir_all(&logs).unwrap();
        logs.join(format!("{}-{stem}-replica-{id}.log", parent.unwrap_or_default()))
    }

    /// SIGKILLs replica `id`.
    pub fn kill(&mut self, id: usize) {
        let mut child = self.children[id].take().expect("replica is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls every replica's status until `done` holds of the answers, or fails
/// the test after `limit` with the last answers.
pub async fn wait_for_status(
    config: &ClusterConfig,
    limit: Duration,
    what: &str,
    done: impl Fn(&[Option<NodeStatus>]) -> bool,
) -> Vec<Option<NodeStatus>> {
    let start = Instant::now();
    loop {
        let statuses = cluster_status(config, ClientId(3), Duration::from_millis(500)).await.unwrap();
        if done(&statuses) {
            return statuses;
        }
        assert!(start.elapsed() < limit, "after {limit:?}, still not {what}: {statuses:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every replica answers and reaches all its peers. A replica that dialled a
/// peer before it listened waits about a second for QUIC to resend its
/// handshake; a test that started its requests earlier could see messages
/// late or lost on that link (the fork test then saw a view change merge the
/// two halves instead of a fork, once, under CI load).
pub fn all_up(statuses: &[Option<NodeStatus>]) -> bool {
    let peers = statuses.len().saturating_sub(1) as u64;
    statuses.iter().all(|s| s.as_ref().is_some_and(|s| s.net.links_up >= peers))
}

/// Whether the replicas in `which` all answered with the same last executed
/// sequence number and state digest.
pub fn same_state(statuses: &[Option<NodeStatus>], which: &[usize]) -> bool {
    let picked: Vec<_> = which.iter().map(|&i| statuses[i].as_ref()).collect();
    let Some(Some(first)) = picked.first() else { return false };
    picked.iter().all(|s| {
        s.is_some_and(|s| s.last_executed == first.last_executed && s.state_digest == first.state_digest)
    })
}
