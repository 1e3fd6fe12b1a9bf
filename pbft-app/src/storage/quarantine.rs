//! Quarantine: moving a damaged log aside into `DIR/damaged-<n>/` (evidence
//! kept, nothing deleted or truncated), and telling later opens that the
//! damage is not resolved until a [`compact`](super::DataDir::compact).
//!
//! `<n>` is the number of the segment that starts the new live log, which
//! holds the records from before the damage. The damage is unresolved while
//! no live segment is numbered above `n`; `compact` starts one.

use super::error::{io_error as io, Damage, StorageError};
use super::frame;
use super::fsync_dir;
use super::segment;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const DIR_PREFIX: &str = "damaged-";
/// The file in a quarantine directory that says what the damage was.
const DAMAGE_FILE: &str = "DAMAGE";

/// The quarantine directories in `dir`, by number, lowest first.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let name = entry.file_name();
        let number = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)).and_then(|d| d.parse().ok());
        if let Some(number) = number {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The number of the newest quarantine in `dir`, if any.
pub fn newest(dir: &Path) -> Result<Option<u64>, StorageError> {
    Ok(list(dir)?.last().map(|(n, _)| *n))
}

/// The unresolved damage of the newest quarantine in `dir`, given the live
/// segments (lowest first); `None` when there is no quarantine or a compact
/// has followed it.
pub fn unresolved(dir: &Path, live: &[(u64, PathBuf)]) -> Result<Option<Damage>, StorageError> {
    let Some((number, qdir)) = list(dir)?.pop() else { return Ok(None) };
    if live.iter().any(|(n, _)| *n > number) {
        return Ok(None);
    }
    let reason = std::fs::read_to_string(qdir.join(DAMAGE_FILE))
        .unwrap_or_else(|e| format!("its {DAMAGE_FILE} file is unreadable: {e}"));
    Ok(Some(Damage::Unresolved { dir: qdir, reason: reason.trim_end().to_string() }))
}

/// Moves the live log aside after `damage` and starts a new live log whose
/// one segment holds `kept`, the records from before the damage. Returns the
/// new segment's number, path and file (open for appending).
///
/// Crash safety, step by step: (1) the quarantine directory and its DAMAGE
/// file; (2) the new segment with `kept`, written under a temporary name,
/// synced and renamed, so it exists only when whole; (3) the old segments,
/// moved aside. A crash before (2) leaves the damage live, so the next open
/// finds it again and starts over; a crash after (2) is finished by
/// [`finish_interrupted`].
pub fn quarantine(
    dir: &Path,
    live: &[(u64, PathBuf)],
    damage: &Damage,
    kept: &[Vec<u8>],
    sync: bool,
) -> Result<(u64, PathBuf, File), StorageError> {
    let number = live.last().map_or(1, |(n, _)| n + 1);
    let qdir = dir.join(format!("{DIR_PREFIX}{number:020}"));
    std::fs::create_dir_all(&qdir).map_err(io("create directory", &qdir))?;
    let damage_file = qdir.join(DAMAGE_FILE);
    std::fs::write(&damage_file, format!("{damage}\n")).map_err(io("write", &damage_file))?;
    if sync {
        File::open(&damage_file).and_then(|f| f.sync_all()).map_err(io("sync", &damage_file))?;
        fsync_dir(&qdir)?;
    }
    let mut bytes = Vec::new();
    for record in kept {
        frame::encode(record, &mut bytes)?;
    }
    let path = dir.join(segment::file_name(number));
    let tmp = dir.join(format!("{}.tmp", segment::file_name(number)));
    let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(&bytes).map_err(io("write", &tmp))?;
    if sync {
        file.sync_data().map_err(io("sync", &tmp))?;
    }
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    if sync {
        fsync_dir(dir)?;
    }
    move_aside(dir, &qdir, live, sync)?;
    let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(io("open", &path))?;
    Ok((number, path, file))
}

/// Finishes a quarantine that a crash interrupted after its new segment was
/// in place: moves the live segments numbered below it into the quarantine
/// directory. Returns whether there was anything to finish.
pub fn finish_interrupted(dir: &Path, live: &[(u64, PathBuf)], sync: bool) -> Result<bool, StorageError> {
    let Some((number, qdir)) = list(dir)?.pop() else { return Ok(false) };
    let started = live.iter().any(|(n, _)| *n == number);
    let older: Vec<_> = live.iter().filter(|(n, _)| *n < number).cloned().collect();
    if !started || older.is_empty() {
        return Ok(false);
    }
    move_aside(dir, &qdir, &older, sync)?;
    Ok(true)
}

/// Moves `segments` from `dir` into `qdir`.
fn move_aside(dir: &Path, qdir: &Path, segments: &[(u64, PathBuf)], sync: bool) -> Result<(), StorageError> {
    for (_, old) in segments {
        let Some(name) = old.file_name() else { continue };
        std::fs::rename(old, qdir.join(name)).map_err(io("move into quarantine", old))?;
    }
    if sync {
        fsync_dir(qdir)?;
        fsync_dir(dir)?;
    }
    Ok(())
}
