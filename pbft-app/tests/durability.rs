//! Issue 20 (durability) with real processes: what clients were told is done
//! survives kill -9 of every replica at once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

mod support;

use pbft_app::apps::kv::{KvOp, KvQuery, KvResult};
use pbft_app::cluster_config::ClusterConfig;
use pbft_app::node::connect_client;
use pbft_app::typed::{decode_output, encode_request};
use pbft_core::ClientId;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{init_cluster, same_state, wait_for_status, Replicas};

const OP_TIMEOUT: Duration = Duration::from_secs(20);

fn all_up(statuses: &[Option<pbft_net::NodeStatus>]) -> bool {
    let peers = statuses.len().saturating_sub(1) as u64;
    statuses.iter().all(|s| s.as_ref().is_some_and(|s| s.net.links_up >= peers))
}

/// Issue 20, test 5: four replicas under load from four concurrent clients;
/// every replica is killed with SIGKILL at once, mid-load, and restarted
/// with the same command line: every put a client saw acknowledged reads back
/// with its value, and the replicas agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_put_survives_kill_9_of_the_whole_cluster() {
    let path = init_cluster("durable", 4, "checkpoint_interval = 16\nwatermark_window = 64");
    let config = ClusterConfig::load(&path).unwrap();
    let mut replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;

    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut load = Vec::new();
    for c in 0..4u64 {
        let client = connect_client(&config, ClientId(c)).unwrap();
        let acknowledged = acknowledged.clone();
        load.push(tokio::spawn(async move {
            for i in 0.. {
                let (key, value) = (format!("c{c}/k{i}"), format!("v{i}"));
                let op = encode_request(&KvOp::Put { key: key.clone(), value: value.clone() }).unwrap();
                let Ok(result) = client.invoke_within(op, OP_TIMEOUT).await else { return };
                assert_eq!(decode_output::<KvResult>(&result).unwrap(), KvResult::Previous(None));
                acknowledged.lock().unwrap().push((key, value));
            }
        }));
    }
    // Let the load run past a few checkpoints (16 sequence numbers each).
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 200 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in 0..4 {
        replicas.kill(id);
    }
    for task in &load {
        task.abort();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 50, "the load ran: {} puts acknowledged", acknowledged.len());

    for id in 0..4 {
        replicas.start(id);
    }
    wait_for_status(&config, Duration::from_secs(20), "all replicas up again", all_up).await;
    let client = connect_client(&config, ClientId(0)).unwrap();
    for (key, value) in &acknowledged {
        let query = encode_request(&KvQuery::Get { key: key.clone() }).unwrap();
        let answer =
            decode_output::<KvResult>(&client.query_within(query, OP_TIMEOUT).await.unwrap()).unwrap();
        assert_eq!(answer, KvResult::Value(Some(value.clone())), "{key} was acknowledged before the crash");
    }
    // New operations complete after the restart, and the replicas agree.
    let op = encode_request(&KvOp::Put { key: "after".into(), value: "restart".into() }).unwrap();
    client.invoke_within(op, OP_TIMEOUT).await.unwrap();
    wait_for_status(&config, Duration::from_secs(20), "replicas at one state", |s| {
        same_state(s, &[0, 1, 2, 3])
    })
    .await;
}

/// Puts `count` keys `prefix/i` through `client`, each acknowledged.
async fn put_many(client: &pbft_net::ClientHandle, prefix: &str, count: usize) {
    for i in 0..count {
        let op = encode_request(&KvOp::Put { key: format!("{prefix}/{i}"), value: format!("v{i}") }).unwrap();
        client.invoke_within(op, OP_TIMEOUT).await.unwrap();
    }
}

/// Four replicas whose views rotate every second (so a replica that recovers
/// from its peers soon sees the view it waits for), all up, and a client.
async fn start_rotating_cluster(name: &str) -> (ClusterConfig, Replicas, pbft_net::ClientHandle) {
    let protocol =
        "checkpoint_interval = 8\nwatermark_window = 32\nview_change_timeout_ms = 500\nview_term_ms = 1000";
    let path = init_cluster(name, 4, protocol);
    let config = ClusterConfig::load(&path).unwrap();
    let replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;
    let client = connect_client(&config, ClientId(0)).unwrap();
    (config, replicas, client)
}

/// Issue 20, test 5 (a replica whose disk was lost): replica 3's data
/// directory is deleted while it is down; it restarts in the recovering mode,
/// catches up, and ends with the others' state, serving again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_data_directory_was_deleted_rejoins_and_catches_up() {
    let (config, mut replicas, client) = start_rotating_cluster("lost-disk").await;
    put_many(&client, "before", 20).await;
    replicas.kill(3);
    replicas.wipe(3);
    replicas.start(3);
    put_many(&client, "after", 20).await;
    let statuses = wait_for_status(&config, Duration::from_secs(40), "replica 3 caught up", |s| {
        s[3].as_ref().is_some_and(|s| !s.recovering && s.normal) && same_state(s, &[0, 1, 2, 3])
    })
    .await;
    assert!(statuses[3].as_ref().unwrap().last_executed >= 40);
}

