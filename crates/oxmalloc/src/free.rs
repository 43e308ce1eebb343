//! Freeing: the fast local path, and everything else.
//!
//! The fast path finds the page descriptor by arithmetic on the pointer
//! (chunk header + slice index), checks that the calling thread owns the
//! page, and pushes back onto `free` (last in, first out: see `page.rs`).
//! The owner's frees of blocks above 1 KiB into the current page of their
//! class take a short path of their own ([`free_owned_not_plain`]), and so
//! do remote frees into the page of the thread's held chain
//! ([`free_into_held_chain`]). Everything else — other remote frees, full
//! pages, large and huge blocks, later slices of multi-slice pages,
//! invalid pointers — goes to [`free_slow`].

use crate::alloc::{block_usable_size_as, resolve_forward};
#[cfg(not(feature = "page-map"))]
use crate::chunk::MAP_HEADER_HERE;
use crate::chunk::{self};
use crate::fatal::{report, HeapError};
use crate::heap::{dead_heap, empty_heap, free_big_block, Heap};
use crate::os::{Os, Platform};
use crate::page::{is_indexed_class, Block, Page, PageKind, OWNER_FLAGS, OWNER_INDEXED, OWNER_SLOW};
use crate::size_class::{Class, CLASS_COUNT, CLASS_SIZE};
use crate::sync::atomic::Ordering;
use crate::{abandon, free_cache, held_frees, profile, purge, secure, stats, thread, tls};
use core::ptr;

/// Frees a block known to come from oxmalloc (Rust's `dealloc` contract).
///
/// # Safety
/// `ptr` must be a live block allocated by oxmalloc.
#[inline(always)]
pub unsafe fn free_trusted(ptr: *mut u8) {
    if secure::ENABLED {
        // SAFETY: forwarded contract.
        return unsafe { free_hardened(ptr, 0) };
    }
    let page = chunk::page_of_trusted(ptr);
    // SAFETY: caller's contract: the descriptor of a live block is valid.
    unsafe { free_local_or_slow(ptr, page) }
}

/// Frees any pointer: null is ignored, and a pointer that oxmalloc did not
/// hand out is reported, never written through (the C `free` contract plus
/// robustness against foreign pointers).
///
/// # Safety
/// If `ptr` is a block of oxmalloc's, it must not be used afterwards.
#[inline(always)]
pub unsafe fn free_checked(ptr: *mut u8) {
    if secure::ENABLED {
        // SAFETY: forwarded contract.
        return unsafe { free_hardened(ptr, 0) };
    }
    #[cfg(feature = "page-map")]
    let page = match crate::page_map::lookup(ptr as usize) {
        Some(page) => page,
        None => return free_unusual(ptr),
    };
    #[cfg(not(feature = "page-map"))]
    let page = {
        if chunk::map_entry(ptr as usize) != MAP_HEADER_HERE {
            free_unusual(ptr);
            return;
        }
        chunk::page_of_trusted(ptr)
    };
    // SAFETY: the chunk map says the header is valid.
    unsafe { free_local_or_slow(ptr, page) }
}

/// Frees a block whose requested size the caller states (Rust's `dealloc`
/// layout, C++ sized `delete`): the hardened build checks it against the
/// block; the default build uses the trusted path.
///
/// # Safety
/// As for [`free_trusted`].
#[inline(always)]
pub unsafe fn free_sized(ptr: *mut u8, size: usize) {
    if secure::ENABLED {
        // SAFETY: forwarded contract.
        return unsafe { free_hardened(ptr, size) };
    }
    // SAFETY: forwarded contract.
    unsafe { free_trusted(ptr) }
}

/// Frees any pointer with a stated size (the checked path: every
/// alignment, foreign pointers reported); the hardened build checks the size.
///
/// # Safety
/// As for [`free_checked`].
#[inline]
pub unsafe fn free_sized_checked(ptr: *mut u8, size: usize) {
    if secure::ENABLED {
        // SAFETY: forwarded contract.
        return unsafe { free_hardened(ptr, size) };
    }
    // SAFETY: forwarded contract.
    unsafe { free_checked(ptr) }
}

