//! Hardened mode (cargo feature `secure`; `liboxmalloc-secure.so`).
//!
//! In the default build `ENABLED` is false and every hook here compiles to
//! nothing. The hardened build adds, at a small cost:
//!
//! * **Encoded free lists.** Each link is stored as
//!   `rotl(next ^ key, r) ^ block`, with a random key per page (`Page::key`,
//!   drawn from a process secret). A decoded link must be null or the start of
//!   a carved block of the same page, otherwise the process stops with
//!   "corrupted free list": a wild pointer is never handed out.
//! * **A trailer on every block**: its last 8 bytes hold a 32-bit canary
//!   derived from the block address and the page key, and the distance from
//!   the caller's size to the trailer (so the requested size is known at
//!   `free`). Allocation writes it in the *allocated* form and fills up to 16
//!   bytes after the requested size with a pad pattern; `free` checks both
//!   (an overflow of even one byte breaks one of them), checks a sized free
//!   against the requested size, and turns the trailer into its *freed* form
//!   — with an atomic swap on remote frees, so two threads racing to free the
//!   same block cannot both succeed. A freed trailer at `free` is a double free.
//! * **Freed-block pattern**: bytes 8..32 of a free block hold a pattern,
//!   checked when the block is handed out again (write after free).
//! * **Validated frees**: every free goes through the chunk map, the page
//!   kind and the exact block index; anything else is an invalid free.
//! * **Guard pages**: the last OS page of each chunk header slice, the OS page
//!   after every large and huge block, and freed large blocks are made
//!   inaccessible.
//! * **Randomised allocation order** within each batch of carved blocks.
//! * **Secrets** come from `getrandom`, and are drawn again in a `fork` child.
//!
//! Every detection prints one line (see `fatal.rs`) and aborts.
//!
//! Known limit: a free by the owning thread updates the trailer with a plain
//! read-check-write (an atomic swap there would cost every free); a local
//! free racing *at the same instant* with a remote free of the same block can
//! go undetected. Two remote frees racing are always caught.

use crate::fatal::{fatal, HeapError};
use crate::os::{Os, Platform};
use crate::page::{Block, Page};
use crate::sync::atomic::{AtomicU64, Ordering};

/// Whether this build is hardened.
pub const ENABLED: bool = cfg!(feature = "secure");

/// Bytes every block carries after the caller's bytes (the trailer).
pub const TRAILER: usize = if ENABLED { 8 } else { 0 };

/// Bytes after the requested size that hold the pad pattern and are checked.
const PAD_CHECKED: usize = 16;
/// The pad pattern byte, and eight of them.
const PAD_BYTE: u8 = 0xA5;
const PAD_WORD: u64 = u64::from_ne_bytes([PAD_BYTE; 8]);
/// First and last byte offsets of a free block's pattern (after the link word).
const FREED_FROM: usize = 8;
const FREED_TO: usize = 32;
/// The freed-block pattern, eight bytes at a time.
const FREED_WORD: u64 = u64::from_ne_bytes([0xDF; 8]);

static SECRET: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
static PAGES: AtomicU64 = AtomicU64::new(0);

/// A 64-bit mixing function (the splitmix64 finaliser).
#[inline(always)]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Draws the process secret (process initialisation).
pub fn init() {
    if ENABLED {
        SECRET.store(Os::random_u64() | 1, Ordering::Relaxed);
    }
}

/// Draws a fresh secret in the child of `fork`: pages made from now on get
/// keys the parent cannot predict (existing pages keep theirs).
pub fn reseed() {
    init();
}

/// A one-way fingerprint of the process secret: lets tests check that the
/// secret differs between runs and after `fork` without revealing it.
pub fn secret_fingerprint() -> u64 {
    mix(mix(SECRET.load(Ordering::Relaxed)) ^ 0x5bd1_e995)
}

/// The key a new page mixes into its links and trailers (0 in the default build).
#[inline(always)]
pub fn page_key() -> usize {
    if !ENABLED {
        return 0;
    }
    let n = PAGES.fetch_add(1, Ordering::Relaxed);
    (mix(SECRET.load(Ordering::Relaxed) ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d)) | 1) as usize
}

#[inline(always)]
fn rotation(key: usize) -> u32 {
    (key >> 58) as u32
}

/// Encodes a free-list link before it is stored in `block`.
#[inline(always)]
pub fn encode_link(page: &Page, block: *mut Block, next: *mut Block) -> *mut Block {
    if !ENABLED {
        return next;
    }
    let key = page.key.get();
    next.map_addr(|n| (n ^ key).rotate_left(rotation(key)) ^ block as usize)
}

