//! The arena: every regular chunk, and the spans of slices handed out of
//! them to pages and large blocks; it also purges free memory back to the OS.
//!
//! Spans are found in the per-chunk free-slice bitmaps, preferring slices
//! that are still backed by physical memory (reusing them costs no page
//! fault) over purged ones. Freed spans stay backed for the purge delay
//! (`OXMALLOC_PURGE_DELAY`), so that churn does not thrash the OS, then are
//! purged (`MADV_DONTNEED` by default). A chunk whose slices are all free
//! and purged is unmapped, beyond a few kept for reuse.
//!
//! All state here is guarded by one lock, taken only on slow paths: when a
//! heap needs a new page, a page becomes empty, or a large block comes or goes.

use crate::chunk::{
    self, slice_address, Chunk, ChunkKind, CHUNK_SIZE, MAP_HEADER_HERE, MAP_NONE, SLICES_PER_CHUNK, SLICE_SIZE,
};
use crate::os::{Os, Platform};
use crate::page::Page;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::Mutex;
use crate::{options, purge, stats};
use core::ptr;

/// Every slice of a chunk but the header.
const ALL_SLICES: u64 = !1;
/// Completely free chunks kept mapped after a purge (beyond them, unmapped).
const RETAINED_EMPTY_CHUNKS: usize = 2;

/// A run of slices handed out by the arena.
pub struct Span {
    /// The chunk holding the span.
    pub chunk: *mut Chunk,
    /// Index of the first slice.
    pub first: usize,
    /// Whether the span's memory is known to read as zero.
    pub fresh: bool,
}

impl Span {
    /// The span's page descriptor (that of its first slice).
    pub fn page(&self) -> *mut Page {
        Chunk::page(self.chunk, self.first)
    }
}

/// The arena's lists. Invariant: every regular chunk is on `all`; exactly
/// those with a free slice are on `avail`.
pub struct Arena {
    all: *mut Chunk,
    avail: *mut Chunk,
    chunks: usize,
}
// SAFETY: the raw pointers are only followed with the arena lock held.
unsafe impl Send for Arena {}

/// The arena (locked around `fork` too).
pub static ARENA: Mutex<Arena> = Mutex::new(Arena {
    all: ptr::null_mut(),
    avail: ptr::null_mut(),
    chunks: 0,
});

/// Free slices that still hold physical memory (waiting for their purge);
/// changed only with the arena lock held.
static DIRTY_FREE_SLICES: AtomicUsize = AtomicUsize::new(0);
/// When the oldest pending purge falls due (`u64::MAX`: nothing pending).
static NEXT_PURGE_DUE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Held by the one thread purging at a time (locked around `fork` too).
pub static PURGE_LOCK: Mutex<()> = Mutex::new(());

/// Bit mask of positions `i` where `mask` has `count` set bits starting at
/// `i`, restricted to multiples of `align` (a power of two).
#[inline]
fn runs_of(mask: u64, count: usize, align: usize) -> u64 {
    let mut runs = mask;
    let mut have = 1;
    // Doubling: after each step, bit i means bits i..i+have are all set.
    while have < count {
        let step = have.min(count - have);
        runs &= runs >> step;
        have += step;
    }
    if align > 1 {
        let mut aligned = 0u64;
        let mut i = 0;
        while i < 64 {
            aligned |= 1 << i;
            i += align;
        }
        runs &= aligned;
    }
    runs
}

/// Mask of `count` bits starting at `first`.
#[inline]
fn run_mask(first: usize, count: usize) -> u64 {
    debug_assert!(first + count <= 64 && count < 64);
    ((1u64 << count) - 1) << first
}

impl Arena {
    unsafe fn avail_push(&mut self, chunk: *mut Chunk) {
        // SAFETY: the caller holds the lock; chunks on our lists are valid.
        unsafe {
            let c = &mut *chunk;
            if c.in_avail {
                return;
            }
            c.in_avail = true;
            c.avail_prev = ptr::null_mut();
            c.avail_next = self.avail;
            if !self.avail.is_null() {
                (*self.avail).avail_prev = chunk;
            }
            self.avail = chunk;
        }
    }

