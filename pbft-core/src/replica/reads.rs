//! The read-only optimisation (OSDI'99 §5.1): an unordered read is answered
//! from this replica's state without running the protocol.
//!
//! A replica answers only once it has executed every sequence number it had
//! sent a COMMIT for when the read arrived. That makes 2f+1 matching answers
//! linearizable: a write that completed before the read was sent committed,
//! so 2f+1 replicas had sent COMMIT for it; any 2f+1 answering replicas share
//! an honest one with them, whose answer reflects the write.

use super::replies::CachedReply;
use super::Replica;
use crate::app::ReplicatedStateMachine;
use crate::message::Request;
use crate::reject::Reject;
use crate::signed::{Signable, Signed};

impl<A: ReplicatedStateMachine> Replica<A> {
    /// Answers `request` (an unordered read) now, or holds it until execution
    /// reaches every sequence number this replica has committed to.
    pub(super) fn on_unordered_read(&mut self, request: Signed<Request>) {
        let must_reach = self.prepared_certs.keys().next_back().copied().unwrap_or(0);
        if self.last_executed >= must_reach {
            self.answer_read(&request);
            return;
        }
        let client = request.payload().client;
        let held = self.held_reads.entry(client).or_default();
        if held.len() >= self.config.max_pending_per_client {
            self.reject(request.payload().author(), Request::KIND, Reject::BufferFull);
            return;
        }
        held.push_back((must_reach, request));
    }

    /// Answers the held reads that execution has caught up with.
    pub(super) fn answer_held_reads(&mut self) {
        let executed = self.last_executed;
        let mut ready = Vec::new();
        for held in self.held_reads.values_mut() {
            while held.front().is_some_and(|(must_reach, _)| *must_reach <= executed) {
                if let Some((_, request)) = held.pop_front() {
                    ready.push(request);
                }
            }
        }
        self.held_reads.retain(|_, held| !held.is_empty());
        for request in ready {
            self.answer_read(&request);
        }
    }

    fn answer_read(&mut self, request: &Signed<Request>) {
        let body = request.payload();
        let result = self.app.query(&body.op);
        let (result, withheld) = self.bounded_result(body.client, body.timestamp, result);
        self.reply(
            body.client,
            body.timestamp,
            CachedReply { request: request.digest(), result, withheld },
            true,
        );
    }
}
