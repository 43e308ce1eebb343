//! Chunks: the 4 MiB aligned regions that all of oxmalloc's memory lives in,
//! and the chunk map that tells, for any address, whether it is ours.
//!
//! A regular chunk is [`SLICES_PER_CHUNK`] slices of 64 KiB. Slice 0 holds
//! the [`Chunk`] header: one [`Page`] descriptor per slice, and the arena's
//! bookkeeping. Slices 1.. are handed out in *spans* of one or more slices:
//! a span holds either a page of same-size blocks or one large block.
//!
//! A huge block has a mapping of its own, which also starts with a `Chunk`
//! header (only one page descriptor is used).
//!
//! Pointer to page is O(1): the header sits at the pointer rounded down to
//! the chunk size, and the descriptor is indexed by the slice number. The
//! *chunk map*, one byte per 4 MiB of address space, says whether that
//! rounding is valid, so a pointer that oxmalloc never handed out is
//! recognised before anything is read through it.

use crate::page::Page;
use crate::sync::atomic::{AtomicU8, Ordering};

/// log2 of the slice size.
pub const SLICE_SHIFT: usize = 16;
/// Bytes in a slice: the unit of page allocation (64 KiB).
pub const SLICE_SIZE: usize = 1 << SLICE_SHIFT;
/// log2 of the chunk size.
pub const CHUNK_SHIFT: usize = 22;
/// Bytes in a chunk (4 MiB); chunks are aligned to their size.
pub const CHUNK_SIZE: usize = 1 << CHUNK_SHIFT;
/// Slices in a chunk, the first one being the header.
pub const SLICES_PER_CHUNK: usize = CHUNK_SIZE / SLICE_SIZE;
/// The largest span a regular chunk can hold (all slices but the header).
pub const MAX_SPAN_SLICES: usize = SLICES_PER_CHUNK - 1;

/// What a chunk holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ChunkKind {
    /// Slices handed out as spans by the arena.
    Regular = 1,
    /// One huge block in a mapping of its own.
    Huge = 2,
}

/// The header at the start of every chunk: the arena's bookkeeping, then
/// one [`Page`] descriptor for each slice but slice 0.
///
/// Slice 0 is the header itself and never holds blocks, so its descriptor
/// slot holds the bookkeeping instead, and every other per-slice field the
/// arena keeps (`Page::freed_at`) sits in the slice's own descriptor. The
/// header is then exactly the descriptors' 16 KiB, four OS pages: with the
/// bookkeeping after the descriptors it reached into a fifth, resident in
/// every chunk (docs/PERFORMANCE.md E97). The descriptor of slice `i` stays
/// at `chunk + i * size_of::<Page>()`, so a free finds it by the same
/// arithmetic.
///
/// Invariants: the descriptor of slice `i` (`1 <= i < SLICES_PER_CHUNK`,
/// [`Chunk::page`]) describes slice `i`; for a span starting at slice `s`,
/// the descriptor of `s` is the span's and those of `s+1..` are forwarders
/// to it. The arena fields are only touched with the arena lock held.
#[repr(C)]
pub struct Chunk {
    /// What the chunk holds.
    pub kind: ChunkKind,
    /// Whether the chunk is on the list of chunks with free slices. Arena lock.
    pub in_avail: bool,
    /// Huge chunks: the mapping spans several kernel mappings, joined from
    /// cached ones (`huge.rs` states how they are laid out).
    pub joined: bool,
    /// Bit `i` set: slice `i` is free (never slice 0). Arena lock.
    pub free_mask: u64,
    /// Bit `i` set: free slice `i` holds physical memory that a purge would
    /// return (touched since it was mapped or last purged). Arena lock.
    pub dirty_mask: u64,
    /// Bit `i` set: slice `i` may hold non-zero bytes (`MADV_FREE` purges
    /// clear `dirty_mask` but not this). Arena lock.
    pub nonzero_mask: u64,
    /// Bit `i` set: slice `i` is being purged outside the lock. Arena lock.
    pub purging_mask: u64,
    /// Next chunk in the arena's list of all chunks. Arena lock.
    pub next: *mut Chunk,
    /// Links in the arena's list of chunks with free slices. Arena lock.
    pub avail_next: *mut Chunk,
    /// See `avail_next`.
    pub avail_prev: *mut Chunk,
    /// Huge chunks: start and length of the whole mapping.
    pub mapping: *mut u8,
    /// Huge chunks: length of the whole mapping in bytes.
    pub mapping_size: usize,
    /// The rest of slice 0's descriptor slot (`repr(C)` then puts `pages`,
    /// aligned to 128, at the next multiple of 128: the assertions below
    /// check that this is the slot's end).
    _slot_rest: [u8; 128],
    /// The descriptors of slices 1.. (`pages[i - 1]` describes slice `i`).
    pages: [Page; SLICES_PER_CHUNK - 1],
}

