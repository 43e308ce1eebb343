//! Pages: runs of same-size blocks with three free lists (free-list sharding).
//!
//! A page is a span of one or more slices holding blocks of one size class
//! (or, for large and huge blocks, exactly one block). Its descriptor lives
//! in the chunk header. Free blocks are threaded on three lists:
//!
//! * `free` — the only list allocation pops from, and where the owner's
//!   fast-path frees go (owner thread only). Pushing a local free back onto
//!   the list allocation pops from makes reuse last-in first-out: the next
//!   allocation of the class gets the block freed last, which is still in
//!   the cache (measured: larson, see docs/PERFORMANCE.md, E12);
//! * `local_free` — frees that must not lengthen `free`: the owner's frees
//!   that take the slow path (full pages, pages holding or being cut for
//!   heap-profiling samples, the hardened build), remote frees once
//!   collected, and the blocks of an abandoned page. Swapped into `free` by
//!   the slow path when `free` runs dry;
//! * `thread_free` — an atomic stack that other threads push remote frees
//!   onto with one compare-and-swap; the owner takes it whole with one swap
//!   when `free` runs dry (or at the other slow-path visits of the page).
//!
//! *Indexed* pages (blocks above `DIRECT_MAX`, default build: see
//! [`is_indexed_class`]) keep a fourth list, the [`FreeIndex`]: the owner's
//! frees go there as block numbers, in the page's descriptor, instead of links
//! in the blocks. Taking a block from it reads no memory of the block: a
//! block of these classes spans one or more OS pages of its own, and
//! reading its link when the next allocation of the class comes,
//! milliseconds later, missed the TLB inside `malloc` (about a microsecond
//! under nested paging: the latency tail, docs/PERFORMANCE.md E33-E34).
//!
//! Blocks are carved lazily: `capacity` grows a few KiB at a time up to
//! `reserved`, so a page costs physical memory only for what was used. And
//! carving writes nothing: `extend` opens a *carve window* of never-used
//! blocks, `capacity..carve_end`, that the fast path hands out one at a time
//! in address order ([`Page::take_fresh`]) once `free` is empty, as it would
//! pop them had they been linked onto `free`. The blocks' memory is first
//! written by the program that asked for them, not inside `malloc`: linking
//! a 16 KiB batch wrote 256 cold lines and faulted in up to four OS pages
//! in one call, which made most of the slow small allocations above 1 µs
//! in latency@2 (docs/PERFORMANCE.md E79).
//!
//! ## Counting (`used`)
//!
//! Every carved block is in exactly one state: allocated (A), on `free`
//! (F), on `local_free` (L), on `thread_free` (T) or in the free index (I,
//! indexed pages only). The page keeps `used = A + T = capacity - F - L -
//! I`, which every path can maintain without touching the others' state:
//!
//! * allocation pops F (or I) into A: `used += 1` (on the page's first cache
//!   line, which the pop has just read); taking a block from the carve
//!   window makes it carved and allocated at once: `capacity += 1` and
//!   `used += 1`;
//! * a local free moves A to F (fast path), to L (slow path) or to I
//!   (indexed pages): `used -= 1`;
//! * a remote free moves A to T: `used` unchanged (remote threads never write it);
//! * collecting T into L: `used -= |T|`; carving fresh blocks onto F,
//!   moving F to L and installing L as F leave it unchanged.
//!
//! So `used == 0` after a local free means the page holds no allocated
//! block: it is empty; once T is collected, `used == A` exactly.

use crate::chunk::SLICE_SIZE;
use crate::heap::Heap;
use crate::os::{Os, Platform};
use crate::size_class::{class_size, page_slices, Class, CLASS_COUNT, LAST_DIRECT_CLASS};
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use core::cell::Cell;
use core::ptr;

/// Runs a hardened carve batch is cut into (see `Page::carve_shuffled`).
const SHUFFLE_RUNS: usize = 16;

/// From this block size on, `Page::extend` hands fresh blocks out one at a
/// time without writing to them. Each such block begins an OS page of its
/// own, so linking a batch of them onto `free` faulted one OS page per
/// block inside `malloc` (four faults for a 4 KiB class), where the
/// caller's first write would have faulted the same page outside it
/// (docs/PERFORMANCE.md E24).
const UNTOUCHED_HANDOUT: usize = 4096;

/// How far past a block just taken from a carve window `Page::take_fresh`
/// prefetches: the window's blocks are handed out in address order, and
/// the program's first writes to them would otherwise each wait for their
/// line.
const FRESH_PREFETCH_AHEAD: usize = 256;

/// Asks the CPU to bring the cache line at `p` in (a hint: never faults,
/// null included).
#[inline(always)]
fn prefetch(p: *mut Block) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch is only a hint; it reads nothing and cannot fault,
    // whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// A free block: its first word links to the next free block.
#[repr(C)]
pub struct Block {
    next: *mut Block,
}

pub use crate::thread_free::ThreadFree;

/// Whether pages of `class` are indexed (keep the owner's frees in a
/// [`FreeIndex`]): blocks above `DIRECT_MAX`, whose allocations take
/// `alloc_class`, which pops the index inline (the direct table's fast path
/// for the smaller classes stays one list pop); not in the hardened build,
/// whose checks live in the links.
#[inline(always)]
pub const fn is_indexed_class(class: Class) -> bool {
    !crate::secure::ENABLED && class > LAST_DIRECT_CLASS
}

/// Block numbers an index can hold.
pub const INDEX_SLOTS: usize = 63;

// Every indexed page fits its index.
const _: () = {
    let mut class = LAST_DIRECT_CLASS + 1;
    while class < CLASS_COUNT {
        assert!(page_slices(class) * SLICE_SIZE / class_size(class) <= INDEX_SLOTS);
        class += 1;
    }
};

/// The free index of an indexed page: the numbers of the blocks its owner
/// freed, as a stack (last freed, first reused, as on `free`). One in
/// every descriptor (`Page::free_index`, its third cache line), so in the
/// OS page of the descriptor's first line: in an array of its own elsewhere
/// in the header, it cost the slowest big-block frees a TLB miss of its own
/// (docs/PERFORMANCE.md E57). Owner only (or the holder of the page's
/// abandoned-list lock), like the descriptor's `Cell` fields.
///
/// Invariant: for an indexed class page, the numbers in `slots[..len]`
/// (each slot: [`SLOT_NUMBER`] bits, plus the [`SLOT_SEEN`] and
/// [`SLOT_PURGED`] flags, which a push clears) are distinct carved blocks
/// of the page, none on another list; a block whose slot has
/// `SLOT_PURGED` has had its whole OS pages purged since it was pushed.
/// Meaningless for other pages (emptied by `Heap::new_page` with
/// [`FreeIndex::reset`]).
#[repr(C, align(64))]
pub struct FreeIndex {
    len: Cell<u8>,
    slots: [Cell<u8>; INDEX_SLOTS],
}

const _: () = assert!(core::mem::size_of::<FreeIndex>() == 64);

/// The bits of a slot holding the block's number.
const SLOT_NUMBER: u8 = 0x3f;
/// The slot was in the index at the last sweep ([`Page::sweep_index`]).
const SLOT_SEEN: u8 = 0x40;
/// The block's whole OS pages were purged by a sweep.
const SLOT_PURGED: u8 = 0x80;

/// [`Page::sweep_tail`]: a page made on a span that was not zero, not yet
/// seen by a sweep.
const TAIL_NEW: u8 = 0;
/// Seen by one sweep: the next purges its uncarved end.
const TAIL_SEEN: u8 = 1;
/// Nothing (more) to purge: the span was zero, or the tail went.
const TAIL_DONE: u8 = 2;

