//! Allocation: the fast paths, and the slow path that refills them.
//!
//! Every failed allocation sets `errno = ENOMEM` (on its cold path), so the
//! C front can return the result as it is.
//!
//! The fast path for a small request is: read the thread's heap, index its
//! direct table by `(size + 7) / 8`, pop the page's `free` list. When the
//! list is empty, [`alloc_slow`] (cold, out of line) finds or makes a page,
//! and does the deferred work: remote-free notifications, purges, thread
//! set-up on a thread's first allocation.

use crate::chunk::{CHUNK_SIZE, MAX_SPAN_SLICES, SLICE_SIZE};
use crate::heap::{dead_heap, empty_heap, Heap};
use crate::os::{Os, Platform};
use crate::page::{is_indexed_class, Page, PageKind};
use crate::size_class::{
    class_for_aligned, largest_serving_class, lender_of, Class, CLASS_SIZE, DIRECT_CLASS, DIRECT_MAX, WORD,
};
use crate::{arena, chunk, free_cache, huge, init, profile, purge, secure, stats, thread, tls};
use core::ptr;

/// Largest request served by a large block (a span inside a chunk); above
/// it requests are huge (a mapping of their own).
pub const LARGE_MAX: usize = MAX_SPAN_SLICES * SLICE_SIZE;

/// Largest alignment served inside a chunk.
const CHUNK_ALIGN_MAX: usize = CHUNK_SIZE / 2;

/// Allocates from the direct table: `words` is the request in 8-byte words
/// (at most `DIRECT_MAX / 8`). The block is word-aligned, and aligned to
/// 16 when `words` is even. Not used by the hardened build.
///
/// # Safety
/// `words <= DIRECT_MAX / WORD`; `heap` is the calling thread's default
/// heap (or the empty heap) or one of its first-class heaps.
#[inline(always)]
pub unsafe fn alloc_direct_in(heap: *mut Heap, words: usize) -> *mut u8 {
    // No statistics counter here: the page counts its pops (`Page::alloc_mark`).
    // SAFETY: the heap pointer is valid (the empty heap at worst); `words`
    // is in range by contract; direct entries always point at a valid page
    // (the empty page at worst) owned by this thread.
    unsafe {
        let page = (*heap).direct.get_unchecked(words).get();
        let block = (*page).pop();
        if !block.is_null() {
            return block.cast();
        }
        // The pop above is the path to keep straight; this is the rare one.
        crate::util::cold_path();
        // Never zeroed here, so whether the block is zero does not matter.
        let block = (*page).take_fresh();
        if !block.is_null() {
            return block.cast();
        }
        alloc_slow(
            heap,
            *DIRECT_CLASS.get_unchecked(words) as usize,
            words * WORD,
            words * WORD,
            false,
        )
    }
}

/// [`alloc_direct_in`] on the calling thread's default heap.
///
/// # Safety
/// `words <= DIRECT_MAX / WORD`.
#[inline(always)]
pub unsafe fn alloc_direct(words: usize) -> *mut u8 {
    // SAFETY: forwarded contract; the thread's own heap.
    unsafe { alloc_direct_in(tls::heap(), words) }
}

/// Allocates `size` bytes aligned to `align` (a power of two); null when
/// out of memory.
#[inline(always)]
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    if !secure::ENABLED && size <= DIRECT_MAX && align <= WORD {
        // SAFETY: `(size + 7) / 8 <= DIRECT_MAX / 8`.
        unsafe { alloc_direct(size.div_ceil(WORD)) }
    } else {
        alloc_generic(size, align, false)
    }
}

/// Allocates `size` zeroed bytes aligned to `align`; null when out of memory.
#[inline]
pub fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    alloc_generic(size, align, true)
}

/// Every allocation that is not a word-aligned direct-table hit, from the
/// calling thread's default heap.
#[inline]
pub fn alloc_generic(size: usize, align: usize, zero: bool) -> *mut u8 {
    // SAFETY: the thread's own heap.
    unsafe { alloc_in(tls::heap(), size, align, zero) }
}