/// The hardened free: every pointer is validated (chunk map, page kind,
/// exact block start), then the block's trailer is checked and marked freed
/// (`secure.rs`), freed large blocks are made inaccessible, and the block
/// takes the usual path. `given` is a sized free's size (0: none).
///
/// # Safety
/// If `ptr` is a block of oxmalloc's, it must not be used afterwards.
#[inline(never)]
pub unsafe fn free_hardened(ptr: *mut u8, given: usize) {
    if ptr.is_null() {
        return;
    }
    let Some(page) = chunk::page_of_checked(ptr) else {
        report(HeapError::InvalidFree, ptr as usize, 0, 0);
        return;
    };
    let page = resolve_forward(page);
    // SAFETY: the chunk map vouches for the header, hence the descriptor.
    let p = unsafe { &*page };
    // One read of the kind for every decision below: a free of the same
    // block racing with this one may claim it (`Freeing`) or release its
    // span (`Unused`) at any time, and a second read could then call it an
    // invalid free, or take a large block down the class path. With one
    // read, the loser of such a race fails `claim_big` (CHECKLIST B17).
    let kind = p.kind();
    if matches!(kind, PageKind::Unused | PageKind::Freeing) {
        report(HeapError::DoubleFree, ptr as usize, 0, 0);
        return;
    }
    let Some(end) = block_usable_size_as(p, kind, ptr) else {
        report(HeapError::InvalidFree, ptr as usize, 0, 0);
        return;
    };
    if matches!(kind, PageKind::Large | PageKind::Huge) {
        // Claim the block before touching it: of two racing frees, the
        // loser must not read a trailer the winner is unmapping.
        let Some(kind) = p.claim_big() else {
            report(HeapError::DoubleFree, ptr as usize, 0, 0);
            return;
        };
        // SAFETY: `ptr` is the block of `p`, which we claimed.
        unsafe {
            secure::on_free(p, ptr, end, given, true);
            if kind == PageKind::Large {
                // Freed large blocks become inaccessible until their span is reused.
                Os::protect(p.start.get(), p.span_bytes(), true);
            }
            release_big(page, kind);
        }
        return;
    }
    let local = p.owner.load(Ordering::Relaxed) & !OWNER_FLAGS == tls::owner_key();
    // SAFETY: `ptr` is a carved block of `p` with `end` usable bytes.
    unsafe { secure::on_free(p, ptr, end, given, !local) };
    // SAFETY: validated above (no need to validate again on the slow path).
    unsafe {
        if p.owner.load(Ordering::Relaxed) == tls::owner_key() {
            if p.push_local(ptr.cast()) {
                page_emptied(page);
            }
        } else {
            free_class_block(p, page, ptr);
            purge::start_if_wanted();
        }
    }
}

/// The owner check and local push shared by both fast paths.
///
/// # Safety
/// `page` must be a valid descriptor in a live chunk.
#[inline(always)]
unsafe fn free_local_or_slow(ptr: *mut u8, page: *mut Page) {
    // SAFETY: caller's contract; an owner match (without `OWNER_FLAGS`)
    // means this thread owns the page and `free` may grow, so its Cell
    // fields are ours to touch.
    unsafe {
        if (*page).owner.load(Ordering::Relaxed) == tls::owner_key() {
            if (*page).push_free(ptr.cast()) {
                page_emptied(page);
            }
            return;
        }
        free_by_owner(ptr, page);
    }
}

/// Every free that the small blocks' fast path does not take, sorted by
/// its owner word: the owner's own frees go to [`free_owned_not_plain`];
/// a remote free into the page of the thread's held chain joins the chain
/// ([`free_into_held_chain`]); every other free goes on to `free_slow`.
/// (Not in `free_local_or_slow`: the second owner check there cost the
/// small blocks' fast path an instruction; `#[cold]` keeps the page
/// address out of that path too.) A dispatcher that needs no register of
/// its own, so that a remote free into the chain's page, most frees of a
/// producer/consumer pair, pays no prologue: with the owner's paths in
/// this function, it saved and restored six registers (docs/PERFORMANCE.md
/// E98).
///
/// # Safety
/// `page` must be a valid descriptor inside a live chunk header.
#[cold]
#[inline(never)]
unsafe fn free_by_owner(ptr: *mut u8, page: *mut Page) {
    // SAFETY: caller's contract. An owner word with our key is a page of
    // ours. The thread's heap slot always holds a valid heap, and
    // `free_into_held_chain` gets a page its chain is on, owned by another
    // thread or none.
    unsafe {
        let owner = (*page).owner.load(Ordering::Relaxed);
        if owner & !OWNER_FLAGS == tls::owner_key() {
            return free_owned_not_plain(ptr, page, owner);
        }
        // (The sentinel heaps hold no chain.)
        if !secure::ENABLED && (*tls::heap()).held.page() == page {
            return free_into_held_chain(ptr, page);
        }
        free_slow(ptr, page)
    }
}

