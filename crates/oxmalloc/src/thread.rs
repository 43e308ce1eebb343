//! Thread set-up and tear-down.
//!
//! A thread gets a heap on its first allocation (from the slow path, see
//! `heap.rs`). A pthread key whose value is the heap makes the C runtime
//! call [`on_thread_exit`] when the thread ends: its pages are abandoned
//! (`abandon.rs`) and the heap goes back to the pool. A `thread_local!`
//! with a destructor cannot be used: registering it allocates.

use crate::heap::{dead_heap, empty_heap, heap_acquire, heap_release, Heap};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::{init, purge, stats, tls};

/// The pthread key plus one (0: not created yet).
static KEY: AtomicUsize = AtomicUsize::new(0);

/// The pthread key plus one, or 0 before process initialisation.
#[inline]
pub fn thread_key() -> usize {
    KEY.load(Ordering::Relaxed)
}

/// Creates the key (once, during process initialisation).
pub fn create_key() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-parameter; the destructor has the right ABI.
    if unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } == 0 {
        KEY.store(key as usize + 1, Ordering::Release);
    }
}

/// Gives the calling thread a heap of its own; null when out of memory.
#[cold]
#[inline(never)]
pub fn init_thread() -> *mut Heap {
    init::ensure();
    let heap = heap_acquire();
    if heap.is_null() {
        return heap;
    }
    // SAFETY: a fresh heap from the pool, ours alone.
    unsafe { (*heap).init_default() };
    tls::set_heap(heap);
    let key = thread_key();
    if key != 0 {
        // SAFETY: the key exists; the value is only read back by our destructor.
        unsafe { libc::pthread_setspecific((key - 1) as libc::pthread_key_t, heap.cast()) };
    }
    stats::thread_started();
    // Work that may itself allocate runs once the heap is in place (once).
    init::after_first_thread();
    heap
}

/// The pthread key destructor: runs at thread exit with the thread's heap.
extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    let heap = value.cast::<Heap>();
    if heap.is_null() || heap == empty_heap() {
        return;
    }
    if heap == dead_heap() {
        // Where the slot is this pthread key (not x86-64 Linux), setting the
        // dead heap below gives the key a value again, so the C runtime
        // calls us with it in its next round of destructors, having cleared
        // the value. Nothing to tear down; set it again, so that the
        // thread's later frees and allocations still see a dead thread
        // (rather than an empty one, which would get a heap that no one
        // tears down) for as many rounds as the runtime makes.
        tls::set_heap(dead_heap());
        return;
    }
    // Frees from here on (later destructors, libc's own clean-up) are remote
    // frees; an allocation is served without giving the thread a heap again
    // (nothing would tear it down: glibc runs key destructors a bounded
    // number of rounds).
    tls::set_heap(dead_heap());
    // SAFETY: the heap belonged to this thread, which is ending: no one else
    // touches it, and it is torn down exactly once (the key value was
    // cleared by the C runtime before calling us).
    unsafe {
        (*heap).abandon_thread();
        heap_release(heap);
    }
    stats::thread_ended();
    purge::start_if_wanted();
}
