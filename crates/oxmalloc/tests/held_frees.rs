//! Remote frees held back in chains (`held_frees.rs`): a thread's last
//! chain goes out when the thread exits, the freeing thread's statistics
//! count the blocks it holds, and blocks of first-class heaps are never
//! held (a heap's `destroy` would free their page under the chain).
//!
//! Each case runs in a child process (`common::run_child_case`), so that
//! the span gauge and page reuse depend only on what the case does. The
//! default build only: the hardened build holds nothing.

#![cfg(not(feature = "secure"))]

use oxmalloc::{Heap, OxMalloc};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

mod bare_thread;
mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_HELD_FREES_CASE";
/// A slice: the span of a page of small blocks.
const SLICE: usize = 64 << 10;
/// The class the cases use: 1,024 blocks to a one-slice page.
const SIZE: usize = 64;
/// Remote frees in a row into one page after which a chain is surely on
/// it: the first few are pushed at once (`held_frees::CHAIN_AT_RUN`, 4),
/// and 16 leaves room to change that.
const RUN_FOR_A_CHAIN: usize = 16;

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(
        CASE_VAR,
        &[
            ("exit", || {
                thread::spawn(last_chain_goes_out_at_thread_exit).join().unwrap()
            }),
            ("destroy", frees_into_a_first_class_heap_are_not_held),
            ("stats", || {
                thread::spawn(a_freeing_thread_counts_the_frees_it_holds)
                    .join()
                    .unwrap()
            }),
            ("interior", interior_pointer_into_the_chains_page_is_reported),
            ("lone", a_lone_remote_free_reaches_its_owner_at_once),
        ],
    );
}

#[test]
fn a_thread_that_exits_publishes_its_held_frees() {
    common::run_child_case(CASE_VAR, "exit", &[]);
}

#[test]
fn the_freeing_thread_counts_the_frees_it_holds() {
    common::run_child_case(CASE_VAR, "stats", &[]);
}

#[test]
fn a_destroyed_heap_has_no_held_frees_to_receive() {
    common::run_child_case(CASE_VAR, "destroy", &[]);
}

#[test]
fn a_lone_remote_free_is_not_held() {
    common::run_child_case(CASE_VAR, "lone", &[]);
}

#[test]
fn a_bad_pointer_into_the_page_of_a_held_chain_is_reported() {
    common::run_child_case(CASE_VAR, "interior", &[]);
}

fn layout() -> Layout {
    Layout::from_size_align(SIZE, 8).unwrap()
}

/// Allocates `count` blocks of `layout()` and checks that they lie on one
/// page (the cases start in a fresh process or thread, on a new page).
/// The caller frees each block once.
fn blocks_of_one_page(count: usize) -> Vec<usize> {
    let blocks: Vec<usize> = (0..count)
        // SAFETY: a valid layout; the caller frees every block once.
        .map(|_| unsafe { GLOBAL.alloc(layout()) } as usize)
        .collect();
    assert!(blocks.iter().all(|&b| b != 0));
    let page = blocks[0] & !(SLICE - 1);
    assert!(
        blocks.iter().all(|&b| b & !(SLICE - 1) == page),
        "the blocks are not on one page"
    );
    blocks
}

fn spans() -> u64 {
    oxmalloc::stats().spans.current
}

/// Runs on a new thread, whose heap holds nothing else.
fn last_chain_goes_out_at_thread_exit() {
    // One page's worth, freed by another thread, which then exits.
    let blocks = blocks_of_one_page(SLICE / SIZE);
    // One block freed here: the other thread's 1,023 frees then end with
    // a partial chain, which only its exit sends.
    // SAFETY: a live block of `layout()`, freed once.
    unsafe { GLOBAL.dealloc(blocks[0] as *mut u8, layout()) };
    let before = spans();
    // A bare POSIX thread: a Rust thread frees its closure and result at
    // exit, other threads' blocks whose frees would send the chain first.
    bare_thread::free_on_bare_thread(&blocks[1..], layout());
    // Every block came back, so the forced collect empties and gives back
    // the page (a held chain would keep it in use).
    oxmalloc::collect(true);
    assert!(
        spans() + SLICE as u64 <= before,
        "the page did not empty: {before} -> {} bytes in spans",
        spans()
    );
}

