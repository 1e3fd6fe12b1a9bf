//! The signed-message layer: `Signed<T>` travels, `Verified<T>` is what the protocol sees.
//!
//! A signature covers SHA-256 over a domain tag, the message kind and the
//! payload's encoding, so a signature made for one kind (say a PREPARE) never
//! verifies as another (a COMMIT) even when the payloads have the same shape.

use crate::digest::Digest;
use crate::ids::{ClientId, ReplicaId};
use crate::keys::{KeyBook, SecretKey};
use crate::reject::Reject;
use crate::signature_rule::{self, VerifyKey};
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// Domain separation for every signature this protocol makes.
const SIGNING_DOMAIN: &[u8] = b"pbft-v1 signed message";

/// Who signed a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Author {
    /// A replica of the cluster.
    Replica(ReplicaId),
    /// A registered client.
    Client(ClientId),
}

/// The kind of a signed message, bound into its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// A client REQUEST.
    Request,
    /// The primary's PRE-PREPARE.
    PrePrepare,
    /// A backup's PREPARE.
    Prepare,
    /// A COMMIT.
    Commit,
    /// A CHECKPOINT.
    Checkpoint,
    /// A VIEW-CHANGE.
    ViewChange,
    /// The new primary's NEW-VIEW.
    NewView,
    /// A replica's periodic STATUS, which lets peers resend what it missed.
    Status,
    /// A proof that a batch committed, relayed to a replica that fell behind.
    Committed,
    /// A stable checkpoint's proof, sent to a replica behind it.
    StableCheckpoint,
    /// A request for a chunk of checkpointed state.
    FetchState,
    /// A chunk of checkpointed state.
    StateChunk,
}

impl MessageKind {
    fn tag(self) -> u8 {
        match self {
            MessageKind::Request => 1,
            MessageKind::PrePrepare => 2,
            MessageKind::Prepare => 3,
            MessageKind::Commit => 4,
            MessageKind::Checkpoint => 5,
            MessageKind::ViewChange => 6,
            MessageKind::NewView => 7,
            MessageKind::Status => 8,
            MessageKind::Committed => 9,
            MessageKind::StableCheckpoint => 10,
            MessageKind::FetchState => 11,
            MessageKind::StateChunk => 12,
        }
    }
}

/// A payload that is signed by its author.
pub trait Signable: Serialize + Sized {
    /// The kind bound into the signature.
    const KIND: MessageKind;
    /// The participant whose key must have made the signature.
    fn author(&self) -> Author;
    /// The digest the signature covers: of the whole payload, unless the
    /// payload commits to part of itself by a digest (a PRE-PREPARE's
    /// batch), so that the signature still holds without that part.
    fn signing_digest(&self) -> Digest {
        signing_digest_of::<Self, Self>(self)
    }
}

/// The digest a signature of kind `T::KIND` over `signed` covers: the domain
/// tag, the kind, then `signed`'s encoding.
pub(crate) fn signing_digest_of<T: Signable, S: Serialize>(signed: &S) -> Digest {
    Digest::of_parts_and_encoded(&[SIGNING_DOMAIN, &[T::KIND.tag()]], signed)
}

/// A payload with its author's signature, not yet checked.
///
/// Immutable once made, and shared rather than copied: a PRE-PREPARE's batch
/// sits in the log, in the prepared certificate and in the commit proof at
/// once, and copying its requests for each was a tenth of the core's time.
pub struct Signed<T>(Arc<Parts<T>>);

/// What clones of a [`Signed`] share; also its encoding (the digest is not
/// encoded).
#[derive(Serialize, Deserialize)]
#[serde(rename = "Signed")]
struct Parts<T> {
    payload: T,
    #[serde(with = "crate::codec::bytes")]
    signature: Vec<u8>,
    /// [`Signed::digest`], once computed: verification, batch digests and
    /// execution all need it, and hashing the payload each time showed in
    /// profiles. The payload cannot change, so the value cannot go stale;
    /// never encoded, never compared.
    #[serde(skip)]
    digest: OnceLock<Digest>,
    /// [`Signed::cache_key`], once computed: a burst's batch check and the
    /// single check after it both look the signature up in the cache.
    #[serde(skip)]
    cache_key: OnceLock<Digest>,
}

/// Travels as its parts: the payload, then the signature's bytes.
impl<T: Serialize> Serialize for Signed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Signed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Parts::deserialize(deserializer).map(|parts| Signed(Arc::new(parts)))
    }
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Signed(Arc::clone(&self.0))
    }
}

impl<T: PartialEq> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.payload == other.0.payload && self.0.signature == other.0.signature
    }
}

impl<T: Eq> Eq for Signed<T> {}

impl<T: fmt::Debug> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("payload", &self.0.payload)
            .field("signature", &self.0.signature)
            .finish()
    }
}

