//! Wire decoding (`pbft_net::decode_wire`) of one frame's payload, every
//! message kind included.
//!
//! Properties: decoding any bytes returns a value or an error, never panics
//! or allocates past the codec's limit; a decoded value encodes to at most
//! the bytes it came from and decodes back to itself; the accessors hosts call
//! before verification (kind, author, encoded length) do not panic.

use pbft_core::codec;
use pbft_net::{decode_wire, encode_wire, Wire};

/// Runs one input: the whole input is one frame's payload.
pub fn run(data: &[u8]) {
    let Ok(wire) = decode_wire(data) else { return };
    let again = encode_wire(&wire);
    assert!(again.len() <= data.len(), "re-encoded to {} bytes from {}", again.len(), data.len());
    assert_eq!(codec::encoded_len(&wire), again.len(), "encoded_len disagrees with encode");
    let back = decode_wire(&again).expect("an encoded value decodes");
    assert_eq!(back, wire, "a decoded value does not survive a round trip");
    if let Wire::Message(message) = &wire {
        let _ = (message.kind(), message.author());
    }
}
