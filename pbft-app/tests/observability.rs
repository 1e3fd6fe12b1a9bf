//! What an operator sees of a real cluster: Prometheus metrics scraped over
//! HTTP and parsed with a Prometheus text parser, request traces, and the
//! live view under a pseudo-terminal.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::apps::kv::{KvOp, KvResult, KvStore};
use pbft_app::cluster_config::ClusterConfig;
use pbft_app::BlockingClient;
use pbft_core::ClientId;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use support::{all_up, init_cluster, pbft, wait_for_status, Replicas};

/// `n` TCP ports on 127.0.0.1 that were free a moment ago.
fn free_tcp_addresses(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// Starts every replica of `config` with `--metrics` on its own address.
fn start_with_metrics(config: &std::path::Path, metrics: &[SocketAddr]) -> Replicas {
    let mut replicas = Replicas::new(config, metrics.len());
    for (id, address) in metrics.iter().enumerate() {
        replicas.start_with(id, &["--metrics", &address.to_string()]);
    }
    replicas
}

/// One scrape of `address`, parsed by a Prometheus exposition parser.
fn scrape(address: SocketAddr) -> prometheus_parse::Scrape {
    let mut response = ureq::get(&format!("http://{address}/metrics")).call().unwrap();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    let body = response.body_mut().read_to_string().unwrap();
    prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_string()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`, summed
/// over the samples that match (`None` if none does).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter_map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            _ => None,
        })
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// Scrapes every address until `done` holds of the scrapes, or fails after `limit`.
fn scrape_until(
    metrics: &[SocketAddr],
    limit: Duration,
    what: &str,
    done: impl Fn(&[prometheus_parse::Scrape]) -> bool,
) -> Vec<prometheus_parse::Scrape> {
    let start = Instant::now();
    loop {
        let scrapes: Vec<_> = metrics.iter().map(|a| scrape(*a)).collect();
        if done(&scrapes) {
            return scrapes;
        }
        assert!(start.elapsed() < limit, "after {limit:?}, still not {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until_all_up(config: &ClusterConfig) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_for_status(config, Duration::from_secs(30), "all up", all_up));
}

/// Issue 25, test 1: after N operations every replica's executed counter is
/// N, the commit-latency histogram counted them, and the view gauge is the
/// same everywhere; after kill -9 of the primary the others count a view
/// change and their view gauge moves past 0.
#[test]
fn metrics_of_a_real_cluster_count_operations_and_a_view_change() {
    // Timeouts well above what CI's load makes a request take: no client
    // retry or view change before the primary is killed.
    let path = init_cluster("metrics", 4, "view_term_ms = 0\nview_change_timeout_ms = 3000");
    let config = ClusterConfig::load(&path).unwrap();
    let metrics = free_tcp_addresses(4);
    let mut replicas = start_with_metrics(&path, &metrics);
    wait_until_all_up(&config);
    let client = BlockingClient::<KvStore>::connect(&config, ClientId(0)).unwrap();
    const N: usize = 10;
    for i in 0..N {
        let put = KvOp::Put { key: format!("k{i}"), value: "v".into() };
        assert_eq!(client.invoke(&put).unwrap(), KvResult::Previous(None));
    }
    let executed = |s: &prometheus_parse::Scrape| value(s, "pbft_requests_executed_total", &[]);
    let scrapes = scrape_until(&metrics, Duration::from_secs(20), "N executed everywhere", |scrapes| {
        scrapes.iter().all(|s| executed(s) == Some(N as f64))
    });
    for scrape in &scrapes {
        assert_eq!(value(scrape, "pbft_view", &[]), Some(0.0));
        assert_eq!(value(scrape, "pbft_status_up", &[]), Some(1.0));
        assert!(value(scrape, "pbft_commit_latency_seconds_count", &[]).is_some_and(|c| c >= 1.0));
        assert_eq!(value(scrape, "pbft_view_changes_completed_total", &[]), Some(0.0));
        assert!(value(scrape, "process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));
        assert_eq!(value(scrape, "pbft_peer_link_up", &[]), Some(3.0), "three links up");
    }
    assert_eq!(value(&scrapes[0], "pbft_primary", &[]), Some(1.0));
    let received = value(&scrapes[0], "pbft_client_requests_received_total", &[]).unwrap();
    assert!(received >= N as f64, "the primary received {received} requests");

    replicas.kill(0);
    let put = KvOp::Put { key: "after".into(), value: "v".into() };
    assert_eq!(client.invoke(&put).unwrap(), KvResult::Previous(None));
    let others = &metrics[1..];
    let scrapes = scrape_until(others, Duration::from_secs(30), "a completed view change", |scrapes| {
        scrapes.iter().all(|s| value(s, "pbft_view_changes_completed_total", &[]).is_some_and(|c| c >= 1.0))
    });
    let views: Vec<f64> = scrapes.iter().map(|s| value(s, "pbft_view", &[]).unwrap()).collect();
    assert!(views.iter().all(|v| *v >= 1.0), "views {views:?}");
    for scrape in &scrapes {
        assert!(value(scrape, "pbft_view_changes_started_total", &[]).is_some_and(|c| c >= 1.0));
    }
}

/// Issue 25, test 2: a `forge` traitor from the config shows up in the
/// honest replicas' rejected-messages counters as bad signatures.
#[test]
fn a_forging_traitor_shows_in_the_honest_replicas_rejection_counters() {
    let path = init_cluster("metrics-forge", 4, "view_term_ms = 0");
    let text =
        std::fs::read_to_string(&path).unwrap().replace("[cluster]\n", "[cluster]\ndemonstration = true\n")
            + "\n[[traitor]]\nreplica = 3\nbehavior = \"forge\"\n";
    std::fs::write(&path, text).unwrap();
    let config = ClusterConfig::load(&path).unwrap();
    let metrics = free_tcp_addresses(4);
    let _replicas = start_with_metrics(&path, &metrics);
    wait_until_all_up(&config);
    let client = BlockingClient::<KvStore>::connect(&config, ClientId(0)).unwrap();
    for i in 0..20 {
        client.invoke(&KvOp::Put { key: format!("k{i}"), value: "v".into() }).unwrap();
    }
    // A forged vote that arrives after its quorum is complete is dropped
    // as unneeded before its signature is checked, so not every honest
    // replica need see one; together they must.
    let bad = |s: &prometheus_parse::Scrape| {
        value(s, "pbft_rejected_messages_total", &[("reason", "BadSignature")]).unwrap_or(0.0)
    };
    scrape_until(&metrics[..3], Duration::from_secs(20), "bad signatures counted", |scrapes| {
        scrapes.iter().map(bad).sum::<f64>() >= 1.0
    });
}

/// Issue 25, test 5: a metrics address that is taken is a named error at
/// start; one that is not an address names the flag or the config field.
#[test]
fn a_bad_metrics_address_is_a_named_error() {
    let path = init_cluster("metrics-bad", 4, "");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let data = support::TempDir::new("metrics-bad");
    let output = pbft()
        .args(["replica", "--config"])
        .arg(&path)
        .args(["--id", "0", "--metrics", &address, "--data-dir"])
        .arg(&data.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot serve replica 0's metrics: cannot serve metrics on {address}")),
        "{stderr}"
    );

    let output = pbft()
        .args(["replica", "--config"])
        .arg(&path)
        .args(["--id", "0", "--metrics", "localhost"])
        .output();
    let stderr = String::from_utf8_lossy(&output.as_ref().unwrap().stderr).into_owned();
    assert_eq!(output.unwrap().status.code(), Some(2));
    assert!(stderr.contains("--metrics"), "{stderr}");

    let text = std::fs::read_to_string(&path).unwrap();
    let first_address = text.find("address = ").unwrap();
    let broken =
        format!("{}metrics_address = \"nine thousand\"\n{}", &text[..first_address], &text[first_address..]);
    std::fs::write(&path, broken).unwrap();
    let output = pbft().args(["check", "--config"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr.contains("replica[0].metrics_address"), "{stderr}");
}

/// The numbers of one row of a `--trace` table: replica `id`'s six phase
/// times, or `None` where a phase is missing.
fn trace_row(table: &str, id: usize) -> Vec<Option<f64>> {
    let line = table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("no row for replica {id} in\n{table}"));
    line.split_whitespace()
        .skip(1)
        .filter(|cell| *cell != "(P)")
        .map(|cell| cell.trim_start_matches('*').parse::<f64>().ok())
        .collect()
}

/// Issue 25, test 3: `--trace` on a real cluster prints every phase for
/// every replica, in order, with times that never decrease along a row; a
/// trace of a request no replica saw says so.
#[test]
fn a_trace_shows_every_phase_of_every_replica_in_order() {
    let path = init_cluster("trace", 4, "view_term_ms = 0");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    wait_until_all_up(&config);
    let output =
        pbft().args(["kv", "--config"]).arg(&path).args(["put", "k", "v", "--trace"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("ordered in view 0, seq 1, primary 0"), "{stderr}");
    for id in 0..4 {
        let row = trace_row(&stderr, id);
        assert_eq!(row.len(), 6, "replica {id}: {row:?}\n{stderr}");
        let times: Vec<f64> = row
            .iter()
            .map(|t| t.unwrap_or_else(|| panic!("replica {id} misses a phase:\n{stderr}")))
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "replica {id}'s phases go back in time: {times:?}");
    }
    let again = stderr.lines().find(|l| l.starts_with("(again later: ")).unwrap();
    let timestamp = again.rsplit("--timestamp ").next().unwrap().trim_end_matches(')');
    let output = pbft()
        .args(["trace", "--config"])
        .arg(&path)
        .args(["--client", "0", "--timestamp", timestamp])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("request {timestamp} of client 0")), "{stdout}");
    assert_eq!(trace_row(&stdout, 2).len(), 6, "{stdout}");

    let output = pbft()
        .args(["trace", "--config"])
        .arg(&path)
        .args(["--client", "0", "--timestamp", "12345"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("no replica has a record of client 0's request 12345"));
}

/// A replica started with `--no-request-traces` keeps none: once it has
/// executed a request, `pbft trace` shows that request's phases from the
/// others and "no record" from it.
#[test]
fn a_replica_without_request_traces_answers_no_record() {
    let path = init_cluster("no-traces", 4, "view_term_ms = 0");
    let config = ClusterConfig::load(&path).unwrap();
    let mut replicas = Replicas::new(&path, 4);
    for id in 0..3 {
        replicas.start(id);
    }
    replicas.start_with(3, &["--no-request-traces"]);
    wait_until_all_up(&config);
    let output =
        pbft().args(["kv", "--config"]).arg(&path).args(["put", "k", "v", "--trace"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let again = stderr.lines().find(|l| l.starts_with("(again later: ")).unwrap();
    let timestamp = again.rsplit("--timestamp ").next().unwrap().trim_end_matches(')').to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_for_status(&config, Duration::from_secs(30), "executed everywhere", |statuses| {
        statuses.iter().all(|s| s.as_ref().is_some_and(|s| s.last_executed >= 1))
    }));
    let output = pbft()
        .args(["trace", "--config"])
        .arg(&path)
        .args(["--client", "0", "--timestamp", &timestamp])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    for id in 0..3 {
        assert_eq!(trace_row(&stdout, id).len(), 6, "replica {id}:\n{stdout}");
    }
    let row = stdout.lines().find(|line| line.split_whitespace().next() == Some("3")).unwrap();
    assert!(row.contains("no record of this request"), "{stdout}");
}

/// Issue 25, test 4: `pbft status --watch` under a pseudo-terminal of 80
/// columns draws every replica on its screen, and exits on q.
#[test]
fn the_live_view_shows_every_replica_and_quits_on_q() {
    use portable_pty::{CommandBuilder, PtySize};
    use std::io::{Read, Write};
    let path = init_cluster("watch", 4, "view_term_ms = 0");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    wait_until_all_up(&config);
    let pty = portable_pty::native_pty_system()
        .openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 })
        .unwrap();
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_pbft"));
    command.args(["status", "--watch", "--interval-ms", "300", "--config"]);
    command.arg(&path);
    let mut child = pty.slave.spawn_command(command).unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let (bytes, screen_bytes) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = reader.read(&mut buffer) {
            if read == 0 || bytes.send(buffer[..read].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut parser = vt100::Parser::new(24, 80, 0);
    let every_replica_normal = |screen: &str| {
        (0..4).all(|id| {
            screen.lines().any(|line| {
                let cells: Vec<&str> =
                    line.trim_matches(|c: char| !c.is_ascii_alphanumeric()).split_whitespace().collect();
                cells.first() == Some(&id.to_string().as_str()) && cells.contains(&"normal")
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled =
        |screen: &str| every_replica_normal(screen) && screen.contains("4/4 answered; agreement holds");
    while !settled(&parser.screen().contents()) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the screen never showed every replica:\n{}", parser.screen().contents());
        if let Ok(chunk) = screen_bytes.recv_timeout(left) {
            parser.process(&chunk);
        }
    }
    let screen = parser.screen().contents();
    assert!(screen.lines().all(|line| line.chars().count() <= 80));
    let mut writer = pty.master.take_writer().unwrap();
    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "pbft status --watch did not quit on q");
        while screen_bytes.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