/// Decodes a free-list link read from `block`, stopping the process when it
/// does not lead to a block of the same page.
#[inline(always)]
pub fn decode_link(page: &Page, block: *mut Block, raw: *mut Block) -> *mut Block {
    if !ENABLED {
        return raw;
    }
    let key = page.key.get();
    let next = raw.map_addr(|r| (r ^ block as usize).rotate_right(rotation(key)) ^ key);
    if !next.is_null() && page.block_index(next as usize).is_none() {
        fatal(HeapError::CorruptedFreeList, block as usize, page.block_size.get());
    }
    next
}

/// The trailer word of a block whose last usable byte ends at `end`.
#[inline(always)]
fn trailer_ptr(block: *mut u8, end: usize) -> *mut u64 {
    block.wrapping_add(end - TRAILER).cast()
}

/// The block's canary: one multiply of its address with the page key
/// (a secret per page; the canary only needs to be unpredictable to code
/// that does not know the key).
#[inline(always)]
fn canary(page: &Page, block: *mut u8) -> u32 {
    ((block as u64 ^ page.key.get() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

#[inline(always)]
fn allocated_form(page: &Page, block: *mut u8, delta: usize) -> u64 {
    ((canary(page, block) as u64) << 32) | delta as u64
}

#[inline(always)]
fn freed_form(page: &Page, block: *mut u8) -> u64 {
    ((!canary(page, block) as u64) << 32) | 0xFFFF_FFFF
}

/// Prepares a freshly carved (never allocated) block: freed trailer and
/// pattern, so that handing it out checks the same way as a recycled one.
///
/// # Safety
/// `block` must be a carved block of `page` that nobody uses.
#[inline]
pub unsafe fn prepare_carved(page: &Page, block: *mut u8, end: usize) {
    if !ENABLED {
        return;
    }
    // SAFETY: the block is ours and `end` bytes long.
    unsafe {
        trailer_ptr(block, end).write_unaligned(freed_form(page, block));
        fill_freed(block, end);
    }
}

/// Words of the freed pattern a block of `end` usable bytes holds
/// (bytes 8..32, before the trailer; block sizes are multiples of 8).
#[inline(always)]
fn freed_words(end: usize) -> usize {
    (FREED_TO.min(end - TRAILER).saturating_sub(FREED_FROM)) / 8
}

/// Writes the freed-block pattern.
///
/// # Safety
/// `block` must be `end` bytes long and ours.
#[inline]
unsafe fn fill_freed(block: *mut u8, end: usize) {
    for i in 0..freed_words(end) {
        // SAFETY: the word lies within the block, before the trailer.
        unsafe { block.add(FREED_FROM + 8 * i).cast::<u64>().write_unaligned(FREED_WORD) };
    }
}

/// Writes the pad pattern over `[from, from + len)` (`len <= PAD_CHECKED`).
///
/// # Safety
/// The range must lie within a block of ours.
#[inline]
unsafe fn write_pad(from: *mut u8, len: usize) {
    // SAFETY: every store below stays within `[from, from + len)`.
    unsafe {
        if len >= 8 {
            // Two possibly overlapping words cover 8..=16 bytes.
            from.cast::<u64>().write_unaligned(PAD_WORD);
            from.add(len - 8).cast::<u64>().write_unaligned(PAD_WORD);
        } else {
            for i in 0..len {
                *from.add(i) = PAD_BYTE;
            }
        }
    }
}

/// Whether `[from, from + len)` still holds the pad pattern (`len <= PAD_CHECKED`).
///
/// # Safety
/// The range must lie within a block of ours.
#[inline]
unsafe fn pad_intact(from: *mut u8, len: usize) -> bool {
    // SAFETY: every load below stays within `[from, from + len)`.
    unsafe {
        if len >= 8 {
            from.cast::<u64>().read_unaligned() == PAD_WORD
                && from.add(len - 8).cast::<u64>().read_unaligned() == PAD_WORD
        } else {
            (0..len).all(|i| *from.add(i) == PAD_BYTE)
        }
    }
}

/// Hardened checks and bookkeeping when `block` (with `end` usable bytes,
/// trailer included) is handed out for `requested` bytes: the freed pattern
/// must be intact (else: write after free), then the trailer and pad are
/// written.
///
/// # Safety
/// `block` must be a block of `page` just taken off a free list (or a fresh
/// large/huge block), `requested + TRAILER <= end`.
#[inline]
pub unsafe fn on_alloc(page: &Page, block: *mut u8, end: usize, requested: usize, recycled: bool) {
    if !ENABLED {
        return;
    }
    if recycled {
        for i in 0..freed_words(end) {
            // SAFETY: the word lies within the block, before the trailer.
            if unsafe { block.add(FREED_FROM + 8 * i).cast::<u64>().read_unaligned() } != FREED_WORD {
                fatal(HeapError::WriteAfterFree, block as usize, end - TRAILER);
            }
        }
    }
    // SAFETY: forwarded contract: the block is ours and `end` bytes long.
    unsafe { write_allocated(page, block, end, requested) };
}

/// Writes the allocated trailer and the pad after `requested` bytes.
///
/// # Safety
/// `block` must be ours, `end` bytes long, `requested + TRAILER <= end`.
#[inline]
pub unsafe fn write_allocated(page: &Page, block: *mut u8, end: usize, requested: usize) {
    if !ENABLED {
        return;
    }
    let delta = end - TRAILER - requested;
    // SAFETY: the pad and the trailer lie within the block.
    unsafe {
        write_pad(block.add(requested), delta.min(PAD_CHECKED));
        trailer_ptr(block, end).write_unaligned(allocated_form(page, block, delta));
    }
}

/// The requested size of a live block (hardened builds), from its trailer;
/// `None` when the trailer is not that of a live block.
///
/// # Safety
/// `block` must be the start of a block of `page` with `end` usable bytes.
pub unsafe fn requested_size(page: &Page, block: *mut u8, end: usize) -> Option<usize> {
    // SAFETY: the trailer lies within the block.
    let trailer = unsafe { trailer_ptr(block, end).read_unaligned() };
    let delta = (trailer & 0xFFFF_FFFF) as usize;
    ((trailer >> 32) as u32 == canary(page, block) && delta + TRAILER <= end).then(|| end - TRAILER - delta)
}

/// Hardened checks when `block` (with `end` usable bytes) is freed; `given`
/// is the size a sized free claimed (0: none). Marks the trailer freed —
/// atomically when `remote` — and writes the freed pattern. Stops the
/// process on a double free, an overflow or a size mismatch.
///
/// # Safety
/// `block` must be the start of a carved block of `page` with `end` usable bytes.
pub unsafe fn on_free(page: &Page, block: *mut u8, end: usize, given: usize, remote: bool) {
    if !ENABLED {
        return;
    }
    let trailer = trailer_ptr(block, end);
    // SAFETY: the trailer lies within the block.
    let seen = unsafe { trailer.read_unaligned() };
    let canary = canary(page, block);
    let freed = ((!canary as u64) << 32) | 0xFFFF_FFFF;
    if seen == freed {
        fatal(HeapError::DoubleFree, block as usize, end - TRAILER);
    }
    let delta = (seen & 0xFFFF_FFFF) as usize;
    if (seen >> 32) as u32 != canary || delta + TRAILER > end {
        fatal(HeapError::BufferOverflow, block as usize, end - TRAILER);
    }
    let requested = end - TRAILER - delta;
    // SAFETY: the pad lies within the block.
    if !unsafe { pad_intact(block.add(requested), delta.min(PAD_CHECKED)) } {
        fatal(HeapError::BufferOverflow, block as usize, requested);
    }
    if given != 0 && given != requested {
        crate::fatal::fatal_size_mismatch(block as usize, given, requested);
    }
    if remote {
        // SAFETY: the trailer is 8-aligned (block sizes and block starts are
        // multiples of 8) and inside the block; other threads only touch it
        // through this same atomic path.
        let word = unsafe { &*(trailer as *const AtomicU64) };
        if word.swap(freed, Ordering::AcqRel) != seen {
            fatal(HeapError::DoubleFree, block as usize, requested);
        }
    } else {
        // SAFETY: the trailer lies within the block.
        unsafe { trailer.write_unaligned(freed) };
    }
    // SAFETY: the block is ours until it is pushed on a free list.
    unsafe { fill_freed(block, end) };
}

/// The state of a small pseudo-random generator, for shuffling a carve batch.
pub struct Shuffle(u64);

impl Shuffle {
    /// A generator seeded from the page's key and how far it is carved.
    pub fn new(page: &Page) -> Self {
        Shuffle(mix(page.key.get() as u64 ^ ((page.capacity() as u64) << 32)) | 1)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (((self.0 >> 32) * n as u64) >> 32) as usize
    }
}
