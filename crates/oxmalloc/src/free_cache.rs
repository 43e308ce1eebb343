//! The free cache: a thread's latest frees of blocks above 1 KiB, by class,
//! handed out again before anything on the pages.
//!
//! A block of the indexed classes (above [`DIRECT_MAX`] bytes) that its
//! owning thread frees goes onto its page's free index. The page that gets
//! it becomes the class's current page (E40), so that the next allocation
//! reuses what was freed last while its lines and TLB entry are warm. When
//! a thread's blocks of a class are spread over a few pages, as in rptest,
//! most frees land in a page that is not current, and each one then moves
//! the page to the front of its bin and the pin to it, and the next
//! allocation that finds the current page's index empty moves it again:
//! 235 instructions of allocator per rptest step, against tcmalloc's 115,
//! whose thread cache keeps one list per class whatever the page
//! (docs/PERFORMANCE.md E94).
//!
//! Here the default heap keeps, for each indexed class, a stack of the
//! blocks its thread freed last. A free pushes onto it; an allocation pops
//! from it first. Only when a stack is full does its older half go to the
//! pages, in one batch and without making their pages current.
//!
//! Invariants (of each heap's cache, touched only by the heap's thread):
//! - `blocks[i][..len[i]]` are distinct blocks of class `FIRST_CACHED + i`,
//!   each the start of a block of a class page whose block size is the
//!   class size, owned by this heap, which counts the block as allocated
//!   (`used`); the program has freed them. The most recent is last.
//! - `len[i] <= capacity(FIRST_CACHED + i)`.
//! - Each cached block's first word holds [`mark`] of the block (written by
//!   the free that cached it), so that a free finds most blocks not cached
//!   by reading that word, without looking through the stack. The word may
//!   also hold the mark when the block is not cached (it stays there after
//!   the block leaves the cache, and a program may write it): the mark
//!   only says where to look.
//! - A heap's cache is empty when its pages leave it (thread exit, and
//!   first-class heaps, which never cache), and before `collect`, `walk`
//!   and the calling thread's statistics read its pages.
//!
//! Not used in the hardened build (every free goes through its checks) nor
//! while heap profiling is on (the profiler must see every allocation).

use crate::page::Block;
use crate::size_class::{Class, CLASS_COUNT, CLASS_SIZE, DIRECT_MAX, LAST_DIRECT_CLASS};
use core::cell::Cell;
use core::ptr;

/// Whether frees are cached (not in the hardened build).
pub const ENABLED: bool = !crate::secure::ENABLED;

/// The first cached class: the first indexed class.
pub const FIRST_CACHED: Class = LAST_DIRECT_CLASS + 1;

/// Classes with a stack.
const CACHED_CLASSES: usize = CLASS_COUNT - FIRST_CACHED;

/// Blocks a stack holds at most.
pub const SLOTS: usize = 16;

/// Bytes of blocks a stack holds at most (fewer blocks for bigger
/// classes), so that a thread's cache keeps little memory from the pages.
pub const CLASS_BYTES: usize = 64 * 1024;

// The cached classes are those above the direct table's reach.
const _: () = assert!(CLASS_SIZE[FIRST_CACHED] as usize > DIRECT_MAX);

/// Blocks the stack of `class` holds at most: [`CLASS_BYTES`] worth, but
/// at least 2 (so that a flush of half leaves room) and at most [`SLOTS`].
/// (A table of these measured 1.5-2% slower on rptest than the division,
/// 11 rounds: docs/PERFORMANCE.md E94.)
#[inline]
pub fn capacity(class: Class) -> usize {
    (CLASS_BYTES / CLASS_SIZE[class] as usize).clamp(2, SLOTS)
}

/// What a cached block's first word holds (see the module invariants): its
/// address mixed with a constant, which a program's data is unlikely to
/// hold by chance (and if it does, the free looks through the stack, as it
/// would for every block without the mark).
#[inline(always)]
pub fn mark(block: *mut Block) -> usize {
    block as usize ^ 0x6f78_6d61_6c6c_6f63
}

/// One heap's stacks (see the module invariants).
pub struct FreeCache {
    blocks: [[Cell<*mut Block>; SLOTS]; CACHED_CLASSES],
    len: [Cell<u8>; CACHED_CLASSES],
}

impl FreeCache {
    /// An empty cache.
    pub const fn new() -> Self {
        FreeCache {
            blocks: [const { [const { Cell::new(ptr::null_mut()) }; SLOTS] }; CACHED_CLASSES],
            len: [const { Cell::new(0) }; CACHED_CLASSES],
        }
    }

