//! `pbft bench --sync-latency`: how long this machine's disk takes to make
//! one appended record durable (a write then fdatasync, as a replica's group
//! commit does once per burst), in a temporary directory.

use super::report::Percentiles;
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// Bytes appended before each sync: about one small burst of records.
const RECORD_BYTES: usize = 4096;

/// Appends `samples` records to a temporary file, syncing each, and prints
/// the sync latency percentiles.
pub fn run(samples: usize, dir: Option<&std::path::Path>, json: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(samples > 0, "--samples: need at least 1");
    let base = dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let path = base.join(format!("pbft-sync-latency-{}.tmp", std::process::id()));
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let record = vec![0x5a_u8; RECORD_BYTES];
    let mut micros = Vec::with_capacity(samples);
    let measured = (|| -> std::io::Result<()> {
        for _ in 0..samples {
            let began = Instant::now();
            file.write_all(&record)?;
            file.sync_data()?;
            micros.push(u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    measured.with_context(|| format!("cannot write and sync {}", path.display()))?;
    let latency = Percentiles::of(&mut micros);
    if json {
        let report = serde_json::json!({ "directory": base, "samples": samples,
            "record_bytes": RECORD_BYTES, "fdatasync_ms": latency });
        println!("{report}");
    } else {
        println!(
            "write of {RECORD_BYTES} bytes + fdatasync in {}, {samples} samples: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            base.display(),
            latency.p50,
            latency.p90,
            latency.p99,
            latency.max
        );
    }
    Ok(ExitCode::SUCCESS)
}
