//! A replica's simulated disk: what the replica asked to persist, split into
//! what was synced and what a crash would lose.

use pbft_core::Persist;

/// The records one replica persisted.
#[derive(Debug, Default)]
pub(crate) struct SimDisk {
    synced: Vec<Persist>,
    unsynced: Vec<Persist>,
}

impl SimDisk {
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
