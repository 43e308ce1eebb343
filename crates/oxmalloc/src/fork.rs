//! `fork` support: every allocator lock is taken before `fork`, released
//! in the parent, and reset in the child (where the threads that might have
//! held them do not exist). The child also gets fresh secrets and no
//! background purger.
//!
//! The lock order. Locks nest in oxmalloc only as follows, and `prepare`
//! takes them in this order, so it cannot deadlock against a running thread:
//!
//! 1. every heap's `large` lock (first-class heaps' big blocks), never two
//!    at once: `destroy` frees big blocks under its own (arena, huge cache,
//!    sample table), and `walk` calls its visitor under it (which may
//!    allocate: anything below). A visitor that allocates or frees big
//!    blocks of *another* first-class heap nests two of them, which `fork`
//!    cannot order: don't fork meanwhile (nor from a visitor at all);
//! 2. the purge lock, around the arena lock;
//! 3. the heap pool's (heaps are registered only under it, so that the
//!    set of `large` locks to take is final once it is held);
//! 4. the arena lock; 5. the huge cache's, inside the arena's or the
//!    pool's (mapping memory may give cached huge mappings back);
//! 6. the abandoned-page lists' (one at a time);
//! 7. the profiling sample table's (held only around table updates, the
//!    table's own first mapping, and a dump's writes);
//! 8. the text options' (`options::TEXTS`), leaves held only to copy a
//!    value in or out.

use crate::abandon::ABANDONED;
use crate::arena::{ARENA, PURGE_LOCK};
use crate::heap::POOL;
use crate::huge::CACHE;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::{heap, options, profile, purge, secure};

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
    // The order of the module notes. The heaps' `large` locks come first,
    // but which heaps exist is only settled under the pool lock: take the
    // `large` locks of the heaps known, then the purge and pool locks, and
    // start over (locking only the newcomers) if a heap was registered
    // meanwhile.
    while !heap::lock_large_for_fork(
        || {
            PURGE_LOCK.lock_for_fork();
            POOL.lock_for_fork();
        },
        || {
            // SAFETY: taken just above, on this thread.
            unsafe {
                POOL.unlock_after_fork();
                PURGE_LOCK.unlock_after_fork();
            }
        },
    ) {}
    ARENA.lock_for_fork();
    CACHE.lock_for_fork();
    for list in &ABANDONED {
        list.lock_for_fork();
    }
    profile::lock_for_fork();
    options::lock_texts_for_fork();
}

extern "C" fn parent() {
    // SAFETY: `prepare` took every lock on this thread.
    unsafe {
        options::unlock_texts_after_fork();
        profile::unlock_after_fork();
        for list in ABANDONED.iter().rev() {
            list.unlock_after_fork();
        }
        CACHE.unlock_after_fork();
        ARENA.unlock_after_fork();
        POOL.unlock_after_fork();
        PURGE_LOCK.unlock_after_fork();
        heap::unlock_large_after_fork();
    }
}

extern "C" fn child() {
    // SAFETY: in the child right after fork, single-threaded; `prepare`
    // held every lock across the fork, so what they guard is consistent.
    unsafe {
        options::reset_texts_in_child();
        profile::reset_in_child();
        ARENA.reset_in_child();
        for list in &ABANDONED {
            list.reset_in_child();
        }
        CACHE.reset_in_child();
        POOL.reset_in_child();
        PURGE_LOCK.reset_in_child();
        heap::reset_large_in_child();
    }
    purge::reset_in_child();
    secure::reseed();
}
