//! Entry point of the worker binaries (`src/bin/worker_*.rs`).
//!
//! Usage (the runner builds these command lines):
//!
//! ```text
//! oxbench-worker-NAME run BENCH THREADS SCALE [--seed N] [--inject-fault]
//! oxbench-worker-NAME pairs COUNT        # COUNT 32-byte alloc/dealloc pairs (callgrind)
//! oxbench-worker-NAME list
//! ```
//!
//! `run` prints one `OXBENCH-RESULT {json}` line (see [`crate::outcome`]) and
//! exits 0; a data check that fails prints `DATA CORRUPTION ...` on standard
//! error and exits with status 3; bad arguments exit with status 2.

use crate::workloads::{self, Params};
use std::alloc::Layout;
use std::hint::black_box;
use std::process::exit;

/// Exit status of a worker whose data check failed.
pub const EXIT_CORRUPTION: i32 = 3;

/// The size of `pairs` mode's blocks unless asked otherwise: the size of the
/// fast-path figures (`oxbench callgrind`), and the only one the constant
/// layout of `oxbench-pairs` is compiled for. It lives here, outside the `cli`
/// feature, because the worker needs it and the mimalloc-v2 worker builds
/// this library without that feature.
pub const DEFAULT_PAIR_BYTES: usize = 32;

/// Runs the worker command line with the allocator called `alloc_name`.
/// With `c_sized_free`, `larson-sized` frees through the C library's sized
/// free when one is exported (the glibc / LD_PRELOAD worker).
pub fn main(alloc_name: &str, c_sized_free: bool) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!(
            "usage: oxbench-worker-{alloc_name} run BENCH THREADS SCALE [--seed N] [--inject-fault]\n       oxbench-worker-{alloc_name} pairs COUNT [BYTES]\n       oxbench-worker-{alloc_name} list"
        );
        exit(2)
    };
    match args.first().map(String::as_str) {
        Some("list") => {
            for w in workloads::all() {
                println!("{}", w.name);
            }
            exit(0)
        }
        Some("pairs") => {
            let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
            let bytes: usize = match args.get(2) {
                None => DEFAULT_PAIR_BYTES,
                Some(s) => s.parse().ok().filter(|&b| b > 0).unwrap_or_else(|| usage()),
            };
            alloc_pairs(n, bytes);
            exit(0)
        }
        Some("run") if args.len() >= 4 => {
            let bench = &args[1];
            let threads: usize = args[2].parse().unwrap_or_else(|_| usage());
            let scale: f64 = args[3].parse().unwrap_or_else(|_| usage());
            let mut p = Params::new(threads, scale);
            let mut rest = args[4..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--inject-fault" => p.fault = workloads::Fault::armed(),
                    "--seed" => p.seed = rest.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()),
                    _ => usage(),
                }
            }
            if workloads::find(bench).is_none() {
                eprintln!("oxbench-worker-{alloc_name}: unknown workload {bench:?}");
                exit(2)
            }
            if c_sized_free {
                crate::raw::install_c_sized_free();
            }
            match workloads::run(bench, &p, alloc_name) {
                Ok(mut o) => {
                    o.peak_rss_kib = crate::outcome::own_peak_rss_kib();
                    println!("{}", o.to_line());
                    exit(0)
                }
                Err(e) => {
                    eprintln!("oxbench-worker-{alloc_name}: {e}");
                    exit(EXIT_CORRUPTION)
                }
            }
        }
        _ => usage(),
    }
}

/// `n` pairs of alloc/dealloc of `bytes` bytes (non-zero) through the
/// global allocator, for counting instructions per pair under callgrind.
#[inline(never)]
pub fn alloc_pairs(n: u64, bytes: usize) {
    let layout = Layout::from_size_align(bytes, 8).expect("layout");
    for _ in 0..n {
        // SAFETY: the layout has a non-zero size; the block is freed with it.
        unsafe {
            let p = std::alloc::alloc(black_box(layout));
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            std::alloc::dealloc(black_box(p), layout);
        }
    }
}
