//! When the `fork` handlers are registered (`fork.rs`): not while the
//! process has one thread (outside the hardened build); once it has had a
//! second one, before the first of the allocator's locks is next taken,
//! even if that thread never allocates. A single-threaded process forks
//! without them, and its child allocates and frees every kind of block.
//!
//! The background purger is a second thread that takes locks, so starting
//! it registers the handlers; the main case runs without it.
//!
//! Own harness (`harness = false`): the process must start with one thread,
//! which libtest's runner would not leave it. Each case runs in a fresh
//! process of this binary (the options are read at start-up).

use oxmalloc::raw;
use std::ptr;

mod common;

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

/// A small, a large and a huge block, written and freed; every kind of
/// block goes through a lock at least once (a fresh span, a huge mapping).
fn allocate_every_kind() {
    for size in [24, 3000, 200 << 10, 64 << 20] {
        let p = raw::malloc(size);
        assert!(!p.is_null(), "malloc({size})");
        // SAFETY: a live block of `size` bytes.
        unsafe { p.write_bytes(0x5a, size) };
        // SAFETY: allocated just above, freed once.
        unsafe { raw::free(p) };
    }
}

/// Forks; the child allocates every kind of block and leaves with 0 (a
/// child stuck on a lock would hang the test: an alarm kills it).
fn fork_and_allocate_in_the_child() {
    // SAFETY: the child only allocates, frees and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: plain libc calls in the child.
        unsafe { libc::alarm(20) };
        allocate_every_kind();
        // SAFETY: leaves the child without running the parent's handlers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
}

extern "C" fn idle(_: *mut libc::c_void) -> *mut libc::c_void {
    ptr::null_mut()
}

const CASE_VAR: &str = "OX_FORK_HANDLERS_CASE";

fn main() {
    if std::env::var_os(CASE_VAR).is_some() {
        common::serve_child_case(
            CASE_VAR,
            &[
                ("one-thread", one_thread_then_two),
                ("purger", the_purger_registers_them),
            ],
        );
        return;
    }
    // (`run_child_case` turns the background purger off.)
    common::run_child_case(CASE_VAR, "one-thread", &[]);
    common::run_child_case(
        CASE_VAR,
        "purger",
        &[("OXMALLOC_BACKGROUND_PURGE", "1"), ("OXMALLOC_PURGE_DELAY", "10")],
    );
    println!("fork_handlers: both cases ok");
}

fn one_thread_then_two() {
    allocate_every_kind();
    if oxmalloc::HARDENED {
        // The hardened child needs fresh secrets: registered from the start.
        assert!(oxmalloc::fork_handlers_registered(), "hardened: registered at start-up");
        fork_and_allocate_in_the_child();
        println!("hardened build: registered at start-up");
        return;
    }
    assert!(!oxmalloc::fork_handlers_registered(), "one thread: no handlers yet");
    fork_and_allocate_in_the_child();
    assert!(!oxmalloc::fork_handlers_registered(), "still one thread after fork");

    // A second thread that never calls the allocator (`pthread_create`
    // itself allocates through libc's malloc here, not ours).
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `idle` has the C ABI and ignores its argument.
    let created = unsafe { libc::pthread_create(&mut thread, ptr::null(), idle, ptr::null_mut()) };
    assert_eq!(created, 0, "pthread_create");
    // SAFETY: joins the thread just created.
    assert_eq!(unsafe { libc::pthread_join(thread, ptr::null_mut()) }, 0);
    assert!(
        !oxmalloc::fork_handlers_registered(),
        "no lock taken since the thread was made"
    );
    // This thread's next lock (a fresh span's, the huge block's) registers
    // them first.
    allocate_every_kind();
    assert!(oxmalloc::fork_handlers_registered(), "registered after a second thread");
    fork_and_allocate_in_the_child();
}

fn the_purger_registers_them() {
    // Freeing a large block leaves memory to purge later: the purger starts.
    allocate_every_kind();
    assert!(
        oxmalloc::fork_handlers_registered(),
        "the purger thread registered them"
    );
    fork_and_allocate_in_the_child();
}
