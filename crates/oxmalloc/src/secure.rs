//! Hardened mode (cargo feature `secure`; `liboxmalloc-secure.so`).
//!
//! In the default build `ENABLED` is false and every hook here compiles to
//! nothing. The hardened build adds, at a small cost:
//!
//! * **Authenticated free lists.** A link is stored as the next block's
//!   offset in the page (plus one; 0 for the end of the list) in the low
//!   [`LINK_OFFSET_BITS`] bits, and above them a tag: a keyed hash of that
//!   offset and of the address of the block holding the link, with a random
//!   key per page (`Page::key`, drawn from a process secret). A link whose
//!   tag does not match, or that does not lead to a carved block of the same
//!   page, stops the process with "corrupted free list" naming the block
//!   that held it: a wild pointer is never handed out, and — unlike a plain
//!   xor/rotate encoding, where flipping a few bits of a link can land on
//!   another block of the same page — a corrupted link cannot redirect the
//!   list to a live block by accident (a 40-bit tag; see `link_tag` for
//!   what it does not claim).
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
//! * **Randomised allocation order** within each batch of carved blocks: runs
//!   of about 4 KiB linked in a random order, each entered at a random block
//!   (see `Page::carve_shuffled`).
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

/// Low bits of an encoded link that hold the next block's offset plus one.
/// Class pages span at most `MEDIUM_PAGE_SLICES` slices (512 KiB), so every
/// offset fits with room to spare; the other 40 bits hold the tag.
const LINK_OFFSET_BITS: u32 = 24;
const LINK_OFFSET_MASK: usize = (1 << LINK_OFFSET_BITS) - 1;
const _: () = assert!(
    crate::size_class::MEDIUM_PAGE_SLICES * crate::chunk::SLICE_SIZE < LINK_OFFSET_MASK,
    "a class page's offsets must fit in the offset bits of a link"
);

