//! Key files: one ed25519 secret seed per file, as 64 hex digits.
//!
//! Real deployments put each replica's key file on its own machine and list
//! only public keys for the others. Development configs set
//! `cluster.dev_keys = true`, and missing key files are then created on first
//! use, so a config in `configs/` runs from a fresh clone without any private
//! key in git.

use pbft_core::{PublicKey, SecretKey};
use std::io::{Read, Write};
use std::path::Path;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// "read" or "create".
        action: &'static str,
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("{path} does not hold an ed25519 secret key (64 hex digits)")]
    Malformed {
        /// The file.
        path: String,
    },
    /// The OS random source failed.
    #[error("cannot draw a random key: {0}")]
    Random(String),
}

/// The most a key file is read of: 64 hex digits and a line break fit many
/// times over, and a path to a device or a huge file is refused, not read.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Reads the secret key in `path`.
pub fn read_secret(path: &Path) -> Result<SecretKey, KeyFileError> {
    let io = |source| KeyFileError::Io { action: "read", path: path.display().to_string(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    let malformed = || KeyFileError::Malformed { path: path.display().to_string() };
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(malformed());
    }
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let seed = parse_hex32(text.trim()).ok_or_else(malformed)?;
    Ok(SecretKey::from_seed(seed))
}

/// Reads the secret key in `path`, first creating the file with a fresh random
/// key if it does not exist. Safe when several processes race to create it:
/// exactly one file wins and everyone reads that one.
pub fn read_or_create_secret(path: &Path) -> Result<SecretKey, KeyFileError> {
    if !path.exists() {
        create_secret(path)?;
    }
    read_secret(path)
}

/// Writes a fresh random key to `path` unless a file is already there.
pub fn create_secret(path: &Path) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { action: "create", path: path.display().to_string(), source };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| KeyFileError::Random(error.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = private_file(&temporary).map_err(io)?;
    file.write_all(format!("{}\n", to_hex(&seed)).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(io(error)),
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes spelt by 64 hex digits.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

/// A public key in the hex form configs use.
pub fn public_key_hex(key: &PublicKey) -> String {
    to_hex(&key.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_text() {
        let bytes = [0xa5; 32];
        assert_eq!(parse_hex32(&to_hex(&bytes)), Some(bytes));
        assert_eq!(parse_hex32("zz"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
        assert_eq!(parse_hex32(&"é".repeat(32)), None);
    }

    #[test]
    fn a_created_key_is_read_back_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("pbft-keyfile-{}", std::process::id()));
        let path = dir.join("replica-0.key");
        let first = read_or_create_secret(&path).unwrap().public();
        create_secret(&path).unwrap();
        assert_eq!(read_secret(&path).unwrap().public(), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
