//! Heaps: per size class, the queue of pages allocation pops from, and the
//! direct table that makes small allocation one lookup.
//!
//! Every thread has a *default heap*, used by `malloc` and the global
//! allocator. Every thread starts on [`EMPTY_HEAP`], a static heap whose
//! direct entries all point at [`EMPTY_PAGE`] (a page whose free list is
//! always empty). The fast path therefore needs no "is this thread set up?"
//! test: the first allocation fails to pop, falls into the slow path, which
//! notices the empty heap and sets the thread up (`thread::init_thread`).
//!
//! A thread may also create *first-class heaps* (`oxmalloc::Heap`, the
//! `ox_heap_*` C API): same structure, allocated from by the creating thread
//! only, destroyed at once or merged back into the default heap. Their pages
//! carry the same owner key as the thread's default heap, so the owner's
//! frees are local frees whichever heap the block came from.
//!
//! Only the owning thread touches a heap, except `notify` (set by remote
//! frees into its full pages), `large` (locked) and the statistics counters
//! (read by `stats`).

use crate::arena;
use crate::chunk::{self, slice_address, SLICE_SIZE};
use crate::free_cache::FreeCache;
use crate::held_frees::HeldFrees;
use crate::os::{Os, Platform};
use crate::page::{is_indexed_class, Block, Page, PageKind, INDEX_SLOTS, OWNER_INDEXED, OWNER_SLOW};
use crate::page_queue::PageQueue;
use crate::size_class::{
    borrowers_of, borrows, class_size, lender_of, page_slices, Class, CLASS_COUNT, CLASS_SIZE, DIRECT_ENTRIES,
    LAST_DIRECT_CLASS, WORD,
};
use crate::stats::HeapCounters;
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use crate::sync::Mutex;
use crate::{abandon, huge, profile, purge, stats};
use core::cell::Cell;
use core::ptr;

/// The large and huge blocks of a first-class heap (which `destroy` must
/// find), linked through `Page::next`/`prev`. Blocks are freed from any
/// thread, hence the lock around it.
pub struct LargeBlocks(PageQueue);
// SAFETY: the queue's raw pointers are only followed with the lock held.
unsafe impl Send for LargeBlocks {}

/// A heap.
///
/// Invariants: `direct[w]` is the first page of `bins[class of w*8]`, or,
/// when that queue is empty, of its lender's bin for a class that borrows
/// ([`Heap::borrows_from_lender`]), or [`EMPTY_PAGE`] when that queue is
/// empty too; `pinned[c]` is the first page
/// of `bins[c]` (null when empty; bit `c` of `pinned_classes` says which
/// is the case), and that page's `used` carries one extra
/// count (the pin), so that a local free never finds the current page of a
/// class empty: a loop that allocates and frees one block does not call
/// `page_emptied` on every free; pages on `bins[c]` and `full[c]`
/// are class-`c` pages whose `heap` is this heap and whose `owner` is
/// `owner_key`, with [`OWNER_SLOW`] set for the pages on `full` (whose
/// `thread_free` then carries `NOTIFY` until a remote free clears it), for
/// pages the profiler needs to see frees of, and for the pages of indexed
/// classes but the first, which has [`OWNER_INDEXED`] instead (the rule is
/// [`Heap::restore_owner`]'s; the profiler may add `OWNER_SLOW` to it).
/// `owner_key` identifies the owning thread (`tls::owner_key`).
#[repr(C)]
pub struct Heap {
    /// Current page for each request size up to 1 KiB, indexed by `(size + 7) / 8`.
    pub direct: [Cell<*mut Page>; DIRECT_ENTRIES],
    /// The page of each class that carries the pin (see the invariants).
    pub pinned: [Cell<*mut Page>; CLASS_COUNT],
    /// Bit `c` set: `pinned[c]` is not null (the classes whose current page
    /// [`Heap::retire_empty_current`] looks at).
    pub pinned_classes: [Cell<u64>; 2],
    /// Bit `c` set: the current page of the indexed class `c` may hold no
    /// allocated block: a free by the heap's thread left it so
    /// ([`Heap::note_emptied_current`]). A hint, never relied on:
    /// [`Heap::retire_empty_current`] looks at these pages first, and
    /// clears the bit of each it looks at.
    pub maybe_empty: [Cell<u64>; 2],
    /// Bit `c` set: the class `c`, one that borrows (`size_class::borrows`),
    /// stopped borrowing its lender's pages for the heap's life: one of its
    /// slow paths found a page of the lender more than half used (or full).
    /// Until then the class borrows ([`Heap::borrows_from_lender`]); from
    /// then on it never does: classes busy enough to meet a crowded page
    /// keep their finer blocks (docs/PERFORMANCE.md E100, E116).
    pub borrowers_split: Cell<u64>,
    /// Pages that may have free blocks, per class.
    pub bins: [PageQueue; CLASS_COUNT],
    /// Pages found full, per class.
    pub full: [PageQueue; CLASS_COUNT],
    /// Bit `c` set: a remote free hit a full page of class `c`.
    pub notify: [AtomicU64; 2],
    /// The owner key of this heap's pages: the owning thread's `tls::owner_key`.
    pub owner_key: Cell<usize>,
    /// Whether this is a first-class heap (not a thread's default heap).
    /// Only its thread reads it: remote frees read the page's copy
    /// (`Page::in_first_class`).
    pub first_class: Cell<bool>,
    /// Default heap: the first of its thread's first-class heaps. First-class
    /// heap: the default heap of its thread.
    pub family: Cell<*mut Heap>,
    /// Links in the list of a thread's first-class heaps.
    pub sibling_next: Cell<*mut Heap>,
    /// See `sibling_next`.
    pub sibling_prev: Cell<*mut Heap>,
    /// First-class heaps: their large and huge blocks.
    pub large: Mutex<LargeBlocks>,
    /// Slow-path calls so far (paces deferred work).
    pub slow_calls: Cell<u64>,
    /// Link in the heap pool's free list.
    pub pool_next: Cell<*mut Heap>,
    /// Link in the list of every heap ever made (never changes once set).
    pub registry_next: AtomicPtr<Heap>,
    /// Allocation and free counters, merged on read by `stats`.
    pub counters: HeapCounters,
    /// Heap profiling: bytes until the next sample.
    pub prof_countdown: Cell<i64>,
    /// Heap profiling: blocks of each class handed to the fast path at the
    /// last refill (counted as allocated at the next one).
    pub prof_handed: [Cell<u32>; CLASS_COUNT],
    /// Heap profiling: state of the interval generator.
    pub prof_seed: Cell<u64>,
    /// Heap profiling: a sample is being taken (the unwinder may allocate).
    pub prof_busy: Cell<bool>,
    /// Spans of pages this heap emptied, kept for its next pages (null: a
    /// free slot). Invariant: each is the first descriptor of a span the
    /// arena handed to this heap, cleared (`PageKind::Unused`, no owner)
    /// but with its `span_slices` and forwards intact, on no queue; together
    /// they hold at most [`SPARE_SLICES`] slices.
    pub spare: [Cell<*mut Page>; SPARE_SPANS],
    /// Remote frees by this (default) heap's thread not yet published.
    pub held: HeldFrees,
    /// This (default) heap's thread's latest frees above 1 KiB (`free_cache.rs`).
    pub free_cache: FreeCache,
    /// Per class, the current run of slow-path requests (see
    /// [`Heap::page_block_size`]): the larger of the (at most two) sizes
    /// it asked for, the smaller one (0: one size so far), and how many
    /// requests it holds (0: no run).
    pub repeat_size: [Cell<u32>; CLASS_COUNT],
    /// See `repeat_size`.
    pub repeat_other: [Cell<u32>; CLASS_COUNT],
    /// See `repeat_size`.
    pub repeat_count: [Cell<u8>; CLASS_COUNT],
    /// When the free blocks of this heap's indexed pages are next swept
    /// ([`Heap::sweep_free_blocks`]; `Os::now_millis`).
    pub free_blocks_sweep_due: Cell<u64>,
}

/// Bits of the small (not indexed) classes in the first word of a class
/// bitmask such as `Heap::pinned_classes`.
const SMALL_CLASS_BITS: u64 = (1 << (LAST_DIRECT_CLASS + 1)) - 1;
const _: () = assert!(LAST_DIRECT_CLASS < 63);