/// Allocates `size` bytes aligned to `align` from `heap`, zeroed if asked.
///
/// # Safety
/// `heap` must be the calling thread's default heap (or the empty heap) or
/// one of its first-class heaps.
#[inline]
pub unsafe fn alloc_in(heap: *mut Heap, size: usize, align: usize, zero: bool) -> *mut u8 {
    let Some(with_trailer) = size.checked_add(secure::TRAILER) else {
        return out_of_memory();
    };
    if let Some(class) = class_for_aligned(with_trailer, align) {
        // Blocks of the class size are aligned to every alignment that
        // `class_for_aligned` picked the class for; request-sized blocks
        // (`Heap::page_block_size`) only to 16, and are never as large.
        let fit = if align <= 16 {
            with_trailer
        } else {
            CLASS_SIZE[class] as usize
        };
        // SAFETY: forwarded contract.
        return unsafe { alloc_class(heap, class, size, fit, zero) };
    }
    // SAFETY: forwarded contract.
    alloc_big(unsafe { big_owner(heap) }, size, align, zero)
}

/// The usable size that an allocation of `size` bytes aligned to `align`
/// (a power of two) gets from [`alloc_in`] at most, computed without
/// allocating: the class size (for a class that borrows, its lender's,
/// whose page may serve it: `size_class::lender_of`), whole slices for a
/// large block, whole OS pages for a huge one; `None` when no block can be
/// that large. Allocating exactly
/// this many bytes gives a block of exactly this usable size (a class-sized
/// block, never a request-sized one: `alloc_in` asks for a block of at
/// least the request). The hardened build reports requested sizes as
/// usable, so there it is `size` itself.
pub fn good_size(size: usize, align: usize) -> Option<usize> {
    if size > crate::raw::MAX_SIZE {
        return None;
    }
    let size = size.max(1);
    if secure::ENABLED {
        return Some(size);
    }
    if let Some(class) = class_for_aligned(size, align) {
        return Some(CLASS_SIZE[largest_serving_class(class)] as usize);
    }
    if let Some((slices, _)) = large_span(size, align) {
        return Some(slices * SLICE_SIZE);
    }
    size.checked_next_multiple_of(Os::page_size())
        .filter(|&n| n <= crate::raw::MAX_SIZE)
}

/// The first-class heap that should track a big block, if any.
///
/// # Safety
/// `heap` must be valid.
#[inline]
unsafe fn big_owner<'a>(heap: *mut Heap) -> Option<&'a Heap> {
    // SAFETY: caller's contract.
    unsafe { (*heap).first_class.get().then(|| &*heap) }
}

/// Allocates from class `class` of `heap` for `requested` bytes, zeroed if
/// asked, in a block of at least `fit` bytes (see [`alloc_in`]).
///
/// # Safety
/// As for [`alloc_in`]; `requested <= fit <= CLASS_SIZE[class]`.
#[inline]
unsafe fn alloc_class(heap: *mut Heap, class: Class, requested: usize, fit: usize, zero: bool) -> *mut u8 {
    // SAFETY: the heap pointer is valid; its bins' first pages are ours;
    // `class` < CLASS_COUNT; its free cache holds free blocks of the class
    // size that no one else can hand out (the cache's invariants).
    unsafe {
        if free_cache::ENABLED && is_indexed_class(class) && !profile::active() {
            // The block of the class freed last (`free_cache.rs`): of the
            // class size, so it fits.
            let block = (*heap).free_cache.pop(class);
            if !block.is_null() {
                if zero {
                    ptr::write_bytes(block.cast::<u8>(), 0, zeroed_len(requested, CLASS_SIZE[class] as usize));
                }
                return block.cast();
            }
        }
        let mut page = (*heap).bins.get_unchecked(class).first.get();
        if page.is_null() && (*heap).borrows_from_lender(class) {
            // Its lender's current page serves it, as through the direct
            // table (the heap's invariants).
            page = (*heap).bins.get_unchecked(lender_of(class)).first.get();
        }
        // A page of request-sized blocks may hold blocks too small for this
        // request (`Heap::page_block_size`); the slow path finds another.
        if !page.is_null() && fit <= (*page).block_size.get() {
            let was_zero = (*page).free_known_zero();
            let block = (*page).pop();
            if !block.is_null() {
                return finish(&*page, block.cast(), requested, zero, was_zero);
            }
            crate::util::cold_path();
            if !is_indexed_class(class) {
                // (Indexed pages open no carve window.)
                let block = (*page).take_fresh();
                if !block.is_null() {
                    return finish(&*page, block.cast(), requested, zero, (*page).fresh.get());
                }
            } else if !profile::active() {
                // The free index holds freed (dirty) blocks. While heap
                // profiling is on, only the slow path may hand blocks out
                // (it counts them).
                // SAFETY: an indexed class page of ours.
                let block = (*page).pop_indexed();
                if !block.is_null() {
                    return finish(&*page, block.cast(), requested, zero, false);
                }
            }
        }
    }
    alloc_slow(heap, class, requested, fit, zero)
}

