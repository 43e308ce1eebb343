//! Summaries of a run: one row per workload and thread count, one cell per
//! allocator (median with min–max, ratios to the baseline), the geometric
//! mean per allocator, latency percentiles, failures; rendered as text.

use crate::interval::{self, GeomeanIntervals, Interval};
use crate::outcome::Percentiles;
use crate::sample::{Report, Route, Sample};
use crate::stats::{self, Summary};
use crate::workloads::{self, Metric};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One allocator's results in one row.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Allocator.
    pub alloc: String,
    /// How it was reached.
    pub route: Route,
    /// Successful samples.
    pub ok: usize,
    /// Failed samples.
    pub failed: usize,
    /// The first failure message.
    pub error: Option<String>,
    /// Process wall seconds.
    pub wall: Option<Summary>,
    /// Peak RSS in MiB.
    pub rss_mib: Option<Summary>,
    /// The workload's throughput figure.
    pub throughput: Option<Summary>,
    /// The p99 request latency in ns, for latency workloads.
    pub p99: Option<Summary>,
    /// Relative cost against the baseline (time ratio, or inverse
    /// throughput ratio): lower is better.
    pub cost: Option<f64>,
    /// Peak RSS ratio against the baseline.
    pub rss_ratio: Option<f64>,
    /// Median over repetitions of each latency percentile, by operation.
    pub latency: BTreeMap<String, Percentiles>,
    /// User CPU seconds of the process.
    pub user_s: Option<Summary>,
    /// System CPU seconds of the process.
    pub sys_s: Option<Summary>,
    /// The workload's further figures ([`Outcome::extra`](crate::outcome::Outcome::extra)),
    /// by name, over repetitions.
    pub extra: BTreeMap<String, Summary>,
}

/// One workload at one thread count.
#[derive(Clone, Debug)]
pub struct Row {
    /// Workload or program.
    pub bench: String,
    /// Thread count.
    pub threads: usize,
    /// Primary metric.
    pub metric: Metric,
    /// Unit of the throughput figure.
    pub unit: String,
    /// One per allocator, in the report's allocator order.
    pub cells: Vec<Cell>,
    /// The allocator this row's ratios are relative to: the requested
    /// baseline, else its Debian build (`NAME-deb`), else glibc.
    pub baseline: Option<String>,
}

impl Row {
    /// Label such as `larson@2`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.bench, self.threads)
    }
}

/// The primary metric of a workload or real program.
pub fn metric_of(bench: &str) -> Metric {
    workloads::find(bench)
        .map(|w| w.metric)
        .unwrap_or_else(|| crate::real::metric_of(bench))
}

fn bench_order(bench: &str) -> usize {
    workloads::all()
        .iter()
        .position(|w| w.name == bench)
        .unwrap_or(usize::MAX)
}

