//! Huge blocks: requests too big for a chunk get a mapping of their own.
//!
//! The mapping starts with a [`Chunk`] header (one page descriptor used),
//! followed by the block at an offset that gives the requested alignment:
//! one slice for alignments up to 64 KiB, the alignment itself below the
//! chunk size, and exactly one chunk for alignments of the chunk size or
//! more (then the chunk map marks the block's first region
//! [`MAP_HEADER_BELOW`]). `realloc` grows them with `mremap`, in place when
//! the address space after them is free, otherwise by moving the pages to a
//! new aligned reservation (no copy).
//!
//! Freed huge mappings (of blocks aligned to 64 KiB or less) go to a small
//! cache instead of straight back to the OS: a program that replaces big
//! buffers reuses them without `mmap`, `munmap` and a page fault per 4 KiB.
//! A cached mapping larger than the request is cut: the block takes its
//! head, the tail stays cached. When no cached mapping is large enough, the
//! backed (not yet purged) ones are joined: their pages are moved with
//! `mremap` into one new reservation, so the new block faults only the
//! bytes the cache could not supply (docs/PERFORMANCE.md E30), and
//! `realloc` grows a block over a cached mapping that starts where its own
//! ends, without a system call. Cached mappings are purged after the purge delay like free slices (so they
//! cost no resident memory), and unmapped after a second, when the cache
//! is full, when a mapping fails, or on a forced collect. Hardened builds
//! do not cache: freed huge blocks must fault.
//!
//! Invariant: a huge mapping is one kernel mapping (VMA), or, once it was
//! joined from cached pieces or grew over one (its header's `joined`, and
//! a cached entry's), several whose boundaries all lie at
//! multiples of [`HUGE_PAGE`] from its start (only mappings sized and
//! aligned in huge pages are cut or joined). `mremap` works within one
//! kernel mapping, so growing and moving a mapping go through
//! [`grow_in_place`] and [`move_pages`], which rely on that.

use crate::chunk::{
    self, huge_descriptor_slice, Chunk, ChunkKind, CHUNK_SIZE, MAP_HEADER_BELOW, MAP_HEADER_HERE, MAP_INTERIOR,
    MAP_NONE, SLICE_SIZE,
};
use crate::os::{Os, Platform};
use crate::page::{Page, PageKind};
use crate::stats;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::Mutex;
use core::ptr;

/// A transparent huge page on x86-64 and most arm64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Bytes to map for a block of `block_bytes` (page multiple) at `offset`
/// followed by `guard` bytes. With huge pages on (advised now or later), a
/// whole number of huge pages: the kernel backs a range with a huge page
/// only when the whole aligned 2 MiB lies in the mapping, so a ragged tail faults 4 KiB
/// at a time (malloc-large: 91,750 faults, of which all but ~1,100 were
/// tails and remap growth; docs/PERFORMANCE.md E19). The slack is at most
/// one huge page, untouched by the block but backed once its huge page is.
fn mapping_size(offset: usize, block_bytes: usize, guard: usize) -> Option<usize> {
    let total = offset.checked_add(block_bytes)?.checked_add(guard)?;
    if guard == 0 && sized_in_huge_pages() {
        total.checked_next_multiple_of(HUGE_PAGE)
    } else {
        Some(total)
    }
}

/// Whether new huge mappings are sized in whole huge pages (huge pages
/// advised and allowed): then cached ones can be cut and joined.
fn sized_in_huge_pages() -> bool {
    crate::options::huge_pages() && crate::options::allow_thp()
}

/// Set once a huge block was seen filled (most of its pages resident):
/// the program fills its huge blocks, so from then on they are advised
/// huge pages (`HUGE_PAGES=1`). Never cleared.
static FILLED_BLOCK_SEEN: AtomicBool = AtomicBool::new(false);

/// The latest huge block handed out (start and bytes), looked at when the
/// next one is asked for, until a filled block is seen. Two words set
/// apart: a torn pair, or a block unmapped since, only makes `mincore`
/// look at the wrong range or fail, which costs nothing but a missed proof.
static LATEST_BLOCK: AtomicUsize = AtomicUsize::new(0);
static LATEST_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Whether huge mappings made or reused now are advised huge pages.
///
/// Not from the first block: a huge page is backed whole at its first
/// touch, so a buffer the program fills only in part costs up to 2 MiB per
/// touched region: `xz -6` (two blocks of 14 and 18 MiB) peaked 15 MiB
/// higher, `sort` 2.9 MiB (docs/PERFORMANCE.md E70, E71). Programs that
/// fill their buffers (malloc-large: 5-25 MiB replaced hundreds of times;
/// vectors grown by `realloc`) show it at their next huge allocation,
/// growth or free, and pay 4 KiB faults only until then.
fn advise_wanted() -> bool {
    sized_in_huge_pages() && (crate::options::huge_pages_eager() || FILLED_BLOCK_SEEN.load(Ordering::Relaxed))
}

