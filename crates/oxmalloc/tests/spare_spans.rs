//! A heap keeps the spans of a few pages it emptied (`Heap::spare`) and
//! builds its next pages on them without going back to the arena; a forced
//! collect gives them back.
//!
//! Observed through the span gauge (`stats().spans.current`), which moves
//! only when the arena hands out or takes back slices: each case runs in a
//! child process with one test thread (`common::run_child_case`), so no
//! other thread moves it meanwhile. Hardened builds keep no spares.

#![cfg(not(feature = "secure"))]

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_SPARE_CASE";
/// A slice: the span of a small page.
const SLICE: usize = 64 << 10;

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(CASE_VAR, &[("reuse", emptied_pages_are_kept_and_reused_then_collected)]);
}

#[test]
fn emptied_page_spans_are_reused_by_the_heap_and_collected() {
    common::run_child_case(CASE_VAR, "reuse", &[]);
}

fn spans() -> u64 {
    oxmalloc::stats().spans.current
}

fn emptied_pages_are_kept_and_reused_then_collected() {
    // 512 B blocks: 128 to a one-slice page. Five pages' worth, then all
    // freed but the last block, whose page stays current: four pages empty,
    // as many as a heap keeps (SPARE_SPANS).
    let small = Layout::from_size_align(512, 8).unwrap();
    let per_page = SLICE / 512;
    // SAFETY: a valid layout; every block is freed once, below.
    let blocks: Vec<*mut u8> = (0..5 * per_page).map(|_| unsafe { GLOBAL.alloc(small) }).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    let kept = *blocks.last().unwrap();
    let before = spans();
    for &b in &blocks[..blocks.len() - 1] {
        // SAFETY: allocated above with `small`, freed once.
        unsafe { GLOBAL.dealloc(b, small) };
    }
    let after_free = spans();
    assert_eq!(
        after_free, before,
        "emptied pages went back to the arena instead of staying spare"
    );

    // A page of another class with one-slice pages takes a spare span: the
    // arena hands out nothing, and the block lies in a slice freed above.
    let other = Layout::from_size_align(3000, 8).unwrap();
    // SAFETY: a valid layout.
    let p = unsafe { GLOBAL.alloc(other) };
    assert!(!p.is_null());
    assert_eq!(
        spans(),
        after_free,
        "a new page came from the arena while spares were kept"
    );
    let slice_of = |a: *mut u8| a as usize & !(SLICE - 1);
    assert!(
        blocks[..blocks.len() - 1].iter().any(|&b| slice_of(b) == slice_of(p)),
        "the new page's block {p:?} is not in an emptied slice"
    );

    // A forced collect gives the spares back (the other three slices).
    oxmalloc::collect(true);
    let collected = spans();
    assert!(
        collected + 3 * SLICE as u64 <= after_free,
        "spares not given back: {after_free} -> {collected} bytes in spans"
    );
    // SAFETY: live blocks of these layouts, freed once.
    unsafe {
        GLOBAL.dealloc(p, other);
        GLOBAL.dealloc(kept, small);
    }
}
