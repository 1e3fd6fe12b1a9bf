//! A replicated key-value store: the smallest useful application.

use pbft_core::typed::StateMachine;
use pbft_core::{codec, Page};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// An operation that changes the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` (removes it when `None`) only if it currently
    /// holds `expected` (is absent when `None`).
    CompareAndSwap {
        /// The key.
        key: String,
        /// The value the key must hold for the swap to happen; absent if omitted.
        expected: Option<String>,
        /// The value it gets; deleted if omitted.
        new: Option<String>,
    },
}

/// A read-only question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvQuery {
    /// Reads `key` (answered without ordering when 2f+1 replicas agree).
    Get {
        /// The key.
        key: String,
    },
}

/// The result of an operation or query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResult {
    /// The value the key held before the operation, if any.
    Previous(Option<String>),
    /// The value read.
    Value(Option<String>),
    /// Whether a compare-and-swap happened, and the value the key holds after it.
    Swapped {
        /// True when the key held the expected value.
        swapped: bool,
        /// The key's value after the operation.
        current: Option<String>,
    },
}

/// A map from strings to strings.
///
/// The keys are spread over buckets by a hash of the key, and each bucket
/// keeps its encoded page until it is written again, so a checkpoint encodes
/// and hashes only the buckets written since the previous one: with tens of
/// thousands of keys a checkpoint no longer stalls every replica for
/// milliseconds. The store grows by linear hashing: whenever it averages more
/// than 8 keys or 2 KiB per bucket, one bucket splits in two, so growing
/// never rewrites the whole store at once, and a write re-encodes a page of
/// a few KiB at most, however large the values. The buckets never merge, and
/// depend only on the operations executed, so every replica has the same
/// ones. A client that picks keys hashing to one bucket only makes that
/// bucket's page large: a checkpoint then costs what the whole store did
/// before buckets.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "Entries")]
pub struct KvStore {
    buckets: Vec<Bucket>,
    size: Size,
}

/// How much a store holds, which decides how many buckets it has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Size {
    keys: usize,
    /// Bytes of all keys and values.
    bytes: usize,
}

impl Size {
    fn add(&mut self, key_len: usize, value_len: usize) {
        self.keys += 1;
        self.bytes += key_len + value_len;
    }

    fn remove(&mut self, key_len: usize, value_len: usize) {
        self.keys -= 1;
        self.bytes -= key_len + value_len;
    }

    /// The bucket count a store reaches as it grows to this size.
    fn buckets(self) -> usize {
        self.keys.div_ceil(KEYS_PER_BUCKET).max(self.bytes.div_ceil(BYTES_PER_BUCKET)).clamp(1, MAX_BUCKETS)
    }
}

/// The store's whole-state encoding: every entry in key order.
#[derive(Deserialize)]
struct Entries {
    entries: BTreeMap<String, String>,
}

/// [`Entries`] made of borrowed strings, to encode a store without copying it.
#[derive(Serialize)]
#[serde(rename = "Entries")]
struct EntriesRef<'a> {
    entries: BTreeMap<&'a str, &'a str>,
}

impl Serialize for KvStore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.buckets.iter().flat_map(|bucket| &bucket.entries);
        EntriesRef { entries: entries.map(|(key, value)| (key.as_str(), value.as_str())).collect() }
            .serialize(serializer)
    }
}

/// The entries whose key hashes to one bucket, and their page as of the last
/// checkpoint if none changed since.
#[derive(Clone, Debug, Default)]
struct Bucket {
    entries: BTreeMap<String, String>,
    page: OnceLock<Page>,
}

/// Keys per bucket, on average, above which a bucket splits.
const KEYS_PER_BUCKET: usize = 8;
/// Bytes of keys and values per bucket, on average, above which a bucket splits.
const BYTES_PER_BUCKET: usize = 2048;
/// Beyond this many buckets they grow instead of splitting again.
const MAX_BUCKETS: usize = 1 << 16;

/// The bucket of `key` among `count` buckets, by linear hashing: with
/// `2^k <= count < 2^(k+1)`, the key's hash modulo `2^(k+1)` if that bucket
/// exists (it was split off, or splits no further), else modulo `2^k`.
fn bucket_of(key: &str, count: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let hash = (hash ^ (hash >> 32)) as usize;
    let low = 1 << count.ilog2();
    let index = hash & (2 * low - 1);
    if index < count {
        index
    } else {
        index - low
    }
}