    unsafe fn avail_remove(&mut self, chunk: *mut Chunk) {
        // SAFETY: the caller holds the lock; chunks on our lists are valid.
        unsafe {
            let c = &mut *chunk;
            if !c.in_avail {
                return;
            }
            c.in_avail = false;
            if c.avail_prev.is_null() {
                self.avail = c.avail_next;
            } else {
                (*c.avail_prev).avail_next = c.avail_next;
            }
            if !c.avail_next.is_null() {
                (*c.avail_next).avail_prev = c.avail_prev;
            }
            c.avail_next = ptr::null_mut();
            c.avail_prev = ptr::null_mut();
        }
    }

    /// Maps a new chunk and puts it on the lists; null when out of memory.
    fn map_chunk(&mut self) -> *mut Chunk {
        if !stats::may_map(CHUNK_SIZE) {
            return ptr::null_mut();
        }
        // (Lock order: the arena lock, then the huge cache's.)
        let Some(mem) = crate::huge::map_or_flush(CHUNK_SIZE, CHUNK_SIZE) else {
            return ptr::null_mut();
        };
        stats::os_mapped(CHUNK_SIZE);
        let chunk = mem.as_ptr().cast::<Chunk>();
        // SAFETY: fresh zeroed memory of CHUNK_SIZE bytes, aligned for Chunk;
        // all-zero bytes are valid unused page descriptors, and we set the rest.
        unsafe {
            let c = &mut *chunk;
            c.kind = ChunkKind::Regular;
            c.free_mask = ALL_SLICES;
            c.dirty_mask = 0;
            c.nonzero_mask = 0;
            c.purging_mask = 0;
            c.next = self.all;
            c.mapping = mem.as_ptr();
            c.mapping_size = CHUNK_SIZE;
            if !options::allow_thp() {
                Os::advise_huge_pages(mem.as_ptr(), CHUNK_SIZE, false);
            }
            if crate::secure::ENABLED {
                // A guard page between the header and the first blocks.
                let page = Os::page_size();
                Os::protect(mem.as_ptr().add(SLICE_SIZE - page), page, true);
            }
        }
        self.all = chunk;
        self.chunks += 1;
        // SAFETY: the chunk is valid and we hold the lock.
        unsafe { self.avail_push(chunk) };
        chunk::map_set(chunk as usize, 1, MAP_HEADER_HERE);
        chunk
    }
}

/// Whether a span of `slices` slices aligned to `align_slices` fits in a chunk.
pub fn span_fits(slices: usize, align_slices: usize) -> bool {
    let first = if align_slices > 1 { align_slices } else { 1 };
    slices > 0 && first + slices <= SLICES_PER_CHUNK
}

