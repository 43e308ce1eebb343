//! A thread's frees of blocks above 1 KiB go onto its free cache
//! (`free_cache.rs`): the next allocation of the class takes the block freed
//! last, whatever its page; a block freed twice is reported and handed out
//! once, while a block that comes back from the cache with its first word
//! untouched is freed as usual; a zeroed allocation from the cache is zero;
//! a thread's cached blocks go back to their pages when it exits.
//!
//! Each case runs in a child process (`common::run_child_case`), so that no
//! other test's thread moves the process-wide figures the cases read.

#![cfg(not(feature = "secure"))]

use oxmalloc::raw;
use std::collections::BTreeSet;

mod common;

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

const CASE_VAR: &str = "OX_FREE_CACHE_CASE";
/// A class above 1 KiB (21 blocks to a one-slice page).
const SIZE: usize = 3000;
/// A slice: the span of a page of blocks up to 8 KiB.
const SLICE: usize = 64 << 10;

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(
        CASE_VAR,
        &[
            ("lifo", last_freed_first_across_pages),
            ("double", double_free_of_a_cached_block),
            ("refree", refree_of_a_block_from_the_cache),
            ("zeroed", zeroed_from_the_cache),
            ("exit", exit_gives_cached_blocks_back),
        ],
    );
}

#[test]
fn the_block_freed_last_comes_back_first_whatever_its_page() {
    common::run_child_case(CASE_VAR, "lifo", &[]);
}

#[test]
fn a_cached_block_freed_twice_is_reported_and_handed_out_once() {
    common::run_child_case(CASE_VAR, "double", &[]);
}

#[test]
fn a_block_handed_out_by_the_cache_and_freed_again_is_not_a_double_free() {
    common::run_child_case(CASE_VAR, "refree", &[]);
}

#[test]
fn a_zeroed_allocation_from_the_cache_is_zero() {
    common::run_child_case(CASE_VAR, "zeroed", &[]);
}

#[test]
fn an_exiting_thread_gives_its_cached_blocks_back_to_their_pages() {
    common::run_child_case(CASE_VAR, "exit", &[]);
}

fn slice_of(p: *mut u8) -> usize {
    p as usize & !(SLICE - 1)
}

/// `n` blocks of `SIZE` bytes, each filled with its index.
fn blocks(n: usize) -> Vec<*mut u8> {
    (0..n)
        .map(|i| {
            let p = raw::malloc(SIZE);
            assert!(!p.is_null());
            // SAFETY: a live block of SIZE bytes.
            unsafe { p.write_bytes(i as u8, SIZE) };
            p
        })
        .collect()
}

fn last_freed_first_across_pages() {
    // Two pages' worth: blocks on at least two pages.
    let all = blocks(50);
    let a = all[0];
    let b = *all
        .iter()
        .rev()
        .find(|&&p| slice_of(p) != slice_of(a))
        .expect("a second page");
    let c = all[1];
    assert_eq!(slice_of(a), slice_of(c));
    // SAFETY: live blocks, each freed once and then reallocated.
    unsafe {
        raw::free(a);
        raw::free(b);
        raw::free(c);
    }
    // Without the cache, `c`'s page is current after its free, and its
    // index gives `a` before `b`.
    let again = [raw::malloc(SIZE), raw::malloc(SIZE), raw::malloc(SIZE)];
    assert_eq!(again, [c, b, a], "the blocks came back in another order");
    for p in all {
        // SAFETY: every block is live again, freed once.
        unsafe { raw::free(p) };
    }
}

fn double_free_of_a_cached_block() {
    let all = blocks(4);
    let before = oxmalloc::stats().errors;
    // SAFETY: `all[1]` is live; the second free is deliberate (the engine
    // must report it and change nothing).
    unsafe {
        raw::free(all[1]);
        raw::free(all[1]);
    }
    assert_eq!(
        oxmalloc::stats().errors - before,
        1,
        "the double free was not reported once"
    );
    // The block is free once: two allocations give two blocks.
    let x = raw::malloc(SIZE);
    let y = raw::malloc(SIZE);
    assert!(!x.is_null() && !y.is_null());
    assert_ne!(x, y, "a block freed twice was handed out twice");
    let live: BTreeSet<usize> = [all[0], all[2], all[3], x, y].iter().map(|&p| p as usize).collect();
    assert_eq!(live.len(), 5, "a block was handed out while live");
    for p in [all[0], all[2], all[3], x, y] {
        // SAFETY: live blocks, each freed once.
        unsafe { raw::free(p) };
    }
}

fn refree_of_a_block_from_the_cache() {
    let all = blocks(4);
    let before = oxmalloc::stats().errors;
    // SAFETY: `all[1]` is live, freed once.
    unsafe { raw::free(all[1]) };
    // The cache hands it out again with whatever the free wrote in it (its
    // first word is the program's now, left as it is), and it is freed
    // again: a new free, not a double one.
    let again = raw::malloc(SIZE);
    assert_eq!(again, all[1], "the allocation did not come from the cache");
    // SAFETY: `again` is live, freed once.
    unsafe { raw::free(again) };
    // (Taken before `stats`, which empties the calling thread's cache.)
    let third = raw::malloc(SIZE);
    assert_eq!(oxmalloc::stats().errors, before, "a free of a live block was reported");
    assert_eq!(third, all[1], "the block's second free was not cached");
    for p in all {
        // SAFETY: live blocks (`all[1]` allocated again just above), each freed once.
        unsafe { raw::free(p) };
    }
}

fn zeroed_from_the_cache() {
    let all = blocks(4);
    // SAFETY: a live block (filled with 1 by `blocks`), freed once.
    unsafe { raw::free(all[1]) };
    let z = raw::zalloc(SIZE - 100);
    assert_eq!(z, all[1], "the zeroed allocation did not come from the cache");
    // SAFETY: `z` holds at least SIZE - 100 bytes.
    let bytes = unsafe { std::slice::from_raw_parts(z, SIZE - 100) };
    assert!(bytes.iter().all(|&b| b == 0), "a block from the cache was not cleared");
    for p in [all[0], z, all[2], all[3]] {
        // SAFETY: live blocks, each freed once.
        unsafe { raw::free(p) };
    }
}

fn exit_gives_cached_blocks_back() {
    let live_blocks = || oxmalloc::stats().allocated_blocks.current;
    let before = live_blocks();
    // The thread frees all but one of its blocks, which the cache keeps
    // (the page's last block would go to the page), and exits.
    let kept = std::thread::spawn(|| {
        let all = blocks(8);
        for &p in &all[1..] {
            // SAFETY: live blocks, each freed once.
            unsafe { raw::free(p) };
        }
        all[0] as usize
    })
    .join()
    .unwrap() as *mut u8;
    assert_eq!(
        live_blocks() - before,
        1,
        "the exited thread's cached blocks are still counted as allocated"
    );
    // SAFETY: the block the thread kept, live, freed once.
    unsafe { raw::free(kept) };
    assert_eq!(live_blocks(), before);
}