fn summarize_by(samples: &[&Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<Summary> {
    let v: Vec<f64> = samples.iter().filter_map(|s| f(s)).collect();
    stats::summarize(&v)
}

fn extra_summaries(ok: &[&Sample]) -> BTreeMap<String, Summary> {
    let mut by_key: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in ok {
        for (k, v) in s.outcome.iter().flat_map(|o| o.extra.iter()) {
            by_key.entry(k.clone()).or_default().push(*v);
        }
    }
    by_key
        .into_iter()
        .filter_map(|(k, v)| Some((k, stats::summarize(&v)?)))
        .collect()
}

fn latency_medians(ok: &[&Sample]) -> BTreeMap<String, Percentiles> {
    let mut by_op: BTreeMap<String, Vec<&Percentiles>> = BTreeMap::new();
    for s in ok {
        for (op, p) in s.outcome.iter().flat_map(|o| o.latency.iter()) {
            by_op.entry(op.clone()).or_default().push(p);
        }
    }
    by_op
        .into_iter()
        .map(|(op, ps)| {
            let med = |f: fn(&Percentiles) -> u64| {
                stats::median(&ps.iter().map(|p| f(p) as f64).collect::<Vec<_>>()).unwrap_or(0.0) as u64
            };
            let slower_than = crate::outcome::SLOWER_THAN_NS
                .iter()
                .filter_map(|ns| {
                    let counts: Vec<f64> = ps
                        .iter()
                        .filter_map(|p| p.slower_than.get(ns))
                        .map(|&n| n as f64)
                        .collect();
                    Some((*ns, stats::median(&counts)? as u64))
                })
                .collect();
            let p = Percentiles {
                count: med(|p| p.count),
                p50: med(|p| p.p50),
                p99: med(|p| p.p99),
                p999: med(|p| p.p999),
                max: med(|p| p.max),
                slower_than,
            };
            (op, p)
        })
        .collect()
}

/// The relative cost of `value` against the baseline's `baseline` (the
/// row's primary figure: wall seconds, p99 latency or throughput) on a row
/// of `metric`: lower is better, so throughput is inverted. `None` unless
/// both are positive and finite. The report's medians and the bootstrap's
/// draws (`interval.rs`) go through this one function.
pub fn cost_ratio(metric: Metric, value: f64, baseline: f64) -> Option<f64> {
    match metric {
        Metric::Time | Metric::Latency => stats::ratio(value, baseline),
        Metric::Throughput => stats::ratio(baseline, value),
    }
}

/// Builds the rows of a report, with ratios against `baseline` (or, when the
/// baseline has no result in a row, no ratio in that row).
pub fn rows(report: &Report, baseline: &str) -> Vec<Row> {
    let mut keys: Vec<(usize, String, usize)> = Vec::new();
    for s in &report.samples {
        let k = (bench_order(&s.bench), s.bench.clone(), s.threads);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // A stable sort keeps the first-appearance order among real programs.
    keys.sort_by_key(|k| (k.0, k.2));
    keys.into_iter()
        .map(|(_, bench, threads)| {
            let metric = metric_of(&bench);
            let mut unit = String::new();
            let mut cells: Vec<Cell> = report
                .allocators
                .iter()
                .map(|a| {
                    let all: Vec<&Sample> = report
                        .samples
                        .iter()
                        .filter(|s| s.alloc == a.name && s.bench == bench && s.threads == threads)
                        .collect();
                    let ok: Vec<&Sample> = all.iter().copied().filter(|s| s.ok).collect();
                    if let Some(o) = ok.iter().find_map(|s| s.outcome.as_ref()) {
                        unit.clone_from(&o.unit);
                    }
                    Cell {
                        alloc: a.name.clone(),
                        route: a.route,
                        ok: ok.len(),
                        failed: all.len() - ok.len(),
                        error: all.iter().find_map(|s| s.error.clone()),
                        wall: summarize_by(&ok, |s| Some(s.wall_s)),
                        rss_mib: summarize_by(&ok, |s| Some(s.max_rss_kib as f64 / 1024.0)),
                        throughput: summarize_by(&ok, |s| s.outcome.as_ref().map(|o| o.throughput)),
                        p99: summarize_by(&ok, |s| {
                            let o = s.outcome.as_ref()?;
                            Some(o.latency.get("request")?.p99 as f64)
                        }),
                        cost: None,
                        rss_ratio: None,
                        latency: latency_medians(&ok),
                        user_s: summarize_by(&ok, |s| Some(s.user_s)),
                        sys_s: summarize_by(&ok, |s| Some(s.sys_s)),
                        extra: extra_summaries(&ok),
                    }
                })
                .filter(|c| c.ok + c.failed > 0)
                .collect();
            let deb = format!("{baseline}-deb");
            let base = [baseline, deb.as_str(), "glibc"]
                .into_iter()
                .find_map(|b| cells.iter().find(|c| c.alloc == b && c.ok > 0))
                .cloned();
            for c in &mut cells {
                let Some(b) = &base else { break };
                let primary = |cell: &Cell| {
                    match metric {
                        Metric::Time => cell.wall,
                        Metric::Latency => cell.p99,
                        Metric::Throughput => cell.throughput,
                    }
                    .map_or(f64::NAN, |s| s.median)
                };
                c.cost = cost_ratio(metric, primary(c), primary(b));
                c.rss_ratio = stats::ratio(
                    c.rss_mib.map_or(f64::NAN, |s| s.median),
                    b.rss_mib.map_or(f64::NAN, |s| s.median),
                );
            }
            Row {
                bench,
                threads,
                metric,
                unit,
                baseline: base.map(|b| b.alloc),
                cells,
            }
        })
        .collect()
}

/// Per-allocator geometric means over rows.
#[derive(Clone, Debug)]
pub struct Overall {
    /// Allocator.
    pub alloc: String,
    /// How it was reached.
    pub route: Route,
    /// Geometric mean of relative cost over the time and throughput rows
    /// (the latency rows are summarised apart: a p99 ratio swings by
    /// orders of magnitude and would swamp the time figure).
    pub cost: Option<f64>,
    /// Geometric mean of the p99 request latency ratio over latency rows.
    pub latency: Option<f64>,
    /// Geometric mean of peak RSS ratio (every row).
    pub rss: Option<f64>,
    /// 95% intervals of `cost` and `rss` (paired bootstrap over the
    /// repetitions, `interval.rs`).
    pub spread: GeomeanIntervals,
    /// Rows with a cost ratio (time and throughput rows).
    pub rows: usize,
    /// Failed samples.
    pub failed: usize,
}

/// Geometric means per allocator, in the report's allocator order.
pub fn overall(report: &Report, rows: &[Row]) -> Vec<Overall> {
    let spreads = interval::geomean_intervals(report, rows, interval::REPLICATES);
    report
        .allocators
        .iter()
        .zip(spreads)
        .map(|(a, spread)| {
            let cells: Vec<(Metric, &Cell)> = rows
                .iter()
                .flat_map(|r| r.cells.iter().map(move |c| (r.metric, c)))
                .filter(|(_, c)| c.alloc == a.name)
                .collect();
            let cost_of = |latency: bool| -> Vec<f64> {
                cells
                    .iter()
                    .filter(|(m, _)| (*m == Metric::Latency) == latency)
                    .filter_map(|(_, c)| c.cost)
                    .collect()
            };
            let costs = cost_of(false);
            let rss: Vec<f64> = cells.iter().filter_map(|(_, c)| c.rss_ratio).collect();
            Overall {
                alloc: a.name.clone(),
                route: a.route,
                cost: stats::geomean(&costs),
                latency: stats::geomean(&cost_of(true)),
                rss: stats::geomean(&rss),
                spread,
                rows: costs.len(),
                failed: cells.iter().map(|(_, c)| c.failed).sum(),
            }
        })
        .collect()
}

/// How much lower another allocator's median cost must be on a row for
/// the row to count as a gap of the subject's: "more than 10% faster".
pub const GAP_RATIO: f64 = 1.10;

/// A time or throughput row where another allocator is more than
/// [`GAP_RATIO`] ahead of the subject, with the evidence repetition by
/// repetition: repetitions are interleaved, so repetition `i` of each
/// allocator ran close in time, and a gap that half the pairs contradict
/// is the machine's noise, one that every pair shows is not.
#[derive(Clone, Debug)]
pub struct Gap {
    /// The row's workload or program.
    pub bench: String,
    /// The row's thread count.
    pub threads: usize,
    /// The row's primary metric.
    pub metric: Metric,
    /// The fastest other allocator on the row.
    pub best: String,
    /// The subject's relative cost (median).
    pub subject_cost: f64,
    /// The best other allocator's relative cost (median).
    pub best_cost: f64,
    /// Per repetition both completed, in repetition order: the subject's
    /// cost over the best one's.
    pub pairs: Vec<f64>,
}

impl Gap {
    /// Row label, such as `larson@2`.
    pub fn row(&self) -> String {
        format!("{}@{}", self.bench, self.threads)
    }

    /// Pairs in which the subject was the faster.
    pub fn subject_won(&self) -> usize {
        self.pairs.iter().filter(|&&x| x < 1.0).count()
    }

    /// The subject's cost over the best one's in each confirmation round
    /// (`Report::confirm`) that both completed, in round order; empty when
    /// the gap was not rerun.
    pub fn confirmation(&self, report: &Report, subject: &str) -> Vec<f64> {
        paired_ratios(
            &report.confirm,
            (&self.bench, self.threads, self.metric),
            subject,
            &self.best,
        )
    }
}

/// `subject`'s cost over `other`'s on one row (workload, threads, metric),
/// for each repetition number both completed among `samples`, in order.
fn paired_ratios(samples: &[Sample], row: (&str, usize, Metric), subject: &str, other: &str) -> Vec<f64> {
    let (bench, threads, metric) = row;
    let costs_of = |alloc: &str| -> BTreeMap<usize, f64> {
        samples
            .iter()
            .filter(|s| s.ok && s.alloc == alloc && s.bench == bench && s.threads == threads)
            .filter_map(|s| Some((s.rep, sample_cost(s, metric)?)))
            .collect()
    };
    let theirs = costs_of(other);
    costs_of(subject)
        .into_iter()
        .filter_map(|(rep, ours)| Some(ours / theirs.get(&rep)?))
        .collect()
}

/// One line on a gap's confirmation rounds: the median of the per-round
/// ratios with their range, and whether the gap stands (the median still
/// above [`GAP_RATIO`]), with the runs that failed; `None` when the gap
/// was not rerun.
pub fn confirmation_line(ratios: &[f64], failed: usize, subject: &str) -> Option<String> {
    let failures = if failed > 0 {
        format!(" ({failed} run(s) FAILED)")
    } else {
        String::new()
    };
    let Some(stats::Summary {
        median,
        min: lo,
        max: hi,
        ..
    }) = stats::summarize(ratios)
    else {
        return (failed > 0).then(|| format!("rerun: no round completed by both{failures}"));
    };
    let won = ratios.iter().filter(|&&x| x < 1.0).count();
    let verdict = if median > GAP_RATIO {
        "the gap stands"
    } else {
        "not confirmed"
    };
    Some(format!(
        "rerun {} rounds, the two alone: x{median:.2} [{lo:.2}-{hi:.2}]; {subject} faster in {won}/{}: {verdict}{failures}",
        ratios.len(),
        ratios.len()
    ))
}

/// The cost of one successful sample on a row of `metric`: its time, or
/// the inverse of its throughput (lower is better either way).
fn sample_cost(s: &Sample, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Time => Some(s.wall_s),
        Metric::Throughput => {
            let t = s.outcome.as_ref()?.throughput;
            (t > 0.0).then(|| 1.0 / t)
        }
        Metric::Latency => None,
    }
}

/// The rows where another allocator is more than [`GAP_RATIO`] faster than
/// `subject` by the median (latency rows left out, as in the summary's cost).
pub fn gaps(report: &Report, rows: &[Row], subject: &str) -> Vec<Gap> {
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| r.metric != Metric::Latency) {
        let Some(subject_cost) = r.cells.iter().find(|c| c.alloc == subject).and_then(|c| c.cost) else {
            continue;
        };
        let Some((best, best_cost)) = r
            .cells
            .iter()
            .filter(|c| c.alloc != subject)
            .filter_map(|c| Some((c, c.cost?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        else {
            continue;
        };
        if subject_cost <= best_cost * GAP_RATIO {
            continue;
        }
        let pairs = paired_ratios(&report.samples, (&r.bench, r.threads, r.metric), subject, &best.alloc);
        out.push(Gap {
            bench: r.bench.clone(),
            threads: r.threads,
            metric: r.metric,
            best: best.alloc.clone(),
            subject_cost,
            best_cost,
            pairs,
        });
    }
    out
}

/// The gaps of the report's first allocator (the one a comparison is run
/// for: `--alloc oxmalloc,...`), or nothing with a single allocator.
fn render_gaps(out: &mut String, report: &Report, rows: &[Row]) {
    if report.allocators.len() < 2 {
        return;
    }
    let subject = report.allocators[0].name.as_str();
    let _ = writeln!(
        out,
        "\nRows where another allocator is more than {:.0}% faster than {subject} (by medians);\n\
         pairs: {subject}'s cost over that allocator's in each repetition (run close in time):",
        (GAP_RATIO - 1.0) * 100.0
    );
    let found = gaps(report, rows, subject);
    if found.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for g in found {
        let pairs: Vec<String> = g.pairs.iter().map(|x| format!("{x:.2}")).collect();
        let _ = writeln!(
            out,
            "  {:<22} {:<16} {:.2} against {:.2} (x{:.2}); pairs {}; {subject} faster in {}/{}",
            g.row(),
            g.best,
            g.best_cost,
            g.subject_cost,
            g.subject_cost / g.best_cost,
            pairs.join(" "),
            g.subject_won(),
            g.pairs.len()
        );
        let failed = report
            .confirm
            .iter()
            .filter(|s| !s.ok && s.bench == g.bench && s.threads == g.threads)
            .filter(|s| s.alloc == subject || s.alloc == g.best)
            .count();
        if let Some(line) = confirmation_line(&g.confirmation(report, subject), failed, subject) {
            let _ = writeln!(out, "  {:<22} {line}", "");
        }
    }
}

/// 1234567 -> "1.23M".
pub fn human(x: f64) -> String {
    let a = x.abs();
    let (v, suffix) = if a >= 1e9 {
        (x / 1e9, "G")
    } else if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if v.abs() >= 100.0 {
        format!("{v:.0}{suffix}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.2}{suffix}")
    }
}

fn range(s: &Option<Summary>, f: impl Fn(f64) -> String) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} [{}-{}]", f(s.median), f(s.min), f(s.max)),
        Some(s) => f(s.median),
        None => "-".into(),
    }
}

/// Real programs run without a preload for the glibc row.
fn route_label(route: Route, real: bool) -> &'static str {
    match (route, real) {
        (Route::GlobalAllocator, true) => "as installed",
        _ => route.label(),
    }
}