/// Emptied page spans a heap keeps (see `Heap::spare`), and their slices
/// at most (1 MiB): a thread whose pages empty and refill reuses its own
/// recently written memory without the arena lock (rptest@8 took the lock
/// ~11,000 times a second; docs/PERFORMANCE.md E37).
const SPARE_SPANS: usize = 4;
const SPARE_SLICES: usize = 16;

/// The shortest interval between two sweeps of a heap's free blocks
/// ([`Heap::sweep_free_blocks`]), so the shortest time a block stays free
/// before its memory goes back: the purge delay's 10 ms made rptest@8 20%
/// slower (blocks purged and written again moments later), 50 ms costs it
/// nothing measurable and keeps most of the gain (docs/PERFORMANCE.md E54).
const BLOCK_SWEEP_MIN_MS: u64 = 50;

/// Slow-path requests in a row, of one size or two, after which a class's
/// next new page gets blocks of the larger (see [`Heap::page_block_size`]).
const REPEATS_FOR_SIZED: u8 = 3;

/// A `Sync` wrapper for the static sentinels (they are never written).
#[repr(transparent)]
pub struct Sentinel<T>(pub T);
// SAFETY: the sentinels are never written after compile-time initialisation:
// the empty page's free list is empty so nothing pops from it, and the slow
// path replaces the empty heap before touching any heap state.
unsafe impl<T> Sync for Sentinel<T> {}

/// The page every direct entry of an empty bin points at; its free list is
/// always empty.
pub static EMPTY_PAGE: Sentinel<Page> = Sentinel(Page::new());
/// The heap of threads that have not allocated yet.
pub static EMPTY_HEAP: Sentinel<Heap> = Sentinel(Heap::new());
/// The heap of threads whose heap was torn down at exit: their late
/// allocations (from destructors that run after ours) are served by a
/// short-lived heap whose pages are abandoned at once (`alloc::alloc_after_exit`).
pub static DEAD_HEAP: Sentinel<Heap> = Sentinel(Heap::new());

/// Address of [`EMPTY_PAGE`].
#[inline(always)]
pub fn empty_page() -> *mut Page {
    (&raw const EMPTY_PAGE.0).cast_mut()
}

/// Address of [`EMPTY_HEAP`].
#[inline(always)]
pub fn empty_heap() -> *mut Heap {
    (&raw const EMPTY_HEAP.0).cast_mut()
}

/// Address of [`DEAD_HEAP`].
#[inline(always)]
pub fn dead_heap() -> *mut Heap {
    (&raw const DEAD_HEAP.0).cast_mut()
}

impl Heap {
    /// A heap with no pages.
    pub const fn new() -> Self {
        Heap {
            direct: [const { Cell::new((&raw const EMPTY_PAGE.0).cast_mut()) }; DIRECT_ENTRIES],
            pinned: [const { Cell::new(ptr::null_mut()) }; CLASS_COUNT],
            pinned_classes: [const { Cell::new(0) }; 2],
            bins: [const { PageQueue::new() }; CLASS_COUNT],
            full: [const { PageQueue::new() }; CLASS_COUNT],
            notify: [const { AtomicU64::new(0) }; 2],
            owner_key: Cell::new(0),
            first_class: Cell::new(false),
            family: Cell::new(ptr::null_mut()),
            sibling_next: Cell::new(ptr::null_mut()),
            sibling_prev: Cell::new(ptr::null_mut()),
            large: Mutex::new(LargeBlocks(PageQueue::new())),
            slow_calls: Cell::new(0),
            pool_next: Cell::new(ptr::null_mut()),
            registry_next: AtomicPtr::new(ptr::null_mut()),
            counters: HeapCounters::new(),
            prof_countdown: Cell::new(0),
            prof_handed: [const { Cell::new(0) }; CLASS_COUNT],
            prof_seed: Cell::new(0),
            prof_busy: Cell::new(false),
            spare: [const { Cell::new(ptr::null_mut()) }; SPARE_SPANS],
            held: HeldFrees::new(),
            free_cache: FreeCache::new(),
            repeat_size: [const { Cell::new(0) }; CLASS_COUNT],
            repeat_other: [const { Cell::new(0) }; CLASS_COUNT],
            repeat_count: [const { Cell::new(0) }; CLASS_COUNT],
            free_blocks_sweep_due: Cell::new(0),
            maybe_empty: [const { Cell::new(0) }; 2],
            borrowers_split: Cell::new(0),
        }
    }

    /// The value that `Page::owner` holds for pages of this heap (the
    /// owning thread's `tls::owner_key`).
    #[inline(always)]
    pub fn key(&self) -> usize {
        self.owner_key.get()
    }

    /// Sets up a pool heap as the calling thread's default heap.
    pub fn init_default(&self) {
        self.owner_key.set(crate::tls::owner_key_for(self));
        self.prof_seed.set(self as *const Heap as u64 | 1);
        self.first_class.set(false);
        self.family.set(ptr::null_mut());
        self.forget_repeats();
    }

    /// Clears the request history of `page_block_size`: a heap from the
    /// pool starts with no run of its previous user's sizes.
    fn forget_repeats(&self) {
        for count in &self.repeat_count {
            count.set(0);
        }
    }

    /// Sets up a pool heap as a first-class heap of the thread whose
    /// default heap is `default`.
    ///
    /// # Safety
    /// Only the thread owning `default` may call this.
    pub unsafe fn init_first_class(&self, default: &Heap) {
        if !FIRST_CLASS_SEEN.load(Ordering::Relaxed) {
            FIRST_CLASS_SEEN.store(true, Ordering::Relaxed);
        }
        self.owner_key.set(default.key());
        self.first_class.set(true);
        self.forget_repeats();
        self.family.set(default as *const Heap as *mut Heap);
        let head = default.family.get();
        self.sibling_prev.set(ptr::null_mut());
        self.sibling_next.set(head);
        if !head.is_null() {
            // SAFETY: the thread's first-class heaps are valid and ours.
            unsafe { (*head).sibling_prev.set(self as *const Heap as *mut Heap) };
        }
        default.family.set(self as *const Heap as *mut Heap);
    }

    /// Unlinks a first-class heap from its thread's list.
    fn unlink_from_family(&self) {
        let default = self.family.get();
        let (prev, next) = (self.sibling_prev.get(), self.sibling_next.get());
        // SAFETY: the family links of a live first-class heap point at valid
        // heaps of the same thread (the caller's).
        unsafe {
            if prev.is_null() {
                if !default.is_null() {
                    (*default).family.set(next);
                }
            } else {
                (*prev).sibling_next.set(next);
            }
            if !next.is_null() {
                (*next).sibling_prev.set(prev);
            }
        }
        self.sibling_next.set(ptr::null_mut());
        self.sibling_prev.set(ptr::null_mut());
        self.family.set(ptr::null_mut());
    }

    /// Adds the allocations and local frees a page counted since last time
    /// to this heap's counters (see `Page::alloc_mark`).
    #[inline]
    pub fn take_counts(&self, page: &Page) {
        let (allocs, frees) = page.take_counts();
        let class = page.class();
        if allocs != 0 {
            stats::add(&self.counters.allocs[class], allocs);
        }
        if frees != 0 {
            stats::add(&self.counters.frees[class], frees);
        }
    }

    /// Takes the counts of the page each class allocates from (the only
    /// pages with allocations not yet counted; others may have local frees
    /// not yet counted).
    pub fn take_current_counts(&self) {
        for class in 0..CLASS_COUNT {
            let first = self.bins[class].first.get();
            if !first.is_null() {
                // SAFETY: pages on our queues are ours.
                self.take_counts(unsafe { &*first });
            }
        }
    }

    /// Takes the counts of every page of this heap, so that its counters
    /// are exact (a statistics snapshot by the owner).
    pub fn take_all_counts(&self) {
        for class in 0..CLASS_COUNT {
            for queue in [&self.bins[class], &self.full[class]] {
                let mut page = queue.first.get();
                while !page.is_null() {
                    // SAFETY: pages on our queues are ours.
                    let p = unsafe { &*page };
                    self.take_counts(p);
                    page = p.next.get();
                }
            }
        }
    }

