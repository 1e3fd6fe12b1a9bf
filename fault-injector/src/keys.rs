//! Real ed25519 keys for every participant of a simulated cluster, derived from a seed.

use pbft_core::{ClientId, Digest, KeyBook, ReplicaId, SecretKey};

/// Secret keys of n replicas and some clients, and the key book they form.
#[derive(Clone, Debug)]
pub struct ClusterKeys {
    replicas: Vec<SecretKey>,
    clients: Vec<SecretKey>,
    book: KeyBook,
}

fn derive(seed: u64, role: &str, index: u64) -> SecretKey {
    let digest =
        Digest::of_parts(&[b"pbft-sim key", &seed.to_le_bytes(), role.as_bytes(), &index.to_le_bytes()]);
    SecretKey::from_seed(*digest.as_bytes())
}

impl ClusterKeys {
    /// Keys for replicas `0..n` and clients `0..clients`, a function of `seed`.
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn derive(seed: u64, n: usize, clients: usize) -> ClusterKeys {
        let replicas: Vec<SecretKey> = (0..n as u64).map(|i| derive(seed, "replica", i)).collect();
        let clients: Vec<SecretKey> = (0..clients as u64).map(|i| derive(seed, "client", i)).collect();
        let publics: Vec<_> = replicas.iter().map(SecretKey::public).collect();
        let book =
            KeyBook::new(&publics, clients.iter().enumerate().map(|(i, k)| (ClientId(i as u64), k.public())))
                .unwrap_or_else(|e| panic!("derived keys form a key book: {e}"));
        ClusterKeys { replicas, clients, book }
    }

    /// The key book.
    pub fn book(&self) -> &KeyBook {
        &self.book
    }

    /// Replica `id`'s secret key.
    pub fn replica(&self, id: ReplicaId) -> &SecretKey {
        &self.replicas[id.index()]
    }

    /// Client `id`'s secret key.
    pub fn client(&self, id: ClientId) -> &SecretKey {
        &self.clients[id.0 as usize]
    }
}
