//! Abandonment and reclaim: what happens to pages when their thread exits.
//!
//! At thread exit every page of the heap is collected. Empty pages go back
//! to the arena; pages that still hold live blocks are *abandoned*: they
//! lose their owner and go on a per-class list here. Other threads' frees
//! into them keep working (they push onto `thread_free`, as any remote free).
//! A thread that needs a page of that class *reclaims* one (into its default
//! heap: a first-class heap may be destroyed with its pages, and these hold
//! other threads' blocks) before taking a fresh page, and sweeps (on slow paths, and in the background purger)
//! give back abandoned pages that remote frees have emptied.
//!
//! Freeing never reclaims: a thread that only frees never acquires pages,
//! so frees from threads that never allocated cannot make memory grow.

use crate::arena;
use crate::heap::Heap;
use crate::page::{is_indexed_class, Page};
use crate::size_class::{Class, CLASS_COUNT};
use crate::stats;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Mutex;
use core::ptr;

/// Abandoned pages of one class, linked through `Page::next`.
///
/// Invariant: every page here has `owner == 0`, a null `heap`, and `used`
/// equal to its allocated blocks plus whatever still waits on
/// `thread_free`. Whoever holds the lock may act as the pages' owner.
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
    let class = p.class();
    let mut list = ABANDONED[class].lock();
    // SAFETY: we hold the list's lock; the page is on no list.
    unsafe { list.push_back(page) };
    COUNTS[class].fetch_add(1, Ordering::Relaxed);
    TOTAL.fetch_add(1, Ordering::Relaxed);
    drop(list);
    stats::page_abandoned();
}

impl AbandonedList {
    /// # Safety
    /// The caller holds the lock; `page` is on no list.
    unsafe fn push_back(&mut self, page: *mut Page) {
        // SAFETY: caller's contract; list members are valid.
        unsafe {
            (*page).next.set(ptr::null_mut());
            if self.tail.is_null() {
                self.head = page;
            } else {
                (*self.tail).next.set(page);
            }
        }
        self.tail = page;
    }

    /// # Safety
    /// The caller holds the lock.
    unsafe fn pop_front(&mut self) -> *mut Page {
        let page = self.head;
        if !page.is_null() {
            // SAFETY: list members are valid.
            self.head = unsafe { (*page).next.get() };
            if self.head.is_null() {
                self.tail = ptr::null_mut();
            }
        }
        page
    }
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
        // SAFETY: we hold the lock.
        let page = unsafe { list.pop_front() };
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
            // SAFETY: we hold the lock; the page was just unlinked.
            unsafe { list.push_back(page) };
            continue;
        }
        COUNTS[class].fetch_sub(1, Ordering::Relaxed);
        TOTAL.fetch_sub(1, Ordering::Relaxed);
        drop(list);
        p.heap.store(heap as *const Heap as *mut Heap, Ordering::Relaxed);
        p.in_full.set(false);
        heap.restore_owner(p);
        stats::page_reclaimed();
        return Some(page);
    }
    None
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
        let mut prev: *mut Page = ptr::null_mut();
        let mut page = list.head;
        while !page.is_null() {
            // SAFETY: pages on the list are valid; the lock makes us their owner.
            let p = unsafe { &*page };
            let next = p.next.get();
            // SAFETY: as above.
            unsafe { p.collect_thread_free() };
            if p.used.get() == 0 {
                if prev.is_null() {
                    list.head = next;
                } else {
                    // SAFETY: `prev` is on the list.
                    unsafe { (*prev).next.set(next) };
                }
                if next.is_null() {
                    list.tail = prev;
                }
                COUNTS[class].fetch_sub(1, Ordering::Relaxed);
                TOTAL.fetch_sub(1, Ordering::Relaxed);
                p.next.set(empty);
                empty = page;
            } else {
                prev = page;
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
