//! The replicated application: what the protocol orders operations for.

use crate::digest::Digest;
use std::sync::{Arc, OnceLock};

/// Why an application could not restore a snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot restore snapshot: {0}")]
pub struct AppError(pub String);

/// A deterministic state machine replicated by PBFT.
///
/// Every replica applies the same operations in the same order; the protocol
/// is only correct if `execute` gives the same result and the same next state
/// on every replica for the same state and operation.
pub trait ReplicatedStateMachine {
    /// Applies `op` and returns the result sent to the client. Deterministic:
    /// no clocks, randomness or iteration over unordered maps.
    fn execute(&mut self, op: &[u8]) -> Vec<u8>;
    /// Answers a read-only operation from the current state. Must not change
    /// anything (it takes `&self`) and be deterministic like `execute`.
    /// Replicas answer queries without ordering them when they can (the
    /// read-only optimisation), and order them when their answers disagree.
    fn query(&self, op: &[u8]) -> Vec<u8>;
    /// The whole state as bytes. Checkpoints take it as their one page (and
    /// replicas agree on its digest) unless
    /// [`snapshot_pages`](Self::snapshot_pages) is overridden.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with one taken by `snapshot`.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), AppError>;

    /// The whole state as pages: what checkpoints actually take. The state's
    /// digest is built from the pages' digests, and a page that is the same
    /// [`Page`] (a clone) as at the previous checkpoint is neither encoded nor
    /// hashed again, so an application whose state is large can keep the
    /// pages of the parts that did not change and make a checkpoint cost
    /// what changed since the last one. The default is one page holding
    /// [`snapshot`](Self::snapshot): right for small states.
    fn snapshot_pages(&self) -> Vec<Page> {
        vec![Page::new(self.snapshot())]
    }

    /// Replaces the state with one taken by
    /// [`snapshot_pages`](Self::snapshot_pages). The default expects the one
    /// page the default `snapshot_pages` makes. Pages received from a peer
    /// share one buffer holding the whole state, so keep what you decode
    /// from them, not the pages, or that buffer stays alive with them.
    fn restore_pages(&mut self, pages: &[Page]) -> Result<(), AppError> {
        self.restore(only_page(pages).map_err(AppError)?.bytes())
    }
}

/// The one page of a state the default `snapshot_pages` took, or why
/// `pages` is not such a state.
pub(crate) fn only_page(pages: &[Page]) -> Result<&Page, String> {
    match pages {
        [page] => Ok(page),
        _ => Err(format!("expected one page, got {}", pages.len())),
    }
}

/// A page persists as its bytes (a snapshot record holds the pages shared,
/// so writing one copies nothing until the host encodes it).
impl serde::Serialize for Page {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.bytes().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Page {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Page, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(Page::new)
    }
}

/// A piece of an application snapshot. Clones share the bytes, and the
/// digest is computed once per page however many checkpoints hold it.
#[derive(Clone, Debug)]
pub struct Page(Arc<PageParts>);

#[derive(Debug)]
struct PageParts {
    bytes: PageBytes,
    digest: OnceLock<Digest>,
}

/// Where a page's bytes live: its own vector, or a range of a larger
/// buffer shared with other pages (a state received from a peer, so that
/// installing it does not copy it).
#[derive(Debug)]
enum PageBytes {
    Own(Vec<u8>),
    Shared { buffer: Arc<Vec<u8>>, range: std::ops::Range<usize> },
}

impl Page {
    /// A page holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Page {
        Page::of(PageBytes::Own(bytes))
    }

    /// The page holding `buffer[range]`, sharing the buffer; `None` if the
    /// range is not inside it.
    pub(crate) fn within(buffer: &Arc<Vec<u8>>, range: std::ops::Range<usize>) -> Option<Page> {
        buffer.get(range.clone())?;
        Some(Page::of(PageBytes::Shared { buffer: buffer.clone(), range }))
    }

    fn of(bytes: PageBytes) -> Page {
        Page(Arc::new(PageParts { bytes, digest: OnceLock::new() }))
    }

    /// The page's bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.0.bytes {
            PageBytes::Own(bytes) => bytes,
            PageBytes::Shared { buffer, range } => buffer.get(range.clone()).unwrap_or_default(),
        }
    }

    /// Whether `other` is this very page (a clone of it), not merely one
    /// with equal bytes: what an application's tests check to see that an
    /// unchanged part kept its page between checkpoints.
    pub fn is_shared_with(&self, other: &Page) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The page's digest, computed on first use.
    pub fn digest(&self) -> Digest {
        *self.0.digest.get_or_init(|| Page::digest_of(self.bytes()))
    }

    /// The digest a page holding `bytes` has.
    pub(crate) fn digest_of(bytes: &[u8]) -> Digest {
        Digest::of_parts(&[b"pbft-v1 page", bytes])
    }
}

impl PartialEq for Page {
    fn eq(&self, other: &Page) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Page {}
