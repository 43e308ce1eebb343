//! A zeroed block handed out from fresh memory (no `memset`: it reads as
//! zero already) has every OS page it reaches faulted in by a write
//! (`alloc.rs`, `touch_for_write`). Left alone, a caller that reads it
//! before writing (calloc, then look) maps the shared zero page, and its
//! first write takes a second fault that also flushes the TLB of every CPU
//! running the process (docs/PERFORMANCE.md E38).
//!
//! Seen as the calling thread's minor faults (`RUSAGE_THREAD`) while it
//! reads, then writes, every page of the blocks: none once they are handed
//! out. The case runs in a child process with one test thread, so that the
//! blocks come from fresh memory (a reused, dirty page is zeroed with a
//! `memset`, which writes every page anyway).

#![cfg(not(feature = "secure"))]

use std::alloc::Layout;

mod common;
mod resident;

const CASE_VAR: &str = "OX_ZEROED_CASE";
const PAGE: usize = 4096;

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(CASE_VAR, &[("fresh", zeroed_fresh_blocks_are_write_faulted)]);
}

#[test]
fn zeroed_blocks_from_fresh_memory_need_no_fault_to_read_then_write() {
    common::run_child_case(CASE_VAR, "fresh", &[]);
}

fn thread_minor_faults() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is the calling thread.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    assert_eq!(r, 0);
    u.ru_minflt
}

fn zeroed_fresh_blocks_are_write_faulted() {
    // Huge pages would fault 2 MiB at the first touch and hide the rest.
    resident::without_huge_pages();
    let heap = oxmalloc::Heap::new().expect("a heap");
    // 12 KiB blocks (a class no earlier allocation of the process used): each
    // reaches three or four OS pages.
    let size = 12 * 1024;
    let layout = Layout::from_size_align(size, 8).unwrap();
    let blocks: Vec<*mut u8> = (0..8).map(|_| heap.alloc_zeroed(layout)).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    let before = thread_minor_faults();
    let mut sum = 0u64;
    for &b in &blocks {
        for off in (0..size).step_by(PAGE) {
            // SAFETY: inside a live block of `size` bytes.
            sum += u64::from(unsafe { b.add(off).read_volatile() });
        }
        // SAFETY: as above.
        unsafe { b.add(size - 1).read_volatile() };
    }
    assert_eq!(sum, 0, "zeroed blocks read non-zero");
    for &b in &blocks {
        // SAFETY: a live block of `size` bytes.
        unsafe { b.write_bytes(0x5A, size) };
    }
    let faults = thread_minor_faults() - before;
    assert_eq!(
        faults, 0,
        "reading then writing 8 zeroed {size} B blocks took {faults} page faults: pages were left unwritten"
    );
    for &b in &blocks {
        // SAFETY: allocated from `heap` with `layout`, freed once.
        unsafe { heap.dealloc(b, layout) };
    }
    heap.delete();
}
