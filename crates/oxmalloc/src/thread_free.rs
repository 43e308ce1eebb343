//! The `thread_free` list of a page: how other threads give blocks back.
//!
//! A lock-free stack with one word of state: the address of the last block
//! pushed (blocks link to each other through their first word, written by
//! the pusher), the number of blocks on the list in the word's top 16 bits
//! (so the owner learns how many it took without walking the list: a walk
//! is a cache miss per block, all freed on other cores), plus a low tag
//! bit, [`NOTIFY`], that the owner sets when it parks the page as full and
//! wants to hear about the next remote free.
//!
//! * `push` (any thread): one compare-and-swap that publishes the block,
//!   counts it and clears the tag; it reports whether the tag was set, so
//!   that exactly one pusher notifies the owner. `push_chain` does the same
//!   for a chain of blocks linked by the pusher (`held_frees.rs`).
//! * `take_all` (the owner): one swap that empties the list.
//! * `try_park` (the owner): sets the tag only if the list is empty, so a
//!   page never waits for a notification while blocks are already there.
//!
//! No pop of a single element exists, so the stack has no ABA problem. This
//! file uses only `crate::sync::atomic`, so the model test in
//! `tests/loom_thread_free.rs` compiles it against loom's atomics.

use crate::sync::atomic::{AtomicPtr, Ordering};

/// The tag: the owner parked the page as full and wants a notification.
pub const NOTIFY: usize = 1;

/// Where the block count starts in the word. Blocks lie below 2^47 (the
/// engine maps its memory without address hints, and Linux hands out
/// addresses above 47 bits only to mappings that ask for them), and a page
/// holds fewer than 2^16 blocks.
const COUNT_SHIFT: u32 = 48;
const ADDRESS_BITS: usize = (1 << COUNT_SHIFT) - 1;

/// A page's list of blocks freed by other threads. Invariant: the word is
/// `last block pushed | count << COUNT_SHIFT | tag` (a pointer with the
/// block's provenance; blocks are at least 2-aligned), where `count` is the
/// length of the list, with the tag set only while the list is empty.
pub struct ThreadFree {
    word: AtomicPtr<u8>,
}

impl ThreadFree {
    /// A list over `word`, which must be null (empty). Takes the atomic
    /// from the caller so that the same code builds with core's atomics (in
    /// a `const` context) and with loom's (in the model test).
    pub const fn from_word(word: AtomicPtr<u8>) -> Self {
        ThreadFree { word }
    }

    /// Empties the list and clears the tag (a page being set up).
    pub fn reset(&self) {
        self.word.store(core::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Pushes `block`: `link(next)` must store `next` (the previous head,
    /// null for none) in the block before it is published. Returns `true`
    /// when the push consumed a notification request (the caller tells the
    /// owner).
    #[inline]
    pub fn push(&self, block: *mut u8, link: impl FnMut(*mut u8)) -> bool {
        self.push_chain(block, 1, link)
    }

    /// Pushes a chain of `count` blocks from `head` to `tail` (linked
    /// through their first words by the caller): `link_tail(next)` must
    /// store `next` in the tail before it is published. Returns `true` when
    /// the push consumed a notification request, as [`push`](Self::push).
    #[inline]
    pub fn push_chain(&self, head: *mut u8, count: usize, mut link_tail: impl FnMut(*mut u8)) -> bool {
        debug_assert!(head as usize & (NOTIFY | !ADDRESS_BITS) == 0 && count > 0);
        let mut old = self.word.load(Ordering::Relaxed);
        loop {
            link_tail(old.map_addr(|a| a & ADDRESS_BITS & !NOTIFY));
            let total = (old as usize >> COUNT_SHIFT) + count;
            let new = head.map_addr(|a| a | total << COUNT_SHIFT);
            match self
                .word
                .compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return old as usize & NOTIFY != 0,
                Err(current) => old = current,
            }
        }
    }

    /// Whether blocks wait on the list (a hint: more may arrive at any time).
    #[inline]
    pub fn has_blocks(&self) -> bool {
        self.word.load(Ordering::Relaxed) as usize & !NOTIFY != 0
    }

    /// Takes every block and clears the tag: the head (null when empty)
    /// and how many blocks the list holds. Owner only.
    #[inline]
    pub fn take_all(&self) -> (*mut u8, usize) {
        if !self.has_blocks() {
            return (core::ptr::null_mut(), 0);
        }
        let word = self.word.swap(core::ptr::null_mut(), Ordering::Acquire);
        (
            word.map_addr(|a| a & ADDRESS_BITS & !NOTIFY),
            word as usize >> COUNT_SHIFT,
        )
    }

    /// Asks for a notification at the next push, if the list is empty;
    /// `false` (nothing changed) when blocks are already there. Owner only.
    #[inline]
    pub fn try_park(&self) -> bool {
        self.word
            .compare_exchange(
                core::ptr::null_mut(),
                core::ptr::without_provenance_mut(NOTIFY),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Withdraws a notification request (the page left the full queue). Owner only.
    #[inline]
    pub fn clear_notify(&self) {
        let mut current = self.word.load(Ordering::Relaxed);
        while current as usize & NOTIFY != 0 {
            match self.word.compare_exchange_weak(
                current,
                current.map_addr(|a| a & !NOTIFY),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

impl Default for ThreadFree {
    fn default() -> Self {
        Self::from_word(AtomicPtr::new(core::ptr::null_mut()))
    }
}