    /// Purges the free blocks of this heap's indexed pages that stayed
    /// free for a whole sweep interval (the purge delay, at least
    /// [`BLOCK_SWEEP_MIN_MS`]; see [`Page::sweep_index`]), and the uncarved
    /// ends of its pages made on spans that were not zero, once such a page
    /// has lived a whole interval ([`Page::sweep_tail`]), when a sweep is
    /// due at `now`. Owner only (the index, the free blocks and the
    /// uncarved ends are the owner's); called every few slow paths, so a
    /// thread that stops allocating keeps them resident. Empties the free
    /// cache onto the pages first.
    pub fn sweep_free_blocks(&self, now: u64) {
        if now < self.free_blocks_sweep_due.get() {
            return;
        }
        self.free_blocks_sweep_due
            .set(now.saturating_add(purge::delay_ms().max(BLOCK_SWEEP_MIN_MS)));
        // The free cache's blocks go back to their pages first, so that a
        // class the thread stopped allocating does not keep them resident:
        // they are purged a sweep later, as any block freed just before.
        // SAFETY: the owner (caller); a first-class heap caches nothing.
        unsafe { crate::free::flush_free_cache(self) };
        let mut purged = 0;
        // Blocks of classes below two OS pages hold at most one whole page
        // each: `Page::sweep_index` would purge nothing there.
        let smallest = 2 * Os::page_size();
        for class in 0..CLASS_COUNT {
            let index_too = class > LAST_DIRECT_CLASS && is_indexed_class(class) && class_size(class) >= smallest;
            // (Pages on `full` have nothing in their index, and have carved
            // all they hold or nearly.)
            let mut page = self.bins[class].first.get();
            while !page.is_null() {
                // SAFETY: pages on our queues are ours, class pages in live
                // chunks (of an indexed class where `index_too`).
                unsafe {
                    if index_too {
                        purged += (*page).sweep_index();
                    }
                    purged += (*page).sweep_tail();
                    page = (*page).next.get();
                }
            }
        }
        if purged != 0 {
            stats::purged(purged);
        }
    }

    /// The first page of `bins[class]` may have changed: moves the pin to
    /// it (and, for indexed classes, the owner word's `OWNER_INDEXED`) and
    /// points the direct entries of `class` at it.
    #[inline]
    pub fn refresh_current(&self, class: Class) {
        let first = self.bins[class].first.get();
        if self.pinned[class].get() != first {
            self.unpin(class);
            if !first.is_null() {
                // SAFETY: the first page of our bin is ours.
                let p = unsafe { &*first };
                p.adjust_used(1);
                self.pinned[class].set(first);
                self.mark_pinned(class, true);
                if is_indexed_class(class) {
                    self.restore_owner(p);
                }
            }
        }
        if class > LAST_DIRECT_CLASS {
            return;
        }
        let mut page = first;
        if page.is_null() && self.borrows_from_lender(class) {
            page = self.bins[lender_of(class)].first.get();
        }
        let page = if page.is_null() { empty_page() } else { page };
        self.point_direct(class, page);
        // The classes that borrow follow their lender's current page.
        for borrower in borrowers_of(class) {
            if self.borrows_from_lender(borrower) {
                self.point_direct(borrower, page);
            }
        }
    }

    /// Points the direct entries of the requests that `class` serves at `page`.
    #[inline]
    fn point_direct(&self, class: Class, page: *mut Page) {
        let lo = if class == 0 {
            0
        } else {
            CLASS_SIZE[class - 1] as usize / WORD + 1
        };
        let hi = CLASS_SIZE[class] as usize / WORD;
        for entry in &self.direct[lo..=hi] {
            entry.set(page);
        }
    }

    /// Whether `class` is served from its lender's current page
    /// (`size_class::lender_of`): it borrows, has no page of its own, and
    /// has not split since this heap was set up (`borrowers_split`).
    #[inline]
    pub fn borrows_from_lender(&self, class: Class) -> bool {
        borrows(class) && self.borrowers_split.get() & (1 << class) == 0 && self.bins[class].first.get().is_null()
    }

    /// Takes the pin off the page of `class` that carries it (which must
    /// still be ours).
    fn unpin(&self, class: Class) {
        let pinned = self.pinned[class].replace(ptr::null_mut());
        if !pinned.is_null() {
            self.mark_pinned(class, false);
            // SAFETY: a pinned page is one of ours (see the invariants).
            let p = unsafe { &*pinned };
            p.adjust_used(-1);
            // No longer current: its frees must make it current again (E40).
            // (A page leaving the bin has its owner word set already.)
            let indexed = self.key() | OWNER_INDEXED;
            if p.owner.load(Ordering::Relaxed) == indexed {
                p.owner.store(self.key() | OWNER_SLOW, Ordering::Relaxed);
            }
        }
    }

    /// Keeps `pinned_classes` in step with `pinned[class]`.
    fn mark_pinned(&self, class: Class, pinned: bool) {
        let word = &self.pinned_classes[class / 64];
        let bit = 1u64 << (class % 64);
        word.set(if pinned { word.get() | bit } else { word.get() & !bit });
    }

    /// Whether `page` (one of ours) holds no allocated block: `used`, less
    /// the pin, once its remote frees are collected.
    fn page_is_empty(&self, page: &Page) -> bool {
        let pinned = ptr::eq(self.pinned[page.class()].get(), page);
        page.used.get() == pinned as u32
    }

    /// Takes a block of `class` that holds `fit` bytes, on the slow path:
    /// from the first page of the bin with a free or never-used block big
    /// enough, moving full pages aside and taking a new page when needed.
    /// `fit` is the request, or the class size when the block must keep the
    /// class's natural alignment; it is more than the block size only on a
    /// page of request-sized blocks ([`Heap::page_block_size`]), which is
    /// then passed over. Returns the page and the block (whether it is zero:
    /// [`Page::pop_or_extend`]); a null page when out of memory.
    ///
    /// A class that borrows takes its block from its lender's current page
    /// (a new page of the lender when it has none), until one of its own
    /// slow paths finds that page more than half used, or full: from then on
    /// it takes pages of its own. The lender's slow paths split no one: a
    /// rare class keeps borrowing from a busy lender (docs/PERFORMANCE.md
    /// E116).
    ///
    /// # Safety
    /// Only the owning thread may call this; `fit <= CLASS_SIZE[class]`.
    pub unsafe fn take_block(&self, class: Class, fit: usize) -> (*mut Page, *mut Block) {
        if self.borrows_from_lender(class) {
            // SAFETY: forwarded contract; the lender's blocks are larger.
            if let Some(taken) = unsafe { self.take_from_lender(class, fit) } {
                return taken;
            }
            self.split_borrower(class);
        }
        let block_size = self.page_block_size(class, fit);
        let queue = &self.bins[class];
        let mut reclaim_tried = self.first_class.get();
        loop {
            let mut page = queue.first.get();
            while !page.is_null() {
                // SAFETY: pages on our queues are valid and ours.
                let p = unsafe { &*page };
                let next = p.next.get();
                if p.block_size.get() < fit {
                    // Request-sized blocks too small for this request.
                    page = next;
                    continue;
                }
                // Before `collect` refills `free` (see `Page::alloc_mark`).
                self.take_counts(p);
                // SAFETY: we own the page.
                unsafe { p.collect() };
                // SAFETY: as above.
                let block = unsafe { p.pop_or_extend() };
                if !block.is_null() {
                    if queue.first.get() != page {
                        // SAFETY: the page is on this queue.
                        unsafe { queue.move_to_front(page) };
                        self.refresh_current(class);
                    }
                    return (page, block);
                }
                // Full: park it unless a remote free slipped in meanwhile
                // (then look at it again).
                // SAFETY: the page is on our bin queue.
                if unsafe { self.park_full(page) } {
                    page = next;
                }
            }
            // No page with room: adopt an abandoned one (it has room), or
            // take a fresh one; the next round of the loop then uses it.
            // First-class heaps never adopt: `destroy` frees all their pages,
            // and an abandoned page's live blocks are not the heap's to free.
            // One adoption per call: an adopted page of request-sized blocks
            // may be too small for this request, and is then kept for later ones.
            let reclaimed = if reclaim_tried {
                None
            } else {
                reclaim_tried = true;
                abandon::reclaim(class, self)
            };
            let page = match reclaimed {
                Some(page) => page,
                None => self.new_page(class, block_size),
            };
            if page.is_null() {
                return (page, ptr::null_mut());
            }
            // SAFETY: the page is now ours and on no queue.
            unsafe { queue.push_front(page) };
            self.refresh_current(class);
        }
    }

    /// The class `class`, one that borrows, stops borrowing its lender's
    /// pages for the heap's life: its direct entries, which followed the
    /// lender's current page, go back to its own (none yet: the empty page).
    fn split_borrower(&self, class: Class) {
        self.borrowers_split.set(self.borrowers_split.get() | 1 << class);
        self.refresh_current(class);
    }

