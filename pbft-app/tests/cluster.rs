//! Real clusters: `pbft` processes talking QUIC on 127.0.0.1, driven through
//! the client library and checked through the status command's data.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::apps::kv::{KvOp, KvQuery, KvResult};
use pbft_app::cluster_config::ClusterConfig;
use pbft_app::node::{agreement, connect_client, role, Agreement};
use pbft_app::typed::{decode_output, encode_request};
use pbft_core::{ClientId, ReplicaId, SecretKey};
use pbft_net::{ClientHandle, ClientNet, ClientOptions, InvokeError, NetLimits};
use std::sync::Arc;
use std::time::Duration;
use support::{all_up, init_cluster, pbft, same_state, wait_for_status, Replicas};

const OP_TIMEOUT: Duration = Duration::from_secs(20);

fn encode(op: &KvOp) -> Vec<u8> {
    encode_request(op).unwrap()
}

async fn put(client: &ClientHandle, key: &str, value: &str) -> KvResult {
    let op = KvOp::Put { key: key.into(), value: value.into() };
    decode_output(&client.invoke_within(encode(&op), OP_TIMEOUT).await.unwrap()).unwrap()
}

async fn get(client: &ClientHandle, key: &str) -> KvResult {
    let query = encode_request(&KvQuery::Get { key: key.into() }).unwrap();
    decode_output(&client.query_within(query, OP_TIMEOUT).await.unwrap()).unwrap()
}

/// Issue 6, test 1: `pbft up` on configs/local-4.toml; 1,000 operations from
/// four concurrent clients all succeed with the right results; every replica
/// ends at the same sequence number with the same state digest; SIGTERM stops
/// every replica and `up` exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_up_serves_a_thousand_operations_from_four_clients() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let data = support::TempDir::new("up");
    // configs/local-4.toml less its fixed metrics ports (another process on
    // this machine may hold them), its key folder made absolute for the copy.
    let text = std::fs::read_to_string(configs.join("local-4.toml")).unwrap();
    let text: String = text
        .lines()
        .filter(|line| !line.starts_with("metrics_address"))
        .map(|line| match line.strip_prefix("keys_dir = \"") {
            Some(rest) => format!("keys_dir = \"{}/{rest}\n", configs.display()),
            None => format!("{line}\n"),
        })
        .collect();
    let path = data.0.join("local-4.toml");
    std::fs::write(&path, text).unwrap();
    let config = ClusterConfig::load(&path).unwrap();
    let up = pbft()
        .args(["up", "--config"])
        .arg(&path)
        .args(["--status-every", "0"])
        .arg("--data-dir")
        .arg(&data.0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;
    let run = format!("{}", std::process::id());
    let mut tasks = Vec::new();
    for c in 0..4u64 {
        let client = connect_client(&config, ClientId(c)).unwrap();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..125 {
                let key = format!("{run}/c{c}/k{i}");
                assert_eq!(put(&client, &key, &format!("v{i}")).await, KvResult::Previous(None));
                assert_eq!(get(&client, &key).await, KvResult::Value(Some(format!("v{i}"))));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let statuses = wait_for_status(&config, Duration::from_secs(10), "all at one state", |s| {
        same_state(s, &[0, 1, 2, 3])
    })
    .await;
    let first = statuses[0].as_ref().unwrap();
    assert!(first.last_executed >= 1, "something executed");
    let pid = up.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output = up.wait_with_output().unwrap();
    assert!(output.status.success(), "pbft up exits 0 on SIGTERM");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("all replicas stopped"), "{stdout}");
    assert!(!stdout.contains("exited ("), "no replica died before the stop: {stdout}");
}

/// Issue 6, test 2: SIGKILL the primary; operations keep completing after the
/// view change; the primary restarts with empty memory and catches up to the
/// same state as the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_is_replaced_and_catches_up_after_restart() {
    let path = init_cluster(
        "kill-primary",
        4,
        "view_change_timeout_ms = 500\ncheckpoint_interval = 16\nwatermark_window = 64",
    );
    let config = ClusterConfig::load(&path).unwrap();
    let mut replicas = Replicas::start_all(&path, 4);
    let client = connect_client(&config, ClientId(0)).unwrap();
    for i in 0..20 {
        assert_eq!(put(&client, &format!("before{i}"), "x").await, KvResult::Previous(None));
    }
    replicas.kill(0);
    for i in 0..20 {
        assert_eq!(put(&client, &format!("after{i}"), "y").await, KvResult::Previous(None));
    }
    let statuses = wait_for_status(&config, Duration::from_secs(10), "in view ≥ 1", |s| {
        s[1..].iter().all(|s| s.as_ref().is_some_and(|s| s.view >= 1 && s.normal))
    })
    .await;
    assert!(statuses[0].is_none(), "the killed primary does not answer");
    // It comes back on a thread pool rather than the default single thread,
    // so the cluster runs both kinds of runtime side by side.
    replicas.start_with(0, &["--threads", "2"]);
    for i in 0..40 {
        assert_eq!(put(&client, &format!("restarted{i}"), "z").await, KvResult::Previous(None));
    }
    let statuses =
        wait_for_status(&config, Duration::from_secs(30), "caught up", |s| same_state(s, &[0, 1, 2, 3]))
            .await;
    let restarted = statuses[0].as_ref().unwrap();
    assert!(restarted.view >= 1, "the restarted replica adopted the current view");
    assert_eq!(get(&client, "before0").await, KvResult::Value(Some("x".into())));
}