impl Default for KvStore {
    fn default() -> KvStore {
        KvStore { buckets: vec![Bucket::default()], size: Size::default() }
    }
}

impl PartialEq for KvStore {
    fn eq(&self, other: &KvStore) -> bool {
        self.size == other.size
            && self.buckets.len() == other.buckets.len()
            && self.buckets.iter().zip(&other.buckets).all(|(a, b)| a.entries == b.entries)
    }
}

impl Eq for KvStore {}

impl From<Entries> for KvStore {
    fn from(Entries { entries }: Entries) -> KvStore {
        let mut size = Size::default();
        entries.iter().for_each(|(key, value)| size.add(key.len(), value.len()));
        KvStore::with_buckets(size.buckets(), entries)
    }
}

impl KvStore {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.bucket(key).entries.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.size.keys
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.size.keys == 0
    }

    fn with_buckets(count: usize, entries: impl IntoIterator<Item = (String, String)>) -> KvStore {
        let mut store = KvStore { buckets: vec![Bucket::default(); count], size: Size::default() };
        for (key, value) in entries {
            store.size.add(key.len(), value.len());
            store.buckets[bucket_of(&key, count)].entries.insert(key, value);
        }
        store
    }

    fn bucket(&self, key: &str) -> &Bucket {
        &self.buckets[bucket_of(key, self.buckets.len())]
    }

    /// The bucket of `key`, about to be written: its page is dropped.
    fn bucket_to_write(&mut self, key: &str) -> &mut Bucket {
        let index = bucket_of(key, self.buckets.len());
        let bucket = &mut self.buckets[index];
        bucket.page.take();
        bucket
    }

    fn insert(&mut self, key: String, value: String) -> Option<String> {
        let key_len = key.len();
        self.size.add(key_len, value.len());
        let previous = self.bucket_to_write(&key).entries.insert(key, value);
        if let Some(old) = &previous {
            self.size.remove(key_len, old.len());
        }
        while self.buckets.len() < self.size.buckets() {
            self.split();
        }
        previous
    }

    /// Adds a bucket: the one linear hashing splits next gives it the keys
    /// that now hash to it. Only those two buckets' pages change.
    fn split(&mut self) {
        let count = self.buckets.len();
        let splitting = count - (1 << count.ilog2());
        self.buckets.push(Bucket::default());
        let entries = std::mem::take(&mut self.buckets[splitting].entries);
        self.buckets[splitting].page.take();
        for (key, value) in entries {
            let index = bucket_of(&key, count + 1);
            self.buckets[index].entries.insert(key, value);
        }
    }

    fn remove(&mut self, key: &str) -> Option<String> {
        let previous = self.bucket_to_write(key).entries.remove(key);
        if let Some(old) = &previous {
            self.size.remove(key.len(), old.len());
        }
        previous
    }
}

impl StateMachine for KvStore {
    type Op = KvOp;
    type Query = KvQuery;
    type Output = KvResult;

    fn execute(&mut self, op: KvOp) -> KvResult {
        match op {
            KvOp::Put { key, value } => KvResult::Previous(self.insert(key, value)),
            KvOp::Delete { key } => KvResult::Previous(self.remove(&key)),
            KvOp::CompareAndSwap { key, expected, new } => {
                let swapped = self.get(&key) == expected.as_deref();
                if swapped {
                    match new {
                        Some(value) => self.insert(key.clone(), value),
                        None => self.remove(&key),
                    };
                }
                KvResult::Swapped { swapped, current: self.get(&key).map(str::to_owned) }
            }
        }
    }

    fn query(&self, KvQuery::Get { key }: KvQuery) -> KvResult {
        KvResult::Value(self.get(&key).map(str::to_owned))
    }

    /// One page per bucket: its entries in key order.
    fn snapshot_pages(&self) -> Vec<Page> {
        let page =
            |bucket: &Bucket| bucket.page.get_or_init(|| Page::new(codec::encode(&bucket.entries))).clone();
        self.buckets.iter().map(page).collect()
    }

