//! What Linux's `/proc` tells about a process: its CPU time, resident
//! memory and open files. `None` wherever it cannot be read (another OS, a
//! process that is gone).

/// Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ, fixed
/// by the kernel's user-space ABI).
pub const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU ticks of process `pid` (`/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?;
    Some(kib.trim().parse::<u64>().ok()? * 1024)
}

/// File descriptors process `pid` holds open (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test process has spent CPU, holds memory and has files open.
    #[test]
    fn this_process_is_measured() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            eprintln!("this_process_is_measured: skipped, no /proc on this system");
            return;
        }
        let pid = std::process::id();
        let mut spin = 0u64;
        while cpu_ticks(pid).unwrap_or(0) == 0 {
            spin = spin.wrapping_add(1);
        }
        assert!(resident_bytes(pid).is_some_and(|bytes| bytes > 1024 * 1024));
        assert!(open_fds(pid).is_some_and(|fds| fds >= 3));
    }
}