/// Bytes of the header that are touched (the rest of slice 0 is never used).
pub const HEADER_SIZE: usize = core::mem::size_of::<Chunk>();
const _: () = assert!(HEADER_SIZE <= SLICE_SIZE);
const _: () = assert!(core::mem::size_of::<Page>().is_power_of_two());
// The bookkeeping fills slice 0's descriptor slot, and nothing follows the
// descriptors: the header is as large as the descriptors of all slices.
const _: () = assert!(core::mem::offset_of!(Chunk, pages) == core::mem::size_of::<Page>());
const _: () = assert!(HEADER_SIZE == SLICES_PER_CHUNK * core::mem::size_of::<Page>());

impl Chunk {
    /// The descriptor of slice `slice` (`1 <= slice < SLICES_PER_CHUNK`)
    /// of the chunk whose header is at `chunk`: `chunk + slice *
    /// size_of::<Page>()`. Reads nothing.
    #[inline(always)]
    pub fn page(chunk: *mut Chunk, slice: usize) -> *mut Page {
        debug_assert!((1..SLICES_PER_CHUNK).contains(&slice), "slice 0 has no descriptor");
        chunk
            .cast::<u8>()
            .wrapping_add(slice * core::mem::size_of::<Page>())
            .cast()
    }

    /// The descriptor of slice `slice` (`1 <= slice < SLICES_PER_CHUNK`),
    /// through a reference to the header.
    #[inline]
    pub fn slice_page(&self, slice: usize) -> &Page {
        &self.pages[slice - 1]
    }
}

/// The chunk-size-aligned base of the chunk containing `addr`.
#[inline(always)]
pub fn chunk_base(addr: usize) -> usize {
    addr & !(CHUNK_SIZE - 1)
}

/// The slice index of `addr` within its chunk.
#[inline(always)]
pub fn slice_index(addr: usize) -> usize {
    (addr >> SLICE_SHIFT) & (SLICES_PER_CHUNK - 1)
}

/// Address of the page descriptor for `ptr`, given that `ptr` lies in a
/// chunk whose header is at the rounded-down address (chunk map entry
/// [`MAP_HEADER_HERE`]). Pure arithmetic: reads nothing.
#[inline(always)]
pub fn page_of_trusted(ptr: *mut u8) -> *mut Page {
    #[cfg(feature = "page-map")]
    {
        crate::page_map::lookup_trusted(ptr as usize)
    }
    #[cfg(not(feature = "page-map"))]
    page_of_trusted_by_mask(ptr)
}

/// [`page_of_trusted`] by arithmetic (the default build).
#[cfg_attr(feature = "page-map", allow(dead_code))]
#[inline(always)]
fn page_of_trusted_by_mask(ptr: *mut u8) -> *mut Page {
    let addr = ptr as usize;
    let offset = slice_index(addr) * core::mem::size_of::<Page>();
    // Keeps the provenance of `ptr` (the chunk's mapping) while moving to the header.
    ptr.map_addr(|_| chunk_base(addr) + offset).cast()
}

// ---------------------------------------------------------------------------
// The chunk map
// ---------------------------------------------------------------------------

/// Chunk map entry: this chunk-sized region holds no memory of ours.
pub const MAP_NONE: u8 = 0;
/// The region's header is at its own base (a regular chunk, or the first
/// region of a huge mapping).
pub const MAP_HEADER_HERE: u8 = 1;
/// The region starts a huge block whose header is one chunk lower (huge
/// blocks aligned to the chunk size or more).
pub const MAP_HEADER_BELOW: u8 = 2;
/// The region is the inside of a huge block: no block starts here.
pub const MAP_INTERIOR: u8 = 3;

