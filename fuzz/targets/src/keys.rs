//! The fixed cluster every target uses: four replicas and two clients with
//! keys from constant seeds, so that a target can sign messages that verify.

use pbft_core::{ClientId, KeyBook, PublicKey, Quorum, SecretKey};
use std::sync::OnceLock;

/// Replicas in the cluster.
pub const N: usize = 4;

/// The clients in the key book.
pub const CLIENTS: [ClientId; 2] = [ClientId(0), ClientId(1)];

/// Keys of the fixed cluster.
pub struct Keys {
    /// Replica `i`'s secret key at index `i`.
    pub replicas: Vec<SecretKey>,
    /// The clients' secret keys, in the order of [`CLIENTS`].
    pub clients: Vec<SecretKey>,
    /// Everyone's public keys.
    pub book: KeyBook,
    /// A key nobody in the book has: what a forger signs with.
    pub stranger: SecretKey,
}

impl Keys {
    /// The secret key of replica `id`.
    pub fn replica(&self, id: u32) -> &SecretKey {
        &self.replicas[id as usize % N]
    }

    /// The quorum system of the cluster.
    pub fn quorum(&self) -> Quorum {
        self.book.quorum()
    }
}

/// The keys, made once per process (key expansion is not what we fuzz).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let replicas: Vec<SecretKey> = (0..N).map(|i| SecretKey::from_seed([i as u8 + 1; 32])).collect();
        let clients: Vec<SecretKey> =
            (0..CLIENTS.len()).map(|i| SecretKey::from_seed([i as u8 + 100; 32])).collect();
        let publics: Vec<PublicKey> = replicas.iter().map(SecretKey::public).collect();
        let book = KeyBook::new(&publics, CLIENTS.iter().copied().zip(clients.iter().map(SecretKey::public)))
            .expect("constant seeds make valid keys");
        Keys { replicas, clients, book, stranger: SecretKey::from_seed([250; 32]) }
    })
}
