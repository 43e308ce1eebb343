//! How far a geometric mean can be trusted: a paired bootstrap over the
//! repetitions of a run.
//!
//! A geometric mean over some twenty-five rows moves by a few percent from
//! one run to the next on a noisy machine, so "0.86 against a target of
//! 0.85" says nothing until it comes with its spread. Each bootstrap
//! replicate draws, row by row, as many repetition numbers as the row has,
//! with replacement, and recomputes every allocator's ratio on that row
//! from the drawn repetitions exactly as the report does (the allocator's
//! median over the baseline's median), then the geometric mean over the
//! rows. The 2.5th and 97.5th percentiles of the replicates bound a 95%
//! interval.
//!
//! The draw is paired: one set of repetition numbers per row serves every
//! allocator. Repetitions are interleaved, so repetition `i` of each
//! allocator ran close in time, under the same phase of the machine; drawing
//! each allocator's repetitions apart would add that drift to the spread of
//! the ratio (see the test `a_drift_shared_by_paired_repetitions_is_not_spread`).
//!
//! What it does not cover: drift between runs that is larger than the drift
//! between repetitions of one run, and the choice of rows itself.

use crate::report::{cost_ratio, Row};
use crate::sample::Report;
use crate::stats;
use crate::workloads::Metric;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Bootstrap replicates per interval: enough for stable 2.5% tails at the
/// report's two decimals, and a few milliseconds for a whole table.
pub const REPLICATES: usize = 2000;
/// Fixed, so that rendering one report twice prints the same intervals.
const SEED: u64 = 0x0b0b_5eed;

/// A 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// 2.5th percentile of the replicates.
    pub low: f64,
    /// 97.5th percentile of the replicates.
    pub high: f64,
}

/// An allocator's intervals for the summary's cost and RSS geometric means.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GeomeanIntervals {
    /// Over the time and throughput rows (the summary's `cost`).
    pub cost: Option<Interval>,
    /// Over every row (the summary's `RSS`).
    pub rss: Option<Interval>,
}

/// One row's measurements, by allocator and repetition number, for what a
/// replicate needs: the primary value (wall seconds or throughput) and the
/// peak RSS.
struct RowData {
    metric: Metric,
    baseline: String,
    reps: Vec<usize>,
    value: ByAlloc,
    rss: ByAlloc,
}

/// Values by allocator name, then repetition number.
type ByAlloc = BTreeMap<String, BTreeMap<usize, f64>>;

fn row_data(report: &Report, row: &Row) -> Option<RowData> {
    let baseline = row.baseline.clone()?;
    let mut reps = Vec::new();
    let mut value = ByAlloc::new();
    let mut rss = ByAlloc::new();
    for s in report
        .samples
        .iter()
        .filter(|s| s.ok && s.bench == row.bench && s.threads == row.threads)
    {
        let v = match row.metric {
            Metric::Time => Some(s.wall_s),
            Metric::Throughput => s.outcome.as_ref().map(|o| o.throughput),
            Metric::Latency => None,
        };
        if let Some(v) = v {
            value.entry(s.alloc.clone()).or_default().insert(s.rep, v);
        }
        rss.entry(s.alloc.clone())
            .or_default()
            .insert(s.rep, s.max_rss_kib as f64);
        if !reps.contains(&s.rep) {
            reps.push(s.rep);
        }
    }
    reps.sort_unstable();
    Some(RowData {
        metric: row.metric,
        baseline,
        reps,
        value,
        rss,
    })
}

/// The median of `alloc`'s values at the drawn repetitions it has.
fn median_at(values: &ByAlloc, alloc: &str, drawn: &[usize]) -> f64 {
    let Some(by_rep) = values.get(alloc) else {
        return f64::NAN;
    };
    let v: Vec<f64> = drawn.iter().filter_map(|rep| by_rep.get(rep).copied()).collect();
    stats::median(&v).unwrap_or(f64::NAN)
}

