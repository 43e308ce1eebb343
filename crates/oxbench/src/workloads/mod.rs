//! The synthetic workloads of WORKLOADS.md, one per file.
//!
//! Each takes [`Params`] (thread count, scale, seed, fault injection), runs
//! in the calling process through the global allocator, checks its data and
//! returns an [`Outcome`] or the first [`Corruption`] it found. Scale 1.0 is
//! sized for about 0.5–3 s with glibc on a 2-core machine.

use crate::check::Corruption;
use crate::outcome::Outcome;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod alloc_test;
mod cache_false_sharing;
mod glibc_simple;
mod glibc_thread;
mod larson;
mod latency;
mod malloc_large;
mod mleak;
mod mstress;
mod realloc_growth;
mod rptest;
mod sh_fifo_lifo;
mod xmalloc;

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Thread count (see each workload for how many threads it starts).
    pub threads: usize,
    /// Work multiplier; 1.0 is the default size.
    pub scale: f64,
    /// Random seed.
    pub seed: u64,
    /// Armed: the workload corrupts one live block before checking it, to
    /// prove the check catches it.
    pub fault: Fault,
}

impl Params {
    /// Parameters with a fixed seed and no fault.
    pub fn new(threads: usize, scale: f64) -> Self {
        Params {
            threads: threads.max(1),
            scale,
            seed: 0x0B_BE4C,
            fault: Fault::default(),
        }
    }

    /// `base` scaled, at least `min`.
    pub fn scaled(&self, base: f64, min: u64) -> u64 {
        ((base * self.scale) as u64).max(min)
    }

    /// A duration of `base_s` seconds scaled.
    pub fn scaled_secs(&self, base_s: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64((base_s * self.scale).max(0.002))
    }
}

/// One-shot fault injection shared by all threads of a run.
#[derive(Clone, Debug, Default)]
pub struct Fault(Arc<AtomicBool>);

impl Fault {
    /// A fault that fires once.
    pub fn armed() -> Self {
        Fault(Arc::new(AtomicBool::new(true)))
    }

    /// If armed (first call only), flips the first byte of `bytes`, which
    /// every pattern check covers.
    #[inline]
    pub fn strike(&self, bytes: &mut [u8]) {
        if !bytes.is_empty() && self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed) {
            bytes[0] ^= 0x5A;
        }
    }
}

/// What the report ranks a workload by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Wall time of the run (lower is better).
    Time,
    /// The workload's throughput figure (higher is better); runs for a fixed
    /// time or its work is measured per CPU second.
    Throughput,
    /// The 99th percentile of the `request` latency (lower is better).
    Latency,
}

/// Which thread counts a workload runs at by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Always one thread.
    Single,
    /// N (the cores), or the `--threads` list.
    Many,
    /// 1 and N, or the `--threads` list.
    OneAndMany,
}

/// A workload: name, description and entry point.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Name used on the command line.
    pub name: &'static str,
    /// One line for `oxbench list`.
    pub summary: &'static str,
    /// Primary metric.
    pub metric: Metric,
    /// Default thread counts.
    pub threads: Threads,
    /// Runs it.
    pub run: fn(&Params) -> Result<Outcome, Corruption>,
}

impl Workload {
    /// Thread counts to run, from the user's list (if any) and the core count.
    pub fn thread_counts(&self, requested: Option<&[usize]>, cores: usize) -> Vec<usize> {
        match (self.threads, requested) {
            (Threads::Single, _) => vec![1],
            (_, Some(list)) => list.to_vec(),
            (Threads::Many, None) => vec![cores],
            (Threads::OneAndMany, None) if cores > 1 => vec![1, cores],
            (Threads::OneAndMany, None) => vec![1],
        }
    }
}

/// Checks and frees a self-describing block (see
/// [`check::fill_tagged`](crate::check::fill_tagged)) taken out of a shared
/// pointer slot; null is an empty slot. `ptr` must be null or such a block,
/// 8-byte aligned, owned by the caller, as every slot of the workloads'
/// shared arrays is.
fn free_tagged(workload: &str, p: &Params, ptr: *mut u8, max_size: usize) -> Result<(), Corruption> {
    if let Some(b) = take_tagged(workload, p, ptr, max_size)? {
        b.free();
    }
    Ok(())
}

