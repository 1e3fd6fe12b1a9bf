//! A network of hosts on one machine: one namespace per host, each joined
//! by a veth pair to a bridge in a hub namespace of its own.
//!
//! Host `i` has address 10.77.0.(i+1)/24 on its `eth0`. No address outside
//! these namespaces is ever used, and the root namespace sees none of their
//! traffic. Faults are set per directed link and applied by rewriting the
//! sending and receiving hosts' iptables rules:
//!
//! - a [`Link`] from `a` to `b` sends `a`'s packets for `b` through an
//!   NFQUEUE that `pbft-netem`, running in `a`'s namespace, delays and drops;
//! - a cut from `a` to `b` drops, in `b`'s INPUT chain, every packet from `a`
//!   (silently, as a lost packet: a drop in `a`'s OUTPUT chain would fail
//!   the sender's `sendmsg` instead).

use crate::link::Link;
use crate::namespace::{self, Namespace};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a test network cannot be built on this machine.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The kernel or the permissions do not allow namespaces, or a tool is
    /// missing: the caller should report itself skipped, naming this reason.
    #[error("network namespaces are not available here: {0}")]
    Unsupported(String),
    /// Building the network failed part way.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The test network. Dropping it stops everything it started and deletes
/// its namespaces.
///
/// Changing a host's links restarts its pbft-netem, which loses the packets
/// it held and lets a few through undelayed until the new one is bound: set
/// links before the load starts. Each pbft-netem dies with the thread that
/// set its links (PR_SET_PDEATHSIG), so a test process killed outright
/// leaves no delayer running; its namespaces and replicas are removed by
/// the next network built ([`namespace::remove_stale`]).
pub struct Testnet {
    /// The hosts, then the hub (dropped last: its bridge outlives the veths).
    hosts: Vec<Namespace>,
    hub: Namespace,
    links: BTreeMap<(usize, usize), Link>,
    cuts: BTreeSet<(usize, usize)>,
    netems: Vec<Option<Child>>,
    seed: u64,
}

/// Numbers the test networks this process builds, for unique names.
static RUNS: AtomicU64 = AtomicU64::new(0);

impl Testnet {
    /// Builds a network of `hosts` hosts (at most 200), every link perfect.
    pub fn new(hosts: usize) -> Result<Testnet, NetError> {
        if hosts == 0 || hosts > 200 {
            return Err(NetError::Failed(anyhow::anyhow!("a test network has 1 to 200 hosts, not {hosts}")));
        }
        preflight()?;
        namespace::remove_stale();
        let run =
            format!("{}{}-{}", namespace::PREFIX, std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
        let hub = Namespace::create(format!("{run}-hub"))?;
        hub.ip(&["link", "add", "br0", "type", "bridge"])?;
        hub.ip(&["link", "set", "br0", "up"])?;
        let mut net = Testnet {
            hosts: Vec::new(),
            hub,
            links: BTreeMap::new(),
            cuts: BTreeSet::new(),
            netems: Vec::new(),
            seed: u64::from(std::process::id()),
        };
        for i in 0..hosts {
            let host = Namespace::create(format!("{run}-{i}"))?;
            let port = format!("h{i}");
            namespace::ip(&[
                "link",
                "add",
                "eth0",
                "netns",
                host.name(),
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                net.hub.name(),
            ])?;
            net.hub.ip(&["link", "set", &port, "master", "br0"])?;
            net.hub.ip(&["link", "set", &port, "up"])?;
            host.ip(&["addr", "add", &format!("{}/24", address(i)), "dev", "eth0"])?;
            host.ip(&["link", "set", "eth0", "up"])?;
            net.hosts.push(host);
            net.netems.push(None);
        }
        Ok(net)
    }

    /// How many hosts the network has.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Host `i`'s address.
    pub fn address(&self, i: usize) -> Ipv4Addr {
        address(i)
    }

    /// A command that runs `program` on host `i`.
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.hosts[i].command(program)
    }