/// KiB as "596 KiB" or "2.9 MiB"; `signed` adds a `+` to positive values.
fn kib_str(kib: f64, signed: bool) -> String {
    let sign = if signed && kib > 0.0 { "+" } else { "" };
    if kib.abs() >= 1024.0 {
        format!("{sign}{:.1} MiB", kib / 1024.0)
    } else {
        format!("{sign}{kib:.0} KiB")
    }
}

/// The workloads' further figures, in display order, with their labels.
/// Others are shown after these, by name.
const EXTRAS: &[(&str, &str)] = &[
    ("moves_avoided", "moves avoided (reallocs in place)"),
    ("in_place_fraction", "in place"),
    ("rss_early_kib", "RSS after 10% of the threads"),
    ("rss_end_kib", "at the end"),
    ("rss_growth_kib", "growth"),
    ("rss_sampled_peak_kib", "sampled peak RSS"),
    ("cpu_s", "CPU in the workload"),
];

/// "label value" for one further figure (median; min-max as well where
/// the repetitions differ and the figure is a growth).
fn extra_str(key: &str, s: &Summary) -> String {
    let label = EXTRAS
        .iter()
        .find(|e| e.0 == key)
        .map_or_else(|| key.replace('_', " "), |e| e.1.to_string());
    let one = |x: f64| {
        if key.ends_with("_fraction") {
            format!("{:.1}%", x * 100.0)
        } else if key.ends_with("_kib") {
            kib_str(x, key.contains("growth"))
        } else if key.ends_with("_s") {
            format!("{x:.2} s")
        } else {
            human(x)
        }
    };
    let value = if key.contains("growth") && s.n > 1 && s.min < s.max {
        format!("{} [{} to {}]", one(s.median), one(s.min), one(s.max))
    } else {
        one(s.median)
    };
    format!("{label} {value}")
}

