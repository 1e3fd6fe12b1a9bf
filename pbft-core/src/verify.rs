//! Verification of whole messages, nested certificates included, against the key book.
//!
//! This is the only way to obtain a [`Verified`] message. Checks here are those
//! that need no replica state: signatures, authorship, digests, and the shape of
//! certificates (sizes, distinct signers, matching contents).

use crate::keys::KeyBook;
use crate::message::{
    batch_digest_of, CheckpointProof, Committed, Message, NewView, PrePrepare, PreparedCert, Request,
    RequestKind, ViewChange,
};
use crate::reject::{CertificateRule, Reject};
use crate::signature_rule::{self, VerifyKey};
use crate::signed::{Signable, Signed, Verified};
use crate::Digest;
use crate::ReplicaId;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Signatures already verified, so that a signature met again inside a
/// certificate (a prepare inside a VIEW-CHANGE, a VIEW-CHANGE inside a
/// NEW-VIEW, a request inside a PRE-PREPARE) is not verified twice. Holds at
/// most `capacity` entries, forgetting the oldest first.
#[derive(Debug)]
pub(crate) struct SignatureCache {
    capacity: usize,
    known: CacheKeys,
    order: VecDeque<Digest>,
}

/// A set of cache keys. Hashed rather than ordered: the set is only asked
/// whether it holds a key, never walked, so its order cannot reach any
/// output, and a tree of 32-byte keys cost a replica ~5 % of its time under
/// load.
type CacheKeys = HashSet<Digest, BuildHasherDefault<PrefixHasher>>;

/// Hashes a cache key by its leading bytes. The keys are SHA-256 outputs, so
/// their bytes are already uniform: no seed is needed (the core has no
/// randomness), and a peer can only place a key by producing a valid
/// signature, so piling keys into one bucket costs it thousands of
/// signatures per key while costing the replica a few probes.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
    }
}

impl SignatureCache {
    /// A cache of at most `capacity` verified signatures (0 caches nothing).
    pub(crate) fn new(capacity: usize) -> SignatureCache {
        SignatureCache { capacity, known: CacheKeys::default(), order: VecDeque::new() }
    }

    fn insert(&mut self, key: Digest) {
        if self.capacity == 0 || !self.known.insert(key) {
            return;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.known.remove(&oldest);
            }
        }
    }
}

/// The key book and a signature cache, for the length of one verification.
struct Verifier<'a> {
    keys: &'a KeyBook,
    cache: &'a mut SignatureCache,
}

impl Verifier<'_> {
    fn signature<T: Signable>(&mut self, signed: &Signed<T>) -> Result<(), Reject> {
        let digest = signed.digest();
        let key = signed.cache_key();
        if self.cache.known.contains(&key) {
            return Ok(());
        }
        signed.check_signature_over(self.keys, digest)?;
        self.cache.insert(key);
        Ok(())
    }

    /// Checks the signatures of `all` the cache does not hold as one batch
    /// (the same verdict as checking each, for a fraction of the cost), and
    /// returns the signed digest of each, in order.
    fn signatures<'s, T: Signable + 's>(
        &mut self,
        all: impl IntoIterator<Item = &'s Signed<T>>,
    ) -> Result<Vec<Digest>, Reject> {
        let mut batch = Batch::default();
        let digests = all.into_iter().map(|signed| batch.add(self, signed)).collect::<Result<_, _>>()?;
        self.check(batch)?;
        Ok(digests)
    }

    /// Checks every signature in `batch` at once and, if all hold, caches them.
    fn check(&mut self, batch: Batch<'_>) -> Result<(), Reject> {
        let items: Vec<_> =
            batch.unchecked.iter().map(|u| (u.author, u.digest.as_bytes().as_slice(), u.signature)).collect();
        if !signature_rule::verify_all(&items) {
            return Err(Reject::BadSignature);
        }
        for unchecked in batch.unchecked {
            self.cache.insert(unchecked.cache_key);
        }
        Ok(())
    }
}

/// A signature not yet checked, with what checking and caching it needs.
struct Unchecked<'a> {
    cache_key: Digest,
    author: &'a VerifyKey,
    digest: Digest,
    signature: &'a [u8],
}

/// Signatures gathered to be checked together, each once.
#[derive(Default)]
struct Batch<'a> {
    unchecked: Vec<Unchecked<'a>>,
    keys: CacheKeys,
}

