//! Replay: read the live segments in order into records, and say whether the
//! log ended cleanly, at a torn tail, or at damage. Changes nothing on disk.

use super::error::Damage;
use super::segment::{self, ScanEnd};
use std::path::{Path, PathBuf};

/// A torn tail found at the end of the last segment.
#[derive(Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub segment: PathBuf,
    /// Its length up to the end of the last good record.
    pub good_len: u64,
    /// The bytes after that, to be cut off.
    pub bytes: u64,
}

/// What [`replay`] read.
#[derive(Debug)]
pub struct Replay {
    /// Every good record before the end of the log or the damage, in order.
    pub records: Vec<Vec<u8>>,
    /// A torn tail of the last segment, when there is one and no damage.
    pub torn: Option<TornTail>,
    /// The first damage found; nothing after it was read.
    pub damage: Option<Damage>,
}

/// Reads `segments` (as [`segment::list`] gives them, lowest number first)
/// from `dir`, stopping at the first damage.
pub fn replay(dir: &Path, segments: &[(u64, PathBuf)]) -> Replay {
    let mut replay = Replay { records: Vec::new(), torn: None, damage: None };
    let mut previous: Option<u64> = None;
    for (i, (number, path)) in segments.iter().enumerate() {
        if let Some(expected) = previous.map(|p| p + 1).filter(|e| e != number) {
            replay.damage = Some(Damage::MissingSegment { expected: dir.join(segment::file_name(expected)) });
            break;
        }
        previous = Some(*number);
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                replay.damage = Some(Damage::Unreadable { path: path.clone(), reason: e.to_string() });
                break;
            }
        };
        let scan = segment::scan(&bytes, i + 1 == segments.len());
        replay.records.extend(scan.records);
        match scan.end {
            ScanEnd::Clean => {}
            ScanEnd::Torn { bytes } => {
                replay.torn = Some(TornTail { segment: path.clone(), good_len: scan.good_len, bytes });
            }
            ScanEnd::Corrupt { offset } => {
                replay.damage = Some(Damage::ChecksumMismatch { segment: path.clone(), offset });
                break;
            }
        }
    }
    replay
}
