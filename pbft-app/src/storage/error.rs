//! Why the durable log failed ([`StorageError`]) and what damage recovery
//! found in it ([`Damage`]).

use super::identity::Identity;
use std::path::{Path, PathBuf};

/// Why a data directory could not be opened, appended to or compacted.
///
/// Every variant names the file or directory involved, so an operator can
/// go and look.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file system call failed (disk full, permission denied, not a
    /// directory, …).
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. "create directory" or "append to".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The directory was written by another replica or for another cluster.
    #[error(
        "{} belongs to {found}, but this is {expected}; \
         point each replica at its own data directory",
        .path.display()
    )]
    WrongOwner {
        /// The identity file.
        path: PathBuf,
        /// The identity recorded in the file.
        found: Identity,
        /// The identity of the replica that tried to open it.
        expected: Identity,
    },
    /// The directory was written in another record format than this
    /// build's (an older or newer pbft).
    #[error(
        "{} says its records are in storage format {found}, but this build reads format {expected} only; \
         run the build that wrote it, or move the directory aside so that the replica starts empty and \
         recovers its state from its peers (every replica of a cluster must run builds of one format)",
        .path.display()
    )]
    OtherFormat {
        /// The identity file.
        path: PathBuf,
        /// The format recorded in the file (0: from before formats were numbered).
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
    /// The identity file exists but does not hold an identity.
    #[error(
        "{} does not hold a replica identity (expected `cluster = \"NAME\"` and `replica = N`): {reason}",
        .path.display()
    )]
    BadIdentity {
        /// The identity file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The directory holds log segments but no identity file, so nothing
    /// says which replica wrote them.
    #[error(
        "{} holds log segments but no IDENTITY file; refusing to guess which replica wrote them",
        .path.display()
    )]
    MissingIdentity {
        /// The data directory.
        path: PathBuf,
    },
    /// A record is larger than the format allows.
    #[error("a record of {bytes} bytes is larger than the {max} bytes a log record may hold")]
    RecordTooLarge {
        /// The record's size.
        bytes: usize,
        /// The cap, [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES).
        max: usize,
    },
    /// An earlier write or sync failed, so what is on disk is unknown
    /// (after a failed fdatasync the page cache cannot be trusted either).
    #[error(
        "an earlier write to {} failed; reopen the data directory to recover what is on disk",
        .path.display()
    )]
    Poisoned {
        /// The segment whose write failed.
        path: PathBuf,
    },
}

/// Damage that [`DataDir::open`](super::DataDir::open) found in the log:
/// something a crash during a write cannot explain, so the records after it
/// are lost and the caller must recover (for a replica: fetch state from its
/// peers before it signs anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// A record failed its check with more data after it: its CRC-32C does
    /// not match, or its length runs past the end of the file or the
    /// record cap (the length cannot be verified without the payload).
    #[error("record at byte {offset} of {} fails its checksum", .segment.display())]
    ChecksumMismatch {
        /// The segment file.
        segment: PathBuf,
        /// Where the record starts in the file.
        offset: u64,
    },
    /// Segment numbers have a gap: this file should exist and does not.
    #[error("segment {} is missing (a gap in segment numbers)", .expected.display())]
    MissingSegment {
        /// The missing segment file.
        expected: PathBuf,
    },
    /// A segment file could not be read.
    #[error("cannot read {}: {reason}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// An earlier open found damage and moved the log into `dir`; no
    /// [`compact`](super::DataDir::compact) has followed yet, so the
    /// caller's recovery has not finished.
    #[error("damage found earlier ({reason}) is not resolved yet; evidence in {}", .dir.display())]
    Unresolved {
        /// The quarantine directory, `DIR/damaged-<n>/`.
        dir: PathBuf,
        /// The damage as first reported (the quarantine's DAMAGE file).
        reason: String,
    },
}

/// Maps an I/O error while doing `action` on `path` to [`StorageError::Io`].
pub(super) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { action, path, source }
}
