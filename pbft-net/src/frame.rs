//! Length-delimited frames: a 4-byte big-endian length, then that many bytes.
//!
//! The decoder is sans-IO: feed it whatever bytes arrived, take out whole
//! frames. A length above the limit is refused as soon as the prefix is read,
//! before any buffer for the body is reserved.

/// Bytes in the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Why a byte stream is not a valid sequence of frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// A frame announced more bytes than allowed; the stream must be closed.
    #[error("frame of {announced} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced length.
        announced: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// `payload` with its length prefix. Payloads over `u32::MAX` bytes cannot be
/// framed; callers never produce them because every limit is far below.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(LENGTH_PREFIX_BYTES + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Reassembles frames from a byte stream, holding at most one frame's worth
/// (the limit plus the prefix) of unconsumed bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    limit: usize,
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `limit` bytes.
    pub fn new(limit: usize) -> FrameDecoder {
        FrameDecoder { limit, buffer: Vec::new() }
    }

    /// Appends bytes that arrived and adds every frame now complete to
    /// `frames`, including those completed before an error. After an error
    /// the stream is unusable and should be closed.
    pub fn push(&mut self, mut bytes: &[u8], frames: &mut Vec<Vec<u8>>) -> Result<(), FrameError> {
        while !bytes.is_empty() {
            let wanted = self.wanted()?;
            let take = wanted.min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if let Some(frame) = self.complete_frame()? {
                frames.push(frame);
            }
        }
        Ok(())
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// How many more bytes the current frame needs.
    fn wanted(&self) -> Result<usize, FrameError> {
        if self.buffer.len() < LENGTH_PREFIX_BYTES {
            return Ok(LENGTH_PREFIX_BYTES - self.buffer.len());
        }
        Ok(LENGTH_PREFIX_BYTES + self.announced()? - self.buffer.len())
    }

    fn announced(&self) -> Result<usize, FrameError> {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        prefix.copy_from_slice(&self.buffer[..LENGTH_PREFIX_BYTES]);
        let announced = u32::from_be_bytes(prefix) as usize;
        if announced > self.limit {
            return Err(FrameError::TooLarge { announced, limit: self.limit });
        }
        Ok(announced)
    }

    fn complete_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buffer.len() < LENGTH_PREFIX_BYTES {
            return Ok(None);
        }
        let announced = self.announced()?;
        if self.buffer.len() < LENGTH_PREFIX_BYTES + announced {
            return Ok(None);
        }
        let frame = self.buffer.split_off(LENGTH_PREFIX_BYTES);
        self.buffer.clear();
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split_of_the_stream() {
        let payloads: Vec<Vec<u8>> = vec![vec![], vec![1], vec![7; 300], b"hello".to_vec()];
        let stream: Vec<u8> = payloads.iter().flat_map(|p| encode_frame(p)).collect();
        for chunk in [1, 2, 3, 5, 64, stream.len()] {
            let mut decoder = FrameDecoder::new(1_000);
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.push(piece, &mut got).unwrap();
            }
            assert_eq!(got, payloads, "chunk size {chunk}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn oversized_frame_is_refused_from_its_prefix() {
        let mut decoder = FrameDecoder::new(100);
        let prefix = 101u32.to_be_bytes();
        let mut frames = Vec::new();
        assert_eq!(
            decoder.push(&prefix, &mut frames),
            Err(FrameError::TooLarge { announced: 101, limit: 100 })
        );
        assert!(decoder.buffered() <= LENGTH_PREFIX_BYTES, "nothing reserved for the body");
    }

    #[test]
    fn decoder_never_holds_more_than_one_frame() {
        let mut decoder = FrameDecoder::new(10);
        let mut stream = encode_frame(&[9; 10]);
        stream.extend_from_slice(&encode_frame(&[8; 3])[..5]);
        let mut frames = Vec::new();
        decoder.push(&stream, &mut frames).unwrap();
        assert_eq!(frames, vec![vec![9; 10]]);
        assert_eq!(decoder.buffered(), 5);
    }

    #[test]
    fn frames_before_an_oversized_one_are_still_delivered() {
        let mut decoder = FrameDecoder::new(10);
        let mut stream = encode_frame(&[1, 2, 3]);
        stream.extend_from_slice(&1_000u32.to_be_bytes());
        let mut frames = Vec::new();
        assert!(decoder.push(&stream, &mut frames).is_err());
        assert_eq!(frames, vec![vec![1, 2, 3]]);
    }
}
