//! The recovery rules of the module doc, each as a test on a real directory
//! under the system's temporary directory.

use super::frame::{encode, HEADER_BYTES};
use super::segment::file_name;
use super::*;
use std::path::PathBuf;

/// A directory under the system's temporary directory, unique to one test,
/// removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!("pbft-storage-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    /// The data directory inside it.
    fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn me() -> Identity {
    Identity::new("demo", 1)
}

fn open(dir: &Path) -> Opened {
    DataDir::open(dir, &me(), true).unwrap()
}

fn segment(dir: &Path, number: u64) -> PathBuf {
    dir.join(file_name(number))
}

fn frame_len(record: &[u8]) -> u64 {
    (HEADER_BYTES + record.len()) as u64
}

fn recs(records: &[&[u8]]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.to_vec()).collect()
}

fn healthy(segments: usize, records: usize) -> RecoveryReport {
    RecoveryReport { fresh: false, segments, records, torn_tail_bytes: 0, damage: None }
}

/// Records appended in several bursts come back, in order and whole, after
/// the directory is reopened; an empty burst writes nothing.
#[test]
fn bursts_read_back_in_order_after_reopen() {
    let scratch = Scratch::new("bursts");
    let first = open(&scratch.data());
    assert_eq!(first.records, Vec::<Vec<u8>>::new());
    assert_eq!(first.report, RecoveryReport { fresh: true, segments: 0, ..healthy(0, 0) });
    let mut dir = first.dir;
    assert_eq!(dir.append(&recs(&[b"a", b"bb"])).unwrap(), frame_len(b"a") + frame_len(b"bb"));
    assert_eq!(dir.append(&[]).unwrap(), 0);
    dir.append(&recs(&[b"ccc"])).unwrap();
    dir.append(&recs(&[b"", b"eeeee", b"f"])).unwrap();
    drop(dir);

    let again = open(&scratch.data());
    assert_eq!(again.records, recs(&[b"a", b"bb", b"ccc", b"", b"eeeee", b"f"]));
    assert_eq!(again.report, healthy(1, 6));
    let mut dir = again.dir;
    dir.append(&recs(&[b"g"])).unwrap();
    drop(dir);
    assert_eq!(open(&scratch.data()).records, recs(&[b"a", b"bb", b"ccc", b"", b"eeeee", b"f", b"g"]));
}

/// A last record cut at every byte offset inside it (a crash during the
/// write) is cut off on open: the earlier records come back, the tail is
/// reported as torn, not as damage, and the log takes appends again.
#[test]
fn torn_last_record_is_cut_at_every_offset() {
    let scratch = Scratch::new("torn");
    let last: &[u8] = b"the last record, torn";
    for kept in 1..frame_len(last) {
        let dir_path = scratch.0.join(format!("cut-{kept}"));
        let mut dir = open(&dir_path).dir;
        dir.append(&recs(&[b"one", b"two"])).unwrap();
        dir.append(&recs(&[last])).unwrap();
        drop(dir);
        let good = frame_len(b"one") + frame_len(b"two");
        let file = std::fs::OpenOptions::new().write(true).open(segment(&dir_path, 1)).unwrap();
        file.set_len(good + kept).unwrap();
        drop(file);

        let opened = open(&dir_path);
        assert_eq!(opened.records, recs(&[b"one", b"two"]), "cut after {kept} bytes");
        assert_eq!(opened.report, RecoveryReport { torn_tail_bytes: kept, ..healthy(1, 2) }, "cut {kept}");
        assert_eq!(std::fs::metadata(segment(&dir_path, 1)).unwrap().len(), good);
        let mut dir = opened.dir;
        dir.append(&recs(&[b"after"])).unwrap();
        drop(dir);
        let reopened = open(&dir_path);
        assert_eq!(reopened.records, recs(&[b"one", b"two", b"after"]), "cut after {kept} bytes");
        assert_eq!(reopened.report, healthy(1, 3));
    }
}

