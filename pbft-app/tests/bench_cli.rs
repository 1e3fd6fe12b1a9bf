//! `pbft bench` runs end to end: it measures (no timing is asserted, only
//! that the report is complete and consistent).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::cluster_config::ClusterConfig;
use support::{init_cluster, pbft};

fn json(args: &[&str]) -> serde_json::Value {
    let output = pbft().args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The JSON report of a one-second `pbft bench --local` on `config` with `options`.
fn bench_local(config: &str, options: &[&str]) -> serde_json::Value {
    let mut args = vec!["bench", "--config", config, "--local", "--duration", "1", "--json"];
    args.extend_from_slice(options);
    json(&args)
}

#[test]
fn bench_local_reports_throughput_latency_and_cpu_of_every_replica() {
    let path = init_cluster("bench", 4, "");
    let config = path.to_str().unwrap();
    let report = bench_local(config, &["--clients", "2", "--read-ratio", "0.5"]);
    let operations = report["operations"].as_u64().unwrap();
    assert!(operations > 0, "{report}");
    assert_eq!(report["errors"], 0);
    let latency = &report["latency_ms"];
    let (p50, p99, max) = (
        latency["p50"].as_f64().unwrap(),
        latency["p99"].as_f64().unwrap(),
        latency["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{latency}");
    let cpu = report["cpu_seconds_per_1000_ops"].as_array().unwrap();
    assert_eq!(cpu.len(), 4);
    assert!(
        cpu.iter().all(|c| c.as_f64().is_some_and(|c| c > 0.0)),
        "every local replica's CPU was read: {report}"
    );
    assert!(
        report["load_generator_cpu_seconds_per_1000_ops"].as_f64().is_some_and(|c| c > 0.0),
        "the load generator's own CPU was read: {report}"
    );
    assert!(
        report["sequence_numbers"].as_u64().is_some_and(|s| s > 0)
            && report["operations_per_sequence_number"].as_f64().is_some_and(|o| o > 0.0),
        "the batches the cluster ordered were counted: {report}"
    );
}

/// Open loop, with the load generator on a single-threaded runtime: every
/// operation of the schedule (rate times duration) is issued and answered,
/// and how late each was issued is reported and counted in its latency.
/// When `pbft bench --local` returns, its replicas have exited and their
/// ports are free, so that a script can start the next run at once.
#[test]
fn bench_open_loop_runs_at_a_fixed_rate() {
    let path = init_cluster("bench-open", 4, "");
    let config = path.to_str().unwrap();
    let report = bench_local(config, &["--rate", "100", "--threads", "1"]);
    for replica in &ClusterConfig::load(&path).unwrap().replicas {
        let bound = std::net::UdpSocket::bind(replica.address);
        assert!(bound.is_ok(), "replica {}'s port is still taken: {bound:?}", replica.id.0);
    }
    assert_eq!(report["mode"], "open loop, 100 ops/s");
    assert_eq!(report["operations"], 100, "{report}");
    assert_eq!(report["errors"], 0);
    let (late, latency) = (&report["issue_lateness_ms"], &report["latency_ms"]);
    let (late_max, latency_max) = (late["max"].as_f64().unwrap(), latency["max"].as_f64().unwrap());
    assert!(late["p50"].as_f64().unwrap() <= late_max && late_max <= latency_max, "{report}");
}

#[test]
fn bench_ceiling_prints_the_signature_costs_and_the_ratio() {
    let report = json(&["bench", "--ceiling", "--replicas", "4", "--measured", "1000", "--json"]);
    let (sign, verify) = (report["sign_us"].as_f64().unwrap(), report["verify_us"].as_f64().unwrap());
    assert!(sign > 0.0 && verify > 0.0);
    let ceiling = report["ceiling_ops_per_sec"].as_f64().unwrap();
    let ratio = report["measured_over_ceiling"].as_f64().unwrap();
    assert!((ratio - 1000.0 / ceiling).abs() < 1e-9);
}

#[test]
fn bench_refuses_a_config_of_another_app() {
    let path = support::init_app_cluster("bench-bank", 4, "", "bank");
    let output = pbft().args(["bench", "--config"]).arg(&path).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("drives the kv app"));
}

#[test]
fn bench_protocol_changes_apply_to_the_started_cluster_and_leave_the_file_alone() {
    let path = init_cluster("bench-protocol", 4, "");
    let config = path.to_str().unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let report = bench_local(
        config,
        &["--rate", "100", "--protocol", "max_batch_size=7", "--protocol", "batch_delay_ms=0"],
    );
    assert_eq!((report["max_batch_size"].as_u64(), report["batch_delay_ms"].as_u64()), (Some(7), Some(0)));
    assert!(report["operations"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "the config file is unchanged");

    let output = pbft()
        .args(["bench", "--config", config, "--local", "--duration", "1", "--protocol", "max_batch_sise=7"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--protocol") && stderr.contains("max_batch_sise"), "{stderr}");
}
