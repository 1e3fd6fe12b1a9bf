//! One record on disk: `length: u32 LE | crc: u32 LE | payload`, where
//! `crc` is the CRC-32C of the four length bytes followed by the payload,
//! so a corrupted length is caught as surely as a corrupted payload.

use super::error::StorageError;

/// Bytes before the payload: the length and the checksum.
pub const HEADER_BYTES: usize = 8;

/// The largest payload a record may hold, 1 GiB. A larger length on disk is
/// damage (or a torn tail), never an allocation.
pub const MAX_RECORD_BYTES: usize = 1 << 30;

/// What [`decode_at`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, checked record; the next one starts at `next`.
    Record {
        /// The record's payload.
        payload: &'a [u8],
        /// The offset just past this record.
        next: usize,
    },
    /// The offset is the end of the bytes: no record, no damage.
    End,
    /// Something that is not a whole, checked record: too few bytes for a
    /// header or for the payload the header claims, a length over the cap,
    /// or a checksum mismatch.
    Invalid,
}

/// The checksum stored in a record's header.
fn checksum(length: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&length), payload)
}

/// Appends the on-disk form of `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), StorageError> {
    let too_large = || StorageError::RecordTooLarge { bytes: payload.len(), max: MAX_RECORD_BYTES };
    if payload.len() > MAX_RECORD_BYTES {
        return Err(too_large());
    }
    let length = u32::try_from(payload.len()).map_err(|_| too_large())?.to_le_bytes();
    out.reserve(HEADER_BYTES + payload.len());
    out.extend_from_slice(&length);
    out.extend_from_slice(&checksum(length, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Reads the record that starts at `offset` of `bytes`. The length on disk
/// is checked against the bytes that remain before anything is sliced, so
/// a garbage length costs nothing.
pub fn decode_at(bytes: &[u8], offset: usize) -> Decoded<'_> {
    let Some(rest) = bytes.get(offset..) else { return Decoded::Invalid };
    if rest.is_empty() {
        return Decoded::End;
    }
    let (Some(length), Some(stored)) = (rest.get(0..4), rest.get(4..HEADER_BYTES)) else {
        return Decoded::Invalid;
    };
    let length: [u8; 4] = [length[0], length[1], length[2], length[3]];
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let Ok(len) = usize::try_from(u32::from_le_bytes(length)) else { return Decoded::Invalid };
    if len > MAX_RECORD_BYTES {
        return Decoded::Invalid;
    }
    let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + len) else { return Decoded::Invalid };
    if checksum(length, payload) != stored {
        return Decoded::Invalid;
    }
    Decoded::Record { payload, next: offset + HEADER_BYTES + len }
}

/// The records `payloads`, encoded one after the other (the storage tests' one encoder).
#[cfg(test)]
pub(super) fn encoded(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        if encode(p, &mut out).is_err() {
            panic!("a test record is too large");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoding then decoding gives back every payload, the empty one
    /// included, and then `End`.
    #[test]
    fn round_trip() {
        let bytes = encoded(&[b"one", b"", b"three"]);
        let mut offset = 0;
        let mut seen = Vec::new();
        while let Decoded::Record { payload, next } = decode_at(&bytes, offset) {
            seen.push(payload.to_vec());
            offset = next;
        }
        assert_eq!(seen, vec![b"one".to_vec(), Vec::new(), b"three".to_vec()]);
        assert_eq!(decode_at(&bytes, offset), Decoded::End);
    }

    /// Flipping any single bit of a record (length, checksum or payload)
    /// makes it invalid: the checksum covers the length too.
    #[test]
    fn any_flipped_bit_is_caught() {
        let bytes = encoded(&[b"payload"]);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert_eq!(decode_at(&bad, 0), Decoded::Invalid, "byte {i} bit {bit}");
            }
        }
    }

    /// The stored checksum is the CRC-32C of the length bytes followed by
    /// the payload, so a corrupted length fails it even when the payload
    /// it then points at happens to be self-consistent.
    #[test]
    fn checksum_covers_the_length() {
        let bytes = encoded(&[b"payload"]);
        let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let mut covered = bytes[0..4].to_vec();
        covered.extend_from_slice(b"payload");
        assert_eq!(stored, crc32c::crc32c(&covered));
        assert_ne!(stored, crc32c::crc32c(b"payload"));
    }

    /// A length over the cap is refused on append.
    #[test]
    fn oversized_record_is_refused() {
        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        let err = encode(&big, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, StorageError::RecordTooLarge { bytes, .. } if bytes == MAX_RECORD_BYTES + 1));
    }
}