impl<T> Signed<T> {
    fn new(payload: T, signature: Vec<u8>, digest: OnceLock<Digest>) -> Signed<T> {
        Signed(Arc::new(Parts { payload, signature, digest, cache_key: OnceLock::new() }))
    }
}

impl<T: Signable> Signed<T> {
    /// Signs `payload` with `key`. The key should be the payload's author's;
    /// if it is not, every honest verifier rejects the result.
    pub fn sign(payload: T, key: &SecretKey) -> Signed<T> {
        if key.is_blank() {
            return Signed::from_parts(payload, vec![0; 64]);
        }
        let digest = signing_digest(&payload);
        let signature = key.signing_key().sign(digest.as_bytes()).to_bytes().to_vec();
        Signed::new(payload, signature, OnceLock::from(digest))
    }

    /// A signed value from its parts, as a decoder (or a forger) would make it.
    pub fn from_parts(payload: T, signature: Vec<u8>) -> Signed<T> {
        Signed::new(payload, signature, OnceLock::new())
    }

    /// The digest the signature covers; it identifies the payload.
    pub fn digest(&self) -> Digest {
        *self.0.digest.get_or_init(|| signing_digest(&self.0.payload))
    }

    /// What the signature cache remembers of checking this signature: the
    /// signed digest binds the author, so (digest, signature) names one check.
    pub(crate) fn cache_key(&self) -> Digest {
        *self.0.cache_key.get_or_init(|| Digest::of_parts(&[self.digest().as_bytes(), &self.0.signature]))
    }

    /// The payload (unverified unless reached through a `Verified`).
    pub fn payload(&self) -> &T {
        &self.0.payload
    }

    /// The payload, giving up the signature (copied only if the message is
    /// shared).
    pub fn into_payload(self) -> T
    where
        T: Clone,
    {
        Arc::try_unwrap(self.0).map_or_else(|shared| shared.payload.clone(), |parts| parts.payload)
    }

    /// The raw signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.0.signature
    }

    /// Checks that the payload's author is known and made this signature.
    pub(crate) fn check_signature(&self, keys: &KeyBook) -> Result<(), Reject> {
        self.check_signature_over(keys, self.digest())
    }

    /// [`Signed::check_signature`] for a caller that already computed [`Signed::digest`].
    pub(crate) fn check_signature_over(&self, keys: &KeyBook, digest: Digest) -> Result<(), Reject> {
        let key = self.author_key(keys)?;
        if signature_rule::verify(key, digest.as_bytes(), &self.0.signature) {
            Ok(())
        } else {
            Err(Reject::BadSignature)
        }
    }

    /// The key the author signs with, if the book knows the author.
    pub(crate) fn author_key<'k>(&self, keys: &'k KeyBook) -> Result<&'k VerifyKey, Reject> {
        match self.0.payload.author() {
            Author::Replica(id) => keys.replica_key(id),
            Author::Client(id) => keys.client_key(id),
        }
        .ok_or(Reject::UnknownSigner)
    }
}

fn signing_digest<T: Signable>(payload: &T) -> Digest {
    payload.signing_digest()
}

/// A value whose signatures (nested ones included) have been checked against the
/// key book. Only this crate's verifier makes them, so protocol logic never sees
/// unverified bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// Claims `value` verified without checking it, so a benchmark can
    /// measure the protocol without the cryptography. Only with the
    /// `unverified-input` feature, which no real build enables.
    #[cfg(feature = "unverified-input")]
    pub fn assume_verified(value: T) -> Verified<T> {
        Verified(value)
    }

    pub(crate) fn new_unchecked(value: T) -> Verified<T> {
        Verified(value)
    }

    /// The verified value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::message::{Request, RequestKind};

    /// Sharing the parts changed nothing on the wire: a signed message is
    /// encoded as its payload followed by the signature's length and bytes,
    /// and decodes to an equal message with the same digest.
    #[test]
    fn a_signed_message_travels_as_its_payload_then_its_signature() {
        let key = SecretKey::from_seed([4; 32]);
        let request =
            Request { client: ClientId(1), timestamp: 9, op: b"put k v".to_vec(), kind: RequestKind::Write };
        let signed = Signed::sign(request.clone(), &key);
        assert_eq!(signed.signature().len(), 64);
        let mut expected = codec::encode(&request);
        expected.push(64);
        expected.extend_from_slice(signed.signature());
        let bytes = codec::encode(&signed);
        assert_eq!(bytes, expected);
        let decoded: Signed<Request> = codec::decode(&bytes).expect("decodes");
        assert_eq!(decoded, signed);
        assert_eq!(decoded.digest(), signed.digest());
        assert_eq!(decoded.into_payload(), request);
    }
}
