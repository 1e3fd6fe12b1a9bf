//! A replica's simulated disk: what the replica asked to persist, split into
//! what was synced and what a crash would lose.

use pbft_core::Persist;
use std::fmt;

/// What can happen to a replica's disk while it is down, beyond losing
/// what was not synced. The simulator models what the node does with each
/// finding; detecting them in real files is the storage module's job, and is
/// tested there on real files (pbft-app's `storage` tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskFault {
    /// A bit flipped in a synced record that is not the last: its checksum
    /// fails with valid records after it, which no crash explains. The log
    /// is quarantined and the replica recovers from its peers.
    FlippedBit,
    /// The log's segment file is gone (the identity file is left): the
    /// directory reads as empty for a replica its peers know.
    LostFile,
    /// The whole disk is gone: a new, empty data directory.
    LostDisk,
}

impl DiskFault {
    /// Every fault, for drawing one.
    pub const ALL: [DiskFault; 3] = [DiskFault::FlippedBit, DiskFault::LostFile, DiskFault::LostDisk];
}

impl fmt::Display for DiskFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskFault::FlippedBit => "flipped-bit",
            DiskFault::LostFile => "lost-file",
            DiskFault::LostDisk => "lost-disk",
        })
    }
}

/// The records one replica persisted.
#[derive(Debug, Default)]
pub(crate) struct SimDisk {
    synced: Vec<Persist>,
    unsynced: Vec<Persist>,
    /// Lost or damaged, and nothing synced since: the replica was
    /// recovering from its peers (it persists nothing meanwhile).
    lost: bool,
    /// When the disk was last synced.
    #[cfg(feature = "mutations")]
    synced_at: pbft_core::Time,
}

impl SimDisk {
    /// How often the send-before-persist mutation syncs, in milliseconds.
    #[cfg(feature = "mutations")]
    pub(crate) const LAZY_SYNC_MS: u64 = 50;

    /// The send-before-persist mutation: syncs only if the last sync is
    /// [`SimDisk::LAZY_SYNC_MS`] old.
    #[cfg(feature = "mutations")]
    pub(crate) fn sync_lazily(&mut self, now: pbft_core::Time) {
        if now.as_millis() >= self.synced_at.as_millis() + Self::LAZY_SYNC_MS {
            self.synced_at = now;
            self.sync();
        }
    }

    /// Buffers `record`; it survives a crash only once synced.
    pub(crate) fn write(&mut self, record: Persist) {
        self.unsynced.push(record);
    }

    /// Makes every written record durable (one fdatasync for all of them).
    /// A snapshot makes every record before it obsolete: they are deleted,
    /// as a real log deletes its old segments.
    pub(crate) fn sync(&mut self) {
        if self.unsynced.is_empty() {
            return;
        }
        self.lost = false;
        self.synced.append(&mut self.unsynced);
        if let Some(last) = self.synced.iter().rposition(|r| matches!(r, Persist::Snapshot(_))) {
            self.synced.drain(..last);
        }
    }

    /// Before a send and at the end of a burst: if a record written since
    /// the last sync holds back sends, syncs (everything written, as an
    /// fdatasync does). Records that hold back no send stay unsynced until
    /// then, so a crash can lose them after the replies that followed them
    /// went out: the slowest storage the persistence rule allows.
    pub(crate) fn sync_barriers(&mut self) {
        if self.unsynced.iter().any(Persist::holds_back_sends) {
            self.sync();
        }
    }

    /// A crash: what was not synced is lost.
    pub(crate) fn crash(&mut self) {
        self.unsynced.clear();
    }

    /// The disk is gone: nothing survives.
    pub(crate) fn wipe(&mut self) {
        self.synced.clear();
        self.unsynced.clear();
        self.lost = true;
    }

    /// Whether the disk was lost or damaged and nothing was synced since, as
    /// the node sees an empty data directory or a quarantine not yet
    /// followed by a snapshot.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost
    }

    /// What a restart reads back, in the order it was written.
    pub(crate) fn records(&self) -> Vec<Persist> {
        self.synced.clone()
    }

    /// How many records are durable (bounded by the window, not by uptime).
    pub(crate) fn durable_records(&self) -> usize {
        self.synced.len()
    }
}