impl<'a> Batch<'a> {
    /// Adds `signed` unless the cache or this batch already holds its
    /// signature, and returns its signed digest; `Err` if its author is unknown.
    fn add<T: Signable>(&mut self, v: &Verifier<'a>, signed: &'a Signed<T>) -> Result<Digest, Reject> {
        let digest = signed.digest();
        let cache_key = signed.cache_key();
        if !v.cache.known.contains(&cache_key) && self.keys.insert(cache_key) {
            let author = signed.author_key(v.keys)?;
            self.unchecked.push(Unchecked { cache_key, author, digest, signature: signed.signature() });
        }
        Ok(digest)
    }

    /// Adds the outer signature of `message` and, for a PRE-PREPARE, those of
    /// its requests. A signature that cannot be added is left to the single
    /// check that follows, which reports it.
    fn add_message(&mut self, v: &Verifier<'a>, message: &'a Message) {
        let _ = match message {
            Message::Request(m) => self.add(v, m),
            Message::PrePrepare(m) => {
                for request in &m.payload().batch {
                    let _ = self.add(v, request);
                }
                self.add(v, m)
            }
            Message::Prepare(m) => self.add(v, m),
            Message::Commit(m) => self.add(v, m),
            Message::Checkpoint(m) => self.add(v, m),
            Message::ViewChange(m) => self.add_view_change(v, m),
            Message::NewView(m) => {
                for vc in &m.payload().view_changes {
                    let _ = self.add_view_change(v, vc);
                }
                for pp in &m.payload().pre_prepares {
                    let _ = self.add(v, pp);
                }
                self.add(v, m)
            }
            Message::Status(m) => self.add(v, m),
            Message::Committed(m) => self.add(v, m),
            Message::StableCheckpoint(m) => self.add(v, m),
            Message::FetchState(m) => self.add(v, m),
            Message::StateChunk(m) => self.add(v, m),
        };
    }
}

impl<'a> Batch<'a> {
    /// Adds a VIEW-CHANGE's signature and every one inside it: its
    /// checkpoint proof's votes, and its certificates' headers and prepares.
    fn add_view_change(&mut self, v: &Verifier<'a>, vc: &'a Signed<ViewChange>) -> Result<Digest, Reject> {
        let body = vc.payload();
        for vote in &body.checkpoint.checkpoints {
            let _ = self.add(v, vote);
        }
        for cert in &body.prepared {
            let _ = self.add(v, &cert.pre_prepare);
            for prepare in &cert.prepares {
                let _ = self.add(v, prepare);
            }
        }
        self.add(v, vc)
    }
}

/// Checks every signature in a VIEW-CHANGE or NEW-VIEW as one batch, so that
/// the checks of its parts that follow find them cached: a NEW-VIEW holds
/// hundreds of signatures, and batch verification costs a fraction of
/// checking each (as for [`KeyBook::verify_requests`]). A failed batch caches nothing; the checks that follow find the
/// culprit.
fn precheck_nested(v: &mut Verifier<'_>, message: &Message) {
    let mut batch = Batch::default();
    batch.add_message(v, message);
    // Only worth it if the cache keeps them all until the checks that follow.
    if batch.unchecked.len() > 1 && batch.unchecked.len() <= v.cache.capacity {
        let _ = v.check(batch);
    }
}

impl KeyBook {
    /// Verifies every signature in `message` and the validity of its nested
    /// certificates; the result may be handed to a replica.
    pub fn verify(&self, message: Message) -> Result<Verified<Message>, Reject> {
        self.verify_cached(message, &mut SignatureCache::new(0))
    }

    /// [`KeyBook::verify`], skipping signatures `cache` holds and adding the
    /// ones it checks.
    pub(crate) fn verify_cached(
        &self,
        message: Message,
        cache: &mut SignatureCache,
    ) -> Result<Verified<Message>, Reject> {
        let v = &mut Verifier { keys: self, cache };
        match &message {
            Message::Request(m) => v.signature(m)?,
            Message::PrePrepare(m) => check_pre_prepare(v, m)?,
            Message::Prepare(m) => v.signature(m)?,
            Message::Commit(m) => v.signature(m)?,
            Message::Checkpoint(m) => v.signature(m)?,
            Message::ViewChange(m) => {
                precheck_nested(v, &message);
                check_view_change(v, m)?
            }
            Message::NewView(m) => {
                precheck_nested(v, &message);
                check_new_view(v, m)?
            }
            Message::Status(m) => v.signature(m)?,
            Message::Committed(m) => check_committed(v, m)?,
            Message::StableCheckpoint(m) => {
                v.signature(m)?;
                check_checkpoint_proof(v, &m.payload().proof)?;
            }
            Message::FetchState(m) => v.signature(m)?,
            Message::StateChunk(m) => v.signature(m)?,
        }
        Ok(Verified::new_unchecked(message))
    }