/// A checksum failure of the very last record, with nothing after it, is
/// also a torn tail (a crash can leave a whole-length but stale payload).
#[test]
fn checksum_failure_of_the_last_record_is_a_torn_tail() {
    let scratch = Scratch::new("torn-crc");
    let mut dir = open(&scratch.data()).dir;
    dir.append(&recs(&[b"one", b"two", b"three"])).unwrap();
    drop(dir);
    let path = segment(&scratch.data(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let opened = open(&scratch.data());
    assert_eq!(opened.records, recs(&[b"one", b"two"]));
    assert_eq!(opened.report, RecoveryReport { torn_tail_bytes: frame_len(b"three"), ..healthy(1, 2) });
}

/// A flipped byte in the middle record of three is damage: reported, not
/// skipped and not a panic; the record before it comes back; the damaged
/// file is kept unchanged in quarantine; later opens keep reporting the
/// damage (with the records appended since) until a compact.
#[test]
fn flipped_byte_in_the_middle_record_is_damage() {
    let scratch = Scratch::new("flip");
    let data = scratch.data();
    let mut dir = open(&data).dir;
    for record in [b"first", b"midst", b"third"] {
        dir.append(&recs(&[record])).unwrap();
    }
    drop(dir);
    let path = segment(&data, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = frame_len(b"first");
    bytes[middle as usize + HEADER_BYTES + 2] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let opened = open(&data);
    assert_eq!(opened.records, recs(&[b"first"]));
    let damage = Damage::ChecksumMismatch { segment: path.clone(), offset: middle };
    assert_eq!(opened.report, RecoveryReport { damage: Some(damage.clone()), ..healthy(1, 1) });
    let quarantine = data.join("damaged-00000000000000000002");
    assert_eq!(std::fs::read(quarantine.join(file_name(1))).unwrap(), bytes, "evidence kept unchanged");
    assert!(!path.exists());

    let mut dir = opened.dir;
    dir.append(&recs(&[b"fourth"])).unwrap();
    drop(dir);
    let reopened = open(&data);
    assert_eq!(reopened.records, recs(&[b"first", b"fourth"]));
    let unresolved = Damage::Unresolved { dir: quarantine.clone(), reason: damage.to_string() };
    assert_eq!(reopened.report, RecoveryReport { damage: Some(unresolved), ..healthy(1, 2) });

    let mut dir = reopened.dir;
    dir.compact(b"recovered state").unwrap();
    drop(dir);
    let healed = open(&data);
    assert_eq!(healed.records, recs(&[b"recovered state"]));
    assert_eq!(healed.report, healthy(1, 1));
    assert!(quarantine.join(file_name(1)).exists(), "compact leaves the evidence");
}

/// A flipped bit in the length of a middle record is damage too: the
/// checksum covers the length, and valid records follow.
#[test]
fn flipped_length_of_the_middle_record_is_damage() {
    let scratch = Scratch::new("flip-length");
    let data = scratch.data();
    let mut dir = open(&data).dir;
    dir.append(&recs(&[b"first", b"midst", b"third"])).unwrap();
    drop(dir);
    let path = segment(&data, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = frame_len(b"first");
    bytes[middle as usize] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let opened = open(&data);
    assert_eq!(opened.records, recs(&[b"first"]));
    let damage = Damage::ChecksumMismatch { segment: path, offset: middle };
    assert_eq!(opened.report.damage, Some(damage));
}

/// A directory written by another replica, or for another cluster, is
/// refused, and the error names the file and both identities; the owner
/// still opens it.
#[test]
fn another_replica_or_cluster_is_refused_naming_both() {
    let scratch = Scratch::new("owner");
    let data = scratch.data();
    open(&data).dir.append(&recs(&[b"mine"])).unwrap();
    let others = [Identity::new("demo", 2), Identity::new("other", 1)];
    for other in others {
        let err = DataDir::open(&data, &other, true).unwrap_err();
        let message = err.to_string();
        for needle in [me().to_string(), other.to_string(), data.join("IDENTITY").display().to_string()] {
            assert!(message.contains(&needle), "{message:?} lacks {needle:?}");
        }
        match err {
            StorageError::WrongOwner { path, found, expected } => {
                assert_eq!((path, found, expected), (data.join("IDENTITY"), me(), other));
            }
            e => panic!("expected WrongOwner, got {e:?}"),
        }
    }
    assert_eq!(open(&data).records, recs(&[b"mine"]));
}

/// A directory whose identity file names another record format, or none
/// (written before formats were numbered), is refused naming both formats,
/// before any record is read: records of another layout can pass their
/// checksums and decode into something else.
#[test]
fn a_directory_of_another_storage_format_is_refused_naming_both() {
    let scratch = Scratch::new("format");
    let data = scratch.data();
    open(&data).dir.append(&recs(&[b"mine"])).unwrap();
    let identity = data.join("IDENTITY");
    for (text, found) in [
        ("cluster = \"demo\"\nreplica = 1\n".to_string(), 0),
        (format!("cluster = \"demo\"\nreplica = 1\nformat = {}\n", STORAGE_FORMAT + 1), STORAGE_FORMAT + 1),
    ] {
        std::fs::write(&identity, text).unwrap();
        let err = DataDir::open(&data, &me(), true).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("storage format {found}")), "{message}");
        assert!(message.contains(&format!("reads format {STORAGE_FORMAT} only")), "{message}");
        match err {
            StorageError::OtherFormat { path, found: f, expected } => {
                assert_eq!((path, f, expected), (identity.clone(), found, STORAGE_FORMAT));
            }
            e => panic!("expected OtherFormat, got {e:?}"),
        }
    }
}

/// After many appends, a compact leaves one segment: disk use is the
/// snapshot plus what came after it, and a reopen returns the snapshot
/// first.
#[test]
fn compact_deletes_older_segments() {
    let scratch = Scratch::new("compact");
    let data = scratch.data();
    let mut dir = open(&data).dir;
    let record = vec![7u8; 1024];
    for _ in 0..200 {
        dir.append(std::slice::from_ref(&record)).unwrap();
    }
    assert_eq!(dir.disk_bytes().unwrap(), 200 * frame_len(&record));
    dir.compact(b"old snapshot").unwrap();
    dir.append(&recs(&[b"between"])).unwrap();
    let snapshot = vec![9u8; 4096];
    assert_eq!(dir.compact(&snapshot).unwrap(), frame_len(&snapshot));
    dir.append(&recs(&[b"x", b"yy", b"zzz"])).unwrap();
    let after = frame_len(b"x") + frame_len(b"yy") + frame_len(b"zzz");
    assert_eq!(dir.disk_bytes().unwrap(), frame_len(&snapshot) + after);
    drop(dir);

    let names: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "IDENTITY and one segment: {names:?}");
    assert!(segment(&data, 3).exists());
    let reopened = open(&data);
    assert_eq!(reopened.records, vec![snapshot, b"x".to_vec(), b"yy".to_vec(), b"zzz".to_vec()]);
    assert_eq!(reopened.report, healthy(1, 4));
}

/// A length field claiming 4 GiB is checked against the file before use: at
/// the end of the log it is a torn tail, with a valid record after it it is
/// damage; neither allocates it (the test would run out of memory or time).
#[test]
fn length_claiming_4_gib_is_not_allocated() {
    let scratch = Scratch::new("huge-length");
    for followed in [false, true] {
        let data = scratch.0.join(format!("followed-{followed}"));
        let mut dir = open(&data).dir;
        dir.append(&recs(&[b"good"])).unwrap();
        drop(dir);
        let mut bytes = std::fs::read(segment(&data, 1)).unwrap();
        let bogus = bytes.len() as u64;
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0xAB; 4]);
        bytes.extend_from_slice(b"some bytes of a payload");
        if followed {
            encode(b"valid after", &mut bytes).unwrap();
        }
        std::fs::write(segment(&data, 1), &bytes).unwrap();

        let opened = open(&data);
        assert_eq!(opened.records, recs(&[b"good"]));
        let expected = if followed {
            let damage = Damage::ChecksumMismatch { segment: segment(&data, 1), offset: bogus };
            RecoveryReport { damage: Some(damage), ..healthy(1, 1) }
        } else {
            RecoveryReport { torn_tail_bytes: bytes.len() as u64 - bogus, ..healthy(1, 1) }
        };
        assert_eq!(opened.report, expected);
    }
}

