//! Statistics: what oxmalloc holds, per size class and in total, and what it
//! took from the OS.
//!
//! * Each heap counts, per class, its own allocations and the frees its
//!   thread performs, with plain (relaxed load + store) updates of atomics
//!   it alone writes. The fast paths write no heap counter: a page counts
//!   its local frees (`pending_frees`, one `inc` on a line the free writes
//!   anyway) and its allocations without any instruction of their own, by
//!   the change of `used` (`Page::alloc_mark`); the heap takes both into
//!   its counters on slow paths (refills, collection, retiring, thread
//!   exit) and before each report. Remote frees are counted by the freeing
//!   heap (a thread's first free gives it a heap, as its first allocation
//!   would): at once, or, for those it holds back in a chain
//!   (`held_frees.rs`), when the chain goes out (at most one chain of 64
//!   blocks waits so; a snapshot sends the reader's first). Frees by
//!   threads without a heap (exiting) go to shared atomic counters. A
//!   block allocated on one thread and freed on another is counted once
//!   on each side, so sums over all heaps are exact.
//! * Reading (`snapshot`) sums every heap ever made (they are never
//!   unmapped) plus the counters of exited threads: exact for what the
//!   reader's thread did (its heaps take the counts of all their pages
//!   first), and for other threads their counts as their pages last gave
//!   them (a page gives its counts when it is refilled, collected, retired
//!   or abandoned, and the current page of each class every 64 slow paths):
//!   allocations at most a page per class behind, local frees into pages
//!   not touched since possibly longer, until the thread exits.
//! * Peaks cannot be tracked on every free without shared writes; they are
//!   sampled on slow paths (when a heap refills a class whose live bytes
//!   moved by [`REPORT_BYTES`] since its last report, and every 64 refills
//!   for all classes), every 64 remote frees of a class (see
//!   [`remote_free`]: a thread that only frees has no slow path), and at
//!   every snapshot for the reader's own thread. So a peak may miss a short
//!   excursion of less than a page or `REPORT_BYTES` per class and thread,
//!   or exceed the truth by as much (blocks whose allocation was reported
//!   before their free on another thread). (Reporting on every refill cost
//!   six shared atomic operations each time, measured at 1.2-1.6% of
//!   larson and rptest.)
//! * Memory moving between oxmalloc and the OS is counted with shared
//!   atomics on the (slow) paths that move it.
//! * Bytes of class blocks are counted at the class size, including the
//!   blocks of pages whose blocks are smaller (request-sized blocks,
//!   `Heap::page_block_size`): those pages are not told apart here, so
//!   the byte figures of such a class may exceed the blocks' usable bytes
//!   by the class's rounding (at most 1/8 up to 1 KiB, 1/16 from 256 B,
//!   under 1/4 above).

use crate::heap::{for_each_heap_counters, Heap};
use crate::os::{Os, Platform};
use crate::size_class::{Class, CLASS_COUNT, CLASS_SIZE};
use crate::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use crate::util::Line;
use crate::{abandon, arena, options, purge};
use core::cell::Cell;
use core::fmt;

/// Adds `n` to a counter that only the calling thread writes; returns the
/// new value.
#[inline(always)]
pub fn add(counter: &AtomicU64, n: u64) -> u64 {
    let value = counter.load(Ordering::Relaxed).wrapping_add(n);
    counter.store(value, Ordering::Relaxed);
    value
}

/// Adds one to a counter that only the calling thread writes (one `inc`);
/// returns the new value.
#[inline(always)]
pub fn bump(counter: &AtomicU64) -> u64 {
    add(counter, 1)
}

/// The counters of one heap. Only the heap's thread writes them; `snapshot`
/// reads them from any thread.
pub struct HeapCounters {
    /// Allocations of class blocks, by class (taken from the pages).
    pub allocs: [AtomicU64; CLASS_COUNT],
    /// Frees of class blocks performed by this heap's thread, by class.
    pub frees: [AtomicU64; CLASS_COUNT],
    /// Class pages taken from and given back to the arena.
    pub pages_allocated: AtomicU64,
    /// See `pages_allocated`.
    pub pages_freed: AtomicU64,
    /// Live blocks per class last added to the shared peak gauges (owner only).
    reported: [Cell<i64>; CLASS_COUNT],
}