/// Bits of user address space covered by the map.
#[cfg(target_arch = "x86_64")]
const ADDRESS_BITS: usize = 47;
#[cfg(not(target_arch = "x86_64"))]
const ADDRESS_BITS: usize = 48;
const MAP_ENTRIES: usize = 1 << (ADDRESS_BITS - CHUNK_SHIFT);

/// One byte per chunk-sized region of the address space (32 MiB of
/// zero-initialised, untouched-until-used memory on x86-64).
static CHUNK_MAP: [AtomicU8; MAP_ENTRIES] = [const { AtomicU8::new(MAP_NONE) }; MAP_ENTRIES];

/// The chunk map entry for `addr` ([`MAP_NONE`] for addresses beyond the map).
#[cfg_attr(feature = "page-map", allow(dead_code))]
#[inline(always)]
pub fn map_entry(addr: usize) -> u8 {
    let index = addr >> CHUNK_SHIFT;
    if index >= MAP_ENTRIES {
        return MAP_NONE;
    }
    CHUNK_MAP[index].load(Ordering::Relaxed)
}

/// Records `entry` for the `count` chunk-sized regions starting at `base`.
pub fn map_set(base: usize, count: usize, entry: u8) {
    let first = (base >> CHUNK_SHIFT).min(MAP_ENTRIES);
    let end = (first + count).min(MAP_ENTRIES);
    for slot in &CHUNK_MAP[first..end] {
        slot.store(entry, Ordering::Release);
    }
}

/// The page descriptor for an arbitrary pointer, or `None` when the pointer
/// is not inside memory that oxmalloc manages. For huge blocks aligned to the
/// chunk size or more, it finds the header one chunk below.
#[inline]
pub fn page_of_checked(ptr: *mut u8) -> Option<*mut Page> {
    #[cfg(feature = "page-map")]
    {
        crate::page_map::lookup(ptr as usize)
    }
    #[cfg(not(feature = "page-map"))]
    page_of_checked_by_map(ptr)
}

/// [`page_of_checked`] through the chunk map (the default build).
#[cfg_attr(feature = "page-map", allow(dead_code))]
#[inline]
fn page_of_checked_by_map(ptr: *mut u8) -> Option<*mut Page> {
    let addr = ptr as usize;
    let entry = map_entry(addr);
    match entry {
        MAP_HEADER_HERE => Some(page_of_trusted_by_mask(ptr)),
        MAP_HEADER_BELOW => {
            let header = chunk_base(addr) - CHUNK_SIZE;
            Some(
                ptr.map_addr(|_| header + huge_descriptor_slice(addr) * core::mem::size_of::<Page>())
                    .cast(),
            )
        }
        _ => None,
    }
}

/// The slice whose descriptor, in the header of a huge mapping, describes
/// the huge block at `block` (the chunk map's lookup, [`page_of_checked`],
/// asks the same of any address in the mapping): the slice `block` lies
/// in, but slice 1 for a block aligned to the chunk size. Such a block starts one chunk
/// above its header, at slice 0 of its own chunk-sized region, and slice
/// 0's descriptor slot holds the header's bookkeeping ([`Chunk`]).
#[inline]
pub fn huge_descriptor_slice(block: usize) -> usize {
    slice_index(block).max(1)
}

/// The chunk header owning a page descriptor.
#[inline(always)]
pub fn chunk_of_page(page: *mut Page) -> *mut Chunk {
    page.map_addr(chunk_base).cast()
}

/// The slice number of a page descriptor within its chunk header.
#[inline(always)]
pub fn slice_of_page(page: *const Page) -> usize {
    (page as usize - chunk_base(page as usize)) / core::mem::size_of::<Page>()
}

/// The address of slice `slice` of the chunk whose header is `chunk`.
#[inline(always)]
pub fn slice_address(chunk: *mut Chunk, slice: usize) -> *mut u8 {
    chunk.cast::<u8>().wrapping_add(slice << SLICE_SHIFT)
}
