//! A rolling hash of everything that happens in a run: two runs are identical
//! exactly when their hashes are (up to SHA-256 collisions).

use pbft_core::Digest;

/// SHA-256 chained over every recorded item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceHash(Digest);

impl TraceHash {
    /// Folds `item` into the hash.
    pub fn record(&mut self, item: &[u8]) {
        self.0 = Digest::of_parts(&[self.0.as_bytes(), item]);
    }

    /// Folds the encoding of `value` into the hash, as [`TraceHash::record`]
    /// of it would, without building it (a delivered state chunk is large).
    pub fn record_encoded<T: serde::Serialize>(&mut self, value: &T) {
        self.0 = Digest::of_parts_and_encoded(&[self.0.as_bytes()], value);
    }

    /// The hash so far.
    pub fn digest(&self) -> Digest {
        self.0
    }
}
