//! The one rule by which every ed25519 signature is judged, alone or in a batch.
//!
//! Replicas must agree on which signatures are valid, or a client could craft
//! a request that some honest replicas accept and others refuse. ed25519 has
//! two verification equations that differ exactly on such crafted signatures:
//! the cofactorless one (`[s]B = R + [k]A`) and the cofactored one
//! (`[8][s]B = [8]R + [8][k]A`). Batch verification, which checks many
//! signatures for little more than the price of a few, can only implement the
//! cofactored one reliably. So this module uses the cofactored equation for
//! single signatures too (as Zcash's ZIP 215 does for the same reason): a
//! batch passes if and only if every signature in it passes alone, whoever
//! built the batch, and the scalar `s` must be canonical in both.
//!
//! The batch check multiplies each signature's equation by a 128-bit
//! coefficient derived by hashing every input, so it needs no randomness and
//! gives the same answer on every replica; a batch with an invalid signature
//! passes only if that hash hits a value chosen in advance, with chance
//! 2^-128 per try.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest as _, Sha512};
use std::collections::BTreeMap;

/// Domain separation for the batch coefficients.
const BATCH_DOMAIN: &[u8] = b"pbft signature batch v1";

/// A public key ready for verification: its bytes (hashed into every
/// challenge) and its negated point (the equation subtracts `[k]A`).
#[derive(Clone, Debug)]
pub(crate) struct VerifyKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
    minus_point: EdwardsPoint,
}

impl VerifyKey {
    /// The key whose encoding is `bytes`; `None` for a byte string that is
    /// not a curve point or is a point of small order (a key for which any
    /// signature would verify on some messages).
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Option<VerifyKey> {
        let point = CompressedEdwardsY(bytes).decompress()?;
        if point.is_small_order() {
            return None;
        }
        Some(VerifyKey { bytes, point, minus_point: -point })
    }

    /// The key's encoding.
    pub(crate) fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }
}

/// A signature split into its parts, with the challenge `k = H(R ‖ A ‖ M)`.
struct Parsed {
    r_bytes: [u8; 32],
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn parse(key: &VerifyKey, message: &[u8], signature: &[u8]) -> Option<Parsed> {
    let bytes: &[u8; 64] = signature.try_into().ok()?;
    let (r_bytes, s_bytes) = bytes.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().ok()?;
    let s: Option<Scalar> = Scalar::from_canonical_bytes(s_bytes.try_into().ok()?).into();
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let mut challenge = Sha512::new();
    challenge.update(r_bytes);
    challenge.update(key.bytes);
    challenge.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&challenge.finalize().into());
    Some(Parsed { r_bytes, r, s: s?, k })
}

/// Whether `signature` is `key`'s signature of `message`.
pub(crate) fn verify(key: &VerifyKey, message: &[u8], signature: &[u8]) -> bool {
    let Some(Parsed { r, s, k, .. }) = parse(key, message, signature) else {
        return false;
    };
    let s_b_minus_k_a = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &key.minus_point, &s);
    (s_b_minus_k_a - r).mul_by_cofactor().is_identity()
}

/// Whether every `(key, message, signature)` in `items` verifies; the same
/// answer as [`verify`] on each, for a fraction of the cost when there are many.
pub(crate) fn verify_all(items: &[(&VerifyKey, &[u8], &[u8])]) -> bool {
    match items {
        [] => return true,
        [(key, message, signature)] => return verify(key, message, signature),
        _ => {}
    }
    let mut parsed = Vec::with_capacity(items.len());
    let mut transcript = Sha512::new();
    transcript.update(BATCH_DOMAIN);
    for (key, message, signature) in items {
        let Some(p) = parse(key, message, signature) else {
            return false;
        };
        transcript.update(p.r_bytes);
        transcript.update(key.bytes);
        transcript.update(p.k.as_bytes());
        transcript.update(p.s.as_bytes());
        parsed.push(p);
    }
    let seed = transcript.finalize();
    let coefficients: Vec<Scalar> = (0..parsed.len() as u64).map(|i| coefficient(&seed, i)).collect();
    // Σ z_i ([8]R_i + [8][k_i]A_i − [8][s_i]B) = 0, as one multiscalar multiplication.
    // Signatures by one key share its point: Σ z_i k_i A is one term, so a
    // burst of votes from a few replicas costs little more than its R_i.
    let mut by_key: BTreeMap<[u8; 32], (EdwardsPoint, Scalar)> = BTreeMap::new();
    for ((key, _, _), (p, z)) in items.iter().zip(parsed.iter().zip(&coefficients)) {
        let term = by_key.entry(key.bytes).or_insert((key.point, Scalar::ZERO));
        term.1 += z * p.k;
    }
    let minus_b: Scalar = -parsed.iter().zip(&coefficients).map(|(p, z)| z * p.s).sum::<Scalar>();
    let scalars = std::iter::once(minus_b)
        .chain(coefficients.iter().copied())
        .chain(by_key.values().map(|(_, scalar)| *scalar));
    let points = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(parsed.iter().map(|p| p.r))
        .chain(by_key.values().map(|(point, _)| *point));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity()
}