/// Hands out `slices` contiguous slices whose first slice index is a
/// multiple of `align_slices`. `None` when out of memory (or the span does
/// not fit in a chunk, see [`span_fits`]).
pub fn alloc_span(slices: usize, align_slices: usize) -> Option<Span> {
    if !span_fits(slices, align_slices) {
        return None;
    }
    let mut arena = ARENA.lock();
    let mut found: Option<(*mut Chunk, usize)> = None;
    let mut fallback: Option<(*mut Chunk, usize)> = None;
    let mut scanned = 0;
    let mut chunk = arena.avail;
    while !chunk.is_null() {
        // SAFETY: chunks on the avail list are valid; we hold the lock.
        let c = unsafe { &*chunk };
        let usable = c.free_mask & !c.purging_mask;
        let runs = runs_of(usable, slices, align_slices);
        if runs != 0 {
            let warm = runs & runs_of(usable & c.dirty_mask, slices, align_slices);
            if warm != 0 {
                found = Some((chunk, warm.trailing_zeros() as usize));
                break;
            }
            if fallback.is_none() {
                fallback = Some((chunk, runs.trailing_zeros() as usize));
            }
        }
        scanned += 1;
        if scanned >= 8 && fallback.is_some() {
            break;
        }
        chunk = c.avail_next;
    }
    let (chunk, first) = match found.or(fallback) {
        Some(hit) => hit,
        None => {
            let chunk = arena.map_chunk();
            if chunk.is_null() {
                return None;
            }
            let runs = runs_of(ALL_SLICES, slices, align_slices);
            if runs == 0 {
                // Cannot fit even in an empty chunk (callers check this first).
                return None;
            }
            (chunk, runs.trailing_zeros() as usize)
        }
    };
    let mask = run_mask(first, slices);
    // SAFETY: `chunk` is valid and we hold the lock.
    let fresh = unsafe {
        let c = &mut *chunk;
        let fresh = c.nonzero_mask & mask == 0;
        if c.dirty_mask & (1 << first) == 0 && c.slice_page(first).freed_at.get() != 0 {
            // A span purged on the timer, in use again (see `purge::note_reuse`).
            purge::note_reuse(c.slice_page(first).freed_at.get(), Os::now_millis());
        }
        let warm = (c.dirty_mask & mask).count_ones() as usize;
        DIRTY_FREE_SLICES.fetch_sub(warm, Ordering::Relaxed);
        c.free_mask &= !mask;
        c.dirty_mask &= !mask;
        c.nonzero_mask |= mask;
        if c.free_mask == 0 {
            arena.avail_remove(chunk);
        }
        fresh
    };
    drop(arena);
    let span = Span { chunk, first, fresh };
    #[cfg(feature = "page-map")]
    crate::page_map::set(slice_address(chunk, first) as usize, slices * SLICE_SIZE, span.page());
    if crate::secure::ENABLED {
        // The span may have been a freed (protected) large block.
        // SAFETY: the span is ours.
        unsafe { Os::protect(slice_address(chunk, first), slices * SLICE_SIZE, false) };
    }
    // Later slices forward to the first one (the caller sets up the first).
    for i in 1..slices {
        // SAFETY: the span is ours; its descriptors are inside the header.
        unsafe { (*span.page().add(i)).init_forward(i) };
    }
    stats::span_allocated(slices);
    Some(span)
}

/// Gives the span of `page` back to the arena (its descriptors become unused).
///
/// # Safety
/// `page` must be the first descriptor of a span handed out by
/// [`alloc_span`], holding no live block, on no queue or list.
pub unsafe fn free_page_span(page: *mut Page) {
    let chunk = chunk::chunk_of_page(page);
    let first = chunk::slice_of_page(page);
    // SAFETY: caller's contract.
    let slices = unsafe { (*page).span_slices.get() } as usize;
    // SAFETY: forwarded contract.
    unsafe { free_slices(chunk, first, slices) };
}

/// Frees slices `first..first+count` of `chunk`.
///
/// # Safety
/// The slices must be a span (or the tail of one) owned by the caller, unused.
unsafe fn free_slices(chunk: *mut Chunk, first: usize, count: usize) {
    for i in first..first + count {
        // SAFETY: the caller's span lies in slices 1.. of `chunk`, so
        // `Chunk::page` gives each slice's valid descriptor, ours to clear.
        unsafe { (*Chunk::page(chunk, i)).clear() };
    }
    #[cfg(feature = "page-map")]
    crate::page_map::set(
        slice_address(chunk, first) as usize,
        count * SLICE_SIZE,
        ptr::null_mut(),
    );
    let delay = purge::delay_ms();
    let mut purged_now = false;
    if delay == 0 {
        // SAFETY: the slices are ours and unused.
        unsafe { purge_range(slice_address(chunk, first), count * SLICE_SIZE) };
        purged_now = true;
    }
    let mask = run_mask(first, count);
    let now = Os::now_millis();
    let mut arena = ARENA.lock();
    // The counter moves under the lock, like the masks, so that it never
    // dips below zero when another thread reuses these slices at once.
    let dirty = if purged_now {
        0
    } else {
        DIRTY_FREE_SLICES.fetch_add(count, Ordering::Relaxed) + count
    };
    // SAFETY: we hold the lock; the chunk is valid.
    unsafe {
        let c = &mut *chunk;
        c.free_mask |= mask;
        if purged_now {
            if options::purge_zeroes() {
                c.nonzero_mask &= !mask;
            }
        } else {
            c.dirty_mask |= mask;
            for i in first..first + count {
                c.slice_page(i).freed_at.set(now);
            }
        }
        arena.avail_push(chunk);
    }
    drop(arena);
    stats::span_freed(count);
    if !purged_now {
        NEXT_PURGE_DUE.fetch_min(now + delay, Ordering::Relaxed);
        purge::note_dirty(dirty * SLICE_SIZE);
    }
}

