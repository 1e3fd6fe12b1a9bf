//! The `pbft` binary as a user runs it.

use std::process::Command;

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
