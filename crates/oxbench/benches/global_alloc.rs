//! GlobalAlloc implementations side by side in one process (memchr-style):
//! each allocator is called through its `GlobalAlloc` methods directly, as an
//! instance, not as the process's global allocator (the harness itself runs
//! on the system allocator).
//!
//! `cargo bench -p oxbench` (add `-- pairs` etc. to filter).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A `GlobalAlloc` that can be shared with another thread.
trait Alloc: GlobalAlloc + Sync + 'static {}
impl<T: GlobalAlloc + Sync + 'static> Alloc for T {}

static OXMALLOC: oxmalloc::OxMalloc = oxmalloc::OxMalloc;
static SYSTEM: System = System;
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;
static RPMALLOC: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

fn allocators() -> Vec<(&'static str, &'static dyn AllocDyn)> {
    vec![
        ("oxmalloc", &OXMALLOC),
        ("system", &SYSTEM),
        ("mimalloc", &MIMALLOC),
        ("jemalloc", &JEMALLOC),
        ("snmalloc", &SNMALLOC),
        ("rpmalloc", &RPMALLOC),
    ]
}

/// Object-safe view of `GlobalAlloc` (its methods are already object safe;
/// this only adds `Sync` for the cross-thread case).
trait AllocDyn: Sync {
    /// # Safety
    /// As `GlobalAlloc::alloc`.
    unsafe fn alloc(&self, l: Layout) -> *mut u8;
    /// # Safety
    /// As `GlobalAlloc::dealloc`.
    unsafe fn dealloc(&self, p: *mut u8, l: Layout);
}

impl<T: Alloc> AllocDyn for T {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { GlobalAlloc::alloc(self, l) }
    }
    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { GlobalAlloc::dealloc(self, p, l) }
    }
}

fn alloc_checked(a: &dyn AllocDyn, l: Layout) -> *mut u8 {
    // SAFETY: every layout used here has a non-zero size.
    let p = unsafe { a.alloc(l) };
    assert!(!p.is_null(), "allocation failed");
    p
}

fn pairs(c: &mut Criterion) {
    let mut g = c.benchmark_group("pairs");
    for size in [16usize, 64, 512, 4096] {
        let l = Layout::from_size_align(size, 8).unwrap();
        for (name, a) in allocators() {
            g.bench_with_input(BenchmarkId::new(name, size), &l, |b, &l| {
                b.iter(|| {
                    let p = alloc_checked(a, black_box(l));
                    // SAFETY: `p` was just allocated with `l`.
                    unsafe { a.dealloc(black_box(p), l) };
                })
            });
        }
    }
    g.finish();
}

const BATCH: usize = 100;

fn batches(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch100");
    g.throughput(Throughput::Elements(BATCH as u64));
    let l = Layout::from_size_align(64, 8).unwrap();
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            let mut ptrs = Vec::with_capacity(BATCH);
            b.iter(|| {
                for _ in 0..BATCH {
                    ptrs.push(alloc_checked(a, l));
                }
                for p in ptrs.drain(..).rev() {
                    // SAFETY: allocated above with `l`, freed once.
                    unsafe { a.dealloc(black_box(p), l) };
                }
            })
        });
    }
    g.finish();
}

/// Blocks allocated on the benchmark thread, freed on another thread.
fn cross_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_free");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    let l = Layout::from_size_align(64, 8).unwrap();
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (tx, rx) = mpsc::sync_channel::<Vec<usize>>(64);
                let start = Instant::now();
                thread::scope(|s| {
                    s.spawn(move || {
                        for batch in rx {
                            for p in batch {
                                // SAFETY: allocated with `l` by the sender, freed once.
                                unsafe { a.dealloc(p as *mut u8, l) };
                            }
                        }
                    });
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(256);
                        let batch: Vec<usize> = (0..n).map(|_| alloc_checked(a, l) as usize).collect();
                        tx.send(batch).unwrap();
                        left -= n;
                    }
                    drop(tx);
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pairs, batches, cross_thread);
criterion_main!(benches);