impl HeapCounters {
    /// Zeroed counters.
    pub const fn new() -> Self {
        HeapCounters {
            allocs: [const { AtomicU64::new(0) }; CLASS_COUNT],
            frees: [const { AtomicU64::new(0) }; CLASS_COUNT],
            pages_allocated: AtomicU64::new(0),
            pages_freed: AtomicU64::new(0),
            reported: [const { Cell::new(0) }; CLASS_COUNT],
        }
    }

    /// Allocations of `class` counted here.
    fn allocs_of(&self, class: Class) -> u64 {
        self.allocs[class].load(Ordering::Relaxed)
    }

    /// Live blocks of `class` by this heap's count (negative when its
    /// thread freed more blocks of other threads than it allocated).
    fn live_of(&self, class: Class) -> i64 {
        self.allocs_of(class)
            .wrapping_sub(self.frees[class].load(Ordering::Relaxed)) as i64
    }
}

impl Default for HeapCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// A gauge with its peak and a running total of increases.
pub struct Gauge {
    current: AtomicI64,
    peak: AtomicI64,
    total: AtomicU64,
}

impl Gauge {
    const fn new() -> Self {
        Gauge {
            current: AtomicI64::new(0),
            peak: AtomicI64::new(0),
            total: AtomicU64::new(0),
        }
    }

    fn add(&self, n: usize) {
        let now = self.current.fetch_add(n as i64, Ordering::Relaxed) + n as i64;
        self.peak.fetch_max(now, Ordering::Relaxed);
        self.total.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.current.fetch_sub(n as i64, Ordering::Relaxed);
    }