/// The owner's frees that are not a plain push onto `free`. First, blocks
/// above 1 KiB go onto the free cache when it takes them
/// (`free_into_cache`). Then a block of the current page of an indexed
/// class (owner word `key | OWNER_INDEXED`: not full, pinned, no profiling
/// samples), which rules out every case `free_slow` checks for but an
/// invalid pointer: the block's number goes onto the page's free index.
/// Every other free goes on to `free_slow`. A path of its own because
/// these frees went through `free_slow` before, which read three more
/// cache lines, each a miss in the latency workload's slowest frees
/// (docs/PERFORMANCE.md E47).
///
/// # Safety
/// `page` must be a valid descriptor inside a live chunk header, and
/// `owner`, its owner word as just read, must carry the calling thread's key.
#[inline(never)]
unsafe fn free_owned_not_plain(ptr: *mut u8, page: *mut Page, owner: usize) {
    // SAFETY: caller's contract: a page of ours, as `free_into_cache`
    // requires. With `key | OWNER_INDEXED`, a class page we own (the
    // current page of its class), so its Cell fields and free index are
    // ours to touch, and its `heap` is one of this thread's heaps.
    unsafe {
        let p = &*page;
        if free_cache::ENABLED && free_into_cache(p, ptr, owner) {
            return;
        }
        if owner != tls::owner_key() | OWNER_INDEXED {
            return free_slow(ptr, page);
        }
        let Some(number) = p.block_index_by_division(ptr as usize) else {
            report(HeapError::InvalidFree, ptr as usize, 0, 0);
            return;
        };
        // The current page carries the pin, so this never empties it.
        let emptied = p.push_indexed_number(number);
        debug_assert!(!emptied, "the current page was emptied");
        if p.used.get() == 1 {
            // Nothing left but the pin: another class may take the page.
            // The page is its heap's current page (`OWNER_INDEXED`): that
            // of the thread's default heap, as a rule, which spares a read
            // of `heap`, on the descriptor's second line; otherwise that of
            // one of its first-class heaps.
            let class = p.class();
            let default = &*tls::heap();
            if ptr::eq(default.pinned[class].get(), page) {
                default.note_emptied_current(class);
            } else {
                (*p.heap.load(Ordering::Relaxed)).note_emptied_current(class);
            }
        }
    }
}

/// A remote free into the page that the calling thread's held chain is on
/// (`held_frees.rs`): the block joins the chain (or, if it turns out not to
/// be a remote free of a valid block, goes on to `free_slow`).
///
/// The common remote free of a producer/consumer pair (each free in the
/// page of the one before), which went through all of `free_slow`: 107
/// instructions a free in xmalloc against rpmalloc's 40
/// (docs/PERFORMANCE.md E53). The chain being on `page` settles what
/// `free_slow` finds out step by step: `page` is the first descriptor of
/// a class page (a forwarder is never a chain's page), alive (the held
/// blocks keep it), not a first-class heap's (`may_hold` was true), and
/// the calling thread has a heap (the sentinels hold no chain). What is
/// left: the block (an invalid pointer is reported by `free_slow`), the
/// profiling sample and the statistics; the caller has checked the owner
/// (the thread may have taken the page since; its own frees go the usual
/// way). (Not inlined into `free_by_owner`: the registers it needs
/// would cost that dispatcher a prologue.)
///
/// # Safety
/// `page` must be a valid descriptor inside a live chunk header whose
/// owner word, as just read, does not carry the calling thread's key, and
/// the calling thread's held chain must be on `page` (the default build
/// only).
#[inline(never)]
unsafe fn free_into_held_chain(ptr: *mut u8, page: *mut Page) {
    // SAFETY: the chain's page is alive while the chain holds its blocks.
    let p = unsafe { &*page };
    if p.block_index(ptr as usize).is_none() {
        // SAFETY: caller's contract.
        return unsafe { free_slow(ptr, page) };
    }
    if profile::page_has_samples(p) {
        // SAFETY: forwarded contract; the block is validated.
        return unsafe { free_sampled_into_held_chain(ptr, page) };
    }
    // SAFETY: forwarded contract; the block is validated.
    unsafe { append_to_held_chain(ptr) }
}