    /// For a class that borrows: a block from the current page of its
    /// lender, or from a new page of the lender when it has none; `None`
    /// when that page is full (then the caller splits the class).
    ///
    /// # Safety
    /// Only the owning thread may call this; `class` borrows
    /// (`size_class::borrows`) and `fit <= CLASS_SIZE[class]`.
    unsafe fn take_from_lender(&self, class: Class, fit: usize) -> Option<(*mut Page, *mut Block)> {
        let lender = lender_of(class);
        let page = self.bins[lender].first.get();
        if page.is_null() {
            // Neither class has a page: a page of the lender serves both.
            // SAFETY: forwarded contract; the lender's blocks are larger.
            return Some(unsafe { self.take_block(lender, fit) });
        }
        // SAFETY: the first page of our bin is ours.
        let p = unsafe { &*page };
        // Before `collect` refills `free` (see `Page::alloc_mark`).
        self.take_counts(p);
        // SAFETY: we own the page; small-class pages hold class-size blocks.
        let block = unsafe {
            p.collect();
            p.pop_or_extend()
        };
        if block.is_null() {
            return None;
        }
        self.split_if_crowded(class, p);
        Some((page, block))
    }

    /// Splits the class `class`, which borrows, if `page`, the page of its
    /// lender that one of its slow paths just took a block from, is more
    /// than half used: the class is busy enough to meet its lender's page
    /// crowded, so it holds enough blocks to share lines in blocks of its
    /// own size (E99), and is not cold between two uses (E100). Half, not
    /// full: larson's pairs of classes that filled their page only in part
    /// kept borrowing, which cost it 2% at 2 threads against 1%
    /// (docs/PERFORMANCE.md E100).
    #[inline]
    fn split_if_crowded(&self, class: Class, page: &Page) {
        if page.used.get() as usize * 2 > page.reserved.get() as usize {
            self.split_borrower(class);
        }
    }

    /// The block size for the next new page of `class`, given a slow-path
    /// request that needs `fit` bytes; also counts that request.
    ///
    /// Usually the class size. But when the last [`REPEATS_FOR_SIZED`] or
    /// more slow-path requests of an indexed class (blocks above 1 KiB)
    /// asked for one size, or for two sizes that both fit blocks of the
    /// larger rounded up to 16 bytes, and such blocks fit more to a page
    /// than blocks of the class size, the page gets *request-sized*
    /// blocks: the largest multiple of 16 that keeps that count. Programs
    /// that allocate one odd size over and over (a database's page cache: 4
    /// KiB pages plus a header, 4,368 B, in the 5,120 B class) then pay
    /// neither the class's rounding nor the page's tail (docs/PERFORMANCE.md
    /// E52). Two sizes, because sqlite also asks for 4,104 B in that class
    /// between its page-cache entries, and a run of one exact size broke at
    /// each, leaving a page in ten with class-size blocks (E74); not more,
    /// so that a class asked for sizes spread over its range keeps
    /// class-size pages, which serve every request of the class.
    /// Allocation checks the block size of the page it takes from
    /// (`alloc::alloc_class`), so requests of the class that such blocks
    /// cannot hold go elsewhere. Slow-path requests only: one in a page's
    /// worth of allocations, so a run of them means the class serves those
    /// sizes nearly alone.
    fn page_block_size(&self, class: Class, fit: usize) -> usize {
        let class_bytes = CLASS_SIZE[class] as usize;
        if !is_indexed_class(class) {
            return class_bytes;
        }
        let page_bytes = page_slices(class) * SLICE_SIZE;
        // Blocks of `size` bytes to a page, if that beats the class size
        // and the free index can count them.
        let packs_better = |size: usize| {
            let count = page_bytes / size.next_multiple_of(16);
            (count > page_bytes / class_bytes && count <= INDEX_SLOTS).then_some(count)
        };
        let (size, other, run) = (
            self.repeat_size[class].get() as usize,
            self.repeat_other[class].get() as usize,
            self.repeat_count[class].get(),
        );
        let (size, other, run) = if run > 0 && (fit == size || fit == other) {
            (size, other, run.saturating_add(1))
        } else if run > 0 && other == 0 && packs_better(size.max(fit)).is_some() {
            (size.max(fit), size.min(fit), run.saturating_add(1))
        } else {
            (fit, 0, 1)
        };
        self.repeat_size[class].set(size as u32);
        self.repeat_other[class].set(other as u32);
        self.repeat_count[class].set(run);
        if run < REPEATS_FOR_SIZED {
            return class_bytes;
        }
        let Some(count) = packs_better(size) else {
            return class_bytes;
        };
        let block = (page_bytes / count) & !15;
        if page_bytes / block > INDEX_SLOTS {
            return class_bytes;
        }
        block
    }

    /// Takes a fresh page of `class` with blocks of `block_size` bytes (the
    /// class size, or less: [`Heap::page_block_size`]) from the arena; null
    /// when out of memory.
    fn new_page(&self, class: Class, block_size: usize) -> *mut Page {
        let slices = page_slices(class);
        let spare = self.take_spare(slices).or_else(|| {
            // Not in hardened builds: a page that takes on another class's
            // blocks at once would turn a later double free of one of its
            // old blocks into an invalid free (and serve a use after free
            // with blocks of another size).
            if crate::secure::ENABLED {
                return None;
            }
            self.retire_empty_current(class, slices);
            self.take_spare(slices)
        });
        let (page, start, fresh) = match spare {
            Some(page) => {
                let chunk = chunk::chunk_of_page(page);
                (page, slice_address(chunk, chunk::slice_of_page(page)), false)
            }
            None => {
                let Some(span) = arena::alloc_span(slices, 1) else {
                    return ptr::null_mut();
                };
                (span.page(), slice_address(span.chunk, span.first), span.fresh)
            }
        };
        // SAFETY: the arena handed the span (and its descriptor) to us alone,
        // or it is one of our spare spans, just taken out.
        let p = unsafe { &*page };
        p.init(PageKind::Class, start, slices, block_size, class, fresh);
        p.heap.store(self as *const Heap as *mut Heap, Ordering::Relaxed);
        p.in_first_class.store(self.first_class.get(), Ordering::Relaxed);
        if is_indexed_class(class) {
            p.free_index.reset();
        }
        self.restore_owner(p);
        stats::bump(&self.counters.pages_allocated);
        page
    }

    /// Moves a page that has no free block from its bin to the full queue
    /// and asks remote freers to notify us. Returns `false` (and leaves the
    /// page in place) when a remote free arrived first.
    ///
    /// # Safety
    /// `page` must be on this heap's bin queue for its class.
    unsafe fn park_full(&self, page: *mut Page) -> bool {
        // SAFETY: caller's contract.
        let p = unsafe { &*page };
        if !p.thread_free.try_park() {
            return false;
        }
        let class = p.class();
        // SAFETY: the page is on bins[class] (caller) and goes to full[class].
        unsafe {
            self.bins[class].remove(page);
            self.full[class].push_back(page);
        }
        p.in_full.set(true);
        p.owner.store(self.key() | OWNER_SLOW, Ordering::Relaxed);
        self.refresh_current(class);
        true
    }

    /// Moves a page from the full queue back to its bin (it got a free block).
    /// After a local free (`local`), a page of big blocks (indexed classes)
    /// becomes the current page, so the next allocation of its class reuses
    /// the block freed last: the caller has just touched it, its memory is
    /// still in the TLB and caches (rptest, E40). Other pages go to the
    /// back: a small-class page parked again after one reuse would cost a
    /// park and an unpark per block (xmalloc@2 lost 14% that way), and the
    /// blocks of remote frees were touched on another core.
    ///
    /// # Safety
    /// `page` must be on this heap's full queue for its class.
    pub unsafe fn unpark_full(&self, page: *mut Page, local: bool) {
        // SAFETY: caller's contract.
        let p = unsafe { &*page };
        let class = p.class();
        // Stop asking for notifications (a remote free may have cleared it already).
        p.thread_free.clear_notify();
        // SAFETY: moving between our own queues.
        unsafe {
            self.full[class].remove(page);
            self.bins[class].push_back(page);
        }
        p.in_full.set(false);
        self.restore_owner(p);
        if self.bins[class].first.get() == page {
            self.refresh_current(class);
        }
        if local && is_indexed_class(class) {
            // SAFETY: the page is now on bins[class], an indexed class.
            unsafe { self.make_current(page) };
        }
    }