    /// Current value, peak, and total of increases.
    pub fn read(&self) -> GaugeValue {
        GaugeValue {
            current: self.current.load(Ordering::Relaxed).max(0) as u64,
            peak: self.peak.load(Ordering::Relaxed).max(0) as u64,
            total: self.total.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a gauge: value now, highest value seen, sum of increases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaugeValue {
    /// Value now.
    pub current: u64,
    /// Highest value seen.
    pub peak: u64,
    /// Sum of all increases.
    pub total: u64,
}

// Memory from the OS.
static MAPPED: Gauge = Gauge::new();
static SPANS: Gauge = Gauge::new();
static HUGE: Gauge = Gauge::new();
static THREADS: Gauge = Gauge::new();
static PURGED: AtomicU64 = AtomicU64::new(0);
static PURGE_CALLS: AtomicU64 = AtomicU64::new(0);
static MMAP_CALLS: AtomicU64 = AtomicU64::new(0);
static MUNMAP_CALLS: AtomicU64 = AtomicU64::new(0);
static ABANDONED: AtomicU64 = AtomicU64::new(0);
static RECLAIMED: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);

// Blocks.
static BIG_BYTES: Gauge = Gauge::new();
static BIG_BLOCKS: Gauge = Gauge::new();
/// Counters of heaps that went back to the pool.
static EXITED_ALLOCS: [AtomicU64; CLASS_COUNT] = [const { AtomicU64::new(0) }; CLASS_COUNT];
static EXITED_FREES: [AtomicU64; CLASS_COUNT] = [const { AtomicU64::new(0) }; CLASS_COUNT];
static EXITED_PAGES: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
/// Frees by threads that have no heap.
static UNOWNED_FREES: [AtomicU64; CLASS_COUNT] = [const { AtomicU64::new(0) }; CLASS_COUNT];
/// Sampled live blocks per class and their peaks (see the module notes).
/// Invariant: `CLASS_LIVE[c]` is the sum over heaps of their
/// `reported[c]`, less the frees of class `c` by threads without a heap
/// (`CLASS_BLOCKS_LIVE` and `CLASS_BYTES_LIVE` likewise over all classes).
static CLASS_LIVE: [AtomicI64; CLASS_COUNT] = [const { AtomicI64::new(0) }; CLASS_COUNT];
static CLASS_PEAK: [AtomicI64; CLASS_COUNT] = [const { AtomicI64::new(0) }; CLASS_COUNT];
static CLASS_BYTES_LIVE: AtomicI64 = AtomicI64::new(0);
static CLASS_BYTES_PEAK: AtomicI64 = AtomicI64::new(0);
static CLASS_BLOCKS_LIVE: AtomicI64 = AtomicI64::new(0);
static CLASS_BLOCKS_PEAK: AtomicI64 = AtomicI64::new(0);

/// Counts a free of a class block by a thread that has no heap (it is
/// exiting, or no heap could be made for it: a thread's first free gives it
/// one otherwise). No heap will ever report it, so it leaves the live gauges
/// here at once.
#[cold]
pub fn unowned_free(class: Class) {
    UNOWNED_FREES[class].fetch_add(1, Ordering::Relaxed);
    move_live(class, -1);
}

/// Counts a free of another thread's class block by `heap`'s own thread
/// (its default heap), and every [`REMOTE_REPORT_EVERY`] frees of the class
/// lets the class report. A thread that only frees blocks made elsewhere
/// (the consumer of a producer/consumer pair) takes no slow path that
/// would report, so without this its frees stayed out of the live gauges
/// until it exited, while the producer reported every block it made: the
/// sampled peak then grew with everything ever allocated (xmalloc read
/// 888 MiB against a true peak near 30 MiB).
#[inline]
pub fn remote_free(heap: &Heap, class: Class) {
    remote_frees(heap, class, 1);
}

/// [`remote_free`] for `count` blocks at once (a held chain going out,
/// `held_frees.rs`): reports when the count passes a multiple of
/// [`REMOTE_REPORT_EVERY`].
#[inline]
pub fn remote_frees(heap: &Heap, class: Class, count: usize) {
    let after = add(&heap.counters.frees[class], count as u64);
    let before = after.wrapping_sub(count as u64);
    if before / REMOTE_REPORT_EVERY != after / REMOTE_REPORT_EVERY {
        report_class(heap, class, false);
    }
}

/// See [`remote_free`]: a multiple of the frees that a report needs in the
/// largest classes, a fraction of those it needs in the small ones.
const REMOTE_REPORT_EVERY: u64 = 64;

/// How far a class's live bytes may drift in a heap before a refill
/// reports them (see the module notes).
pub const REPORT_BYTES: i64 = 64 * 1024;

/// Adds what `heap` did to `class` since the last report to the shared
/// live gauges, and raises their peaks (slow path; owner only). Without
/// `force`, only when the class's live bytes moved by `REPORT_BYTES`.
pub fn report_class(heap: &Heap, class: Class, force: bool) {
    let counters = &heap.counters;
    let live = counters.live_of(class);
    let delta = live - counters.reported[class].get();
    if delta == 0 || (!force && delta.abs() * (CLASS_SIZE[class] as i64) < REPORT_BYTES) {
        return;
    }
    counters.reported[class].set(live);
    move_live(class, delta);
}

/// Moves the shared live gauges of `class` by `delta` blocks and, when they
/// grew, raises their peaks (a fall cannot make a new peak).
fn move_live(class: Class, delta: i64) {
    move_class_live(class, delta);
    move_total_live(delta * CLASS_SIZE[class] as i64, delta);
}

/// The per-class half of [`move_live`].
fn move_class_live(class: Class, delta: i64) {
    let class_now = CLASS_LIVE[class].fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 {
        CLASS_PEAK[class].fetch_max(class_now, Ordering::Relaxed);
    }
}

/// The all-classes half of [`move_live`]: `bytes` and `blocks` of change.
fn move_total_live(bytes: i64, blocks: i64) {
    let bytes_now = CLASS_BYTES_LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    let blocks_now = CLASS_BLOCKS_LIVE.fetch_add(blocks, Ordering::Relaxed) + blocks;
    if bytes > 0 {
        CLASS_BYTES_PEAK.fetch_max(bytes_now, Ordering::Relaxed);
    }
    if blocks > 0 {
        CLASS_BLOCKS_PEAK.fetch_max(blocks_now, Ordering::Relaxed);
    }
}

/// Takes the counts of the heap's current pages and reports every class
/// (every 64 slow paths, at each snapshot, and before a heap retires).
/// The totals over all classes move once, by the sum: they are lines every
/// thread writes, and rptest@8 spent 1.4% of its time in these atomics
/// when each class moved them on its own.
pub fn report_all(heap: &Heap) {
    heap.take_current_counts();
    let counters = &heap.counters;
    let (mut bytes, mut blocks) = (0, 0);
    for (class, &size) in CLASS_SIZE.iter().enumerate() {
        let live = counters.live_of(class);
        let delta = live - counters.reported[class].get();
        if delta != 0 {
            counters.reported[class].set(live);
            move_class_live(class, delta);
            bytes += delta * size as i64;
            blocks += delta;
        }
    }
    if bytes != 0 || blocks != 0 {
        move_total_live(bytes, blocks);
    }
}

/// Folds a heap's counters into the shared ones and zeroes them (the heap
/// goes back to the pool, or its thread exited).
///
/// Only the classes the heap counted in are written: threads that exit
/// together (mleak's rounds of ten) otherwise each added zeros to all
/// 2 x 88 shared words, contending for their lines (docs/PERFORMANCE.md E73).
pub fn retire_counters(counters: &HeapCounters) {
    for class in 0..CLASS_COUNT {
        let allocs = counters.allocs_of(class);
        if allocs != 0 {
            EXITED_ALLOCS[class].fetch_add(allocs, Ordering::Relaxed);
            counters.allocs[class].store(0, Ordering::Relaxed);
        }
        let frees = counters.frees[class].load(Ordering::Relaxed);
        if frees != 0 {
            EXITED_FREES[class].fetch_add(frees, Ordering::Relaxed);
            counters.frees[class].store(0, Ordering::Relaxed);
        }
        counters.reported[class].set(0);
    }
    EXITED_PAGES[0].fetch_add(counters.pages_allocated.swap(0, Ordering::Relaxed), Ordering::Relaxed);
    EXITED_PAGES[1].fetch_add(counters.pages_freed.swap(0, Ordering::Relaxed), Ordering::Relaxed);
}

/// Whether mapping `bytes` more stays under `OXMALLOC_LIMIT`.
#[inline]
pub fn may_map(bytes: usize) -> bool {
    let limit = options::limit();
    limit == 0 || MAPPED.current.load(Ordering::Relaxed) as usize + bytes <= limit
}

pub(crate) fn os_mapped(bytes: usize) {
    MAPPED.add(bytes);
    MMAP_CALLS.fetch_add(1, Ordering::Relaxed);
}
pub(crate) fn os_unmapped(bytes: usize) {
    MAPPED.sub(bytes);
    MUNMAP_CALLS.fetch_add(1, Ordering::Relaxed);
}
pub(crate) fn span_allocated(slices: usize) {
    SPANS.add(slices * crate::chunk::SLICE_SIZE);
}
pub(crate) fn span_freed(slices: usize) {
    SPANS.sub(slices * crate::chunk::SLICE_SIZE);
}
pub(crate) fn huge_allocated(bytes: usize) {
    HUGE.add(bytes);
}
pub(crate) fn huge_freed(bytes: usize) {
    HUGE.sub(bytes);
}
pub(crate) fn huge_resized(old: usize, new: usize) {
    if new > old {
        HUGE.add(new - old);
    } else {
        HUGE.sub(old - new);
    }
}
/// A large or huge block of `bytes` usable bytes was handed out.
pub(crate) fn big_allocated(bytes: usize) {
    BIG_BYTES.add(bytes);
    BIG_BLOCKS.add(1);
}
/// A large or huge block of `bytes` usable bytes was freed.
pub(crate) fn big_freed(bytes: usize) {
    BIG_BYTES.sub(bytes);
    BIG_BLOCKS.sub(1);
}
/// A large or huge block changed size in place.
pub(crate) fn big_resized(old: usize, new: usize) {
    if new > old {
        BIG_BYTES.add(new - old);
    } else {
        BIG_BYTES.sub(old - new);
    }
}
pub(crate) fn purged(bytes: usize) {
    PURGED.fetch_add(bytes as u64, Ordering::Relaxed);
    PURGE_CALLS.fetch_add(1, Ordering::Relaxed);
}
pub(crate) fn page_abandoned() {
    ABANDONED.fetch_add(1, Ordering::Relaxed);
}
pub(crate) fn page_reclaimed() {
    RECLAIMED.fetch_add(1, Ordering::Relaxed);
}
pub(crate) fn thread_started() {
    THREADS.add(1);
}
pub(crate) fn thread_ended() {
    THREADS.sub(1);
}
pub(crate) fn count_error() {
    ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Blocks of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Bytes in each block of the class.
    pub block_size: u64,
    /// Live blocks now, the (sampled) peak, and blocks ever allocated.
    pub blocks: GaugeValue,
}

/// Figures of the process, from `getrusage` and `/proc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Resident set size now, in bytes.
    pub rss: u64,
    /// Peak resident set size, in bytes.
    pub peak_rss: u64,
    /// Page faults served without I/O, and with.
    pub minor_faults: u64,
    /// See `minor_faults`.
    pub major_faults: u64,
    /// CPU time in user and system mode, in microseconds.
    pub user_us: u64,
    /// See `user_us`.
    pub system_us: u64,
}

/// A snapshot of oxmalloc's statistics.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Bytes in live blocks (usable sizes; class, large and huge).
    pub allocated: GaugeValue,
    /// Live blocks (class, large and huge).
    pub allocated_blocks: GaugeValue,
    /// Blocks of each size class.
    pub classes: [ClassStats; CLASS_COUNT],
    /// Large and huge blocks: bytes and count.
    pub big_bytes: GaugeValue,
    /// See `big_bytes`.
    pub big_blocks: GaugeValue,
    /// Address space reserved from the OS (chunks, huge blocks, metadata).
    pub reserved: GaugeValue,
    /// Memory that may be backed: slices handed out, free slices waiting
    /// for their purge, and huge blocks.
    pub committed: u64,
    /// Bytes of slices handed to pages and large blocks.
    pub spans: GaugeValue,
    /// Bytes in huge blocks.
    pub huge: GaugeValue,
    /// Free memory waiting for its purge.
    pub purge_pending: u64,
    /// Bytes given back to the OS, and the number of purge calls.
    pub purged_bytes: u64,
    /// See `purged_bytes`.
    pub purge_calls: u64,
    /// The purge delay now in effect, in milliseconds: `OXMALLOC_PURGE_DELAY`,
    /// doubled while purged memory is soon reused (`purge::delay_ms`).
    pub purge_delay_ms: u64,
    /// `mmap` and `munmap` calls.
    pub mmap_calls: u64,
    /// See `mmap_calls`.
    pub munmap_calls: u64,
    /// Class pages taken from and given back to the arena.
    pub pages_allocated: u64,
    /// See `pages_allocated`.
    pub pages_freed: u64,
    /// Pages abandoned by exiting threads (in all), reclaimed by others,
    /// and abandoned now.
    pub pages_abandoned: u64,
    /// See `pages_abandoned`.
    pub pages_reclaimed: u64,
    /// See `pages_abandoned`.
    pub pages_abandoned_now: u64,
    /// Regular chunks mapped now.
    pub chunks: u64,
    /// Threads with a heap.
    pub threads: GaugeValue,
    /// Heap errors detected.
    pub errors: u64,
    /// Whether the background purger thread runs.
    pub background_purger: bool,
    /// Figures of the whole process.
    pub process: ProcessStats,
}

