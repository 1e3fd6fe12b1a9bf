//! The state a checkpoint certifies: the application's pages and the reply
//! cache, the digest replicas agree on, and the bytes state transfer sends.
//!
//! The digest covers the pages through their own digests, so a page kept
//! unchanged by the application since the last checkpoint costs nothing to
//! hash again; the bytes are produced piece by piece from the shared pages
//! when a peer asks, never held as one copy.

use super::replies::ReplyCache;
use crate::app::Page;
use crate::codec;
use crate::digest::{Digest, PartsHasher};
use std::sync::Arc;

/// The application's pages and the encoded reply cache at one checkpoint.
#[derive(Debug)]
pub(crate) struct CheckpointState {
    pages: Vec<Page>,
    replies: Vec<u8>,
    digest: Digest,
}

/// Domain separation for state digests.
const STATE_DOMAIN: &[u8] = b"pbft-v2 state";

impl CheckpointState {
    /// The state made of `pages` and the reply cache encoded as `replies`;
    /// the reply cache is part of it so that exactly-once survives anything
    /// rebuilt from a checkpoint.
    pub(crate) fn new(pages: Vec<Page>, replies: &ReplyCache) -> CheckpointState {
        // The encoder grows its buffer by doubling; a state is held for a
        // while (and once per held checkpoint), so it keeps only its bytes.
        let mut replies = codec::encode(replies);
        replies.shrink_to_fit();
        Self::of_parts(pages, replies)
    }

    pub(crate) fn of_parts(pages: Vec<Page>, replies: Vec<u8>) -> CheckpointState {
        let mut page_digests = Vec::with_capacity(32 * pages.len());
        for page in &pages {
            page_digests.extend_from_slice(page.digest().as_bytes());
        }
        let digest = Digest::of_parts(&[STATE_DOMAIN, &page_digests, &replies]);
        CheckpointState { pages, replies, digest }
    }

    /// What replicas sign in CHECKPOINT messages.
    pub(crate) fn digest(&self) -> Digest {
        self.digest
    }

    /// The application's pages.
    pub(crate) fn pages(&self) -> &[Page] {
        &self.pages
    }

    /// The encoded reply cache.
    pub(crate) fn replies(&self) -> &[u8] {
        &self.replies
    }

    /// Length of the transferred bytes: the page count, each page's length
    /// and bytes, then the encoded reply cache (all lengths 8-byte little endian).
    pub(crate) fn len(&self) -> usize {
        8 + self.pages.iter().map(|page| 8 + page.bytes().len()).sum::<usize>() + self.replies.len()
    }

    /// At most `max` of the transferred bytes, from `offset`.
    pub(crate) fn read(&self, offset: usize, max: usize) -> Vec<u8> {
        let mut reader = Reader { offset, max, at: 0, out: Vec::new() };
        reader.piece(&(self.pages.len() as u64).to_le_bytes());
        for page in &self.pages {
            if reader.full() {
                break;
            }
            reader.piece(&(page.bytes().len() as u64).to_le_bytes());
            reader.piece(page.bytes());
        }
        reader.piece(&self.replies);
        reader.out
    }

    /// The digest of the state whose transferred bytes are `bytes`, without
    /// decoding it: the same as [`CheckpointState::digest`] of
    /// [`CheckpointState::decode`]'s result, computed in constant memory.
    /// `None` if they are not such bytes. A fetched state is checked with it
    /// before anything is built from it: a lying peer's page count could
    /// otherwise make the replica allocate a page per 8 bytes received.
    pub(crate) fn digest_of_transferred(bytes: &[u8]) -> Option<Digest> {
        let count = read_u64(bytes, 0)?;
        if count > (bytes.len() - 8) / 8 {
            return None;
        }
        let mut hasher = PartsHasher::new();
        hasher.part(STATE_DOMAIN);
        hasher.start_part(32usize.checked_mul(count)?);
        let mut at = 8;
        for _ in 0..count {
            let length = read_u64(bytes, at)?;
            let start = at + 8;
            let end = start.checked_add(length)?;
            hasher.update(Page::digest_of(bytes.get(start..end)?).as_bytes());
            at = end;
        }
        hasher.part(bytes.get(at..)?);
        Some(hasher.finish())
    }