/// Extends the large block of `page` in place to `slices` slices when the
/// following slices are free. Returns whether it did.
///
/// # Safety
/// `page` must be a large-block page owned by the caller.
pub unsafe fn grow_span(page: *mut Page, slices: usize) -> bool {
    let chunk = chunk::chunk_of_page(page);
    let first = chunk::slice_of_page(page);
    // SAFETY: caller's contract.
    let old = unsafe { (*page).span_slices.get() } as usize;
    if first + slices > SLICES_PER_CHUNK || slices <= old {
        return slices <= old;
    }
    let mask = run_mask(first + old, slices - old);
    let mut arena = ARENA.lock();
    // SAFETY: we hold the lock; the chunk is valid.
    unsafe {
        let c = &mut *chunk;
        if (c.free_mask & !c.purging_mask) & mask != mask {
            return false;
        }
        DIRTY_FREE_SLICES.fetch_sub((c.dirty_mask & mask).count_ones() as usize, Ordering::Relaxed);
        c.free_mask &= !mask;
        c.dirty_mask &= !mask;
        c.nonzero_mask |= mask;
        if c.free_mask == 0 {
            arena.avail_remove(chunk);
        }
    }
    drop(arena);
    for i in old..slices {
        // SAFETY: the new slices are ours now.
        unsafe { (*page.add(i)).init_forward(i) };
    }
    #[cfg(feature = "page-map")]
    crate::page_map::set(
        slice_address(chunk, first + old) as usize,
        (slices - old) * SLICE_SIZE,
        page,
    );
    stats::span_allocated(slices - old);
    // SAFETY: caller's contract.
    unsafe { (*page).span_slices.set(slices as u32) };
    true
}

/// Shrinks the large block of `page` to `slices` slices, freeing the tail.
///
/// # Safety
/// `page` must be a large-block page owned by the caller; `0 < slices <= span`.
pub unsafe fn shrink_span(page: *mut Page, slices: usize) {
    // SAFETY: caller's contract.
    let old = unsafe { (*page).span_slices.get() } as usize;
    if slices >= old {
        return;
    }
    // SAFETY: caller's contract.
    unsafe { (*page).span_slices.set(slices as u32) };
    let chunk = chunk::chunk_of_page(page);
    let first = chunk::slice_of_page(page);
    // SAFETY: the tail slices were part of our span and hold nothing live.
    unsafe { free_slices(chunk, first + slices, old - slices) };
}

/// Purges a range, counting it.
///
/// # Safety
/// The range must be page-aligned, ours and unused.
unsafe fn purge_range(addr: *mut u8, size: usize) {
    // SAFETY: forwarded contract.
    unsafe { Os::purge(addr, size, options::purge_zeroes()) };
    stats::purged(size);
}

/// Asks for a purge pass at `due` (milliseconds, `Os::now_millis`).
pub fn schedule_purge(due: u64) {
    NEXT_PURGE_DUE.fetch_min(due, Ordering::Relaxed);
}

/// When the next purge pass is due (`u64::MAX`: nothing pending).
pub fn next_purge_due() -> u64 {
    NEXT_PURGE_DUE.load(Ordering::Relaxed)
}

/// Whether a purge is due by `now`.
#[inline]
pub fn purge_due(now: u64) -> bool {
    NEXT_PURGE_DUE.load(Ordering::Relaxed) <= now
}

/// Bytes of free memory still backed, waiting for their purge.
pub fn dirty_free_bytes() -> usize {
    DIRTY_FREE_SLICES.load(Ordering::Relaxed) * SLICE_SIZE
}