/// Issue 6, test 3: with two of four replicas killed nothing can commit, so
/// an operation times out instead of reporting success and no live replica
/// executes anything; once one replica is back, the stalled operation and new
/// ones complete, each exactly once (in either order: the stalled one is still
/// in flight when the next is invoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dead_replicas_stall_the_cluster_until_one_returns() {
    let path = init_cluster("two-dead", 4, "view_change_timeout_ms = 500");
    let config = ClusterConfig::load(&path).unwrap();
    let mut replicas = Replicas::start_all(&path, 4);
    let client = connect_client(&config, ClientId(0)).unwrap();
    assert_eq!(put(&client, "k", "1").await, KvResult::Previous(None));
    // A reply from f+1 replicas does not mean all four have executed: wait
    // until they have, so any later progress would need a quorum.
    wait_for_status(&config, Duration::from_secs(10), "all at one state", |s| same_state(s, &[0, 1, 2, 3]))
        .await;
    replicas.kill(2);
    replicas.kill(3);
    let before =
        wait_for_status(&config, Duration::from_secs(5), "two up", |s| s.iter().flatten().count() == 2).await;
    let op = encode(&KvOp::Put { key: "k".into(), value: "2".into() });
    assert_eq!(
        client.invoke_within(op, Duration::from_secs(3)).await,
        Err(InvokeError::TimedOut(Duration::from_secs(3))),
        "no false success without a quorum"
    );
    let during =
        wait_for_status(&config, Duration::from_secs(5), "two up", |s| s.iter().flatten().count() == 2).await;
    for (b, d) in before.iter().zip(&during) {
        if let (Some(b), Some(d)) = (b, d) {
            assert_eq!(b.last_executed, d.last_executed, "replica {} executed without a quorum", b.replica);
        }
    }
    replicas.start(3);
    // The timed-out put is still in flight and overlaps the next one, so the
    // two may execute in either order; each must execute exactly once.
    match put(&client, "k", "3").await {
        KvResult::Previous(Some(previous)) if previous == "2" => {
            assert_eq!(get(&client, "k").await, KvResult::Value(Some("3".into())));
        }
        KvResult::Previous(Some(previous)) if previous == "1" => {
            let deadline = tokio::time::Instant::now() + OP_TIMEOUT;
            while get(&client, "k").await != KvResult::Value(Some("2".into())) {
                assert!(tokio::time::Instant::now() < deadline, "the stalled put never executed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        other => panic!("the put saw {other:?}: the stalled put ran twice or the first one vanished"),
    }
}

/// Issue 6, test 4: a client whose key is not in the config cannot connect;
/// garbage datagrams, an undecodable frame and an oversized frame do not
/// crash a replica, are counted, and the cluster keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_garbage_and_oversized_frames_are_refused_and_counted() {
    let path = init_cluster("hostile", 4, "");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;

    let stranger = SecretKey::from_seed([0xee; 32]);
    let outsider =
        ClientHandle::connect(ClientId(0), &stranger, &config.replica_addresses(), 200, 1).unwrap();
    let op = encode(&KvOp::Put { key: "stranger".into(), value: "was here".into() });
    assert_eq!(
        outsider.invoke_within(op, Duration::from_secs(2)).await,
        Err(InvokeError::TimedOut(Duration::from_secs(2)))
    );
    drop(outsider);

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..500usize {
        let len = 1 + (i * 37) % 1_400;
        let datagram: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        socket.send_to(&datagram, config.replicas[1].address).unwrap();
    }

    let insider = config.client_secret(ClientId(2)).unwrap();
    let (raw, _inbox) =
        ClientNet::connect(&insider, &config.replica_addresses(), false, NetLimits::default()).unwrap();
    let undecodable: Vec<u8> = [3u32.to_be_bytes().to_vec(), vec![0xff, 0xff, 0xff]].concat();
    raw.send(pbft_core::ReplicaId(1), Arc::from(undecodable));
    let oversized: Vec<u8> = [(1u32 << 30).to_be_bytes().to_vec(), vec![0; 64]].concat();
    raw.send(pbft_core::ReplicaId(1), Arc::from(oversized));

    let statuses = wait_for_status(&config, Duration::from_secs(10), "counted", |s| {
        s[1].as_ref().is_some_and(|s| s.net.malformed_frames >= 1 && s.net.oversized_frames >= 1)
            && s.iter().flatten().all(|s| s.net.failed_handshakes >= 1)
    })
    .await;
    assert!(statuses.iter().all(Option::is_some), "every replica still answers");
    let client = connect_client(&config, ClientId(0)).unwrap();
    assert_eq!(put(&client, "after", "attack").await, KvResult::Previous(None));
    assert_eq!(get(&client, "stranger").await, KvResult::Value(None), "the stranger's put never executed");
}

/// Issue 21, point 1: an operation over the cluster's `max_request_bytes`
/// is refused by `pbft kv` with an error naming the setting, before it is
/// sent; a client that sends one anyway gets no answer, every replica drops
/// and counts it, and the cluster goes on serving requests within the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_over_max_request_bytes_is_refused_by_the_client_and_dropped_by_replicas() {
    let path = init_cluster("big-request", 4, "max_request_bytes = 1024");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;

    let big = "v".repeat(2_000);
    let output = pbft().args(["kv", "--config"]).arg(&path).args(["put", "k", &big]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("over the cluster's protocol.max_request_bytes (1024)"), "{stderr}");

    let secret = config.client_secret(ClientId(1)).unwrap();
    let options = ClientOptions { max_request_bytes: usize::MAX, ..config.client_options() };
    let careless =
        ClientHandle::connect_with(ClientId(1), &secret, &config.replica_addresses(), options).unwrap();
    let op = encode(&KvOp::Put { key: "k".into(), value: big });
    assert_eq!(
        careless.invoke_within(op, Duration::from_secs(2)).await,
        Err(InvokeError::TimedOut(Duration::from_secs(2)))
    );
    wait_for_status(&config, Duration::from_secs(10), "every replica counted the request", |statuses| {
        statuses.iter().all(|s| s.as_ref().is_some_and(|s| s.rejections.get("RequestTooLarge") >= Some(&1)))
    })
    .await;

    let client = connect_client(&config, ClientId(0)).unwrap();
    assert_eq!(
        put(&client, "k", &"v".repeat(900)).await,
        KvResult::Previous(None),
        "nothing executed the big put"
    );
}

