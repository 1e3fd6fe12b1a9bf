//! The `IDENTITY` file: which replica of which cluster owns a data
//! directory, written once so that a replica pointed at another's directory
//! is refused instead of replaying (and then signing after) foreign votes.

use super::error::{io_error as io, StorageError};
use super::fsync_dir;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// The file name of the identity file inside a data directory.
pub const IDENTITY_FILE: &str = "IDENTITY";

/// The format of the records this build writes. It changes whenever a
/// record's encoding does (format 1: replies cached with `withheld`), so
/// that a directory an older or newer build wrote is refused with both
/// formats named instead of being misread: a record that decodes under the
/// wrong layout can still pass its checksum. A directory from before formats
/// were numbered has no `format` in its identity file and reads as 0.
pub const STORAGE_FORMAT: u32 = 1;

/// Who owns a data directory: a replica id within a named cluster, and the
/// record format it was written in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The cluster's name (from the cluster config).
    pub cluster: String,
    /// The replica's id within the cluster.
    pub replica: u32,
    /// The record format ([`STORAGE_FORMAT`] for what this build writes).
    #[serde(default)]
    pub format: u32,
}

impl Identity {
    /// Replica `replica` of the cluster named `cluster`, writing this
    /// build's [`STORAGE_FORMAT`].
    pub fn new(cluster: impl Into<String>, replica: u32) -> Identity {
        Identity { cluster: cluster.into(), replica, format: STORAGE_FORMAT }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replica {} of cluster {:?}", self.replica, self.cluster)
    }
}

/// Reads the identity file in `dir`, or `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<Identity>, StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StorageError::Io { action: "read", path, source }),
    };
    toml::from_str(&text).map(Some).map_err(|e| StorageError::BadIdentity { path, reason: e.to_string() })
}

/// Writes `identity` into `dir` atomically (temporary file, fsync, rename,
/// directory fsync): a crash leaves either no identity file or a whole one.
pub fn write(dir: &Path, identity: &Identity) -> Result<(), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let text = toml::to_string(identity)
        .map_err(|e| StorageError::BadIdentity { path: path.clone(), reason: e.to_string() })?;
    let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(text.as_bytes()).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    fsync_dir(dir)
}
