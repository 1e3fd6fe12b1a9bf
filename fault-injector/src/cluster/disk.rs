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
