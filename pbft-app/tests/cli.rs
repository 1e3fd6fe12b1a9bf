//! The `pbft` binary as a user runs it.

mod support;

use pbft_app::cluster_config::ClusterConfig;
use std::net::SocketAddr;
use std::process::Command;
use support::TempDir;

fn pbft(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pbft")).args(args).output().expect("the pbft binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn demo_cluster_completes_every_request_and_replicas_agree() {
    let (code, stdout, stderr) = pbft(&["demo", "cluster", "--requests", "10", "--crash-primary"]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("40 of 40 requests completed"), "{stdout}");
    assert!(stdout.contains("live replicas agree on the state digest: yes"), "{stdout}");
}

#[test]
fn demo_cluster_refuses_zero_replicas_naming_the_flag() {
    let (code, _, stderr) = pbft(&["demo", "cluster", "--replicas", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--replicas"), "{stderr}");
}

#[test]
fn replica_refuses_zero_threads_naming_the_flag() {
    let (code, _, stderr) =
        pbft(&["replica", "--config", "configs/local-4.toml", "--id", "0", "--threads", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--threads"), "{stderr}");
}

/// Issue 25: a sweep into a pipe or a file draws no progress bar (no
/// carriage-return redraws on stderr) and ends with one summary line; with
/// `--json` the whole of stdout is that one line.
#[test]
fn a_sweep_into_a_pipe_prints_its_summary_without_a_progress_bar() {
    let (code, stdout, stderr) = pbft(&["sim", "--seeds", "0..3"]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains('\r'), "a progress bar went into a pipe: {stderr:?}");
    let summary: Vec<&str> = stdout.lines().filter(|l| l.starts_with("3 seeds")).collect();
    assert_eq!(summary.len(), 1, "{stdout}");
    let (code, stdout, stderr) = pbft(&["sim", "--seeds", "0..3", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["runs"], 3);
}

/// `pbft init --hosts`: one replica per machine. Replica i listens on
/// hosts[i] at --base-port (the same port on every machine) and serves its
/// metrics on hosts[i] at the metrics base port (base-port + 2000 by
/// default), and the written config loads.
#[test]
fn init_with_hosts_puts_each_replica_and_its_metrics_on_its_own_host() {
    let scratch = TempDir::new("init-hosts");
    let dir = scratch.0.join("cluster");
    let dir_arg = dir.to_str().unwrap();
    let hosts = "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4";
    let (code, stdout, stderr) = pbft(&["init", "--hosts", hosts, "--base-port", "7200", "--dir", dir_arg]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("pbft replica --config"), "{stdout}");
    let config = ClusterConfig::load(&dir.join("cluster.toml")).unwrap();
    let addresses: Vec<(SocketAddr, Option<SocketAddr>)> =
        config.replicas.iter().map(|r| (r.address, r.metrics_address)).collect();
    let expected: Vec<(SocketAddr, Option<SocketAddr>)> = (1..=4)
        .map(|i| {
            let address = |port: u16| format!("10.0.0.{i}:{port}").parse::<SocketAddr>().unwrap();
            (address(7200), Some(address(9200)))
        })
        .collect();
    assert_eq!(addresses, expected);
    assert_eq!((config.n(), config.f), (4, 1));
}

/// `--hosts` must name one address per replica, none twice, all of one IP
/// family; anything else is refused before anything is written, naming the
/// flag and what is wrong.
#[test]
fn init_refuses_hosts_that_are_not_one_address_per_replica_naming_the_flag() {
    let scratch = TempDir::new("init-hosts-count");
    let dir = scratch.0.join("cluster");
    let dir_arg = dir.to_str().unwrap();
    let (code, _, stderr) =
        pbft(&["init", "--replicas", "4", "--hosts", "10.0.0.1,10.0.0.2,10.0.0.3", "--dir", dir_arg]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--hosts: expected one address per replica (4 for --replicas 4), found 3"),
        "{stderr}"
    );
    let (code, _, stderr) =
        pbft(&["init", "--hosts", "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.2", "--dir", dir_arg]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--hosts: 10.0.0.2 is listed for replicas 1 and 3"), "{stderr}");
    let (code, _, stderr) =
        pbft(&["init", "--hosts", "10.0.0.1,10.0.0.2,fd00::3,10.0.0.4", "--dir", dir_arg]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--hosts: replica 0's address 10.0.0.1 and replica 2's fd00::3"), "{stderr}");
    assert!(!dir.exists(), "a refused init wrote {}", dir.display());
}

/// `--host` (every replica on one machine) and `--hosts` (one machine
/// each) say different things: clap refuses the two together.
#[test]
fn init_refuses_host_and_hosts_together() {
    let scratch = TempDir::new("init-host-hosts");
    let dir = scratch.0.join("cluster");
    let hosts = "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4";
    let (code, _, stderr) =
        pbft(&["init", "--host", "10.0.0.1", "--hosts", hosts, "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(stderr.contains("--host <HOST>") && stderr.contains("--hosts <IP,IP,...>"), "{stderr}");
    assert!(!dir.exists(), "a refused init wrote {}", dir.display());
}
