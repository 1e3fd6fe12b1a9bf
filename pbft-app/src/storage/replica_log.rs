//! A replica's persist records on its data directory: the [`Storage`] the
//! QUIC driver writes through, and the records a restart reads back.

use super::{DataDir, Identity, RecoveryReport, StorageError};
use pbft_core::{codec, Persist};
use pbft_net::Storage;
use std::path::Path;

/// The durable log of one replica's [`Persist`] records.
pub struct ReplicaLog {
    dir: DataDir,
}

/// What a replica restarts from.
pub struct Recovered {
    /// The log, ready for appending.
    pub log: ReplicaLog,
    /// The records, in the order they were written.
    pub records: Vec<Persist>,
    /// What opening the directory found.
    pub report: RecoveryReport,
}

/// Why a replica's records could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaLogError {
    /// The directory could not be opened (not writable, another owner, …).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A record passed its checksum but is not a record this version writes.
    #[error("{path}: record {index} is not a persist record this pbft writes: {reason}")]
    Undecodable {
        /// The data directory.
        path: String,
        /// Its position among the records read.
        index: usize,
        /// What the decoder said.
        reason: String,
    },
}

impl ReplicaLog {
    /// Opens `path` for `identity` and decodes its records; a torn last
    /// record has already been cut off, other damage is in the report.
    pub fn open(path: &Path, identity: &Identity, sync: bool) -> Result<Recovered, ReplicaLogError> {
        let opened = DataDir::open(path, identity, sync)?;
        let records = opened
            .records
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                // Without the 64 MiB message limit: the record passed its
                // checksum, so these are bytes this replica wrote, and a
                // snapshot of a state over 64 MiB (up to max_state_bytes)
                // must load again.
                codec::decode_certified::<Persist>(bytes).map_err(|e| ReplicaLogError::Undecodable {
                    path: path.display().to_string(),
                    index,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Recovered { log: ReplicaLog { dir: opened.dir }, records, report: opened.report })
    }
}

impl Storage for ReplicaLog {
    /// Appends the burst's records with one write and one sync; a snapshot
    /// starts a new segment and deletes the older ones (what it supersedes).
    fn persist(&mut self, records: &[Persist]) -> Result<u64, String> {
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut written = 0;
        for record in records {
            let bytes = codec::encode(record);
            written += bytes.len() as u64;
            if matches!(record, Persist::Snapshot(_)) {
                if !pending.is_empty() {
                    self.dir.append(&pending).map_err(|e| e.to_string())?;
                    pending.clear();
                }
                self.dir.compact(&bytes).map_err(|e| e.to_string())?;
            } else {
                pending.push(bytes);
            }
        }
        if !pending.is_empty() {
            self.dir.append(&pending).map_err(|e| e.to_string())?;
        }
        Ok(written)
    }

    fn syncs(&self) -> bool {
        self.dir.syncs()
    }
}
