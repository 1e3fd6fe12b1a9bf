//! [`DataDir`]: an opened data directory, the one handle through which the
//! node runtime makes the protocol core's records durable.

use super::error::{io_error as io, Damage, StorageError};
use super::identity::{self, Identity, IDENTITY_FILE};
use super::replay::replay;
use super::{frame, quarantine, segment};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An opened data directory: the live log of one replica, appended to at
/// its newest segment.
///
/// The directory is locked by convention only: one process per directory
/// (each replica has its own), nothing on disk stops a second one.
#[derive(Debug)]
pub struct DataDir {
    /// The directory.
    path: PathBuf,
    /// Whether appends and compactions fdatasync.
    sync: bool,
    /// The number of the segment appends go to.
    active: u64,
    /// Its path.
    active_path: PathBuf,
    /// It, open for appending.
    file: File,
    /// Set by a failed write or sync: what is on disk is unknown until the
    /// directory is reopened.
    poisoned: bool,
}

/// What [`DataDir::open`] gives back: the directory, ready for appends, and
/// what was in it.
#[derive(Debug)]
pub struct Opened {
    /// The opened directory.
    pub dir: DataDir,
    /// The records replayed, oldest first (see [`RecoveryReport::damage`]
    /// for whether they are all there were).
    pub records: Vec<Vec<u8>>,
    /// What recovery found.
    pub report: RecoveryReport,
}

/// What [`DataDir::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory held no log: a new replica.
    pub fresh: bool,
    /// Live segment files found (replay stops at damage, so with damage
    /// not all of them were read).
    pub segments: usize,
    /// Records replayed.
    pub records: usize,
    /// Bytes cut off the end of the last segment: a write a crash
    /// interrupted. The log is healthy after the cut.
    pub torn_tail_bytes: u64,
    /// Damage that a crash cannot explain, or an earlier one not yet
    /// followed by a [`DataDir::compact`]. When set, records written after
    /// the damage are lost: the caller must recover before it signs.
    pub damage: Option<Damage>,
}

impl DataDir {
    /// Opens (creating if absent) the data directory `path` for replica
    /// `identity`, replays its log and makes it ready for appends.
    ///
    /// Refuses a directory written for another replica or cluster
    /// ([`StorageError::WrongOwner`] names both), one holding segments but
    /// no identity, and one that cannot be created or written. Damage is not
    /// an error: it is reported in [`RecoveryReport::damage`] and the log is
    /// quarantined (see the [module doc](super)). With `sync == false`
    /// nothing is fdatasynced: for benchmarks only, a crash loses writes.
    pub fn open(path: &Path, identity: &Identity, sync: bool) -> Result<Opened, StorageError> {
        std::fs::create_dir_all(path).map_err(io("create directory", path))?;
        if sync {
            // The new directory's own entry must be durable too.
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            super::fsync_dir(parent)?;
        }
        check_owner(path, identity)?;
        let mut live = segment::list(path)?;
        if quarantine::finish_interrupted(path, &live, sync)? {
            live = segment::list(path)?;
        }
        let fresh = live.is_empty() && quarantine::newest(path)?.is_none();
        let replayed = replay(path, &live);
        let mut report = RecoveryReport {
            fresh,
            segments: live.len(),
            records: replayed.records.len(),
            torn_tail_bytes: 0,
            damage: None,
        };
        let (active, active_path, file) = if let Some(damage) = replayed.damage {
            let kept = quarantine::quarantine(path, &live, &damage, &replayed.records, sync)?;
            report.damage = Some(damage);
            kept
        } else {
            if let Some(torn) = &replayed.torn {
                cut_torn_tail(&torn.segment, torn.good_len, sync)?;
                report.torn_tail_bytes = torn.bytes;
            }
            report.damage = quarantine::unresolved(path, &live)?;
            match live.last() {
                Some((number, last)) => (*number, last.clone(), open_for_append(last)?),
                None => {
                    let number = quarantine::newest(path)?.unwrap_or(1).max(1);
                    let (created, file) = segment::create(path, number, &[], sync)?;
                    (number, created, file)
                }
            }
        };
        let dir = DataDir { path: path.to_path_buf(), sync, active, active_path, file, poisoned: false };
        Ok(Opened { dir, records: replayed.records, report })
    }

