//! Segment files (`log-<20 digits>.seg`): their names, listing them in
//! order, creating one durably, and scanning one into records.

use super::error::{io_error as io, StorageError};
use super::frame::{decode_at, Decoded, HEADER_BYTES, MAX_RECORD_BYTES};
use super::fsync_dir;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many payload bytes the torn-tail check may hash while looking for a
/// valid record after a bad one (see [`scan`]). When it runs out the bad
/// record counts as damage: the budget can turn a torn tail into damage,
/// never damage into a silently cut tail.
const SEARCH_BUDGET_BYTES: usize = 256 << 20;

/// The file name of segment `number`, zero-padded so names sort as numbers.
pub fn file_name(number: u64) -> String {
    format!("log-{number:020}.seg")
}

/// The number in a segment file name, or `None` for any other file.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir`, by number, lowest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        if let Some(number) = entry.file_name().to_str().and_then(parse_name) {
            segments.push((number, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Creates segment `number` in `dir` holding `bytes`; when `sync`, the data
/// and the directory entry are on disk before this returns. Fails if the
/// segment exists already.
pub fn create(
    dir: &Path,
    number: u64,
    bytes: &[u8],
    sync: bool,
) -> Result<(PathBuf, std::fs::File), StorageError> {
    let path = dir.join(file_name(number));
    let mut file =
        std::fs::OpenOptions::new().append(true).create_new(true).open(&path).map_err(io("create", &path))?;
    file.write_all(bytes).map_err(io("write", &path))?;
    if sync {
        file.sync_data().map_err(io("sync", &path))?;
        fsync_dir(dir)?;
    }
    Ok((path, file))
}

/// What [`scan`] read from one segment.
#[derive(Debug)]
pub struct Scan {
    /// The payloads of the good records, in order.
    pub records: Vec<Vec<u8>>,
    /// The offset just past the last good record.
    pub good_len: u64,
    /// How the scan ended.
    pub end: ScanEnd,
}

/// How a segment scan ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// At the end of the file, after a good record.
    Clean,
    /// At a torn tail of this many bytes: a bad record in the last segment
    /// with no valid record anywhere after it.
    Torn {
        /// Bytes after the last good record.
        bytes: u64,
    },
    /// At a bad record that a crash during a write cannot explain.
    Corrupt {
        /// Where the bad record starts.
        offset: u64,
    },
}

/// Reads the records in `bytes`, the contents of one segment; `last` says
/// whether it is the last segment of the log.
///
/// A bad record is a torn tail only in the last segment and only when no
/// valid record starts at any later offset (its own length cannot be
/// trusted, so every offset is tried, within [`SEARCH_BUDGET_BYTES`]).
/// Anything else is corruption.
pub fn scan(bytes: &[u8], last: bool) -> Scan {
    let mut records = Vec::new();
    let mut offset = 0;
    let end = loop {
        match decode_at(bytes, offset) {
            Decoded::Record { payload, next } => {
                records.push(payload.to_vec());
                offset = next;
            }
            Decoded::End => break ScanEnd::Clean,
            Decoded::Invalid if last && valid_record_after(bytes, offset) == Some(false) => {
                break ScanEnd::Torn { bytes: (bytes.len() - offset) as u64 }
            }
            Decoded::Invalid => break ScanEnd::Corrupt { offset: offset as u64 },
        }
    };
    Scan { records, good_len: offset as u64, end }
}

/// Whether a valid record starts anywhere after `offset`; `None` when the
/// search budget ran out first.
fn valid_record_after(bytes: &[u8], offset: usize) -> Option<bool> {
    let mut budget = SEARCH_BUDGET_BYTES;
    for start in offset + 1..bytes.len().saturating_sub(HEADER_BYTES - 1) {
        if let Decoded::Record { .. } = decode_at(bytes, start) {
            return Some(true);
        }
        // decode_at hashed the payload only if the claimed length fit.
        let claimed = bytes.get(start..start + 4).map_or(usize::MAX, |l| {
            usize::try_from(u32::from_le_bytes([l[0], l[1], l[2], l[3]])).unwrap_or(usize::MAX)
        });
        if claimed <= MAX_RECORD_BYTES && claimed <= bytes.len() - start - HEADER_BYTES {
            budget = budget.checked_sub(claimed + HEADER_BYTES)?;
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::super::frame::encoded;
    use super::*;

    /// Names sort as numbers and parse back; other names are not segments.
    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(1), "log-00000000000000000001.seg");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in
            ["log-1.seg", "log-0000000000000000000x.seg", "IDENTITY", "log-00000000000000000001.seg.tmp"]
        {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    /// A bad record followed by a good one is corruption even in the last
    /// segment; without the good one after it, it is a torn tail there and
    /// corruption in any other segment.
    #[test]
    fn torn_only_at_the_end_of_the_last_segment() {
        let mut bytes = encoded(&[b"aaaa", b"bbbb", b"cccc"]);
        let second = HEADER_BYTES + 4;
        bytes[second + HEADER_BYTES] ^= 0xff;
        let scan_last = scan(&bytes, true);
        assert_eq!(scan_last.records, vec![b"aaaa".to_vec()]);
        assert_eq!(scan_last.end, ScanEnd::Corrupt { offset: second as u64 });

        let third = 2 * second;
        let mut bytes = encoded(&[b"aaaa", b"bbbb", b"cccc"]);
        bytes[third + HEADER_BYTES] ^= 0xff;
        let torn = scan(&bytes, true);
        assert_eq!(torn.records.len(), 2);
        assert_eq!(torn.good_len, third as u64);
        assert_eq!(torn.end, ScanEnd::Torn { bytes: (bytes.len() - third) as u64 });
        assert_eq!(scan(&bytes, false).end, ScanEnd::Corrupt { offset: third as u64 });
    }
}
