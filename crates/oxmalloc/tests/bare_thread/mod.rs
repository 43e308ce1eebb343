//! Shared by the tests that need a thread without Rust's thread machinery:
//! a Rust thread frees its closure and result at exit (blocks of other
//! threads), a bare POSIX thread frees only what it is told to.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

/// Frees `blocks` (live blocks of `layout`, handed over) on a new POSIX
/// thread and waits for it.
#[allow(dead_code)] // Not every test that includes this module calls both.
pub fn free_on_bare_thread(blocks: &[usize], layout: Layout) {
    free_on_bare_thread_then(blocks, layout, || {});
}

/// [`free_on_bare_thread`], then `then` on that thread, before it exits.
#[allow(dead_code)]
pub fn free_on_bare_thread_then(blocks: &[usize], layout: Layout, then: fn()) {
    struct Job {
        blocks: *const usize,
        count: usize,
        layout: Layout,
        then: fn(),
    }
    extern "C" fn run(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` points at the `Job` below, alive until the join.
        let job = unsafe { &*(arg as *const Job) };
        for i in 0..job.count {
            // SAFETY: the job's blocks are live blocks with its layout,
            // handed over; the slice outlives the thread.
            unsafe { OxMalloc.dealloc(*job.blocks.add(i) as *mut u8, job.layout) };
        }
        (job.then)();
        std::ptr::null_mut()
    }
    let job = Job {
        blocks: blocks.as_ptr(),
        count: blocks.len(),
        layout,
        then,
    };
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `run` only reads `job`, which lives until the join below.
    let rc = unsafe {
        libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            run,
            &job as *const Job as *mut libc::c_void,
        )
    };
    assert_eq!(rc, 0, "pthread_create");
    // SAFETY: a thread we created and have not joined.
    let rc = unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "pthread_join");
}