/// As [`free_tagged`], but hands the checked block back for the caller to
/// free (e.g. to time the free); `None` for an empty slot. Same contract.
fn take_tagged(
    workload: &str,
    p: &Params,
    ptr: *mut u8,
    max_size: usize,
) -> Result<Option<crate::raw::Block>, Corruption> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: a self-describing block has at least 8 bytes (contract above).
    let size = unsafe { crate::check::tagged_size(workload, ptr, max_size)? };
    // SAFETY: the header check confirmed the size the block was made with;
    // the caller owns it.
    let mut b = unsafe { crate::raw::Block::from_raw(ptr, size, 8) };
    p.fault.strike(b.bytes_mut());
    crate::check::verify_tagged(workload, b.bytes())?;
    Ok(Some(b))
}

/// Runs `f(tid)` for `tid` in `0..n` on scoped threads; returns the results
/// in thread order, or the first error once every thread has finished.
pub fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> Result<T, Corruption> + Sync) -> Result<Vec<T>, Corruption> {
    let results: Vec<Result<T, Corruption>> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|tid| s.spawn(move || f(tid))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("workload thread panicked"))
            .collect()
    });
    results.into_iter().collect()
}

/// Every workload, in report order.
pub fn all() -> &'static [Workload] {
    use Metric::*;
    use Threads::*;
    const ALL: &[Workload] = &[
        Workload { name: "larson", summary: "server simulation: random replace in 5,000 slots of 8-1000 B, arrays inherited by new threads (fixed time)", metric: Throughput, threads: Many, run: larson::run },
        Workload { name: "larson-sized", summary: "larson freeing with the size (C sized free under LD_PRELOAD when the library has one)", metric: Throughput, threads: Many, run: larson::run_sized },
        Workload { name: "xmalloc", summary: "N producers hand batches of 4,096 64-B blocks to N consumers that free them (all frees remote)", metric: Throughput, threads: Many, run: xmalloc::run },
        Workload { name: "mstress", summary: "stress with cross-thread transfer through a shared atomic array, threads recreated each round", metric: Time, threads: Many, run: mstress::run },
        Workload { name: "rptest", summary: "random 8-16,000 B (falling density), calloc/aligned, batches freed by another thread", metric: Throughput, threads: Many, run: rptest::run },
        Workload { name: "alloc-test", summary: "2^18 slots, 80/20 slot choice, 9-1024 B halving per doubling, fully written and read", metric: Time, threads: OneAndMany, run: alloc_test::run },
        Workload { name: "cache-scratch", summary: "passive false sharing: freed neighbour blocks handed to other threads", metric: Time, threads: OneAndMany, run: cache_false_sharing::run_scratch },
        Workload { name: "cache-thrash", summary: "active false sharing: small blocks allocated and written concurrently", metric: Time, threads: OneAndMany, run: cache_false_sharing::run_thrash },
        Workload { name: "glibc-simple", summary: "batches of 25-1,600 blocks of 16/32/64 B, half freed FIFO, half LIFO (1 thread)", metric: Time, threads: Single, run: glibc_simple::run },
        Workload { name: "glibc-thread", summary: "1,024-slot working set per thread, 4-32,768 B power law, every byte written (fixed time)", metric: Throughput, threads: Many, run: glibc_thread::run },
        Workload { name: "malloc-large", summary: "replace one of 20 live zeroed buffers of 5-25 MiB (1 thread)", metric: Time, threads: Single, run: malloc_large::run },
        Workload { name: "mleak", summary: "thread churn: rounds of 10 short threads each swapping one 128-B calloc block into a shared array", metric: Time, threads: Single, run: mleak::run },
        Workload { name: "sh-fifo-lifo", summary: "2N threads fill pointer buffers (1-1,000 B ladder), free FIFO bottom and LIFO top, keep 1/5", metric: Time, threads: Many, run: sh_fifo_lifo::run },
        Workload { name: "sh-fifo-lifo2", summary: "sh-fifo-lifo plus a main thread allocating 8-B blocks that the workers free", metric: Time, threads: Many, run: sh_fifo_lifo::run_with_producer },
        Workload { name: "latency", summary: "open-loop request load, bursts of 8 B-64 KiB; malloc/free/request latency percentiles", metric: Latency, threads: Many, run: latency::run },
        Workload { name: "realloc-growth", summary: "vectors grown by realloc x1.5 from 16 B to 64 MiB and shrunk back; strings grown and shrunk by small steps", metric: Time, threads: Single, run: realloc_growth::run },
    ];
    ALL
}

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    all().iter().find(|w| w.name == name)
}

/// Runs `name` and fills in the common fields of its outcome.
pub fn run(name: &str, p: &Params, worker: &str) -> Result<Outcome, Corruption> {
    let w = find(name).ok_or_else(|| Corruption::new(name, "no such workload"))?;
    let mut o = (w.run)(p)?;
    o.bench = name.to_string();
    o.worker = worker.to_string();
    o.threads = p.threads;
    o.scale = p.scale;
    Ok(o)
}
