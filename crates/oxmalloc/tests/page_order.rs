//! Which page a heap allocates from next. A page of big blocks (above
//! 1 KiB) that gets a block back while parked as full goes right after the
//! current page, ahead of pages that came back earlier: the next
//! allocation of its class then reuses the block freed last, whose memory
//! the caller has just touched (see docs/PERFORMANCE.md E40).
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
    let Ok(case) = std::env::var(CASE_VAR) else {
        return;
    };
    match case.as_str() {
        "big" => std::thread::spawn(last_unparked_page_is_used_first).join().unwrap(),
        other => panic!("unknown case {other}"),
    }
    println!("case {case}: ok");
}

#[test]
fn a_big_block_freed_last_into_a_full_page_is_reused_first() {
    common::run_child_case(CASE_VAR, "big", &[]);
}

fn last_unparked_page_is_used_first() {
    // 2 KiB blocks: 32 to a one-slice page. Four pages' worth: the first
    // three are parked as full, the fourth is current and full.
    let layout = Layout::from_size_align(2048, 8).unwrap();
    let per_page = SLICE / 2048;
    // SAFETY: a valid layout; the blocks are freed below.
    let blocks: Vec<*mut u8> = (0..4 * per_page).map(|_| unsafe { GLOBAL.alloc(layout) }).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    let mut pages: BTreeMap<usize, usize> = BTreeMap::new();
    for &b in &blocks {
        *pages.entry(b as usize & !(SLICE - 1)).or_default() += 1;
    }
    assert!(
        pages.len() == 4 && pages.values().all(|&n| n == per_page),
        "the blocks do not fill four pages: {pages:?}"
    );

    // One block back into the first page, then one into the second.
    let (earlier, later) = (blocks[5], blocks[per_page + 7]);
    // SAFETY: allocated above with `layout`, each freed once.
    unsafe {
        GLOBAL.dealloc(earlier, layout);
        GLOBAL.dealloc(later, layout);
    }
    // SAFETY: a valid layout.
    let (next, after) = unsafe { (GLOBAL.alloc(layout), GLOBAL.alloc(layout)) };
    assert_eq!(
        (next, after),
        (later, earlier),
        "the page that came back last was not used first"
    );
    for b in blocks
        .iter()
        .filter(|&&b| b != earlier && b != later)
        .chain([&next, &after])
    {
        // SAFETY: every live block, freed once.
        unsafe { GLOBAL.dealloc(*b, layout) };
    }
}
