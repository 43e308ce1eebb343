//! An alternative pointer-to-page lookup, for measurement (cargo feature
//! `page-map`): a two-level map from every 64 KiB slice of the address
//! space to its span's descriptor, as mimalloc v3 and snmalloc do.
//!
//! The default build finds a descriptor by masking the pointer to its
//! 4 MiB chunk and indexing the header by slice (no memory access), with a
//! one-byte-per-chunk map to recognise foreign pointers (`chunk.rs`). This
//! map costs two dependent loads per lookup and a write per slice when a
//! span is handed out or freed, but needs no forwarders for multi-slice
//! spans. `docs/PERFORMANCE.md` records how the two compare; the build with
//! this feature swaps `chunk::page_of_trusted` and `chunk::page_of_checked`
//! for the functions below.

use crate::chunk::SLICE_SHIFT;
use crate::os::{Os, Platform};
use crate::page::Page;
use crate::sync::atomic::{AtomicPtr, Ordering};
use core::ptr;

/// Address bits below the first level's index.
const L2_SHIFT: usize = 32;
/// Entries per second-level table (one per slice of 4 GiB).
const L2_ENTRIES: usize = 1 << (L2_SHIFT - SLICE_SHIFT);
/// First-level entries (47-bit user address space).
const L1_ENTRIES: usize = 1 << (47 - L2_SHIFT);

type Leaf = [AtomicPtr<Page>; L2_ENTRIES];

static ROOT: [AtomicPtr<Leaf>; L1_ENTRIES] = [const { AtomicPtr::new(ptr::null_mut()) }; L1_ENTRIES];

/// The leaf for `addr`, mapped on first use (null when out of memory).
fn leaf_for(addr: usize) -> *mut Leaf {
    let slot = &ROOT[(addr >> L2_SHIFT) % L1_ENTRIES];
    let leaf = slot.load(Ordering::Acquire);
    if !leaf.is_null() {
        return leaf;
    }
    let bytes = core::mem::size_of::<Leaf>();
    let Some(mem) = Os::map(bytes, Os::page_size()) else {
        return ptr::null_mut();
    };
    let fresh = mem.as_ptr().cast::<Leaf>();
    match slot.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            crate::stats::os_mapped(bytes);
            fresh
        }
        Err(winner) => {
            // SAFETY: our unused mapping lost the race.
            unsafe { Os::unmap(mem.as_ptr(), bytes) };
            winner
        }
    }
}

/// Points every slice of `[start, start + bytes)` at `page` (null: unmaps them).
pub fn set(start: usize, bytes: usize, page: *mut Page) {
    let mut addr = start;
    while addr < start + bytes {
        let leaf = leaf_for(addr);
        if leaf.is_null() {
            crate::fatal::fatal_syscall("mmap (page map)", addr, bytes, crate::os::Os::errno());
        }
        // SAFETY: a mapped leaf; the index is in range.
        unsafe { (*leaf)[(addr >> SLICE_SHIFT) % L2_ENTRIES].store(page, Ordering::Release) };
        addr += 1 << SLICE_SHIFT;
    }
}

/// The descriptor for a pointer known to be a live block of ours.
#[inline(always)]
pub fn lookup_trusted(addr: usize) -> *mut Page {
    // SAFETY: a live block's slice was registered, so its leaf exists.
    unsafe {
        let leaf = ROOT.get_unchecked(addr >> L2_SHIFT).load(Ordering::Relaxed);
        (*leaf)
            .get_unchecked((addr >> SLICE_SHIFT) % L2_ENTRIES)
            .load(Ordering::Relaxed)
    }
}

/// The descriptor for any pointer, or `None`.
#[inline]
pub fn lookup(addr: usize) -> Option<*mut Page> {
    let root = ROOT.get(addr >> L2_SHIFT)?;
    let leaf = root.load(Ordering::Acquire);
    if leaf.is_null() {
        return None;
    }
    // SAFETY: a mapped leaf; the index is in range.
    let page = unsafe { (*leaf)[(addr >> SLICE_SHIFT) % L2_ENTRIES].load(Ordering::Acquire) };
    (!page.is_null()).then_some(page)
}