// Every block number fits in the number bits.
const _: () = assert!(INDEX_SLOTS <= SLOT_NUMBER as usize + 1);

impl FreeIndex {
    /// An empty index.
    pub const fn new() -> Self {
        FreeIndex {
            len: Cell::new(0),
            slots: [const { Cell::new(0) }; INDEX_SLOTS],
        }
    }

    /// Empties the index, for a page just set up (the descriptor may hold
    /// numbers from an earlier page of the same slice). New owner only.
    pub fn reset(&self) {
        self.len.set(0);
    }

    /// Blocks in the index.
    pub fn len(&self) -> usize {
        self.len.get() as usize
    }

    /// Whether the index holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numbers of the blocks in the index.
    pub fn blocks(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots[..self.len()]
            .iter()
            .map(|slot| (slot.get() & SLOT_NUMBER) as usize)
    }
}

/// Low bit of `owner`: the owner is the thread in the other bits, but its
/// local frees must take the slow path (the page is in the full queue, or
/// holds profiling samples).
pub const OWNER_SLOW: usize = 1;

/// Second bit of `owner`: an indexed page (see [`is_indexed_class`]) that
/// is its heap's current page of the class (first on its bin, pinned) and
/// not watched by the profiler. Its owner's frees go straight to the free
/// index (`free::free_owned_not_plain`), reading nothing but the first
/// line of the descriptor and the index: such a free cannot empty the
/// page, nor has it a page to make current. With [`OWNER_SLOW`] also set,
/// the slow path takes them again.
pub const OWNER_INDEXED: usize = 2;

/// The flag bits of `owner`; the rest is the owner key (`tls::owner_key`:
/// a thread pointer or heap address, so at least 8-byte aligned).
pub const OWNER_FLAGS: usize = OWNER_SLOW | OWNER_INDEXED;

/// Shift of the reciprocal in `Page::recip`: exact for offsets below 2^22
/// (a chunk) and block sizes up to 2^16, since `offset * block_size < 2^40`.
const RECIP_SHIFT: u32 = 40;

/// The reciprocal (`Page::recip`) of a block size.
const fn recip_of(block_size: usize) -> u64 {
    let size = if block_size == 0 { 1 } else { block_size as u64 };
    (1u64 << RECIP_SHIFT).div_ceil(size)
}

/// `offset / block_size` by the block size's reciprocal `recip` (exact
/// for offsets inside a page's carved blocks).
#[inline(always)]
fn number_by_recip(offset: usize, recip: u64) -> usize {
    ((offset as u64 * recip) >> RECIP_SHIFT) as usize
}

const fn build_class_recip() -> [u64; CLASS_COUNT] {
    let mut table = [0u64; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        table[class] = recip_of(class_size(class));
        class += 1;
    }
    table
}

/// The reciprocal of every class size: a page of class-sized blocks finds
/// a block's number without reading `recip`, on the descriptor's second
/// line, which a free otherwise does not read
/// ([`Page::block_index_in_class`]).
static CLASS_RECIP: [u64; CLASS_COUNT] = build_class_recip();

/// What a page descriptor describes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PageKind {
    /// Not in use: a free slice of the arena (a free here is a double free).
    Unused = 0,
    /// Blocks of one size class.
    Class = 1,
    /// One large block spanning whole slices.
    Large = 2,
    /// One huge block in its own mapping.
    Huge = 3,
    /// A later slice of a multi-slice span: `span_slices` holds the
    /// distance back to the span's first slice.
    Forward = 4,
    /// A large or huge block being freed (claimed by one `free`; a second
    /// one is a double free).
    Freeing = 5,
}

/// A page descriptor. 256 bytes, 128-byte aligned, in four cache lines:
/// - the first holds the owner's hot fields, what a free checks, and
///   `thread_free`, so that a remote free reads and writes that line
///   alone (E81, E102);
/// - the second, the owner's colder fields (`local_free`, `heap`, the
///   queue links, `recip`, the profiling counts), which the usual remote
///   free does not read (it does for a page parked full, an abandoned
///   page, or once the process has made a first-class heap or taken a
///   profiling sample);
/// - the third, the free index;
/// - the fourth, two cold fields (`reserved`, and the arena's `freed_at`)
///   and padding, so that descriptors stay a power of two apart
///   and the page of an address stays a shift and a mask away.
///
/// Invariants: `owner` is the owning heap's key (possibly with
/// [`OWNER_FLAGS`] bits), or 0 when no heap owns the page (abandoned,
/// large, huge, forwarder, unused); only the owner (or, for ownerless
/// pages, the holder of the lock of the list the page is on) touches the
/// `Cell` fields; blocks on the lists lie in
/// `[start, start + capacity * block_size)`.
#[repr(C, align(128))]
pub struct Page {
    /// Blocks ready for allocation.
    pub free: Cell<*mut Block>,
    /// Blocks freed by other threads (an atomic stack, see `thread_free.rs`).
    /// On the first line, with the fields a remote free checks: a remote
    /// free that pushed onto the second line waited for two lines that
    /// the owner's core held (docs/PERFORMANCE.md E102).
    pub thread_free: ThreadFree,
    /// The owning heap's key and flags, see [`OWNER_FLAGS`]; read by every free.
    pub owner: AtomicUsize,
    /// Carved blocks on neither `free` nor `local_free`: allocated, or
    /// waiting on `thread_free` (see the module notes).
    pub used: Cell<u32>,
    /// Blocks carved so far (atomic: remote frees read it to validate
    /// pointers while the owner carves more).
    capacity: AtomicU32,
    /// End of the carve window: blocks `capacity..carve_end` are never
    /// used and on no list, handed out in order by [`Page::take_fresh`]
    /// (`carve_end <= capacity`: no window). At most `reserved`.
    carve_end: Cell<u16>,
    /// Allocation counting without a counter on the fast path: `used`
    /// (mod 2^16) when the page's counts were last taken
    /// ([`Page::take_counts`]), moved along with every change of `used` that
    /// is not a pop or a local free (the pin, collected remote frees: see
    /// [`Page::adjust_used`]). So the pops since then are
    /// `(used - alloc_mark) as i16 + pending_frees`, exact while pops minus
    /// local frees since then stay within ±2^15: they are at most the
    /// blocks `free` held then plus those local frees pushed back, since
    /// whatever else refills `free` or hands out a block that was not on it
    /// (`Heap::take_block`, `Heap::collect`) takes the counts first, and a
    /// page holds fewer than 2^15 blocks.
    alloc_mark: Cell<u16>,
    /// Size class (class pages).
    pub class: AtomicU8,
    /// What this descriptor describes.
    kind: AtomicU8,
    /// Set by a fresh carve: every block on `free` is zero but for its link
    /// word, as long as `pending_frees` is still 0 (see
    /// [`Page::free_known_zero`]). A local free onto `free` does not clear
    /// it (one store fewer on the fast path): it counts itself in
    /// `pending_frees`, and taking that count ([`Page::take_counts`])
    /// clears this flag.
    pub free_is_zero: Cell<bool>,
    /// The span was zero (fresh from the OS or purged) when the page was set up.
    pub fresh: Cell<bool>,
    /// Size of each block in bytes. Class pages: the class size, or for a
    /// page of request-sized blocks (`Heap::page_block_size`, indexed
    /// classes only) a multiple of 16 above the next smaller class's size
    /// and below this one's; allocations check it (`alloc::alloc_class`).
    pub block_size: Cell<usize>,
    /// Address of the first block.
    pub start: Cell<*mut u8>,
    /// Local frees not yet added to the owning heap's counters (the fast
    /// path bumps this one, already in cache; see `Heap::take_counts`).
    /// 64 bits so that it never wraps back to 0 (`free_is_zero` relies on it).
    pub pending_frees: AtomicU64,

