//! SHA-256 digests: of requests, batches, snapshots and signed payloads.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

/// [`Digest::of_parts`] fed piece by piece: a part's length first
/// ([`PartsHasher::start_part`]), then its bytes in any number of pieces.
/// For digests over parts too large to gather in memory first.
pub(crate) struct PartsHasher(Sha256);

impl PartsHasher {
    pub(crate) fn new() -> PartsHasher {
        PartsHasher(Sha256::new())
    }

    /// Starts a part of `len` bytes; exactly that many must follow.
    pub(crate) fn start_part(&mut self, len: usize) {
        self.0.update((len as u64).to_le_bytes());
    }

    /// More bytes of the current part.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// A whole part.
    pub(crate) fn part(&mut self, bytes: &[u8]) {
        self.start_part(bytes.len());
        self.update(bytes);
    }

    pub(crate) fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The digest of several byte strings, each prefixed by its length so that
    /// different splits of the same bytes give different digests.
    pub fn of_parts(parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// [`Digest::of_parts`] of `parts` followed by the encoding of `value`,
    /// without building that encoding in memory.
    pub fn of_parts_and_encoded<T: serde::Serialize>(parts: &[&[u8]], value: &T) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update((crate::codec::encoded_len(value) as u64).to_le_bytes());
        crate::codec::encode_to_sink(value, |bytes| hasher.update(bytes));
        Digest(hasher.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_delimited() {
        assert_ne!(Digest::of_parts(&[b"ab", b"c"]), Digest::of_parts(&[b"a", b"bc"]));
        assert_eq!(Digest::of_parts(&[b"ab", b"c"]), Digest::of_parts(&[b"ab", b"c"]));
    }

    #[test]
    fn hashing_an_encoding_in_pieces_equals_hashing_it_whole() {
        let value = (7u64, vec![1u8; 300], String::from("chunk"), Some(-3i32));
        let whole = crate::codec::encode(&value);
        assert_eq!(crate::codec::encoded_len(&value), whole.len());
        assert_eq!(
            Digest::of_parts_and_encoded(&[b"d", b"k"], &value),
            Digest::of_parts(&[b"d", b"k", &whole])
        );
    }
}
