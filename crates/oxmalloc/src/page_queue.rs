//! Page queues: intrusive doubly-linked lists of pages through `Page::next`
//! and `Page::prev`.
//!
//! Each heap has, per size class, a queue of pages that may have free
//! blocks (its first page is the *current* one, which allocation pops from)
//! and a queue of full pages that allocation skips.

use crate::page::Page;
use core::cell::Cell;
use core::ptr;

/// A queue of pages. Invariant: `first` and `last` are both null or both
/// point to pages of the queue, linked through `next`/`prev` with null ends.
pub struct PageQueue {
    /// The first page (the current page for allocation), or null.
    pub first: Cell<*mut Page>,
    /// The last page, or null.
    pub last: Cell<*mut Page>,
}

impl PageQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        PageQueue {
            first: Cell::new(ptr::null_mut()),
            last: Cell::new(ptr::null_mut()),
        }
    }

    /// Whether the queue holds no page.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.first.get().is_null()
    }

    /// Adds `page` at the front.
    ///
    /// # Safety
    /// `page` must be valid and on no queue.
    pub unsafe fn push_front(&self, page: *mut Page) {
        // SAFETY: the caller guarantees `page` is valid; queue members are valid.
        unsafe {
            let first = self.first.get();
            (*page).prev.set(ptr::null_mut());
            (*page).next.set(first);
            if first.is_null() {
                self.last.set(page);
            } else {
                (*first).prev.set(page);
            }
            self.first.set(page);
        }
    }

    /// Adds `page` at the back.
    ///
    /// # Safety
    /// `page` must be valid and on no queue.
    pub unsafe fn push_back(&self, page: *mut Page) {
        // SAFETY: as in `push_front`.
        unsafe {
            let last = self.last.get();
            (*page).next.set(ptr::null_mut());
            (*page).prev.set(last);
            if last.is_null() {
                self.first.set(page);
            } else {
                (*last).next.set(page);
            }
            self.last.set(page);
        }
    }

    /// Unlinks `page`.
    ///
    /// # Safety
    /// `page` must be on this queue.
    pub unsafe fn remove(&self, page: *mut Page) {
        // SAFETY: `page` and its neighbours are members of this queue.
        unsafe {
            let prev = (*page).prev.get();
            let next = (*page).next.get();
            if prev.is_null() {
                self.first.set(next);
            } else {
                (*prev).next.set(next);
            }
            if next.is_null() {
                self.last.set(prev);
            } else {
                (*next).prev.set(prev);
            }
            (*page).next.set(ptr::null_mut());
            (*page).prev.set(ptr::null_mut());
        }
    }

    /// Removes and returns the first page, or null.
    ///
    /// # Safety
    /// The queue's invariant must hold.
    pub unsafe fn pop_front(&self) -> *mut Page {
        let page = self.first.get();
        if !page.is_null() {
            // SAFETY: `page` is on this queue.
            unsafe { self.remove(page) };
        }
        page
    }

    /// Moves `page` to the front.
    ///
    /// # Safety
    /// `page` must be on this queue.
    pub unsafe fn move_to_front(&self, page: *mut Page) {
        if self.first.get() != page {
            // SAFETY: forwarded contract.
            unsafe {
                self.remove(page);
                self.push_front(page);
            }
        }
    }
}

impl Default for PageQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    fn collect(q: &PageQueue) -> Vec<*mut Page> {
        let mut out = Vec::new();
        let mut p = q.first.get();
        while !p.is_null() {
            out.push(p);
            // SAFETY: members of the queue are valid pages.
            p = unsafe { (*p).next.get() };
        }
        out
    }

    #[test]
    fn queue_operations_keep_order() {
        let pages: Vec<*mut Page> = (0..4).map(|_| Box::into_raw(Box::new(Page::new()))).collect();
        let q = PageQueue::new();
        // SAFETY: the pages are valid boxes, each on at most one queue.
        unsafe {
            q.push_back(pages[0]);
            q.push_back(pages[1]);
            q.push_front(pages[2]);
            assert_eq!(collect(&q), [pages[2], pages[0], pages[1]]);
            q.move_to_front(pages[1]);
            assert_eq!(collect(&q), [pages[1], pages[2], pages[0]]);
            q.remove(pages[2]);
            assert_eq!(collect(&q), [pages[1], pages[0]]);
            assert_eq!(q.last.get(), pages[0]);
            assert_eq!(q.pop_front(), pages[1]);
            assert_eq!(q.pop_front(), pages[0]);
            assert!(q.is_empty() && q.last.get().is_null());
            for p in pages {
                drop(Box::from_raw(p));
            }
        }
    }
}