/// Notes whether the huge block at `block` (`bytes` long) is filled: 7/8
/// of its pages resident, sampled in up to eight 1 MiB windows spread over
/// it. Only until one is.
fn note_fill(block: usize, bytes: usize) {
    const WINDOW_PAGES: usize = 256;
    const WINDOWS: usize = 8;
    if !sized_in_huge_pages() || FILLED_BLOCK_SEEN.load(Ordering::Relaxed) {
        return;
    }
    let page = Os::page_size();
    let pages = bytes / page;
    let window = WINDOW_PAGES.min(pages);
    if window == 0 {
        return;
    }
    let windows = WINDOWS.min(pages / window);
    let mut answer = [0u8; WINDOW_PAGES];
    let (mut resident, mut sampled) = (0, 0);
    for k in 0..windows {
        // Evenly spread: the first window at the start, the last at the end.
        let first = if windows > 1 {
            k * (pages - window) / (windows - 1)
        } else {
            0
        };
        match Os::resident_pages(block + first * page, &mut answer[..window]) {
            Some(n) => resident += n,
            None => return,
        }
        sampled += window;
    }
    if resident * 8 >= sampled * 7 {
        FILLED_BLOCK_SEEN.store(true, Ordering::Relaxed);
    }
}

/// Before a huge block is handed out: the previous one is looked at (a
/// program that fills a buffer before asking for the next shows it here, a
/// block earlier than at its free).
fn note_latest_filled() {
    if !FILLED_BLOCK_SEEN.load(Ordering::Relaxed) {
        note_fill(
            LATEST_BLOCK.load(Ordering::Relaxed),
            LATEST_BYTES.load(Ordering::Relaxed),
        );
    }
}

/// Before the huge block of `page` is resized to `new_size` bytes: a
/// block grown is usually one filled (a vector), so its growth, or the
/// block it moves to, may be the first to get huge pages.
pub fn note_growth(page: &Page, new_size: usize) {
    let old = page.block_size.get();
    if new_size > old {
        note_fill(page.start.get() as usize, old);
    }
}

/// Records the huge block just handed out as the latest.
fn set_latest(block: *mut u8, bytes: usize) {
    if !FILLED_BLOCK_SEEN.load(Ordering::Relaxed) {
        LATEST_BLOCK.store(block as usize, Ordering::Relaxed);
        LATEST_BYTES.store(bytes, Ordering::Relaxed);
    }
}

/// Whether a range starts and ends on huge-page boundaries (it can be cut
/// from a cached mapping or joined into one; see the module's invariant).
fn huge_page_aligned(start: *mut u8, size: usize) -> bool {
    (start as usize | size) % HUGE_PAGE == 0
}

/// Offset of the block from the header for an alignment.
fn block_offset(align: usize) -> usize {
    if align <= SLICE_SIZE {
        SLICE_SIZE
    } else if align < CHUNK_SIZE {
        align
    } else {
        CHUNK_SIZE
    }
}

/// Records a huge mapping in the chunk map (`present`), or erases it.
fn map_mapping(header: usize, size: usize, block: usize, present: bool) {
    #[cfg(feature = "page-map")]
    {
        let page = if present {
            Chunk::page(header as *mut Chunk, huge_descriptor_slice(block))
        } else {
            ptr::null_mut()
        };
        crate::page_map::set(header, size, page);
    }
    let chunks = size.div_ceil(CHUNK_SIZE);
    if !present {
        chunk::map_set(header, chunks, MAP_NONE);
        return;
    }
    chunk::map_set(header, 1, MAP_HEADER_HERE);
    if chunks > 1 {
        chunk::map_set(header + CHUNK_SIZE, chunks - 1, MAP_INTERIOR);
    }
    if block - header == CHUNK_SIZE {
        chunk::map_set(block, 1, MAP_HEADER_BELOW);
    }
}

