//! The saved form of a run (`--json FILE`, `oxbench report FILE`): every raw
//! sample, the allocators and how each was reached, what was skipped.

use crate::outcome::Outcome;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How an allocator was put in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// A worker binary with the allocator as `#[global_allocator]`.
    GlobalAllocator,
    /// The glibc worker (or a real program) with the library in `LD_PRELOAD`.
    LdPreload,
}

impl Route {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Route::GlobalAllocator => "global_allocator",
            Route::LdPreload => "LD_PRELOAD",
        }
    }
}

/// An allocator that took part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocInfo {
    /// Name used on the command line and in tables.
    pub name: String,
    /// How it was put in place.
    pub route: Route,
    /// Version, crate or library path.
    pub detail: String,
}

/// Something that could not take part, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Allocator, workload or program.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// One measurement: one process, one allocator, one workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Allocator name.
    pub alloc: String,
    /// Workload or program name.
    pub bench: String,
    /// Thread count parameter.
    pub threads: usize,
    /// Repetition index.
    pub rep: usize,
    /// Whether the process exited 0 and reported a result.
    pub ok: bool,
    /// Why not, when not ok.
    #[serde(default)]
    pub error: Option<String>,
    /// Wall-clock seconds of the process.
    pub wall_s: f64,
    /// User CPU seconds (wait4 rusage).
    pub user_s: f64,
    /// System CPU seconds (wait4 rusage).
    pub sys_s: f64,
    /// Peak resident set size in KiB: the worker's own `VmHWM` when it
    /// reports it (`Outcome::peak_rss_kib`), else `wait4`'s `ru_maxrss`
    /// (real programs; it is at least the runner's size), or `VmHWM` of a
    /// server process.
    pub max_rss_kib: u64,
    /// What the worker reported.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// The command line that reproduces it.
    #[serde(default)]
    pub command: String,
}

impl Sample {
    /// A sample not yet measured: not ok, times NaN, no outcome.
    pub fn new(alloc: &str, bench: &str, threads: usize, rep: usize) -> Sample {
        Sample {
            alloc: alloc.to_string(),
            bench: bench.to_string(),
            threads,
            rep,
            ok: false,
            error: None,
            wall_s: f64::NAN,
            user_s: f64::NAN,
            sys_s: f64::NAN,
            max_rss_kib: 0,
            outcome: None,
            command: String::new(),
        }
    }
}

/// Settings of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// oxbench version.
    pub oxbench: String,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
    /// Cores online.
    pub cores: usize,
    /// Scale factor.
    pub scale: f64,
    /// Repetitions (interleaved).
    pub reps: usize,
    /// Allocator the ratios are relative to.
    pub baseline: String,
    /// The command line.
    pub command: String,
    /// Free-form notes (pinning, kernel, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// `KEY=VALUE` environment variables given to every worker (`--env`).
    #[serde(default)]
    pub env: Vec<String>,
}

/// Instructions per malloc/free pair counted by callgrind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstrCount {
    /// Allocator name.
    pub alloc: String,
    /// `GlobalAlloc` or `C ABI`.
    pub via: String,
    /// Instructions per pair.
    pub per_pair: f64,
    /// Bytes each allocation asked for (reports written before this field
    /// counted 32-byte pairs).
    #[serde(default = "default_pair_bytes")]
    pub bytes: usize,
}

fn default_pair_bytes() -> usize {
    crate::worker::DEFAULT_PAIR_BYTES
}

/// Everything a run produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Settings.
    pub meta: Meta,
    /// Allocators that took part.
    pub allocators: Vec<AllocInfo>,
    /// What was skipped and why.
    pub skipped: Vec<Skipped>,
    /// Every measurement.
    pub samples: Vec<Sample>,
    /// Callgrind counts, when measured.
    #[serde(default)]
    pub instructions: Vec<InstrCount>,
    /// Extra rounds of the rows where another allocator was more than 10%
    /// faster than the first (`--confirm-gaps`): the first allocator and
    /// that one only, numbered after the table's repetitions. Kept apart
    /// from `samples`, so the table's figures are those of the interleaved
    /// repetitions alone.
    #[serde(default)]
    pub confirm: Vec<Sample>,
}

impl Report {
    /// Writes the report as pretty JSON.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }

    /// Reads a report written by [`Report::save`].
    pub fn load(path: &Path) -> std::io::Result<Report> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// The route of allocator `name`, if it took part.
    pub fn route_of(&self, name: &str) -> Option<Route> {
        self.allocators.iter().find(|a| a.name == name).map(|a| a.route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let mut o = Outcome::per_second(10, 1.0, "ops/s");
        o.bench = "larson".into();
        let r = Report {
            meta: Meta {
                oxbench: "0.1.0".into(),
                cores: 2,
                scale: 0.5,
                reps: 3,
                baseline: "mimalloc".into(),
                ..Meta::default()
            },
            allocators: vec![AllocInfo {
                name: "glibc".into(),
                route: Route::GlobalAllocator,
                detail: "System".into(),
            }],
            skipped: vec![Skipped {
                name: "rallocator".into(),
                reason: "x".into(),
            }],
            samples: vec![Sample {
                alloc: "glibc".into(),
                bench: "larson".into(),
                threads: 2,
                rep: 0,
                ok: true,
                error: None,
                wall_s: 1.25,
                user_s: 2.0,
                sys_s: 0.1,
                max_rss_kib: 1234,
                outcome: Some(o),
                command: "w run larson 2 0.5".into(),
            }],
            instructions: vec![InstrCount {
                alloc: "glibc".into(),
                via: "GlobalAlloc".into(),
                per_pair: 153.0,
                bytes: 32,
            }],
            confirm: Vec::new(),
        };
        let rerun = Sample {
            rep: 3,
            wall_s: 1.5,
            ..r.samples[0].clone()
        };
        let r = Report {
            confirm: vec![rerun],
            ..r
        };
        let dir = std::env::temp_dir().join(format!("oxbench-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        r.save(&path).unwrap();
        let back = Report::load(&path).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.route_of("glibc"), Some(Route::GlobalAllocator));
        // A report written before `confirm` existed still reads.
        let mut old: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        old.as_object_mut()
            .unwrap()
            .remove("confirm")
            .expect("the field was written");
        let earlier: Report = serde_json::from_value(old).unwrap();
        assert!(earlier.confirm.is_empty());
        assert_eq!(earlier.samples, r.samples);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