/// [`free_into_held_chain`] for a validated block of a page that holds
/// profiling samples: the profiler forgets the block's sample first. (Out
/// of line, as is the send: with both calls in it, the usual remote free
/// saved and restored registers around them.)
///
/// # Safety
/// As for [`free_into_held_chain`], and `ptr` a validated block of `page`.
#[cold]
#[inline(never)]
unsafe fn free_sampled_into_held_chain(ptr: *mut u8, page: *mut Page) {
    // SAFETY: caller's contract.
    profile::on_free(unsafe { &*page }, ptr);
    // SAFETY: forwarded contract.
    unsafe { append_to_held_chain(ptr) }
}

/// The end of [`free_into_held_chain`] and of its sampled twin: `ptr` joins
/// the thread's chain, which goes out when full. (The free is counted then.)
///
/// # Safety
/// As for [`free_into_held_chain`], and `ptr` a validated block of the
/// chain's page.
#[inline(always)]
unsafe fn append_to_held_chain(ptr: *mut u8) {
    // SAFETY: the thread's heap slot always holds a valid heap.
    let heap = unsafe { &*tls::heap() };
    // SAFETY: our default heap's chain, on `ptr`'s page (caller); `ptr` is
    // a live block of that page (caller), which another thread (or none)
    // owns and no first-class heap does (the chain vouches for that); the
    // caller gives it up.
    if unsafe { heap.held.append(ptr.cast()) } {
        // SAFETY: our own chain, full.
        unsafe { send_held_chain(heap) };
    }
}

/// Sends out the calling thread's full held chain, then starts the purger
/// if it was asked for: a thread that only frees (a consumer) reaches the
/// end of an entry point here, once a chain, rather than at each free.
///
/// # Safety
/// `heap` must be the calling thread's default heap.
#[cold]
#[inline(never)]
unsafe fn send_held_chain(heap: &Heap) {
    // SAFETY: caller's contract: our own chain.
    unsafe { heap.held.send(heap) };
    purge::start_if_wanted();
}

/// A local free emptied `page`: its heap (the thread's default heap or one
/// of its first-class heaps) decides whether to keep it.
///
/// # Safety
/// `page` must be an empty class page owned by the calling thread.
#[cold]
#[inline(never)]
unsafe fn page_emptied(page: *mut Page) {
    // SAFETY: caller's contract: the page's heap is one of ours.
    unsafe { (*(*page).heap.load(Ordering::Relaxed)).page_emptied(page) };
    purge::start_if_wanted();
}

/// Null, huge blocks aligned to the chunk size, and pointers that are not ours.
#[cold]
#[inline(never)]
fn free_unusual(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    match chunk::page_of_checked(ptr) {
        // SAFETY: the chunk map vouches for the header.
        Some(page) => unsafe { free_slow(ptr, page) },
        None => report(HeapError::InvalidFree, ptr as usize, 0, 0),
    }
}

/// Frees a block whose span descriptor is known (after forwarding).
///
/// # Safety
/// `page` must be the valid (non-forwarder) descriptor of the block's page.
pub unsafe fn free_resolved(ptr: *mut u8, page: *mut Page) {
    // SAFETY: forwarded contract.
    unsafe { free_local_or_slow(ptr, page) }
}