    /// Blocks freed by the owner since `free` was last refilled.
    pub local_free: Cell<*mut Block>,
    /// The owning heap (null when abandoned), for remote-free notifications.
    pub heap: AtomicPtr<Heap>,
    /// Queue links (owner), or abandoned-list links (list lock).
    pub next: Cell<*mut Page>,
    /// Queue links (owner), or abandoned-list links (list lock).
    pub prev: Cell<*mut Page>,
    /// Hardened mode: key mixed into free-list links and block trailers.
    pub key: Cell<usize>,
    /// `ceil(2^40 / block_size)`: turns a division by the block size into a
    /// multiplication (see [`Page::block_index`]).
    pub recip: Cell<u64>,
    /// Live profiling samples in the page (their frees take the slow path;
    /// read by frees only once some page has taken a sample: E81).
    pub samples: AtomicU32,
    /// Heap profiling: bit `i % 32` set when block `i` may hold a sample
    /// (frees of other blocks skip the sample table).
    pub sample_bits: AtomicU32,
    /// Slices in the span; for a forwarder, the distance to the span's first slice.
    pub span_slices: Cell<u32>,
    /// The page is parked in its heap's full queue (owner only).
    pub in_full: Cell<bool>,
    /// The page belongs to a first-class heap, whose `destroy` frees it
    /// whatever it holds: remote frees of its blocks are never held
    /// (`held_frees::may_hold` reads this rather than the owning heap, and
    /// only once the process has made a first-class heap: E81). Set when
    /// such a heap takes the page fresh; cleared by `init`, when the page
    /// moves to a default heap and when it is abandoned. Atomic because
    /// remote frees read it.
    pub in_first_class: AtomicBool,
    /// Where the sweep of the page's uncarved end stands ([`TAIL_NEW`],
    /// [`TAIL_SEEN`], [`TAIL_DONE`]; see [`Page::sweep_tail`] and
    /// [`Page::purge_tail`]). Owner only.
    tail: Cell<u8>,
    /// Whether the page is on an abandoned list, and whether a free into it
    /// may take it (`abandon::NOT_LISTED`, `LISTED`, `LISTED_FREES_TAKE`).
    /// Written only under that list's lock, which makes it exact there;
    /// remote frees read it without the lock as a hint (`abandon.rs`).
    pub abandoned: AtomicU8,
    /// The page's free index (indexed class pages; see [`FreeIndex`]).
    pub free_index: FreeIndex,
    /// Blocks that fit in the page (fewer than 2^15, see `alloc_mark`).
    /// In the descriptor's fourth line: only `extend` and the slow paths
    /// read it (the fast path reads `carve_end`).
    pub reserved: Cell<u16>,
    /// The arena's clock for the slice this descriptor belongs to, while
    /// the slice is free: when it was freed (dirty), or when the timer last
    /// purged it (clean; 0: never, or a forced purge), in milliseconds of
    /// `Os::now_millis` (`purge::note_reuse` reads it). Arena lock only;
    /// none of the descriptor's other users reads it, and `init`, `clear`
    /// and `init_forward` leave it alone. Here rather than in the chunk's
    /// bookkeeping, which then fits in slice 0's descriptor slot (`Chunk`).
    pub freed_at: Cell<u64>,
}

const _: () = assert!(core::mem::size_of::<Page>() == 256);

// A class page holds fewer than 2^15 blocks (`reserved` and `alloc_mark`).
const _: () = {
    let mut class = 0;
    while class < CLASS_COUNT {
        assert!(page_slices(class) * SLICE_SIZE / class_size(class) < 1 << 15);
        class += 1;
    }
};

impl Page {
    /// An unused descriptor (also the sentinel page of the empty heap, whose
    /// `free` list is always empty so that allocation falls to the slow path).
    pub const fn new() -> Self {
        Page {
            free: Cell::new(ptr::null_mut()),
            local_free: Cell::new(ptr::null_mut()),
            owner: AtomicUsize::new(0),
            used: Cell::new(0),
            capacity: AtomicU32::new(0),
            carve_end: Cell::new(0),
            alloc_mark: Cell::new(0),
            class: AtomicU8::new(0),
            kind: AtomicU8::new(PageKind::Unused as u8),
            free_is_zero: Cell::new(false),
            fresh: Cell::new(false),
            block_size: Cell::new(0),
            start: Cell::new(ptr::null_mut()),
            pending_frees: AtomicU64::new(0),
            thread_free: ThreadFree::from_word(AtomicPtr::new(ptr::null_mut())),
            heap: AtomicPtr::new(ptr::null_mut()),
            next: Cell::new(ptr::null_mut()),
            prev: Cell::new(ptr::null_mut()),
            key: Cell::new(0),
            recip: Cell::new(0),
            samples: AtomicU32::new(0),
            sample_bits: AtomicU32::new(0),
            span_slices: Cell::new(0),
            in_full: Cell::new(false),
            in_first_class: AtomicBool::new(false),
            tail: Cell::new(TAIL_DONE),
            abandoned: AtomicU8::new(crate::abandon::NOT_LISTED),
            free_index: FreeIndex::new(),
            reserved: Cell::new(0),
            freed_at: Cell::new(0),
        }
    }

    /// Sets the descriptor up for a span of `slices` slices at `start`
    /// holding blocks of `block_size` bytes (class pages) or one block.
    pub fn init(&self, kind: PageKind, start: *mut u8, slices: usize, block_size: usize, class: usize, fresh: bool) {
        self.free.set(ptr::null_mut());
        self.local_free.set(ptr::null_mut());
        self.owner.store(0, Ordering::Relaxed);
        self.used.set(0);
        self.set_capacity(0);
        let reserved = if kind == PageKind::Class {
            slices * SLICE_SIZE / block_size
        } else {
            1
        };
        debug_assert!(reserved < 1 << 15);
        self.reserved.set(reserved as u16);
        self.carve_end.set(0);
        self.alloc_mark.set(0);
        self.class.store(class as u8, Ordering::Relaxed);
        self.set_kind(kind);
        self.free_is_zero.set(false);
        self.fresh.set(fresh);
        // A span that was zero holds nothing past what the page carves.
        self.tail.set(if fresh { TAIL_DONE } else { TAIL_NEW });
        self.block_size.set(block_size);
        self.start.set(start);
        self.span_slices.set(slices as u32);
        self.thread_free.reset();
        self.pending_frees.store(0, Ordering::Relaxed);
        self.samples.store(0, Ordering::Relaxed);
        self.sample_bits.store(0, Ordering::Relaxed);
        self.in_full.set(false);
        self.in_first_class.store(false, Ordering::Relaxed);
        self.heap.store(ptr::null_mut(), Ordering::Relaxed);
        self.next.set(ptr::null_mut());
        self.prev.set(ptr::null_mut());
        self.key.set(crate::secure::page_key());
        self.recip.set(recip_of(block_size));
    }

    /// Turns the descriptor into a forwarder to the span `distance` slices back.
    pub fn init_forward(&self, distance: usize) {
        self.owner.store(0, Ordering::Relaxed);
        self.set_kind(PageKind::Forward);
        self.span_slices.set(distance as u32);
        self.free.set(ptr::null_mut());
    }

