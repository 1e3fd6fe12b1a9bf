//! Writes the starting corpus of every fuzz target into `fuzz/corpus/`:
//!
//!     cargo run -p pbft-fuzz-targets --example seeds
//!
//! Seeds are made, not collected: messages of every kind that the replica
//! target's generator builds (signed with the fixed cluster's keys), framed
//! and encoded for the frame, wire and verify targets; pseudo-random bytes
//! for the structure-aware targets; the shipped configs for the config
//! target. The fuzzer grows the corpus from there (`cargo fuzz run`), and
//! `cargo fuzz cmin` keeps it small. Running this again adds the same files.

use pbft_core::{codec, Digest, Message};
use pbft_net::{encode_frame, encode_wire, Wire};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// xorshift64*: deterministic bytes for the seeds.
struct Bytes(u64);

impl Bytes {
    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }
}

/// Writes `data` under its digest's name, as libFuzzer names corpus files.
fn write(dir: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{}", &Digest::of(data).to_string()[..16])), data)
}

/// Up to `per_kind` messages of each kind, from runs of the replica target.
fn sample_messages(bytes: &mut Bytes, per_kind: usize) -> Vec<Message> {
    let mut by_kind: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    for _ in 0..64 {
        for message in pbft_fuzz_targets::replica::messages(&bytes.fill(2048)) {
            let list = by_kind.entry(format!("{:?}", message.kind())).or_default();
            if list.len() < per_kind {
                list.push(message);
            }
        }
    }
    by_kind.into_values().flatten().collect()
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut bytes = Bytes(0x005e_ed0f_9bf7);
    let messages = sample_messages(&mut bytes, 4);
    let mut wires: Vec<Wire> = messages.iter().cloned().map(Wire::Message).collect();
    wires.extend([
        Wire::Hello,
        Wire::StatusQuery,
        Wire::TimestampQuery,
        Wire::Timestamp { newest: 7 },
        Wire::TraceQuery { client: 1, timestamp: 2 },
    ]);
    for wire in &wires {
        write(&root.join("wire"), &encode_wire(wire))?;
    }
    for (i, message) in messages.iter().enumerate() {
        let mut input = vec![i as u8];
        input.extend(codec::encode(message));
        write(&root.join("verify"), &input)?;
    }
    for chunk in wires.chunks(3) {
        // No cuts (the first byte 0), then the frames of three payloads.
        let mut input = vec![0];
        for wire in chunk {
            input.extend(encode_frame(&encode_wire(wire)));
        }
        write(&root.join("frame"), &input)?;
    }
    for _ in 0..32 {
        write(&root.join("replica"), &bytes.fill(1024))?;
    }
    for _ in 0..16 {
        write(&root.join("client"), &bytes.fill(256))?;
    }
    let configs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for entry in std::fs::read_dir(configs)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            write(&root.join("config"), &std::fs::read(path)?)?;
        }
    }
    for (name, _) in pbft_fuzz_targets::TARGETS {
        let count = std::fs::read_dir(root.join(name))?.count();
        println!("{name}: {count} inputs");
    }
    Ok(())
}