/// Allocates a huge block of at least `size` bytes aligned to `align`.
/// Returns the block and how many of its first bytes may be non-zero (a
/// recycled mapping; 0 for a fresh one); null when the system refuses or
/// the size overflows.
pub fn alloc_huge(size: usize, align: usize) -> (*mut u8, usize) {
    let page_size = Os::page_size();
    let offset = block_offset(align);
    let Some(block_bytes) = size.checked_next_multiple_of(page_size) else {
        return (ptr::null_mut(), 0);
    };
    // The hardened build keeps an inaccessible page after the block.
    let guard = if crate::secure::ENABLED { page_size } else { 0 };
    let Some(total) = mapping_size(offset, block_bytes, guard) else {
        return (ptr::null_mut(), 0);
    };
    if total > isize::MAX as usize {
        return (ptr::null_mut(), 0);
    }
    note_latest_filled();
    let (header, dirty, joined) = match cache_take(total, offset) {
        Some(hit) => {
            if advise_wanted() {
                // Cached pieces made before a filled block was seen are not
                // advised yet (the advice of the others is kept as is).
                // SAFETY: the mapping we just took from the cache.
                unsafe { Os::advise_huge_pages(hit.0, total, true) };
            }
            hit
        }
        None => match map_new(total, offset, align, block_bytes + guard) {
            Some(header) => (header, 0, false),
            None => {
                // Cached mappings may be what stands in the way (address
                // space limits, OXMALLOC_LIMIT): give them back and retry.
                if cache_flush() == 0 {
                    return (ptr::null_mut(), 0);
                }
                match map_new(total, offset, align, block_bytes + guard) {
                    Some(header) => (header, 0, false),
                    None => return (ptr::null_mut(), 0),
                }
            }
        },
    };
    // Bytes of the block (after the header slice) that may be non-zero.
    let dirty = dirty.saturating_sub(offset).min(block_bytes);
    stats::huge_allocated(block_bytes);
    let block = header.wrapping_add(offset);
    let chunk = header.cast::<Chunk>();
    // SAFETY: a chunk-aligned mapping of ours at least one slice long,
    // fresh (zeroed) or recycled: we write every header field we read.
    unsafe {
        let c = &mut *chunk;
        c.kind = ChunkKind::Huge;
        c.mapping = header;
        c.mapping_size = total;
        c.joined = joined;
        let page = c.slice_page(huge_descriptor_slice(block as usize));
        page.init(PageKind::Huge, block, 0, block_bytes, 0, dirty == 0);
        page.used.set(1);
    }
    map_mapping(header as usize, total, block as usize, true);
    if guard != 0 {
        // SAFETY: the last page of our fresh mapping.
        unsafe { Os::protect(block.add(block_bytes), guard, true) };
    }
    set_latest(block, block_bytes);
    (block, dirty)
}

/// Maps a new huge mapping of `total` bytes for a block at `offset`
/// (aligned to `align`; `block_and_guard` bytes from the block on).
fn map_new(total: usize, offset: usize, align: usize, block_and_guard: usize) -> Option<*mut u8> {
    if !stats::may_map(total) {
        return None;
    }
    let header = if offset < CHUNK_SIZE {
        Os::map(total, CHUNK_SIZE)?.as_ptr()
    } else {
        // The block must be `align`-aligned with the header one chunk below,
        // and the mapping run `total` bytes from the header: past the block
        // too when `total` was rounded to huge pages (reserving only the
        // block once left up to 2 MiB of the recorded mapping unmapped, and
        // the free then unmapped whatever lay there).
        debug_assert!(total - offset >= block_and_guard);
        let reserve = align.checked_add(total - offset)?;
        let base = Os::map(reserve, align)?;
        let header = base.as_ptr().wrapping_add(align - CHUNK_SIZE);
        if align > CHUNK_SIZE {
            // SAFETY: the unused head of the reservation we just made.
            unsafe { Os::unmap(base.as_ptr(), align - CHUNK_SIZE) };
        }
        header
    };
    if advise_wanted() {
        // Filled huge blocks: transparent huge pages take one fault per
        // 2 MiB instead of 512 (and fewer TLB misses). Systems in THP
        // "madvise" mode need the request; "never" ignores it
        // (malloc-large: 483k page faults and 1.2-1.5 s without, 92k and
        // 0.5-0.8 s with; docs/PERFORMANCE.md E15). The price: where huge
        // pages are scarce, the kernel may compact memory synchronously at
        // the fault, a stall of tens or hundreds of milliseconds;
        // `OXMALLOC_HUGE_PAGES=0` turns it off.
        // SAFETY: the mapping we just made.
        unsafe { Os::advise_huge_pages(header, total, true) };
    }
    stats::os_mapped(total);
    Some(header)
}

// ---------------------------------------------------------------------------
// The cache of freed huge mappings
// ---------------------------------------------------------------------------

/// Mappings kept at most, and their total size.
const CACHE_SLOTS: usize = 8;
const CACHE_BYTES: usize = 1 << 30;
/// Cached mappings older than this (after their purge) are unmapped.
const CACHE_KEEP_MS: u64 = 1000;

#[derive(Clone, Copy)]
struct CacheEntry {
    mapping: *mut u8,
    size: usize,
    freed_at: u64,
    /// Purged (or never touched): reads as zero and costs no memory.
    purged: bool,
    /// When a timed purge purged it (0: not purged, or by a forced purge);
    /// reuse soon after slows the purges down (`purge::note_reuse`).
    purged_at: u64,
    /// Spans several kernel mappings (see the module's invariant).
    joined: bool,
}

/// Freed huge mappings (of blocks at offset one slice). Invariant: the
/// chunk map knows none of them; `bytes` is the sum of their sizes.
pub struct HugeCache {
    entries: [CacheEntry; CACHE_SLOTS],
    count: usize,
    bytes: usize,
}
// SAFETY: the raw pointers are only used with the cache lock held.
unsafe impl Send for HugeCache {}

