//! The one place that knows the byte encoding of messages (bincode 2 through serde).
//!
//! Everything that turns values into bytes — signatures, digests, the wire — goes
//! through here, so the codec can be swapped in one module.

use serde::{de::DeserializeOwned, Serialize};

/// The largest encoded message accepted by [`decode`], in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The input is longer than the limit.
    #[error("message of {found} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The input length.
        found: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The value decoded but bytes were left over.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` deterministically: the same value always gives the same bytes.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for the plain data types of this crate:
    // they have no maps with non-serialisable keys and no custom serialisers
    // that error. An error here is a programming mistake, not peer input.
    match bincode::serde::encode_to_vec(value, config()) {
        Ok(bytes) => bytes,
        Err(error) => panic!("encoding a protocol value failed: {error}"),
    }
}

/// The length of `encode(value)`, computed without building it.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut size, config()) {
        Ok(()) => size.bytes_written,
        Err(error) => panic!("encoding a protocol value failed: {error}"),
    }
}

/// Feeds `encode(value)` to `sink` piece by piece instead of building it, so
/// hashing a large message (a state chunk) does not copy it.
pub fn encode_to_sink<T: Serialize>(value: &T, sink: impl FnMut(&[u8])) {
    struct Sink<F>(F);
    impl<F: FnMut(&[u8])> bincode::enc::write::Writer for Sink<F> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            (self.0)(bytes);
            Ok(())
        }
    }
    if let Err(error) = bincode::serde::encode_into_writer(value, Sink(sink), config()) {
        panic!("encoding a protocol value failed: {error}");
    }
}

/// Encodes `value`, reporting rather than panicking when its serialiser
/// fails (an application's types may have serialisers that do).
pub fn try_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Decodes a `T` from exactly `bytes`, refusing inputs over [`MAX_MESSAGE_BYTES`]
/// and any length field that would make the decoder allocate past that limit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { found: bytes.len(), limit: MAX_MESSAGE_BYTES });
    }
    let limited = config().with_limit::<MAX_MESSAGE_BYTES>();
    let (value, read) = bincode::serde::decode_from_slice(bytes, limited)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - read));
    }
    Ok(value)
}

/// [`decode`] without the message size limit, for bytes a quorum certified
/// by their digest (a transferred checkpoint's reply cache, which may be
/// larger than any one message): the digest was checked first, so the bytes
/// are what honest replicas encoded, and their length fields tell the truth.
pub fn decode_certified<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let unlimited = config().with_limit::<{ usize::MAX }>();
    let (value, read) = bincode::serde::decode_from_slice(bytes, unlimited)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - read));
    }
    Ok(value)
}

/// Serde helpers that encode a byte vector as one byte string instead of a
/// sequence of single bytes. The encoded bytes are the same with this codec
/// (a length, then the bytes), but the encoder writes them in one piece
/// rather than calling the serialiser once per byte, which dominated the cost
/// of hashing and copying operations, results and state chunks.
/// Use with `#[serde(with = "crate::codec::bytes")]`.
pub mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Serialises `bytes` as a byte string.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    /// Deserialises a byte string (or a sequence of bytes) into a vector.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(ByteBuf)
    }

    struct ByteBuf;

    impl<'de> Visitor<'de> for ByteBuf {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes() {
        let value = (7u64, vec![1u8, 2, 3], String::from("x"));
        let mut bytes = encode(&value);
        assert_eq!(decode::<(u64, Vec<u8>, String)>(&bytes), Ok(value));
        bytes.push(0);
        assert_eq!(decode::<(u64, Vec<u8>, String)>(&bytes), Err(CodecError::Trailing(1)));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> claiming u64::MAX elements: varint tag 253 then 8 bytes.
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode::<Vec<u8>>(&bytes), Err(CodecError::Malformed(_))));
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct AsBytes(#[serde(with = "bytes")] Vec<u8>);

    #[test]
    fn byte_strings_encode_as_sequences_of_bytes_do() {
        for data in [vec![], vec![7u8], (0..=255u8).cycle().take(70_000).collect::<Vec<u8>>()] {
            let encoded = encode(&AsBytes(data.clone()));
            assert_eq!(encoded, encode(&data), "same bytes on the wire");
            assert_eq!(decode::<AsBytes>(&encoded), Ok(AsBytes(data.clone())));
        }
        let mut huge = vec![253u8];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode::<AsBytes>(&huge), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..64u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37).wrapping_add(len)).collect();
            let _ = decode::<(u64, Vec<String>, Option<u32>)>(&bytes);
        }
    }
}
