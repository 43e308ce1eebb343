//! Abandonment and reclaim: what happens to pages when their thread exits.
//!
//! At thread exit every page of the heap is collected. Empty pages go back
//! to the arena; pages that still hold live blocks are *abandoned*: they
//! lose their owner and go on a per-class list here, without the OS pages
//! past their carved blocks that a page made on a used span still held
//! (docs/PERFORMANCE.md E114). Other threads' frees
//! into them keep working (they push onto `thread_free`, as any remote free).
//! A thread that needs a page of that class *reclaims* one (into its default
//! heap: a first-class heap may be destroyed with its pages, and these hold
//! other threads' blocks) before taking a fresh page, and sweeps (on slow paths, and in the background purger)
//! give back abandoned pages that remote frees have emptied.
//!
//! A free into an abandoned page takes the page too, when at least half of
//! the page's carved blocks were live at abandonment and the freeing
//! thread allocates blocks of its class (it has a page of that class): a
//! thread that inherits a predecessor's blocks (larson: each thread hands
//! its slots to the next one) then reuses the blocks it frees at once,
//! still in its cache, instead of allocating from pages it has never
//! touched (docs/PERFORMANCE.md E93). A thread that only frees never
//! acquires pages, so frees from threads that do not allocate cannot make
//! memory grow; nor do pages that were mostly empty at abandonment move
//! (mstress's survivors of a round: its peak grew 4x when any free took
//! its page).

use crate::arena;
use crate::heap::Heap;
use crate::page::{is_indexed_class, Page};
use crate::size_class::{Class, CLASS_COUNT};
use crate::stats;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Mutex;
use core::ptr;

/// `Page::abandoned`: the page is on no abandoned list.
pub const NOT_LISTED: u8 = 0;
/// `Page::abandoned`: on its class's list; frees do not take it.
pub const LISTED: u8 = 1;
/// `Page::abandoned`: on its class's list, and a free may take it
/// ([`reclaim_on_free`]): at least half its carved blocks were live when it
/// was abandoned.
pub const LISTED_FREES_TAKE: u8 = 2;

/// Abandoned pages of one class, doubly linked through `Page::next` and
/// `Page::prev` (a free may take a page from the middle).
///
/// Invariant: every page here has `owner == 0`, a null `heap`, `abandoned`
/// other than [`NOT_LISTED`] (and every page not here of this class has
/// [`NOT_LISTED`]), and `used` equal to its allocated blocks plus whatever
/// still waits on `thread_free`. Whoever holds the lock may act as the
/// pages' owner.
pub struct AbandonedList {
    head: *mut Page,
    tail: *mut Page,
}
// SAFETY: the raw pointers are only followed with the list's lock held.
unsafe impl Send for AbandonedList {}

/// The abandoned pages, per class (each list locked around `fork` too).
pub static ABANDONED: [Mutex<AbandonedList>; CLASS_COUNT] = [const {
    Mutex::new(AbandonedList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
    })
}; CLASS_COUNT];
/// Pages on each list (read without the lock to skip empty lists).
static COUNTS: [AtomicUsize; CLASS_COUNT] = [const { AtomicUsize::new(0) }; CLASS_COUNT];
/// Pages on all lists.
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Gives up a page at thread exit: frees it when empty, otherwise puts it
/// on its class's abandoned list.
///
/// # Safety
/// The calling thread must own `page` (a class page), which must be on no queue.
pub unsafe fn abandon(page: *mut Page) {
    // SAFETY: caller's contract: we own the page until it is published below.
    let p = unsafe { &*page };
    // Stop asking for notifications and stop fast local frees.
    p.thread_free.clear_notify();
    p.in_full.set(false);
    p.owner.store(0, Ordering::Relaxed);
    p.heap.store(ptr::null_mut(), Ordering::Relaxed);
    // An orphaned first-class heap's page is a default heap's to reclaim.
    p.in_first_class.store(false, Ordering::Relaxed);
    // Collect the remote frees, so that `used` counts exactly the allocated
    // blocks (plus future remote frees).
    // SAFETY: we still act as the owner.
    unsafe { p.collect_thread_free() };
    if p.used.get() == 0 {
        // SAFETY: empty and on no list.
        unsafe { arena::free_page_span(page) };
        return;
    }
    // A page made on a used span holds that span's old OS pages past its
    // carved blocks until a sweep of its owner gives them back, and the
    // owner is leaving: on the abandoned list they would stay until a
    // thread takes the page, if one ever does (docs/PERFORMANCE.md E114).
    // SAFETY: we still act as the owner, and the page is a class page.
    let purged = unsafe { p.purge_tail() };
    if purged != 0 {
        stats::purged(purged);
    }
    let class = p.class();
    let state = if p.used.get() * 2 >= p.capacity() {
        LISTED_FREES_TAKE
    } else {
        LISTED
    };
    let mut list = ABANDONED[class].lock();
    // SAFETY: we hold the list's lock; the page is on no list.
    unsafe { list.push_back(page, state) };
    drop(list);
    stats::page_abandoned();
}