/// A gap in segment numbers is damage naming the missing segment; the
/// records before the gap come back.
#[test]
fn gap_in_segment_numbers_is_damage() {
    let scratch = Scratch::new("gap");
    let data = scratch.data();
    let mut dir = open(&data).dir;
    dir.compact(b"snapshot").unwrap();
    dir.append(&recs(&[b"two"])).unwrap();
    drop(dir);
    let mut later = Vec::new();
    encode(b"four", &mut later).unwrap();
    std::fs::write(segment(&data, 4), later).unwrap();

    let opened = open(&data);
    assert_eq!(opened.records, recs(&[b"snapshot", b"two"]));
    let damage = Damage::MissingSegment { expected: segment(&data, 3) };
    assert_eq!(opened.report, RecoveryReport { damage: Some(damage), ..healthy(2, 2) });
}

/// A segment that cannot be read is damage naming it.
#[test]
fn unreadable_segment_is_damage() {
    let scratch = Scratch::new("unreadable");
    let data = scratch.data();
    open(&data).dir.append(&recs(&[b"one"])).unwrap();
    std::fs::create_dir(segment(&data, 2)).unwrap();

    let opened = open(&data);
    assert_eq!(opened.records, recs(&[b"one"]));
    let Some(Damage::Unreadable { path, .. }) = &opened.report.damage else {
        panic!("expected Unreadable, got {:?}", opened.report)
    };
    assert_eq!(path, &segment(&data, 2));
}

