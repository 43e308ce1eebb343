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

use crate::chunk::{
    self, slice_index, Chunk, ChunkKind, CHUNK_SIZE, MAP_HEADER_BELOW, MAP_HEADER_HERE, MAP_INTERIOR, MAP_NONE,
    SLICE_SIZE,
};
use crate::os::{Os, Platform};
use crate::page::{Page, PageKind};
use crate::stats;
use core::ptr;

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
/// Null when the system refuses or the size overflows.
pub fn alloc_huge(size: usize, align: usize) -> *mut u8 {
    let page_size = Os::page_size();
    let offset = block_offset(align);
    let Some(block_bytes) = size.checked_next_multiple_of(page_size) else {
        return ptr::null_mut();
    };
    // The hardened build keeps an inaccessible page after the block.
    let guard = if crate::secure::ENABLED { page_size } else { 0 };
    let Some(total) = offset.checked_add(block_bytes).and_then(|t| t.checked_add(guard)) else {
        return ptr::null_mut();
    };
    if total > isize::MAX as usize || !stats::may_map(total) {
        return ptr::null_mut();
    }
    let header: *mut u8 = if offset < CHUNK_SIZE {
        match Os::map(total, CHUNK_SIZE) {
            Some(base) => base.as_ptr(),
            None => return ptr::null_mut(),
        }
    } else {
        // The block must be `align`-aligned with the header one chunk below.
        let Some(reserve) = align.checked_add(block_bytes + guard) else {
            return ptr::null_mut();
        };
        let Some(base) = Os::map(reserve, align) else {
            return ptr::null_mut();
        };
        let header = base.as_ptr().wrapping_add(align - CHUNK_SIZE);
        if align > CHUNK_SIZE {
            // SAFETY: the unused head of the reservation we just made.
            unsafe { Os::unmap(base.as_ptr(), align - CHUNK_SIZE) };
        }
        header
    };
    stats::os_mapped(total);
    stats::huge_allocated(block_bytes);
    let block = header.wrapping_add(offset);
    let chunk = header.cast::<Chunk>();
    // SAFETY: fresh zeroed memory, chunk-aligned, at least one slice long:
    // room for the header, whose all-zero descriptors are valid.
    unsafe {
        let c = &mut *chunk;
        c.kind = ChunkKind::Huge;
        c.mapping = header;
        c.mapping_size = total;
        let page = &c.pages[slice_index(block as usize)];
        page.init(PageKind::Huge, block, 0, block_bytes, 0, true);
        page.used.set(1);
    }
    map_mapping(header as usize, total, block as usize, true);
    if guard != 0 {
        // SAFETY: the last page of our fresh mapping.
        unsafe { Os::protect(block.add(block_bytes), guard, true) };
    }
    block
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
    let (mapping, size, block_bytes) = unsafe { ((*chunk).mapping, (*chunk).mapping_size, (*page).block_size.get()) };
    map_mapping(mapping as usize, size, block_of(page) as usize, false);
    // SAFETY: the whole mapping is ours, and nothing refers to it any more.
    unsafe { Os::unmap(mapping, size) };
    stats::os_unmapped(size);
    stats::huge_freed(block_bytes);
}

fn block_of(page: *mut Page) -> *mut u8 {
    // SAFETY: callers pass valid huge descriptors.
    unsafe { (*page).start.get() }
}

/// Resizes a huge block to at least `new_size` bytes without copying, when
/// possible. Returns the (possibly moved) block, or null when the caller
/// must allocate, copy and free instead.
///
/// # Safety
/// `page` must be the descriptor of a live huge block owned by the caller.
pub unsafe fn realloc_huge(page: *mut Page, new_size: usize) -> *mut u8 {
    if crate::secure::ENABLED {
        // The guard page would have to move too: let the caller move the block.
        return ptr::null_mut();
    }
    let page_size = Os::page_size();
    let chunk = header_of(page);
    let block = block_of(page);
    // SAFETY: caller's contract.
    let (header, old_total, old_block) = unsafe { ((*chunk).mapping, (*chunk).mapping_size, (*page).block_size.get()) };
    let offset = block as usize - header as usize;
    let Some(new_block) = new_size.checked_next_multiple_of(page_size) else {
        return ptr::null_mut();
    };
    let Some(new_total) = offset.checked_add(new_block) else {
        return ptr::null_mut();
    };
    if new_total > isize::MAX as usize {
        return ptr::null_mut();
    }
    if new_total == old_total {
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
            let page = &(*chunk).pages[slice_index(header as usize + offset)];
            page.block_size.set(new_block);
            page.start.set(header.wrapping_add(offset));
        }
        map_mapping(header as usize, new_total, header as usize + offset, true);
        if new_total > old_total {
            stats::os_mapped(new_total - old_total);
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
    // SAFETY: `header..+old_total` is the whole mapping.
    if unsafe { Os::remap_in_place(header, old_total, new_total) } {
        return update(header);
    }
    // SAFETY: caller's contract.
    if offset == CHUNK_SIZE || !unsafe { (*page).heap.load(core::sync::atomic::Ordering::Relaxed) }.is_null() {
        // Over-aligned blocks would lose their alignment when moved, and a
        // first-class heap's list links the descriptor, which would move.
        return ptr::null_mut();
    }
    let Some(dest) = Os::map(new_total, CHUNK_SIZE) else {
        return ptr::null_mut();
    };
    map_mapping(header as usize, old_total, block as usize, false);
    // SAFETY: `dest` is a fresh reservation of ours of `new_total` bytes.
    if unsafe { Os::remap_to(header, old_total, new_total, dest.as_ptr()) } {
        return update(dest.as_ptr());
    }
    // Could not move: undo.
    map_mapping(header as usize, old_total, block as usize, true);
    // SAFETY: the unused reservation.
    unsafe { Os::unmap(dest.as_ptr(), new_total) };
    ptr::null_mut()
}
