//! A page made on a span an earlier page left resident gives back the OS
//! pages past its carved blocks when its thread exits and abandons it
//! (`abandon::abandon`, docs/PERFORMANCE.md E114). Its owner's sweeps
//! would have given them back (`Page::sweep_tail`, E63), but a thread that
//! exits within two sweep intervals of making the page never runs them,
//! and the abandoned page kept the whole span resident, for one live block,
//! until a thread took it, if one ever did (rocksdb's short-lived
//! background threads: 60-180 KiB at its peak). One test in this binary,
//! so that no other test's threads take the page or its span.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

mod resident;
use resident::{page_size, resident, without_huge_pages};

/// Bytes in a slice: a page of blocks up to 8 KiB spans one.
const SLICE: usize = 64 * 1024;

/// The whole OS pages of `block`'s slice past the block's end.
fn past_block(block: usize, size: usize) -> impl Iterator<Item = usize> {
    let page = page_size();
    let slice_end = (block & !(SLICE - 1)) + SLICE;
    ((block + size).next_multiple_of(page)..slice_end).step_by(page)
}

#[test]
fn an_exiting_thread_gives_back_the_unused_end_of_a_page_made_on_a_used_span() {
    without_huge_pages();
    // Two classes nothing else here allocates from.
    let filler = Layout::from_size_align(1_024, 8).unwrap();
    let kept = Layout::from_size_align(5_000, 8).unwrap();
    let (block, resident_before_exit) = std::thread::spawn(move || {
        // A page of 1 KiB blocks filled and written whole, then emptied:
        // its span stays resident, and the thread's next page takes it
        // (a spare span, or the span the free left empty: E37, E77).
        // SAFETY: valid, non-zero layouts; each block is written within
        // its size, and freed once.
        let block = unsafe {
            let blocks: Vec<*mut u8> = (0..SLICE / filler.size())
                .map(|_| {
                    let b = GLOBAL.alloc(filler);
                    assert!(!b.is_null());
                    b.write_bytes(0x5a, filler.size());
                    b
                })
                .collect();
            for &b in &blocks {
                GLOBAL.dealloc(b, filler);
            }
            let block = GLOBAL.alloc(kept);
            assert!(!block.is_null());
            block.write_bytes(0xc3, kept.size());
            block as usize
        };
        let resident_now = past_block(block, kept.size()).filter(|&a| resident(a)).count();
        (block, resident_now)
    })
    .join()
    .unwrap();
    let tail: Vec<usize> = past_block(block, kept.size()).collect();
    assert!(tail.len() >= 8, "the kept block ends too late in its slice");
    // The test's precondition: the page was made where the emptied one
    // had been, resident. (Were it made on a zero span, nothing would
    // show what the exit did.)
    assert_eq!(
        resident_before_exit,
        tail.len(),
        "the kept block's page was not made on the emptied page's span"
    );
    let still = tail.iter().filter(|&&a| resident(a)).count();
    assert_eq!(
        still,
        0,
        "{still} of the {} OS pages past the abandoned page's one block stayed resident",
        tail.len()
    );
    // The block survives its thread, intact, and frees as any other.
    // SAFETY: the kept block, `kept.size()` bytes, live.
    let bytes = unsafe { std::slice::from_raw_parts(block as *const u8, kept.size()) };
    assert!(bytes.iter().all(|&b| b == 0xc3), "the abandoned page's block changed");
    // SAFETY: allocated above with `kept`, freed once.
    unsafe { GLOBAL.dealloc(block as *mut u8, kept) };
}
