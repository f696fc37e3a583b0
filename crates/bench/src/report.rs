//! Order statistics and the report table.

use std::time::{SystemTime, UNIX_EPOCH};

/// Quantiles of a sample (nearest rank).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    pub(crate) n: usize,
    pub(crate) median: f64,
    pub(crate) p10: f64,
    pub(crate) p90: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
}

/// Quantiles of `v`; NaNs are dropped. An empty sample gives NaNs.
pub(crate) fn stats(mut v: Vec<f64>) -> Stats {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return Stats { n: 0, median: f64::NAN, p10: f64::NAN, p90: f64::NAN, p95: f64::NAN, p99: f64::NAN };
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Stats { n: v.len(), median: q(0.5), p10: q(0.1), p90: q(0.9), p95: q(0.95), p99: q(0.99) }
}

/// Median of a sample (NaN when empty).
pub(crate) fn median(v: Vec<f64>) -> f64 {
    stats(v).median
}

/// Wall-clock milliseconds since the epoch (the server's job stamps and Docker's event
/// times use the same clock: everything runs on this machine).
pub(crate) fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// One line of the final table.
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) measured: String,
    pub(crate) baseline: String,
    pub(crate) ratio: Option<f64>,
    pub(crate) target: String,
    /// `None`: a figure without a target (information only).
    pub(crate) pass: Option<bool>,
}

impl Row {
    pub(crate) fn info(figure: impl Into<String>, measured: impl Into<String>, baseline: impl Into<String>) -> Self {
        Self {
            figure: figure.into(),
            measured: measured.into(),
            baseline: baseline.into(),
            ratio: None,
            target: "-".into(),
            pass: None,
        }
    }
}

/// Prints the table (Markdown, so it can go into BENCHMARKS.md as it is).
pub(crate) fn print_rows(rows: &[Row]) {
    println!();
    println!("| figure | gostint | baseline (same run) | ratio | target | result |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        let res = match r.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "info",
        };
        println!("| {} | {} | {} | {} | {} | {} |", r.figure, r.measured, r.baseline, ratio, r.target, res);
    }
}

/// `a/b` as "by how much" a ratio target was missed, e.g. `+12%`.
pub(crate) fn over(ratio: f64, target: f64) -> String {
    format!("{:+.1}%", (ratio / target - 1.0) * 100.0)
}
