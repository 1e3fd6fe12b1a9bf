//! Read-only queries (issue 7, test 3): answered from committed state
//! without ordering when 2f+1 replicas agree, ordered when they do not; a
//! traitor lying in its read replies is outvoted.

use fault_injector::traitor::Behavior;
use fault_injector::{Completion, NodeId, Payload, SimCluster, SimConfig};
use pbft_app::apps::kv::{KvOp, KvQuery, KvResult, KvStore};
use pbft_app::typed::{decode_output, encode_request};
use pbft_core::{ClientId, Event, Message, ReplicaId, Time};
use std::collections::BTreeSet;

const LIAR: ReplicaId = ReplicaId(3);
const CLIENT: ClientId = ClientId(0);

/// n=4 with replica 3 a `forge` traitor, which answers clients with results
/// it never computed (and otherwise runs the protocol).
fn cluster_with_a_liar() -> SimCluster<KvStore> {
    let mut cluster = SimCluster::new(SimConfig::new(4, 1), |_| KvStore::default());
    cluster.make_traitor(LIAR, Behavior::Forge, BTreeSet::from([LIAR]));
    cluster
}

fn put(cluster: &mut SimCluster<KvStore>, key: &str, value: &str) {
    let op = KvOp::Put { key: key.into(), value: value.into() };
    cluster.submit(CLIENT, encode_request(&op).unwrap());
}

fn get(cluster: &mut SimCluster<KvStore>, key: &str) {
    cluster.submit_query(CLIENT, encode_request(&KvQuery::Get { key: key.into() }).unwrap());
}

fn last_completion(cluster: &SimCluster<KvStore>) -> (Completion, KvResult) {
    let completion = cluster.completions(CLIENT).last().cloned().expect("a completion");
    let result = decode_output(&completion.result).expect("a KvResult");
    (completion, result)
}

/// Whether any honest replica ordered and executed the request with this timestamp.
fn was_ordered(cluster: &SimCluster<KvStore>, timestamp: u64) -> bool {
    cluster.events().iter().any(|(_, replica, event)| {
        *replica != LIAR
            && matches!(event, Event::Executed { requests, .. }
                if requests.iter().any(|r| r.client == CLIENT && r.timestamp == timestamp))
    })
}

#[test]
fn a_query_returns_the_committed_value_without_ordering_and_the_liar_is_outvoted() {
    let mut cluster = cluster_with_a_liar();
    put(&mut cluster, "k", "v1");
    get(&mut cluster, "k");
    assert!(cluster.run_until_complete(Time(30_000)));
    let (completion, result) = last_completion(&cluster);
    assert!(completion.read_only);
    assert_eq!(result, KvResult::Value(Some("v1".into())), "the value the completed put wrote");
    assert!(!was_ordered(&cluster, completion.timestamp), "2f+1 honest answers agreed: no ordering needed");
    let executed_before = cluster.replica(ReplicaId(0)).last_executed();
    assert_eq!(executed_before, 1, "only the put was ordered");
}

#[test]
fn a_query_whose_answers_disagree_falls_back_to_ordering_and_returns_the_committed_value() {
    let mut cluster = cluster_with_a_liar();
    // Replica 2 hears nothing of the protocol (client requests still reach
    // it), so it stays at the empty store and answers reads from it.
    let stale = NodeId::Replica(ReplicaId(2));
    cluster.set_filter(move |e| e.to != stale || matches!(e.payload, Payload::Message(Message::Request(_))));
    put(&mut cluster, "k", "v1");
    get(&mut cluster, "k");
    assert!(cluster.run_until_complete(Time(30_000)));
    assert_eq!(cluster.replica(ReplicaId(2)).last_executed(), 0, "replica 2 really is behind");
    let (completion, result) = last_completion(&cluster);
    assert!(completion.read_only);
    assert_eq!(
        result,
        KvResult::Value(Some("v1".into())),
        "neither the stale answer nor the lie is accepted"
    );
    assert!(
        was_ordered(&cluster, completion.timestamp),
        "fresh, stale and lying answers disagree: the query was ordered"
    );
}

#[test]
fn queries_and_writes_interleave_linearizably_under_a_liar() {
    let mut cluster = cluster_with_a_liar();
    for i in 0..20 {
        put(&mut cluster, "k", &format!("v{i}"));
        get(&mut cluster, "k");
    }
    assert!(cluster.run_until_complete(Time(120_000)));
    let completions = cluster.completions(CLIENT);
    assert_eq!(completions.len(), 40);
    for (i, pair) in completions.chunks(2).enumerate() {
        let read: KvResult = decode_output(&pair[1].result).unwrap();
        assert_eq!(read, KvResult::Value(Some(format!("v{i}"))), "a read sees the write completed before it");
    }
}