    fn from_pages(pages: &[Page]) -> Result<KvStore, String> {
        let count = pages.len();
        if !(1..=MAX_BUCKETS).contains(&count) {
            return Err(format!("{count} pages: a store has 1 to {MAX_BUCKETS}"));
        }
        let mut store = KvStore { buckets: Vec::with_capacity(count), size: Size::default() };
        for (index, page) in pages.iter().enumerate() {
            let entries: BTreeMap<String, String> =
                codec::decode(page.bytes()).map_err(|e| format!("page {index}: {e}"))?;
            if let Some(key) = entries.keys().find(|key| bucket_of(key, count) != index) {
                return Err(format!("page {index} holds key {key:?}, which belongs in another"));
            }
            entries.iter().for_each(|(key, value)| store.size.add(key.len(), value.len()));
            // The received pages are not kept: they are ranges of the whole
            // transferred state, which they would keep alive after the
            // replica's checkpoint copy of it is gone. The next checkpoint
            // encodes every bucket once.
            store.buckets.push(Bucket { entries, page: OnceLock::new() });
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::typed::decode_output;
    use pbft_core::ReplicatedStateMachine;

    fn run(store: &mut KvStore, op: KvOp) -> KvResult {
        StateMachine::execute(store, op)
    }

    #[test]
    fn put_get_delete() {
        let mut store = KvStore::default();
        let put = |k: &str, v: &str| KvOp::Put { key: k.into(), value: v.into() };
        let get = |k: &str| KvQuery::Get { key: k.into() };
        assert_eq!(run(&mut store, put("a", "1")), KvResult::Previous(None));
        assert_eq!(run(&mut store, put("a", "2")), KvResult::Previous(Some("1".into())));
        assert_eq!(StateMachine::query(&store, get("a")), KvResult::Value(Some("2".into())));
        assert_eq!(run(&mut store, KvOp::Delete { key: "a".into() }), KvResult::Previous(Some("2".into())));
        assert_eq!(StateMachine::query(&store, get("a")), KvResult::Value(None));
        let refused = ReplicatedStateMachine::execute(&mut store, &[0xff, 0xff]);
        assert!(decode_output::<KvResult>(&refused).is_err());
    }

    #[test]
    fn compare_and_swap_changes_the_value_only_when_it_matches() {
        let mut store = KvStore::default();
        let cas = |expected: Option<&str>, new: Option<&str>| KvOp::CompareAndSwap {
            key: "k".into(),
            expected: expected.map(Into::into),
            new: new.map(Into::into),
        };
        let swapped =
            |swapped, current: Option<&str>| KvResult::Swapped { swapped, current: current.map(Into::into) };
        assert_eq!(run(&mut store, cas(None, Some("1"))), swapped(true, Some("1")));
        assert_eq!(run(&mut store, cas(None, Some("2"))), swapped(false, Some("1")));
        assert_eq!(run(&mut store, cas(Some("0"), Some("2"))), swapped(false, Some("1")));
        assert_eq!(run(&mut store, cas(Some("1"), Some("2"))), swapped(true, Some("2")));
        assert_eq!(run(&mut store, cas(Some("2"), None)), swapped(true, None));
        assert!(store.is_empty());
    }

    #[test]
    fn snapshot_restores_the_same_state() {
        let mut store = KvStore::default();
        run(&mut store, KvOp::Put { key: "x".into(), value: "y".into() });
        let entries = BTreeMap::from([("x".to_string(), "y".to_string())]);
        assert_eq!(store.snapshot(), codec::encode(&entries), "the whole state is every entry in key order");
        let mut copy = KvStore::default();
        copy.restore(&store.snapshot()).unwrap();
        assert_eq!(copy, store);
        assert!(copy.restore(&[0xff; 3]).is_err());
    }

    fn put(store: &mut KvStore, key: &str) {
        run(store, KvOp::Put { key: key.into(), value: format!("value of {key}") });
    }

    /// A store of `count` keys `key-0`, `key-1`, … in 125 buckets per 1,000.
    fn store_of(count: usize) -> KvStore {
        let mut store = KvStore::default();
        for i in 0..count {
            put(&mut store, &format!("key-{i}"));
        }
        store
    }

    /// After a write, a snapshot shares every page but the written key's
    /// with the previous one, so a checkpoint encodes and hashes one bucket.
    #[test]
    fn a_snapshot_after_a_write_keeps_the_pages_of_the_other_buckets() {
        let mut store = store_of(1000);
        let before = ReplicatedStateMachine::snapshot_pages(&store);
        assert_eq!(before.len(), 125, "1,000 keys, at most 8 per bucket on average");
        put(&mut store, "key-17");
        let after = ReplicatedStateMachine::snapshot_pages(&store);
        let kept = before.iter().zip(&after).filter(|(b, a)| b.is_shared_with(a)).count();
        assert_eq!(kept, before.len() - 1);
        run(&mut store, KvOp::CompareAndSwap { key: "key-3".into(), expected: None, new: None });
        let unchanged = ReplicatedStateMachine::snapshot_pages(&store);
        assert!(
            after.iter().zip(&unchanged).all(|(a, u)| a.is_shared_with(u)),
            "a failed swap writes nothing"
        );
    }

    /// Growing by one key splits one bucket: the snapshot gains a page, and
    /// only the written bucket and the split pair change; every key is still
    /// found, through all the splits of a growing store.
    #[test]
    fn growing_splits_one_bucket_at_a_time() {
        let mut store = store_of(1000);
        let before = ReplicatedStateMachine::snapshot_pages(&store);
        put(&mut store, "one more");
        let after = ReplicatedStateMachine::snapshot_pages(&store);
        assert_eq!((before.len(), after.len()), (125, 126));
        let changed = before.iter().zip(&after).filter(|(b, a)| !b.is_shared_with(a)).count();
        assert!((1..=2).contains(&changed), "{changed} pages changed");
        for i in 0..1000 {
            let key = format!("key-{i}");
            assert_eq!(store.get(&key), Some(format!("value of {key}").as_str()));
            assert_eq!(
                bucket_of(&key, store.buckets.len()),
                (0..126).find(|b| store.buckets[*b].entries.contains_key(&key)).unwrap()
            );
        }
    }

    /// Large values split buckets by their bytes, so a page (what one write
    /// makes a checkpoint encode again) stays near 2 KiB on average instead
    /// of holding 8 values of any size.
    #[test]
    fn large_values_keep_pages_small() {
        let mut store = KvStore::default();
        for i in 0..100 {
            run(&mut store, KvOp::Put { key: format!("k{i}"), value: "v".repeat(1024) });
        }
        let pages = ReplicatedStateMachine::snapshot_pages(&store);
        assert!(pages.len() >= 100 * 1024 / BYTES_PER_BUCKET, "{} pages", pages.len());
        let mean = pages.iter().map(|page| page.bytes().len()).sum::<usize>() / pages.len();
        assert!(mean <= BYTES_PER_BUCKET + 64, "{mean} bytes per page");
        run(&mut store, KvOp::Delete { key: "k7".into() });
        let expected: usize = (0..100).filter(|i| *i != 7).map(|i| format!("k{i}").len() + 1024).sum();
        assert_eq!((store.size.keys, store.size.bytes), (99, expected), "the size follows deletes");
    }

    /// Pages restore the same store, whichever way it was built; the same
    /// entries give the same pages (so the same checkpoint digest).
    #[test]
    fn pages_restore_the_same_store_and_equal_entries_give_equal_pages() {
        let mut grown = KvStore::default();
        for i in (0..300).rev() {
            put(&mut grown, &format!("k{i}"));
        }
        let mut restored = KvStore::default();
        restored.restore_pages(&ReplicatedStateMachine::snapshot_pages(&grown)).unwrap();
        assert_eq!(restored, grown);
        assert_eq!(restored.len(), 300);
        assert_eq!(restored.get("k42"), Some("value of k42"));
        let mut whole = KvStore::default();
        whole.restore(&grown.snapshot()).unwrap();
        assert_eq!(
            ReplicatedStateMachine::snapshot_pages(&whole),
            ReplicatedStateMachine::snapshot_pages(&grown)
        );
    }

    /// Pages that no store makes are refused and leave the store as it was:
    /// no pages, a key in the wrong bucket, bytes that are not entries.
    #[test]
    fn pages_no_store_makes_are_refused_without_change() {
        let mut store = KvStore::default();
        put(&mut store, "kept");
        let entries = |keys: &[&str]| {
            let map: BTreeMap<String, String> = keys.iter().map(|k| (k.to_string(), String::new())).collect();
            Page::new(codec::encode(&map))
        };
        let empty = entries(&[]);
        assert!(store.restore_pages(&[]).is_err());
        let misplaced = (0..64).map(|i| format!("k{i}")).find(|k| bucket_of(k, 2) == 1).unwrap();
        assert!(store.restore_pages(&[entries(&[&misplaced]), empty.clone()]).is_err());
        assert!(store.restore_pages(&[Page::new(vec![0xff; 5])]).is_err());
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("kept"), Some("value of kept"));
    }
}
