//! Linux network namespaces, named per run, and the `ip`/`iptables` calls
//! that build them.
//!
//! Every namespace of one test network is named `pbftnet-<pid>-<run>-<role>`.
//! Dropping the [`Namespace`] kills whatever still runs in it and deletes it;
//! a test process that was killed before it could drop its namespaces leaves
//! them behind, so [`remove_stale`] deletes every `pbftnet-` namespace whose
//! process is gone before a new network is built.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};

/// The prefix of every namespace the test network makes.
pub const PREFIX: &str = "pbftnet-";

/// A network namespace this process created; deleted when dropped.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates the namespace `name` and brings its loopback up.
    pub fn create(name: String) -> Result<Namespace> {
        ip(&["netns", "add", &name])?;
        let namespace = Namespace { name };
        namespace.ip(&["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// The namespace's name (`ip netns exec NAME …`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip ARGS` inside this namespace.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Replaces the rules of this namespace's INPUT and OUTPUT chains with
    /// `rules` (iptables-restore's format, without the table line and
    /// COMMIT), in one transaction. The chains are flushed, not the table:
    /// replacing the table would unhook the chains and make the kernel drop
    /// every packet pbft-netem holds.
    pub fn set_filter_rules(&self, rules: &str) -> Result<()> {
        let table = format!("*filter\n-F INPUT\n-F OUTPUT\n{rules}COMMIT\n");
        let mut child = self
            .command("iptables-restore")
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running iptables-restore (is the iptables package installed?)")?;
        child.stdin.take().context("iptables-restore's stdin")?.write_all(table.as_bytes())?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "iptables-restore in {} refused:\n{table}{}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        kill_processes_in(&self.name);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `ip ARGS`, failing with its standard error.
pub fn ip(args: &[&str]) -> Result<()> {
    run("ip", args).map(drop)
}

/// Runs `program ARGS`, returning its standard output or failing with its
/// standard error.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} (is it installed?)"))?;
    if !output.status.success() {
        bail!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// SIGKILLs every process inside namespace `name`.
fn kill_processes_in(name: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", name]) else { return };
    for pid in pids.split_whitespace().filter_map(|pid| pid.parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Deletes the test-network namespaces left by processes that no longer run.
pub fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else { return };
    for name in list.lines().filter_map(|line| line.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let owner = rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            kill_processes_in(name);
            let _ = ip(&["netns", "del", name]);
        }
    }
}