/// The cache (locked around `fork` too).
pub static CACHE: Mutex<HugeCache> = Mutex::new(HugeCache {
    entries: [CacheEntry {
        mapping: ptr::null_mut(),
        size: 0,
        freed_at: 0,
        purged: true,
        purged_at: 0,
        joined: false,
    }; CACHE_SLOTS],
    count: 0,
    bytes: 0,
});
/// Bytes of cached mappings not purged yet. Invariant: the sum of the sizes
/// of the cache's unpurged entries; changed only with `CACHE`'s lock held
/// (`HugeCache::insert`, `remove`, `take_head`), so it never dips below
/// zero. Atomic so that it can be read without the lock.
static CACHE_DIRTY: AtomicUsize = AtomicUsize::new(0);

/// Bytes of cached huge mappings still backed (waiting for their purge).
pub fn cache_dirty_bytes() -> usize {
    CACHE_DIRTY.load(Ordering::Relaxed)
}

impl HugeCache {
    /// Adds an entry when a slot is free; `false` when the cache is full.
    fn insert(&mut self, e: CacheEntry) -> bool {
        if self.count == CACHE_SLOTS {
            return false;
        }
        self.entries[self.count] = e;
        self.count += 1;
        self.bytes += e.size;
        if !e.purged {
            CACHE_DIRTY.fetch_add(e.size, Ordering::Relaxed);
        }
        true
    }

    /// When the latest timed purge of a cached mapping happened (0: none).
    fn latest_timed_purge(&self) -> u64 {
        self.entries[..self.count]
            .iter()
            .map(|e| e.purged_at)
            .max()
            .unwrap_or(0)
    }

    /// Takes the first `need` bytes (at most its size) of entry `i`: the
    /// whole entry, or a head cut off it while its tail stays in the slot.
    fn take_head(&mut self, i: usize, need: usize) -> CacheEntry {
        let e = self.entries[i];
        if need >= e.size {
            return self.remove(i);
        }
        let tail = &mut self.entries[i];
        tail.mapping = e.mapping.wrapping_add(need);
        tail.size -= need;
        self.bytes -= need;
        if !e.purged {
            CACHE_DIRTY.fetch_sub(need, Ordering::Relaxed);
        }
        CacheEntry { size: need, ..e }
    }

    fn remove(&mut self, i: usize) -> CacheEntry {
        let e = self.entries[i];
        self.count -= 1;
        self.entries[i] = self.entries[self.count];
        self.bytes -= e.size;
        if !e.purged {
            CACHE_DIRTY.fetch_sub(e.size, Ordering::Relaxed);
        }
        e
    }
}

/// Takes a cached mapping for a block at `offset` in a `total`-byte
/// mapping: the smallest that fits (its excess tail stays cached when it
/// can be joined later, else it is unmapped), or else the backed cached
/// mappings joined into a new one ([`join_cached`]). Returns its header,
/// how many of its first bytes may be non-zero, and whether it is joined
/// (spans several kernel mappings).
fn cache_take(total: usize, offset: usize) -> Option<(*mut u8, usize, bool)> {
    if offset != SLICE_SIZE || crate::secure::ENABLED {
        return None;
    }
    let mut cache = CACHE.lock();
    if cache.count == 0 {
        return None;
    }
    // A header must be chunk-aligned (cut tails may be aligned to less),
    // and a joined mapping is cut only at a huge-page boundary.
    let usable = |e: &CacheEntry| {
        e.size >= total && e.mapping as usize % CHUNK_SIZE == 0 && (!e.joined || total % HUGE_PAGE == 0)
    };
    let fitting = (0..cache.count)
        .filter(|&i| usable(&cache.entries[i]))
        .min_by_key(|&i| cache.entries[i].size);
    let Some(pick) = fitting else {
        drop(cache);
        return join_cached(total).or_else(|| grow_cached(total));
    };
    let e = cache.remove(pick);
    let dirty = if e.purged { 0 } else { total };
    if e.purged_at != 0 {
        crate::purge::note_reuse(e.purged_at, Os::now_millis());
    }
    if e.size > total {
        let tail = CacheEntry {
            mapping: e.mapping.wrapping_add(total),
            size: e.size - total,
            ..e
        };
        if !(huge_page_aligned(tail.mapping, tail.size) && cache.insert(tail)) {
            drop(cache);
            // SAFETY: the tail of a cached mapping of ours, unused.
            unsafe { Os::unmap(tail.mapping, tail.size) };
            stats::os_unmapped(tail.size);
        }
    }
    Some((e.mapping, dirty, e.joined))
}

/// Cached pieces joined at most into one block.
const JOIN_MAX: usize = CACHE_SLOTS;