/// Every free that is not a local free into a non-full page.
///
/// # Safety
/// `page` must be a valid descriptor inside a live chunk header.
#[cold]
#[inline(never)]
pub unsafe fn free_slow(ptr: *mut u8, page: *mut Page) {
    // SAFETY: caller's contract.
    let p = unsafe { &*page };
    match p.kind() {
        PageKind::Class => {
            // (Not `block_usable_size`, which would load the kind again.)
            // By division: `recip` is on the descriptor's second line, which
            // a remote free, most of this path's calls, has no other reason
            // to read (E81, E102).
            if p.block_index_by_division(ptr as usize).is_none() {
                report(HeapError::InvalidFree, ptr as usize, 0, 0);
                return;
            }
            // SAFETY: a validated block of a class page.
            unsafe { free_class_block(p, page, ptr) };
        }
        PageKind::Large | PageKind::Huge => {
            if ptr != p.start.get() {
                report(HeapError::InvalidFree, ptr as usize, 0, 0);
                return;
            }
            let Some(kind) = p.claim_big() else {
                report(HeapError::DoubleFree, ptr as usize, 0, 0);
                return;
            };
            // SAFETY: we claimed this live large or huge block.
            unsafe { release_big(page, kind) };
        }
        PageKind::Forward => {
            // SAFETY: a forwarder points at the valid first descriptor of its
            // span. (Through the owner checks again: the blocks of pages of
            // more than one slice are mostly in later slices.)
            unsafe { free_local_or_slow(ptr, resolve_forward(page)) };
            return;
        }
        PageKind::Unused | PageKind::Freeing => {
            report(HeapError::DoubleFree, ptr as usize, 0, 0);
            return;
        }
    }
    purge::start_if_wanted();
}

/// Frees a validated block of a class page that is not a plain local free
/// into a non-full page: local frees into full or sampled pages (or
/// reached through a forwarder), and remote frees. A remote free into an
/// abandoned page may take the page first (`abandon::reclaim_on_free`)
/// and then frees as its owner.
///
/// # Safety
/// `ptr` must be a live block of the class page `p` (at `page`).
unsafe fn free_class_block(p: &Page, page: *mut Page, ptr: *mut u8) {
    let class = p.class();
    let owner = p.owner.load(Ordering::Relaxed);
    if owner & !OWNER_FLAGS == tls::owner_key() {
        // SAFETY: we own the page (caller: a live block of it).
        unsafe { free_owned(p, page, ptr, owner, true) };
    } else {
        let mut heap = tls::heap();
        if heap == empty_heap() {
            // A thread that only frees (the consumer of a producer/consumer
            // pair) gets a heap on its first free, as on a first allocation:
            // its frees are then counted on its own counters. Counted as
            // unowned, every free moved the shared live gauges: four atomic
            // additions on lines all threads write (xmalloc@8 spent 37% of
            // its time there, see docs/PERFORMANCE.md E32).
            heap = thread::init_thread();
        }
        let live_heap = !heap.is_null() && heap != dead_heap();
        // SAFETY: `ptr` is a live block of the class page (caller); a live
        // heap here is the thread's default heap.
        if owner == 0 && live_heap && unsafe { abandon::reclaim_on_free(page, &*heap) } {
            // The page is ours now: free the block as its owner.
            // SAFETY: caller's contract.
            return unsafe { free_class_block(p, page, ptr) };
        }
        let hold = if !live_heap {
            // Out of memory for a heap, or the thread is exiting.
            stats::unowned_free(class);
            false
        } else {
            let hold = !secure::ENABLED && held_frees::may_hold(p);
            if !hold {
                // (A held free is counted when its chain goes out.)
                // SAFETY: the calling thread's own default heap.
                stats::remote_free(unsafe { &*heap }, class);
            }
            hold
        };
        profile::on_free(p, ptr);
        if hold {
            // SAFETY: our default heap's chain (`hold` implies a heap); a
            // live block of a class page of `class` (read from the page
            // above) owned by another thread (or none), not by a
            // first-class heap; the caller frees it.
            unsafe { (*heap).held.hold(&*heap, page, class, ptr.cast()) };
        } else {
            // SAFETY: a valid block of a class page owned by another thread, or by none.
            unsafe { free_remote(p, ptr.cast()) };
        }
    }
}

