//! `pbft bench --plot RUNS --svg FILE`: draws throughput against latency
//! from `pbft bench --json` results (one JSON object per line), one curve
//! per cluster size, as a self-contained SVG file.

use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The fields of a `pbft bench --json` line the plot uses.
#[derive(Debug, Deserialize)]
struct Run {
    replicas: usize,
    workers: usize,
    ops_per_sec: f64,
    latency_ms: Latency,
}

#[derive(Debug, Deserialize)]
struct Latency {
    p50: f64,
    p99: f64,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// Reads the runs in `input` and writes the plot to `output`.
pub fn plot(input: &Path, output: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut runs = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let run: Run = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a pbft bench --json line", input.display(), index + 1))?;
        runs.push(run);
    }
    anyhow::ensure!(!runs.is_empty(), "{}: no runs to plot", input.display());
    let svg = render(&runs);
    std::fs::write(output, svg).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}

/// A "nice" axis maximum at or above `value`: 1, 2 or 5 times a power of ten.
fn nice_max(value: f64) -> f64 {
    let value = value.max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|m| *m >= value).unwrap_or(10.0 * magnitude)
}

fn render(runs: &[Run]) -> String {
    let mut curves: BTreeMap<usize, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        curves.entry(run.replicas).or_default().push(run);
    }
    for curve in curves.values_mut() {
        curve.sort_by_key(|run| run.workers);
    }
    let x_max = nice_max(runs.iter().map(|r| r.ops_per_sec).fold(0.0, f64::max));
    let y_max = nice_max(runs.iter().map(|r| r.latency_ms.p99).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ops: f64| LEFT + ops / x_max * plot_w;
    let y = |ms: f64| TOP + plot_h - ms / y_max * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">pbft bench: throughput against latency as clients are added (solid p50, dashed p99)</text>"#,
        WIDTH / 2.0
    );
    for step in 0..=5 {
        let fraction = f64::from(step) / 5.0;
        let (gx, gy) = (LEFT + fraction * plot_w, TOP + plot_h - fraction * plot_h);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle">{:.0}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            fraction * x_max
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            gy + 4.0,
            fraction * y_max
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">throughput (operations/s)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency (ms)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (index, (replicas, curve)) in curves.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        for (dash, pick) in
            [("", (|r: &Run| r.latency_ms.p50) as fn(&Run) -> f64), ("6,4", |r: &Run| r.latency_ms.p99)]
        {
            let points: Vec<String> =
                curve.iter().map(|r| format!("{:.1},{:.1}", x(r.ops_per_sec), y(pick(r)))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
                points.join(" ")
            );
        }
        for run in curve {
            let (px, py) = (x(run.ops_per_sec), y(run.latency_ms.p50));
            let _ = writeln!(
                svg,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                px + 4.0,
                py - 4.0,
                run.workers
            );
        }
        let legend_y = TOP + 16.0 + 18.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">n = {replicas} (labels: clients)</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            legend_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_one_two_or_five() {
        assert_eq!(nice_max(3_969.0), 5_000.0);
        assert_eq!(nice_max(12.9), 20.0);
        assert_eq!(nice_max(0.8), 1.0);
        assert_eq!(nice_max(1_000.0), 1_000.0);
    }

    #[test]
    fn one_curve_per_cluster_size_with_a_point_per_run() {
        let run = |replicas, workers, ops_per_sec| Run {
            replicas,
            workers,
            ops_per_sec,
            latency_ms: Latency { p50: 5.0, p99: 9.0 },
        };
        let svg = render(&[run(4, 1, 300.0), run(4, 16, 2_400.0), run(7, 1, 200.0)]);
        assert_eq!(svg.matches("<polyline").count(), 4, "p50 and p99 for n = 4 and n = 7");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("n = 4") && svg.contains("n = 7"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