    /// Host `i`'s namespace name (`ip netns exec NAME …` runs a command there).
    pub fn namespace_name(&self, i: usize) -> &str {
        self.hosts[i].name()
    }

    /// Where host `i`'s namespace is mounted: [`enter_namespace`] takes it.
    pub fn netns_path(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.hosts[i].name()))
    }

    /// Sets the link from host `from` to host `to` (one direction).
    pub fn set_link(&mut self, from: usize, to: usize, link: Link) -> Result<()> {
        self.record_link(from, to, link);
        self.apply_netem(from)?;
        self.apply_rules(from)
    }

    /// Remembers the link from `from` to `to` (a perfect one needs no queue).
    fn record_link(&mut self, from: usize, to: usize, link: Link) {
        if link.is_perfect() {
            self.links.remove(&(from, to));
        } else {
            self.links.insert((from, to), link);
        }
    }

    /// Sets every link between two different hosts to `link`.
    pub fn set_all_links(&mut self, link: Link) -> Result<()> {
        for from in 0..self.hosts() {
            for to in (0..self.hosts()).filter(|&to| to != from) {
                self.record_link(from, to, link);
            }
            self.apply_netem(from)?;
            self.apply_rules(from)?;
        }
        Ok(())
    }

    /// Fails if a pbft-netem this network started has exited: its links
    /// would then pass every packet undelayed (`--queue-bypass`), and a
    /// scenario that meant to run over a WAN would not have.
    pub fn check_netems(&mut self) -> Result<()> {
        for (host, netem) in self.netems.iter_mut().enumerate() {
            if let Some(netem) = netem {
                if let Some(status) = netem.try_wait()? {
                    bail!(
                        "host {host}'s pbft-netem exited ({status}): its links stopped delaying and dropping"
                    );
                }
            }
        }
        Ok(())
    }

    /// Cuts the link from `from` to `to`: `to` receives nothing from `from`.
    pub fn cut(&mut self, from: usize, to: usize) -> Result<()> {
        self.cuts.insert((from, to));
        self.apply_rules(to)
    }

    /// Restores the link from `from` to `to`.
    pub fn uncut(&mut self, from: usize, to: usize) -> Result<()> {
        self.cuts.remove(&(from, to));
        self.apply_rules(to)
    }

    /// Partitions the hosts into `sides`: every link between hosts of two
    /// different sides is cut both ways, every other cut is healed. Hosts
    /// named in no side keep their links to everyone.
    pub fn partition(&mut self, sides: &[&[usize]]) -> Result<()> {
        let side_of = |host: usize| sides.iter().position(|side| side.contains(&host));
        self.cuts.clear();
        for from in 0..self.hosts() {
            for to in 0..self.hosts() {
                if let (Some(a), Some(b)) = (side_of(from), side_of(to)) {
                    if a != b {
                        self.cuts.insert((from, to));
                    }
                }
            }
        }
        self.apply_all_rules()
    }

    /// Heals every cut.
    pub fn heal(&mut self) -> Result<()> {
        self.cuts.clear();
        self.apply_all_rules()
    }

    fn apply_all_rules(&self) -> Result<()> {
        (0..self.hosts()).try_for_each(|host| self.apply_rules(host))
    }

    /// Rewrites host `host`'s rules from the cuts into it and the links out of it.
    fn apply_rules(&self, host: usize) -> Result<()> {
        let mut rules = String::new();
        for &(from, _) in self.cuts.iter().filter(|(_, to)| *to == host) {
            rules.push_str(&format!("-A INPUT -s {}/32 -j DROP\n", address(from)));
        }
        for (&(_, to), _) in self.links.range((host, 0)..(host + 1, 0)) {
            rules.push_str(&format!(
                "-A OUTPUT -d {}/32 -j NFQUEUE --queue-num {} --queue-bypass\n",
                address(to),
                queue(to)
            ));
        }
        self.hosts[host].set_filter_rules(&rules)
    }

    /// (Re)starts host `host`'s pbft-netem for the links out of it.
    fn apply_netem(&mut self, host: usize) -> Result<()> {
        if let Some(mut old) = self.netems[host].take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let links: Vec<_> =
            self.links.range((host, 0)..(host + 1, 0)).map(|(&(_, to), link)| (to, *link)).collect();
        if links.is_empty() {
            return Ok(());
        }
        let mut command = self.hosts[host].command(sibling_binary("pbft-netem")?);
        for (to, link) in links {
            command.arg("--queue").arg(format!("{}={}", queue(to), link.queue_spec()));
        }
        self.seed = self.seed.wrapping_add(1);
        command.args(["--seed", &self.seed.to_string()]).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut netem = command.spawn().context("starting pbft-netem")?;
        // Wait until its queues are bound, so that a link is in force when
        // this returns and the caller's next packet is delayed or dropped.
        let mut line = String::new();
        if let Some(stdout) = netem.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .context("reading pbft-netem's readiness")?;
        }
        if line.trim() != "ready" {
            let _ = netem.kill();
            let status = netem.wait()?;
            bail!("pbft-netem on host {host} exited before its queues were bound ({status})");
        }
        self.netems[host] = Some(netem);
        Ok(())
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for netem in self.netems.iter_mut().flatten() {
            let _ = netem.kill();
            let _ = netem.wait();
        }
        // The namespaces drop next (hosts before the hub), killing what still runs in them.
    }
}

