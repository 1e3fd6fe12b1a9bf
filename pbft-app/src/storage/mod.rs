//! The durable log of a replica (issue 20, "Durability").
//!
//! The protocol core emits records, already-encoded byte strings that this
//! module does not interpret, which must be on disk before the replica sends
//! anything that depends on them. The node runtime opens a [`DataDir`],
//! replays its records into the core, then calls [`DataDir::append`] once
//! per burst of records and [`DataDir::compact`] after each snapshot.
//!
//! # Why a segmented log and not an embedded database
//!
//! The access pattern is append, group commit, replay from the newest
//! snapshot, and delete old segments. An append-only log with a CRC-32C per
//! record (the norm for consensus logs: etcd's WAL, TigerBeetle's journal)
//! does a burst with one `write` and one `fdatasync`, replays with one
//! sequential read, and frees space by deleting whole files. A database
//! would add a second log (its own WAL), page management and compaction
//! that this pattern never needs.
//!
//! # Layout
//!
//! - `DIR/IDENTITY`: TOML, `cluster = "NAME"`, `replica = N` and
//!   `format = F`, written once (atomically) on the first open. Opening it
//!   as another replica or for another cluster is
//!   [`StorageError::WrongOwner`]; with a build of another record format
//!   ([`STORAGE_FORMAT`]), [`StorageError::OtherFormat`].
//! - `DIR/log-00000000000000000001.seg`, `…2.seg`, …: the segments, numbered
//!   without gaps. Appends go to the highest; [`DataDir::compact`] starts the
//!   next one with the snapshot and deletes the older ones.
//! - `DIR/damaged-<n>/`: a quarantined log (see below), with a `DAMAGE`
//!   file saying what was wrong. Never deleted by this module.
//!
//! A record on disk is `length: u32 LE | crc: u32 LE | payload`; `crc` is
//! the CRC-32C of the four length bytes followed by the payload, so a
//! corrupted length is caught as surely as a corrupted payload. A payload
//! is at most [`MAX_RECORD_BYTES`] (1 GiB); a larger length on disk is a
//! bad record, and no length is used before it is checked against the bytes
//! that remain in the file, so a garbage length never allocates.
//!
//! # Recovery rules
//!
//! [`DataDir::open`] replays the segments in order and returns every record
//! in them, oldest first. Normally only the newest segment exists, so that
//! is the newest snapshot and what followed it; a crash during `compact`
//! can leave older segments, and then their records come first.
//!
//! - **Torn tail.** A bad record in the last segment with no valid record
//!   at any later offset (too few bytes for the header or for the payload,
//!   a length over the cap, or a checksum mismatch at the very end) is what
//!   a crash during a write leaves. The file is cut back to the end of the
//!   last good record, [`RecoveryReport::torn_tail_bytes`] says how much
//!   went, and the log is healthy (`damage: None`). Every later offset is
//!   tried because a bad record's own length cannot be trusted; the search
//!   hashes at most 256 MiB, and when that runs out the bad record counts
//!   as damage, never the other way round.
//! - **Damage.** A bad record with valid data after it, a bad record in any
//!   segment but the last, a gap in segment numbers, or an unreadable
//!   segment: a crash cannot explain these, and the records after the
//!   damage are lost. `open` returns the records before the damage and
//!   reports it in [`RecoveryReport::damage`]; the caller must recover (for
//!   a replica: fetch state from its peers) before it signs anything.
//! - **Quarantine.** On damage, `open` moves the whole live log into
//!   `DIR/damaged-<n>/` (renamed, not deleted or truncated: the evidence
//!   stays whole) and starts a new live log, segment `n`, holding the
//!   records from before the damage. This was chosen over leaving the
//!   damaged files in place and appending after them because (a) every
//!   later open would hit the same damage and could not return the records
//!   appended since, and (b) the new log is one clean segment that the
//!   ordinary rules apply to. Until the next `compact` (the caller's
//!   recovery ending with a snapshot), every open reports
//!   [`Damage::Unresolved`], so a crash during recovery does not make the
//!   replica forget that its log lost records.
//! - **Fresh.** A directory with no segments and no quarantine is
//!   `fresh: true`.
//!
//! # Writes
//!
//! [`DataDir::append`] returns `Ok` only once the burst is written and
//! fdatasynced. Any error, disk full included, is returned (the caller stops
//! signing) and poisons the handle: after a failed write or fdatasync what
//! is on disk is unknown, so later calls fail until the directory is
//! reopened and recovery reads what is really there. Opening with
//! `sync == false` skips every fdatasync: for benchmarks only, since a crash
//! (of the machine, not just the process) then loses acknowledged records.

mod data_dir;
mod error;
mod frame;
mod identity;
mod quarantine;
mod replay;
mod replica_log;
mod segment;
#[cfg(test)]
mod tests;

pub use data_dir::{DataDir, Opened, RecoveryReport};
pub use error::{Damage, StorageError};
pub use frame::MAX_RECORD_BYTES;
pub use identity::{Identity, STORAGE_FORMAT};
pub use replica_log::{Recovered, ReplicaLog, ReplicaLogError};

use std::path::Path;

/// Fsyncs directory `dir`, so that files created, renamed or deleted in it
/// stay that way after a crash.
fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(error::io_error("fsync directory", dir))
}