/// The owner's free of a block of one of its class pages (`owner`, the
/// page's owner word as just read, carries the calling thread's key) that
/// is not a plain push: onto a full page (which returns to its bin), onto
/// a page the profiler watches, onto a page of an indexed class that is
/// not current (which becomes current, E40, when `make_current`: not for
/// the free cache's flushes, whose blocks were not freed last).
///
/// # Safety
/// `ptr` must be a live block of the class page `p` (at `page`), owned by
/// the calling thread.
unsafe fn free_owned(p: &Page, page: *mut Page, ptr: *mut u8, owner: usize, make_current: bool) {
    let class = p.class();
    // SAFETY: we own the page, so the page's heap is one of ours.
    unsafe {
        let page_heap: &Heap = &*p.heap.load(Ordering::Relaxed);
        let indexed = is_indexed_class(class);
        if owner & OWNER_SLOW != 0 {
            profile::on_free(p, ptr);
            if p.in_full.get() {
                // One of our full pages: it has room again.
                page_heap.unpark_full(page, true);
            } else {
                if indexed && make_current {
                    // Reuse first what was freed last (E40).
                    page_heap.make_current(page);
                }
                page_heap.restore_owner(p);
            }
        }
        // (With `OWNER_INDEXED` alone, the page is current already.)
        let emptied = if indexed {
            p.push_indexed(ptr.cast())
        } else {
            p.push_local(ptr.cast())
        };
        if emptied {
            page_heap.page_emptied(page);
        } else if indexed && p.used.get() == 1 && ptr::eq(page_heap.pinned[class].get(), page) {
            // Nothing left but the pin, as in `free_owned_not_plain`.
            page_heap.note_emptied_current(class);
        }
    }
}

/// The owner's free of a block above 1 KiB onto its heap's free cache
/// (`free_cache.rs`): `true` when the free is done (cached, or reported as
/// invalid or double), `false` when it must go the usual way: the page is
/// not one the cache takes from (small or request-sized blocks, a
/// first-class heap's page, a page holding profiling samples, profiling
/// on), or the block is the last its page holds.
///
/// # Safety
/// `p` must be a valid descriptor whose owner word `owner` carries the
/// calling thread's key.
#[inline]
unsafe fn free_into_cache(p: &Page, ptr: *mut u8, owner: usize) -> bool {
    if p.kind() != PageKind::Class {
        return false;
    }
    let class = p.class();
    if !is_indexed_class(class) || p.block_size.get() != CLASS_SIZE[class] as usize || profile::active() {
        return false;
    }
    let heap = tls::heap();
    // SAFETY: the thread's heap slot always holds a valid heap.
    if unsafe { (*heap).owner_key.get() } != owner & !OWNER_FLAGS {
        // A sentinel (no heap, or the thread is exiting): it caches nothing.
        return false;
    }
    // Until a first-class heap is made, every page a thread owns is its
    // default heap's (and `heap`, read only then, is on the descriptor's
    // second line, which this path does not read otherwise).
    if crate::heap::first_class_heaps_made() && !ptr::eq(p.heap.load(Ordering::Relaxed), heap) {
        return false;
    }
    // The page's last block (besides the pin of a current page) goes to
    // it: the page empties, and another class may take its span (E75),
    // rather than stay held by a block the cache keeps.
    let last = if owner & OWNER_INDEXED != 0 { 2 } else { 1 };
    if p.used.get() <= last {
        return false;
    }
    // The process-wide flag first: settled in a process that never took a
    // sample, whereas `OWNER_SLOW` changes with the page (whether it is
    // current), a branch mispredicted at random frees (E97).
    if profile::any_sampled() && owner & OWNER_SLOW != 0 && profile::page_has_samples(p) {
        // The profiler may have sampled this block: `free_slow` drops it.
        return false;
    }
    if p.block_index_in_class(ptr as usize, class).is_none() {
        report(HeapError::InvalidFree, ptr as usize, 0, 0);
        return true;
    }
    // SAFETY: the calling thread's live default heap (its key, checked
    // above; the sentinels have none).
    let heap = unsafe { &*heap };
    let block = ptr.cast::<Block>();
    let mark = free_cache::mark(block);
    let first_word = block.cast::<usize>();
    // Only a block with the mark can be on the stack (the cache's
    // invariants): the others need no search.
    // SAFETY: `block` starts a block of a live page (checked above): at
    // least 1 KiB, word-aligned (page starts and class sizes are multiples
    // of 8), mapped.
    if unsafe { first_word.read() } == mark {
        // SAFETY: the calling thread's own default heap; a block the
        // checks above let it cache, freed by the program, carrying the
        // mark (just read), and on no list but maybe this stack, which
        // `cache_marked_block` looks through first.
        unsafe { cache_marked_block(heap, class, block) };
        return true;
    }
    // SAFETY: as above; the program has freed the block, so its bytes are
    // the allocator's until it hands the block out again.
    unsafe { first_word.write(mark) };
    if !heap.free_cache.push(class, block) {
        // SAFETY: the calling thread's own default heap; a block it may
        // cache, marked.
        unsafe { push_after_flush(heap, class, block) };
    }
    // (The calls above are the last thing the free does, so nothing is
    // live across them: with a call whose result the path went on with,
    // every cached free saved and restored six registers, 14 of its
    // instructions, docs/PERFORMANCE.md E109.)
    true
}