/// Issue 20, test 7 (bad storage): a data directory written by another
/// replica is refused, and the error names both replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_data_directory_is_refused_naming_both() {
    let path = init_cluster("wrong-owner", 4, "");
    let config = ClusterConfig::load(&path).unwrap();
    let data = support::TempDir::new("wrong-owner");
    let mut replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;
    replicas.kill(0);
    let owner = |id: u32| replicas.data.0.join(format!("replica-{id}"));
    for entry in std::fs::read_dir(owner(1)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::create_dir_all(data.0.join("replica-0")).unwrap();
            std::fs::copy(entry.path(), data.0.join("replica-0").join(entry.file_name())).unwrap();
        }
    }
    assert!(data.0.join("replica-0").join("IDENTITY").is_file(), "replica 1's identity was copied");
    let mut child = support::pbft()
        .args(["replica", "--config"])
        .arg(&path)
        .args(["--id", "0", "--data-dir"])
        .arg(&data.0)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must refuse at once; a replica that started instead is killed
    // after the deadline and the test fails on its exit status.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("replica 1") && stderr.contains("replica 0"), "{stderr}");
}

/// Issue 20, test 7 (bad storage): a flipped byte in the middle of replica
/// 2's log (not in its last record) is damage: the replica says so, keeps
/// the damaged files aside, recovers from its peers and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_log_leads_to_recovery_from_peers() {
    let (config, mut replicas, client) = start_rotating_cluster("flipped").await;
    put_many(&client, "before", 21).await;
    replicas.kill(2);
    let dir = replicas.data.0.join("replica-2");
    // A flip in the only record of a segment would be a torn tail (cut, not
    // damage). A snapshot starts a new segment, so if the kill came right
    // after one, restart once: a restarted replica writes its new view at once.
    if records_in(&newest_segment(&dir)) < 2 {
        replicas.start(2);
        put_many(&client, "again", 1).await;
        replicas.kill(2);
    }
    let segment = newest_segment(&dir);
    assert!(records_in(&segment) >= 2, "the segment holds more than one record");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[12] ^= 0x40; // inside the first record's payload: damage, not a torn tail
    std::fs::write(&segment, bytes).unwrap();
    replicas.start(2);
    put_many(&client, "after", 20).await;
    wait_for_status(&config, Duration::from_secs(40), "replica 2 caught up", |s| {
        s[2].as_ref().is_some_and(|s| !s.recovering && s.normal) && same_state(s, &[0, 1, 2, 3])
    })
    .await;
    let log = std::fs::read_to_string(replicas.log_path(2)).unwrap();
    assert!(log.contains("DAMAGED LOG"), "replica 2 said what it found");
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("damaged-")));
}

/// The log segment appends go to.
fn newest_segment(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .expect("replica 2 has a log segment")
}

/// How many whole records a segment holds (`length: u32 LE | crc | payload`).
fn records_in(segment: &std::path::Path) -> usize {
    let bytes = std::fs::read(segment).unwrap();
    let (mut at, mut count) = (0usize, 0);
    while let Some(header) = bytes.get(at..at + 8) {
        let length = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
        at += 8 + length;
        if at > bytes.len() {
            break;
        }
        count += 1;
    }
    count
}

/// Issue 20, test 5 (the primary alone): under load, with a checkpoint every
/// 4 sequence numbers (so the kill falls in or next to one), the primary is
/// killed with SIGKILL and restarted from its disk: every acknowledged put
/// reads back, and all four replicas end with one state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_put_survives_kill_9_of_the_primary() {
    let path = init_cluster("primary-kill", 4, "checkpoint_interval = 4\nwatermark_window = 16");
    let config = ClusterConfig::load(&path).unwrap();
    let mut replicas = Replicas::start_all(&path, 4);
    wait_for_status(&config, Duration::from_secs(20), "all replicas up", all_up).await;
    let client = connect_client(&config, ClientId(0)).unwrap();
    put_many(&client, "before", 30).await;
    replicas.kill(0);
    replicas.start(0);
    put_many(&client, "after", 30).await;
    for (prefix, count) in [("before", 30), ("after", 30)] {
        for i in 0..count {
            let query = encode_request(&KvQuery::Get { key: format!("{prefix}/{i}") }).unwrap();
            let answer =
                decode_output::<KvResult>(&client.query_within(query, OP_TIMEOUT).await.unwrap()).unwrap();
            assert_eq!(answer, KvResult::Value(Some(format!("v{i}"))), "{prefix}/{i} was acknowledged");
        }
    }
    wait_for_status(&config, Duration::from_secs(30), "replicas at one state", |s| {
        same_state(s, &[0, 1, 2, 3])
    })
    .await;
}