    /// Whether appends and compactions fdatasync.
    pub fn syncs(&self) -> bool {
        self.sync
    }

    /// Appends `records`, one burst, with one write and (when syncing) one
    /// fdatasync: group commit. When it returns `Ok` the records are
    /// durable; any error (disk full included) means they may not be, and
    /// every later call fails until the directory is reopened. Returns the
    /// bytes written.
    pub fn append(&mut self, records: &[Vec<u8>]) -> Result<u64, StorageError> {
        self.check_not_poisoned()?;
        let mut bytes = Vec::new();
        for record in records {
            frame::encode(record, &mut bytes)?;
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let written = self.file.write_all(&bytes).map_err(io("append to", &self.active_path));
        self.poisoned = written.is_err();
        written?;
        self.sync_active()?;
        Ok(bytes.len() as u64)
    }

    /// Starts a new segment whose first record is `snapshot` (durable before
    /// anything is deleted), then deletes every older segment, so disk use
    /// stays bounded by what lies after the newest snapshot. A compact also
    /// resolves earlier damage (the quarantine directory stays, for an
    /// operator to remove). Returns the bytes written.
    pub fn compact(&mut self, snapshot: &[u8]) -> Result<u64, StorageError> {
        self.check_not_poisoned()?;
        let mut bytes = Vec::new();
        frame::encode(snapshot, &mut bytes)?;
        let number = self.active + 1;
        let created = segment::create(&self.path, number, &bytes, self.sync);
        self.poisoned = created.is_err();
        let (path, file) = created?;
        self.active = number;
        self.active_path = path;
        self.file = file;
        for (older, old_path) in segment::list(&self.path)? {
            if older < number {
                std::fs::remove_file(&old_path).map_err(io("delete", &old_path))?;
            }
        }
        if self.sync {
            super::fsync_dir(&self.path)?;
        }
        Ok(bytes.len() as u64)
    }

    /// The bytes of all live segment files (quarantined ones not counted).
    pub fn disk_bytes(&self) -> Result<u64, StorageError> {
        let mut total = 0;
        for (_, path) in segment::list(&self.path)? {
            total += std::fs::metadata(&path).map_err(io("stat", &path))?.len();
        }
        Ok(total)
    }

    /// The data directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails when an earlier write or sync failed.
    fn check_not_poisoned(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned { path: self.active_path.clone() });
        }
        Ok(())
    }

    /// Fdatasyncs the active segment when syncing; poisons on failure.
    fn sync_active(&mut self) -> Result<(), StorageError> {
        if !self.sync {
            return Ok(());
        }
        let synced = self.file.sync_data().map_err(io("fdatasync", &self.active_path));
        self.poisoned = synced.is_err();
        synced
    }
}

/// Checks the identity file of `dir` against `identity`, writing it when the
/// directory has none and no log either.
fn check_owner(dir: &Path, identity: &Identity) -> Result<(), StorageError> {
    match identity::read(dir)? {
        Some(found) if found.format != identity.format => Err(StorageError::OtherFormat {
            path: dir.join(IDENTITY_FILE),
            found: found.format,
            expected: identity.format,
        }),
        Some(found) if found == *identity => Ok(()),
        Some(found) => {
            Err(StorageError::WrongOwner { path: dir.join(IDENTITY_FILE), found, expected: identity.clone() })
        }
        None if segment::list(dir)?.is_empty() => identity::write(dir, identity),
        None => Err(StorageError::MissingIdentity { path: dir.to_path_buf() }),
    }
}

/// Cuts `segment` back to `good_len` bytes, the end of its last good record.
fn cut_torn_tail(segment: &Path, good_len: u64, sync: bool) -> Result<(), StorageError> {
    let file = std::fs::OpenOptions::new().write(true).open(segment).map_err(io("open", segment))?;
    file.set_len(good_len).map_err(io("truncate", segment))?;
    if sync {
        file.sync_data().map_err(io("fdatasync", segment))?;
    }
    Ok(())
}

/// Opens `segment` for appending.
fn open_for_append(segment: &Path) -> Result<File, StorageError> {
    std::fs::OpenOptions::new().append(true).open(segment).map_err(io("open for appending", segment))
}