/// The end of `free_into_cache` for a block that carries the mark
/// already: a double free if it is on the stack, otherwise a block whose
/// first word the program left as the mark, cached as any other.
///
/// # Safety
/// As for `push_after_flush`, except that `block` may already be on the
/// stack of `class` (freed twice).
#[cold]
#[inline(never)]
unsafe fn cache_marked_block(heap: &Heap, class: Class, block: *mut Block) {
    if heap.free_cache.contains(class, block) {
        report(HeapError::DoubleFree, block as usize, 0, 0);
        return;
    }
    if !heap.free_cache.push(class, block) {
        // SAFETY: caller's contract.
        unsafe { push_after_flush(heap, class, block) };
    }
}

/// Frees the older half of the free cache's blocks of `class` onto their
/// pages, then pushes `block`, which did not fit.
///
/// # Safety
/// `heap` must be the calling thread's default heap, and `block` a block
/// its free cache may take (`free_into_cache`'s checks), freed by the
/// program, with the mark in its first word, on no list.
#[cold]
#[inline(never)]
unsafe fn push_after_flush(heap: &Heap, class: Class, block: *mut Block) {
    let mut blocks = [ptr::null_mut(); free_cache::SLOTS];
    let n = heap.free_cache.take_older_half(class, &mut blocks);
    // SAFETY: blocks of the cache (its invariants), now off it.
    unsafe { free_cached(&blocks[..n]) };
    if !heap.free_cache.push(class, block) {
        // A free made while the flush ran (the flush may start the purger
        // thread) filled the stack again: this one goes to its page rather
        // than be lost.
        // SAFETY: caller's contract: a live block of a class page of this
        // thread's default heap, as every cached block is.
        unsafe { free_cached(&[block]) };
    }
}

/// Frees every block of `heap`'s free cache onto its page.
///
/// # Safety
/// `heap` must be the calling thread's default heap, or hold no cached block.
pub unsafe fn flush_free_cache(heap: &Heap) {
    if !free_cache::ENABLED || heap.free_cache.is_empty() {
        return;
    }
    let mut blocks = [ptr::null_mut(); free_cache::SLOTS];
    for class in free_cache::FIRST_CACHED..CLASS_COUNT {
        let n = heap.free_cache.take_all(class, &mut blocks);
        // SAFETY: blocks of the cache (its invariants), now off it.
        unsafe { free_cached(&blocks[..n]) };
    }
}

/// Frees blocks taken off the calling thread's free cache (or that it
/// would have taken) onto their pages (which it still owns: a page holding
/// a block the heap counts as allocated never leaves it).
///
/// # Safety
/// Each block must be one the cache's invariants allow: a live block of a
/// class-size page of the calling thread's default heap, freed by the
/// program and on no list.
unsafe fn free_cached(blocks: &[*mut Block]) {
    for &block in blocks {
        let ptr = block.cast::<u8>();
        let page = resolve_forward(chunk::page_of_trusted(ptr));
        // SAFETY: the cache's invariants: a live (allocated) block of a
        // class page this thread owns.
        unsafe {
            let p = &*page;
            free_owned(p, page, ptr, p.owner.load(Ordering::Relaxed), false);
        }
    }
    purge::start_if_wanted();
}

/// Frees a large or huge block claimed with `Page::claim_big`
/// (`free_big_block` drops its profiling sample).
///
/// # Safety
/// The caller claimed the block (`kind` is what it was).
unsafe fn release_big(page: *mut Page, kind: PageKind) {
    // SAFETY: caller's contract.
    unsafe {
        Heap::untrack_large(page);
        free_big_block(page, kind);
    }
}