    /// The state whose transferred bytes are `bytes`, and its reply cache;
    /// `None` if they are not such bytes. The pages keep `bytes` and are
    /// ranges of it, so a state of many MiB is not copied. Check the digest
    /// first ([`CheckpointState::digest_of_transferred`]): the reply cache
    /// is decoded as certified bytes, without the message size limit.
    pub(crate) fn decode(bytes: Vec<u8>) -> Option<(CheckpointState, ReplyCache)> {
        let buffer = Arc::new(bytes);
        let (count, mut at) = (read_u64(&buffer, 0)?, 8);
        // Every page takes at least its 8-byte length: a count beyond that is a lie.
        if count > (buffer.len() - at) / 8 {
            return None;
        }
        let mut pages = Vec::with_capacity(count);
        for _ in 0..count {
            let length = read_u64(&buffer, at)?;
            let start = at + 8;
            let end = start.checked_add(length)?;
            pages.push(Page::within(&buffer, start..end)?);
            at = end;
        }
        let replies = buffer.get(at..)?;
        let cache: ReplyCache = codec::decode_certified(replies).ok()?;
        Some((Self::of_parts(pages, replies.to_vec()), cache))
    }

    /// The transferred bytes in one piece (tests build peers' answers from it).
    #[cfg(test)]
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.read(0, self.len())
    }
}

/// The 8-byte little-endian length at `at` in `bytes`.
fn read_u64(bytes: &[u8], at: usize) -> Option<usize> {
    let field: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(field)).ok()
}

/// Copies the window `[offset, offset + max)` out of pieces met in order.
struct Reader {
    offset: usize,
    max: usize,
    /// Where the next piece starts in the whole.
    at: usize,
    out: Vec<u8>,
}

impl Reader {
    fn full(&self) -> bool {
        self.out.len() >= self.max
    }

