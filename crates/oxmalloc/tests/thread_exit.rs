//! A thread that exits hands every page it holds a live block in to the
//! others (abandons it), whichever queue of its heap the page was on, and
//! returns its emptied pages; the exit path skips only the classes it holds
//! no page of. One test in this binary, so that no other test's threads
//! move the process-wide counters it reads.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

#[test]
fn an_exiting_thread_abandons_its_pages_of_every_class_it_used() {
    // Three classes no other code here allocates from, each left with live
    // blocks: pages on the bin (room left) and, for 16 KiB, a page parked
    // as full as well.
    let sizes = [1_800usize, 16_384, 40_000];
    let before = oxmalloc::stats();
    let kept: Vec<(usize, Layout)> = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // 16 KiB: 40 blocks kept, a full page (512 KiB / 16 KiB = 32
            // blocks) and a second one; the others: one kept of three.
            let (count, keep) = if i == 1 { (40, 40) } else { (3, 1) };
            for n in 0..count {
                // SAFETY: a valid, non-zero layout.
                let b = unsafe { GLOBAL.alloc(layout) } as usize;
                assert_ne!(b, 0);
                if n < keep {
                    kept.push((b, layout));
                } else {
                    // SAFETY: allocated just above with `layout`.
                    unsafe { GLOBAL.dealloc(b as *mut u8, layout) };
                }
            }
        }
        kept
    })
    .join()
    .unwrap();
    let after = oxmalloc::stats();
    // At least the four pages above: fewer means the exit skipped a class
    // whose pages then stay with a heap that no thread owns.
    assert!(
        after.pages_abandoned - before.pages_abandoned >= 4,
        "pages abandoned: {} before, {} after",
        before.pages_abandoned,
        after.pages_abandoned
    );
    for (b, layout) in kept {
        // SAFETY: live blocks allocated with `layout`, handed over by `join`.
        unsafe { GLOBAL.dealloc(b as *mut u8, layout) };
    }
}
