//! The half-step classes (272, 304, ..., 992 B: `size_class::is_half_step`)
//! are served from the current page of their parent, the class a step
//! above, until a slow path finds a page of the parent more than half
//! used; from then on they have pages of their own (`Heap::take_block`,
//! docs/PERFORMANCE.md E100). Checked through a first-class heap
//! (`alloc_class`'s path) and through a new thread's default heap (the
//! direct table's).
//!
//! Hardened builds report requested sizes as usable, which would hide
//! which page served a block.

#![cfg(not(feature = "secure"))]

use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// A slice: the span of a page of blocks up to 8 KiB.
const SLICE: usize = 64 << 10;
/// A half-step class's size, and its parent's.
const HALF_STEP: usize = 272;
const PARENT: usize = 288;

fn slice_of(p: *mut u8) -> usize {
    p as usize & !(SLICE - 1)
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

#[test]
fn the_sizes_are_a_half_step_class_and_its_parent() {
    assert_eq!(oxmalloc::good_size(HALF_STEP - 10, 8), Some(PARENT));
    assert_eq!(oxmalloc::good_size(HALF_STEP, 8), Some(PARENT));
    assert_eq!(oxmalloc::good_size(HALF_STEP + 1, 8), Some(PARENT));
    assert_eq!(
        oxmalloc::good_size(PARENT + 1, 8),
        Some(PARENT + 32),
        "the next half-step's parent"
    );
}

#[test]
fn a_half_step_class_borrows_its_parent_s_page_until_that_page_is_crowded() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let first = heap.alloc(layout(HALF_STEP));
    assert!(!first.is_null());
    assert_eq!(
        oxmalloc::usable_size(first),
        PARENT,
        "the first block comes from a page of the parent"
    );
    let zeroed = heap.alloc_zeroed(layout(HALF_STEP));
    assert!(!zeroed.is_null());
    assert_eq!(oxmalloc::usable_size(zeroed), PARENT, "a zeroed block too");
    assert_eq!(slice_of(zeroed), slice_of(first));
    // SAFETY: a live block of `HALF_STEP` bytes.
    assert!(unsafe { std::slice::from_raw_parts(zeroed, HALF_STEP) }
        .iter()
        .all(|&b| b == 0));

    // Blocks of the parent class itself, on the same page: up to 100 of
    // its 227 blocks, the half-step class still borrows; past three
    // quarters (the slow path saw it more than half used when it opened
    // the carve window at 168), it has a page of its own.
    let per_page = SLICE / PARENT;
    // Every block on the page but `first`, with its size.
    let mut others = vec![(zeroed, HALF_STEP)];
    let fill_to = |others: &mut Vec<(*mut u8, usize)>, blocks: usize| {
        while others.len() + 1 < blocks {
            let p = heap.alloc(layout(PARENT));
            assert_eq!(slice_of(p), slice_of(first), "the parent took another page");
            others.push((p, PARENT));
        }
    };
    fill_to(&mut others, 100);
    let borrowed = heap.alloc(layout(HALF_STEP));
    assert_eq!(
        oxmalloc::usable_size(borrowed),
        PARENT,
        "a page 100/{per_page} used was crowded"
    );
    assert_eq!(slice_of(borrowed), slice_of(first));
    others.push((borrowed, HALF_STEP));
    fill_to(&mut others, per_page * 3 / 4);
    let own = heap.alloc(layout(HALF_STEP));
    assert_eq!(
        oxmalloc::usable_size(own),
        HALF_STEP,
        "no page of its own once its parent's was three quarters used"
    );
    assert_ne!(slice_of(own), slice_of(first));

    // With every block freed, the class keeps taking blocks of its own size.
    // SAFETY: each allocated from `heap` with that layout, freed once.
    unsafe {
        heap.dealloc(first, layout(HALF_STEP));
        heap.dealloc(own, layout(HALF_STEP));
        for (p, size) in others {
            heap.dealloc(p, layout(size));
        }
    }
    let again = heap.alloc(layout(HALF_STEP));
    assert_eq!(
        oxmalloc::usable_size(again),
        HALF_STEP,
        "the class went back to borrowing"
    );
    // SAFETY: allocated from `heap` with that layout.
    unsafe { heap.dealloc(again, layout(HALF_STEP)) };
}

#[test]
fn a_new_thread_s_half_step_blocks_share_its_parent_s_page() {
    std::thread::spawn(|| {
        // SAFETY: non-zero sizes; each block freed once with its layout.
        unsafe {
            let a = GLOBAL.alloc(layout(HALF_STEP));
            let b = GLOBAL.alloc(layout(PARENT));
            let c = GLOBAL.alloc(layout(HALF_STEP - 8));
            assert!(!a.is_null() && !b.is_null() && !c.is_null());
            assert_eq!(oxmalloc::usable_size(a), PARENT, "through the slow path");
            assert_eq!(oxmalloc::usable_size(c), PARENT, "through the direct table");
            assert!(
                slice_of(a) == slice_of(b) && slice_of(b) == slice_of(c),
                "the half-step class's blocks are not on its parent's page"
            );
            GLOBAL.dealloc(a, layout(HALF_STEP));
            GLOBAL.dealloc(b, layout(PARENT));
            GLOBAL.dealloc(c, layout(HALF_STEP - 8));
        }
    })
    .join()
    .expect("the thread's checks");
}

#[test]
fn a_half_step_class_that_had_a_page_of_its_own_keeps_taking_its_own() {
    std::thread::spawn(|| {
        // SAFETY: non-zero sizes; each block freed once with its layout.
        unsafe {
            let first = GLOBAL.alloc(layout(HALF_STEP));
            assert_eq!(oxmalloc::usable_size(first), PARENT);
            let mut parents = Vec::new();
            for _ in 1..SLICE / PARENT {
                parents.push(GLOBAL.alloc(layout(PARENT)));
            }
            assert!(parents.iter().all(|&p| slice_of(p) == slice_of(first)));
            let own = GLOBAL.alloc(layout(HALF_STEP));
            assert_eq!(oxmalloc::usable_size(own), HALF_STEP, "its parent's page was crowded");
            GLOBAL.dealloc(first, layout(HALF_STEP));
            GLOBAL.dealloc(own, layout(HALF_STEP));
            for p in parents {
                GLOBAL.dealloc(p, layout(PARENT));
            }
            // Every page of the thread goes back, current ones included:
            // the class has no page, and must not borrow again.
            oxmalloc::collect(true);
            let again = GLOBAL.alloc(layout(HALF_STEP));
            assert_eq!(
                oxmalloc::usable_size(again),
                HALF_STEP,
                "the class went back to borrowing"
            );
            GLOBAL.dealloc(again, layout(HALF_STEP));
        }
    })
    .join()
    .expect("the thread's checks");
}