/// The live blocks of the cases' class, as a snapshot on this thread sees them.
fn live_blocks_of_the_class() -> u64 {
    oxmalloc::stats().classes[oxmalloc::size_class::class_of(SIZE)]
        .blocks
        .current
}

/// What the freeing thread saw, before it exited.
static SEEN_BY_THE_FREEING_THREAD: AtomicU64 = AtomicU64::new(0);

/// Runs on a new thread, whose heap holds nothing else.
fn a_freeing_thread_counts_the_frees_it_holds() {
    let blocks = blocks_of_one_page(100);
    // Exact: the snapshot takes this thread's own counts first.
    let before = live_blocks_of_the_class();
    // 99 remote frees of 64 B blocks, all on one page: a chain of 64 goes
    // out, and 35 blocks are still held when the thread reads its
    // statistics. They count as freed (the snapshot sends the chain; held
    // frees are counted when their chain goes out).
    bare_thread::free_on_bare_thread_then(&blocks[1..], layout(), || {
        SEEN_BY_THE_FREEING_THREAD.store(live_blocks_of_the_class(), Ordering::Relaxed);
    });
    let seen = SEEN_BY_THE_FREEING_THREAD.load(Ordering::Relaxed);
    assert_eq!(
        before - seen,
        99,
        "live blocks {before} -> {seen} after 99 remote frees"
    );
    // SAFETY: a live block of `layout()`, freed once.
    unsafe { GLOBAL.dealloc(blocks[0] as *mut u8, layout()) };
}

fn frees_into_a_first_class_heap_are_not_held() {
    let heap = Heap::new().expect("a heap");
    let doomed: Vec<usize> = (0..3).map(|_| heap.alloc(layout()) as usize).collect();
    assert!(doomed.iter().all(|&b| b != 0));
    // A block of this thread's default heap, freed by the other thread last.
    // SAFETY: a valid layout.
    let ours = unsafe { GLOBAL.alloc(layout()) } as usize;
    // Barriers, not channels: the freer must not allocate between its
    // frees and the last one (its allocation slow path sends its chain).
    let (freed, resume) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (freed_2, resume_2) = (freed.clone(), resume.clone());
    let freer = thread::spawn(move || {
        for &b in &doomed {
            // SAFETY: live blocks of the heap, each freed once (before destroy).
            unsafe { GLOBAL.dealloc(b as *mut u8, layout()) };
        }
        freed_2.wait();
        resume_2.wait();
        // A free into another page: a chain held for the heap's page would
        // now go out, into a page that no longer exists.
        // SAFETY: a live block of `layout()`, freed once.
        unsafe { GLOBAL.dealloc(ours as *mut u8, layout()) };
    });
    freed.wait();
    heap.destroy();
    // The heap's span is free again: fill new pages of the class, likely on
    // it, with a pattern the other thread must not touch.
    // SAFETY: a valid layout; every block is freed below.
    let filled: Vec<*mut u8> = (0..4 * SLICE / SIZE)
        .map(|_| unsafe { GLOBAL.alloc(layout()) })
        .collect();
    for &b in &filled {
        // SAFETY: a live block of SIZE bytes.
        unsafe { b.write_bytes(0xC3, SIZE) };
    }
    resume.wait();
    freer.join().unwrap();
    for &b in &filled {
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(b, SIZE) };
        assert!(
            bytes.iter().all(|&x| x == 0xC3),
            "block {b:?} was written by a late free"
        );
    }
    // Nothing the other thread freed is handed out twice.
    // SAFETY: a valid layout; the blocks are freed below.
    let more: Vec<*mut u8> = (0..SLICE / SIZE).map(|_| unsafe { GLOBAL.alloc(layout()) }).collect();
    let mut all: Vec<*mut u8> = filled.iter().chain(&more).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), filled.len() + more.len(), "a block was handed out twice");
    for b in filled.into_iter().chain(more) {
        // SAFETY: live blocks of `layout()`, each freed once.
        unsafe { GLOBAL.dealloc(b, layout()) };
    }
}

