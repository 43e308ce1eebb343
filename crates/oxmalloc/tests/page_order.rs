//! Which page a heap allocates from next. A page of big blocks (above
//! 1 KiB) that gets a block back from its owner's free becomes the current
//! page, whether it was parked as full or not: the next allocation of its
//! class then reuses the block freed last, whose memory the caller has
//! just touched (see docs/PERFORMANCE.md E40).
//!
//! Each case runs in a child process (`common::run_child_case`), on a new
//! thread whose heap holds nothing else, so page order depends only on
//! what the case does. The default build only: the hardened build's carve
//! order is randomised.

#![cfg(not(feature = "secure"))]

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;

mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_PAGE_ORDER_CASE";
/// A slice: the span of a page of blocks up to 8 KiB.
const SLICE: usize = 64 << 10;

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(
        CASE_VAR,
        &[
            ("big", || {
                std::thread::spawn(last_unparked_page_is_used_first).join().unwrap()
            }),
            ("displaced", || {
                std::thread::spawn(an_empty_page_displaced_goes_back).join().unwrap()
            }),
        ],
    );
}

#[test]
fn a_big_block_freed_last_into_a_full_page_is_reused_first() {
    common::run_child_case(CASE_VAR, "big", &[]);
}

#[test]
fn an_emptied_page_that_stops_being_current_is_given_back() {
    common::run_child_case(CASE_VAR, "displaced", &[]);
}

fn last_unparked_page_is_used_first() {
    // 2 KiB blocks: 32 to a one-slice page. Four pages' worth and one
    // more: the first four are parked as full, the fifth is current.
    let layout = Layout::from_size_align(2048, 8).unwrap();
    let per_page = SLICE / 2048;
    // SAFETY: a valid layout; the blocks are freed below.
    let blocks: Vec<*mut u8> = (0..4 * per_page + 1).map(|_| unsafe { GLOBAL.alloc(layout) }).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    let mut pages: BTreeMap<usize, usize> = BTreeMap::new();
    for &b in &blocks[..4 * per_page] {
        *pages.entry(b as usize & !(SLICE - 1)).or_default() += 1;
    }
    assert!(
        pages.len() == 4 && pages.values().all(|&n| n == per_page),
        "the blocks do not fill four pages: {pages:?}"
    );
    let alloc = || {
        // SAFETY: a valid layout.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(!p.is_null());
        p
    };
    let free = |p: *mut u8| {
        // SAFETY: a live block of `layout`, freed once.
        unsafe { GLOBAL.dealloc(p, layout) };
    };

    // Full pages: one block back into the first page, then one into the
    // second; the second page's block comes back first.
    let (first, second) = (blocks[5], blocks[per_page + 7]);
    free(first);
    free(second);
    let (a, b) = (alloc(), alloc());
    assert_eq!(
        (a, b),
        (second, first),
        "the page that came back last was not used first"
    );

    // A page on the bin that is not the current one: the first page gets
    // two blocks back (it is current after the first), then the third page
    // one (it becomes current), then the first page another: that block
    // comes back first.
    let (x, y, z) = (blocks[6], blocks[2 * per_page + 3], blocks[7]);
    free(x);
    free(y);
    free(z);
    assert_eq!(alloc(), z, "a free into a page on the bin did not make it current");

    for &p in &blocks {
        if ![x, y].contains(&p) {
            free(p);
        }
    }
}

fn an_empty_page_displaced_goes_back() {
    // Three full pages of 2 KiB blocks. Every block of the first comes
    // back: the page becomes current at the first free and empties while
    // current, so it is kept. Then a block of the second comes back, which
    // makes the second current: the empty first page must go.
    let layout = Layout::from_size_align(2048, 8).unwrap();
    let per_page = SLICE / 2048;
    // SAFETY: a valid layout; the blocks are freed below.
    let blocks: Vec<*mut u8> = (0..3 * per_page).map(|_| unsafe { GLOBAL.alloc(layout) }).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    let free = |p: *mut u8| {
        // SAFETY: a live block of `layout`, freed once.
        unsafe { GLOBAL.dealloc(p, layout) };
    };
    let freed_pages = || oxmalloc::stats().pages_freed;
    for &p in &blocks[..per_page] {
        free(p);
    }
    let before = freed_pages();
    free(blocks[per_page]);
    assert_eq!(
        freed_pages(),
        before + 1,
        "the emptied page stayed after losing its place"
    );
    for &p in &blocks[per_page + 1..] {
        free(p);
    }
}
