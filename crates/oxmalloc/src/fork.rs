//! `fork` support: every allocator lock is taken before `fork`, released
//! in the parent, and reset in the child (where the threads that might have
//! held them do not exist). The child also gets fresh secrets and no
//! background purger.
//!
//! Locks nest in oxmalloc only as: the purge lock around the arena lock;
//! the arena lock or the heap pool's around the huge cache's (mapping
//! memory may give cached huge mappings back). `prepare` takes them in that
//! order, so it cannot deadlock against a running thread.

use crate::abandon::ABANDONED;
use crate::arena::{ARENA, PURGE_LOCK};
use crate::heap::POOL;
use crate::huge::CACHE;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::{purge, secure};

static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers the handlers (once per process).
pub fn register() {
    if REGISTERED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: the handlers have the C ABI and stay valid for the process lifetime.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

extern "C" fn prepare() {
    // The order in which locks nest anywhere: purge before arena, pool and
    // arena before the huge cache.
    PURGE_LOCK.lock_for_fork();
    POOL.lock_for_fork();
    ARENA.lock_for_fork();
    CACHE.lock_for_fork();
    for list in &ABANDONED {
        list.lock_for_fork();
    }
}

extern "C" fn parent() {
    // SAFETY: `prepare` took every lock on this thread.
    unsafe {
        for list in ABANDONED.iter().rev() {
            list.unlock_after_fork();
        }
        CACHE.unlock_after_fork();
        ARENA.unlock_after_fork();
        POOL.unlock_after_fork();
        PURGE_LOCK.unlock_after_fork();
    }
}

extern "C" fn child() {
    // SAFETY: in the child right after fork, single-threaded.
    unsafe {
        ARENA.reset_in_child();
        for list in &ABANDONED {
            list.reset_in_child();
        }
        CACHE.reset_in_child();
        POOL.reset_in_child();
        PURGE_LOCK.reset_in_child();
    }
    purge::reset_in_child();
    secure::reseed();
}