/// The tag of link value `offset` stored in `block`: the high 40 bits of a
/// keyed hash of the pair. The block address goes through a multiply and a
/// rotation before the offset joins, so that no xor of offsets and blocks
/// keeps a tag valid: a link copied into another block, or with any bit of
/// its offset changed, fails the check. (Two multiplies: cheap, not a
/// cryptographic MAC; the constants differ from the canary's.)
#[inline(always)]
fn link_tag(page: &Page, block: *mut Block, offset: usize) -> usize {
    let seeded = ((block as usize ^ page.key.get()) as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = seeded.rotate_left(29) ^ offset as u64;
    (x.wrapping_mul(0x94d0_49bb_1331_11eb) as usize) & !LINK_OFFSET_MASK
}

/// Encodes a free-list link before it is stored in `block`.
#[inline(always)]
pub fn encode_link(page: &Page, block: *mut Block, next: *mut Block) -> *mut Block {
    if !ENABLED {
        return next;
    }
    seal_link(page, block, next)
}

/// Decodes a free-list link read from `block`, stopping the process when its
/// tag does not match or it does not lead to a carved block of the same page.
#[inline(always)]
pub fn decode_link(page: &Page, block: *mut Block, raw: *mut Block) -> *mut Block {
    if !ENABLED {
        return raw;
    }
    match open_link(page, block, raw) {
        Some(next) => next,
        None => fatal(HeapError::CorruptedFreeList, block as usize, page.block_size.get()),
    }
}

/// The stored form of a link to `next` (null: end of list) kept in `block`.
#[inline(always)]
fn seal_link(page: &Page, block: *mut Block, next: *mut Block) -> *mut Block {
    let offset = if next.is_null() {
        0
    } else {
        next as usize - page.start.get() as usize + 1
    };
    debug_assert!(offset <= LINK_OFFSET_MASK);
    core::ptr::without_provenance_mut(offset | link_tag(page, block, offset))
}

/// The link that `raw`, read from `block`, stands for; `None` when the tag
/// does not match or the link leads outside the page's carved blocks.
#[inline(always)]
fn open_link(page: &Page, block: *mut Block, raw: *mut Block) -> Option<*mut Block> {
    let offset = raw as usize & LINK_OFFSET_MASK;
    if raw as usize != offset | link_tag(page, block, offset) {
        return None;
    }
    if offset == 0 {
        return Some(core::ptr::null_mut());
    }
    // The block's own provenance covers its page (one mapping).
    let next = block.with_addr(page.start.get() as usize + offset - 1);
    page.block_index(next as usize).map(|_| next)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::PageKind;
    use crate::size_class::{class_for_aligned, class_size, page_slices};

    /// A class page of `size`-byte blocks at a made-up address, fully
    /// carved, with a fixed key (links are only computed, never stored).
    fn page_of(size: usize) -> Page {
        let page = Page::new();
        let class = class_for_aligned(size, 8).unwrap();
        let start = core::ptr::without_provenance_mut::<u8>(0x7f12_3440_0000);
        page.init(
            PageKind::Class,
            start,
            page_slices(class),
            class_size(class),
            class,
            true,
        );
        page.set_capacity(page.reserved.get().into());
        page.key.set(0x5eed_1234_abcd_0f01);
        page
    }

    fn block(page: &Page, index: usize) -> *mut Block {
        page.start.get().wrapping_add(index * page.block_size.get()).cast()
    }

    #[test]
    fn links_round_trip() {
        for size in [16, 48, 1024, 8192, 65536] {
            let page = page_of(size);
            let blocks = page.reserved.get() as usize;
            let step = if cfg!(miri) { blocks / 3 + 1 } else { 1 };
            for i in (0..blocks).step_by(step) {
                let next = block(&page, (i * 7 + 3) % blocks);
                for target in [next, core::ptr::null_mut()] {
                    let raw = seal_link(&page, block(&page, i), target);
                    assert_eq!(
                        open_link(&page, block(&page, i), raw),
                        Some(target),
                        "size {size} block {i}"
                    );
                }
            }
        }
    }

    /// Every single-bit flip and every single-byte change of a stored link
    /// is rejected — in particular the ones that would turn it into a link
    /// to another block of the same page, which a plain xor/rotate encoding
    /// accepts.
    #[test]
    fn corrupted_links_are_rejected() {
        let page = page_of(16);
        let blocks = page.reserved.get() as usize;
        let samples = if cfg!(miri) { 3 } else { 200 };
        for k in 0..samples {
            let holder = block(&page, (k * 97) % blocks);
            let next = if k % 5 == 0 {
                core::ptr::null_mut()
            } else {
                block(&page, (k * 31 + 1) % blocks)
            };
            let raw = seal_link(&page, holder, next) as usize;
            for bit in 0..64 {
                let bad = core::ptr::without_provenance_mut(raw ^ (1 << bit));
                assert_eq!(open_link(&page, holder, bad), None, "bit {bit} of link {k}");
            }
            let byte_values = if cfg!(miri) { 1..=3 } else { 1..=255 };
            for byte in 0..8 {
                for x in byte_values.clone() {
                    let bad = core::ptr::without_provenance_mut(raw ^ ((x as usize) << (8 * byte)));
                    assert_eq!(open_link(&page, holder, bad), None, "byte {byte} ^ {x:#x} of link {k}");
                }
            }
            for bad in [0usize, holder as usize, next as usize] {
                if bad != raw {
                    let bad = core::ptr::without_provenance_mut(bad);
                    assert_eq!(open_link(&page, holder, bad), None, "plain word {bad:?} in link {k}");
                }
            }
        }
    }

    /// A link copied into another block (of the same page) does not verify
    /// there: the tag binds the link to the block that holds it.
    #[test]
    fn links_are_bound_to_their_block() {
        let page = page_of(32);
        let blocks = page.reserved.get() as usize;
        let samples = if cfg!(miri) { 4 } else { 400 };
        for k in 0..samples {
            let from = block(&page, (k * 13) % blocks);
            let to = block(&page, (k * 13 + 1 + k % 17) % blocks);
            let raw = seal_link(&page, from, block(&page, (k * 5) % blocks));
            assert_eq!(open_link(&page, to, raw), None, "link of block {k} moved");
        }
    }
}
