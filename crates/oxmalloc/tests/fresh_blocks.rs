//! Fresh blocks of 4 KiB and more leave `malloc` untouched (`page.rs`,
//! `UNTOUCHED_HANDOUT`): linking a batch of them onto a free list wrote into
//! one OS page per block, so `malloc` took the page faults the caller's first
//! writes would have taken anyway (docs/PERFORMANCE.md E24). Seen with
//! `mincore`, on blocks of a new heap in a process with huge pages off.

#![cfg(not(feature = "secure"))]

mod resident;

use resident::{resident, without_huge_pages};
use std::alloc::Layout;

#[test]
fn fresh_blocks_of_a_page_or_more_are_not_written_by_malloc() {
    without_huge_pages();
    let heap = oxmalloc::Heap::new().expect("a heap");
    // One block of each size stays live to the end, so that no class's
    // current page is empty when the next size takes a new page: it would
    // take that page's span, whose memory is written (E75).
    let mut keep = Vec::new();
    for size in [4096, 6144, 16 * 1024, 60 * 1024] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..6).map(|_| heap.alloc(layout)).collect();
        for (i, &b) in blocks.iter().enumerate() {
            assert!(!b.is_null());
            assert!(
                !resident(b as usize),
                "{size} B block {i} at {b:p}: malloc wrote into it"
            );
        }
        for &b in &blocks {
            // SAFETY: a live block of `size` bytes.
            unsafe { b.write_bytes(0xA5, size) };
            // The check can fail: the write made the page resident.
            assert!(
                resident(b as usize),
                "{size} B block at {b:p} not resident after a write"
            );
        }
        for &b in &blocks {
            // SAFETY: allocated from `heap` with `layout`, freed once.
            unsafe { heap.dealloc(b, layout) };
        }
        // Reused blocks are dirty; fresh ones read as zero without a memset.
        let zeroed: Vec<*mut u8> = (0..12).map(|_| heap.alloc_zeroed(layout)).collect();
        for &b in &zeroed {
            // SAFETY: a live block of `size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(b, size) };
            assert!(
                bytes.iter().all(|&x| x == 0),
                "{size} B alloc_zeroed block at {b:p} not zero"
            );
        }
        for &b in &zeroed {
            // SAFETY: as above.
            unsafe { heap.dealloc(b, layout) };
        }
        let kept = heap.alloc(layout);
        assert!(!kept.is_null());
        keep.push((kept, layout));
    }
    for (b, layout) in keep {
        // SAFETY: allocated from `heap` with `layout`, freed once.
        unsafe { heap.dealloc(b, layout) };
    }
    heap.delete();
}
