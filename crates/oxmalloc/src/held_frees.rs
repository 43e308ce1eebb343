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
//! out (`send`), not one by one.
//! The one exception is a first-class heap's `destroy`, which frees its
//! pages whatever they hold: blocks of first-class heaps are never held
//! (`may_hold`), and a page of a default heap never comes under a first-class
//! heap (those do not reclaim abandoned pages).
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
        }
    }

    /// The page the chain is on (null: no chain).
    #[inline(always)]
    pub fn page(&self) -> *mut Page {
        self.page.get()
    }

    /// Adds `block` of `page`, a page of `class`, to the chain (first
    /// sending out a chain of another page), and sends the chain out when
    /// it is full.
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
        let tail = self.tail.get();
        // SAFETY: the held blocks keep their page alive (see the module notes).
        let p = unsafe { &*page };
        stats::remote_frees(heap, self.class.get(), count);
        let link_tail = |next: *mut u8| {
            // SAFETY: the tail is a held block, ours until the push publishes it.
            unsafe { p.set_next(tail, next.cast()) }
        };
        if p.thread_free.push_chain(self.head.get().cast(), count, link_tail) {
            crate::free::notify_owner(p);
        }
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
