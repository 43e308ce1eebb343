//! A first-class heap never takes an abandoned page: `Heap::destroy` frees
//! every page of the heap, live blocks and all, and an abandoned page's
//! live blocks belong to whoever the exited thread handed them to, not to
//! the heap. (Before the fix, a first-class heap's first allocation of a
//! class reclaimed such a page, and destroying the heap freed a block
//! another thread still held.)
//!
//! Runs in a child process (`common::run_child_case`) so that no other
//! test's thread abandons pages of the class meanwhile.

use oxmalloc::{Heap, OxMalloc};
use std::alloc::{GlobalAlloc, Layout};

mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_DESTROY_RECLAIMED_CASE";

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(CASE_VAR, &[("kept", block_of_exited_thread_survives_destroy)]);
}

#[test]
fn destroying_a_heap_keeps_blocks_of_exited_threads() {
    common::run_child_case(CASE_VAR, "kept", &[]);
}

fn block_of_exited_thread_survives_destroy() {
    // An unusual size, so that nothing else in the process uses its class.
    let layout = Layout::from_size_align(1400, 8).unwrap();
    // A thread makes two blocks, frees one and hands the other over: at its
    // exit the page is abandoned with one live block and room for more.
    let kept = std::thread::spawn(move || {
        // SAFETY: a valid layout; `spare` is freed once, `kept` handed over.
        unsafe {
            let spare = GLOBAL.alloc(layout);
            let kept = GLOBAL.alloc(layout);
            assert!(!spare.is_null() && !kept.is_null());
            kept.write_bytes(0x5A, layout.size());
            GLOBAL.dealloc(spare, layout);
            kept as usize
        }
    })
    .join()
    .unwrap() as *mut u8;

    let heap = Heap::new().expect("a heap");
    let p = heap.alloc(layout);
    assert!(!p.is_null());
    heap.destroy();

    assert!(
        oxmalloc::usable_size(kept) >= layout.size(),
        "the exited thread's block died with the heap"
    );
    // SAFETY: `kept` is live (checked above) with `layout`.
    unsafe {
        assert!(std::slice::from_raw_parts(kept, layout.size())
            .iter()
            .all(|&b| b == 0x5A));
        GLOBAL.dealloc(kept, layout);
    }
}
