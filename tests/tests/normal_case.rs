//! Normal-case operation on the in-memory cluster (OSDI'99 §4.2).

use pbft_core::{ProtocolConfig, Time};
use pbft_tests::{assert_all_completed, assert_same_execution, recording_cluster, submit_all};

fn protocol() -> ProtocolConfig {
    ProtocolConfig {
        max_batch_size: 8,
        batch_delay_ms: 1,
        checkpoint_interval: 16,
        watermark_window: 64,
        ..ProtocolConfig::default()
    }
}

/// Issue test 1: n=4, 200 requests from 4 clients execute in the same order on
/// every replica, and every client accepts f+1 matching replies.
#[test]
fn n4_requests_from_four_clients_execute_in_one_order_everywhere() {
    let mut cluster = recording_cluster(4, 4, protocol());
    submit_all(&mut cluster, 4, 50);
    assert!(cluster.run_until_complete(Time(60_000)), "not every request completed");
    assert_same_execution(&cluster, &[0, 1, 2, 3]);
    assert_eq!(cluster.replica(pbft_core::ReplicaId(0)).app().history().len(), 200);
    assert_all_completed(&cluster, pbft_core::ReplicaId(0), 4, 50);
}

/// Issue test 2: the same with n=7 (f=2).
#[test]
fn n7_requests_from_four_clients_execute_in_one_order_everywhere() {
    let mut cluster = recording_cluster(7, 4, protocol());
    submit_all(&mut cluster, 4, 50);
    assert!(cluster.run_until_complete(Time(60_000)), "not every request completed");
    assert_same_execution(&cluster, &[0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(cluster.replica(pbft_core::ReplicaId(0)).app().history().len(), 200);
    assert_all_completed(&cluster, pbft_core::ReplicaId(0), 4, 50);
}
