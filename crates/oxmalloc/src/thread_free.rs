//! The `thread_free` list of a page: how other threads give blocks back.
//!
//! A lock-free stack with one word of state: the address of the last block
//! pushed (blocks link to each other through their first word, written by
//! the pusher), plus a low tag bit, [`NOTIFY`], that the owner sets when it
//! parks the page as full and wants to hear about the next remote free.
//!
//! * `push` (any thread): one compare-and-swap that publishes the block
//!   and clears the tag; it reports whether the tag was set, so that exactly
//!   one pusher notifies the owner.
//! * `take_all` (the owner): one swap that empties the list.
//! * `try_park` (the owner): sets the tag only if the list is empty, so a
//!   page never waits for a notification while blocks are already there.
//!
//! No pop of a single element exists, so the stack has no ABA problem. This
//! file uses only `crate::sync::atomic`, so the model test in
//! `tests/loom_thread_free.rs` compiles it against loom's atomics.

use crate::sync::atomic::{AtomicUsize, Ordering};

/// The tag: the owner parked the page as full and wants a notification.
pub const NOTIFY: usize = 1;

/// A page's list of blocks freed by other threads. Invariant: the word is
/// `block address | tag`, with block addresses at least 2-aligned, and the
/// tag set only while the list is empty.
pub struct ThreadFree {
    word: AtomicUsize,
}

impl ThreadFree {
    /// A list over `word`, which must be 0 (empty). Takes the atomic from
    /// the caller so that the same code builds with core's atomics (in a
    /// `const` context) and with loom's (in the model test).
    pub const fn from_word(word: AtomicUsize) -> Self {
        ThreadFree { word }
    }

    /// Empties the list and clears the tag (a page being set up).
    pub fn reset(&self) {
        self.word.store(0, Ordering::Relaxed);
    }

    /// Pushes `block`: `link(next)` must store `next` (the previous head,
    /// 0 for none) in the block before it is published. Returns `true` when
    /// the push consumed a notification request (the caller tells the owner).
    #[inline]
    pub fn push(&self, block: usize, mut link: impl FnMut(usize)) -> bool {
        debug_assert!(block & NOTIFY == 0);
        let mut old = self.word.load(Ordering::Relaxed);
        loop {
            link(old & !NOTIFY);
            match self
                .word
                .compare_exchange_weak(old, block, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return old & NOTIFY != 0,
                Err(current) => old = current,
            }
        }
    }

    /// Whether blocks wait on the list (a hint: more may arrive at any time).
    #[inline]
    pub fn has_blocks(&self) -> bool {
        self.word.load(Ordering::Relaxed) & !NOTIFY != 0
    }

    /// Takes every block (the head, 0 when empty) and clears the tag. Owner only.
    #[inline]
    pub fn take_all(&self) -> usize {
        if !self.has_blocks() {
            return 0;
        }
        self.word.swap(0, Ordering::Acquire) & !NOTIFY
    }

    /// Asks for a notification at the next push, if the list is empty;
    /// `false` (nothing changed) when blocks are already there. Owner only.
    #[inline]
    pub fn try_park(&self) -> bool {
        self.word
            .compare_exchange(0, NOTIFY, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Withdraws a notification request (the page left the full queue). Owner only.
    #[inline]
    pub fn clear_notify(&self) {
        self.word.fetch_and(!NOTIFY, Ordering::Relaxed);
    }
}

impl Default for ThreadFree {
    fn default() -> Self {
        Self::from_word(AtomicUsize::new(0))
    }
}