/// Builds a `total`-byte mapping from the backed cached mappings: they are
/// taken, largest first, until they cover `total` (the last one cut), and
/// moved with `mremap` to the front of a new reservation, whose rest is
/// fresh. Their pages stay resident, so the block faults only that rest
/// (malloc-large replaces a 5-25 MiB buffer by another: without this, the
/// difference faulted afresh at each replacement; docs/PERFORMANCE.md E30).
/// Purged mappings would fault like fresh memory and are left. `None` when
/// nothing backed can be joined or the reservation fails. Returns as
/// [`cache_take`] does.
fn join_cached(total: usize) -> Option<(*mut u8, usize, bool)> {
    if !sized_in_huge_pages() || total % HUGE_PAGE != 0 {
        return None;
    }
    let mut pieces = [(ptr::null_mut::<u8>(), 0usize, false); JOIN_MAX];
    let mut count = 0;
    let mut covered = 0;
    let mut cache = CACHE.lock();
    while covered < total && count < JOIN_MAX {
        let Some(i) = (0..cache.count)
            .filter(|&i| !cache.entries[i].purged && huge_page_aligned(cache.entries[i].mapping, cache.entries[i].size))
            .max_by_key(|&i| cache.entries[i].size)
        else {
            break;
        };
        // The last piece is cut: its head joins, its tail stays cached.
        let e = cache.take_head(i, total - covered);
        pieces[count] = (e.mapping, e.size, e.joined);
        count += 1;
        covered += e.size;
    }
    // Fresh memory needed while purged mappings sit in the cache: their
    // purge only bought faults (`purge::note_reuse` slows purges down).
    let wasted_purge = if covered < total { cache.latest_timed_purge() } else { 0 };
    drop(cache);
    if wasted_purge != 0 {
        crate::purge::note_reuse(wasted_purge, Os::now_millis());
    }
    if count == 0 {
        return None;
    }
    let header = if stats::may_map(total) {
        Os::map(total, CHUNK_SIZE)
    } else {
        None
    };
    let Some(header) = header else {
        for &(mapping, size, joined) in &pieces[..count] {
            put_back_dirty(mapping, size, joined);
        }
        return None;
    };
    let header = header.as_ptr();
    if advise_wanted() {
        // SAFETY: the reservation we just made.
        unsafe { Os::advise_huge_pages(header, total, true) };
    }
    stats::os_mapped(total);
    let mut placed = 0;
    for (n, &(mapping, size, joined)) in pieces[..count].iter().enumerate() {
        // SAFETY: a cached piece taken out of the cache (ours, unused, laid
        // out as the module says), moved over the part of our fresh
        // reservation that nothing uses yet.
        let moved = unsafe { move_pages(mapping, size, header.wrapping_add(placed), joined, false) };
        // The moved pages left their old range and replaced reserved ones.
        stats::os_unmapped(moved);
        placed += moved;
        if moved < size {
            // The reservation there stays fresh; the rest stays cached.
            put_back_dirty(mapping.wrapping_add(moved), size - moved, joined);
            for &(mapping, size, joined) in &pieces[n + 1..count] {
                put_back_dirty(mapping, size, joined);
            }
            break;
        }
    }
    // One whole kernel mapping that filled the reservation stays one.
    let joined = !(count == 1 && placed == total && !pieces[0].2);
    Some((header, placed, joined))
}

/// When nothing can be joined (huge pages off, or nothing backed): the
/// most recently freed cached mapping (of one kernel mapping) grown to
/// `total` bytes with `mremap`; its pages stay, only the growth is fresh.
/// Returns as [`cache_take`] does.
fn grow_cached(total: usize) -> Option<(*mut u8, usize, bool)> {
    let mut cache = CACHE.lock();
    let pick = (0..cache.count)
        .filter(|&i| {
            let e = &cache.entries[i];
            // One kernel mapping, whose start can be a header.
            !e.joined && e.size < total && e.mapping as usize % CHUNK_SIZE == 0
        })
        .max_by_key(|&i| cache.entries[i].freed_at)?;
    let e = cache.remove(pick);
    drop(cache);
    let dirty = if e.purged { 0 } else { e.size };
    if !stats::may_map(total - e.size) {
        put_back(e);
        return None;
    }
    // SAFETY: `e` is a whole kernel mapping of ours that nothing refers to.
    if unsafe { Os::remap_in_place(e.mapping, e.size, total) } {
        stats::os_mapped(total - e.size);
        return Some((e.mapping, dirty, false));
    }
    let Some(dest) = Os::map(total, CHUNK_SIZE) else {
        put_back(e);
        return None;
    };
    // SAFETY: `dest` is a fresh reservation of `total` bytes; `e` is ours.
    if unsafe { Os::remap_to(e.mapping, e.size, total, dest.as_ptr()) } {
        stats::os_mapped(total - e.size);
        return Some((dest.as_ptr(), dirty, false));
    }
    // SAFETY: the unused reservation.
    unsafe { Os::unmap(dest.as_ptr(), total) };
    put_back(e);
    None
}

/// Takes the first `need` bytes of the cached mapping that starts at `at`,
/// the end of a live huge mapping of `size` bytes, so that it can grow
/// over them without a system call. A cut leaves the cached mapping's
/// tail where it was: growing by realloc into the tail of the mapping it
/// was cut from (realloc-growth) stays in place. Only where mappings are
/// cut and joined (the module's invariant then still holds); the grown
/// mapping counts as joined. `false` when no such mapping is cached.
fn absorb_cached(at: *mut u8, need: usize, size: usize) -> bool {
    if !huge_page_aligned(at, need) || size % HUGE_PAGE != 0 {
        return false;
    }
    let mut cache = CACHE.lock();
    let Some(i) = (0..cache.count).find(|&i| cache.entries[i].mapping == at) else {
        return false;
    };
    let e = cache.entries[i];
    if e.size < need || !huge_page_aligned(e.mapping, e.size) {
        return false;
    }
    cache.take_head(i, need);
    true
}

