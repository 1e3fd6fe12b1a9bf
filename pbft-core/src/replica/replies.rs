//! The reply cache: what a replica remembers of each client's executed
//! requests, so a repeated request is answered again and never executed twice
//! even when a client has several requests outstanding.

use crate::digest::Digest;
use crate::ids::ClientId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every client's replies; part of the checkpointed state.
pub(crate) type ReplyCache = BTreeMap<ClientId, ClientReplies>;

/// One client's executed requests. A client keeps at most `window`
/// (the protocol's `max_pending_per_client`) requests outstanding and issues
/// timestamp `t` only once every timestamp up to `t - window` completed, so a
/// request at or below `newest - window` can only be a repeat or a request
/// the client gave up on: it is never executed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReplies {
    /// The highest timestamp executed.
    pub newest: u64,
    /// The executed requests whose timestamps lie in the window
    /// `(newest - window, newest]`.
    pub recent: BTreeMap<u64, CachedReply>,
}

/// What executed under one timestamp, and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedReply {
    /// The digest of the request that executed. A client that sends another
    /// request under the same timestamp (two processes sharing one client
    /// identity, a clock stepped back) is answered with this digest, so it
    /// can tell the result is not its request's (issue 21, point 6).
    pub request: Digest,
    /// The application's result, at most `max_result_bytes`; empty when it
    /// was withheld.
    pub result: Vec<u8>,
    /// The size of a result over `max_result_bytes`, which is not kept.
    pub withheld: Option<u64>,
}

/// A result as a replica keeps and sends it: whole if it is within `limit`
/// bytes, otherwise withheld, only its size kept.
pub(crate) fn bounded(result: Vec<u8>, limit: usize) -> (Vec<u8>, Option<u64>) {
    if result.len() <= limit {
        (result, None)
    } else {
        (Vec::new(), Some(result.len() as u64))
    }
}

/// What a replica makes of a request's timestamp.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen<'a> {
    /// Not executed yet: order and execute it.
    New,
    /// Executed already: this is what executed, and its result.
    Executed(&'a CachedReply),
    /// Below the window: never executed again and no result kept.
    Stale,
}

impl ClientReplies {
    /// Classifies `timestamp` against what executed.
    pub(crate) fn seen(&self, timestamp: u64, window: usize) -> Seen<'_> {
        if let Some(result) = self.recent.get(&timestamp) {
            return Seen::Executed(result);
        }
        if timestamp <= self.newest.saturating_sub(window as u64) {
            return Seen::Stale;
        }
        Seen::New
    }

    /// Records that `reply`'s request executed under `timestamp`, forgetting
    /// results that fell out of the window. Returns the highest stale
    /// timestamp.
    pub(crate) fn record(&mut self, timestamp: u64, reply: CachedReply, window: usize) -> u64 {
        self.newest = self.newest.max(timestamp);
        self.recent.insert(timestamp, reply);
        let stale_up_to = self.newest.saturating_sub(window as u64);
        while let Some(oldest) = self.recent.first_entry() {
            if *oldest.key() > stale_up_to {
                break;
            }
            oldest.remove();
        }
        stale_up_to
    }
}

/// How `timestamp` of `client` stands in `cache`.
pub(crate) fn seen(cache: &ReplyCache, client: ClientId, timestamp: u64, window: usize) -> Seen<'_> {
    match cache.get(&client) {
        Some(replies) => replies.seen(timestamp, window),
        None => Seen::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(result: &[u8]) -> CachedReply {
        CachedReply { request: Digest::of(result), result: result.to_vec(), withheld: None }
    }

    fn record(replies: &mut ClientReplies, timestamp: u64, result: &[u8]) -> u64 {
        replies.record(timestamp, cached(result), 4)
    }

    #[test]
    fn requests_inside_the_window_execute_once_in_any_order_and_older_ones_are_stale() {
        let mut replies = ClientReplies::default();
        assert_eq!(replies.seen(3, 4), Seen::New);
        record(&mut replies, 3, b"three");
        assert_eq!(replies.seen(1, 4), Seen::New, "1 is inside the window (newest 3, window 4)");
        assert_eq!(replies.seen(3, 4), Seen::Executed(&cached(b"three")));
        record(&mut replies, 1, b"one");
        assert_eq!(record(&mut replies, 6, b"six"), 2);
        assert_eq!(replies.seen(1, 4), Seen::Stale);
        assert_eq!(replies.seen(2, 4), Seen::Stale, "never executed, but below the window");
        assert_eq!(replies.seen(3, 4), Seen::Executed(&cached(b"three")));
        assert_eq!(replies.seen(4, 4), Seen::New);
        assert_eq!(replies.recent.keys().copied().collect::<Vec<_>>(), vec![3, 6]);
    }
}
