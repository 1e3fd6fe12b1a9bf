//! Which messages a host may hand to a node, given the channel they came on.
//!
//! Every host knows who sent what it reads: the QUIC driver from the key its
//! connection is pinned to, the simulator from its envelopes. Most messages
//! may legitimately arrive from someone other than their author (a backup
//! relays a client's REQUEST; certificates travel inside other messages),
//! and their signatures are what makes them trustworthy. Two kinds of
//! message never do, so a host drops them when the channel does not match,
//! before any signature is checked:
//!
//! - **Anything but a REQUEST from a client.** A client takes part in the
//!   protocol only by its requests (OSDI'99 §4.1); any other message on its
//!   channel could only claim a replica's authorship.
//! - **A STATUS report from anyone but its author.** Each replica sends its
//!   own reports (TOCS'02 §5.2), and a replica answers each signer's reports
//!   at most once per interval, so that one peer cannot make it resend
//!   without end. A copy of replica k's old report read from another peer's
//!   channel can only be a replay, and answering it would spend k's budget:
//!   a traitor replaying k's reports would leave k's real ones unanswered
//!   (issue 21, point 7). Read only from k's own channel, k's reports are
//!   fresh by construction, with no counter that an amnesiac restart could
//!   turn back.

use crate::message::Message;
use crate::signed::Author;

/// Whether a message read from `channel`'s peer may reach the node.
pub fn may_carry(channel: Author, message: &Message) -> bool {
    match (channel, message) {
        (Author::Client(_), message) => matches!(message, Message::Request(_)),
        (Author::Replica(peer), Message::Status(report)) => report.payload().replica == peer,
        (Author::Replica(_), _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, ReplicaId};
    use crate::keys::SecretKey;
    use crate::message::{Checkpoint, Request, RequestKind, StatusReport};
    use crate::signed::Signed;
    use crate::Digest;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed([seed; 32])
    }

    fn status_of(replica: u32) -> Message {
        let report = StatusReport {
            view: 0,
            view_changing: false,
            last_executed: 0,
            stable_seq: 0,
            replica: ReplicaId(replica),
        };
        Message::Status(Signed::sign(report, &key(replica as u8)))
    }

    /// A replica's STATUS report is carried only by its own channel: from
    /// another replica it is a replay, from a client a forgery.
    #[test]
    fn a_status_report_is_carried_only_by_its_authors_channel() {
        assert!(may_carry(Author::Replica(ReplicaId(1)), &status_of(1)));
        assert!(!may_carry(Author::Replica(ReplicaId(2)), &status_of(1)), "replica 2 replaying 1's report");
        assert!(!may_carry(Author::Client(ClientId(1)), &status_of(1)));
    }

    /// A client's channel carries REQUESTs, its own or not (a replay of
    /// another client's request is caught by its timestamp), and nothing
    /// else; a replica's channel carries everything but others' reports.
    #[test]
    fn a_client_channel_carries_only_requests() {
        let request = Request { client: ClientId(2), timestamp: 1, op: vec![], kind: RequestKind::Write };
        let request = Message::Request(Signed::sign(request, &key(9)));
        let checkpoint = Checkpoint { seq: 64, state_digest: Digest([7; 32]), replica: ReplicaId(1) };
        let checkpoint = Message::Checkpoint(Signed::sign(checkpoint, &key(1)));
        assert!(may_carry(Author::Client(ClientId(1)), &request));
        assert!(!may_carry(Author::Client(ClientId(1)), &checkpoint));
        assert!(may_carry(Author::Replica(ReplicaId(2)), &request), "a backup relays a request");
        assert!(may_carry(Author::Replica(ReplicaId(2)), &checkpoint));
    }
}