/// Returns a backed piece taken by [`join_cached`] to the cache.
fn put_back_dirty(mapping: *mut u8, size: usize, joined: bool) {
    put_back(CacheEntry {
        mapping,
        size,
        freed_at: Os::now_millis(),
        purged: false,
        purged_at: 0,
        joined,
    });
}

/// Moves the pages of `[src, src+size)` to `dest` with `mremap` (no
/// copy); a `joined` range (several kernel mappings) one huge page at a
/// time, as a move across kernel mappings is refused (before Linux 6.17)
/// or may stop part-way. Returns how many bytes moved (a prefix of the
/// range; the rest stays at `src`). With `copy_rest`, what could not be
/// moved is copied and unmapped, so all of it moves.
///
/// # Safety
/// `[src, src+size)` must be ours, unused by anyone else, and one kernel
/// mapping or (`joined`) laid out as the module's invariant says;
/// `[dest, dest+size)` a reservation of ours that holds nothing.
unsafe fn move_pages(src: *mut u8, size: usize, dest: *mut u8, joined: bool, copy_rest: bool) -> usize {
    let step = if joined { HUGE_PAGE } else { size };
    let mut done = 0;
    while done < size {
        let len = step.min(size - done);
        // SAFETY: the caller's contract: `len` bytes from `done` lie in one
        // kernel mapping (the whole range, or one of its huge pages).
        if !unsafe { Os::remap_to(src.add(done), len, len, dest.add(done)) } {
            break;
        }
        done += len;
    }
    if done < size && copy_rest {
        let rest = size - done;
        // SAFETY: both ranges are ours; the source part is mapped and
        // unused by anyone else, the destination part reserved.
        unsafe {
            ptr::copy_nonoverlapping(src.add(done), dest.add(done), rest);
            Os::unmap(src.add(done), rest);
        }
        done = size;
    }
    done
}

/// Grows the mapping `[header, header+old)` to `new` bytes where it lies,
/// when the address space after it is free. `mremap` resizes one kernel
/// mapping: of a `joined` one, its last huge page is grown (it lies in the
/// last kernel mapping).
///
/// # Safety
/// `[header, header+old)` must be a huge mapping of ours, `joined` as its
/// header says.
unsafe fn grow_in_place(header: *mut u8, old: usize, new: usize, joined: bool) -> bool {
    if !joined {
        // SAFETY: the caller's contract: one kernel mapping.
        return unsafe { Os::remap_in_place(header, old, new) };
    }
    let last = header.wrapping_add(old - HUGE_PAGE);
    // SAFETY: the last huge page of our joined mapping lies in one kernel
    // mapping (the module's invariant); it ends where the mapping ends.
    unsafe { Os::remap_in_place(last, HUGE_PAGE, HUGE_PAGE + (new - old)) }
}

/// Returns an entry taken from the cache (when it could not be used).
fn put_back(e: CacheEntry) {
    let mut cache = CACHE.lock();
    if cache.insert(e) {
        return;
    }
    drop(cache);
    // SAFETY: a mapping of ours that nothing refers to.
    unsafe { Os::unmap(e.mapping, e.size) };
    stats::os_unmapped(e.size);
}

