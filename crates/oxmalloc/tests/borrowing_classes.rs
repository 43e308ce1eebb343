//! The classes from 64 B to 1 KiB that are not powers of two borrow
//! (`size_class::lender_of`): they are served from the current page of
//! their lender, the top class of their doubling, until one of their own
//! slow paths finds a page of the lender more than half used; from then on
//! they have pages of their own (`Heap::take_block`, docs/PERFORMANCE.md
//! E100, E116). Checked through a first-class heap (`alloc_class`'s path)
//! and through a new thread's default heap (the direct table's).
//!
//! Hardened builds report requested sizes as usable, which would hide
//! which page served a block.

#![cfg(not(feature = "secure"))]

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// A slice: the span of a page of blocks up to 8 KiB.
const SLICE: usize = 64 << 10;
/// Two classes that borrow, and their lender (the doubling (256, 512]).
const BORROWER: usize = 272;
const OTHER_BORROWER: usize = 400;
const LENDER: usize = 512;

fn slice_of(p: *mut u8) -> usize {
    p as usize & !(SLICE - 1)
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

#[test]
fn the_sizes_borrow_from_the_top_of_their_doubling() {
    for size in [BORROWER - 10, BORROWER, BORROWER + 1, OTHER_BORROWER, LENDER] {
        assert_eq!(oxmalloc::good_size(size, 8), Some(LENDER), "{size} B");
    }
    assert_eq!(
        oxmalloc::good_size(LENDER + 1, 8),
        Some(1024),
        "the next doubling's lender"
    );
    assert_eq!(oxmalloc::good_size(64, 8), Some(64), "64 B and below never borrow");
    assert_eq!(oxmalloc::good_size(1025, 8), Some(1280), "above 1 KiB nothing borrows");
}

/// Allocates `size`-byte blocks from `alloc` until one comes with a usable
/// size below the lender's (the class split); returns the borrowed blocks
/// before it, and that block.
fn until_split(mut alloc: impl FnMut() -> *mut u8) -> (Vec<*mut u8>, *mut u8) {
    let mut borrowed = Vec::new();
    for _ in 0..10 * SLICE / LENDER {
        let p = alloc();
        assert!(!p.is_null());
        if oxmalloc::usable_size(p) < LENDER {
            return (borrowed, p);
        }
        assert_eq!(oxmalloc::usable_size(p), LENDER);
        borrowed.push(p);
    }
    panic!("the class never split over {} blocks", borrowed.len());
}

#[test]
fn a_borrowing_class_takes_its_lender_s_page_until_it_meets_it_crowded() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let first = heap.alloc(layout(BORROWER));
    assert!(!first.is_null());
    assert_eq!(
        oxmalloc::usable_size(first),
        LENDER,
        "the first block comes from a page of the lender"
    );
    let zeroed = heap.alloc_zeroed(layout(BORROWER));
    assert!(!zeroed.is_null());
    assert_eq!(oxmalloc::usable_size(zeroed), LENDER, "a zeroed block too");
    assert_eq!(slice_of(zeroed), slice_of(first));
    // SAFETY: a live block of `BORROWER` bytes.
    assert!(unsafe { std::slice::from_raw_parts(zeroed, BORROWER) }
        .iter()
        .all(|&b| b == 0));
    let other = heap.alloc(layout(OTHER_BORROWER));
    assert_eq!(oxmalloc::usable_size(other), LENDER, "another class of the doubling");
    assert_eq!(slice_of(other), slice_of(first), "shares the same page");

    // The lender's own slow paths split no one: with its page filled by
    // its own blocks, and two more pages after it, the class still borrows.
    let mut lenders = Vec::new();
    while lenders.len() < 3 * SLICE / LENDER {
        let p = heap.alloc(layout(LENDER));
        assert!(!p.is_null());
        lenders.push(p);
    }
    let still = heap.alloc(layout(BORROWER));
    assert_eq!(oxmalloc::usable_size(still), LENDER, "a busy lender split its borrower");

    // Its own traffic: blocks of the lender's page until one of its own
    // slow paths finds that page more than half used.
    let (mut borrowed, own) = until_split(|| heap.alloc(layout(BORROWER)));
    assert_ne!(slice_of(own), slice_of(*borrowed.last().unwrap_or(&still)));
    let last_page = slice_of(*borrowed.last().unwrap_or(&still));
    let on_last_page = lenders
        .iter()
        .chain(&borrowed)
        .chain([&still])
        .filter(|&&p| slice_of(p) == last_page)
        .count();
    // (The page's count holds one more: the pin of the current page.)
    assert!(
        (on_last_page + 1) * 2 > SLICE / LENDER,
        "split with its lender's page {on_last_page}/{} used",
        SLICE / LENDER
    );
    // The other class of the doubling borrows on.
    let other_again = heap.alloc(layout(OTHER_BORROWER));
    assert_eq!(
        oxmalloc::usable_size(other_again),
        LENDER,
        "the split reached another class"
    );

    // With every block freed, the class keeps taking blocks of its own size.
    borrowed.extend([first, zeroed, still]);
    // SAFETY: each allocated from `heap` with that layout, freed once.
    unsafe {
        for p in borrowed {
            heap.dealloc(p, layout(BORROWER));
        }
        heap.dealloc(own, layout(BORROWER));
        heap.dealloc(other, layout(OTHER_BORROWER));
        heap.dealloc(other_again, layout(OTHER_BORROWER));
        for p in lenders {
            heap.dealloc(p, layout(LENDER));
        }
    }
    let again = heap.alloc(layout(BORROWER));
    assert!(
        oxmalloc::usable_size(again) < LENDER,
        "the class went back to borrowing"
    );
    // SAFETY: allocated from `heap` with that layout.
    unsafe { heap.dealloc(again, layout(BORROWER)) };
}