/// Last steps for a block just popped from `page`: the hardened trailer,
/// and zeroing (only the link word when the page's free list was known zero).
///
/// # Safety
/// `block` must have just been popped from `page`, for `requested` bytes.
#[inline(always)]
unsafe fn finish(page: &Page, block: *mut u8, requested: usize, zero: bool, was_zero: bool) -> *mut u8 {
    // SAFETY: caller's contract: the block is ours and fits `requested` bytes.
    unsafe {
        secure::on_alloc(page, block, page.block_size.get(), requested, true);
        if zero {
            if was_zero {
                block.cast::<usize>().write(0);
                if (block as usize % WRITE_TOUCH_PAGE) + requested > WRITE_TOUCH_PAGE {
                    touch_for_write(block, requested);
                }
            } else {
                let len = if secure::ENABLED {
                    // (The trailer follows the requested bytes.)
                    requested
                } else {
                    zeroed_len(requested, page.block_size.get())
                };
                ptr::write_bytes(block, 0, len);
            }
        }
    }
    block
}

/// How many bytes to clear for a zeroed request of `requested` bytes in a
/// block of `block_size`: the request rounded up to whole cache lines, so
/// that the clearing ends on a line boundary. Clearing the last line in
/// part made rptest, whose zeroed blocks are read back at once, 3-7%
/// slower (docs/PERFORMANCE.md E94).
#[inline(always)]
fn zeroed_len(requested: usize, block_size: usize) -> usize {
    requested.next_multiple_of(64).min(block_size)
}

/// The page size `touch_for_write` steps by (the smallest Linux page).
const WRITE_TOUCH_PAGE: usize = 4096;

/// Writes a zero into every 4 KiB page that `[block, block+len)` reaches
/// beyond its first, so that each is faulted in by a write. A zero block
/// handed out untouched would otherwise be read first by many programs
/// (calloc, then look): the read maps the shared zero page, and the first
/// write then replaces it (a second fault, and a TLB flush sent to every
/// CPU running the process: rptest@8 spent 7% of its samples there;
/// docs/PERFORMANCE.md E38).
///
/// # Safety
/// `[block, block+len)` must be ours to write and read as zero.
#[cold]
unsafe fn touch_for_write(block: *mut u8, len: usize) {
    let end = block as usize + len;
    let mut at = (block as usize + 1).next_multiple_of(WRITE_TOUCH_PAGE);
    while at < end {
        // SAFETY: inside the block (caller's contract), which reads as zero.
        unsafe { block.add(at - block as usize).write_volatile(0) };
        at += WRITE_TOUCH_PAGE;
    }
}