    /// Marks the descriptor unused (its span went back to the arena).
    pub fn clear(&self) {
        self.owner.store(0, Ordering::Relaxed);
        self.set_kind(PageKind::Unused);
        self.free.set(ptr::null_mut());
        self.local_free.set(ptr::null_mut());
        self.heap.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// The index of the block starting at `addr` among the carved blocks of
    /// this class page, or `None` when `addr` is not a carved block's start.
    #[inline]
    pub fn block_index(&self, addr: usize) -> Option<usize> {
        self.carved_block_index(addr, |offset| self.number_at(offset))
    }

    /// [`block_index`](Self::block_index) by a division: reads only the
    /// descriptor's first cache line (`recip` is on the second, which a
    /// free into an indexed page has no other reason to read: E47).
    #[inline]
    pub fn block_index_by_division(&self, addr: usize) -> Option<usize> {
        // Offsets inside a chunk and class sizes fit in 32 bits (a 32-bit
        // division is the faster one).
        let size = self.block_size.get() as u32;
        self.carved_block_index(addr, |offset| (offset as u32 / size) as usize)
    }

    /// [`block_index`](Self::block_index) for a page whose blocks are of
    /// its class's size (not request-sized): the reciprocal comes from a
    /// static table, so only the descriptor's first line is read, and the
    /// number takes a multiplication where `block_index_by_division` takes
    /// a division (a free into the free cache, E96).
    #[inline]
    pub fn block_index_in_class(&self, addr: usize, class: Class) -> Option<usize> {
        debug_assert_eq!(self.block_size.get(), class_size(class));
        let recip = CLASS_RECIP[class];
        self.carved_block_index(addr, |offset| number_by_recip(offset, recip))
    }

    /// The checks of both `block_index` versions around `number`, which
    /// turns an offset inside the carved blocks into `offset / block_size`.
    #[inline(always)]
    fn carved_block_index(&self, addr: usize, number: impl FnOnce(usize) -> usize) -> Option<usize> {
        let offset = addr.wrapping_sub(self.start.get() as usize);
        if offset >= self.capacity() as usize * self.block_size.get() {
            return None;
        }
        let index = number(offset);
        (index * self.block_size.get() == offset).then_some(index)
    }

    /// `offset / block_size` for an offset inside the carved blocks, by the
    /// reciprocal (exact there; `block_index_agrees_with_division_for_every_class`).
    #[inline(always)]
    fn number_at(&self, offset: usize) -> usize {
        number_by_recip(offset, self.recip.get())
    }

    /// Bytes in the page's span.
    #[inline]
    pub fn span_bytes(&self) -> usize {
        self.span_slices.get() as usize * SLICE_SIZE
    }

    // --- free-list links -----------------------------------------------

    /// Reads the link stored in a free block.
    ///
    /// # Safety
    /// `block` must be a free block of this page.
    #[inline(always)]
    pub unsafe fn next_of(&self, block: *mut Block) -> *mut Block {
        // SAFETY: a free block of this page is readable and holds its link.
        let raw = unsafe { (*block).next };
        crate::secure::decode_link(self, block, raw)
    }

    /// Writes the link of a free block.
    ///
    /// # Safety
    /// `block` must be a block of this page that nobody else uses.
    #[inline(always)]
    pub unsafe fn set_next(&self, block: *mut Block, next: *mut Block) {
        // SAFETY: the caller owns the block's memory.
        unsafe { (*block).next = crate::secure::encode_link(self, block, next) };
    }

    // --- owner operations ----------------------------------------------

    /// Pops a block from `free`, or null when it is empty.
    ///
    /// # Safety
    /// Only the owner may call this.
    ///
    /// It also prefetches the next block: popping reads a block's link, and
    /// blocks on `free` were freed a while ago (a refill swaps in the whole
    /// `local_free` list), so without the prefetch that read is often a
    /// cache miss on the next allocation of the class (measured on larson:
    /// the hottest load of the whole run, see docs/PERFORMANCE.md).
    #[inline(always)]
    pub unsafe fn pop(&self) -> *mut Block {
        let block = self.free.get();
        if !block.is_null() {
            // SAFETY: blocks on `free` are free blocks of this page.
            let next = unsafe { self.next_of(block) };
            self.free.set(next);
            self.used.set(self.used.get() + 1);
            prefetch(next);
        }
        block
    }

    /// What the descriptor describes (any thread may ask: statistics scans).
    #[inline(always)]
    pub fn kind(&self) -> PageKind {
        match self.kind.load(Ordering::Relaxed) {
            1 => PageKind::Class,
            2 => PageKind::Large,
            3 => PageKind::Huge,
            4 => PageKind::Forward,
            5 => PageKind::Freeing,
            _ => PageKind::Unused,
        }
    }

    /// Sets what the descriptor describes.
    #[inline(always)]
    pub fn set_kind(&self, kind: PageKind) {
        self.kind.store(kind as u8, Ordering::Relaxed);
    }

    /// Claims a large or huge block for freeing: of two frees racing on the
    /// same block, exactly one gets its kind back; the other gets `None`.
    #[inline]
    pub fn claim_big(&self) -> Option<PageKind> {
        [PageKind::Large, PageKind::Huge].into_iter().find(|&kind| {
            self.kind
                .compare_exchange(kind as u8, PageKind::Freeing as u8, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// The size class of a class page.
    #[inline(always)]
    pub fn class(&self) -> usize {
        self.class.load(Ordering::Relaxed) as usize
    }

    /// Blocks carved so far.
    #[inline(always)]
    pub fn capacity(&self) -> u32 {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Sets the number of blocks carved (owner only).
    #[inline(always)]
    pub fn set_capacity(&self, capacity: u32) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    /// Whether every block on `free` is zero but for its link word: a
    /// fresh carve, with no local free counted since (a counted free may
    /// have pushed a dirty block onto `free`; the count only returns to 0
    /// through [`Page::take_counts`], which clears `free_is_zero`).
    #[inline(always)]
    pub fn free_known_zero(&self) -> bool {
        self.free_is_zero.get() && self.pending_frees.load(Ordering::Relaxed) == 0
    }

    /// Changes `used` by `delta` for a reason other than a pop or a local
    /// free (the pin, collected remote frees): `alloc_mark` follows, so the
    /// change does not count as allocations. Owner only.
    #[inline]
    pub fn adjust_used(&self, delta: i32) {
        self.used.set(self.used.get().wrapping_add_signed(delta));
        self.alloc_mark
            .set(self.alloc_mark.get().wrapping_add_signed(delta as i16));
    }

    /// Allocations (pops) and local frees since the counts were last taken,
    /// and starts counting again (see `alloc_mark`). Owner only.
    #[inline]
    pub fn take_counts(&self) -> (u64, u64) {
        let used = self.used.get() as u16;
        let frees = self.pending_frees.load(Ordering::Relaxed);
        let net = used.wrapping_sub(self.alloc_mark.get()) as i16;
        self.alloc_mark.set(used);
        if frees != 0 {
            self.pending_frees.store(0, Ordering::Relaxed);
            // The counted frees may have left dirty blocks on `free`: with
            // the count back at 0, only the flag can say so.
            self.free_is_zero.set(false);
        }
        (frees.wrapping_add_signed(net as i64), frees)
    }

    /// Counts a local free (taken into the heap's counters on slow paths).
    /// Both pushes call it: every local free must be counted, since the
    /// count also stands for the pops it undoes (`alloc_mark`).
    #[inline(always)]
    fn count_local_free(&self) {
        let n = self.pending_frees.load(Ordering::Relaxed);
        self.pending_frees.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Pushes a block freed by the owner onto `free` (the fast path: the
    /// next allocation of the class reuses it while it is in the cache) and
    /// counts the free (which also tells `free_known_zero` that `free` may
    /// hold a dirty block); returns `true` when the page now holds no
    /// allocated block.
    ///
    /// # Safety
    /// Only the owner may call this, with an allocated block of this page,
    /// and only when `free` may grow (not on pages whose owner word has
    /// `OWNER_SLOW`: see the module notes).
    #[inline(always)]
    pub unsafe fn push_free(&self, block: *mut Block) -> bool {
        // SAFETY: the block was allocated from this page and is now ours.
        unsafe { self.set_next(block, self.free.get()) };
        self.free.set(block);
        self.count_local_free();
        let used = self.used.get() - 1;
        self.used.set(used);
        used == 0
    }

    /// Gives the OS back the memory of blocks that have stayed free in
    /// the free index since the previous sweep of the page: the whole OS pages
    /// inside each (an indexed page keeps nothing in its free blocks, so
    /// all of them may go). Blocks pushed since the previous sweep are only
    /// marked as seen, so a block freed just before a sweep and soon reused
    /// costs no page fault. Returns the bytes purged.
    ///
    /// Without this, free blocks of rarely used big classes stay resident
    /// for as long as their page lives (gcc's cc1 kept 1.1 MiB so,
    /// docs/PERFORMANCE.md E54).
    ///
    /// # Safety
    /// Only the owner may call this, on an indexed class page.
    pub unsafe fn sweep_index(&self) -> usize {
        let index = &self.free_index;
        let size = self.block_size.get();
        let os_page = Os::page_size();
        if size < 2 * os_page {
            // At most one whole OS page a block: not worth a system call.
            return 0;
        }
        // Blocks to purge, by number (at most 63 of them), so that
        // neighbouring blocks go in one call.
        let mut due = 0u64;
        for slot in &index.slots[..index.len()] {
            let value = slot.get();
            if value & SLOT_PURGED != 0 {
                continue;
            }
            if value & SLOT_SEEN != 0 {
                due |= 1 << (value & SLOT_NUMBER);
                slot.set(value | SLOT_PURGED);
            } else {
                slot.set(value | SLOT_SEEN);
            }
        }
        let start = self.start.get() as usize;
        let mut purged = 0;
        while due != 0 {
            let first = due.trailing_zeros() as usize;
            let run = (!(due >> first)).trailing_zeros() as usize;
            due &= !(u64::MAX >> (64 - run) << first);
            let lo = (start + first * size).next_multiple_of(os_page);
            let hi = (start + (first + run) * size) / os_page * os_page;
            if hi > lo {
                // SAFETY: whole OS pages inside free blocks of our page, which
                // hold nothing (the index keeps their numbers outside them)
                // and which no one else touches until the owner (us) pops them.
                unsafe { Os::purge(lo as *mut u8, hi - lo, crate::options::purge_zeroes()) };
                purged += hi - lo;
            }
        }
        purged
    }

    /// Gives the OS back the uncarved end of a class page made on a span
    /// that was not zero (slices an earlier page or block used stay
    /// resident past what this page has carved), once the page has lived a
    /// whole sweep interval: the first sweep that finds it marks it, the
    /// next purges from the first OS page past its carved blocks to the end
    /// of its span, once in the page's life. Returns the bytes purged.
    ///
    /// Without this, a page of a class that holds a few blocks kept a whole
    /// slice resident when it was made where an earlier page had been (in
    /// gcc's cc1, pages of 1-8 KiB blocks with one or two blocks carved and
    /// 64 KiB resident: docs/PERFORMANCE.md E62, E63). What is purged reads
    /// as zero or is rewritten before use: `extend` carves it later as
    /// blocks of a page that is not fresh (not known to be zero).
    ///
    /// # Safety
    /// Only the owner may call this, on a class page (whose uncarved blocks
    /// nothing reads or writes until the owner carves them).
    pub unsafe fn sweep_tail(&self) -> usize {
        match self.tail.get() {
            TAIL_NEW => {
                self.tail.set(TAIL_SEEN);
                0
            }
            // SAFETY: caller's contract, forwarded.
            TAIL_SEEN => unsafe { self.purge_tail() },
            _ => 0,
        }
    }

    /// Gives the OS back the uncarved end of a class page made on a span
    /// that was not zero, at once rather than at the second sweep (nothing
    /// if it went already, or the span was zero): for a page whose owner
    /// is about to abandon it, which no sweep would reach until a thread
    /// takes it (docs/PERFORMANCE.md E114). Returns the bytes purged.
    ///
    /// # Safety
    /// As for [`Page::sweep_tail`].
    pub unsafe fn purge_tail(&self) -> usize {
        if self.tail.get() == TAIL_DONE {
            return 0;
        }
        self.tail.set(TAIL_DONE);
        let os_page = Os::page_size();
        let start = self.start.get() as usize;
        let carved_end = start + self.capacity() as usize * self.block_size.get();
        let lo = carved_end.next_multiple_of(os_page);
        let hi = (start & !(SLICE_SIZE - 1)) + self.span_bytes();
        if hi <= lo {
            return 0;
        }
        // SAFETY: whole OS pages of our span past its carved blocks,
        // which hold no block yet (caller's contract).
        unsafe { Os::purge(lo as *mut u8, hi - lo, crate::options::purge_zeroes()) };
        hi - lo
    }

    /// Pushes a block freed by the owner onto `local_free` (slow-path
    /// frees) and counts the free; returns `true` when the page now holds
    /// no allocated block.
    ///
    /// # Safety
    /// Only the owner may call this, with an allocated block of this page.
    #[inline(always)]
    pub unsafe fn push_local(&self, block: *mut Block) -> bool {
        // SAFETY: the block was allocated from this page and is now ours.
        unsafe { self.set_next(block, self.local_free.get()) };
        self.local_free.set(block);
        self.count_local_free();
        let used = self.used.get() - 1;
        self.used.set(used);
        used == 0
    }

    /// Takes a block on the slow path: pops `free`, or else the free index
    /// (indexed pages), or else carves fresh blocks; null when the page has
    /// none of them. Afterwards [`Page::free_known_zero`] tells whether the
    /// block is zero (a pop from `free` leaves the flag as it was for that
    /// list; the index holds freed blocks, so a pop from it clears the
    /// flag; `extend` sets it for what it carves).
    ///
    /// # Safety
    /// Only the owner may call this.
    pub unsafe fn pop_or_extend(&self) -> *mut Block {
        // SAFETY: caller's contract (owner).
        let block = unsafe { self.pop() };
        if !block.is_null() {
            return block;
        }
        if is_indexed_class(self.class()) {
            // SAFETY: as above, on an indexed class page.
            let block = unsafe { self.pop_indexed() };
            if !block.is_null() {
                self.free_is_zero.set(false);
                return block;
            }
        }
        // SAFETY: as above, and `free` is empty.
        unsafe { self.extend() }
    }

    // --- the free index (indexed pages) ---------------------------------

    /// Pops the block freed last from the free index (without reading the
    /// block), or null when the index is empty.
    ///
    /// # Safety
    /// Only the owner may call this, on an indexed class page.
    #[inline(always)]
    pub unsafe fn pop_indexed(&self) -> *mut Block {
        let index = &self.free_index;
        let len = index.len.get() as usize;
        if len == 0 {
            return ptr::null_mut();
        }
        index.len.set(len as u8 - 1);
        // SAFETY: `len - 1 < INDEX_SLOTS` (the index's invariant).
        let slot = unsafe { index.slots.get_unchecked(len - 1) }.get();
        let number = (slot & SLOT_NUMBER) as usize;
        self.used.set(self.used.get() + 1);
        self.start.get().wrapping_add(number * self.block_size.get()).cast()
    }

    /// Pushes a block freed by the owner onto the free index, and counts
    /// the free; returns `true` when the page now holds
    /// no allocated block. An index already holding every carved block
    /// means that `block` is free already: a double free, which stops the
    /// process (pushing it would overflow the index).
    ///
    /// # Safety
    /// Only the owner may call this, with an allocated block of this page
    /// (an indexed class page).
    pub unsafe fn push_indexed(&self, block: *mut Block) -> bool {
        let offset = block as usize - self.start.get() as usize;
        // SAFETY: forwarded contract (the block's number).
        unsafe { self.push_indexed_number(self.number_at(offset)) }
    }

    /// [`push_indexed`](Self::push_indexed) for the block numbered
    /// `number` (as [`block_index`](Self::block_index) gives it).
    ///
    /// # Safety
    /// As for `push_indexed`, for the block numbered `number`.
    #[inline(always)]
    pub unsafe fn push_indexed_number(&self, number: usize) -> bool {
        let index = &self.free_index;
        let len = index.len.get() as usize;
        if len >= self.capacity() as usize {
            let block = self.start.get() as usize + number * self.block_size.get();
            crate::fatal::fatal(crate::fatal::HeapError::DoubleFree, block, 0);
        }
        // SAFETY: `len < capacity <= INDEX_SLOTS`.
        unsafe { index.slots.get_unchecked(len) }.set(number as u8);
        index.len.set(len as u8 + 1);
        self.count_local_free();
        let used = self.used.get() - 1;
        self.used.set(used);
        used == 0
    }

    /// Takes the next never-used block of the page, or null when the page
    /// is fully carved. From an open carve window if there is one; else
    /// opens one of up to a few KiB of blocks and takes its first block
    /// (the hardened build, and any build while heap profiling is on, link
    /// the batch onto `free` instead: hardened carving writes patterns and
    /// shuffles, and profiling must see every allocation on the slow path).
    /// For blocks of [`UNTOUCHED_HANDOUT`] bytes and more, and on indexed
    /// pages, one block at a time, with no window. Sets `free_is_zero` for
    /// what it hands out (the window's blocks are zero when the page is
    /// fresh: [`Page::take_fresh`]).
    ///
    /// # Safety
    /// Only the owner may call this, with `free` empty.
    unsafe fn extend(&self) -> *mut Block {
        const EXTEND_BYTES: usize = 16 * 1024;
        const EXTEND_MIN_BYTES: usize = 4 * 1024;
        // Hardened carving writes patterns into the blocks.
        let zero = self.fresh.get() && !crate::secure::ENABLED;
        let block = self.take_fresh();
        if !block.is_null() {
            self.free_is_zero.set(zero);
            return block;
        }
        let capacity = self.capacity() as usize;
        let reserved = self.reserved.get() as usize;
        if capacity >= reserved {
            return ptr::null_mut();
        }
        self.free_is_zero.set(zero);
        let size = self.block_size.get();
        let first = self.start.get().wrapping_add(capacity * size);
        if (size >= UNTOUCHED_HANDOUT || is_indexed_class(self.class())) && !crate::secure::ENABLED {
            self.set_capacity(capacity as u32 + 1);
            self.used.set(self.used.get() + 1);
            return first.cast();
        }
        // A fresh page carves one OS page's worth, then as much again as it
        // has carved, up to EXTEND_BYTES: a class that holds a few blocks
        // (most classes of most programs) keeps 4 KiB resident instead of
        // 16 KiB, while a busy page soon carves in full steps (E44). (A
        // window costs no memory until its blocks are used, but its size
        // still paces the slow path's visits, which collect remote frees.)
        let batch = (capacity * size).clamp(EXTEND_MIN_BYTES, EXTEND_BYTES);
        let count = (batch / size).clamp(1, reserved - capacity);
        if !crate::secure::ENABLED && !crate::profile::active() {
            // `count <= reserved - capacity`, and `reserved < 2^15`.
            self.carve_end.set((capacity + count) as u16);
            return self.take_fresh();
        }
        // SAFETY: blocks `capacity..capacity+count` lie inside the page's
        // span and have never been handed out; we own them.
        unsafe { self.carve(first, count, size) };
        self.set_capacity((capacity + count) as u32);
        // SAFETY: `free` now holds the carved blocks.
        unsafe { self.pop() }
    }

    /// Hands out the next block of the carve window (see the module notes),
    /// or null when the window is empty: `used` and `capacity` grow by one,
    /// as for a pop. Writes nothing into the block, which is zero (link
    /// word included) when the page is fresh. Owner only; the fast path
    /// calls it once `free` is empty (on the empty page, whose window is
    /// always empty, it writes nothing).
    #[inline(always)]
    pub fn take_fresh(&self) -> *mut Block {
        let capacity = self.capacity();
        if capacity >= u32::from(self.carve_end.get()) {
            return ptr::null_mut();
        }
        self.set_capacity(capacity + 1);
        self.used.set(self.used.get() + 1);
        let block = self.start.get().wrapping_add(capacity as usize * self.block_size.get());
        prefetch(block.wrapping_add(FRESH_PREFETCH_AHEAD).cast());
        block.cast()
    }

    /// Closes the carve window: its blocks go back to being uncarved, for
    /// `extend` to hand out later (heap profiling: the fast path must come
    /// back to the slow path within the countdown). Owner only.
    pub fn close_window(&self) {
        self.carve_end.set(0);
    }

    /// Links `count` fresh blocks of `size` bytes starting at `first` into
    /// `free`, in address order (sequential carving keeps neighbours
    /// together and touches memory in order).
    ///
    /// # Safety
    /// The blocks must lie in this page, be unused, and `free` must be empty.
    unsafe fn carve(&self, first: *mut u8, count: usize, size: usize) {
        if crate::secure::ENABLED {
            // SAFETY: forwarded contract.
            unsafe { self.carve_shuffled(first, count, size) };
            return;
        }
        let mut block = first.cast::<Block>();
        for _ in 1..count {
            let next = block.cast::<u8>().wrapping_add(size).cast::<Block>();
            // SAFETY: `block` is one of the fresh blocks we own.
            unsafe { self.set_next(block, next) };
            block = next;
        }
        // SAFETY: as above, for the last block.
        unsafe { self.set_next(block, ptr::null_mut()) };
        self.free.set(first.cast());
    }

    /// Hardened carving: the batch is cut into runs of neighbouring blocks
    /// (about 4 KiB each, 2 to [`SHUFFLE_RUNS`] of them), linked in a random order of runs, each run
    /// entered at a random block and walked in address order (wrapping);
    /// every block gets its freed trailer and pattern. Where the next block
    /// comes from is unpredictable, while consecutive allocations stay
    /// mostly sequential in memory: a fully shuffled batch defeated the
    /// hardware prefetcher (hardened xmalloc 2.5x slower than with this
    /// order, docs/PERFORMANCE.md E17).
    ///
    /// # Safety
    /// As for `carve`.
    #[cold]
    unsafe fn carve_shuffled(&self, first: *mut u8, count: usize, size: usize) {
        // Runs of about an OS page (at least two runs, at most SHUFFLE_RUNS).
        let runs = (count * size / 4096).clamp(2, SHUFFLE_RUNS).min(count);
        let mut order = [0u8; SHUFFLE_RUNS];
        for (i, slot) in order[..runs].iter_mut().enumerate() {
            *slot = i as u8;
        }
        let mut rng = crate::secure::Shuffle::new(self);
        for i in (1..runs).rev() {
            order.swap(i, rng.below(i + 1));
        }
        // Built back to front: the list starts with the entry block of the
        // first run in `order`.
        let mut next: *mut Block = ptr::null_mut();
        for &run in order[..runs].iter().rev() {
            let (lo, hi) = (run as usize * count / runs, (run as usize + 1) * count / runs);
            let len = hi - lo;
            let entry = rng.below(len);
            for step in (0..len).rev() {
                let block = first.wrapping_add((lo + (entry + step) % len) * size);
                // SAFETY: a fresh block of ours.
                unsafe {
                    crate::secure::prepare_carved(self, block, size);
                    self.set_next(block.cast(), next);
                }
                next = block.cast();
            }
        }
        self.free.set(next);
    }

    /// Takes every block from `thread_free` and adds it to `local_free`;
    /// returns how many there were.
    ///
    /// # Safety
    /// Only the owner (or the holder of the page's abandoned-list lock) may call this.
    pub unsafe fn collect_thread_free(&self) -> usize {
        // SAFETY: forwarded contract.
        let (head, count) = unsafe { self.take_thread_free() };
        if head.is_null() {
            return 0;
        }
        let local = self.local_free.get();
        if !local.is_null() {
            // Both lists hold blocks (rare: `local_free` only gets slow-path
            // frees): splice the taken list in front, which needs its tail.
            // SAFETY: the taken list is ours now.
            unsafe {
                let tail = self.tail_of(head);
                self.set_next(tail, local);
            }
        }
        self.local_free.set(head);
        count
    }

    /// Takes the whole `thread_free` list (head and length, known from the
    /// list's word without walking it) and counts its blocks out of `used`.
    /// (The hardened build does not walk it either: every link is checked
    /// when its block is popped, and a block cannot be pushed twice there,
    /// since its trailer is marked freed with an atomic swap.)
    ///
    /// # Safety
    /// As for [`Page::collect_thread_free`].
    unsafe fn take_thread_free(&self) -> (*mut Block, usize) {
        let (head, count) = self.thread_free.take_all();
        let head = head.cast::<Block>();
        if !head.is_null() {
            self.adjust_used(-(count as i32));
        }
        (head, count)
    }

    /// The last block of a detached, non-empty list of this page's free
    /// blocks, stopping the process when the list is longer than the page's
    /// capacity (it has a cycle).
    ///
    /// # Safety
    /// `head` must start a list of free blocks of this page that no other
    /// thread touches.
    unsafe fn tail_of(&self, head: *mut Block) -> *mut Block {
        let limit = self.capacity() as usize;
        let mut tail = head;
        let mut length = 1;
        loop {
            // SAFETY: caller's contract.
            let next = unsafe { self.next_of(tail) };
            if next.is_null() {
                return tail;
            }
            length += 1;
            if length > limit {
                crate::fatal::fatal(
                    crate::fatal::HeapError::CorruptedFreeList,
                    tail as usize,
                    self.block_size.get(),
                );
            }
            tail = next;
        }
    }

    /// Keeps at most `keep` blocks on `free` and moves the rest to
    /// `local_free` (heap profiling: the fast path then comes back to the
    /// slow path in time for the next sample). Returns the blocks kept.
    ///
    /// # Safety
    /// Only the owner may call this.
    pub unsafe fn cut_free_list(&self, keep: usize) -> usize {
        let mut tail = self.free.get();
        if tail.is_null() {
            return 0;
        }
        let mut kept = 1;
        // SAFETY: blocks on `free` are free blocks of this page (owner).
        unsafe {
            while kept < keep {
                let next = self.next_of(tail);
                if next.is_null() {
                    return kept;
                }
                tail = next;
                kept += 1;
            }
            let rest = self.next_of(tail);
            if rest.is_null() {
                return kept;
            }
            self.set_next(tail, ptr::null_mut());
            self.move_to_local(rest);
        }
        self.free_is_zero.set(false);
        kept
    }

    /// Moves a detached list of this page's free blocks (taken off `free`)
    /// onto `local_free` (`used`, A + T, does not change).
    ///
    /// # Safety
    /// Only the owner may call this, with blocks no list holds any more.
    unsafe fn move_to_local(&self, mut list: *mut Block) {
        while !list.is_null() {
            // SAFETY: caller's contract: free blocks of this page, ours.
            unsafe {
                let next = self.next_of(list);
                self.set_next(list, self.local_free.get());
                self.local_free.set(list);
                list = next;
            }
        }
    }

    /// Collects `thread_free`, and refills `free` when it is empty — from
    /// `local_free` (the remote frees then wait there) or else from the
    /// remote frees — without walking either list.
    ///
    /// # Safety
    /// Only the owner may call this.
    pub unsafe fn collect(&self) {
        if !self.free.get().is_null() {
            // SAFETY: forwarded contract.
            unsafe { self.collect_thread_free() };
            return;
        }
        // SAFETY: forwarded contract.
        let (remote, _) = unsafe { self.take_thread_free() };
        let local = self.local_free.get();
        let refill = if local.is_null() {
            remote
        } else {
            self.local_free.set(remote);
            local
        };
        if !refill.is_null() {
            self.free.set(refill);
            self.free_is_zero.set(false);
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::{class_size, page_slices, CLASS_COUNT};
    use crate::util::resident;

    /// A private anonymous mapping of two slices, and the first slice
    /// boundary inside it; the caller unmaps it (`2 * SLICE_SIZE` bytes).
    fn two_slice_mapping() -> (*mut libc::c_void, usize) {
        // SAFETY: a private anonymous mapping of our own.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                2 * SLICE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        (map, (map as usize).next_multiple_of(SLICE_SIZE))
    }

    /// A page made on a used (resident) slice gives back what it has not
    /// carved, at the second sweep that finds it and only then, keeping
    /// its carved blocks; a page made on a zero span purges nothing.
    #[test]
    #[cfg_attr(miri, ignore = "mmap, mincore and madvise")]
    fn a_page_made_on_a_used_span_gives_back_its_uncarved_end_after_a_sweep_interval() {
        const OS_PAGE: usize = 4096;
        let size = 1536;
        let (map, start) = two_slice_mapping();
        // The slice as an earlier page left it: every OS page resident.
        // SAFETY: one slice inside the mapping.
        unsafe { ptr::write_bytes(start as *mut u8, 0x77, SLICE_SIZE) };
        let page = Page::new();
        page.init(
            PageKind::Class,
            start as *mut u8,
            1,
            size,
            crate::size_class::class_of(size),
            false,
        );
        page.set_capacity(5);
        // SAFETY: we stand for the owner of a class page whose uncarved
        // blocks nothing touches.
        unsafe {
            assert_eq!(page.sweep_tail(), 0, "the first sweep purged");
            // Carved further between the sweeps: 6 blocks end in OS page 2.
            page.set_capacity(6);
            assert_eq!(page.sweep_tail(), SLICE_SIZE - 3 * OS_PAGE, "the second sweep");
            assert_eq!(page.sweep_tail(), 0, "a third sweep purged again");
        }
        for os_page in 0..SLICE_SIZE / OS_PAGE {
            let addr = start + os_page * OS_PAGE;
            assert_eq!(resident(addr), os_page < 3, "OS page {os_page} of the slice");
        }
        // SAFETY: the carved blocks, inside the mapping.
        let carved = unsafe { core::slice::from_raw_parts(start as *const u8, 6 * size) };
        assert!(carved.iter().all(|&b| b == 0x77), "a carved block changed");

        // Made on a zero span: nothing to give back, ever.
        // SAFETY: the slice again.
        unsafe { ptr::write_bytes(start as *mut u8, 0x77, SLICE_SIZE) };
        page.init(
            PageKind::Class,
            start as *mut u8,
            1,
            size,
            crate::size_class::class_of(size),
            true,
        );
        page.set_capacity(1);
        // SAFETY: as above.
        unsafe {
            assert_eq!(page.sweep_tail() + page.sweep_tail() + page.sweep_tail(), 0);
        }
        assert!(resident(start + SLICE_SIZE - OS_PAGE));
        // SAFETY: our mapping, no longer used.
        assert_eq!(unsafe { libc::munmap(map, 2 * SLICE_SIZE) }, 0);
    }

    /// `purge_tail` (a page about to be abandoned) gives back the uncarved
    /// end of a page made on a used span at once, without the sweeps'
    /// wait, and only once; a page made on a zero span has nothing to give.
    #[test]
    #[cfg_attr(miri, ignore = "mmap, mincore and madvise")]
    fn purge_tail_gives_back_the_uncarved_end_at_once_and_once() {
        const OS_PAGE: usize = 4096;
        let size = 1536;
        let (map, start) = two_slice_mapping();
        // SAFETY: one slice inside the mapping.
        unsafe { ptr::write_bytes(start as *mut u8, 0x77, SLICE_SIZE) };
        let page = Page::new();
        let class = crate::size_class::class_of(size);
        page.init(PageKind::Class, start as *mut u8, 1, size, class, false);
        // 5 blocks end in OS page 1.
        page.set_capacity(5);
        // SAFETY: we stand for the owner of a class page whose uncarved
        // blocks nothing touches.
        unsafe {
            assert_eq!(page.purge_tail(), SLICE_SIZE - 2 * OS_PAGE, "no purge at once");
            assert_eq!(page.purge_tail(), 0, "purged twice");
            assert_eq!(page.sweep_tail() + page.sweep_tail(), 0, "a sweep purged again");
        }
        for os_page in 0..SLICE_SIZE / OS_PAGE {
            assert_eq!(resident(start + os_page * OS_PAGE), os_page < 2, "OS page {os_page}");
        }
        // SAFETY: the carved blocks, inside the mapping.
        let carved = unsafe { core::slice::from_raw_parts(start as *const u8, 5 * size) };
        assert!(carved.iter().all(|&b| b == 0x77), "a carved block changed");

        // SAFETY: the slice again.
        unsafe { ptr::write_bytes(start as *mut u8, 0x77, SLICE_SIZE) };
        page.init(PageKind::Class, start as *mut u8, 1, size, class, true);
        page.set_capacity(1);
        // SAFETY: as above.
        assert_eq!(unsafe { page.purge_tail() }, 0, "a page on a zero span purged");
        assert!(resident(start + SLICE_SIZE - OS_PAGE));
        // SAFETY: our mapping, no longer used.
        assert_eq!(unsafe { libc::munmap(map, 2 * SLICE_SIZE) }, 0);
    }

    /// A page hands out its never-used blocks in address order from carve
    /// windows that follow E44's steps (one OS page's worth, then as much
    /// again as it has carved, up to 16 KiB), writing none of them.
    #[test]
    #[cfg(not(feature = "secure"))]
    fn carve_windows_follow_the_steps_and_write_nothing() {
        let size = 64;
        let memory = vec![0x77u64; SLICE_SIZE / 8];
        let start = memory.as_ptr().cast::<u8>().cast_mut();
        let page = Page::new();
        page.init(PageKind::Class, start, 1, size, crate::size_class::class_of(size), true);
        let mut window_ends = Vec::new();
        for i in 0..SLICE_SIZE / size {
            let mut block = page.take_fresh();
            if block.is_null() {
                // SAFETY: we stand for the owner; `free` is empty.
                block = unsafe { page.pop_or_extend() };
                window_ends.push(page.carve_end.get());
            }
            assert_eq!(block as usize, start as usize + i * size, "block {i}");
            assert_eq!(page.used.get() as usize, i + 1);
            assert_eq!(page.capacity() as usize, i + 1);
        }
        assert_eq!(window_ends, [64, 128, 256, 512, 768, 1024]);
        // SAFETY: as above.
        let past_end = unsafe { page.pop_or_extend() };
        assert!(past_end.is_null(), "a full page handed out a block");
        assert!(memory.iter().all(|&w| w == 0x77), "a block was written");
    }

    /// The hardened carve links every block of the batch exactly once, in
    /// an order that is not the address order but runs of neighbours.
    #[test]
    fn shuffled_carve_is_a_permutation_in_runs() {
        let size = 48;
        let count = 300;
        let mut memory = vec![0u64; count * size / 8];
        let start = memory.as_mut_ptr().cast::<u8>();
        let page = Page::new();
        page.init(PageKind::Class, start, 1, size, 5, true);
        page.key.set(0x1234_5678_9abc_def1);
        // The hardened build checks that every link stays among the carved blocks.
        page.set_capacity(count as u32);
        // SAFETY: the blocks lie in `memory`, which the page does not outlive.
        unsafe { page.carve_shuffled(start, count, size) };
        let mut seen = vec![false; count];
        let mut order = Vec::new();
        let mut block = page.free.get();
        while !block.is_null() {
            let index = (block as usize - start as usize) / size;
            assert!(!seen[index], "block {index} linked twice");
            seen[index] = true;
            order.push(index);
            // SAFETY: a block of the list just built.
            block = unsafe { page.next_of(block) };
        }
        assert_eq!(order.len(), count, "every block linked");
        assert_ne!(order, (0..count).collect::<Vec<_>>(), "not shuffled at all");
        let sequential = order.windows(2).filter(|w| w[1] == w[0] + 1).count();
        // Each of the 16 runs breaks the sequence at most twice (its entry
        // and its wrap).
        assert!(
            sequential >= count - 1 - 2 * SHUFFLE_RUNS,
            "only {sequential} sequential steps"
        );
        drop(memory);
    }

    #[test]
    fn block_index_agrees_with_division_for_every_class() {
        let start = core::ptr::without_provenance_mut::<u8>(0x7f00_0040_0000);
        for class in 0..CLASS_COUNT {
            let page = Page::new();
            let size = class_size(class);
            page.init(PageKind::Class, start, page_slices(class), size, class, true);
            page.set_capacity(page.reserved.get().into());
            let span = page.reserved.get() as usize * size;
            let step = if cfg!(miri) { 8 * 97 } else { 8 };
            for offset in (0..span + 2 * size).step_by(step) {
                let expect = (offset < span && offset % size == 0).then(|| offset / size);
                assert_eq!(
                    page.block_index(start as usize + offset),
                    expect,
                    "class {class} offset {offset}"
                );
                assert_eq!(
                    page.block_index_by_division(start as usize + offset),
                    expect,
                    "class {class} offset {offset} (division)"
                );
                assert_eq!(
                    page.block_index_in_class(start as usize + offset, class),
                    expect,
                    "class {class} offset {offset} (class table)"
                );
            }
            assert_eq!(page.block_index(start as usize - 8), None);
            assert_eq!(page.block_index_by_division(start as usize - 8), None);
            assert_eq!(page.block_index_in_class(start as usize - 8, class), None);
        }
    }
}
