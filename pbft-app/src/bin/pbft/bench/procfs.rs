//! What Linux's `/proc` tells the bench about local processes: their CPU
//! ticks, and which of them are the replicas of a config.

use pbft_app::cluster_config::ClusterConfig;
use std::path::Path;

pub use pbft_net::procfs::{cpu_ticks, CLOCK_TICKS_PER_SECOND};

/// Bytes process `pid` caused to be written to storage (`write_bytes` of
/// Linux `/proc/PID/io`), if it can be read.
pub fn disk_write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|line| line.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// The process of each replica of the config at `path` running on this
/// machine (`pbft replica --config PATH --id I`), found through `/proc`.
pub fn replica_pids(path: &Path, config: &ClusterConfig) -> Vec<Option<u32>> {
    let mut pids = vec![None; config.n()];
    let Ok(wanted) = path.canonicalize() else { return pids };
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> =
            cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if !args.iter().any(|a| a == "replica") {
            continue;
        }
        let after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
        let (Some(config_arg), Some(id)) = (after("--config"), after("--id")) else { continue };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else { continue };
        let same = cwd.join(config_arg).canonicalize().is_ok_and(|p| p == wanted);
        if let (true, Ok(id)) = (same, id.parse::<usize>()) {
            if let Some(slot) = pids.get_mut(id) {
                *slot = Some(pid);
            }
        }
    }
    pids
}