    /// Verifies a client's request.
    pub fn verify_request(&self, request: Signed<Request>) -> Result<Verified<Signed<Request>>, Reject> {
        request.check_signature(self)?;
        Ok(Verified::new_unchecked(request))
    }

    /// Verifies many client requests at once, for much less than checking
    /// each (batch verification); `Err` if any one fails, without saying which.
    pub fn verify_requests(
        &self,
        requests: Vec<Signed<Request>>,
    ) -> Result<Vec<Verified<Signed<Request>>>, Reject> {
        Verifier { keys: self, cache: &mut SignatureCache::new(0) }.signatures(&requests)?;
        Ok(requests.into_iter().map(Verified::new_unchecked).collect())
    }

    /// Checks the signatures of `messages` (their outer ones, and the
    /// requests inside PRE-PREPAREs) as one batch and, if every one holds,
    /// adds them all to `cache`, so that verifying each message afterwards
    /// skips them. If any fails nothing is added, and the single checks that
    /// follow find which.
    pub(crate) fn precheck<'m>(
        &self,
        messages: impl IntoIterator<Item = &'m Message>,
        cache: &mut SignatureCache,
    ) {
        let mut v = Verifier { keys: self, cache };
        let mut batch = Batch::default();
        for message in messages {
            batch.add_message(&v, message);
        }
        if batch.unchecked.len() > 1 {
            // A failed batch needs no report here: each message is verified again.
            let _ = v.check(batch);
        }
    }
}

/// A PRE-PREPARE with its batch: the header's signature, its primary, and
/// the batch's requests and digest.
fn check_pre_prepare(v: &mut Verifier<'_>, pp: &Signed<PrePrepare>) -> Result<(), Reject> {
    check_header(v, pp)?;
    let body = pp.payload();
    if body.batch.iter().any(|request| request.payload().kind == RequestKind::UnorderedRead) {
        return Err(Reject::UnorderedReadInBatch);
    }
    let request_digests = v.signatures(&body.batch)?;
    if batch_digest_of(&request_digests) != body.digest {
        return Err(Reject::DigestMismatch);
    }
    Ok(())
}

/// A PRE-PREPARE's header: its signature (which covers the header only) and
/// that its primary is the view's.
fn check_header(v: &mut Verifier<'_>, pp: &Signed<PrePrepare>) -> Result<(), Reject> {
    v.signature(pp)?;
    let body = pp.payload();
    if v.keys.quorum().primary(body.view) != body.primary {
        return Err(Reject::WrongPrimary);
    }
    Ok(())
}

/// A PRE-PREPARE inside a VIEW-CHANGE or a NEW-VIEW: a header without its
/// batch, so that those messages stay bounded by the window whatever the
/// requests' sizes.
fn check_pre_prepare_without_batch(v: &mut Verifier<'_>, pp: &Signed<PrePrepare>) -> Result<(), Reject> {
    if !pp.payload().batch.is_empty() {
        return Err(Reject::InvalidCertificate(CertificateRule::BatchIncluded));
    }
    check_header(v, pp)
}

/// Distinct signers, each counted once; `Err` on a repeated signer.
fn distinct(signers: impl IntoIterator<Item = ReplicaId>) -> Result<usize, Reject> {
    let mut seen = BTreeSet::new();
    for signer in signers {
        if !seen.insert(signer) {
            return Err(Reject::InvalidCertificate(CertificateRule::RepeatedSigner));
        }
    }
    Ok(seen.len())
}

fn check_checkpoint_proof(v: &mut Verifier<'_>, proof: &CheckpointProof) -> Result<(), Reject> {
    if proof.seq == 0 {
        return if proof.checkpoints.is_empty() {
            Ok(())
        } else {
            Err(Reject::InvalidCertificate(CertificateRule::VotesForGenesis))
        };
    }
    let count = distinct(proof.checkpoints.iter().map(|c| c.payload().replica))?;
    if count < v.keys.quorum().quorum() {
        return Err(Reject::InvalidCertificate(CertificateRule::TooFewSigners));
    }
    for checkpoint in &proof.checkpoints {
        let body = checkpoint.payload();
        if body.seq != proof.seq || body.state_digest != proof.state_digest {
            return Err(Reject::InvalidCertificate(CertificateRule::VoteMismatch));
        }
        v.signature(checkpoint)?;
    }
    Ok(())
}

