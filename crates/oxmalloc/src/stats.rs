//! Statistics: global counters for memory that moves between oxmalloc and
//! the OS (updated on slow paths only), and per-thread counters merged on
//! read and at thread exit.

use crate::heap::Heap;
use crate::os::{Os, Platform};
use crate::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use crate::util::Line;
use crate::{abandon, arena, options, tls};
use core::cell::Cell;

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

/// A snapshot of a [`Gauge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaugeValue {
    /// Value now.
    pub current: u64,
    /// Highest value seen.
    pub peak: u64,
    /// Sum of all increases.
    pub total: u64,
}

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
static PAGES_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static PAGES_FREED: AtomicU64 = AtomicU64::new(0);

/// Counters kept by each thread without atomics, merged at thread exit.
pub struct ThreadStats {
    /// Class pages this heap took from the arena.
    pub pages_allocated: Cell<u64>,
    /// Class pages this heap gave back.
    pub pages_freed: Cell<u64>,
}

impl ThreadStats {
    /// Zeroed counters.
    pub const fn new() -> Self {
        ThreadStats {
            pages_allocated: Cell::new(0),
            pages_freed: Cell::new(0),
        }
    }

    /// Zeroes the counters (heap recycled).
    pub fn reset(&self) {
        self.pages_allocated.set(0);
        self.pages_freed.set(0);
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Folds an exiting thread's counters into the global ones.
pub fn merge_thread(stats: &ThreadStats) {
    PAGES_ALLOCATED.fetch_add(stats.pages_allocated.get(), Ordering::Relaxed);
    PAGES_FREED.fetch_add(stats.pages_freed.get(), Ordering::Relaxed);
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

/// A snapshot of oxmalloc's statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Address space mapped from the OS (chunks, huge blocks, metadata).
    pub mapped: GaugeValue,
    /// Bytes of slices handed to pages and large blocks.
    pub spans: GaugeValue,
    /// Bytes in huge blocks.
    pub huge: GaugeValue,
    /// Threads with a heap.
    pub threads: GaugeValue,
    /// Free memory waiting for its purge.
    pub dirty_free: u64,
    /// Bytes purged back to the OS, and the number of purge calls.
    pub purged_bytes: u64,
    /// Number of purge system calls.
    pub purge_calls: u64,
    /// `mmap` and `munmap` calls.
    pub mmap_calls: u64,
    /// See `mmap_calls`.
    pub munmap_calls: u64,
    /// Pages abandoned by exiting threads, reclaimed by others, abandoned now.
    pub pages_abandoned: u64,
    /// See `pages_abandoned`.
    pub pages_reclaimed: u64,
    /// See `pages_abandoned`.
    pub pages_abandoned_now: u64,
    /// Class pages taken from and given back to the arena (exited threads plus this one).
    pub pages_allocated: u64,
    /// See `pages_allocated`.
    pub pages_freed: u64,
    /// Regular chunks mapped now.
    pub chunks: u64,
    /// Heap errors detected.
    pub errors: u64,
    /// Resident set size of the process now.
    pub resident: u64,
    /// Whether the background purger thread runs.
    pub background_purger: bool,
}

/// Reads every counter.
pub fn snapshot() -> Stats {
    let mut pages_allocated = PAGES_ALLOCATED.load(Ordering::Relaxed);
    let mut pages_freed = PAGES_FREED.load(Ordering::Relaxed);
    if tls::has_heap() {
        // SAFETY: the calling thread's own heap.
        let heap: &Heap = unsafe { &*tls::heap() };
        pages_allocated += heap.stats.pages_allocated.get();
        pages_freed += heap.stats.pages_freed.get();
    }
    Stats {
        mapped: MAPPED.read(),
        spans: SPANS.read(),
        huge: HUGE.read(),
        threads: THREADS.read(),
        dirty_free: arena::dirty_free_bytes() as u64,
        purged_bytes: PURGED.load(Ordering::Relaxed),
        purge_calls: PURGE_CALLS.load(Ordering::Relaxed),
        mmap_calls: MMAP_CALLS.load(Ordering::Relaxed),
        munmap_calls: MUNMAP_CALLS.load(Ordering::Relaxed),
        pages_abandoned: ABANDONED.load(Ordering::Relaxed),
        pages_reclaimed: RECLAIMED.load(Ordering::Relaxed),
        pages_abandoned_now: abandon::abandoned_pages() as u64,
        pages_allocated,
        pages_freed,
        chunks: arena::chunk_count() as u64,
        errors: ERRORS.load(Ordering::Relaxed),
        resident: Os::resident_bytes() as u64,
        background_purger: crate::purge::purger_running(),
    }
}

fn row(label: &str, value: GaugeValue) {
    let mut line = Line::new();
    line.str("  ")
        .str(label)
        .pad_to(22)
        .size(value.current)
        .pad_to(38)
        .size(value.peak)
        .pad_to(54);
    line.size(value.total).str("\n");
    Os::write_stderr(line.as_bytes());
}

/// Prints the statistics as a table on stderr, without allocating.
pub fn print() {
    let s = snapshot();
    let mut line = Line::new();
    line.str("oxmalloc statistics\n  ")
        .pad_to(22)
        .str("current")
        .pad_to(38)
        .str("peak")
        .pad_to(54);
    line.str("total\n");
    Os::write_stderr(line.as_bytes());
    row("mapped", s.mapped);
    row("in spans", s.spans);
    row("huge blocks", s.huge);
    let mut line = Line::new();
    line.str("  threads")
        .pad_to(22)
        .dec(s.threads.current)
        .pad_to(38)
        .dec(s.threads.peak)
        .pad_to(54);
    line.dec(s.threads.total).str("\n");
    Os::write_stderr(line.as_bytes());
    let mut line = Line::new();
    line.str("  chunks ")
        .dec(s.chunks)
        .str(", pages allocated ")
        .dec(s.pages_allocated);
    line.str(", freed ")
        .dec(s.pages_freed)
        .str(", abandoned ")
        .dec(s.pages_abandoned);
    line.str(", reclaimed ").dec(s.pages_reclaimed).str("\n");
    Os::write_stderr(line.as_bytes());
    let mut line = Line::new();
    line.str("  purged ")
        .size(s.purged_bytes)
        .str(" in ")
        .dec(s.purge_calls)
        .str(" calls, waiting ");
    line.size(s.dirty_free)
        .str("; mmap ")
        .dec(s.mmap_calls)
        .str(", munmap ")
        .dec(s.munmap_calls);
    line.str("; errors ").dec(s.errors).str("\n");
    Os::write_stderr(line.as_bytes());
    let mut line = Line::new();
    line.str("  resident set ").size(s.resident).str("\n");
    Os::write_stderr(line.as_bytes());
}

/// Prints the one-line start-up banner plus the options (`OXMALLOC_VERBOSE=1`).
pub fn print_banner() {
    let mut line = Line::new();
    line.str("oxmalloc ")
        .str(env!("CARGO_PKG_VERSION"))
        .str(" (tls ")
        .str(tls::MODEL);
    line.str(if crate::secure::ENABLED { ", hardened" } else { "" })
        .str(")\n");
    Os::write_stderr(line.as_bytes());
    for (i, info) in options::OPTIONS.iter().enumerate() {
        let mut line = Line::new();
        let value = options::value_at(i);
        line.str("  OXMALLOC_")
            .str(info.name)
            .str("=")
            .signed(value)
            .pad_to(40)
            .str("# ")
            .str(info.doc)
            .str("\n");
        Os::write_stderr(line.as_bytes());
    }
}
