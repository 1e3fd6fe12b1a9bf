//! The bank ledger and the key-value store on real clusters, through the
//! `pbft bank` and `pbft kv` commands.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::cluster_config::ClusterConfig;
use std::path::Path;
use std::time::Duration;
use support::{init_app_cluster, pbft, wait_for_status, Replicas};

fn bank(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = pbft().args(["bank", "--config"]).arg(config).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_bank_transfers_and_refuses_overdrafts_on_a_real_cluster() {
    let path = init_app_cluster("bank", 4, "", "bank");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", |s| s.iter().all(Option::is_some))
        .await;
    assert_eq!(bank(&path, &["open", "alice", "100"]).1, "opened");
    assert_eq!(bank(&path, &["open", "bob", "0"]).1, "opened");
    assert_eq!(bank(&path, &["transfer", "alice", "bob", "60"]).1, "transferred");
    let (code, _, stderr) = bank(&path, &["transfer", "alice", "bob", "60"]);
    assert_eq!(code, Some(1), "an overdraft is refused");
    assert!(stderr.contains("InsufficientFunds(40)"), "{stderr}");
    assert_eq!(bank(&path, &["balance", "alice"]).1, "40");
    assert_eq!(bank(&path, &["balance", "bob"]).1, "60");
    let kv = pbft().args(["kv", "--config"]).arg(&path).args(["get", "x"]).output().unwrap();
    assert!(!kv.status.success());
    assert!(String::from_utf8_lossy(&kv.stderr).contains("cluster.app is \"bank\""));
}

fn kv(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = pbft().args(["kv", "--config"]).arg(config).args(args).output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// `pbft kv cas` swaps only when the key holds the expected value (exit code
/// 1 otherwise), and `pbft kv get` reads what the swaps left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_kv_compare_and_swap_on_a_real_cluster() {
    let path = init_app_cluster("kv-cas", 4, "", "kv");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", |s| s.iter().all(Option::is_some))
        .await;
    assert_eq!(kv(&path, &["cas", "lock", "--new", "alice"]), (Some(0), "swapped (now: alice)".into()));
    assert_eq!(kv(&path, &["cas", "lock", "--new", "bob"]), (Some(1), "not swapped (now: alice)".into()));
    assert_eq!(kv(&path, &["cas", "lock", "--expected", "alice"]), (Some(0), "swapped (now: absent)".into()));
    assert_eq!(kv(&path, &["get", "lock"]).0, Some(1), "released: no value");
    assert_eq!(kv(&path, &["put", "lock", "carol"]), (Some(0), "ok".into()));
    assert_eq!(kv(&path, &["get", "lock"]), (Some(0), "carol".into()));
}