    fn piece(&mut self, piece: &[u8]) {
        let end = self.at + piece.len();
        if end > self.offset && !self.full() {
            let from = self.offset.saturating_sub(self.at);
            let take = (piece.len() - from).min(self.max - self.out.len());
            self.out.extend_from_slice(&piece[from..from + take]);
        }
        self.at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::replies::{CachedReply, ClientReplies};
    use crate::ClientId;
    use std::collections::BTreeMap;

    fn state(pages: &[&[u8]]) -> CheckpointState {
        let replies = BTreeMap::from([(
            ClientId(7),
            ClientReplies {
                newest: 2,
                recent: BTreeMap::from([(
                    2,
                    CachedReply { request: Digest::of(b"r"), result: vec![1; 9], withheld: None },
                )]),
            },
        )]);
        CheckpointState::new(pages.iter().map(|p| Page::new(p.to_vec())).collect(), &replies)
    }

    /// Reading in chunks of any size gives the same bytes as reading at once,
    /// and those bytes decode to the same pages, replies and digest.
    #[test]
    fn the_transferred_bytes_read_in_any_chunks_decode_to_the_same_state() {
        let original = state(&[b"first page", b"", b"third, a little longer"]);
        let whole = original.to_bytes();
        assert_eq!(whole.len(), original.len());
        for chunk in [1, 3, 8, 13, 64, whole.len()] {
            let mut pieces = Vec::new();
            let mut offset = 0;
            while offset < whole.len() {
                let piece = original.read(offset, chunk);
                assert!(!piece.is_empty() && piece.len() <= chunk);
                offset += piece.len();
                pieces.extend(piece);
            }
            assert_eq!(pieces, whole, "chunks of {chunk}");
        }
        assert!(original.read(whole.len(), 64).is_empty());
        let (decoded, replies) = CheckpointState::decode(whole.clone()).expect("decodes");
        assert_eq!(decoded.pages(), original.pages());
        assert_eq!(decoded.digest(), original.digest());
        assert_eq!(codec::encode(&replies), original.replies);
    }

    /// The digest depends on every page, on how the bytes are split into
    /// pages, and on the reply cache.
    #[test]
    fn the_digest_changes_with_any_page_and_with_the_split() {
        let base = state(&[b"ab", b"cd"]).digest();
        assert_eq!(state(&[b"ab", b"cd"]).digest(), base);
        assert_ne!(state(&[b"ab", b"ce"]).digest(), base);
        assert_ne!(state(&[b"abcd"]).digest(), base);
        assert_ne!(state(&[b"a", b"bcd"]).digest(), base);
        assert_ne!(state(&[b"cd", b"ab"]).digest(), base);
        let other_replies = CheckpointState::new(state(&[b"ab", b"cd"]).pages, &BTreeMap::new());
        assert_ne!(other_replies.digest(), base);
    }

    /// Truncated bytes, a page count or page length beyond the bytes, and
    /// trailing bytes that are not a reply cache are refused, never a panic.
    #[test]
    fn malformed_state_bytes_are_refused() {
        let whole = state(&[b"page"]).to_bytes();
        for cut in 0..whole.len() {
            assert!(CheckpointState::decode(whole[..cut].to_vec()).is_none(), "cut at {cut}");
        }
        let mut many_pages = whole.clone();
        many_pages[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(CheckpointState::decode(many_pages).is_none());
        let mut long_page = whole.clone();
        long_page[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(CheckpointState::decode(long_page).is_none());
        let mut trailing = whole;
        trailing.push(0xff);
        assert!(CheckpointState::decode(trailing).is_none());
    }

    /// Issue 21, point 2: the digest computed from the transferred bytes, in
    /// constant memory, is the decoded state's, and no cut of the bytes and
    /// no lying page count gives it; a count of a page per 8 bytes is
    /// answered without building a page.
    #[test]
    fn the_digest_of_transferred_bytes_is_the_decoded_states() {
        for pages in [&[][..], &[&b"one"[..]], &[b"first page", b"", b"third, a little longer"]] {
            let original = state(pages);
            let whole = original.to_bytes();
            assert_eq!(CheckpointState::digest_of_transferred(&whole), Some(original.digest()));
            for cut in 0..whole.len() {
                assert_ne!(CheckpointState::digest_of_transferred(&whole[..cut]), Some(original.digest()));
            }
        }
        let mut zero_pages = vec![0u8; 8 * 1024];
        zero_pages[..8].copy_from_slice(&1023u64.to_le_bytes());
        let lie = CheckpointState::digest_of_transferred(&zero_pages);
        assert!(lie.is_some_and(|digest| digest != state(&[]).digest()));
    }

    /// Issue 21, point 2: a reply cache larger than any one message (here
    /// 65 MiB of results) still decodes from a transferred state: it used
    /// to fail the message limit, and with it every transfer, for ever.
    #[test]
    fn a_reply_cache_larger_than_a_message_transfers() {
        let big = vec![3u8; codec::MAX_MESSAGE_BYTES + (1 << 20)];
        let replies = BTreeMap::from([(
            ClientId(1),
            ClientReplies {
                newest: 1,
                recent: BTreeMap::from([(
                    1,
                    CachedReply { request: Digest::of(b"r"), result: big, withheld: None },
                )]),
            },
        )]);
        let original = CheckpointState::new(vec![Page::new(b"page".to_vec())], &replies);
        let whole = original.to_bytes();
        assert_eq!(CheckpointState::digest_of_transferred(&whole), Some(original.digest()));
        let (decoded, decoded_replies) = CheckpointState::decode(whole).expect("decodes");
        assert_eq!(decoded.digest(), original.digest());
        assert_eq!(decoded_replies, replies);
    }
}