    /// A local free gave a block back to `page`, a page of big blocks on
    /// its bin: it becomes the current page, so that the next allocation
    /// of its class reuses the block just freed, whose memory the caller
    /// has just touched (see [`unpark_full`](Self::unpark_full)).
    ///
    /// # Safety
    /// `page` must be on this heap's bin queue for its class, which must be
    /// an indexed class (no direct-table entries to refresh).
    pub unsafe fn make_current(&self, page: *mut Page) {
        // SAFETY: caller's contract.
        let class = unsafe { (*page).class() };
        let displaced = self.bins[class].first.get();
        if displaced != page {
            // SAFETY: the page is on bins[class] (caller).
            unsafe { self.bins[class].move_to_front(page) };
            self.refresh_current(class);
            // SAFETY: the former first page of our bin.
            unsafe { self.retire_if_empty(displaced, class) };
        }
    }

    /// `page`, on `bins[class]` and no longer the current page, goes back
    /// to the arena if it holds no block: a page that emptied while it was
    /// current was kept (`page_emptied`), and once another page takes its
    /// place nothing else would give it back.
    ///
    /// # Safety
    /// `page` must be on this heap's `bins[class]`, not first.
    unsafe fn retire_if_empty(&self, page: *mut Page, class: Class) {
        // SAFETY: caller's contract.
        if self.page_is_empty(unsafe { &*page }) {
            // SAFETY: on bins[class] and empty.
            unsafe { self.retire(page, class) };
        }
    }

    /// Sets a page's owner word: slow frees while it is parked as full, or
    /// when profiling needs them (it holds samples, or sampling is on: local
    /// frees must then go to `local_free`, not lengthen the `free` list the
    /// profiler cut; see `profile::on_slow_alloc`); on indexed pages, frees
    /// straight to the free index (`OWNER_INDEXED`) on the current page
    /// and slow ones elsewhere (which make their page current, E40).
    pub fn restore_owner(&self, page: &Page) {
        let flags = if page.in_full.get() || crate::profile::page_has_samples(page) || crate::profile::active() {
            OWNER_SLOW
        } else if is_indexed_class(page.class()) {
            if ptr::eq(self.pinned[page.class()].get(), page) {
                OWNER_INDEXED
            } else {
                OWNER_SLOW
            }
        } else {
            0
        };
        page.owner.store(self.key() | flags, Ordering::Relaxed);
    }

    /// Handles remote frees into full pages: every full page of a notified
    /// class that got blocks back returns to its bin.
    ///
    /// # Safety
    /// Only the owning thread may call this.
    pub unsafe fn process_notifications(&self) {
        for (word, bits) in self.notify.iter().enumerate() {
            if bits.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut pending = bits.swap(0, Ordering::Acquire);
            while pending != 0 {
                let class = word * 64 + pending.trailing_zeros() as usize;
                pending &= pending - 1;
                let mut page = self.full[class].first.get();
                while !page.is_null() {
                    // SAFETY: pages on our full queue are ours.
                    let next = unsafe { (*page).next.get() };
                    // SAFETY: as above.
                    if unsafe { (*page).thread_free.has_blocks() } {
                        // SAFETY: the page is on full[class].
                        unsafe { self.unpark_full(page, false) };
                    }
                    page = next;
                }
            }
        }
    }

    /// A local free left `page` with no allocated block. Keeps it if it is
    /// the current page of its class (so alternating malloc/free does not
    /// thrash), otherwise gives its span back to the arena.
    ///
    /// # Safety
    /// `page` must be a class page on this heap's bin queue with `used == 0`.
    #[cold]
    pub unsafe fn page_emptied(&self, page: *mut Page) {
        // SAFETY: caller's contract.
        let class = unsafe { (*page).class() };
        if self.bins[class].first.get() == page {
            return;
        }
        // SAFETY: as above.
        unsafe { self.retire(page, class) };
    }

    /// Removes an empty page from its bin and frees its span.
    ///
    /// # Safety
    /// `page` must be on `bins[class]` and hold no allocated block.
    unsafe fn retire(&self, page: *mut Page, class: Class) {
        // SAFETY: caller's contract.
        unsafe {
            self.take_counts(&*page);
            self.bins[class].remove(page);
        }
        self.refresh_current(class);
        stats::bump(&self.counters.pages_freed);
        // SAFETY: the page is ours, empty and off every queue.
        unsafe { self.free_span(page) };
    }

    /// Keeps the span of an emptied page as a spare when there is room
    /// (not in hardened builds, which keep every freed span to the arena's
    /// checks), else gives it back to the arena.
    ///
    /// # Safety
    /// `page` must be the first descriptor of a span the arena handed to
    /// this heap, holding no live block, on no queue.
    unsafe fn free_span(&self, page: *mut Page) {
        // SAFETY: caller's contract.
        let p = unsafe { &*page };
        let slices = p.span_slices.get() as usize;
        let held: usize = self
            .spare
            .iter()
            .map(|c| c.get())
            .filter(|s| !s.is_null())
            .map(|s| {
                // SAFETY: spares are descriptors of our spans (the invariant).
                unsafe { (*s).span_slices.get() as usize }
            })
            .sum();
        let slot = self.spare.iter().find(|c| c.get().is_null());
        match slot {
            Some(slot) if !crate::secure::ENABLED && held + slices <= SPARE_SLICES && !self.is_sentinel() => {
                p.clear();
                slot.set(page);
            }
            // SAFETY: forwarded contract.
            _ => unsafe { arena::free_page_span(page) },
        }
    }

    /// Gives back the span of one empty current page of another class
    /// whose pages span `slices` slices, if there is one, for a new page of
    /// `class` to take (as a spare, or from the arena, which hands out
    /// recently used slices first). A class keeps its current page when it
    /// empties, so that a loop allocating and freeing one block does not
    /// make a page each time; but a class that served a few short-lived
    /// blocks then holds their memory until it is used again, while the
    /// next new page of another class would touch fresh memory. sqlite's
    /// `CREATE INDEX` leaves some twenty such pages of 2-9 KiB blocks, cc1
    /// some twenty of 8-64 KiB blocks (docs/PERFORMANCE.md E74, E75). The
    /// class that loses its page takes a new one at its next allocation.
    /// Called only when no spare span fits, and not in hardened builds.
    ///
    /// Looks at the indexed classes whose current page a free left empty
    /// (`maybe_empty`), then, if none is, at the current page of every
    /// small class (`pinned_classes`): only its descriptor tells whether
    /// such a page is empty (their frees are the fast path, which marks
    /// nothing). Each page looked at is a line that is usually cold by
    /// then: looking at every class's current page in class order read
    /// some twenty descriptors of classes holding live blocks for each
    /// page remade in latency@2 (docs/PERFORMANCE.md E77).
    fn retire_empty_current(&self, class: Class, slices: usize) {
        // Retires `other`'s current page if another class may take its span
        // and it holds no block; whether it did.
        let take_if_empty = |other: Class| {
            let page = self.pinned[other].get();
            // SAFETY: callers pass only classes set in `pinned_classes`,
            // whose pinned page is not null and ours (the invariants).
            let empty = self.page_is_empty(unsafe { &*page });
            if empty {
                // SAFETY: the pinned page is the first of `bins[other]`, and
                // it holds no block.
                unsafe { self.retire(page, other) };
            }
            empty
        };
        let fits = |other: Class| other != class && page_slices(other) == slices;
        for (word, hints) in self.maybe_empty.iter().enumerate() {
            let mut pending = hints.get() & self.pinned_classes[word].get();
            while pending != 0 {
                let bit = pending & pending.wrapping_neg();
                pending &= pending - 1;
                let other = word * 64 + bit.trailing_zeros() as usize;
                if !fits(other) {
                    continue;
                }
                hints.set(hints.get() & !bit);
                if take_if_empty(other) {
                    return;
                }
            }
        }
        // Small classes only: a free that empties an indexed class's
        // current page always marks it, and only a free empties one
        // (remote frees count as allocated until the owner collects them,
        // which it does to allocate from the page).
        let mut pending = self.pinned_classes[0].get() & SMALL_CLASS_BITS;
        while pending != 0 {
            let other = pending.trailing_zeros() as usize;
            pending &= pending - 1;
            if fits(other) && take_if_empty(other) {
                return;
            }
        }
    }

