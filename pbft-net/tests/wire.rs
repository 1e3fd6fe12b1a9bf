//! Wire decoding of untrusted bytes: errors, never panics, never large allocations.

use pbft_core::{ClientId, Message, Request, SecretKey, Signed};
use pbft_net::{decode_wire, encode_frame, encode_wire, FrameDecoder, Wire};

#[test]
fn signed_messages_round_trip_through_frames() {
    let key = SecretKey::from_seed([3; 32]);
    let wire = Wire::Message(Message::Request(Signed::sign(
        Request { client: ClientId(1), timestamp: 9, op: b"put k v".to_vec(), kind: Default::default() },
        &key,
    )));
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut frames = Vec::new();
    decoder.push(&encode_frame(&encode_wire(&wire)), &mut frames).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(decode_wire(&frames[0]).unwrap(), wire);
}

#[test]
fn garbage_and_truncated_payloads_are_errors() {
    let key = SecretKey::from_seed([3; 32]);
    let wire = Wire::Message(Message::Request(Signed::sign(
        Request { client: ClientId(1), timestamp: 9, op: vec![0; 40], kind: Default::default() },
        &key,
    )));
    let bytes = encode_wire(&wire);
    for cut in 0..bytes.len() {
        assert!(decode_wire(&bytes[..cut]).is_err(), "a prefix of {cut} bytes decoded");
    }
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in 0..2_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let garbage: Vec<u8> = (0..len % 97).map(|i| (state >> (i % 56)) as u8).collect();
        let _ = decode_wire(&garbage);
    }
}