/// Pushes a block onto its page's `thread_free` with one CAS; if the owner
/// parked the page as full, tells the owner's heap.
///
/// # Safety
/// `block` must be a live block of the class page `page`, freed by a
/// thread that does not own the page.
unsafe fn free_remote(page: &Page, block: *mut Block) {
    let link = |next: *mut u8| {
        // SAFETY: the block is ours to write until the push publishes it.
        unsafe { page.set_next(block, next.cast()) }
    };
    if page.thread_free.push(block.cast(), link) {
        notify_owner(page);
    }
}

/// A remote free consumed the notification request of `page` (parked as
/// full): sets the page's class bit in its owner heap's `notify`.
pub fn notify_owner(page: &Page) {
    let heap = page.heap.load(Ordering::Acquire);
    if !heap.is_null() {
        let class = page.class();
        // SAFETY: heaps are never unmapped (they are recycled through the
        // pool), so even a stale pointer is valid; a stale bit only costs
        // its owner one scan.
        unsafe { (*heap).notify[class / 64].fetch_or(1 << (class % 64), Ordering::Release) };
    }
}

#[cfg(all(test, not(feature = "secure")))]
mod tests {
    use super::*;
    use crate::raw;

    /// The owner word of the page of `block`.
    fn owner_of(block: *mut u8) -> usize {
        // SAFETY: a live block of ours: its descriptor is valid.
        unsafe { (*chunk::page_of_trusted(block)).owner.load(Ordering::Relaxed) }
    }

    #[test]
    #[cfg_attr(miri, ignore = "the engine's OS layer (getauxval, mmap) does not run under Miri")]
    fn big_blocks_go_through_the_free_cache_to_the_free_index() {
        const SIZE: usize = 2000;
        const MAX_BLOCKS: usize = 64;
        let key = tls::owner_key();
        let first = raw::malloc(SIZE);
        assert!(!first.is_null());
        let page = chunk::page_of_trusted(first);
        assert_eq!(owner_of(first), key | OWNER_INDEXED, "the current page of big blocks");
        // Fill the page: the next block comes from another page, and this
        // one is parked as full.
        let mut blocks = [core::ptr::null_mut(); MAX_BLOCKS];
        blocks[0] = first;
        let mut count = 1;
        while chunk::page_of_trusted(blocks[count - 1]) == page {
            assert!(
                count < MAX_BLOCKS,
                "a page holds fewer than {MAX_BLOCKS} blocks of {SIZE} B"
            );
            blocks[count] = raw::malloc(SIZE);
            assert!(!blocks[count].is_null());
            count += 1;
        }
        assert_eq!(
            owner_of(first),
            key | OWNER_SLOW,
            "a full page's frees take the slow path"
        );
        // SAFETY: the page's descriptor stays valid while it holds blocks.
        let index_len = || unsafe { (*page).free_index.len() };
        let class = crate::size_class::class_of(SIZE);
        let capacity = free_cache::capacity(class);
        assert!(count > capacity + 2, "the test needs more blocks to a page");
        // SAFETY: live blocks of ours, each freed once (or reallocated).
        unsafe {
            raw::free(blocks[1]);
            assert_eq!(index_len(), 0, "the free cache takes the block");
            assert_eq!(owner_of(first), key | OWNER_SLOW, "its page stays full");
            assert_eq!(raw::malloc(SIZE), blocks[1], "what was freed last comes back first");
            for &block in &blocks[1..=capacity] {
                raw::free(block);
            }
            assert_eq!(index_len(), 0, "the cache holds {capacity} blocks");
            raw::free(blocks[capacity + 1]);
            assert_eq!(
                index_len(),
                capacity / 2,
                "a full cache gives its older half to the free index"
            );
            assert_eq!(raw::malloc(SIZE), blocks[capacity + 1], "the newer half stays");
            raw::free(blocks[capacity + 1]);
            // A pointer inside a block changes nothing (it is reported:
            // tests/bad_pointers.rs).
            raw::free(blocks[capacity + 2].wrapping_add(8));
            assert_eq!(index_len(), capacity / 2);
            raw::free(first);
            for &block in &blocks[capacity + 2..count] {
                raw::free(block);
            }
        }
    }
}