/// Reads every counter (reporting the calling thread's own live counts
/// first, so that its peaks are exact at the time of the call; its free
/// cache goes back to its pages before, so that its cached blocks count as
/// free: `free_cache.rs`).
pub fn snapshot() -> Stats {
    if crate::tls::has_heap() {
        // SAFETY: the calling thread's own heap and its first-class heaps.
        unsafe {
            let heap = &*crate::tls::heap();
            crate::free::flush_free_cache(heap);
            // Its held remote frees are counted when they go out.
            heap.held.send(heap);
            heap.take_all_counts();
            report_all(heap);
            let mut first_class = heap.family.get();
            while !first_class.is_null() {
                (*first_class).take_all_counts();
                report_all(&*first_class);
                first_class = (*first_class).sibling_next.get();
            }
        }
    }
    let mut allocs = [0u64; CLASS_COUNT];
    let mut frees = [0u64; CLASS_COUNT];
    let mut pages = [
        EXITED_PAGES[0].load(Ordering::Relaxed),
        EXITED_PAGES[1].load(Ordering::Relaxed),
    ];
    for class in 0..CLASS_COUNT {
        allocs[class] = EXITED_ALLOCS[class].load(Ordering::Relaxed);
        frees[class] = EXITED_FREES[class]
            .load(Ordering::Relaxed)
            .wrapping_add(UNOWNED_FREES[class].load(Ordering::Relaxed));
    }
    for_each_heap_counters(|c| {
        for class in 0..CLASS_COUNT {
            allocs[class] = allocs[class].wrapping_add(c.allocs_of(class));
            frees[class] = frees[class].wrapping_add(c.frees[class].load(Ordering::Relaxed));
        }
        pages[0] += c.pages_allocated.load(Ordering::Relaxed);
        pages[1] += c.pages_freed.load(Ordering::Relaxed);
    });
    let big_bytes = BIG_BYTES.read();
    let big_blocks = BIG_BLOCKS.read();
    let mut classes = [ClassStats::default(); CLASS_COUNT];
    let mut allocated = GaugeValue {
        current: big_bytes.current,
        peak: 0,
        total: big_bytes.total,
    };
    let mut blocks = big_blocks;
    for class in 0..CLASS_COUNT {
        let size = CLASS_SIZE[class] as u64;
        let live = allocs[class].saturating_sub(frees[class]);
        let peak = (CLASS_PEAK[class].load(Ordering::Relaxed).max(0) as u64).max(live);
        classes[class] = ClassStats {
            block_size: size,
            blocks: GaugeValue {
                current: live,
                peak,
                total: allocs[class],
            },
        };
        allocated.current += live * size;
        allocated.total += allocs[class] * size;
        blocks.current += live;
        blocks.total += allocs[class];
    }
    // Peaks of the totals: class peak (sampled) plus big-block peak is an
    // upper bound; the current value is a lower bound.
    let class_peak = CLASS_BYTES_PEAK.load(Ordering::Relaxed).max(0) as u64;
    allocated.peak = (class_peak + big_bytes.peak).max(allocated.current);
    let class_blocks_peak = CLASS_BLOCKS_PEAK.load(Ordering::Relaxed).max(0) as u64;
    blocks.peak = (class_blocks_peak + big_blocks.peak).max(blocks.current);
    let spans = SPANS.read();
    let huge = HUGE.read();
    let pending = arena::dirty_free_bytes() as u64;
    Stats {
        allocated,
        allocated_blocks: blocks,
        classes,
        big_bytes,
        big_blocks,
        reserved: MAPPED.read(),
        committed: spans.current + pending + huge.current,
        spans,
        huge,
        purge_pending: pending,
        purged_bytes: PURGED.load(Ordering::Relaxed),
        purge_calls: PURGE_CALLS.load(Ordering::Relaxed),
        purge_delay_ms: crate::purge::delay_ms(),
        mmap_calls: MMAP_CALLS.load(Ordering::Relaxed),
        munmap_calls: MUNMAP_CALLS.load(Ordering::Relaxed),
        pages_allocated: pages[0],
        pages_freed: pages[1],
        pages_abandoned: ABANDONED.load(Ordering::Relaxed),
        pages_reclaimed: RECLAIMED.load(Ordering::Relaxed),
        pages_abandoned_now: abandon::abandoned_pages() as u64,
        chunks: arena::chunk_count() as u64,
        threads: THREADS.read(),
        errors: ERRORS.load(Ordering::Relaxed),
        background_purger: purge::purger_running(),
        process: process_stats(),
    }
}