    /// A free by this heap's thread left the current page of the indexed
    /// `class` holding no allocated block: marks it for
    /// [`Heap::retire_empty_current`].
    #[inline]
    pub fn note_emptied_current(&self, class: Class) {
        let word = &self.maybe_empty[class / 64];
        word.set(word.get() | 1 << (class % 64));
    }

    /// Takes a spare span of `slices` slices, if this heap keeps one.
    fn take_spare(&self, slices: usize) -> Option<*mut Page> {
        let slot = self.spare.iter().find(|c| {
            let s = c.get();
            // SAFETY: spares are descriptors of our spans (the invariant).
            !s.is_null() && unsafe { (*s).span_slices.get() } as usize == slices
        })?;
        Some(slot.replace(ptr::null_mut()))
    }

    /// Gives every spare span back to the arena.
    fn release_spares(&self) {
        for slot in &self.spare {
            let page = slot.replace(ptr::null_mut());
            if !page.is_null() {
                // SAFETY: a spare: our span, empty, on no queue (the invariant).
                unsafe { arena::free_page_span(page) };
            }
        }
    }

    /// Whether this is one of the static heaps, which keep no state.
    pub(crate) fn is_sentinel(&self) -> bool {
        let me = self as *const Heap as *mut Heap;
        me == empty_heap() || me == dead_heap()
    }

    /// Collects every page's remote and local frees and gives empty pages
    /// back; with `force`, also the current page of each class.
    ///
    /// # Safety
    /// Only the owning thread may call this.
    pub unsafe fn collect(&self, force: bool) {
        // SAFETY: owner-only work on our own pages.
        unsafe {
            crate::free::flush_free_cache(self);
            self.held.send(self);
            self.process_notifications();
        }
        for class in 0..CLASS_COUNT {
            let mut page = self.bins[class].first.get();
            while !page.is_null() {
                // SAFETY: pages on our queues are ours.
                let p = unsafe { &*page };
                let next = p.next.get();
                // Before `collect` refills `free` (see `Page::alloc_mark`).
                self.take_counts(p);
                // SAFETY: as above.
                unsafe { p.collect() };
                let empty = self.page_is_empty(p);
                if empty && (force || self.bins[class].first.get() != page) {
                    // SAFETY: the page is on bins[class] and empty.
                    unsafe { self.retire(page, class) };
                }
                page = next;
            }
        }
        if force {
            self.release_spares();
        }
    }

    /// Gives up every page at thread exit: empty pages go back to the arena,
    /// the others are abandoned for other threads to reclaim.
    ///
    /// # Safety
    /// Only the owning thread may call this, once, at its exit.
    pub unsafe fn abandon_all(&self) {
        // SAFETY: the pages were ours; each is off every queue when passed.
        self.drain(|_, page| unsafe { abandon::abandon(page) });
    }

    /// Takes every class page off this heap's queues, takes its counts, and
    /// hands it to `f` (with its class); the direct table is left pointing
    /// at the empty page.
    fn drain(&self, mut f: impl FnMut(Class, *mut Page)) {
        for class in 0..CLASS_COUNT {
            // A class this heap holds no page of has nothing to drain, and
            // its pin and direct entries are already clear (the
            // invariants): a thread that used a few classes exits without
            // walking the other eighty (docs/PERFORMANCE.md E73).
            if self.bins[class].first.get().is_null()
                && self.full[class].first.get().is_null()
                && self.pinned[class].get().is_null()
            {
                continue;
            }
            // Before any page leaves: `f` may hand it to another thread.
            self.unpin(class);
            for queue in [&self.bins[class], &self.full[class]] {
                loop {
                    // SAFETY: our own queue (every caller is the owner).
                    let page = unsafe { queue.pop_front() };
                    if page.is_null() {
                        break;
                    }
                    // SAFETY: a page of ours, now off every queue.
                    self.take_counts(unsafe { &*page });
                    f(class, page);
                }
            }
            self.refresh_current(class);
        }
        self.release_spares();
    }
}

impl Heap {
    /// Gives up every page of a thread at its exit: those of its
    /// first-class heaps (which become orphans: their handles must not be
    /// used any more) and those of its default heap (`self`).
    ///
    /// # Safety
    /// Only the owning thread may call this, once, at its exit.
    pub unsafe fn abandon_thread(&self) {
        // Before any page leaves: the cached blocks are counted in theirs.
        // SAFETY: our own default heap (caller).
        unsafe { crate::free::flush_free_cache(self) };
        let mut heap = self.family.get();
        while !heap.is_null() {
            // SAFETY: the thread's first-class heaps are valid and ours.
            unsafe {
                let next = (*heap).sibling_next.get();
                (*heap).abandon_all();
                (*heap).forget_large();
                (*heap).family.set(ptr::null_mut());
                (*heap).owner_key.set(0);
                stats::report_all(&*heap);
                stats::retire_counters(&(*heap).counters);
                heap = next;
            }
        }
        self.family.set(ptr::null_mut());
        // SAFETY: forwarded contract.
        unsafe { self.abandon_all() };
    }

    /// Records a large or huge block of a first-class heap (so that
    /// `destroy` can free it). No-op for default heaps.
    ///
    /// # Safety
    /// `page` must be the descriptor of a live large or huge block on no list.
    pub unsafe fn track_large(&self, page: *mut Page) {
        if !self.first_class.get() {
            return;
        }
        // SAFETY: caller's contract.
        unsafe { (*page).heap.store(self as *const Heap as *mut Heap, Ordering::Relaxed) };
        let list = self.large.lock();
        // SAFETY: we hold the lock; the page is on no list.
        unsafe { list.0.push_back(page) };
    }

    /// Forgets a large or huge block that is being freed (any thread).
    ///
    /// # Safety
    /// `page` must be the descriptor of a live large or huge block.
    pub unsafe fn untrack_large(page: *mut Page) {
        // SAFETY: caller's contract.
        let heap = unsafe { (*page).heap.load(Ordering::Relaxed) };
        if heap.is_null() {
            return;
        }
        // SAFETY: heaps are never unmapped.
        let list = unsafe { (*heap).large.lock() };
        // SAFETY: a tracked block is on its heap's list (we hold its lock).
        unsafe {
            if (*page).heap.load(Ordering::Relaxed) == heap {
                list.0.remove(page);
                (*page).heap.store(ptr::null_mut(), Ordering::Relaxed);
            }
        }
    }

    /// Stops tracking every large block (they become ordinary blocks that
    /// any thread frees as usual).
    fn forget_large(&self) {
        let list = self.large.lock();
        loop {
            // SAFETY: we hold the lock.
            let page = unsafe { list.0.pop_front() };
            if page.is_null() {
                break;
            }
            // SAFETY: tracked blocks are live large or huge blocks.
            unsafe { (*page).heap.store(ptr::null_mut(), Ordering::Relaxed) };
        }
    }

    /// Frees every block of a first-class heap at once and gives the heap
    /// back to the pool.
    ///
    /// # Safety
    /// Only the owning thread may call this; no block of the heap may be
    /// used (or freed) afterwards, by any thread.
    pub unsafe fn destroy(&self) {
        self.drain(|class, page| {
            // SAFETY: our page, off every queue; its blocks die with it
            // (their profiling samples too: no free will come for them).
            unsafe {
                let live = live_blocks(&*page);
                stats::add(&self.counters.frees[class], live as u64);
                stats::bump(&self.counters.pages_freed);
                profile::on_page_freed(&*page);
                arena::free_page_span(page);
            }
        });
        let list = self.large.lock();
        loop {
            // SAFETY: we hold the lock.
            let page = unsafe { list.0.pop_front() };
            if page.is_null() {
                break;
            }
            // SAFETY: tracked blocks are live large or huge blocks of ours;
            // a block that a racing (invalid) free claimed is left to it.
            unsafe {
                (*page).heap.store(ptr::null_mut(), Ordering::Relaxed);
                if let Some(kind) = (*page).claim_big() {
                    free_big_block(page, kind);
                }
            }
        }
        drop(list);
        self.unlink_from_family();
        // SAFETY: the heap holds nothing any more and the caller drops it.
        unsafe { heap_release(self as *const Heap as *mut Heap) };
    }

