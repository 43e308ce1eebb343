//! Remote frees held back: a thread that frees blocks of another thread's
//! page keeps them on a short chain of its own while they all belong to
//! the same page, and publishes the whole chain with one compare-and-swap
//! on the page's `thread_free` (`ThreadFree::push_chain`).
//!
//! A consumer of a producer/consumer pair frees runs of blocks of the same
//! page; one CAS per block made the page's `thread_free` line travel
//! between the cores at every free (xmalloc@2 spent 15% more time than
//! with chains; docs/PERFORMANCE.md E41).
//!
//! Held blocks stay counted in their page's `used` (they are on no list
//! the owner can see), so the page is neither retired nor freed meanwhile.
//! The freeing heap counts them as its remote frees when their chain goes
//! out (`send`), not one by one (a block pushed at once is counted then).
//! The one exception is a first-class heap's `destroy`, which frees its
//! pages whatever they hold: blocks of first-class heaps are never held
//! (`may_hold`), and a page of a default heap never comes under a first-class
//! heap (those do not reclaim abandoned pages).
//!
//! A chain starts only at the [`CHAIN_AT_RUN`]th remote free in a row
//! into one page; those before it are pushed at once, one
//! compare-and-swap each (`publish`, as a chain of one). Remote frees
//! scattered over other threads' pages (a shared array's evictions: the
//! latency workload) then
//! swap on the line the free has just read. Held, such a block went out
//! at the thread's next remote free elsewhere or its next slow path, and
//! by then its page's line was most often back in the owner's core (the
//! page it allocates from, E90): a second transfer of the line. At 2
//! threads that gave two to three times as many remote frees above 200
//! ns as mimalloc's; pushing the first three of a run at once halves them
//! (docs/PERFORMANCE.md E118). A consumer's run of frees into one page
//! (xmalloc) pays up to three swaps more than its chains' one each: runs
//! there are hundreds of frees long.
//!
//! The chain goes out when a free hits another page, when it holds
//! [`HOLD_BYTES`] (or [`HOLD_BLOCKS`]), on the thread's allocation slow
//! path, on `collect`, and when the thread's heap is released at exit. So
//! a thread that frees and then sleeps holds at most one chain, of at most
//! `HOLD_BYTES`, that its page's owner cannot reuse until then.

use crate::heap::Heap;
use crate::page::{Block, Page};
use crate::size_class::Class;
use crate::stats;
use crate::sync::atomic::Ordering;
use core::cell::Cell;
use core::ptr;

/// Which remote free in a row into one page starts a chain; those before
/// it are pushed at once (see the module notes). 4 kept most of what
/// pushing every remote free at once gained in the latency workload
/// (E118), which cost xmalloc a third of its speed.
const CHAIN_AT_RUN: u32 = 4;

/// The most bytes a chain holds before it goes out.
const HOLD_BYTES: usize = 16 * 1024;
/// The most blocks a chain holds before it goes out.
const HOLD_BLOCKS: usize = 64;

/// One thread's held remote frees. Invariant: `page` is null and `count`
/// 0, or `count` (1..=`limit`) blocks of `page`, freed while another
/// thread (or none) owned it, are linked from `head` to `tail` through
/// their links (the tail's link unset), no other list holds them,
/// `page.used` still counts them, and `class` is `page`'s class (fixed
/// while the page holds live blocks). (The page may since have been
/// reclaimed by this very thread: the chain then goes to its own
/// `thread_free`.)
pub struct HeldFrees {
    page: Cell<*mut Page>,
    head: Cell<*mut Block>,
    tail: Cell<*mut Block>,
    count: Cell<usize>,
    limit: Cell<usize>,
    /// The class of `page`, given when the chain starts: `send` counts the
    /// blocks under it without reading the descriptor's first line again,
    /// which the page's owner may have written since (E101).
    class: Cell<Class>,
    /// The page of the last remote free that came to
    /// [`hold`](Self::hold), pushed at once or starting a chain (null: none
    /// yet). Only ever compared, never followed: the page may have been
    /// freed since.
    last_page: Cell<*mut Page>,
    /// How many remote frees in a row have come to [`hold`](Self::hold)
    /// for `last_page` (saturating; frees appended to a chain through
    /// [`append`](Self::append) alone are not counted).
    run: Cell<u32>,
}

impl HeldFrees {
    /// Holds nothing.
    pub const fn new() -> Self {
        HeldFrees {
            page: Cell::new(ptr::null_mut()),
            head: Cell::new(ptr::null_mut()),
            tail: Cell::new(ptr::null_mut()),
            count: Cell::new(0),
            limit: Cell::new(0),
            class: Cell::new(0),
            last_page: Cell::new(ptr::null_mut()),
            run: Cell::new(0),
        }
    }

    /// The page the chain is on (null: no chain).
    #[inline(always)]
    pub fn page(&self) -> *mut Page {
        self.page.get()
    }