fn check_prepared_cert(v: &mut Verifier<'_>, cert: &PreparedCert) -> Result<(), Reject> {
    check_pre_prepare_without_batch(v, &cert.pre_prepare)?;
    let primary = cert.pre_prepare.payload().primary;
    let count = distinct(cert.prepares.iter().map(|p| p.payload().replica))?;
    if count < v.keys.quorum().prepare_quorum() {
        return Err(Reject::InvalidCertificate(CertificateRule::TooFewSigners));
    }
    for prepare in &cert.prepares {
        let body = prepare.payload();
        if body.replica == primary {
            return Err(Reject::InvalidCertificate(CertificateRule::PrepareFromPrimary));
        }
        if body.view != cert.view() || body.seq != cert.seq() || body.digest != cert.digest() {
            return Err(Reject::InvalidCertificate(CertificateRule::VoteMismatch));
        }
        v.signature(prepare)?;
    }
    Ok(())
}

fn check_view_change(v: &mut Verifier<'_>, vc: &Signed<ViewChange>) -> Result<(), Reject> {
    v.signature(vc)?;
    let body = vc.payload();
    check_checkpoint_proof(v, &body.checkpoint)?;
    let mut last_seq = body.checkpoint.seq;
    for cert in &body.prepared {
        // Certificates are listed once per sequence number, in ascending order,
        // above the checkpoint and from views before the one being asked for.
        if cert.seq() <= last_seq {
            return Err(Reject::InvalidCertificate(CertificateRule::CertificatesOutOfOrder));
        }
        if cert.view() >= body.new_view {
            return Err(Reject::InvalidCertificate(CertificateRule::PreparedInNewView));
        }
        last_seq = cert.seq();
        check_prepared_cert(v, cert)?;
    }
    Ok(())
}

fn check_new_view(v: &mut Verifier<'_>, nv: &Signed<NewView>) -> Result<(), Reject> {
    v.signature(nv)?;
    let body = nv.payload();
    if v.keys.quorum().primary(body.view) != body.primary {
        return Err(Reject::WrongPrimary);
    }
    let count = distinct(body.view_changes.iter().map(|vc| vc.payload().replica))?;
    if count < v.keys.quorum().quorum() {
        return Err(Reject::InvalidCertificate(CertificateRule::TooFewSigners));
    }
    for vc in &body.view_changes {
        if vc.payload().new_view != body.view {
            return Err(Reject::InvalidCertificate(CertificateRule::WrongView));
        }
        check_view_change(v, vc)?;
    }
    for pp in &body.pre_prepares {
        if pp.payload().view != body.view {
            return Err(Reject::InvalidCertificate(CertificateRule::WrongView));
        }
        check_pre_prepare_without_batch(v, pp)?;
    }
    Ok(())
}

fn check_committed(v: &mut Verifier<'_>, committed: &Signed<Committed>) -> Result<(), Reject> {
    v.signature(committed)?;
    let body = committed.payload();
    check_pre_prepare(v, &body.pre_prepare)?;
    let pp = body.pre_prepare.payload();
    let count = distinct(body.commits.iter().map(|c| c.payload().replica))?;
    if count < v.keys.quorum().quorum() {
        return Err(Reject::InvalidCertificate(CertificateRule::TooFewSigners));
    }
    for commit in &body.commits {
        let c = commit.payload();
        if c.view != pp.view || c.seq != pp.seq || c.digest != pp.digest {
            return Err(Reject::InvalidCertificate(CertificateRule::VoteMismatch));
        }
        v.signature(commit)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Digest {
        Digest::of(&i.to_le_bytes())
    }

    /// The cache holds at most its capacity, forgets the oldest first, and
    /// a key inserted twice takes one place.
    #[test]
    fn the_signature_cache_is_bounded_and_forgets_the_oldest() {
        let mut cache = SignatureCache::new(100);
        for i in 0..100 {
            cache.insert(key(i));
            cache.insert(key(i));
        }
        assert_eq!(cache.known.len(), 100);
        for i in 100..150 {
            cache.insert(key(i));
        }
        assert_eq!(cache.known.len(), 100);
        assert!((0..50).all(|i| !cache.known.contains(&key(i))));
        assert!((50..150).all(|i| cache.known.contains(&key(i))));
        let mut none = SignatureCache::new(0);
        none.insert(key(1));
        assert!(none.known.is_empty());
    }
}
