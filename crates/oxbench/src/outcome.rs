//! What a workload reports, and the one-line protocol a worker uses to hand
//! it to the runner: a line `OXBENCH-RESULT {json}` on standard output.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prefix of the machine-readable result line a worker prints.
pub const RESULT_PREFIX: &str = "OXBENCH-RESULT ";

/// Latency percentiles, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of recorded values.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest recorded value.
    pub max: u64,
    /// For each of [`SLOWER_THAN_NS`], how many values were above it: which
    /// of the split histograms holds the calls that make a tail (how many
    /// of each lie above another allocator's p99.9, docs/PERFORMANCE.md
    /// E95). Empty in results written before it was recorded.
    #[serde(default)]
    pub slower_than: BTreeMap<u64, u64>,
}

/// The thresholds of [`Percentiles::slower_than`], in nanoseconds.
pub const SLOWER_THAN_NS: [u64; 4] = [200, 300, 500, 1_000];

impl Percentiles {
    /// Reads the percentiles of a histogram of nanoseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            // (Values equivalent to the threshold, at the histogram's
            // precision, count as not above it.)
            slower_than: SLOWER_THAN_NS
                .iter()
                .map(|&ns| (ns, h.count_between(h.highest_equivalent(ns) + 1, u64::MAX)))
                .collect(),
        }
    }
}

/// What one workload run measured, as printed by the worker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Workload name.
    pub bench: String,
    /// Allocator the worker was built with (`glibc` for the preload worker).
    pub worker: String,
    /// Thread count parameter.
    pub threads: usize,
    /// Scale parameter.
    pub scale: f64,
    /// Operations done (the workload says what an operation is).
    pub ops: u64,
    /// Seconds the measured part took, timed inside the worker.
    pub elapsed_s: f64,
    /// The workload's own throughput figure.
    pub throughput: f64,
    /// Unit of `throughput`, e.g. `ops/s`.
    pub unit: String,
    /// Further figures (e.g. `moves_avoided`, `rss_end_kib`).
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
    /// Latency percentiles by operation (`malloc`, `free`, `request`).
    #[serde(default)]
    pub latency: BTreeMap<String, Percentiles>,
    /// The worker's own peak resident set in KiB (`VmHWM`, see
    /// [`own_peak_rss_kib`]); the runner prefers it to `wait4`'s figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
}

/// Peak resident set of this process since its `exec`, in KiB (`VmHWM` of
/// `/proc/self/status`). `wait4`'s `ru_maxrss` is not that: the kernel also
/// folds in the resident size of the memory the child had before `exec`,
/// the runner's own, so every run smaller than the runner read as the
/// runner's size (docs/PERFORMANCE.md E26).
pub fn own_peak_rss_kib() -> Option<u64> {
    own_status_kib("VmHWM:")
}

/// A `kB` field of `/proc/self/status`.
fn own_status_kib(field: &str) -> Option<u64> {
    proc_status_kib("self", field)
}

/// A `kB` field (e.g. `"VmHWM:"`) of `/proc/<pid>/status`.
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Outcome {
    /// An outcome of `ops` operations in `elapsed_s` seconds, throughput in
    /// operations per second.
    pub fn per_second(ops: u64, elapsed_s: f64, unit: &str) -> Self {
        Outcome {
            ops,
            elapsed_s,
            throughput: ops as f64 / elapsed_s.max(1e-9),
            unit: unit.to_string(),
            ..Outcome::default()
        }
    }

    /// Adds an extra figure.
    pub fn with(mut self, key: &str, value: f64) -> Self {
        self.set_extra(key, value);
        self
    }

    /// Sets an extra figure, unless it is not finite: JSON has no infinity
    /// or NaN, and the null that serde_json writes in their place made the
    /// whole report unreadable (`Report::load`; redis-benchmark prints a
    /// rate of `inf` for a test that ends within its clock's resolution).
    pub fn set_extra(&mut self, key: &str, value: f64) {
        if value.is_finite() {
            self.extra.insert(key.to_string(), value);
        }
    }

    /// The result line a worker prints.
    pub fn to_line(&self) -> String {
        format!(
            "{RESULT_PREFIX}{}",
            serde_json::to_string(self).expect("outcome serialises")
        )
    }

    /// Finds and parses the result line in a worker's standard output.
    pub fn from_output(stdout: &str) -> Option<Result<Outcome, serde_json::Error>> {
        stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(RESULT_PREFIX))
            .map(serde_json::from_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_peak_follows_this_process() {
        // 64 MiB touched and still live: the resident set holds them, and
        // the peak is at least the resident set (another test of this
        // process may have peaked higher before; that cannot fail this).
        let v = vec![1u8; 64 << 20];
        let rss = own_status_kib("VmRSS:").expect("VmRSS in /proc/self/status");
        let peak = own_peak_rss_kib().expect("VmHWM in /proc/self/status");
        assert!(rss >= 60 << 10, "VmRSS {rss} KiB with 64 MiB touched");
        assert!(peak >= rss, "VmHWM {peak} KiB below VmRSS {rss} KiB");
        assert_eq!(v[(64 << 20) - 1], 1);
    }

    #[test]
    fn figures_json_cannot_hold_are_left_out_and_the_line_reads_back() {
        let o = Outcome::per_second(1000, 0.5, "ops/s")
            .with("inf", f64::INFINITY)
            .with("nan", f64::NAN)
            .with("x", 1.5);
        assert_eq!(o.extra.keys().collect::<Vec<_>>(), ["x"]);
        let back = Outcome::from_output(&o.to_line()).unwrap().unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn slower_than_counts_the_values_above_each_threshold() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for (value, times) in [(20, 1_000), (200, 7), (250, 5), (400, 3), (900, 2), (5_000, 1)] {
            h.record_n(value, times).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1_018);
        let expected: BTreeMap<u64, u64> = [(200, 11), (300, 6), (500, 3), (1_000, 1)].into();
        assert_eq!(p.slower_than, expected);
    }

    #[test]
    fn a_result_without_slower_than_still_reads() {
        let line = r#"{"count":3,"p50":1,"p99":2,"p999":2,"max":2}"#;
        let p: Percentiles = serde_json::from_str(line).unwrap();
        assert_eq!((p.count, p.max), (3, 2));
        assert!(p.slower_than.is_empty());
    }

    #[test]
    fn line_round_trip() {
        let mut o = Outcome::per_second(1000, 0.5, "ops/s").with("x", 1.5);
        o.bench = "larson".into();
        o.latency.insert(
            "malloc".into(),
            Percentiles {
                count: 3,
                p50: 1,
                p99: 2,
                p999: 3,
                max: 4,
                slower_than: [(200, 1)].into(),
            },
        );
        let out = format!("noise\n{}\nmore noise\n", o.to_line());
        let back = Outcome::from_output(&out).unwrap().unwrap();
        assert_eq!(back, o);
        assert_eq!(back.throughput, 2000.0);
        assert!(Outcome::from_output("nothing here").is_none());
        assert!(Outcome::from_output("OXBENCH-RESULT {bad").unwrap().is_err());
        // Lines from workers without the peak still parse.
        assert!(!o.to_line().contains("peak_rss_kib"));
        let mut p = o.clone();
        p.peak_rss_kib = Some(1234);
        assert_eq!(
            Outcome::from_output(&p.to_line()).unwrap().unwrap().peak_rss_kib,
            Some(1234)
        );
    }
}