/// The cost and RSS ratios of `alloc` on one row for one draw, as
/// `report::rows` computes them from all repetitions (latency rows have no
/// values here, so no cost: the summary's cost leaves them out).
fn ratios(d: &RowData, alloc: &str, drawn: &[usize]) -> (Option<f64>, Option<f64>) {
    let cost = cost_ratio(
        d.metric,
        median_at(&d.value, alloc, drawn),
        median_at(&d.value, &d.baseline, drawn),
    );
    let rss = stats::ratio(median_at(&d.rss, alloc, drawn), median_at(&d.rss, &d.baseline, drawn));
    (cost, rss)
}

/// The `q` quantile (0..=1) of sorted values, by nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn interval(mut replicates: Vec<f64>) -> Option<Interval> {
    if replicates.is_empty() {
        return None;
    }
    replicates.sort_by(f64::total_cmp);
    Some(Interval {
        low: quantile(&replicates, 0.025),
        high: quantile(&replicates, 0.975),
    })
}

/// 95% intervals of each allocator's cost and RSS geometric means (in the
/// report's allocator order), from `replicates` paired bootstrap draws.
/// An allocator gets no interval where the summary has no mean.
pub fn geomean_intervals(report: &Report, rows: &[Row], replicates: usize) -> Vec<GeomeanIntervals> {
    let data: Vec<RowData> = rows.iter().filter_map(|r| row_data(report, r)).collect();
    let allocs: Vec<&str> = report.allocators.iter().map(|a| a.name.as_str()).collect();
    let mut cost_reps: Vec<Vec<f64>> = vec![Vec::new(); allocs.len()];
    let mut rss_reps: Vec<Vec<f64>> = vec![Vec::new(); allocs.len()];
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut drawn = Vec::new();
    for _ in 0..replicates {
        let mut costs: Vec<Vec<f64>> = vec![Vec::new(); allocs.len()];
        let mut rsses: Vec<Vec<f64>> = vec![Vec::new(); allocs.len()];
        for d in &data {
            drawn.clear();
            drawn.extend((0..d.reps.len()).map(|_| d.reps[rng.random_range(0..d.reps.len())]));
            for (i, alloc) in allocs.iter().enumerate() {
                let (cost, rss) = ratios(d, alloc, &drawn);
                costs[i].extend(cost);
                rsses[i].extend(rss);
            }
        }
        for i in 0..allocs.len() {
            cost_reps[i].extend(stats::geomean(&costs[i]));
            rss_reps[i].extend(stats::geomean(&rsses[i]));
        }
    }
    cost_reps
        .into_iter()
        .zip(rss_reps)
        .map(|(cost, rss)| GeomeanIntervals {
            cost: interval(cost),
            rss: interval(rss),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::{overall, rows};
    use crate::sample::{AllocInfo, Meta, Route, Sample};

    fn sample(alloc: &str, bench: &str, rep: usize, wall: f64, rss_kib: u64) -> Sample {
        Sample {
            alloc: alloc.into(),
            bench: bench.into(),
            threads: 1,
            rep,
            ok: true,
            error: None,
            wall_s: wall,
            user_s: wall,
            sys_s: 0.0,
            max_rss_kib: rss_kib,
            outcome: Some(Outcome::per_second(1, wall, "ops/s")),
            command: String::new(),
        }
    }

    /// A report of two allocators on time rows: `walls(bench, rep)` gives
    /// (base, x) wall seconds.
    fn report_of(benches: &[&str], reps: usize, walls: impl Fn(usize, usize) -> (f64, f64)) -> Report {
        let info = |n: &str| AllocInfo {
            name: n.into(),
            route: Route::GlobalAllocator,
            detail: String::new(),
        };
        let mut samples = Vec::new();
        for (b, bench) in benches.iter().enumerate() {
            for rep in 0..reps {
                let (base, x) = walls(b, rep);
                samples.push(sample("base", bench, rep, base, 1000));
                samples.push(sample("x", bench, rep, x, 500 + 100 * rep as u64));
            }
        }
        Report {
            meta: Meta {
                reps,
                ..Meta::default()
            },
            allocators: vec![info("base"), info("x")],
            samples,
            ..Report::default()
        }
    }

    #[test]
    fn identical_repetitions_give_an_interval_of_width_zero_at_the_mean() {
        let r = report_of(&["glibc-simple", "malloc-large"], 5, |b, _| (1.0, [0.5, 2.0][b]));
        let rows = rows(&r, "base");
        let iv = geomean_intervals(&r, &rows, REPLICATES);
        let mean = overall(&r, &rows)[1].cost.unwrap();
        assert!((mean - 1.0).abs() < 1e-12);
        let cost = iv[1].cost.unwrap();
        assert!(
            (cost.low - mean).abs() < 1e-12 && (cost.high - mean).abs() < 1e-12,
            "{cost:?}"
        );
        assert_eq!(iv[0].cost, Some(Interval { low: 1.0, high: 1.0 }));
    }

    #[test]
    fn noisy_repetitions_give_an_interval_around_the_mean() {
        // x's own noise, independent of the baseline's: 0.6..1.4 of 1.0.
        let noise = [0.6, 1.4, 1.0, 0.8, 1.2, 0.9, 1.1];
        let r = report_of(&["glibc-simple", "mleak", "malloc-large"], 7, |b, rep| {
            (1.0, noise[(rep + 2 * b) % 7])
        });
        let rows = rows(&r, "base");
        let mean = overall(&r, &rows)[1].cost.unwrap();
        let cost = geomean_intervals(&r, &rows, REPLICATES)[1].cost.unwrap();
        assert!(cost.low < mean && mean < cost.high, "{cost:?} around {mean}");
        assert!(cost.low > 0.6 && cost.high < 1.4, "{cost:?}");
        assert!(cost.high - cost.low > 0.05, "{cost:?}");
        // RSS: x's peak grows with the repetition (500..1100 KiB against
        // 1000), so its interval is as wide as that spread allows.
        let rss = geomean_intervals(&r, &rows, REPLICATES)[1].rss.unwrap();
        assert!(
            rss.low < 0.8 && rss.high > 0.8 && rss.low >= 0.5 && rss.high <= 1.1,
            "{rss:?}"
        );
    }

    #[test]
    fn a_drift_shared_by_paired_repetitions_is_not_spread() {
        // The machine's phase scales both allocators in a repetition alike:
        // x is 0.8 of the baseline in every pair. A draw that kept the
        // pairs sees 0.8 every time; one that drew each allocator's
        // repetitions apart would spread between 0.4 and 1.6.
        let phase = [0.5, 1.0, 2.0, 1.0, 0.5];
        let r = report_of(&["glibc-simple", "mleak"], 5, |_, rep| (phase[rep], 0.8 * phase[rep]));
        let rows = rows(&r, "base");
        let cost = geomean_intervals(&r, &rows, REPLICATES)[1].cost.unwrap();
        assert!(
            (cost.low - 0.8).abs() < 1e-9 && (cost.high - 0.8).abs() < 1e-9,
            "{cost:?}"
        );
    }

    #[test]
    fn throughput_rows_invert_and_missing_repetitions_are_skipped() {
        // larson is a throughput row: x has half the throughput, so twice
        // the cost. x's third repetition failed.
        let mut r = report_of(&["larson"], 3, |_, _| (1.0, 1.0));
        for s in &mut r.samples {
            let o = s.outcome.as_mut().unwrap();
            o.throughput = if s.alloc == "x" { 50.0 } else { 100.0 };
            if s.alloc == "x" && s.rep == 2 {
                s.ok = false;
            }
        }
        let rows = rows(&r, "base");
        let cost = geomean_intervals(&r, &rows, REPLICATES)[1].cost.unwrap();
        assert_eq!(cost, Interval { low: 2.0, high: 2.0 });
    }
}