    /// Hands every page and block of a first-class heap to its thread's
    /// default heap (the blocks stay valid) and gives the heap back to the pool.
    ///
    /// # Safety
    /// Only the owning thread may call this, and not use the heap afterwards.
    pub unsafe fn delete(&self) {
        let default = self.family.get();
        if default.is_null() {
            return;
        }
        // SAFETY: the family link of a live first-class heap is the thread's
        // default heap, which the calling thread owns.
        let default = unsafe { &*default };
        self.drain(|class, page| {
            // SAFETY: our page moves to another heap of the same thread.
            unsafe {
                let p = &*page;
                p.thread_free.clear_notify();
                p.heap.store(default as *const Heap as *mut Heap, Ordering::Relaxed);
                p.in_first_class.store(false, Ordering::Relaxed);
                p.in_full.set(false);
                default.restore_owner(p);
                default.bins[class].push_back(page);
            }
        });
        for class in 0..CLASS_COUNT {
            default.refresh_current(class);
        }
        self.forget_large();
        self.unlink_from_family();
        // SAFETY: the heap holds nothing any more.
        unsafe { heap_release(self as *const Heap as *mut Heap) };
    }

    /// Calls `visit(block, usable_size)` for every live block of this heap
    /// (class pages; and large and huge blocks of first-class heaps). Stops
    /// early when `visit` returns `false`. Returns whether it visited all.
    ///
    /// Big blocks are visited with the `large` lock held, so `visit` must
    /// not call `fork` (whose handlers take it; see `fork.rs`).
    ///
    /// # Safety
    /// Only the owning thread may call this; `visit` must not allocate from
    /// or free into this heap.
    pub unsafe fn walk(&self, visit: &mut dyn FnMut(*mut u8, usize) -> bool) -> bool {
        // `visit` may create a thread while the `large` lock is held, which
        // `fork::before_lock` cannot foresee: the handlers go in first.
        crate::fork::register();
        // Cached blocks are free, though their pages count them.
        // SAFETY: the owner (caller); a first-class heap caches nothing.
        unsafe { crate::free::flush_free_cache(self) };
        for class in 0..CLASS_COUNT {
            for queue in [&self.bins[class], &self.full[class]] {
                let mut page = queue.first.get();
                while !page.is_null() {
                    // SAFETY: pages on our queues are ours.
                    let p = unsafe { &*page };
                    // SAFETY: as above.
                    if !unsafe { walk_page(page, visit) } {
                        return false;
                    }
                    page = p.next.get();
                }
            }
        }
        let list = self.large.lock();
        let mut page = list.0.first.get();
        while !page.is_null() {
            // SAFETY: tracked blocks are live; we hold the lock.
            let p = unsafe { &*page };
            if !visit(p.start.get(), p.block_size.get() - crate::secure::TRAILER) {
                return false;
            }
            page = p.next.get();
        }
        true
    }
}

/// Frees a large or huge block of kind `kind`, claimed with `Page::claim_big`
/// (its profiling sample, if any, goes with it).
///
/// # Safety
/// `page` must be the descriptor of a large or huge block the caller
/// claimed, untracked.
pub unsafe fn free_big_block(page: *mut Page, kind: PageKind) {
    // SAFETY: caller's contract.
    unsafe {
        profile::on_free(&*page, (*page).start.get());
        if kind == PageKind::Huge {
            stats::big_freed((*page).block_size.get());
            huge::free_huge(page);
        } else {
            stats::big_freed((*page).block_size.get());
            arena::free_page_span(page);
        }
    }
}

/// Live (allocated) blocks of a class page: `used` once `thread_free` is
/// collected.
///
/// # Safety
/// The caller must own the page.
unsafe fn live_blocks(page: &Page) -> usize {
    // SAFETY: forwarded contract.
    unsafe { page.collect_thread_free() };
    page.used.get() as usize
}

/// Visits the live blocks of one class page: every carved block that is on
/// none of its free lists.
///
/// # Safety
/// `raw` must be the descriptor (in a live chunk) of a page the caller owns.
unsafe fn walk_page(raw: *mut Page, visit: &mut dyn FnMut(*mut u8, usize) -> bool) -> bool {
    // SAFETY: caller's contract.
    let page = unsafe { &*raw };
    const MAX_BLOCKS: usize = crate::chunk::SLICE_SIZE * crate::size_class::MEDIUM_PAGE_SLICES / WORD / 8;
    let mut free_bits = [0u64; MAX_BLOCKS / 64 + 1];
    // SAFETY: owner-only.
    unsafe { page.collect_thread_free() };
    if is_indexed_class(page.class()) {
        for index in page.free_index.blocks() {
            free_bits[index / 64] |= 1 << (index % 64);
        }
    }
    for list in [page.free.get(), page.local_free.get()] {
        let mut block = list;
        while !block.is_null() {
            if let Some(index) = page.block_index(block as usize) {
                free_bits[index / 64] |= 1 << (index % 64);
            }
            // SAFETY: blocks on our lists are free blocks of the page.
            block = unsafe { page.next_of(block) };
        }
    }
    let size = page.block_size.get();
    for index in 0..page.capacity() as usize {
        if free_bits[index / 64] & (1 << (index % 64)) == 0 {
            let block = page.start.get().wrapping_add(index * size);
            if !visit(block, size - crate::secure::TRAILER) {
                return false;
            }
        }
    }
    true
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------
// The heap pool: heaps are never returned to the OS, so that a stale heap
// address (read by a remote free racing with a thread exit) is always valid.
// ---------------------------------------------------------------------------

/// The free list of unused heaps, and the untouched rest of the last batch
/// mapped for them.
///
/// Invariant: `fresh_left` heaps' worth of memory from `fresh` on lies in a
/// mapping of ours that no heap uses yet and that was never written (so it
/// holds no resident memory).
pub struct HeapPool {
    free: *mut Heap,
    fresh: *mut Heap,
    fresh_left: usize,
}
// SAFETY: the raw pointers are only used under the pool lock.
unsafe impl Send for HeapPool {}

/// Set once the process has made a first-class heap (never cleared):
/// until then no page is a first-class heap's, and a remote free need not
/// read `Page::in_first_class`, on the descriptor's second line, which a
/// remote free otherwise does not read (`held_frees::may_hold`,
/// docs/PERFORMANCE.md E81, E102). Set before the heap
/// makes its first page, so before any of its blocks can reach another
/// thread.
static FIRST_CLASS_SEEN: AtomicBool = AtomicBool::new(false);

/// Whether the process has made a first-class heap ([`FIRST_CLASS_SEEN`]).
#[inline]
pub fn first_class_heaps_made() -> bool {
    FIRST_CLASS_SEEN.load(Ordering::Relaxed)
}

/// Unused heaps (locked around `fork` too).
pub static POOL: Mutex<HeapPool> = Mutex::new(HeapPool {
    free: ptr::null_mut(),
    fresh: ptr::null_mut(),
    fresh_left: 0,
});

/// Takes a heap from the pool, or builds one in the batch mapped for heaps
/// (mapping a new batch when it is used up); null when out of memory.
///
/// Heaps are built one at a time, when first needed: building a whole
/// batch up front wrote all of its 64 KiB, resident in every process
/// although most run one or two threads (docs/PERFORMANCE.md E44).
pub fn heap_acquire() -> *mut Heap {
    let mut pool = POOL.lock();
    if !pool.free.is_null() {
        let heap = pool.free;
        // SAFETY: heaps on the pool list are valid and unused.
        pool.free = unsafe { (*heap).pool_next.get() };
        return heap;
    }
    if pool.fresh_left == 0 {
        const BATCH: usize = 64 * 1024;
        let Some(mem) = crate::huge::map_or_flush(BATCH, 4096) else {
            return ptr::null_mut();
        };
        stats::os_mapped(BATCH);
        pool.fresh = mem.as_ptr().cast();
        pool.fresh_left = BATCH / core::mem::size_of::<Heap>();
    }
    let heap = pool.fresh;
    pool.fresh = heap.wrapping_add(1);
    pool.fresh_left -= 1;
    // SAFETY: `heap` is the first unused slot of the batch (the pool's
    // invariant), suitably aligned (the mapping is page-aligned and slots
    // are `size_of::<Heap>()` apart); once registered it is never unmapped.
    unsafe {
        heap.write(Heap::new());
        register(heap);
    }
    heap
}

/// Returns a heap (with no pages left) to the pool.
///
/// # Safety
/// `heap` must come from [`heap_acquire`] and no thread may use it anymore.
pub unsafe fn heap_release(heap: *mut Heap) {
    let mut pool = POOL.lock();
    // SAFETY: the heap is ours; resetting it keeps the notify words valid
    // for any racing remote free, which then just sets a stale bit.
    unsafe {
        (*heap).held.send(&*heap);
        (*heap).notify[0].store(0, Ordering::Relaxed);
        (*heap).notify[1].store(0, Ordering::Relaxed);
        (*heap).slow_calls.set(0);
        (*heap).borrowers_split.set(0);
        (*heap).owner_key.set(0);
        (*heap).first_class.set(false);
        stats::report_all(&*heap);
        stats::retire_counters(&(*heap).counters);
        (*heap).pool_next.set(pool.free);
    }
    pool.free = heap;
}

/// Every heap ever made, newest first (heaps are never unmapped).
static REGISTRY: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());

