//! A fresh page of small blocks hands its never-used blocks out without
//! writing to them (`Page::extend` opens a carve window, `Page::take_fresh`
//! hands it out): linking a batch onto the free list wrote up to 16 KiB of
//! cold memory inside `malloc` and faulted its OS pages in there
//! (docs/PERFORMANCE.md E79), and carving 16 KiB at once made every size
//! class a program touched cost 16 KiB of resident memory (E44). Seen with
//! `mincore`, on the pages of a new heap in a process with huge pages off;
//! one test per process, so that no other test's blocks share its pages.

#![cfg(not(feature = "secure"))]

mod resident;

use resident::{resident, without_huge_pages};
use std::alloc::Layout;

#[test]
fn a_fresh_page_hands_out_blocks_in_order_without_touching_them() {
    without_huge_pages();
    let heap = oxmalloc::Heap::new().expect("a heap");
    let size = 64;
    let layout = Layout::from_size_align(size, 8).unwrap();
    let first = heap.alloc(layout) as usize;
    assert!(
        first != 0 && first % 4096 == 0,
        "first block {first:#x} does not start its page"
    );
    assert!(!resident(first), "malloc wrote into the block it handed out");
    // 400 blocks: 25 KiB, past the first carve steps (4, 8 and 16 KiB), so
    // several windows are opened and handed out.
    let mut blocks = vec![first as *mut u8];
    blocks.extend((1..400).map(|_| heap.alloc(layout)));
    for (i, &b) in blocks.iter().enumerate() {
        assert_eq!(
            b as usize,
            first + i * size,
            "block {i} not handed out in address order"
        );
    }
    for os_page in 0..7 {
        assert!(
            !resident(first + os_page * 4096),
            "OS page {os_page} of the blocks is resident before the program wrote to it"
        );
    }
    // The program's write is what brings a block's memory in, and only its own.
    // SAFETY: the block is ours, `size` bytes.
    unsafe { blocks[100].write_bytes(0xab, size) };
    assert!(resident(first + 100 * size));
    assert!(!resident(first), "writing block 100 made block 0's OS page resident");
    assert!(
        !resident(first + 2 * 4096),
        "writing block 100 made the next OS page resident"
    );
    // A freed block is reused before the window goes on (last freed, first out).
    // SAFETY: allocated from `heap` with `layout`, freed once.
    unsafe { heap.dealloc(blocks[100], layout) };
    let again = heap.alloc(layout);
    assert_eq!(again, blocks[100], "a freed block was not reused first");
    let next = heap.alloc(layout);
    assert_eq!(next as usize, first + 400 * size, "the window did not go on in order");
    blocks.push(next);
    for &b in &blocks {
        // SAFETY: allocated from `heap` with `layout`, freed once (block 100
        // was allocated again as `again`).
        unsafe { heap.dealloc(b, layout) };
    }
    heap.delete();
}
