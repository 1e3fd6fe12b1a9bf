//! Identifiers of the protocol's participants and positions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A view number. The primary of view `v` is replica `v mod n`.
pub type View = u64;

/// A sequence number assigned by the primary to a batch of requests.
pub type SeqNum = u64;

/// The index of a replica in the cluster, `0..n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub u32);

/// The identity of a client, as registered in the key book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replica {}", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}", self.0)
    }
}

impl ReplicaId {
    /// The index of this replica as a `usize`, for addressing per-replica tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