impl AbandonedList {
    /// Appends `page` in `state` ([`LISTED`] or [`LISTED_FREES_TAKE`]).
    ///
    /// # Safety
    /// The caller holds the lock; `page` is on no list.
    unsafe fn push_back(&mut self, page: *mut Page, state: u8) {
        // SAFETY: caller's contract.
        unsafe {
            self.link_back(page);
            (*page).abandoned.store(state, Ordering::Relaxed);
        }
        COUNTS[class_of(page)].fetch_add(1, Ordering::Relaxed);
        TOTAL.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes `page` off the list.
    ///
    /// # Safety
    /// The caller holds the lock; `page` is on this list.
    unsafe fn unlink(&mut self, page: *mut Page) {
        // SAFETY: caller's contract.
        unsafe {
            self.link_out(page);
            (*page).abandoned.store(NOT_LISTED, Ordering::Relaxed);
        }
        COUNTS[class_of(page)].fetch_sub(1, Ordering::Relaxed);
        TOTAL.fetch_sub(1, Ordering::Relaxed);
    }

    /// Moves `page` to the back of the list (its state and the counts stay).
    ///
    /// # Safety
    /// The caller holds the lock; `page` is on this list.
    unsafe fn move_to_back(&mut self, page: *mut Page) {
        // SAFETY: caller's contract.
        unsafe {
            self.link_out(page);
            self.link_back(page);
        }
    }

    /// The links of [`push_back`](Self::push_back): `page` becomes the tail.
    ///
    /// # Safety
    /// The caller holds the lock; `page` is on no list.
    unsafe fn link_back(&mut self, page: *mut Page) {
        // SAFETY: caller's contract; list members are valid.
        unsafe {
            (*page).next.set(ptr::null_mut());
            (*page).prev.set(self.tail);
            if self.tail.is_null() {
                self.head = page;
            } else {
                (*self.tail).next.set(page);
            }
        }
        self.tail = page;
    }

    /// The links of [`unlink`](Self::unlink): `page`'s neighbours are joined.
    ///
    /// # Safety
    /// The caller holds the lock; `page` is on this list.
    unsafe fn link_out(&mut self, page: *mut Page) {
        // SAFETY: caller's contract; list members are valid.
        unsafe {
            let (prev, next) = ((*page).prev.get(), (*page).next.get());
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next.set(next);
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).prev.set(prev);
            }
            (*page).next.set(ptr::null_mut());
            (*page).prev.set(ptr::null_mut());
        }
    }
}

/// The class of an abandoned page.
fn class_of(page: *mut Page) -> Class {
    // SAFETY: pages on the lists are valid class pages.
    unsafe { (*page).class() }
}

/// Abandoned pages examined per reclaim before giving up (full ones are
/// rotated to the back of the list).
const RECLAIM_TRIES: usize = 8;