/// The allocation slow path for class `class` of `heap`: sets the thread
/// up if `heap` is the empty heap, runs deferred work, finds a page with a
/// block of at least `fit` bytes (`requested <= fit <= CLASS_SIZE[class]`:
/// see [`alloc_in`]). Null when out of memory.
#[cold]
#[inline(never)]
pub fn alloc_slow(mut heap: *mut Heap, class: Class, requested: usize, fit: usize, zero: bool) -> *mut u8 {
    if heap == dead_heap() {
        return alloc_after_exit(class, requested, fit, zero);
    }
    if heap == empty_heap() {
        heap = thread::init_thread();
        if heap.is_null() {
            return out_of_memory();
        }
    }
    // SAFETY: `heap` is a heap of this thread (caller's contract).
    let heap: &Heap = unsafe { &*heap };
    let calls = heap.slow_calls.get() + 1;
    heap.slow_calls.set(calls);
    if calls % 64 == 0 {
        purge::tick();
        stats::report_all(heap);
    }
    if calls % 8 == 0 {
        // More often than the tick above: in gcc's cc1, every 64th slow
        // path let free big blocks sit resident for long enough to keep
        // 0.3 MiB more at the peak (docs/PERFORMANCE.md E54).
        heap.sweep_free_blocks(Os::now_millis());
    }
    // SAFETY: owner-only operations on our own heap.
    let block = unsafe {
        heap.held.send(heap);
        heap.process_notifications();
        let (page, block) = heap.take_block(class, fit);
        if page.is_null() {
            return out_of_memory();
        }
        let was_zero = (*page).free_known_zero();
        let block = block.cast::<u8>();
        if profile::active() {
            profile::on_slow_alloc(heap, &*page, block, requested);
        }
        finish(&*page, block, requested, zero, was_zero)
    };
    stats::report_class(heap, class, false);
    purge::start_if_wanted();
    block
}

/// An allocation by a thread whose heap was torn down at exit: a heap from
/// the pool serves it, then gives up its pages (abandoned, for other
/// threads to reclaim) and goes back to the pool. Slow, but such
/// allocations are rare, and nothing leaks.
#[cold]
#[inline(never)]
fn alloc_after_exit(class: Class, requested: usize, fit: usize, zero: bool) -> *mut u8 {
    let heap = crate::heap::heap_acquire();
    if heap.is_null() {
        return out_of_memory();
    }
    // SAFETY: a pool heap used by this thread alone, then torn down and returned.
    unsafe {
        let h = &*heap;
        h.init_default();
        let (page, block) = h.take_block(class, fit);
        let block = if page.is_null() {
            out_of_memory()
        } else {
            let was_zero = (*page).free_known_zero();
            finish(&*page, block.cast(), requested, zero, was_zero)
        };
        h.abandon_thread();
        crate::heap::heap_release(heap);
        block
    }
}