/// Adds a new heap to the registry.
///
/// # Safety
/// `heap` must be valid forever and not registered yet.
unsafe fn register(heap: *mut Heap) {
    let mut head = REGISTRY.load(Ordering::Relaxed);
    loop {
        // SAFETY: caller's contract.
        unsafe { (*heap).registry_next.store(head, Ordering::Relaxed) };
        match REGISTRY.compare_exchange_weak(head, heap, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(current) => head = current,
        }
    }
}

/// `fork`: the newest heap whose `large` lock `lock_large_for_fork` took.
static FORK_LOCKED: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());

/// Calls `f` on the registered heaps from `from` (inclusive) down to
/// `until` (exclusive; null: to the oldest).
fn each_registered(from: *mut Heap, until: *mut Heap, mut f: impl FnMut(&Heap)) {
    let mut heap = from;
    while !heap.is_null() && heap != until {
        // SAFETY: registered heaps are valid forever, and their registry
        // link never changes once set.
        unsafe {
            f(&*heap);
            heap = (*heap).registry_next.load(Ordering::Acquire);
        }
    }
}

/// `fork` (see `fork.rs` for the order): takes the `large` lock of every
/// heap registered since the last call of this `prepare` (all of them on
/// the first), and returns whether the heap pool is now locked with no
/// heap registered meanwhile. `lock_pool` is called once the heaps are
/// locked, and must lock the pool (and whatever comes between);
/// `unlock_pool` undoes it when a heap was registered in the meantime
/// (heaps are only registered with the pool locked), and the caller then
/// calls this again to lock the newcomers.
pub fn lock_large_for_fork(lock_pool: impl FnOnce(), unlock_pool: impl FnOnce()) -> bool {
    let locked = FORK_LOCKED.load(Ordering::Relaxed);
    let head = REGISTRY.load(Ordering::Acquire);
    each_registered(head, locked, |heap| heap.large.lock_for_fork());
    FORK_LOCKED.store(head, Ordering::Relaxed);
    lock_pool();
    if REGISTRY.load(Ordering::Acquire) == head {
        return true;
    }
    unlock_pool();
    false
}

/// `fork`, in the parent: releases the `large` locks that
/// [`lock_large_for_fork`] took.
///
/// # Safety
/// The calling thread must hold them through `lock_large_for_fork`.
pub unsafe fn unlock_large_after_fork() {
    let locked = FORK_LOCKED.swap(ptr::null_mut(), Ordering::Relaxed);
    each_registered(locked, ptr::null_mut(), |heap| {
        // SAFETY: caller's contract: `prepare` locked every heap from
        // `locked` down.
        unsafe { heap.large.unlock_after_fork() }
    });
}

/// `fork`, in the child: frees the `large` lock of every heap (their lists
/// are consistent: the parent held the locks across the fork).
///
/// # Safety
/// Only in the child of `fork`, while it is single-threaded.
pub unsafe fn reset_large_in_child() {
    FORK_LOCKED.store(ptr::null_mut(), Ordering::Relaxed);
    each_registered(REGISTRY.load(Ordering::Acquire), ptr::null_mut(), |heap| {
        // SAFETY: forwarded contract.
        unsafe { heap.large.reset_in_child() }
    });
}

/// Calls `f` on the counters of every heap ever made (for statistics).
pub fn for_each_heap_counters(mut f: impl FnMut(&HeapCounters)) {
    let mut heap = REGISTRY.load(Ordering::Acquire);
    while !heap.is_null() {
        // SAFETY: registered heaps are valid forever; we touch only their
        // counters (atomics) and their registry link, which never changes.
        unsafe {
            f(&(*heap).counters);
            heap = (*heap).registry_next.load(Ordering::Acquire);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::resident;

    #[test]
    #[cfg_attr(miri, ignore = "mincore")]
    fn the_pool_writes_a_heap_only_when_it_is_taken() {
        let heap = heap_acquire();
        assert!(!heap.is_null());
        let pool = POOL.lock();
        // Heaps taken by other tests may have used up the batch; a fresh
        // batch then holds only the heap just taken.
        let untouched = pool.fresh_left * core::mem::size_of::<Heap>();
        if untouched >= 2 * 4096 {
            let last = pool.fresh as usize + untouched - 1;
            assert!(!resident(last), "the last unused heap slot at {last:#x} was written");
        }
        drop(pool);
        // SAFETY: taken above, used by no thread.
        unsafe { heap_release(heap) };
    }

    #[test]
    #[cfg_attr(miri, ignore = "mincore and madvise")]
    // The hardened build indexes no class (`is_indexed_class`): its free
    // blocks are on linked lists whose checks live in the links, and the
    // sweep has no index to read.
    #[cfg(not(feature = "secure"))]
    fn blocks_free_for_a_whole_sweep_interval_are_purged_and_reused_ones_wait_again() {
        const SIZE: usize = 32 * 1024;
        let layout = core::alloc::Layout::from_size_align(SIZE, 16).unwrap();
        let handle = crate::heap_handle::Heap::new().expect("a heap");
        // SAFETY: the handle's heap, owned by this thread.
        let heap = unsafe { &*handle.as_raw() };
        let blocks: [*mut u8; 6] = core::array::from_fn(|_| handle.alloc(layout));
        for &block in &blocks {
            assert!(!block.is_null());
            // SAFETY: a live block of SIZE bytes.
            unsafe { ptr::write_bytes(block, 0xa5, SIZE) };
        }
        // The whole OS pages inside a block.
        let interior =
            |block: *mut u8| ((block as usize).next_multiple_of(4096)..(block as usize + SIZE) & !4095).step_by(4096);
        let all_resident = |block: *mut u8| interior(block).all(resident);
        let none_resident = |block: *mut u8| !interior(block).any(resident);
        // blocks[0] stays live, so the page stays.
        for &block in &blocks[1..] {
            // SAFETY: a live block of the handle's heap.
            unsafe { handle.dealloc(block, layout) };
        }
        let mut now = 1 << 40;
        heap.sweep_free_blocks(now);
        for &block in &blocks[1..] {
            assert!(all_resident(block), "a block just freed was purged at the first sweep");
        }
        // One block is reused and freed again between the sweeps: it starts over.
        let again = handle.alloc(layout);
        assert!(blocks[1..].contains(&again), "the index handed out {again:?}");
        // SAFETY: a live block of SIZE bytes, then freed.
        unsafe {
            ptr::write_bytes(again, 0x5a, SIZE);
            handle.dealloc(again, layout);
        }
        now += 1 << 20;
        heap.sweep_free_blocks(now);
        for &block in &blocks[1..] {
            if block == again {
                assert!(
                    all_resident(block),
                    "a block freed again since the last sweep was purged"
                );
            } else {
                assert!(
                    none_resident(block),
                    "a block free for a whole interval stayed resident"
                );
            }
        }
        assert!(all_resident(blocks[0]), "the live block was purged");
        // SAFETY: the live block holds SIZE bytes.
        assert!(unsafe { core::slice::from_raw_parts(blocks[0], SIZE) }
            .iter()
            .all(|&b| b == 0xa5));
        // Not due yet: nothing happens.
        heap.sweep_free_blocks(now + 1);
        assert!(all_resident(again));
        now += 1 << 20;
        heap.sweep_free_blocks(now);
        assert!(
            none_resident(again),
            "the reused block was not purged after its own interval"
        );
        // The purged blocks come back usable (the index's flags are not part
        // of the numbers it hands out).
        let back: [*mut u8; 5] = core::array::from_fn(|_| handle.alloc(layout));
        for &block in &back {
            assert!(blocks[1..].contains(&block), "the index handed out {block:?}");
            // SAFETY: a live block of SIZE bytes.
            unsafe {
                ptr::write_bytes(block, 0x3c, SIZE);
                assert_eq!(*block.add(SIZE - 1), 0x3c);
            }
        }
        handle.destroy();
    }
}