/// Puts a freed mapping in the cache; `false` when it does not take it.
fn cache_put(mapping: *mut u8, size: usize, block_offset: usize, joined: bool) -> bool {
    if block_offset != SLICE_SIZE || crate::secure::ENABLED || size > CACHE_BYTES / 2 {
        return false;
    }
    let now = Os::now_millis();
    let mut cache = CACHE.lock();
    // Make room: drop the oldest entries.
    while cache.count == CACHE_SLOTS || cache.bytes + size > CACHE_BYTES {
        let Some(oldest) = (0..cache.count).min_by_key(|&i| cache.entries[i].freed_at) else {
            return false;
        };
        let e = cache.remove(oldest);
        drop(cache);
        // SAFETY: a cached mapping we just removed: nothing refers to it.
        unsafe { Os::unmap(e.mapping, e.size) };
        stats::os_unmapped(e.size);
        cache = CACHE.lock();
    }
    // `insert` counts the entry in CACHE_DIRTY under the lock, as every
    // take subtracts it: counted after the lock was dropped, a take in
    // between sent the gauge below zero (an overflow panic in debug builds,
    // seen in huge_cache_join's threaded test).
    let inserted = cache.insert(CacheEntry {
        mapping,
        size,
        freed_at: now,
        purged: false,
        purged_at: 0,
        joined,
    });
    debug_assert!(inserted, "room was made above");
    drop(cache);
    let dirty = cache_dirty_bytes();
    crate::arena::schedule_purge(now + crate::purge::delay_ms());
    crate::purge::note_dirty(dirty + crate::arena::dirty_free_bytes());
    true
}
/// Purges cached mappings whose delay has passed (all with `force`) and
/// unmaps those kept long enough (all with `force`). Returns bytes purged.
pub fn cache_purge(now: u64, force: bool) -> usize {
    let delay = crate::purge::delay_ms();
    let mut purged = 0;
    let mut i = 0;
    let mut cache = CACHE.lock();
    while i < cache.count {
        let e = cache.entries[i];
        let old = now.saturating_sub(e.freed_at);
        if force || (e.purged && old >= CACHE_KEEP_MS.max(delay)) {
            cache.remove(i);
            drop(cache);
            // SAFETY: removed from the cache: nothing refers to it.
            unsafe { Os::unmap(e.mapping, e.size) };
            stats::os_unmapped(e.size);
            cache = CACHE.lock();
            continue;
        }
        if !e.purged && old >= delay {
            // Take it out while purging, then put it back purged.
            cache.remove(i);
            drop(cache);
            // SAFETY: a cached mapping, unused by anyone.
            unsafe { Os::purge(e.mapping, e.size, true) };
            stats::purged(e.size);
            purged += e.size;
            cache = CACHE.lock();
            let n = cache.count;
            if n < CACHE_SLOTS {
                cache.entries[n] = CacheEntry {
                    purged: true,
                    purged_at: now,
                    ..e
                };
                cache.count += 1;
                cache.bytes += e.size;
            } else {
                drop(cache);
                // SAFETY: as above.
                unsafe { Os::unmap(e.mapping, e.size) };
                stats::os_unmapped(e.size);
                cache = CACHE.lock();
            }
            continue;
        }
        if !e.purged {
            crate::arena::schedule_purge(e.freed_at + delay);
        } else {
            crate::arena::schedule_purge(e.freed_at + CACHE_KEEP_MS.max(delay));
        }
        i += 1;
    }
    purged
}

/// Maps fresh memory; when the system refuses (an address-space limit, say),
/// gives the cached huge mappings back and tries once more.
pub fn map_or_flush(size: usize, align: usize) -> Option<core::ptr::NonNull<u8>> {
    Os::map(size, align).or_else(|| if cache_flush() > 0 { Os::map(size, align) } else { None })
}

/// Unmaps every cached mapping; returns how many there were.
pub fn cache_flush() -> usize {
    let mut n = 0;
    loop {
        let mut cache = CACHE.lock();
        if cache.count == 0 {
            return n;
        }
        let e = cache.remove(0);
        drop(cache);
        // SAFETY: removed from the cache: nothing refers to it.
        unsafe { Os::unmap(e.mapping, e.size) };
        stats::os_unmapped(e.size);
        n += 1;
    }
}

/// The chunk header of a huge page.
fn header_of(page: *mut Page) -> *mut Chunk {
    chunk::chunk_of_page(page)
}

/// Frees a huge block.
///
/// # Safety
/// `page` must be the descriptor of a live huge block, not used afterwards.
pub unsafe fn free_huge(page: *mut Page) {
    let chunk = header_of(page);
    // SAFETY: caller's contract: the header is valid until we unmap it.
    let (mapping, size, joined, block_bytes) = unsafe {
        (
            (*chunk).mapping,
            (*chunk).mapping_size,
            (*chunk).joined,
            (*page).block_size.get(),
        )
    };
    let offset = block_of(page) as usize - mapping as usize;
    map_mapping(mapping as usize, size, block_of(page) as usize, false);
    stats::huge_freed(block_bytes);
    note_fill(block_of(page) as usize, block_bytes);
    // SAFETY: the header is ours until the mapping is cached or unmapped.
    unsafe { (*page).set_kind(PageKind::Unused) };
    if cache_put(mapping, size, offset, joined) {
        return;
    }
    // SAFETY: the whole mapping is ours, and nothing refers to it any more.
    unsafe { Os::unmap(mapping, size) };
    stats::os_unmapped(size);
}

fn block_of(page: *mut Page) -> *mut u8 {
    // SAFETY: callers pass valid huge descriptors.
    unsafe { (*page).start.get() }
}