#[test]
fn a_new_thread_s_borrowed_blocks_share_its_lender_s_page() {
    std::thread::spawn(|| {
        // SAFETY: non-zero sizes; each block freed once with its layout.
        unsafe {
            let a = GLOBAL.alloc(layout(BORROWER));
            let b = GLOBAL.alloc(layout(LENDER));
            let c = GLOBAL.alloc(layout(BORROWER - 8));
            let d = GLOBAL.alloc(layout(OTHER_BORROWER));
            assert!(!a.is_null() && !b.is_null() && !c.is_null() && !d.is_null());
            assert_eq!(oxmalloc::usable_size(a), LENDER, "through the slow path");
            assert_eq!(oxmalloc::usable_size(c), LENDER, "through the direct table");
            assert_eq!(
                oxmalloc::usable_size(d),
                LENDER,
                "another class, through the direct table"
            );
            assert!(
                [b, c, d].iter().all(|&p| slice_of(p) == slice_of(a)),
                "the borrowed blocks are not on their lender's page"
            );
            GLOBAL.dealloc(a, layout(BORROWER));
            GLOBAL.dealloc(b, layout(LENDER));
            GLOBAL.dealloc(c, layout(BORROWER - 8));
            GLOBAL.dealloc(d, layout(OTHER_BORROWER));
        }
    })
    .join()
    .expect("the thread's checks");
}

#[test]
fn a_borrowing_class_that_had_a_page_of_its_own_keeps_taking_its_own() {
    std::thread::spawn(|| {
        // SAFETY: non-zero sizes; each block freed once with its layout.
        unsafe {
            let (borrowed, own) = until_split(|| GLOBAL.alloc(layout(BORROWER)));
            assert!(!borrowed.is_empty(), "the class split at its first block");
            GLOBAL.dealloc(own, layout(BORROWER));
            for p in borrowed {
                GLOBAL.dealloc(p, layout(BORROWER));
            }
            // Every page of the thread goes back, current ones included:
            // the class has no page, and must not borrow again.
            oxmalloc::collect(true);
            let again = GLOBAL.alloc(layout(BORROWER));
            assert!(
                oxmalloc::usable_size(again) < LENDER,
                "the class went back to borrowing"
            );
            GLOBAL.dealloc(again, layout(BORROWER));
        }
    })
    .join()
    .expect("the thread's checks");
}
