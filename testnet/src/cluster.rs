//! A pbft cluster on the test network: replica `i` is a real `pbft replica`
//! process on host `i`, and the last host is the clients'.

use crate::net::{sibling_binary, NetError, Testnet};
use anyhow::{bail, Context, Result};
use pbft_app::cluster_config::ClusterConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// Client identities the config has: ids 0..CLIENTS.
pub const CLIENTS: u64 = 16;

/// The port every replica listens on, each on its own host's address.
const PORT: u16 = 7000;

/// `n` replicas, one per host, and a host for clients.
pub struct NetCluster {
    children: Vec<Option<Child>>,
    /// The network; dropped after the replicas.
    pub net: Testnet,
    dir: PathBuf,
    config: PathBuf,
}

impl NetCluster {
    /// Writes a config for `n` replicas on hosts 0..n (with `protocol` lines
    /// added to its `[protocol]` section) and builds the network; starts no
    /// replica.
    pub fn new(n: usize, protocol: &str) -> Result<NetCluster, NetError> {
        let net = Testnet::new(n + 1)?;
        let dir = std::env::temp_dir().join(format!("pbft-testnet-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).context("creating the cluster's temp folder")?;
        let config = write_config(&net, n, &dir, protocol)?;
        Ok(NetCluster { children: (0..n).map(|_| None).collect(), net, dir, config })
    }

    /// How many replicas the cluster has.
    pub fn n(&self) -> usize {
        self.children.len()
    }

    /// The host clients run on.
    pub fn client_host(&self) -> usize {
        self.n()
    }

    /// The cluster's config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The cluster's config.
    pub fn config(&self) -> Result<ClusterConfig> {
        ClusterConfig::load(&self.config).with_context(|| format!("loading {}", self.config.display()))
    }

    /// Where replica `i` writes its log (appended across restarts).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("replica-{i}.log"))
    }

    /// Starts every replica.
    pub fn start_all(&mut self) -> Result<()> {
        (0..self.n()).try_for_each(|i| self.start(i))
    }

    /// Starts replica `i` on its host, from what its data directory holds.
    pub fn start(&mut self, i: usize) -> Result<()> {
        if self.children[i].is_some() {
            bail!("replica {i} is already running");
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(i))?;
        let child = self
            .net
            .command(i, sibling_binary("pbft")?)
            .args(["replica", "--id", &i.to_string(), "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting replica {i}"))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// SIGKILLs replica `i`.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let mut child = self.children[i].take().with_context(|| format!("replica {i} is not running"))?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGSTOPs replica `i`: it stays connected at the socket level and
    /// answers nothing until [`NetCluster::resume`].
    pub fn pause(&self, i: usize) -> Result<()> {
        self.signal(i, nix::sys::signal::Signal::SIGSTOP)
    }

    /// SIGCONTs replica `i`.
    pub fn resume(&self, i: usize) -> Result<()> {
        self.signal(i, nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, i: usize, signal: nix::sys::signal::Signal) -> Result<()> {
        let child = self.children[i].as_ref().with_context(|| format!("replica {i} is not running"))?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, signal).with_context(|| format!("sending {signal} to replica {i}"))
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("the failed test's replica logs and data are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `pbft init --hosts` for `n` replicas, replica `i` on host `i`, with
/// `protocol` added to the `[protocol]` section.
fn write_config(net: &Testnet, n: usize, dir: &Path, protocol: &str) -> Result<PathBuf> {
    let hosts: Vec<String> = (0..n).map(|i| net.address(i).to_string()).collect();
    let output = std::process::Command::new(sibling_binary("pbft")?)
        .args(["init", "--app", "kv", "--replicas", &n.to_string(), "--clients", &CLIENTS.to_string()])
        .args(["--hosts", &hosts.join(","), "--base-port", &PORT.to_string(), "--no-metrics", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .context("running pbft init")?;
    if !output.status.success() {
        bail!("pbft init failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let path = dir.join("cluster.toml");
    let text = std::fs::read_to_string(&path)?.replace("[protocol]\n", &format!("[protocol]\n{protocol}\n"));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