/// Process figures from `getrusage` and `/proc/self/statm`.
pub fn process_stats() -> ProcessStats {
    // SAFETY: an all-zero rusage is valid, and getrusage fills it.
    let usage = unsafe {
        let mut usage: libc::rusage = core::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    ProcessStats {
        rss: Os::resident_bytes() as u64,
        peak_rss: usage.ru_maxrss as u64 * 1024,
        minor_faults: usage.ru_minflt as u64,
        major_faults: usage.ru_majflt as u64,
        user_us: micros(usage.ru_utime),
        system_us: micros(usage.ru_stime),
    }
}

impl Stats {
    /// The statistics as one JSON object: `format!("{}", stats.json())`,
    /// any `fmt::Write` sink, or `Json::write_to` (a byte callback, no
    /// `core::fmt`); none of them allocates.
    pub fn json(&self) -> Json<'_> {
        Json(self)
    }
}

/// JSON rendering of [`Stats`] (see [`Stats::json`]).
pub struct Json<'a>(&'a Stats);

/// Where [`Json::write_to`] puts its pieces.
struct JsonOut<'o> {
    out: &'o mut dyn FnMut(&[u8]),
}

impl JsonOut<'_> {
    fn text(&mut self, t: &str) -> &mut Self {
        (self.out)(t.as_bytes());
        self
    }

    #[inline(never)]
    fn num(&mut self, n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        (self.out)(crate::util::decimal(n, &mut digits));
        self
    }

    /// `,"name":value`.
    #[inline(never)]
    fn field(&mut self, name: &str, value: u64) -> &mut Self {
        self.text(",\"").text(name).text("\":").num(value)
    }

    /// `,"name":{"current":..,"peak":..,"total":..}`.
    #[inline(never)]
    fn gauge(&mut self, name: &str, g: &GaugeValue) -> &mut Self {
        self.text(",\"").text(name).text("\":{\"current\":").num(g.current);
        self.text(",\"peak\":")
            .num(g.peak)
            .text(",\"total\":")
            .num(g.total)
            .text("}")
    }
}