/// Takes an abandoned page of `class` for `heap`, or `None`. The page comes
/// back owned by `heap`, with its remote frees collected, on no queue.
pub fn reclaim(class: Class, heap: &Heap) -> Option<*mut Page> {
    if COUNTS[class].load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut list = ABANDONED[class].lock();
    for _ in 0..RECLAIM_TRIES {
        let page = list.head;
        if page.is_null() {
            return None;
        }
        // SAFETY: pages on the list are valid; holding the lock makes us their owner.
        let p = unsafe { &*page };
        // SAFETY: as above.
        unsafe { p.collect_thread_free() };
        let has_room = !p.free.get().is_null()
            || !p.local_free.get().is_null()
            || p.capacity() < u32::from(p.reserved.get())
            // (The lock makes us the page's owner, so its index is ours to read.)
            || (is_indexed_class(class) && !p.free_index.is_empty());
        if !has_room {
            // Still full: keep it for later, look at the next one.
            // SAFETY: we hold the lock; the page is on the list.
            unsafe { list.move_to_back(page) };
            continue;
        }
        // SAFETY: as above.
        unsafe { list.unlink(page) };
        drop(list);
        adopt(p, heap);
        return Some(page);
    }
    None
}

/// Makes a page just taken off its abandoned list `heap`'s.
fn adopt(p: &Page, heap: &Heap) {
    p.heap.store(heap as *const Heap as *mut Heap, Ordering::Relaxed);
    p.in_full.set(false);
    heap.restore_owner(p);
    stats::page_reclaimed();
}

/// A free by the calling thread, whose default heap is `heap`, into `page`,
/// which no thread owned when the free read its owner word: takes the page
/// into `heap` (at the front of its bin, as the page to allocate from),
/// if it is still abandoned and [`LISTED_FREES_TAKE`], and `heap` has a
/// page of its class. Returns whether it did; the caller then frees the
/// block as the page's owner. See the module's documentation for why.
///
/// # Safety
/// `page` must be a class page in which the caller holds a live block (so
/// that it stays a class page of the same class), and `heap` must be the
/// calling thread's default heap.
pub unsafe fn reclaim_on_free(page: *mut Page, heap: &Heap) -> bool {
    // SAFETY: caller's contract.
    let p = unsafe { &*page };
    // A hint without the lock (see `Page::abandoned`); checked again below.
    if p.abandoned.load(Ordering::Relaxed) != LISTED_FREES_TAKE {
        return false;
    }
    let class = p.class();
    let bin = &heap.bins[class];
    if bin.first.get().is_null() {
        // The thread allocates no block of this class.
        return false;
    }
    let mut list = ABANDONED[class].lock();
    if p.abandoned.load(Ordering::Relaxed) != LISTED_FREES_TAKE {
        // Taken (or swept) since the hint.
        return false;
    }
    // SAFETY: we hold the lock, and the page is on this list (its state
    // says so, exactly under the lock).
    unsafe { list.unlink(page) };
    drop(list);
    // SAFETY: off the list, the page is ours alone until `adopt` publishes
    // the new owner.
    unsafe { p.collect_thread_free() };
    adopt(p, heap);
    // SAFETY: the page is now ours and on no queue.
    unsafe { bin.push_front(page) };
    heap.refresh_current(class);
    true
}

/// Gives back every abandoned page that remote frees have emptied.
pub fn sweep() {
    if TOTAL.load(Ordering::Relaxed) == 0 {
        return;
    }
    for class in 0..CLASS_COUNT {
        if COUNTS[class].load(Ordering::Relaxed) == 0 {
            continue;
        }
        // Unlink empty pages under the lock, free them after (freeing may
        // take the arena lock; keep lock nesting to a minimum).
        let mut empty: *mut Page = ptr::null_mut();
        let mut list = ABANDONED[class].lock();
        let mut page = list.head;
        while !page.is_null() {
            // SAFETY: pages on the list are valid; the lock makes us their owner.
            let p = unsafe { &*page };
            let next = p.next.get();
            // SAFETY: as above.
            unsafe { p.collect_thread_free() };
            if p.used.get() == 0 {
                // SAFETY: we hold the lock; the page is on the list.
                unsafe { list.unlink(page) };
                p.next.set(empty);
                empty = page;
            }
            page = next;
        }
        drop(list);
        while !empty.is_null() {
            // SAFETY: unlinked above; empty and ownerless, so ours to free.
            let next = unsafe { (*empty).next.get() };
            // SAFETY: as above.
            unsafe { arena::free_page_span(empty) };
            empty = next;
        }
    }
}

/// Pages currently abandoned.
pub fn abandoned_pages() -> usize {
    TOTAL.load(Ordering::Relaxed)
}
