//! Keys: a participant's secret signing key and the key book of everyone's public keys.

use crate::ids::{ClientId, ReplicaId};
use crate::quorum::Quorum;
use crate::signature_rule::VerifyKey;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An ed25519 public key as its 32 raw bytes, the form configs and certificates carry.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A participant's ed25519 signing key. Never serialised by this crate.
#[derive(Clone)]
pub struct SecretKey {
    key: SigningKey,
    /// Benchmarks only: sign nothing (see [`SecretKey::signing_nothing`]).
    #[cfg(feature = "unverified-input")]
    blank: bool,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?})", self.public())
    }
}

impl SecretKey {
    /// The key whose 32-byte secret seed is `seed` (RFC 8032 private key).
    ///
    /// Where the seed comes from is the host's business: the OS random source
    /// for real clusters, a PRNG stream for reproducible simulations.
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(&seed),
            #[cfg(feature = "unverified-input")]
            blank: false,
        }
    }

    /// The key of `seed` that "signs" with 64 zero bytes and computes
    /// nothing, so that a benchmark can measure the protocol without any
    /// signature work. Every verifier refuses its signatures: replicas given
    /// it only work when handed messages by [`crate::Verified::assume_verified`].
    #[cfg(feature = "unverified-input")]
    pub fn signing_nothing(seed: [u8; 32]) -> SecretKey {
        SecretKey { blank: true, ..SecretKey::from_seed(seed) }
    }

    /// Whether this key signs nothing (benchmarks only).
    pub(crate) fn is_blank(&self) -> bool {
        #[cfg(feature = "unverified-input")]
        return self.blank;
        #[cfg(not(feature = "unverified-input"))]
        false
    }

    /// The 32-byte seed, for writing the key to a key file.
    pub fn to_seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// Why a key book could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyBookError {
    /// A cluster needs at least one replica.
    #[error("a cluster needs at least one replica key, found none")]
    NoReplicas,
    /// The bytes are not a usable ed25519 public key.
    #[error("the public key of {0} is not a valid ed25519 point, or is one of small order")]
    InvalidKey(String),
}

/// The public keys of every replica and client: who may sign what.
///
/// Replica `i`'s key is at index `i`. A message whose author is not in the
/// book is rejected before it reaches protocol logic.
#[derive(Clone, Debug)]
pub struct KeyBook {
    quorum: Quorum,
    replicas: Vec<VerifyKey>,
    clients: BTreeMap<ClientId, VerifyKey>,
}

impl KeyBook {
    /// A key book for the replicas (indexed by id) and the given clients.
    pub fn new(
        replicas: &[PublicKey],
        clients: impl IntoIterator<Item = (ClientId, PublicKey)>,
    ) -> Result<KeyBook, KeyBookError> {
        let quorum = Quorum::new(replicas.len()).ok_or(KeyBookError::NoReplicas)?;
        let replicas = replicas
            .iter()
            .enumerate()
            .map(|(i, key)| {
                VerifyKey::from_bytes(key.0)
                    .ok_or_else(|| KeyBookError::InvalidKey(ReplicaId(i as u32).to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let clients = clients
            .into_iter()
            .map(|(id, key)| {
                VerifyKey::from_bytes(key.0)
                    .map(|k| (id, k))
                    .ok_or_else(|| KeyBookError::InvalidKey(id.to_string()))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(KeyBook { quorum, replicas, clients })
    }

    /// The quorum system of the replicas in this book.
    pub fn quorum(&self) -> Quorum {
        self.quorum
    }

    /// The number of registered clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Whether `client` is registered.
    pub fn has_client(&self, client: ClientId) -> bool {
        self.clients.contains_key(&client)
    }

    pub(crate) fn replica_key(&self, id: ReplicaId) -> Option<&VerifyKey> {
        self.replicas.get(id.index())
    }

    pub(crate) fn client_key(&self, id: ClientId) -> Option<&VerifyKey> {
        self.clients.get(&id)
    }
}
