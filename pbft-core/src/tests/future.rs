//! Issue 21, point 4: the buffer of messages for views not yet entered is
//! bounded in bytes per sender, not only in count (OSDI'99 §4.4 lets a
//! replica keep a later view's messages until it gets there; nothing says
//! how many).

use super::kit::{step, Kit};
use crate::{Message, ProtocolConfig, Reject};

/// A config whose count bound is far off, so that only bytes can bind.
fn config() -> ProtocolConfig {
    ProtocolConfig {
        max_request_bytes: 4096,
        max_batch_bytes: 4096,
        max_future_messages_per_replica: 1_000,
        ..Kit::config()
    }
}

/// Replica 1, the primary of views 1, 5, 9, …, sends replica 0 (in view 0)
/// full PRE-PREPAREs for those far views. Replica 0 holds them until their
/// encoded bytes reach `future_bytes_per_replica`, refuses the rest as
/// `BufferFull` well before the count bound, and still holds another
/// sender's messages: each sender's share is its own.
#[test]
fn far_view_pre_prepares_from_one_replica_are_held_up_to_its_byte_budget() {
    let kit = Kit::new(4);
    let config = config();
    let mut replica = kit.replica_with(0, config.clone());
    let budget = config.future_bytes_per_replica(4);
    let mut refused = 0;
    let mut timestamp = 0;
    for round in 0..16u64 {
        for seq in 1..=8 {
            timestamp += 1;
            let batch = vec![kit.request_of(timestamp, vec![7; 4000])];
            let pre_prepare = kit.pre_prepare(1 + 4 * round, seq, batch);
            let out = step(&mut replica, crate::Time(0), Message::PrePrepare(pre_prepare));
            if out == super::kit::rejected(1, crate::MessageKind::PrePrepare, Reject::BufferFull) {
                refused += 1;
            }
        }
    }
    let usage = replica.buffer_usage();
    assert!(refused > 0, "128 full pre-prepares ({} bytes) all held", 128 * 4000);
    assert!(usage.future_bytes <= budget, "holds {} bytes, budget {budget}", usage.future_bytes);
    assert!(usage.future_bytes + 4200 > budget, "refused before the budget was reached");
    assert!(usage.future_messages < config.max_future_messages_per_replica, "the count bound did the work");
    let vote = kit.prepare(2, 1, 1, crate::Digest::of(b"x"));
    assert!(step(&mut replica, crate::Time(0), Message::Prepare(vote)).is_empty(), "another sender is held");
    assert_eq!(replica.buffer_usage().future_messages, usage.future_messages + 1);
}
