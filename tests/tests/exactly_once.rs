//! Exactly-once execution of client requests (OSDI'99 §4.1).

use fault_injector::Payload;
use pbft_core::{ClientId, Message, ProtocolConfig, ReplicaId, Time};
use pbft_tests::{op, recording_cluster};

/// Issue test 11: a client whose replies were lost re-sends its request to
/// every replica; replicas answer from the reply cache, the client accepts the
/// original result, and the operation runs once everywhere.
#[test]
fn resent_request_is_answered_from_the_reply_cache_and_runs_once() {
    let mut cluster = recording_cluster(4, 1, ProtocolConfig::default());
    // The first replies are lost on the way to the client.
    cluster.set_filter(|e| !(matches!(e.payload, Payload::Reply(_)) && e.sent_at < Time(100)));
    cluster.submit(ClientId(0), op(0, 0));
    assert!(cluster.run_until_complete(Time(60_000)));
    let done = cluster.completions(ClientId(0));
    assert_eq!(done.len(), 1);
    assert!(done[0].completed_at >= Time(1_000), "completed before the client re-sent");
    assert_eq!(done[0].result, b"1:c0-op0".to_vec());
    for replica in cluster.replicas() {
        assert_eq!(replica.app().history(), &[op(0, 0)], "{} ran it other than once", replica.id());
        assert_eq!(replica.reply_cache()[&ClientId(0)].newest, 1);
    }

    // A replay of the very same signed request, straight to every replica,
    // is answered again and still not executed.
    let client_key = cluster.keys().client(ClientId(0)).clone();
    let replay = pbft_core::Signed::sign(
        pbft_core::Request {
            client: ClientId(0),
            timestamp: 1,
            op: op(0, 0),
            kind: pbft_core::RequestKind::Write,
        },
        &client_key,
    );
    for id in 0..4 {
        cluster.inject(ReplicaId(id), Message::Request(replay.clone()));
    }
    cluster.run_until(Time(cluster.now().as_millis() + 5_000), |_| false);
    for replica in cluster.replicas() {
        assert_eq!(replica.app().history().len(), 1);
    }
}