/// Resizes a huge block to at least `new_size` bytes without copying, when
/// possible: a smaller mapping unmaps its tail, a bigger one takes cached
/// mappings or free address space right after it, and otherwise (only
/// with `may_move`) the mapping moves whole (`mremap`). Returns the block
/// (moved only with `may_move`), or null when the caller must allocate,
/// copy and free instead; the block is unchanged then.
///
/// # Safety
/// `page` must be the descriptor of a live huge block owned by the caller.
pub unsafe fn realloc_huge(page: *mut Page, new_size: usize, may_move: bool) -> *mut u8 {
    // SAFETY: caller's contract: our live descriptor.
    note_growth(unsafe { &*page }, new_size);
    if crate::secure::ENABLED {
        // The guard page would have to move too: let the caller move the block.
        return ptr::null_mut();
    }
    let page_size = Os::page_size();
    let chunk = header_of(page);
    let block = block_of(page);
    // SAFETY: caller's contract.
    let (header, old_total, joined, old_block) = unsafe {
        (
            (*chunk).mapping,
            (*chunk).mapping_size,
            (*chunk).joined,
            (*page).block_size.get(),
        )
    };
    let offset = block as usize - header as usize;
    let Some(new_block) = new_size.checked_next_multiple_of(page_size) else {
        return ptr::null_mut();
    };
    let Some(mut new_total) = mapping_size(offset, new_block, 0) else {
        return ptr::null_mut();
    };
    if joined {
        // Even if huge pages were turned off since (the module's invariant).
        let Some(rounded) = new_total.checked_next_multiple_of(HUGE_PAGE) else {
            return ptr::null_mut();
        };
        new_total = rounded;
    }
    if new_total > isize::MAX as usize {
        return ptr::null_mut();
    }
    if new_total == old_total {
        // The mapping already holds the new size (its rounding to huge pages).
        // SAFETY: caller's contract: our live descriptor.
        unsafe { (*page).block_size.set(new_block) };
        stats::huge_resized(old_block, new_block);
        return block;
    }
    if new_total > old_total && !stats::may_map(new_total - old_total) {
        return ptr::null_mut();
    }
    let update = |header: *mut u8| {
        let chunk = header.cast::<Chunk>();
        // SAFETY: the header moved with the mapping and is valid; the page
        // descriptor sits at the same offset inside it.
        unsafe {
            (*chunk).mapping = header;
            (*chunk).mapping_size = new_total;
            let page = (*chunk).slice_page(huge_descriptor_slice(header as usize + offset));
            page.block_size.set(new_block);
            page.start.set(header.wrapping_add(offset));
        }
        map_mapping(header as usize, new_total, header as usize + offset, true);
        if new_total > old_total {
            stats::os_mapped(new_total - old_total);
            if advise_wanted() {
                // The growth took the advice of the mapping it extends,
                // which may predate the first filled block.
                // SAFETY: our live mapping, just resized to `new_total`.
                unsafe { Os::advise_huge_pages(header, new_total, true) };
            }
        } else {
            stats::os_unmapped(old_total - new_total);
        }
        stats::huge_resized(old_block, new_block);
        header.wrapping_add(offset)
    };
    if new_total < old_total {
        map_mapping(header as usize, old_total, block as usize, false);
        // SAFETY: the tail beyond the new size is ours and unused.
        unsafe { Os::unmap(header.wrapping_add(new_total), old_total - new_total) };
        return update(header);
    }
    if absorb_cached(header.wrapping_add(old_total), new_total - old_total, old_total) {
        // The growth was already mapped (and counted), as cached pages.
        stats::os_unmapped(new_total - old_total);
        // SAFETY: caller's contract: the header of our live block.
        unsafe { (*chunk).joined = true };
        return update(header);
    }
    // SAFETY: `header..+old_total` is the whole mapping, `joined` as its
    // header says.
    if unsafe { grow_in_place(header, old_total, new_total, joined) } {
        return update(header);
    }
    // Over-aligned blocks would lose their alignment when moved.
    if !may_move || offset == CHUNK_SIZE {
        return ptr::null_mut();
    }
    // A first-class heap's list links the descriptor, which would move.
    // SAFETY: caller's contract.
    if !unsafe { (*page).heap.load(core::sync::atomic::Ordering::Relaxed) }.is_null() {
        return ptr::null_mut();
    }
    let Some(dest) = Os::map(new_total, CHUNK_SIZE) else {
        return ptr::null_mut();
    };
    map_mapping(header as usize, old_total, block as usize, false);
    // The block's profiling sample moves first: until the remap, both
    // addresses are ours (nothing else can be freed or sampled at either).
    let moved = dest.as_ptr().wrapping_add(offset);
    // SAFETY: caller's contract: our live descriptor (not moved yet).
    let p = unsafe { &*page };
    crate::profile::on_moved(p, block, moved);
    if joined {
        // Moved in parts (copying what cannot move), so it cannot fail.
        // SAFETY: the whole mapping, laid out as the module says; `dest`
        // a fresh reservation of ours of `new_total` bytes.
        unsafe { move_pages(header, old_total, dest.as_ptr(), true, true) };
        return update(dest.as_ptr());
    }
    // SAFETY: `dest` is a fresh reservation of ours of `new_total` bytes.
    if unsafe { Os::remap_to(header, old_total, new_total, dest.as_ptr()) } {
        return update(dest.as_ptr());
    }
    // Could not move: undo.
    crate::profile::on_moved(p, moved, block);
    map_mapping(header as usize, old_total, block as usize, true);
    // SAFETY: the unused reservation.
    unsafe { Os::unmap(dest.as_ptr(), new_total) };
    ptr::null_mut()
}