impl Json<'_> {
    /// Writes the JSON text, in pieces, to `out`, without allocating.
    /// (`core::fmt` is not used: the C library would link it for this
    /// alone, and every process that preloads the library holds its code
    /// resident; docs/PERFORMANCE.md E86.)
    pub fn write_to(&self, out: &mut dyn FnMut(&[u8])) {
        let s = self.0;
        let mut w = JsonOut { out };
        w.text("{\"version\":\"").text(env!("CARGO_PKG_VERSION")).text("\"");
        w.gauge("allocated_bytes", &s.allocated);
        w.gauge("allocated_blocks", &s.allocated_blocks);
        w.gauge("big_bytes", &s.big_bytes);
        w.gauge("big_blocks", &s.big_blocks);
        w.gauge("reserved_bytes", &s.reserved);
        w.gauge("span_bytes", &s.spans);
        w.gauge("huge_bytes", &s.huge);
        w.gauge("threads", &s.threads);
        w.field("committed_bytes", s.committed);
        w.field("purge_pending_bytes", s.purge_pending);
        w.field("purged_bytes", s.purged_bytes);
        w.field("purge_calls", s.purge_calls);
        w.field("purge_delay_ms", s.purge_delay_ms);
        w.field("mmap_calls", s.mmap_calls);
        w.field("munmap_calls", s.munmap_calls);
        w.field("pages_allocated", s.pages_allocated);
        w.field("pages_freed", s.pages_freed);
        w.field("pages_abandoned", s.pages_abandoned);
        w.field("pages_reclaimed", s.pages_reclaimed);
        w.field("pages_abandoned_now", s.pages_abandoned_now);
        w.field("chunks", s.chunks);
        w.field("errors", s.errors);
        w.text(",\"background_purger\":")
            .text(if s.background_purger { "true" } else { "false" });
        let p = &s.process;
        w.text(",\"process\":{\"rss\":").num(p.rss);
        w.field("peak_rss", p.peak_rss);
        w.field("minor_faults", p.minor_faults);
        w.field("major_faults", p.major_faults);
        w.field("user_us", p.user_us);
        w.field("system_us", p.system_us);
        w.text("},\"classes\":[");
        let mut first = true;
        for c in s.classes.iter().filter(|c| c.blocks.total != 0) {
            if !first {
                w.text(",");
            }
            first = false;
            w.text("{\"block_size\":").num(c.block_size);
            w.field("current", c.blocks.current);
            w.field("peak", c.blocks.peak);
            w.field("total", c.blocks.total).text("}");
        }
        w.text("]}");
    }
}

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.write_to(&mut |piece| {
            if result.is_ok() {
                // Every piece is ASCII: names, digits and punctuation.
                result = f.write_str(core::str::from_utf8(piece).unwrap_or("?"));
            }
        });
        result
    }
}