/// Purges free slices whose delay has passed (all of them with `force`),
/// and unmaps chunks that are entirely free beyond a few. Returns the bytes
/// purged. One thread purges at a time: a forced purge waits for a running
/// one to finish; an unforced one returns 0 at once instead.
pub fn purge(force: bool) -> usize {
    let _purging = if force {
        PURGE_LOCK.lock()
    } else {
        match PURGE_LOCK.try_lock() {
            Some(guard) => guard,
            None => return 0,
        }
    };
    let now = Os::now_millis();
    purge::relax(now);
    let delay = purge::delay_ms();
    NEXT_PURGE_DUE.store(u64::MAX, Ordering::Relaxed);
    let mut next_due = u64::MAX;
    let mut purged = 0;
    let mut empty_chunks = 0;
    let mut prev: *mut Chunk = ptr::null_mut();
    let mut chunk = ARENA.lock().all;
    while !chunk.is_null() {
        let mut arena = ARENA.lock();
        // SAFETY: chunks on the `all` list stay valid until this function
        // (the only one that unmaps) removes them; we hold the lock.
        let c = unsafe { &mut *chunk };
        let candidates = c.free_mask & c.dirty_mask & !c.purging_mask;
        let mut ready = 0u64;
        let mut bits = candidates;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let due = c.slice_page(i).freed_at.get().saturating_add(delay);
            if force || due <= now {
                ready |= 1 << i;
            } else {
                next_due = next_due.min(due);
            }
        }
        c.purging_mask |= ready;
        drop(arena);
        // Purge each run of ready slices outside the lock.
        let mut bits = ready;
        while bits != 0 {
            let first = bits.trailing_zeros() as usize;
            let len = (!(bits >> first)).trailing_zeros() as usize;
            // SAFETY: these slices are free and marked purging, so nobody
            // allocates them until we clear the mark.
            unsafe { purge_range(slice_address(chunk, first), len * SLICE_SIZE) };
            purged += len * SLICE_SIZE;
            bits &= !run_mask(first, len.min(63));
            if len == 64 {
                bits = 0;
            }
        }
        arena = ARENA.lock();
        let c = unsafe {
            // SAFETY: as above.
            &mut *chunk
        };
        c.purging_mask &= !ready;
        c.dirty_mask &= !ready;
        // From now on `freed_at` tells when these clean slices were purged
        // (0: a forced purge, whose reuse says nothing about the delay).
        let mut bits = ready;
        while bits != 0 {
            c.slice_page(bits.trailing_zeros() as usize)
                .freed_at
                .set(if force { 0 } else { now });
            bits &= bits - 1;
        }
        if options::purge_zeroes() {
            c.nonzero_mask &= !ready;
        }
        DIRTY_FREE_SLICES.fetch_sub(ready.count_ones() as usize, Ordering::Relaxed);
        let next = c.next;
        if c.free_mask == ALL_SLICES && c.dirty_mask == 0 && c.purging_mask == 0 {
            empty_chunks += 1;
            if empty_chunks > RETAINED_EMPTY_CHUNKS {
                // Unlink and unmap it.
                if prev.is_null() {
                    arena.all = next;
                } else {
                    // SAFETY: `prev` is a valid chunk on the list.
                    unsafe { (*prev).next = next };
                }
                // SAFETY: we hold the lock.
                unsafe { arena.avail_remove(chunk) };
                arena.chunks -= 1;
                chunk::map_set(chunk as usize, 1, MAP_NONE);
                drop(arena);
                // SAFETY: the chunk is entirely free, unlisted and unmapped
                // from the chunk map: nothing refers to it.
                unsafe { Os::unmap(chunk.cast(), CHUNK_SIZE) };
                stats::os_unmapped(CHUNK_SIZE);
                chunk = next;
                continue;
            }
        }
        drop(arena);
        prev = chunk;
        chunk = next;
    }
    NEXT_PURGE_DUE.fetch_min(next_due, Ordering::Relaxed);
    purged + crate::huge::cache_purge(now, force)
}

/// Maps chunks up front until `bytes` are reserved (`OXMALLOC_RESERVE`).
pub fn reserve(bytes: usize) {
    let mut arena = ARENA.lock();
    let mut have = arena.chunks * CHUNK_SIZE;
    while have < bytes {
        if arena.map_chunk().is_null() {
            break;
        }
        have += CHUNK_SIZE;
    }
}

