//! `fork` support: every allocator lock is taken before `fork`, released
//! in the parent, and reset in the child (where the threads that might have
//! held them do not exist). The child also gets fresh secrets and no
//! background purger.
//!
//! The handlers are registered once the process has had a second thread,
//! not at start-up (see [`register_if_needed`]).
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
use crate::os::{Os, Platform};
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::{heap, options, profile, purge, secure};

/// The handlers are not registered.
const UNREGISTERED: u32 = 0;
/// A thread is registering them (others wait for it: see [`register`]).
const REGISTERING: u32 = 1;
/// The handlers are registered (for good).
const REGISTERED: u32 = 2;

/// Where the handlers stand: [`UNREGISTERED`], [`REGISTERING`] or
/// [`REGISTERED`], in that order only.
static HANDLERS: AtomicU32 = AtomicU32::new(UNREGISTERED);

/// Registers the handlers (once per process), and returns once they are.
///
/// A thread that finds another one registering waits for it: otherwise it
/// could take a lock before the handlers exist, and a `fork` at that
/// moment would leave the lock held in the child. It waits 100 ms at most.
/// glibc holds its handler-list lock from a `fork`'s prepare handlers to
/// its parent handlers, so `pthread_atfork` blocks while another thread
/// forks; if another library's prepare handler allocates and needs one of
/// our locks meanwhile, the forking thread is the one waiting here, and an
/// unbounded wait would never end. That `fork` runs without our handlers
/// in any case.
pub fn register() {
    match HANDLERS.compare_exchange(UNREGISTERED, REGISTERING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: the handlers have the C ABI and stay valid for the process lifetime.
            unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
            HANDLERS.store(REGISTERED, Ordering::Release);
            Os::wake(&HANDLERS, u32::MAX);
        }
        Err(_) => {
            for _ in 0..100 {
                if HANDLERS.load(Ordering::Acquire) == REGISTERED {
                    break;
                }
                Os::wait_timeout(&HANDLERS, REGISTERING, 1);
            }
        }
    }
}

/// Whether the handlers are registered.
pub fn registered() -> bool {
    HANDLERS.load(Ordering::Acquire) == REGISTERED
}

/// Registers the handlers unless this process has never had a second
/// thread (nor is the hardened build, whose child needs fresh secrets).
///
/// Why wait: `pthread_atfork` sits in a part of libc's text that nothing
/// else a small program runs touches, and calling it keeps 64 KiB of
/// libc resident (docs/PERFORMANCE.md E96). The handlers matter only when
/// a thread other than the one calling `fork` may hold one of our locks,
/// and with one thread there is no other. So every lock is taken through
/// [`before_lock`], which registers the handlers first once the process
/// has (ever) had a second thread. A thread that holds one of our locks
/// cannot create a thread meanwhile: no lock is held across a call out of
/// the allocator, except `Heap::walk`'s visitor, and `walk` registers the
/// handlers first, as starting the purger thread does. So once a second
/// thread exists, every lock taken from then on was taken after the
/// handlers were registered.
#[cold]
#[inline(never)]
pub fn register_if_needed() {
    if secure::ENABLED || !Os::single_threaded() {
        register();
    }
}

/// Called before taking any of the allocator's locks (see
/// [`register_if_needed`]).
#[inline(always)]
pub fn before_lock() {
    if HANDLERS.load(Ordering::Relaxed) != REGISTERED {
        register_if_needed();
    }
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
