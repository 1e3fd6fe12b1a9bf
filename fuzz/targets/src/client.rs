//! The core client fed replies from three honest replicas and one traitor.
//!
//! The fuzzer chooses the traitor, the operations, the order of the honest
//! replies, every field of the traitor's replies and the passing of time.
//! Honest replicas answer a request with the result the oracle defines for
//! its operation and name the request they executed, as replicas do.
//!
//! Properties (OSDI'99 §4.1: a client waits for f+1 matching replies, 2f+1
//! for an unordered read): a request completes only with the honest result;
//! one traitor can never make the client give up a request as
//! `TimestampReused`; nothing panics.

use crate::keys::{keys, CLIENTS, N};
use arbitrary::{Result, Unstructured};
use pbft_core::{Client, ClientOutput, Digest, ReplicaId, Reply, RequestKind, Time};
use std::collections::BTreeMap;

/// What honest replicas answer for `op`.
fn honest_result(op: &[u8]) -> Vec<u8> {
    op.iter().rev().copied().collect()
}

/// The request the client most recently sent under a timestamp.
struct Sent {
    digest: Digest,
    op: Vec<u8>,
    unordered: bool,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let _ = drive(&mut Unstructured::new(data));
}

fn drive(u: &mut Unstructured<'_>) -> Result<()> {
    let keys = keys();
    let traitor = ReplicaId(u.int_in_range(0..=N as u32 - 1)?);
    let window = u.int_in_range(1..=4usize)?;
    let mut client = Client::new(CLIENTS[0], keys.clients[0].clone(), keys.quorum(), 100, 1)
        .with_window(window)
        .with_max_request_bytes(64);
    let mut now = Time(0);
    let mut sent: BTreeMap<u64, Sent> = BTreeMap::new();
    for _ in 0..256 {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0..=5u8)? {
            0 => {
                let _ = client.invoke(now, u.arbitrary()?);
            }
            1 => {
                let _ = client.query(now, u.arbitrary()?);
            }
            2 => {
                now = Time(now.0 + u64::from(u.int_in_range(0..=250u8)?));
                client.handle_timeout(now);
            }
            3 => {
                let honest: Vec<u32> = (0..N as u32).filter(|&r| r != traitor.0).collect();
                let from = ReplicaId(*u.choose(&honest)?);
                let Some(&timestamp) = u.choose(&sent.keys().copied().collect::<Vec<_>>()).ok() else {
                    continue;
                };
                let request = &sent[&timestamp];
                let reply = Reply {
                    view: u.int_in_range(0..=3)?,
                    timestamp,
                    client: client.id(),
                    replica: from,
                    request: request.digest,
                    result: honest_result(&request.op),
                    withheld: None,
                    unordered: request.unordered,
                };
                client.handle_reply(now, from, reply);
            }
            4 => {
                let reply = Reply {
                    view: u.arbitrary()?,
                    timestamp: if u.arbitrary()? { u.int_in_range(0..=8)? } else { u.arbitrary()? },
                    client: if u.arbitrary()? { client.id() } else { pbft_core::ClientId(u.arbitrary()?) },
                    replica: if u.arbitrary()? { traitor } else { ReplicaId(u.arbitrary()?) },
                    request: match sent.values().next() {
                        Some(first) if u.arbitrary()? => first.digest,
                        _ => Digest::of(u.bytes(4)?),
                    },
                    result: u.arbitrary()?,
                    withheld: u.arbitrary()?,
                    unordered: u.arbitrary()?,
                };
                client.handle_reply(now, traitor, reply);
            }
            _ => {
                let _ = client.abandon(u.int_in_range(0..=8)?);
            }
        }
        while let Some(output) = client.poll_output() {
            match output {
                ClientOutput::Send { request, .. } | ClientOutput::Broadcast(request) => {
                    let body = request.payload();
                    let unordered = body.kind == RequestKind::UnorderedRead;
                    sent.insert(
                        body.timestamp,
                        Sent { digest: request.digest(), op: body.op.clone(), unordered },
                    );
                }
                ClientOutput::Completed { timestamp, result } => {
                    let request = sent.remove(&timestamp).expect("completed a request it never sent");
                    assert_eq!(
                        result,
                        honest_result(&request.op),
                        "completed {timestamp} with a traitor's result"
                    );
                }
                ClientOutput::TimestampReused { timestamp } => {
                    panic!("one traitor made the client give up {timestamp} as reused")
                }
                ClientOutput::ResultWithheld { timestamp, .. } => {
                    panic!("one traitor made the client take {timestamp}'s result as withheld")
                }
            }
        }
    }
    Ok(())
}