/// One line of figures for a cell: user and system CPU seconds, then the
/// workload's further figures.
fn extras_line(c: &Cell) -> String {
    let mut parts = Vec::new();
    if let (Some(u), Some(s)) = (c.user_s, c.sys_s) {
        parts.push(format!("user {:.2} s, sys {:.2} s", u.median, s.median));
    }
    let mut keys: Vec<&String> = c.extra.keys().collect();
    keys.sort_by_key(|k| EXTRAS.iter().position(|e| e.0 == k.as_str()).unwrap_or(usize::MAX));
    parts.extend(keys.into_iter().map(|k| extra_str(k, &c.extra[k])));
    parts.join("; ")
}

/// What a workload's further figures mean, when that needs saying.
fn extras_hint(bench: &str) -> &'static str {
    match bench {
        "mleak" => " (memory must not grow with the number of threads: growth should stay near 0)",
        "malloc-large" => " (RSS sampled inside the worker every 64 replacements)",
        "rptest" => " (the throughput is per CPU second of the workload)",
        _ => "",
    }
}

/// `0.84-0.88`, or `-` without an interval.
fn interval_str(i: Option<Interval>) -> String {
    i.map_or_else(|| "-".into(), |i| format!("{:.2}-{:.2}", i.low, i.high))
}

