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