/// A remote free into the page of the freeing thread's chain joins the
/// chain by a short path (`free::free_into_held_chain`); a pointer into a
/// block there, not at its start, must still be reported and leave the
/// block alone, as on the slow path.
fn interior_pointer_into_the_chains_page_is_reported() {
    const FILL: u8 = 0x5A;
    let blocks = blocks_of_one_page(RUN_FOR_A_CHAIN + 1);
    for &b in &blocks {
        // SAFETY: live blocks of `SIZE` bytes.
        unsafe { (b as *mut u8).write_bytes(FILL, SIZE) };
    }
    let (errors, intact) = thread::spawn(move || {
        let before = oxmalloc::stats().errors;
        let (freed, last) = blocks.split_at(RUN_FOR_A_CHAIN);
        for &b in freed {
            // SAFETY: live blocks of `layout()`, each freed once: the first
            // are pushed at once, a later one starts a chain on the page.
            unsafe { GLOBAL.dealloc(b as *mut u8, layout()) };
        }
        // SAFETY: a deliberate invalid free (8 bytes into a live block),
        // through the C entry point, which validates pointers.
        unsafe { oxmalloc::raw::free((last[0] + 8) as *mut u8) };
        let errors = oxmalloc::stats().errors - before;
        // SAFETY: the last block is still live (the bad free must not have taken it).
        let intact = unsafe { std::slice::from_raw_parts(last[0] as *const u8, SIZE) }
            .iter()
            .all(|&x| x == FILL);
        for &b in last {
            // SAFETY: live blocks of `layout()`, each freed once.
            unsafe { GLOBAL.dealloc(b as *mut u8, layout()) };
        }
        (errors, intact)
    })
    .join()
    .unwrap();
    assert_eq!(errors, 1, "the interior pointer was not reported exactly once");
    assert!(intact, "the block under the interior pointer was written");
}

/// Steps of `a_lone_remote_free_reaches_its_owner_at_once`, across its
/// three threads (the freeing thread runs a plain `fn`, so these are statics).
static STEP: AtomicU64 = AtomicU64::new(0);
/// The block the freeing thread frees.
static LONE_BLOCK: AtomicU64 = AtomicU64::new(0);
const PAGE_FULL: u64 = 1;
const FREED: u64 = 2;
const CHECKED: u64 = 3;

fn wait_for_step(step: u64) {
    while STEP.load(Ordering::Acquire) < step {
        thread::yield_now();
    }
}

/// One remote free into another thread's page, with nothing after it on
/// the freeing thread (no other free, no allocation, no exit), must reach
/// the page's owner: the first remote free into a page is pushed at once,
/// not held on a chain (docs/PERFORMANCE.md E118). The owner fills its
/// page, and its next allocation of the class must get the freed block
/// back rather than a block of a new page.
fn a_lone_remote_free_reaches_its_owner_at_once() {
    let owner = thread::spawn(|| {
        let blocks = blocks_of_one_page(SLICE / SIZE);
        LONE_BLOCK.store(blocks[0] as u64, Ordering::Relaxed);
        STEP.store(PAGE_FULL, Ordering::Release);
        wait_for_step(FREED);
        // SAFETY: a valid layout; freed below.
        let next = unsafe { GLOBAL.alloc(layout()) } as usize;
        STEP.store(CHECKED, Ordering::Release);
        for &b in &blocks[1..] {
            // SAFETY: live blocks of `layout()`, each freed once.
            unsafe { GLOBAL.dealloc(b as *mut u8, layout()) };
        }
        // SAFETY: a live block of `layout()`, freed once.
        unsafe { GLOBAL.dealloc(next as *mut u8, layout()) };
        (blocks[0], next)
    });
    wait_for_step(PAGE_FULL);
    let lone = LONE_BLOCK.load(Ordering::Relaxed) as usize;
    // The freeing thread stays alive, doing nothing, until the owner has
    // allocated: a held block would go out only at its exit.
    bare_thread::free_on_bare_thread_then(&[lone], layout(), || {
        STEP.store(FREED, Ordering::Release);
        wait_for_step(CHECKED);
    });
    let (freed, next) = owner.join().unwrap();
    assert_eq!(
        next, freed,
        "the owner's next allocation did not get the block another thread freed"
    );
}