    /// Adds `block` of `page`, a page of `class`, to the chain (first
    /// sending out a chain of another page), and sends the chain out when
    /// it is full; or pushes `block` at once, when fewer than
    /// [`CHAIN_AT_RUN`] remote frees in a row have come here for `page`.
    ///
    /// # Safety
    /// Only the thread owning these held frees may call this, with `heap`
    /// the heap that holds them. `block` must be a live block of the class
    /// page `page` (of `class`) that the calling thread does not own and
    /// that no first-class heap owns, and the caller gives it up (a free).
    #[inline]
    pub unsafe fn hold(&self, heap: &Heap, page: *mut Page, class: Class, block: *mut Block) {
        if self.page.get() == page {
            // SAFETY: forwarded contract, on the chain's page.
            if unsafe { self.append(block) } {
                // SAFETY: as above.
                unsafe { self.send(heap) };
            }
            return;
        }
        // SAFETY: forwarded contract (our chain).
        unsafe { self.send(heap) };
        let run = if self.last_page.replace(page) == page {
            self.run.get().saturating_add(1)
        } else {
            1
        };
        self.run.set(run);
        if run < CHAIN_AT_RUN {
            // SAFETY: a live block of the class page `page` (caller), given
            // up, on no list: a chain of one.
            unsafe { publish(heap, page, class, block, block, 1) };
            return;
        }
        self.page.set(page);
        self.class.set(class);
        self.tail.set(block);
        // SAFETY: a class page (caller), alive while it has live blocks.
        let size = unsafe { (*page).block_size.get() };
        // (A 32-bit division: class blocks are below 4 GiB.)
        self.limit
            .set(((HOLD_BYTES as u32 / size as u32) as usize).clamp(1, HOLD_BLOCKS));
        self.head.set(block);
        self.count.set(1);
        if self.limit.get() == 1 {
            // SAFETY: as above.
            unsafe { self.send(heap) };
        }
    }

    /// Adds `block` to the chain, which is on `block`'s page: the first
    /// half of [`hold`](Self::hold) when the caller already knows the
    /// chain's page is `block`'s. Returns whether the chain is full; the
    /// caller must then [`send`](Self::send) it before the next `append`.
    ///
    /// # Safety
    /// As for `hold`, with `page` the chain's page (`self.page()`), and the
    /// chain not full.
    #[inline(always)]
    pub unsafe fn append(&self, block: *mut Block) -> bool {
        // SAFETY: the chain's page is alive while the chain holds its
        // blocks; the caller gives the block up; the chain is ours.
        unsafe { (*self.page.get()).set_next(block, self.head.get()) };
        self.head.set(block);
        let count = self.count.get() + 1;
        self.count.set(count);
        count >= self.limit.get()
    }

    /// Publishes the chain on its page's `thread_free` (nothing when empty),
    /// telling the page's owner if it waits for a free, and counts its
    /// blocks as `heap`'s remote frees. (Counted here, once a chain, rather
    /// than at each free: a per-free count read the page's class and moved
    /// a counter at every free of a producer/consumer pair, docs/PERFORMANCE.md
    /// E98. A held block is not the owner's to reuse before this anyway.)
    ///
    /// # Safety
    /// Only the thread owning these held frees may call this, with `heap`
    /// the heap that holds them.
    #[inline(never)]
    pub unsafe fn send(&self, heap: &Heap) {
        let page = self.page.replace(ptr::null_mut());
        if page.is_null() {
            return;
        }
        let count = self.count.replace(0);
        // SAFETY: the held blocks keep their page alive (see the module
        // notes); they are a chain of `count` blocks of `page`, of the
        // chain's class, from `head` to `tail`, on no other list, ours until
        // published; `heap` holds them (caller), so it is the calling
        // thread's default heap (only those hold frees).
        unsafe { publish(heap, page, self.class.get(), self.head.get(), self.tail.get(), count) };
    }
}

/// Publishes `count` remote frees of `page`, linked from `head` to `tail`,
/// on its `thread_free`, telling the page's owner if it waits for a free,
/// and counts them as `heap`'s remote frees: a held chain going out
/// ([`HeldFrees::send`]) or one block pushed at once (`hold`, a chain of
/// one).
///
/// # Safety
/// `head` to `tail` must be `count` (at least one) live blocks of the class
/// page `page` (of `class`), linked through their links (the tail's
/// unset), freed while another thread (or none) owned the page (it may
/// have come to the calling thread since, see [`HeldFrees`]), given up by
/// the caller and on no list, and `heap` the calling thread's default heap.
#[inline]
unsafe fn publish(heap: &Heap, page: *mut Page, class: Class, head: *mut Block, tail: *mut Block, count: usize) {
    // SAFETY: the blocks are live (caller), so their page is.
    let p = unsafe { &*page };
    stats::remote_frees(heap, class, count);
    let link_tail = |next: *mut u8| {
        // SAFETY: the tail is ours until the push publishes it (caller).
        unsafe { p.set_next(tail, next.cast()) }
    };
    if p.thread_free.push_chain(head.cast(), count, link_tail) {
        crate::free::notify_owner(p);
    }
}

impl Default for HeldFrees {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a remote free of a block of `page` may be held: its owner is
/// not a first-class heap (which `destroy` may free with everything in it).
///
/// Read from the page's descriptor, not from its heap: another thread's
/// heap was a line this free would otherwise miss on (docs/PERFORMANCE.md
/// E48, E49). A page that a default heap owned, or none, never joins a
/// first-class heap, so the flag of a page with live blocks only goes from
/// set to clear (`Heap::delete` handing them to the default heap, or
/// abandoning them), and either answer is then safe. In a process that
/// never made a first-class heap the flag is not read: it is on the
/// descriptor's second line, which a remote free otherwise does not read
/// (E81, E102).
#[inline]
pub fn may_hold(page: &Page) -> bool {
    !crate::heap::first_class_heaps_made() || !page.in_first_class.load(Ordering::Relaxed)
}
