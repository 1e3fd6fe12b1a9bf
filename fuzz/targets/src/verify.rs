//! `KeyBook` verification of decoded messages: nothing unverified reaches
//! the protocol, and nothing malformed makes the verifier panic.
//!
//! The first byte chooses whether the target re-signs the decoded message's
//! outer signature with its claimed author's real key (or a stranger's), so
//! that the checks behind the signature (nested certificates, batch digests,
//! authors) are reached and not only the signature check itself.
//!
//! Properties: verification never panics; it gives the same answer twice;
//! a message that verifies stops verifying when its outer signature changes
//! in one bit or when a key nobody holds signs it.

use crate::keys::{keys, CLIENTS};
use pbft_core::{codec, Author, Message, SecretKey, Signable, Signed};

/// Applies `$f` (a generic function over `Signed<T>`) to the outer signed
/// value of `$message`, giving a message of the same kind.
macro_rules! map_outer {
    ($message:expr, $f:expr) => {
        match $message {
            Message::Request(m) => Message::Request($f(m)),
            Message::PrePrepare(m) => Message::PrePrepare($f(m)),
            Message::Prepare(m) => Message::Prepare($f(m)),
            Message::Commit(m) => Message::Commit($f(m)),
            Message::Checkpoint(m) => Message::Checkpoint($f(m)),
            Message::ViewChange(m) => Message::ViewChange($f(m)),
            Message::NewView(m) => Message::NewView($f(m)),
            Message::Status(m) => Message::Status($f(m)),
            Message::Committed(m) => Message::Committed($f(m)),
            Message::StableCheckpoint(m) => Message::StableCheckpoint($f(m)),
            Message::FetchState(m) => Message::FetchState($f(m)),
            Message::StateChunk(m) => Message::StateChunk($f(m)),
        }
    };
}

/// `message` signed again by `key`.
pub fn resigned(message: &Message, key: &SecretKey) -> Message {
    fn sign<T: Signable + Clone>(signed: &Signed<T>, key: &SecretKey) -> Signed<T> {
        Signed::sign(signed.payload().clone(), key)
    }
    map_outer!(message, |m| sign(m, key))
}

/// `message` with bit `bit` of its outer signature flipped (a signature too
/// short for that bit gains a byte instead).
fn with_flipped_bit(message: &Message, bit: usize) -> Message {
    fn flip<T: Signable + Clone>(signed: &Signed<T>, bit: usize) -> Signed<T> {
        let mut signature = signed.signature().to_vec();
        match signature.get_mut(bit / 8) {
            Some(byte) => *byte ^= 1 << (bit % 8),
            None => signature.push(1),
        }
        Signed::from_parts(signed.payload().clone(), signature)
    }
    map_outer!(message, |m| flip(m, bit))
}

/// The real key of the author `message` claims, if the key book has one.
pub fn author_key(message: &Message) -> Option<&'static SecretKey> {
    let keys = keys();
    match message.author() {
        Author::Replica(id) => keys.replicas.get(id.0 as usize),
        Author::Client(id) => CLIENTS.iter().position(|&c| c == id).map(|i| &keys.clients[i]),
    }
}

/// Runs one input: a control byte, then an encoded [`Message`].
pub fn run(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(decoded) = codec::decode::<Message>(rest) else { return };
    let keys = keys();
    let message = match control % 4 {
        0 => decoded,
        1 | 2 => author_key(&decoded).map_or(decoded.clone(), |key| resigned(&decoded, key)),
        _ => resigned(&decoded, &keys.stranger),
    };
    let first = keys.book.verify(message.clone()).is_ok();
    let second = keys.book.verify(message.clone()).is_ok();
    assert_eq!(first, second, "verification gave two answers");
    if first {
        // A verified signature has 64 bytes: every control byte names one of its bits.
        let bit = usize::from(control);
        assert!(
            keys.book.verify(with_flipped_bit(&message, bit)).is_err(),
            "a flipped signature bit verified"
        );
        assert!(
            keys.book.verify(resigned(&message, &keys.stranger)).is_err(),
            "a stranger's signature verified"
        );
    }
}
