//! A fresh page of small blocks is carved one OS page at a time at first
//! (`Page::extend`): carving 16 KiB at once made every size class a
//! program touched cost 16 KiB of resident memory, although most classes
//! of most programs hold a few blocks (docs/PERFORMANCE.md E44). Seen with
//! `mincore`, on the pages of a new heap in a process with huge pages off;
//! one test per process, so that no other test's blocks share its pages.

#![cfg(not(feature = "secure"))]

mod resident;

use resident::{resident, without_huge_pages};
use std::alloc::Layout;

#[test]
fn a_fresh_page_carves_one_os_page_then_doubles() {
    without_huge_pages();
    let heap = oxmalloc::Heap::new().expect("a heap");
    let size = 64;
    let layout = Layout::from_size_align(size, 8).unwrap();
    let first = heap.alloc(layout) as usize;
    assert!(
        first != 0 && first % 4096 == 0,
        "first block {first:#x} does not start its page"
    );
    assert!(resident(first), "the first block is not resident");
    assert!(
        !resident(first + 4096),
        "one malloc of {size} B made a second OS page resident"
    );
    // One OS page holds 64 blocks; the 65th starts the second OS page,
    // carved alone too.
    let mut blocks = vec![first as *mut u8];
    blocks.extend((1..65).map(|_| heap.alloc(layout)));
    assert_eq!(
        blocks[64] as usize,
        first + 4096,
        "blocks not handed out in address order"
    );
    assert!(resident(first + 4096));
    assert!(!resident(first + 2 * 4096), "the second carve went past one OS page");
    // A page in use then carves as much as it has carved (8 KiB here), and
    // the steps never pass 16 KiB.
    blocks.extend((65..129).map(|_| heap.alloc(layout)));
    assert!(resident(first + 3 * 4096), "the third carve did not double");
    assert!(!resident(first + 4 * 4096), "the third carve went past 8 KiB");
    for &b in &blocks {
        assert!(!b.is_null());
        // SAFETY: allocated from `heap` with `layout`, freed once.
        unsafe { heap.dealloc(b, layout) };
    }
    heap.delete();
}
