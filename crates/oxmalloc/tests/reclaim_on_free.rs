//! A free into an abandoned page takes the page (`abandon::reclaim_on_free`)
//! only when at least half of the page's carved blocks were live at
//! abandonment and the freeing thread has a page of the class; the next
//! allocation then reuses the page's blocks.
//!
//! Each case runs in a child process (`common::run_child_case`), so that
//! the process-wide page counters move only with what the case does.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::thread;

mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_RECLAIM_ON_FREE_CASE";
/// A slice: the span of a page of small blocks.
const SLICE: usize = 64 << 10;
/// The class the cases use (about a thousand blocks to a one-slice page).
const SIZE: usize = 64;

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(
        CASE_VAR,
        &[
            ("full", a_free_into_a_full_abandoned_page_takes_it),
            ("sparse", a_free_into_a_mostly_empty_abandoned_page_leaves_it),
        ],
    );
}

#[test]
fn a_thread_that_allocates_the_class_takes_a_full_abandoned_page_it_frees_into() {
    common::run_child_case(CASE_VAR, "full", &[]);
}

#[test]
fn a_page_abandoned_mostly_empty_stays_abandoned() {
    common::run_child_case(CASE_VAR, "sparse", &[]);
}

fn layout() -> Layout {
    Layout::from_size_align(SIZE, 8).unwrap()
}

fn alloc() -> usize {
    // SAFETY: a valid, non-zero layout.
    let b = unsafe { GLOBAL.alloc(layout()) } as usize;
    assert_ne!(b, 0);
    b
}

fn free(b: usize) {
    // SAFETY: every caller passes a live block of `layout()`, once.
    unsafe { GLOBAL.dealloc(b as *mut u8, layout()) };
}

/// Allocates `count` blocks on a new thread, frees all but the first
/// `keep` there, and exits (abandoning its pages); the kept blocks grouped
/// by page, in address order.
fn blocks_of_an_exited_thread(count: usize, keep: usize) -> BTreeMap<usize, Vec<usize>> {
    let blocks = thread::spawn(move || {
        let mut blocks: Vec<usize> = (0..count).map(|_| alloc()).collect();
        for b in blocks.drain(keep..) {
            free(b);
        }
        blocks
    })
    .join()
    .unwrap();
    let mut pages: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for b in blocks {
        pages.entry(b & !(SLICE - 1)).or_default().push(b);
    }
    pages
}

/// (reclaimed so far, abandoned now)
fn page_counts() -> (u64, u64) {
    let s = oxmalloc::stats();
    (s.pages_reclaimed, s.pages_abandoned_now)
}

fn a_free_into_a_full_abandoned_page_takes_it() {
    // A page of the class of our own first, before any page is abandoned
    // (an allocation without one would reclaim an abandoned page itself).
    let mine = alloc();
    let pages = blocks_of_an_exited_thread(4_000, 4_000);
    // The exited thread filled its pages one after another: those holding
    // the most blocks are full.
    let most = pages.values().map(Vec::len).max().unwrap();
    let mut full: Vec<&Vec<usize>> = pages.values().filter(|b| b.len() == most).collect();
    assert!(full.len() >= 2, "{} full pages of {}", full.len(), pages.len());
    let before = page_counts();
    assert!(
        before.1 >= full.len() as u64,
        "the full pages were not abandoned: {before:?}"
    );

    // A thread with no page of the class frees into a full page: it stays
    // abandoned (a thread that only frees acquires no pages).
    let first = full.remove(0);
    let b = first[0];
    thread::spawn(move || free(b)).join().unwrap();
    assert_eq!(page_counts(), before, "a thread without a page of the class took one");

    // We have one: our free takes the page, and our next allocation comes
    // from it.
    let second = full.remove(0);
    free(second[0]);
    let after = page_counts();
    assert_eq!(
        (after.0 - before.0, before.1 - after.1),
        (1, 1),
        "one page reclaimed and one less abandoned, before {before:?}, after {after:?}"
    );
    let again = alloc();
    assert_eq!(
        again & !(SLICE - 1),
        second[0] & !(SLICE - 1),
        "the next allocation is not on the page just taken"
    );
    free(again);
    for b in pages.values().flatten().filter(|&&b| b != first[0] && b != second[0]) {
        free(*b);
    }
    free(mine);
}

fn a_free_into_a_mostly_empty_abandoned_page_leaves_it() {
    let mine = alloc();
    // Sixteen blocks kept of 400 carved: one page, far less than half of
    // its carved blocks live.
    let pages = blocks_of_an_exited_thread(400, 16);
    assert_eq!(pages.len(), 1, "the blocks are on more than one page");
    let before = page_counts();
    assert!(before.1 >= 1, "the page was not abandoned: {before:?}");
    let blocks = pages.into_values().next().unwrap();
    free(blocks[0]);
    assert_eq!(
        page_counts(),
        before,
        "a page abandoned mostly empty was taken by a free"
    );
    for &b in &blocks[1..] {
        free(b);
    }
    free(mine);
}