/// Number of regular chunks mapped.
pub fn chunk_count() -> usize {
    ARENA.lock().chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_find_contiguous_free_bits() {
        assert_eq!(runs_of(0b1110, 3, 1), 0b0010);
        assert_eq!(runs_of(0b1110, 1, 1), 0b1110);
        assert_eq!(runs_of(0b1110, 4, 1), 0);
        assert_eq!(runs_of(ALL_SLICES, 63, 1), 0b10);
        assert_eq!(runs_of(ALL_SLICES, 2, 2).trailing_zeros(), 2);
        assert_eq!(runs_of(ALL_SLICES, 16, 16).trailing_zeros(), 16);
        // naive oracle
        let masks = [
            0u64,
            !0,
            ALL_SLICES,
            0xf0f0_ff00_0ff0_7ffe,
            0x8000_0000_0000_0001,
            0x5555_5555_5555_5555,
        ];
        for &mask in &masks {
            for count in (1..64).step_by(if cfg!(miri) { 7 } else { 1 }) {
                for align in [1, 2, 4, 8] {
                    let mut expect = 0u64;
                    for i in (0..64).step_by(align) {
                        if i + count <= 64 && (i..i + count).all(|b| mask >> b & 1 == 1) {
                            expect |= 1 << i;
                        }
                    }
                    assert_eq!(
                        runs_of(mask, count, align),
                        expect,
                        "mask {mask:#x} count {count} align {align}"
                    );
                }
            }
        }
    }

    #[test]
    fn run_masks() {
        assert_eq!(run_mask(1, 1), 2);
        assert_eq!(run_mask(1, 63), ALL_SLICES);
        assert_eq!(run_mask(4, 3), 0b111_0000);
    }

    /// The header is the descriptors alone (`Chunk`): once every slice of a
    /// chunk has been handed out, its descriptor written as a heap writes
    /// it, and given back (which sets `freed_at`), nothing of slice 0 past
    /// the descriptors is resident. The bookkeeping used to follow the
    /// descriptors into a fifth OS page (docs/PERFORMANCE.md E97).
    #[test]
    #[cfg_attr(miri, ignore = "mincore")]
    fn a_used_chunk_touches_no_header_page_past_the_descriptors() {
        use crate::chunk::{HEADER_SIZE, MAX_SPAN_SLICES};
        use crate::page::PageKind;
        // Other tests take slices too: keep taking until one chunk has
        // handed all of its slices to this test.
        let mut spans: std::vec::Vec<Span> = std::vec::Vec::new();
        let chunk = loop {
            let span = alloc_span(1, 1).expect("a span");
            let start = slice_address(span.chunk, span.first);
            // SAFETY: the arena handed the span to us alone.
            unsafe { (*span.page()).init(PageKind::Class, start, 1, 64, 7, span.fresh) };
            let chunk = span.chunk;
            spans.push(span);
            if spans.iter().filter(|s| s.chunk == chunk).count() == MAX_SPAN_SLICES {
                break chunk;
            }
            assert!(spans.len() < 16 * MAX_SPAN_SLICES, "no chunk was handed out whole");
        };
        for span in &spans {
            // SAFETY: our spans, holding no block.
            unsafe { free_page_span(span.page()) };
        }
        let descriptors_end = SLICES_PER_CHUNK * core::mem::size_of::<Page>();
        let page = Os::page_size();
        let mut answer = std::vec![0u8; (SLICE_SIZE - descriptors_end) / page];
        let beyond = Os::resident_pages(chunk as usize + descriptors_end, &mut answer).expect("mincore");
        assert_eq!(
            beyond, 0,
            "{beyond} OS pages of slice 0 past the descriptors are resident"
        );
        assert_eq!(HEADER_SIZE, descriptors_end);
        let mut answer = std::vec![0u8; descriptors_end.div_ceil(page)];
        let descriptors = Os::resident_pages(chunk as usize, &mut answer).expect("mincore");
        assert_eq!(descriptors, answer.len(), "every descriptor was written");
    }
}
