//! The typed client library against real `pbft replica` processes
//! (issue 7, test 2).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use pbft_app::apps::Counter;
use pbft_app::cluster_config::ClusterConfig;
use pbft_app::{BlockingClient, Client, ClientId};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{init_app_cluster, same_state, wait_for_status, Replicas};

const INVOCATIONS: usize = 1_000;
const KILL_PRIMARY_AFTER: usize = 300;

/// 1,000 concurrent `add 1` invocations on one client complete, and the
/// primary is killed after 300 of them. Every invocation returns, and the
/// results are exactly the values 1..=1000: none failed, none executed twice
/// (that would skip a value) and none was lost (the final count is 1,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_invocations_survive_a_killed_primary_exactly_once() {
    let path = init_app_cluster(
        "client-lib",
        4,
        "view_change_timeout_ms = 500\ncheckpoint_interval = 16\nwatermark_window = 64",
        "counter",
    );
    let config = ClusterConfig::load(&path).unwrap();
    let mut replicas = Replicas::start_all(&path, 4);
    let client = Arc::new(
        Client::<Counter>::connect(&config, ClientId(0)).unwrap().with_timeout(Duration::from_secs(120)),
    );
    let completed = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(tokio::sync::Notify::new());
    let tasks: Vec<_> = (0..INVOCATIONS)
        .map(|_| {
            let (client, completed, killed) = (client.clone(), completed.clone(), killed.clone());
            tokio::spawn(async move {
                let value = client.invoke(&1).await;
                if completed.fetch_add(1, Ordering::SeqCst) + 1 == KILL_PRIMARY_AFTER {
                    killed.notify_one();
                }
                value
            })
        })
        .collect();
    killed.notified().await;
    replicas.kill(0);
    let mut values = BTreeSet::new();
    for task in tasks {
        let value = task.await.unwrap().expect("no invocation fails");
        assert!(values.insert(value), "two invocations returned {value}: one executed twice");
    }
    let expected: BTreeSet<i64> = (1..=INVOCATIONS as i64).collect();
    assert_eq!(values, expected, "each invocation executed exactly once");
    assert_eq!(client.query(&()).await.unwrap(), INVOCATIONS as i64);
    let statuses = wait_for_status(&config, Duration::from_secs(10), "the survivors agree", |s| {
        same_state(s, &[1, 2, 3])
    })
    .await;
    assert!(
        statuses[1..].iter().all(|s| s.as_ref().is_some_and(|s| s.view >= 1)),
        "the primary was replaced"
    );
}

/// The blocking wrapper, for scripts: invoke and query without async code.
#[test]
fn the_blocking_client_invokes_and_queries() {
    let path = init_app_cluster("blocking-client", 4, "", "counter");
    let config = ClusterConfig::load(&path).unwrap();
    let _replicas = Replicas::start_all(&path, 4);
    let client = BlockingClient::<Counter>::connect(&config, ClientId(1)).unwrap();
    assert_eq!(client.invoke(&5).unwrap(), 5);
    assert_eq!(client.invoke(&-2).unwrap(), 3);
    assert_eq!(client.query(&()).unwrap(), 3);
}