/// The `index`th batch coefficient: 128 bits of `H(seed ‖ index)`, never zero.
fn coefficient(seed: &[u8], index: u64) -> Scalar {
    let hash = Sha512::new().chain_update(seed).chain_update(index.to_le_bytes()).finalize();
    let mut wide = [0u8; 32];
    wide[..16].copy_from_slice(&hash[..16]);
    wide[0] |= 1;
    Scalar::from_bytes_mod_order(wide)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key(seed: u8) -> (SigningKey, VerifyKey) {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let verify = VerifyKey::from_bytes(signing.verifying_key().to_bytes()).expect("a valid key");
        (signing, verify)
    }

    fn messages() -> Vec<Vec<u8>> {
        (0..20u8).map(|i| vec![i; 32]).collect()
    }

    /// Honest signatures pass alone and in a batch; a flipped bit in any one
    /// message, signature or key fails alone and fails the whole batch.
    #[test]
    fn batches_agree_with_single_checks() {
        let keys: Vec<_> = (1..=4).map(key).collect();
        let messages = messages();
        let signatures: Vec<Vec<u8>> =
            messages.iter().enumerate().map(|(i, m)| keys[i % 4].0.sign(m).to_bytes().to_vec()).collect();
        let items = |messages: &[Vec<u8>], signatures: &[Vec<u8>]| -> Vec<(VerifyKey, Vec<u8>, Vec<u8>)> {
            (0..messages.len())
                .map(|i| (keys[i % 4].1.clone(), messages[i].clone(), signatures[i].clone()))
                .collect()
        };
        let check = |items: &[(VerifyKey, Vec<u8>, Vec<u8>)]| {
            let refs: Vec<(&VerifyKey, &[u8], &[u8])> =
                items.iter().map(|(k, m, s)| (k, m.as_slice(), s.as_slice())).collect();
            verify_all(&refs)
        };
        let good = items(&messages, &signatures);
        assert!(good.iter().all(|(k, m, s)| verify(k, m, s)));
        assert!(check(&good));
        for position in [0, 7, 19] {
            let mut bad_message = good.clone();
            bad_message[position].1[3] ^= 1;
            assert!(!verify(&bad_message[position].0, &bad_message[position].1, &bad_message[position].2));
            assert!(!check(&bad_message), "a changed message at {position}");
            let mut bad_signature = good.clone();
            bad_signature[position].2[40] ^= 1;
            assert!(!check(&bad_signature), "a changed signature at {position}");
            let mut wrong_key = good.clone();
            wrong_key[position].0 = key(9).1;
            assert!(!check(&wrong_key), "another key at {position}");
        }
    }

    /// A signature whose R carries a small-order component, which only the
    /// key's holder can make: the cofactorless equation refuses it and the
    /// cofactored one accepts it. The rule here accepts it alone and in every
    /// batch, so replicas that check it in different company cannot disagree.
    #[test]
    fn a_signature_with_a_torsion_component_is_judged_the_same_alone_and_in_batches() {
        let (signing, verify_key) = key(3);
        let secret = signing.to_scalar();
        let message = b"crafted by the key's holder".to_vec();
        let nonce = Scalar::from_bytes_mod_order([7; 32]);
        let r = EdwardsPoint::mul_base(&nonce) + EIGHT_TORSION[1];
        let r_bytes = r.compress().to_bytes();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r_bytes)
                .chain_update(verify_key.bytes)
                .chain_update(&message)
                .finalize()
                .into(),
        );
        let s = nonce + k * secret;
        let mut crafted = r_bytes.to_vec();
        crafted.extend_from_slice(s.as_bytes());
        let dalek_key = signing.verifying_key();
        let as_dalek = ed25519_dalek::Signature::from_slice(&crafted).expect("64 bytes");
        assert!(dalek_key.verify_strict(&message, &as_dalek).is_err(), "the cofactorless check refuses it");
        assert!(verify(&verify_key, &message, &crafted));
        let honest: Vec<(Vec<u8>, Vec<u8>)> =
            messages().into_iter().map(|m| (m.clone(), signing.sign(&m).to_bytes().to_vec())).collect();
        for company in 1..honest.len() {
            let mut items: Vec<(&VerifyKey, &[u8], &[u8])> =
                honest[..company].iter().map(|(m, s)| (&verify_key, m.as_slice(), s.as_slice())).collect();
            items.insert(company / 2, (&verify_key, &message, &crafted));
            assert!(verify_all(&items), "in a batch of {}", company + 1);
        }
    }

    /// Malformed input is refused, never a panic: short signatures, a
    /// non-canonical s, an R that is not a point, and small-order keys.
    #[test]
    fn malformed_signatures_and_keys_are_refused() {
        let (signing, verify_key) = key(5);
        let message = b"m";
        let good = signing.sign(message).to_bytes();
        assert!(verify(&verify_key, message, &good));
        assert!(!verify(&verify_key, message, &good[..63]));
        let mut big_s = good;
        big_s[63] = 0xff;
        assert!(!verify(&verify_key, message, &big_s));
        let not_a_point = (0..=255u8)
            .map(|b| [b; 32])
            .find(|bytes| CompressedEdwardsY(*bytes).decompress().is_none())
            .expect("some byte string is not a point");
        let mut bad_r = good;
        bad_r[..32].copy_from_slice(&not_a_point);
        assert!(!verify(&verify_key, message, &bad_r));
        assert!(!verify_all(&[(&verify_key, message, &good), (&verify_key, message, &bad_r)]));
        assert!(VerifyKey::from_bytes(EIGHT_TORSION[2].compress().to_bytes()).is_none());
        assert!(VerifyKey::from_bytes(not_a_point).is_none());
    }
}