/// What a test does when the network cannot be built here: says
/// `SKIPPED <name>: <why>` on standard error, or fails when
/// `PBFT_REQUIRE_TESTNET` is set (as `.ci/run` sets it as root), so a
/// machine that should run the network tests never skips them silently.
pub fn skip_unless_required(name: &str, why: &str) {
    assert!(
        std::env::var_os("PBFT_REQUIRE_TESTNET").is_none(),
        "{name}: PBFT_REQUIRE_TESTNET is set, but {why}"
    );
    eprintln!("SKIPPED {name}: {why}");
}

/// Moves the calling thread into the network namespace mounted at `path`
/// ([`Testnet::netns_path`]): sockets it opens afterwards are that host's.
/// Call it on a thread of its own (with a runtime built after it), never on
/// a shared runtime's worker; [`crate::thread::on_host`] does both.
pub fn enter_namespace(path: &std::path::Path) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering namespace {}", path.display()))?;
    Ok(())
}

/// Host `i`'s address.
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, (i + 1) as u8)
}

/// The NFQUEUE number of the links towards host `to`.
fn queue(to: usize) -> u16 {
    (to + 1) as u16
}

/// Checks that this process may make namespaces and that the tools exist.
fn preflight() -> Result<(), NetError> {
    let unsupported = |why: String| NetError::Unsupported(why);
    if !nix::unistd::Uid::effective().is_root() {
        return Err(unsupported("it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run as root".into()));
    }
    for tool in ["ip", "iptables-restore"] {
        namespace::run("sh", &["-c", &format!("command -v {tool}")]).map_err(|_| {
            unsupported(format!("`{tool}` is not installed (Debian packages iproute2 and iptables)"))
        })?;
    }
    sibling_binary("pbft-netem").map_err(|error| unsupported(format!("{error:#}")))?;
    let probe =
        format!("{}{}-probe-{}", namespace::PREFIX, std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    let namespace = Namespace::create(probe).map_err(|error| unsupported(format!("{error:#}")))?;
    namespace
        .set_filter_rules("-A OUTPUT -d 10.77.0.1/32 -j NFQUEUE --queue-num 1 --queue-bypass\n")
        .map_err(|error| unsupported(format!("the kernel refuses an NFQUEUE rule: {error:#}")))?;
    Ok(())
}

/// A binary built beside the running one (`target/<profile>/NAME`), whether
/// this is a binary in that folder or a test in its `deps/`.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running binary")?;
    let folders = exe.ancestors().skip(1).take(2);
    for folder in folders {
        let candidate = folder.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("no `{name}` binary beside {}: build it first (cargo build --workspace)", exe.display())
}