fn ratio_str(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}"))
}

/// A column label of at most 7 characters for the matrix.
pub fn short_name(alloc: &str) -> String {
    let known = [
        ("oxmalloc", "oxm"),
        ("mimalloc", "mi3"),
        ("mimalloc-v2", "mi2"),
        ("jemalloc", "je"),
        ("snmalloc", "sn"),
        ("rpmalloc", "rp"),
        ("rallocator", "rall"),
        ("oxmalloc-preload", "oxm.so"),
        ("mimalloc-deb", "mi.deb"),
        ("jemalloc-deb", "je.deb"),
        ("tcmalloc-deb", "tc.deb"),
    ];
    match known.iter().find(|k| k.0 == alloc) {
        Some(k) => k.1.to_string(),
        None => alloc.chars().take(7).collect(),
    }
}

/// One line per row, one column per allocator: the relative cost.
fn render_matrix(out: &mut String, report: &Report, rows: &[Row]) {
    let names: Vec<&str> = report.allocators.iter().map(|a| a.name.as_str()).collect();
    let _ = writeln!(
        out,
        "\nCost matrix (relative cost, lower is better; F = failed, - = no ratio):"
    );
    let legend: Vec<String> = names.iter().map(|n| format!("{}={n}", short_name(n))).collect();
    let _ = writeln!(out, "  {}", legend.join(" "));
    let mut header = format!("  {:<22}", "workload@threads");
    for n in &names {
        let _ = write!(header, " {:>7}", short_name(n));
    }
    let _ = writeln!(out, "{header}");
    for r in rows {
        let mut line = format!("  {:<22}", r.label());
        for n in &names {
            let cell = r.cells.iter().find(|c| c.alloc == *n);
            let text = match cell {
                None => String::new(),
                Some(c) if c.ok == 0 => "F".to_string(),
                Some(c) => ratio_str(c.cost),
            };
            let _ = write!(line, " {text:>7}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// Renders the whole report as text.
pub fn render(report: &Report, baseline: &str) -> String {
    let rows = rows(report, baseline);
    let mut out = String::new();
    let m = &report.meta;
    let _ = writeln!(
        out,
        "oxbench {}: {} cores, scale {}, {} interleaved repetition(s); baseline {}; cells are median [min-max]",
        m.oxbench, m.cores, m.scale, m.reps, baseline
    );
    for n in &m.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(out, "cost = time / baseline time (throughput workloads: baseline throughput / throughput; latency: p99 request latency ratio); lower is better. RSS = peak resident set.");
    for r in &rows {
        let what = match r.metric {
            Metric::Time => "time".to_string(),
            Metric::Throughput => format!("throughput in {}", r.unit),
            Metric::Latency => "p99 request latency".to_string(),
        };
        let vs = r.baseline.as_deref().unwrap_or("nothing (no baseline result)");
        let _ = writeln!(
            out,
            "\n{} (threads {}; ranked by {what}; ratios vs {vs})",
            r.bench, r.threads
        );
        let real = workloads::find(&r.bench).is_none();
        let _ = writeln!(
            out,
            "  {:<16} {:<16} {:>26} {:>26} {:>6} {:>24} {:>6}",
            "allocator", "route", "wall s", "throughput", "cost", "peak RSS MiB", "RSS"
        );
        for c in &r.cells {
            if c.ok == 0 {
                let _ = writeln!(
                    out,
                    "  {:<16} {:<16} FAILED ({}/{}): {}",
                    c.alloc,
                    route_label(c.route, real),
                    c.failed,
                    c.failed,
                    c.error.as_deref().unwrap_or("?")
                );
                continue;
            }
            let _ = writeln!(
                out,
                "  {:<16} {:<16} {:>26} {:>26} {:>6} {:>24} {:>6}{}",
                c.alloc,
                route_label(c.route, real),
                range(&c.wall, |x| format!("{x:.3}")),
                range(&c.throughput, human),
                ratio_str(c.cost),
                range(&c.rss_mib, |x| format!("{x:.1}")),
                ratio_str(c.rss_ratio),
                if c.failed > 0 {
                    format!("  ({} failed)", c.failed)
                } else {
                    String::new()
                }
            );
        }
        let with_latency: Vec<&Cell> = r.cells.iter().filter(|c| !c.latency.is_empty()).collect();
        if !with_latency.is_empty() {
            let _ = writeln!(
                out,
                "  latency, ns (median over repetitions of p50 / p99 / p99.9 / max):"
            );
            for c in with_latency {
                let parts: Vec<String> = c
                    .latency
                    .iter()
                    .map(|(op, p)| format!("{op} {}/{}/{}/{}", p.p50, p.p99, p.p999, human(p.max as f64)))
                    .collect();
                let _ = writeln!(out, "    {:<16} {}", c.alloc, parts.join("   "));
            }
        }
        let measured: Vec<&Cell> = r.cells.iter().filter(|c| c.ok > 0).collect();
        if !measured.is_empty() {
            let _ = writeln!(
                out,
                "  CPU time and workload figures (medians over repetitions){}:",
                extras_hint(&r.bench)
            );
            for c in measured {
                let _ = writeln!(out, "    {:<16} {}", c.alloc, extras_line(c));
            }
        }
    }
    render_matrix(&mut out, report, &rows);
    let _ = writeln!(
        out,
        "\nSummary: geometric means relative to {baseline} (lower is better): cost over the time and\n\
         throughput rows, p99 over the latency rows (p99 request latency), RSS over every row;\n\
         95%: the interval of a bootstrap over the repetitions, paired (repetition i of every\n\
         allocator drawn together), {} draws",
        interval::REPLICATES
    );
    let _ = writeln!(
        out,
        "  {:<16} {:<16} {:>8} {:>11} {:>8} {:>8} {:>11} {:>6} {:>8}",
        "allocator", "route", "cost", "cost 95%", "p99", "RSS", "RSS 95%", "rows", "failed"
    );
    for o in overall(report, &rows) {
        let _ = writeln!(
            out,
            "  {:<16} {:<16} {:>8} {:>11} {:>8} {:>8} {:>11} {:>6} {:>8}",
            o.alloc,
            o.route.label(),
            ratio_str(o.cost),
            interval_str(o.spread.cost),
            ratio_str(o.latency),
            ratio_str(o.rss),
            interval_str(o.spread.rss),
            o.rows,
            o.failed
        );
    }
    render_gaps(&mut out, report, &rows);
    if !report.instructions.is_empty() {
        let bytes = report.instructions[0].bytes;
        let _ = writeln!(out, "\nInstructions per malloc+free pair of {bytes} B (callgrind):");
        for i in &report.instructions {
            let _ = writeln!(out, "  {:<16} {:<12} {:>8.1}", i.alloc, i.via, i.per_pair);
        }
    }
    let failures: Vec<&Sample> = report.samples.iter().filter(|s| !s.ok).collect();
    if !failures.is_empty() {
        let _ = writeln!(
            out,
            "\nFailures ({}), each with the command that reproduces it:",
            failures.len()
        );
        let mut seen = Vec::new();
        for s in failures {
            let key = (&s.alloc, &s.bench, s.threads);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let _ = writeln!(
                out,
                "  {} / {}@{}: {}\n    $ {}",
                s.alloc,
                s.bench,
                s.threads,
                s.error.as_deref().unwrap_or("?"),
                s.command
            );
        }
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\nSkipped:");
        for s in &report.skipped {
            let _ = writeln!(out, "  {:<16} {}", s.name, s.reason);
        }
    }
    let _ = writeln!(out, "\nAllocators:");
    for a in &report.allocators {
        let _ = writeln!(out, "  {:<16} {:<16} {}", a.name, a.route.label(), a.detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::sample::{AllocInfo, Meta};

    fn sample(alloc: &str, bench: &str, wall: f64, thr: f64, rss: u64) -> Sample {
        let mut o = Outcome::per_second(1, 1.0, "ops/s");
        o.throughput = thr;
        Sample {
            alloc: alloc.into(),
            bench: bench.into(),
            threads: 2,
            rep: 0,
            ok: true,
            error: None,
            wall_s: wall,
            user_s: wall * 0.75,
            sys_s: wall * 0.25,
            max_rss_kib: rss,
            outcome: Some(o),
            command: String::new(),
        }
    }

    fn report() -> Report {
        let mut samples = Vec::new();
        for (w, t) in [(1.0, 100.0), (3.0, 300.0), (2.0, 200.0)] {
            samples.push(sample("base", "glibc-simple", w, 1.0, 1024));
            samples.push(sample("base", "larson", 1.5, t, 2048));
            samples.push(sample("x", "glibc-simple", w * 2.0, 1.0, 4096));
            samples.push(sample("x", "larson", 1.5, t / 4.0, 2048));
        }
        // A latency row where x's p99 is 100x the baseline's: summarised
        // apart, it must not move the cost geometric mean.
        for (alloc, p99) in [("base", 1_000), ("x", 100_000)] {
            let mut s = sample(alloc, "latency", 1.0, 1.0, 2048);
            let o = s.outcome.as_mut().unwrap();
            o.latency.insert(
                "request".into(),
                Percentiles {
                    count: 10,
                    p50: 10,
                    p99,
                    p999: p99,
                    max: p99,
                    slower_than: BTreeMap::new(),
                },
            );
            samples.push(s);
        }
        // Further figures: mleak's growth differs between repetitions.
        for growth in [300.0, -40.0, 2048.0] {
            let mut s = sample("base", "mleak", 1.0, 1.0, 2048);
            let o = s.outcome.take().unwrap();
            s.outcome = Some(
                o.with("rss_early_kib", 2048.0)
                    .with("rss_end_kib", 2048.0 + growth)
                    .with("rss_growth_kib", growth),
            );
            samples.push(s);
        }
        let mut s = sample("base", "realloc-growth", 1.0, 1.0, 2048);
        let o = s.outcome.take().unwrap();
        s.outcome = Some(o.with("moves_avoided", 1_500_000.0).with("in_place_fraction", 0.991));
        samples.push(s);
        let mut bad = sample("x", "mleak", 0.1, 0.0, 1);
        bad.ok = false;
        bad.error = Some("killed by signal 11 (SIGSEGV)".into());
        samples.push(bad);
        Report {
            meta: Meta {
                reps: 3,
                ..Meta::default()
            },
            allocators: vec![info("base"), info("x")],
            samples,
            ..Report::default()
        }
    }

    #[test]
    fn ratios_medians_and_geomean() {
        let r = report();
        let rows = rows(&r, "base");
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].bench, "larson"); // workload order
        let larson_x = &rows[0].cells[1];
        assert_eq!(larson_x.throughput.unwrap().median, 50.0);
        assert_eq!(larson_x.cost, Some(4.0)); // 4x lower throughput
        let simple = rows.iter().find(|r| r.bench == "glibc-simple").unwrap();
        assert_eq!(simple.cells[0].wall.unwrap().median, 2.0);
        assert_eq!(simple.cells[0].wall.unwrap().min, 1.0);
        assert_eq!(simple.cells[1].cost, Some(2.0));
        assert_eq!(simple.cells[1].rss_ratio, Some(4.0));
        let o = overall(&r, &rows);
        assert_eq!(o[0].cost, Some(1.0));
        assert!((o[1].cost.unwrap() - 8f64.sqrt()).abs() < 1e-9);
        assert_eq!(o[1].rows, 2);
        assert!((o[1].latency.unwrap() - 100.0).abs() < 1e-9);
        assert!((o[0].latency.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(o[1].failed, 1);
        let text = render(&r, "base");
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("SIGSEGV"));
        assert!(text.contains("global_allocator"));
    }

    /// The lines under one workload's table (up to the next blank line).
    fn section<'a>(text: &'a str, head: &str) -> &'a str {
        let start = text.find(head).unwrap_or_else(|| panic!("no {head:?} in {text}"));
        let rest = &text[start..];
        &rest[..rest.find("\n\n").unwrap_or(rest.len())]
    }

    #[test]
    fn cpu_times_and_further_figures_are_shown_per_allocator() {
        let r = report();
        let rows = rows(&r, "base");
        let mleak = rows.iter().find(|r| r.bench == "mleak").unwrap();
        let g = mleak.cells[0].extra["rss_growth_kib"];
        assert_eq!((g.median, g.min, g.max, g.n), (300.0, -40.0, 2048.0, 3));
        let text = render(&r, "base");
        // Median user/sys of walls 1, 3, 2 (x2 for x): 0.75*2, 0.25*2.
        let simple = section(&text, "glibc-simple (threads");
        assert!(simple.contains("base             user 1.50 s, sys 0.50 s"), "{simple}");
        assert!(simple.contains("x                user 3.00 s, sys 1.00 s"), "{simple}");
        let m = section(&text, "mleak (threads");
        assert!(m.contains("must not grow"), "{m}");
        assert!(
            m.contains(
                "RSS after 10% of the threads 2.0 MiB; at the end 2.3 MiB; growth +300 KiB [-40 KiB to +2.0 MiB]"
            ),
            "{m}"
        );
        // The failed allocator has no figures line.
        assert!(!m.contains("x                user"), "{m}");
        let rg = section(&text, "realloc-growth (threads");
        assert!(
            rg.contains("moves avoided (reallocs in place) 1.50M; in place 99.1%"),
            "{rg}"
        );
        // A figure oxbench has no label for is shown by its name.
        let mut r = report();
        let s = r.samples.iter_mut().find(|s| s.bench == "realloc-growth").unwrap();
        s.outcome.as_mut().unwrap().extra.insert("odd_thing".into(), 42.0);
        let text = render(&r, "base");
        assert!(section(&text, "realloc-growth (threads").contains("in place 99.1%; odd thing 42.0"));
    }

    /// A `#[global_allocator]` allocator named `n`.
    fn info(n: &str) -> AllocInfo {
        AllocInfo {
            name: n.into(),
            route: Route::GlobalAllocator,
            detail: String::new(),
        }
    }

    /// Throughput samples of `alloc` on larson@2, one per repetition.
    fn larson_reps(alloc: &str, throughputs: &[f64]) -> Vec<Sample> {
        throughputs
            .iter()
            .enumerate()
            .map(|(rep, &t)| Sample {
                rep,
                ..sample(alloc, "larson", 1.0, t, 1024)
            })
            .collect()
    }

    #[test]
    fn gaps_list_rows_where_a_peer_is_more_than_ten_percent_faster_with_the_pairs() {
        // larson: "fast" beats "subj" by 25% by the medians, though not in
        // repetition 1; "close" is within 5%. glibc-simple: "close" only
        // 5% faster: no gap. mstress: "subj" ahead of both.
        let mut samples = larson_reps("subj", &[100.0, 100.0, 100.0]);
        samples.extend(larson_reps("fast", &[125.0, 90.0, 130.0]));
        samples.extend(larson_reps("close", &[105.0, 104.0, 103.0]));
        for (alloc, wall, mstress) in [("subj", 2.0, 1.0), ("fast", 2.5, 1.5), ("close", 1.9, 1.2)] {
            samples.push(sample(alloc, "glibc-simple", wall, 1.0, 1024));
            samples.push(sample(alloc, "mstress", mstress, 1.0, 1024));
        }
        let r = Report {
            meta: Meta {
                reps: 3,
                ..Meta::default()
            },
            allocators: vec![info("subj"), info("fast"), info("close")],
            samples,
            ..Report::default()
        };
        let rows = rows(&r, "subj");
        let found = gaps(&r, &rows, "subj");
        assert_eq!(found.len(), 1, "{found:?}");
        let g = &found[0];
        assert_eq!((g.row().as_str(), g.best.as_str()), ("larson@2", "fast"));
        assert!((g.best_cost - 0.8).abs() < 1e-9 && g.subject_cost == 1.0, "{g:?}");
        let expected = [1.25, 0.9, 1.3];
        assert_eq!(g.pairs.len(), 3);
        for (got, want) in g.pairs.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{:?}", g.pairs);
        }
        assert_eq!(g.subject_won(), 1);
        let text = render(&r, "subj");
        let section = section(&text, "Rows where another allocator is more than 10% faster than subj");
        assert!(
            section.contains("larson@2               fast             0.80 against 1.00 (x1.25); pairs 1.25 0.90 1.30; subj faster in 1/3"),
            "{section}"
        );
        assert!(!section.contains("glibc-simple"), "{section}");
        // The row's fastest other allocator is named, not the first listed:
        // with "close" at half the subject's time on glibc-simple, that row
        // is a gap, against "close".
        let mut r2 = r.clone();
        for s in r2
            .samples
            .iter_mut()
            .filter(|s| s.alloc == "close" && s.bench == "glibc-simple")
        {
            s.wall_s = 1.0;
        }
        let rows2 = super::rows(&r2, "subj");
        let found: Vec<(String, String)> = gaps(&r2, &rows2, "subj")
            .into_iter()
            .map(|g| (g.row(), g.best))
            .collect();
        assert!(
            found.contains(&("glibc-simple@2".to_string(), "close".to_string())),
            "{found:?}"
        );
        // One allocator alone: no section.
        let mut alone = r.clone();
        alone.allocators.truncate(1);
        alone.samples.retain(|s| s.alloc == "subj");
        assert!(!render(&alone, "subj").contains("Rows where another allocator"));
    }

    #[test]
    fn a_gap_rerun_shows_the_rounds_ratio_and_whether_it_stands() {
        // The table: "fast" 25% ahead of "subj" on larson@2.
        let mut samples = larson_reps("subj", &[100.0, 100.0, 100.0]);
        samples.extend(larson_reps("fast", &[125.0, 125.0, 125.0]));
        let table = Report {
            meta: Meta {
                reps: 3,
                ..Meta::default()
            },
            allocators: vec![info("subj"), info("fast")],
            samples,
            ..Report::default()
        };
        let rerun = |subj: &[f64], fast: &[f64]| -> Vec<Sample> {
            // Rounds numbered after the table's repetitions.
            let renumber = |v: Vec<Sample>| v.into_iter().map(|s| Sample { rep: s.rep + 3, ..s });
            renumber(larson_reps("subj", subj))
                .chain(renumber(larson_reps("fast", fast)))
                .collect()
        };
        let section_of = |r: &Report| {
            let text = render(r, "subj");
            section(&text, "Rows where another allocator is more than 10% faster than subj").to_string()
        };
        // Not rerun: no second line.
        assert!(!section_of(&table).contains("rerun"), "{}", section_of(&table));
        // Rerun, and level (1.0, 1.05 and 0.95 of the other's cost), or
        // still behind (the gap stands).
        for (fast, line) in [
            (
                [100.0, 105.0, 95.0],
                "rerun 3 rounds, the two alone: x1.00 [0.95-1.05]; subj faster in 1/3: not confirmed",
            ),
            (
                [120.0, 130.0, 125.0],
                "rerun 3 rounds, the two alone: x1.25 [1.20-1.30]; subj faster in 0/3: the gap stands",
            ),
        ] {
            let rerun_report = Report {
                confirm: rerun(&[100.0, 100.0, 100.0], &fast),
                ..table.clone()
            };
            let s = section_of(&rerun_report);
            assert!(s.contains(line), "{s}");
        }
        let behind = Report {
            confirm: rerun(&[100.0, 100.0, 100.0], &[120.0, 130.0, 125.0]),
            ..table.clone()
        };
        // A round that failed is counted, and left out of the ratio.
        let mut failed = behind.clone();
        let lost = failed
            .confirm
            .iter_mut()
            .find(|s| s.alloc == "fast" && s.rep == 4)
            .unwrap();
        lost.ok = false;
        let s = section_of(&failed);
        assert!(s.contains("rerun 2 rounds") && s.contains("(1 run(s) FAILED)"), "{s}");
        // Reruns of another row or another allocator do not count.
        let elsewhere = Report {
            confirm: rerun(&[100.0], &[200.0])
                .into_iter()
                .map(|s| Sample { threads: 8, ..s })
                .collect(),
            ..table.clone()
        };
        assert!(!section_of(&elsewhere).contains("rerun"), "{}", section_of(&elsewhere));
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(12.0), "12.0");
        assert_eq!(human(250_000.0), "250k");
    }
}