fn row(out: &mut dyn FnMut(&[u8]), label: &str, value: GaugeValue, bytes: bool) {
    let mut line = Line::new();
    line.str("  ").str(label).pad_to(26);
    let put = |line: &mut Line, v: u64| {
        if bytes {
            line.size(v);
        } else {
            line.dec(v);
        }
    };
    put(&mut line, value.current);
    line.pad_to(42);
    put(&mut line, value.peak);
    line.pad_to(58);
    put(&mut line, value.total);
    line.str("\n");
    out(line.as_bytes());
}

/// Prints the statistics as a table on stderr, without allocating.
pub fn print() {
    print_to(&mut |line| Os::write_stderr(line));
}

/// The statistics table, one line at a time (each ending in a newline, at
/// most a [`Line`] long), given to `out`; without allocating.
pub fn print_to(out: &mut dyn FnMut(&[u8])) {
    let s = snapshot();
    let mut line = Line::new();
    line.str("oxmalloc ")
        .str(env!("CARGO_PKG_VERSION"))
        .str(" statistics\n");
    out(line.as_bytes());
    let mut line = Line::new();
    line.pad_to(26)
        .str("current")
        .pad_to(42)
        .str("peak")
        .pad_to(58)
        .str("total\n");
    out(line.as_bytes());
    row(out, "allocated", s.allocated, true);
    row(out, "allocated blocks", s.allocated_blocks, false);
    for (class, c) in s.classes.iter().enumerate() {
        if c.blocks.total == 0 {
            continue;
        }
        let mut label = Line::new();
        label
            .str("  class ")
            .dec(class as u64)
            .str(" (")
            .dec(c.block_size)
            .str(" B)");
        // Rows of blocks (not bytes) per class.
        let mut line = Line::new();
        line.bytes(label.as_bytes())
            .pad_to(26)
            .dec(c.blocks.current)
            .pad_to(42)
            .dec(c.blocks.peak);
        line.pad_to(58).dec(c.blocks.total).str("\n");
        out(line.as_bytes());
    }
    row(out, "large+huge bytes", s.big_bytes, true);
    row(out, "reserved (mapped)", s.reserved, true);
    row(out, "in spans", s.spans, true);
    row(out, "huge mappings", s.huge, true);
    row(out, "threads", s.threads, false);
    let mut line = Line::new();
    line.str("  committed ")
        .size(s.committed)
        .str(", chunks ")
        .dec(s.chunks)
        .str(", pages allocated ");
    line.dec(s.pages_allocated)
        .str(", freed ")
        .dec(s.pages_freed)
        .str(", abandoned ")
        .dec(s.pages_abandoned);
    line.str(" (now ")
        .dec(s.pages_abandoned_now)
        .str("), reclaimed ")
        .dec(s.pages_reclaimed)
        .str("\n");
    out(line.as_bytes());
    let mut line = Line::new();
    line.str("  purged ")
        .size(s.purged_bytes)
        .str(" in ")
        .dec(s.purge_calls)
        .str(" calls (delay ")
        .dec(s.purge_delay_ms)
        .str(" ms), waiting ");
    line.size(s.purge_pending).str(if s.background_purger {
        " (background purger on)"
    } else {
        ""
    });
    line.str("; mmap ")
        .dec(s.mmap_calls)
        .str(", munmap ")
        .dec(s.munmap_calls);
    line.str("; heap errors ").dec(s.errors).str("\n");
    out(line.as_bytes());
    let p = &s.process;
    let mut line = Line::new();
    line.str("  process: rss ")
        .size(p.rss)
        .str(", peak rss ")
        .size(p.peak_rss)
        .str(", page faults ");
    line.dec(p.minor_faults)
        .str(" minor / ")
        .dec(p.major_faults)
        .str(" major, user ");
    line.dec(p.user_us / 1000)
        .str(" ms, system ")
        .dec(p.system_us / 1000)
        .str(" ms\n");
    out(line.as_bytes());
}

/// Prints the one-line start-up banner plus the options (`OXMALLOC_VERBOSE=1`).
pub fn print_banner() {
    let mut line = Line::new();
    line.str("oxmalloc ")
        .str(env!("CARGO_PKG_VERSION"))
        .str(" (tls ")
        .str(crate::tls::MODEL);
    line.str(if crate::secure::ENABLED { ", hardened" } else { "" })
        .str(")\n");
    Os::write_stderr(line.as_bytes());
    for (i, info) in options::OPTIONS.iter().enumerate() {
        let mut line = Line::new();
        line.str("  OXMALLOC_").str(info.name).str("=");
        if info.kind == options::Kind::Text {
            if let Some(text) = options::text_at(i) {
                line.bytes(text.as_bytes());
            }
        } else {
            line.signed(options::value_at(i));
        }
        // A long value (a path) still gets a space before its comment.
        line.str(" ").pad_to(40).str("# ").str(info.doc).str("\n");
        Os::write_stderr(line.as_bytes());
    }
}