    /// Takes the block of `class` freed last; null when there is none.
    /// `class` must be a cached class.
    #[inline(always)]
    pub fn pop(&self, class: Class) -> *mut Block {
        let i = class - FIRST_CACHED;
        let len = self.len[i].get() as usize;
        if len == 0 {
            return ptr::null_mut();
        }
        self.len[i].set(len as u8 - 1);
        self.blocks[i][len - 1].get()
    }

    /// Whether `block` is on the stack of `class` (a double free). The
    /// free asks only for a block that carries the [`mark`], which is rare:
    /// before the mark every free searched, and a branch-free compare of
    /// all slots was what that took (E94, E95).
    pub fn contains(&self, class: Class, block: *mut Block) -> bool {
        let i = class - FIRST_CACHED;
        let len = self.len[i].get() as usize;
        self.blocks[i][..len].iter().any(|slot| slot.get() == block)
    }

    /// Pushes `block` onto the stack of `class`; `false` (and nothing done)
    /// when the stack is full.
    #[inline]
    pub fn push(&self, class: Class, block: *mut Block) -> bool {
        let i = class - FIRST_CACHED;
        let len = self.len[i].get() as usize;
        if len >= capacity(class) {
            return false;
        }
        self.blocks[i][len].set(block);
        self.len[i].set(len as u8 + 1);
        true
    }

    /// Takes the older half of the stack of `class` off it, into `out`;
    /// returns how many.
    pub fn take_older_half(&self, class: Class, out: &mut [*mut Block; SLOTS]) -> usize {
        let len = self.len[class - FIRST_CACHED].get() as usize;
        self.take_oldest(class, len.div_ceil(2), out)
    }

    /// Takes every block of `class` off its stack, into `out`; returns how many.
    pub fn take_all(&self, class: Class, out: &mut [*mut Block; SLOTS]) -> usize {
        let len = self.len[class - FIRST_CACHED].get() as usize;
        self.take_oldest(class, len, out)
    }

    /// Takes the `count` oldest blocks (at most the stack's length) of the
    /// stack of `class` off it, into `out`; the others move down, in order.
    fn take_oldest(&self, class: Class, count: usize, out: &mut [*mut Block; SLOTS]) -> usize {
        let i = class - FIRST_CACHED;
        let len = self.len[i].get() as usize;
        for (k, slot) in out.iter_mut().enumerate().take(count) {
            *slot = self.blocks[i][k].get();
        }
        for k in count..len {
            self.blocks[i][k - count].set(self.blocks[i][k].get());
        }
        self.len[i].set((len - count) as u8);
        count
    }

    /// Whether any stack holds a block.
    pub fn is_empty(&self) -> bool {
        self.len.iter().all(|l| l.get() == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> *mut Block {
        ptr::without_provenance_mut(0x10000 + n * 4096)
    }

    #[test]
    fn last_in_first_out_up_to_capacity() {
        let cache = FreeCache::new();
        let class = FIRST_CACHED;
        let cap = capacity(class);
        for n in 0..cap {
            assert!(cache.push(class, block(n)));
        }
        assert!(!cache.push(class, block(cap)), "a full stack takes nothing");
        assert!(cache.contains(class, block(0)));
        assert!(!cache.contains(class, block(cap)));
        for n in (0..cap).rev() {
            assert_eq!(cache.pop(class), block(n));
        }
        assert!(cache.pop(class).is_null());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_older_half_leaves_first() {
        let cache = FreeCache::new();
        let class = FIRST_CACHED + 3;
        let cap = capacity(class);
        for n in 0..cap {
            cache.push(class, block(n));
        }
        let mut out = [ptr::null_mut(); SLOTS];
        let taken = cache.take_older_half(class, &mut out);
        assert_eq!(taken, cap.div_ceil(2));
        for (k, &b) in out[..taken].iter().enumerate() {
            assert_eq!(b, block(k));
        }
        // What is left is the newer half, newest on top.
        assert_eq!(cache.pop(class), block(cap - 1));
        assert_eq!(cache.take_all(class, &mut out), cap - taken - 1);
        assert_eq!(out[0], block(taken));
        assert!(cache.is_empty());
    }

    #[test]
    fn capacity_is_bounded_in_blocks_and_bytes() {
        for (class, &size) in CLASS_SIZE.iter().enumerate().skip(FIRST_CACHED) {
            let cap = capacity(class);
            assert!((2..=SLOTS).contains(&cap));
            assert!(cap == 2 || cap * size as usize <= CLASS_BYTES);
        }
    }
}