/// Fails an allocation: `errno = ENOMEM` (what C callers expect; harmless
/// for Rust's), and null.
#[cold]
#[inline(never)]
pub fn out_of_memory() -> *mut u8 {
    Os::set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// Large and huge requests, and alignments no class can serve. A
/// first-class `owner` heap tracks the block (for `destroy`).
#[cold]
fn alloc_big(owner: Option<&Heap>, size: usize, align: usize, zero: bool) -> *mut u8 {
    let block = alloc_big_inner(owner, size, align, zero);
    if block.is_null() {
        return out_of_memory();
    }
    block
}

/// The span of a large block of `needed` bytes (block and, in the hardened
/// build, its trailer and guard page) aligned to `align`: its slices and
/// the alignment in slices to ask the arena for; `None` when the block
/// must be huge (a mapping of its own). Shared by `alloc_big_inner` and
/// [`good_size`], which must agree.
fn large_span(needed: usize, align: usize) -> Option<(usize, usize)> {
    let slices = needed.max(1).div_ceil(SLICE_SIZE);
    let align_slices = (align / SLICE_SIZE).max(1);
    (needed <= LARGE_MAX && align <= CHUNK_ALIGN_MAX && arena::span_fits(slices, align_slices))
        .then_some((slices, align_slices))
}

fn alloc_big_inner(owner: Option<&Heap>, size: usize, align: usize, zero: bool) -> *mut u8 {
    init::ensure();
    let guard = if secure::ENABLED { Os::page_size() } else { 0 };
    let Some(needed) = size.checked_add(secure::TRAILER + guard) else {
        return ptr::null_mut();
    };
    if let Some((slices, align_slices)) = large_span(needed, align) {
        let Some(span) = arena::alloc_span(slices, align_slices) else {
            return ptr::null_mut();
        };
        let start = chunk::slice_address(span.chunk, span.first);
        let page = span.page();
        let end = slices * SLICE_SIZE - guard;
        // SAFETY: the span and its descriptor are ours alone.
        unsafe {
            let p = &*page;
            p.init(PageKind::Large, start, slices, end, 0, span.fresh);
            p.used.set(1);
            if secure::ENABLED {
                Os::protect(start.add(end), guard, true);
                secure::on_alloc(p, start, end, size, false);
            }
            if zero && !span.fresh {
                ptr::write_bytes(start, 0, size);
            }
            if let Some(heap) = owner {
                heap.track_large(page);
            }
            if profile::active() {
                profile::on_big_alloc(tls::heap(), p, start, size);
            }
        }
        stats::big_allocated(end);
        // The deferred work the class slow paths do every 8th and 64th
        // call: the calling thread's sweep of its free blocks, and the
        // purge of what has fallen due. A thread whose slow paths are
        // mostly large blocks (rocksdb's writers fill 1 MiB arena blocks)
        // took so few class slow paths that freed spans and blocks stayed
        // resident for seconds, below the background purger's threshold
        // (docs/PERFORMANCE.md E115). A clock read when nothing is due,
        // against a span taken under the arena lock.
        let now = Os::now_millis();
        // SAFETY: the thread's heap slot always holds a valid heap.
        let heap = unsafe { &*tls::heap() };
        // (Not a sentinel's: every thread without a heap shares them.)
        if !heap.is_sentinel() {
            heap.sweep_free_blocks(now);
        }
        purge::tick_at(now);
        purge::start_if_wanted();
        return start;
    }
    let (block, dirty) = huge::alloc_huge(size + secure::TRAILER, align);
    if !block.is_null() {
        if let Some(page) = chunk::page_of_checked(block) {
            // SAFETY: the huge block was just mapped (or recycled) for us.
            unsafe {
                let end = (*page).block_size.get();
                secure::on_alloc(&*page, block, end, size, false);
                if zero && dirty != 0 {
                    ptr::write_bytes(block, 0, size.min(dirty));
                }
                stats::big_allocated(end);
                if let Some(heap) = owner {
                    heap.track_large(page);
                }
                if profile::active() {
                    profile::on_big_alloc(tls::heap(), &*page, block, size);
                }
            }
        }
    }
    block
}

/// Follows a forwarder descriptor to the first descriptor of its span.
#[inline]
pub fn resolve_forward(page: *mut Page) -> *mut Page {
    // SAFETY: descriptors are valid memory inside a chunk header; a
    // forwarder's distance stays within the header.
    unsafe {
        if (*page).kind() == PageKind::Forward {
            page.sub((*page).span_slices.get() as usize)
        } else {
            page
        }
    }
}

/// Checks that `ptr` is the start of a block of `page` (and returns the
/// page's usable size for it), or `None`.
#[inline]
pub fn block_usable_size(page: &Page, ptr: *mut u8) -> Option<usize> {
    block_usable_size_as(page, page.kind(), ptr)
}

/// [`block_usable_size`] for a page whose kind the caller has read
/// already: a caller that decides on the kind too must use the same read
/// for both, since a racing free may change it in between.
#[inline]
pub fn block_usable_size_as(page: &Page, kind: PageKind, ptr: *mut u8) -> Option<usize> {
    let start = page.start.get() as usize;
    let addr = ptr as usize;
    match kind {
        PageKind::Class => page.block_index(addr).map(|_| page.block_size.get()),
        PageKind::Large | PageKind::Huge => (addr == start).then(|| page.block_size.get()),
        _ => None,
    }
}

/// Usable size of a block given by any pointer; `None` when `ptr` is not
/// the start of a live block of oxmalloc's (the check is exact for large
/// and huge blocks, and for class pages it checks range and alignment; the
/// hardened build also checks the block's trailer, and reports the
/// requested size, so that writing the usable size never trips a canary).
pub fn usable_size_checked(ptr: *mut u8) -> Option<usize> {
    let page = chunk::page_of_checked(ptr)?;
    let page = resolve_forward(page);
    // SAFETY: a descriptor inside a chunk header is valid memory.
    let p = unsafe { &*page };
    let end = block_usable_size(p, ptr)?;
    if secure::ENABLED {
        // SAFETY: `ptr` is a carved block of `p` with `end` usable bytes.
        return unsafe { secure::requested_size(p, ptr, end) };
    }
    Some(end)
}

/// Resizes a live block to `new_size` bytes at alignment `align` (a power
/// of two), in place when the block's class or span allows and `ptr` is at
/// that alignment, otherwise by moving it (copying `min(old usable size,
/// new_size)` bytes) to a block at that alignment. Null (and the block
/// untouched) when out of memory.
///
/// A block already at `align` keeps it wherever it is resized: in place
/// trivially; a huge mapping that moves goes to a new chunk-aligned
/// address with the block at the same offset from it, which keeps every
/// alignment up to the chunk size, and only a block at an offset of
/// `CHUNK_SIZE` can be aligned beyond that: those never move.
///
/// # Safety
/// `ptr` must be a live block allocated by oxmalloc, and `page` its
/// descriptor (first of its span); `new_size > 0`.
pub unsafe fn realloc_block(ptr: *mut u8, page: *mut Page, new_size: usize, align: usize) -> *mut u8 {
    // SAFETY: forwarded contract; the thread's own heap serves a move.
    unsafe { realloc_block_in(tls::heap(), ptr, page, new_size, align) }
}

/// [`realloc_block`], moving the block (when it must move) into `heap`.
///
/// # Safety
/// As for [`realloc_block`]; `heap` as for [`alloc_in`].
pub unsafe fn realloc_block_in(
    heap: *mut Heap,
    ptr: *mut u8,
    page: *mut Page,
    new_size: usize,
    align: usize,
) -> *mut u8 {
    // SAFETY: caller's contract.
    let p = unsafe { &*page };
    let aligned = ptr as usize & (align - 1) == 0;
    if secure::ENABLED {
        // SAFETY: forwarded contract.
        return unsafe { realloc_hardened(heap, ptr, p, new_size, align, aligned) };
    }
    let old_usable = match p.kind() {
        PageKind::Class => {
            let size = p.block_size.get();
            if aligned && new_size <= size && new_size >= size / 2 {
                return ptr;
            }
            size
        }
        PageKind::Large => {
            // Below the class sizes, a move to a class block saves memory.
            if aligned
                && new_size > crate::size_class::MAX_CLASS_SIZE
                // SAFETY: caller's contract: our live large block.
                && unsafe { resize_large_in_place(page, new_size) }
            {
                return ptr;
            }
            p.block_size.get()
        }
        PageKind::Huge => {
            let old = p.block_size.get();
            if aligned && new_size > LARGE_MAX {
                // SAFETY: our huge block.
                let moved = unsafe { huge::realloc_huge(page, new_size, true) };
                if !moved.is_null() {
                    if let Some(page) = chunk::page_of_checked(moved) {
                        // SAFETY: the (possibly moved) header of our block.
                        stats::big_resized(old, unsafe { (*page).block_size.get() });
                    }
                    return moved;
                }
            }
            old
        }
        _ => return ptr::null_mut(),
    };
    // SAFETY: forwarded contract.
    unsafe { move_block(heap, ptr, page, old_usable, new_size, align) }
}

/// Resizes the large block of `page` to the slices `new_size` needs
/// (`0 < new_size`), without moving it: a smaller block gives its last
/// slices back, a bigger one takes the slices after it when they are free.
/// Returns whether the block now has those slices.
///
/// # Safety
/// `page` must be the descriptor of a live large block the caller may resize.
#[inline]
unsafe fn resize_large_in_place(page: *mut Page, new_size: usize) -> bool {
    if new_size > LARGE_MAX {
        return false;
    }
    // SAFETY: caller's contract.
    let p = unsafe { &*page };
    let old = p.block_size.get();
    let slices = new_size.div_ceil(SLICE_SIZE);
    if slices > p.span_slices.get() as usize {
        // SAFETY: caller's contract.
        if !unsafe { arena::grow_span(page, slices) } {
            return false;
        }
    } else {
        // SAFETY: caller's contract; shrinking frees the tail.
        unsafe { arena::shrink_span(page, slices) };
        purge::start_if_wanted();
    }
    p.block_size.set(slices * SLICE_SIZE);
    stats::big_resized(old, slices * SLICE_SIZE);
    true
}

/// Resizes the live block `ptr` of `page` without moving it, so that at
/// least `new_size` (> 0) bytes are usable, as far as its kind allows: a
/// class block keeps its size and fits any `new_size` up to it; a large
/// block gives back or takes whole slices after it
/// ([`resize_large_in_place`]); a huge block asked for more than
/// [`LARGE_MAX`] unmaps its tail or grows its mapping where it lies
/// ([`huge::realloc_huge`] without moving), and fits any smaller `new_size`
/// as it is (a huge block stays above the large sizes). Returns
/// whether `new_size` bytes are now usable at `ptr`; the block is unchanged
/// when not. The hardened build never resizes in place this way (the
/// trailer and guard page would have to move): only a size that the block
/// already holds is answered yes, and the trailer still guards the size
/// first asked for.
///
/// # Safety
/// `page` must be the (resolved) descriptor of the live block `ptr`, which
/// the caller may resize.
pub unsafe fn resize_in_place(ptr: *mut u8, page: *mut Page, new_size: usize) -> bool {
    // SAFETY: caller's contract.
    let p = unsafe { &*page };
    if secure::ENABLED {
        // SAFETY: caller's contract: `ptr` is a live block of `p` with `end` usable bytes.
        let asked = block_usable_size(p, ptr).and_then(|end| unsafe { secure::requested_size(p, ptr, end) });
        return asked.is_some_and(|asked| new_size <= asked);
    }
    match p.kind() {
        // SAFETY: caller's contract: our live large block.
        PageKind::Large => unsafe { resize_large_in_place(page, new_size) },
        PageKind::Huge if new_size > LARGE_MAX => {
            let old = p.block_size.get();
            // SAFETY: caller's contract: our live huge block; it does not move.
            let resized = !unsafe { huge::realloc_huge(page, new_size, false) }.is_null();
            if resized {
                stats::big_resized(old, p.block_size.get());
            }
            resized
        }
        PageKind::Class | PageKind::Huge => new_size <= block_usable_size(p, ptr).unwrap_or(0),
        _ => false,
    }
}

/// `realloc` in the hardened build: in place when `ptr` is `aligned` (at
/// `align`) and the new size still fits the block and uses at least half
/// of it (the pad and trailer are rewritten for the new size), otherwise a
/// move.
///
/// # Safety
/// As for [`realloc_block`].
unsafe fn realloc_hardened(
    heap: *mut Heap,
    ptr: *mut u8,
    p: &Page,
    new_size: usize,
    align: usize,
    aligned: bool,
) -> *mut u8 {
    let end = p.block_size.get();
    // SAFETY: `ptr` is a live block of `p` with `end` usable bytes.
    let Some(old) = (unsafe { secure::requested_size(p, ptr, end) }) else {
        // A freed block (its trailer is in the freed form) or a smashed one:
        // either way not a live block to resize.
        crate::fatal::fatal(crate::fatal::HeapError::InvalidRealloc, ptr as usize, 0);
    };
    let needed = new_size.saturating_add(secure::TRAILER);
    if aligned && needed <= end && needed >= end / 2 {
        // SAFETY: the block is ours and `new_size + TRAILER` fits in it.
        unsafe { secure::write_allocated(p, ptr, end, new_size) };
        return ptr;
    }
    if p.kind() == PageKind::Huge {
        crate::huge::note_growth(p, new_size);
    }
    // SAFETY: forwarded contract.
    unsafe { move_block(heap, ptr, p as *const Page as *mut Page, old, new_size, align) }
}

/// Moves a block: allocates `new_size` bytes, copies what both hold, frees the old one.
///
/// # Safety
/// `ptr` must be a live block of `page` holding `old` meaningful bytes;
/// `heap` as for [`alloc_in`].
unsafe fn move_block(
    heap: *mut Heap,
    ptr: *mut u8,
    page: *mut Page,
    old: usize,
    new_size: usize,
    align: usize,
) -> *mut u8 {
    // SAFETY: forwarded contract.
    let new = unsafe { alloc_in(heap, new_size, align, false) };
    if new.is_null() {
        return new;
    }
    // SAFETY: both blocks are live and distinct; we copy what both hold.
    unsafe {
        ptr::copy_nonoverlapping(ptr, new, old.min(new_size));
        if secure::ENABLED {
            crate::free::free_hardened(ptr, 0);
        } else {
            crate::free::free_resolved(ptr, page);
        }
    }
    new
}
