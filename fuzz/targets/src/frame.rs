//! The frame decoder (`pbft_net::frame`), fed any byte stream in any split.
//!
//! Properties: however the stream is cut into reads, the decoder yields
//! exactly the frames a one-pass reading of the whole stream finds, stops
//! with `TooLarge` exactly where that reading meets a length over the limit,
//! and never holds more than one frame (the limit plus the prefix).

use arbitrary::Unstructured;
use pbft_net::{FrameDecoder, FrameError, LENGTH_PREFIX_BYTES};

/// The limit under test: small, so that the fuzzer meets it easily.
const LIMIT: usize = 512;

/// The frames of `stream` read in one pass, and whether it then announced
/// a frame over the limit.
fn reference(stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= LENGTH_PREFIX_BYTES {
        let (prefix, body) = rest.split_at(LENGTH_PREFIX_BYTES);
        let announced = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if announced > LIMIT {
            return (frames, true);
        }
        if body.len() < announced {
            break;
        }
        frames.push(body[..announced].to_vec());
        rest = &body[announced..];
    }
    (frames, false)
}

/// Runs one input: the first bytes choose the cuts, the rest is the stream.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let cuts: Vec<u16> =
        (0..u.int_in_range(0..=8u8).unwrap_or(0)).map(|_| u.arbitrary().unwrap_or(1)).collect();
    let stream = u.take_rest();
    let (expected, over_limit) = reference(stream);

    let mut decoder = FrameDecoder::new(LIMIT);
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut cut = cuts.iter().cycle();
    let mut failed = None;
    while !rest.is_empty() {
        let size = cut.next().map_or(rest.len(), |&c| usize::from(c).max(1)).min(rest.len());
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        if let Err(error) = decoder.push(piece, &mut frames) {
            failed = Some(error);
            break;
        }
        assert!(decoder.buffered() <= LIMIT + LENGTH_PREFIX_BYTES, "holds {} bytes", decoder.buffered());
    }
    assert_eq!(frames, expected, "frames differ from a one-pass reading");
    match failed {
        Some(FrameError::TooLarge { announced, limit }) => {
            assert!(over_limit, "refused a frame of {announced} bytes the stream does not announce");
            assert!(announced > limit);
        }
        None => assert!(!over_limit, "accepted a stream announcing a frame over the limit"),
    }
}
