//! Instructions per malloc+free pair, counted by `valgrind --tool=callgrind`
//! (deterministic, unlike time on a noisy machine).
//!
//! Each measurement runs the same program twice, with `N1` and `N2` pairs of
//! alloc/free of one size (32 bytes unless asked: `oxbench callgrind
//! --bytes`), and divides the difference of the instruction totals by
//! `N2 - N1`, which cancels start-up and exit costs.
//! - through `GlobalAlloc`: the worker's `pairs N BYTES` mode (for `LD_PRELOAD`
//!   allocators the glibc worker, so `System` → malloc → the library);
//! - through the C ABI: a tiny C program compiled with `cc` at run time,
//!   plain (glibc) or with the library preloaded;
//! - through `GlobalAlloc` methods called on the allocator value, every
//!   `#[global_allocator]` crate linked into one program (`oxbench-pairs`),
//!   with the layout opaque (as `__rust_alloc` sees it) and constant (as
//!   `Box::new` of a known type compiles; 32 bytes only): the side-by-side
//!   comparison of the fast paths themselves.

use crate::allocs::Allocator;
use crate::sample::{InstrCount, Route, Skipped};
use crate::worker::DEFAULT_PAIR_BYTES;
use std::path::{Path, PathBuf};
use std::process::Command;

const C_PROGRAM: &str = r#"
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    size_t bytes = argc > 2 ? (size_t)atol(argv[2]) : 32;
    for (long i = 0; i < n; i++) {
        void *volatile p = malloc(bytes);
        free(p);
    }
    return 0;
}
"#;

/// Whether valgrind can be run.
pub fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Parses the instruction total of a callgrind output file.
pub fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn instructions(program: &Path, args: &[String], alloc: Option<&Allocator>, out: &Path) -> Result<u64, String> {
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(program)
        .args(args);
    if let Some(a) = alloc {
        a.set_on(&mut cmd);
    }
    let o = cmd.output().map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        // The program's own words, not valgrind's (`==pid==` lines).
        let mut tail: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("==") && !l.trim().is_empty())
            .rev()
            .take(2)
            .collect();
        tail.reverse();
        return Err(format!("{} under callgrind: {}", o.status, tail.join(" | ")));
    }
    let text = std::fs::read_to_string(out).map_err(|e| format!("no callgrind output: {e}"))?;
    let _ = std::fs::remove_file(out);
    parse_total(&text).ok_or_else(|| "no totals in the callgrind output".into())
}

fn per_pair(
    program: &Path,
    args_for: impl Fn(u64) -> Vec<String>,
    alloc: Option<&Allocator>,
    dir: &Path,
    pairs: u64,
) -> Result<f64, String> {
    let n1 = pairs / 10;
    let a = instructions(program, &args_for(n1), alloc, &dir.join("cg.small"))?;
    let b = instructions(program, &args_for(pairs), alloc, &dir.join("cg.large"))?;
    Ok(b.saturating_sub(a) as f64 / (pairs - n1) as f64)
}

