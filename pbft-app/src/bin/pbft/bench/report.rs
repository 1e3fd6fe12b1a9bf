//! What a load run measured, and how it is printed: as text, or as one
//! JSON line (the lines `pbft bench --plot` reads).

use serde::Serialize;

/// What a load run measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub cluster: String,
    pub replicas: usize,
    /// The protocol's batch limit and delay in the measured cluster's config.
    pub max_batch_size: usize,
    pub batch_delay_ms: u64,
    /// Bytes of each put's value.
    pub payload_bytes: usize,
    pub workers: usize,
    pub mode: String,
    pub seconds: f64,
    pub operations: u64,
    pub errors: u64,
    pub ops_per_sec: f64,
    /// Sequence numbers the cluster executed during the run (the highest
    /// `last_executed` any replica reports, after minus before); `None` if
    /// no replica answered a status query.
    pub sequence_numbers: Option<u64>,
    /// Operations per sequence number: the mean batch the primary proposed,
    /// which sets how far the per-batch protocol work is shared.
    pub operations_per_sequence_number: Option<f64>,
    pub latency_ms: Percentiles,
    /// Open loop only: how long after its scheduled instant each operation
    /// was issued. Counted in its latency too; large values mean the load
    /// generator, not the cluster, fell behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_lateness_ms: Option<Percentiles>,
    /// Per replica id, CPU seconds spent per 1,000 operations (`None` when its process was not found).
    pub cpu_seconds_per_1000_ops: Vec<Option<f64>>,
    /// The load generator's own CPU seconds per 1,000 operations (it signs
    /// every request and takes every reply, on the same cores as the replicas).
    pub load_generator_cpu_seconds_per_1000_ops: Option<f64>,
    /// Per replica id, bytes written to storage per operation (Linux
    /// `/proc/PID/io` `write_bytes`; `None` when it cannot be read).
    pub disk_bytes_per_op: Vec<Option<f64>>,
    pub cores: usize,
}

/// Latency percentiles of a run, in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `latencies_us` (sorted in place), in milliseconds.
    pub fn of(latencies_us: &mut [u64]) -> Percentiles {
        if latencies_us.is_empty() {
            return Percentiles::default();
        }
        latencies_us.sort_unstable();
        let at = |q: f64| {
            let index = ((latencies_us.len() as f64 * q).ceil() as usize).clamp(1, latencies_us.len()) - 1;
            latencies_us[index] as f64 / 1000.0
        };
        Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) }
    }
}

/// Prints `report` as text, or with `json` as one line of JSON.
pub fn print_report(report: &BenchReport, json: bool) -> anyhow::Result<()> {
    if json {
        // One line per run, so runs append to a JSON-lines file for `pbft bench plot`.
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "{} ({} replicas, {} cores, batches of up to {}, batch delay {} ms, {}-byte values): {}, {:.1} s",
        report.cluster,
        report.replicas,
        report.cores,
        report.max_batch_size,
        report.batch_delay_ms,
        report.payload_bytes,
        report.mode,
        report.seconds
    );
    println!(
        "throughput  {:.0} ops/s ({} operations, {} errors)",
        report.ops_per_sec, report.operations, report.errors
    );
    if let (Some(seqs), Some(per_seq)) = (report.sequence_numbers, report.operations_per_sequence_number) {
        println!("batches     {seqs} sequence numbers, {per_seq:.1} operations each");
    }
    let l = &report.latency_ms;
    println!(
        "latency     p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        l.p50, l.p90, l.p99, l.max
    );
    if let Some(late) = &report.issue_lateness_ms {
        println!("issued late p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms (after the scheduled instant; counted in the latency)", late.p50, late.p99, late.max);
    }
    for (id, cpu) in report.cpu_seconds_per_1000_ops.iter().enumerate() {
        match cpu {
            Some(cpu) => println!("replica {id}   {cpu:.3} CPU s per 1,000 operations"),
            None => println!("replica {id}   CPU not measured (no local process found)"),
        }
    }
    if let Some(cpu) = report.load_generator_cpu_seconds_per_1000_ops {
        println!("load gen.   {cpu:.3} CPU s per 1,000 operations");
    }
    for (id, bytes) in report.disk_bytes_per_op.iter().enumerate() {
        if let Some(bytes) = bytes {
            println!("replica {id}   {bytes:.0} bytes written to disk per operation");
        }
    }
    Ok(())
}