/// A data directory that cannot be created (its parent is a regular file)
/// is an error naming the path.
#[test]
fn unwritable_directory_error_names_the_path() {
    let scratch = Scratch::new("unwritable");
    let file = scratch.0.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data = file.join("data");
    let err = DataDir::open(&data, &me(), true).unwrap_err();
    assert!(matches!(&err, StorageError::Io { path, .. } if *path == data), "{err:?}");
    assert!(err.to_string().contains(&data.display().to_string()), "{err}");
}

/// Segments without an identity file are refused rather than adopted.
#[test]
fn segments_without_identity_are_refused() {
    let scratch = Scratch::new("no-identity");
    let data = scratch.data();
    open(&data).dir.append(&recs(&[b"one"])).unwrap();
    std::fs::remove_file(data.join("IDENTITY")).unwrap();
    let err = DataDir::open(&data, &me(), true).unwrap_err();
    assert!(matches!(&err, StorageError::MissingIdentity { path } if *path == data), "{err:?}");
}

/// A quarantine interrupted by a crash after its new segment was in place
/// (the damaged segment still live) is finished on the next open: the
/// damaged segment moves aside and the kept records come back, with the
/// damage still reported.
#[test]
fn interrupted_quarantine_is_finished_on_open() {
    let scratch = Scratch::new("interrupted");
    let data = scratch.data();
    let mut dir = open(&data).dir;
    dir.append(&recs(&[b"kept", b"lost", b"after"])).unwrap();
    drop(dir);
    let path = segment(&data, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[frame_len(b"kept") as usize + HEADER_BYTES] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let quarantine = data.join("damaged-00000000000000000002");
    std::fs::create_dir(&quarantine).unwrap();
    std::fs::write(quarantine.join("DAMAGE"), "what the first open found\n").unwrap();
    let mut kept = Vec::new();
    encode(b"kept", &mut kept).unwrap();
    std::fs::write(segment(&data, 2), kept).unwrap();

    let opened = open(&data);
    assert_eq!(opened.records, recs(&[b"kept"]));
    let unresolved =
        Damage::Unresolved { dir: quarantine.clone(), reason: "what the first open found".into() };
    assert_eq!(opened.report, RecoveryReport { damage: Some(unresolved), ..healthy(1, 1) });
    assert_eq!(std::fs::read(quarantine.join(file_name(1))).unwrap(), bytes);
    assert!(!path.exists());
}

/// Without syncing (benchmarks) the log behaves the same within a running
/// machine: appends, compacts and reopens read back what was written.
#[test]
fn unsynced_log_reads_back() {
    let scratch = Scratch::new("unsynced");
    let data = scratch.data();
    let mut dir = DataDir::open(&data, &me(), false).unwrap().dir;
    dir.append(&recs(&[b"one"])).unwrap();
    dir.compact(b"snapshot").unwrap();
    dir.append(&recs(&[b"two"])).unwrap();
    drop(dir);
    let opened = DataDir::open(&data, &me(), false).unwrap();
    assert_eq!(opened.records, recs(&[b"snapshot", b"two"]));
    assert_eq!(opened.report, healthy(1, 2));
}

/// A snapshot record larger than one protocol message (a state of 65 MiB)
/// reads back after a restart: records were decoded with the 64 MiB
/// message limit, so a replica whose state outgrew it could not start.
#[test]
fn a_snapshot_larger_than_a_message_reads_back() {
    use pbft_net::Storage as _;
    let scratch = Scratch::new("big-snapshot");
    let data = scratch.data();
    let snapshot = pbft_core::Snapshot {
        proof: pbft_core::CheckpointProof::genesis(),
        pages: vec![pbft_core::Page::new(vec![7; pbft_core::codec::MAX_MESSAGE_BYTES + (1 << 20)])],
        replies: Vec::new(),
        view: 0,
        prepared: Vec::new(),
        batches: Vec::new(),
        executed: Vec::new(),
    };
    let record = pbft_core::Persist::Snapshot(snapshot);
    let mut log = ReplicaLog::open(&data, &me(), true).unwrap().log;
    log.persist(std::slice::from_ref(&record)).unwrap();
    drop(log);
    let reopened = ReplicaLog::open(&data, &me(), true).unwrap();
    assert_eq!(reopened.records, vec![record]);
}
