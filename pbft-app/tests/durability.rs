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
