//! A class keeps its current page when the page empties, but a new page of
//! another class with spans of the same size takes that page's span rather
//! than fresh memory (`Heap::retire_empty_current`, docs/PERFORMANCE.md
//! E75); a current page that still holds a block is never taken.
//!
//! Hardened builds give every freed span to the arena's checks, which may
//! hand out another warm span: the slice checks below assume the heap's
//! spares.

#![cfg(not(feature = "secure"))]

use std::alloc::{GlobalAlloc, Layout};

// The second test runs on a thread's default heap, whose free path marks
// emptied pages through the thread's heap slot.
#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// A slice: the span of a page of blocks up to 8 KiB.
const SLICE: usize = 64 << 10;

fn slice_of(p: *mut u8) -> usize {
    p as usize & !(SLICE - 1)
}

/// Allocates `layout` from `heap` and fills the block with `fill`.
fn alloc_filled(heap: &oxmalloc::Heap, layout: Layout, fill: u8) -> *mut u8 {
    let p = heap.alloc(layout);
    assert!(!p.is_null(), "{} B: out of memory", layout.size());
    // SAFETY: a live block of `layout.size()` bytes.
    unsafe { p.write_bytes(fill, layout.size()) };
    p
}

fn holds(p: *mut u8, layout: Layout, fill: u8) -> bool {
    // SAFETY: a live block of `layout.size()` bytes, written by `alloc_filled`.
    unsafe { std::slice::from_raw_parts(p, layout.size()) }
        .iter()
        .all(|&b| b == fill)
}

#[test]
fn a_new_page_takes_the_span_of_another_class_s_empty_current_page() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let first = Layout::from_size_align(2048, 8).unwrap();
    let second = Layout::from_size_align(3000, 8).unwrap();
    let third = Layout::from_size_align(5000, 8).unwrap();

    // One block of the first class, freed: its page is empty but current.
    let a = alloc_filled(&heap, first, 1);
    let emptied = slice_of(a);
    // SAFETY: allocated from `heap` with `first`, freed once.
    unsafe { heap.dealloc(a, first) };

    // The second class's first page: this heap has no spare span, so it
    // takes the emptied page's.
    let b = alloc_filled(&heap, second, 2);
    assert_eq!(
        slice_of(b),
        emptied,
        "the new page ({b:?}) did not take the span of the empty current page"
    );

    // The first class takes a page again, elsewhere, and works.
    let c = alloc_filled(&heap, first, 3);
    assert_ne!(slice_of(c), emptied, "two classes' pages share a slice");
    assert!(holds(b, second, 2), "the second class's block changed");

    // Both current pages hold a block: a third class takes neither.
    let d = alloc_filled(&heap, third, 4);
    assert!(
        slice_of(d) != slice_of(b) && slice_of(d) != slice_of(c),
        "a page holding a live block was taken"
    );
    assert!(holds(b, second, 2) && holds(c, first, 3) && holds(d, third, 4));

    // SAFETY: each allocated from `heap` with that layout, freed once.
    unsafe {
        heap.dealloc(b, second);
        heap.dealloc(c, first);
        heap.dealloc(d, third);
    }
}

/// Frees a small class's block, then a big class's, leaving both current
/// pages empty; a new page of a third class must take the big class's
/// (found by the hint its free left, without looking at the small classes'
/// descriptors), and the big class's next page the small class's.
/// `alloc` and `dealloc` are one heap's.
fn big_before_small(alloc: impl Fn(Layout) -> *mut u8, dealloc: impl Fn(*mut u8, Layout)) {
    let [small, big, new] = [600, 2500, 3500].map(|size| Layout::from_size_align(size, 8).unwrap());
    let alloc_filled = |layout: Layout, fill: u8| {
        let p = alloc(layout);
        assert!(!p.is_null(), "{} B: out of memory", layout.size());
        // SAFETY: a live block of `layout.size()` bytes.
        unsafe { p.write_bytes(fill, layout.size()) };
        p
    };

    let a = alloc_filled(small, 1);
    let b = alloc_filled(big, 2);
    let (small_slice, big_slice) = (slice_of(a), slice_of(b));
    assert_ne!(small_slice, big_slice);
    dealloc(a, small);
    dealloc(b, big);

    let c = alloc_filled(new, 3);
    assert_eq!(
        slice_of(c),
        big_slice,
        "the new page did not take the big class's empty page"
    );
    let d = alloc_filled(big, 4);
    assert_eq!(slice_of(d), small_slice, "the small class's empty page was not taken");
    assert!(holds(c, new, 3) && holds(d, big, 4));
    dealloc(c, new);
    dealloc(d, big);
}

#[test]
fn an_emptied_page_of_big_blocks_is_taken_before_one_of_small_blocks() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    // SAFETY: each block is allocated from `heap` with that layout and
    // freed once (`big_before_small`).
    big_before_small(|l| heap.alloc(l), |p, l| unsafe { heap.dealloc(p, l) });
}

#[test]
fn the_same_on_a_thread_s_default_heap() {
    // A new thread: its heap holds no spare span and no other page of
    // these sizes.
    std::thread::spawn(|| {
        big_before_small(
            // SAFETY: nonzero sizes.
            |l| unsafe { GLOBAL.alloc(l) },
            // SAFETY: each block is allocated by `GLOBAL` with that layout
            // and freed once (`big_before_small`).
            |p, l| unsafe { GLOBAL.dealloc(p, l) },
        )
    })
    .join()
    .unwrap();
}