fn compile_c(dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join("pairs.c");
    let exe = dir.join("pairs");
    std::fs::write(&src, C_PROGRAM).map_err(|e| e.to_string())?;
    let st = Command::new("cc")
        .args(["-O2", "-fno-builtin", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if st.success() {
        Ok(exe)
    } else {
        Err(format!("cc failed: {st}"))
    }
}

/// Keeps a measured count, or why it could not be measured (`what` names
/// the measurement in the skipped list).
fn record(
    counts: &mut Vec<InstrCount>,
    skipped: &mut Vec<Skipped>,
    measured: Result<f64, String>,
    alloc: &str,
    via: String,
    what: String,
    bytes: usize,
) {
    match measured {
        Ok(per_pair) => counts.push(InstrCount {
            alloc: alloc.to_string(),
            via,
            per_pair,
            bytes,
        }),
        Err(reason) => skipped.push(Skipped { name: what, reason }),
    }
}

/// Counts instructions per pair of `bytes`-byte allocations for each
/// allocator, through `GlobalAlloc` and (for glibc and preloaded libraries)
/// through the C ABI. Returns the counts and what could not be measured.
pub fn run(
    allocs: &[Allocator],
    dir: &Path,
    pairs: u64,
    bytes: usize,
    mut progress: impl FnMut(&str),
) -> (Vec<InstrCount>, Vec<Skipped>) {
    let mut counts = Vec::new();
    let mut skipped = Vec::new();
    if !valgrind_available() {
        skipped.push(Skipped {
            name: "callgrind".into(),
            reason: "valgrind is not installed (Debian: apt-get install valgrind)".into(),
        });
        return (counts, skipped);
    }
    let pairs = pairs.max(100);
    let c_exe = compile_c(dir);
    if let Err(e) = &c_exe {
        skipped.push(Skipped {
            name: "callgrind C ABI".into(),
            reason: e.clone(),
        });
    }
    for a in allocs {
        progress(&a.name);
        let via = match a.route {
            Route::GlobalAllocator => "GlobalAlloc",
            Route::LdPreload => "GlobalAlloc (System -> LD_PRELOAD)",
        };
        let args = |n: u64| vec!["pairs".into(), n.to_string(), bytes.to_string()];
        let measured = per_pair(&a.worker, args, Some(a), dir, pairs);
        record(
            &mut counts,
            &mut skipped,
            measured,
            &a.name,
            via.into(),
            format!("callgrind {}", a.name),
            bytes,
        );
        let c_abi = a.route == Route::LdPreload || a.of == "glibc";
        if let (true, Ok(exe)) = (c_abi, &c_exe) {
            let measured = per_pair(exe, |n| vec![n.to_string(), bytes.to_string()], Some(a), dir, pairs);
            record(
                &mut counts,
                &mut skipped,
                measured,
                &a.name,
                "C ABI".into(),
                format!("callgrind {} (C ABI)", a.name),
                bytes,
            );
        }
    }
    (counts, skipped)
}

/// The allocators `oxbench-pairs` links in, by their names in `oxbench list`
/// (`glibc` is `std::alloc::System` there).
pub const ONE_PROGRAM: &[(&str, &str)] = &[
    ("oxmalloc", "oxmalloc"),
    ("mimalloc", "mimalloc"),
    ("jemalloc", "jemalloc"),
    ("snmalloc", "snmalloc"),
    ("rpmalloc", "rpmalloc"),
    ("glibc", "system"),
];

/// Counts instructions per pair of `bytes`-byte allocations through
/// `GlobalAlloc` called on each allocator value inside one program
/// (`pairs_bin`, `oxbench-pairs`), with an opaque layout and, at 32 bytes,
/// a constant one, for the allocators of `names` that the program links in.
pub fn run_one_program(
    pairs_bin: &Path,
    names: &[String],
    dir: &Path,
    pairs: u64,
    bytes: usize,
    mut progress: impl FnMut(&str),
) -> (Vec<InstrCount>, Vec<Skipped>) {
    let mut counts = Vec::new();
    let mut skipped = Vec::new();
    if !valgrind_available() {
        return (counts, skipped);
    }
    if !pairs_bin.exists() {
        skipped.push(Skipped {
            name: "callgrind one program".into(),
            reason: format!(
                "{} is not built (cargo build --release -p oxbench --bins)",
                pairs_bin.display()
            ),
        });
        return (counts, skipped);
    }
    let pairs = pairs.max(100);
    for (name, inside) in ONE_PROGRAM.iter().filter(|(n, _)| names.iter().any(|m| m == n)) {
        progress(&format!("{name} (one program)"));
        let modes: &[&str] = if bytes == DEFAULT_PAIR_BYTES {
            &["opaque", "constant"]
        } else {
            &["opaque"]
        };
        for mode in modes {
            let args = |n: u64| vec![inside.to_string(), mode.to_string(), n.to_string(), bytes.to_string()];
            record(
                &mut counts,
                &mut skipped,
                per_pair(pairs_bin, args, None, dir, pairs),
                name,
                format!("GlobalAlloc value, {mode} layout"),
                format!("callgrind {name} (one program, {mode})"),
                bytes,
            );
        }
    }
    (counts, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_totals() {
        let text = "version: 1\nevents: Ir\nfl=x\n0 5\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(parse_total(text), Some(123456));
        assert_eq!(parse_total("events: Ir\n"), None);
    }
}