/// Issue 6, test 6 (the bound with real processes): configs/bound-f1-safe.toml
/// has one colluding traitor and the honest replicas agree; in
/// configs/bound-f1-fork.toml two colluding traitors (f+1) make the honest
/// replicas 2 and 3 diverge, and the status data shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_with_real_processes_one_traitor_agrees_two_fork() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");

    let safe_path = configs.join("bound-f1-safe.toml");
    let safe = ClusterConfig::load(&safe_path).unwrap();
    let replicas = Replicas::start_all(&safe_path, 4);
    wait_for_status(&safe, Duration::from_secs(20), "all replicas up", all_up).await;
    let client = connect_client(&safe, ClientId(0)).unwrap();
    let run = std::process::id().to_string();
    assert_eq!(
        put(&client, &run, "safe").await,
        KvResult::Previous(None),
        "requests complete despite the traitor"
    );
    let statuses = wait_for_status(&safe, Duration::from_secs(15), "honest replicas at one state", |s| {
        same_state(s, &[1, 2, 3])
    })
    .await;
    assert_eq!(agreement(&statuses[1..]), Agreement::Agree);
    assert_eq!(role(&safe, ReplicaId(0)), "traitor: collude");
    drop(client);
    drop(replicas);

    let fork_path = configs.join("bound-f1-fork.toml");
    let fork = ClusterConfig::load(&fork_path).unwrap();
    let _replicas = Replicas::start_all(&fork_path, 4);
    wait_for_status(&fork, Duration::from_secs(20), "all replicas up", all_up).await;
    let client = connect_client(&fork, ClientId(0)).unwrap();
    let op = encode(&KvOp::Put { key: run, value: "fork".into() });
    let _ = client.invoke_within(op, Duration::from_secs(10)).await;
    let statuses = wait_for_status(&fork, Duration::from_secs(15), "honest replicas diverged", |s| {
        matches!(agreement(&[s[2].clone(), s[3].clone()]), Agreement::Diverged { .. })
    })
    .await;
    let Agreement::Diverged { digests, .. } = agreement(&[statuses[2].clone(), statuses[3].clone()]) else {
        unreachable!("waited for divergence")
    };
    assert_eq!(digests.len(), 2, "replicas 2 and 3 hold different states at one sequence number");
}
