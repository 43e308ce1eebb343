//! Deferred purging: returning free memory to the OS after a delay, also
//! when every thread has gone idle.
//!
//! Freed spans stay backed for `OXMALLOC_PURGE_DELAY` milliseconds (reuse
//! within that window costs no page fault). Purges then happen in two ways:
//!
//! * `tick`, called on every 64th class slow path and on every large
//!   allocation (a thread that allocates large blocks only takes few class
//!   slow paths: docs/PERFORMANCE.md E115), purges whatever has fallen due;
//! * once more than [`BACKGROUND_THRESHOLD`] bytes wait for a purge, a
//!   background thread is started (lazily, once per process) that sleeps
//!   until the next purge falls due (from then on, every free that needs a
//!   purge before that wakes it). This is what makes memory come back
//!   when the thread that freed it goes idle without calling the allocator
//!   again. Programs that never free that much never get the thread.
//!
//! The delay adapts ([`delay_ms`]): a timed purge whose memory is in use
//! again within [`REFAULT_WINDOW_MS`] only bought page faults (a program
//! that frees and rebuilds its data every few tens of milliseconds: lua
//! took 10x mimalloc's page faults, docs/PERFORMANCE.md E25), so the delay
//! doubles, up to [`MAX_BACKOFF`] times; each [`CALM_MS`] without such a
//! refault halves it again.

use crate::os::{Os, Platform};
use crate::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use crate::{abandon, arena, options};

/// Dirty free memory above which the background purger is started.
pub const BACKGROUND_THRESHOLD: usize = 4 << 20;

/// 0: no purger thread; 1: wanted (start at the next safe point);
/// 2: running; 3: could not be started.
static PURGER: AtomicU32 = AtomicU32::new(0);
const NONE: u32 = 0;
const WANTED: u32 = 1;
const RUNNING: u32 = 2;
const FAILED: u32 = 3;
/// Futex word the purger sleeps on; bumped to wake it.
static WAKE: AtomicU32 = AtomicU32::new(0);
/// When the sleeping purger will wake by itself (`Os::now_millis`), 0 while
/// it is awake. A free wakes it only when it scheduled a purge earlier than
/// that: a wake-up on every free cost a system call each time and dragged
/// the purger onto a busy core (docs/PERFORMANCE.md, E18).
///
/// Invariant (no lost wake-up): the purger stores this, then (after a
/// `SeqCst` fence) reads the next due time before it sleeps; a freer
/// schedules its purge, then (after a `SeqCst` fence) reads this. One of
/// the two sees the other's write: either the purger does not sleep past
/// the new due time, or the freer wakes it.
static SLEEP_UNTIL: AtomicU64 = AtomicU64::new(0);

/// Reuse this soon after a timed purge means the purge was wasted.
pub const REFAULT_WINDOW_MS: u64 = 1000;
/// Doublings of the purge delay at most (64x: 640 ms with the default 10 ms).
pub const MAX_BACKOFF: u32 = 6;
/// A period without a wasted purge that halves the delay again.
pub const CALM_MS: u64 = 5000;

/// The backoff, in one word so that the doublings and the time they last
/// changed move together in one compare-exchange (two words let a raise
/// and a relax interleave and lose one of them):
/// `since << BACKOFF_BITS | doublings`, where `doublings` (0..=MAX_BACKOFF)
/// is how many times `OXMALLOC_PURGE_DELAY` is doubled now, and `since`
/// (`Os::now_millis`, plus 1 after a raise) is when that last changed:
/// only purges made from then on, under the delay then in effect, can raise
/// it again, so one pass's purges reused raise it once.
static BACKOFF: AtomicU64 = AtomicU64::new(0);
const BACKOFF_BITS: u32 = 4;
const _: () = assert!(MAX_BACKOFF < 1 << BACKOFF_BITS);

/// The doublings and their `since` in a backoff word.
fn unpack(word: u64) -> (u32, u64) {
    ((word & ((1 << BACKOFF_BITS) - 1)) as u32, word >> BACKOFF_BITS)
}

/// The backoff word of `doublings` since `since`.
fn pack(doublings: u32, since: u64) -> u64 {
    since << BACKOFF_BITS | u64::from(doublings)
}

/// How long freed memory stays backed before a timed purge, in
/// milliseconds: `OXMALLOC_PURGE_DELAY` doubled once per recent wasted
/// purge (0 stays 0: purge at once).
#[inline]
pub fn delay_ms() -> u64 {
    let (doublings, _) = unpack(BACKOFF.load(Ordering::Relaxed));
    options::purge_delay_ms().saturating_mul(1 << doublings)
}

/// Memory that a timed purge returned at `purged_at` is in use again at
/// `now` (called by the arena, with its lock held, when it hands out a
/// purged span): if that was within [`REFAULT_WINDOW_MS`], and the purge
/// was made under the current delay, the delay doubles.
pub fn note_reuse(purged_at: u64, now: u64) {
    let word = BACKOFF.load(Ordering::Relaxed);
    let (doublings, since) = unpack(word);
    if purged_at < since || now.saturating_sub(purged_at) >= REFAULT_WINDOW_MS || doublings >= MAX_BACKOFF {
        return;
    }
    // Losing the race means another raise or a relax got in first: this
    // purge then no longer counts (a raise) or the delay just fell (a
    // relax, which the next wasted purge undoes).
    let _ = BACKOFF.compare_exchange(word, pack(doublings + 1, now + 1), Ordering::Relaxed, Ordering::Relaxed);
}

/// Halves the delay once per [`CALM_MS`] gone by without a wasted purge
/// (called at the start of each purge pass).
pub fn relax(now: u64) {
    let word = BACKOFF.load(Ordering::Relaxed);
    let (doublings, since) = unpack(word);
    let steps = now.saturating_sub(since) / CALM_MS;
    if doublings == 0 || steps == 0 {
        return;
    }
    let doublings = doublings.saturating_sub(steps.min(u64::from(MAX_BACKOFF)) as u32);
    // A lost race means the word moved on: nothing to halve this time.
    let _ = BACKOFF.compare_exchange(word, pack(doublings, now), Ordering::Relaxed, Ordering::Relaxed);
}

/// Called when free memory waiting for a purge grew to `dirty_bytes`.
/// Never starts the thread itself (it may run deep inside the allocator,
/// and `pthread_create` allocates): it only asks for it, see [`start_if_wanted`].
///
/// The threshold only decides when to start the purger. Once it runs, any
/// free that needs a purge earlier than it plans to wake wakes it: gated
/// by the threshold too, a free of less than 4 MiB after the purger had
/// gone idle (asleep for up to a minute) stayed resident until then
/// (docs/PERFORMANCE.md E51).
pub fn note_dirty(dirty_bytes: usize) {
    match PURGER.load(Ordering::Relaxed) {
        NONE if dirty_bytes >= BACKGROUND_THRESHOLD && options::background_purge() => {
            let _ = PURGER.compare_exchange(NONE, WANTED, Ordering::Relaxed, Ordering::Relaxed);
        }
        RUNNING => {
            // Pairs with the fence in `sleep_until` (see SLEEP_UNTIL).
            fence(Ordering::SeqCst);
            let until = SLEEP_UNTIL.load(Ordering::Relaxed);
            if until > arena::next_purge_due()
                && SLEEP_UNTIL
                    .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                WAKE.fetch_add(1, Ordering::Release);
                Os::wake(&WAKE, 1);
            }
        }
        _ => {}
    }
}

/// Starts the background purger if it was asked for. Called at the end of
/// the allocator's entry points, where no lock is held and every structure
/// is consistent (so the allocation inside `pthread_create` is harmless).
#[inline]
pub fn start_if_wanted() {
    if PURGER.load(Ordering::Relaxed) == WANTED {
        start_slow();
    }
}

#[cold]
fn start_slow() {
    // Before the thread exists: a child forked between its creation and
    // its first lock would otherwise believe a purger runs (`fork.rs`).
    crate::fork::register();
    if PURGER
        .compare_exchange(WANTED, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
        && !start_thread()
    {
        // No thread (resources, sandbox): slow paths still purge via `tick`.
        PURGER.store(FAILED, Ordering::Relaxed);
    }
}

/// Purges what has fallen due; cheap when nothing has.
#[inline]
pub fn tick() {
    tick_at(Os::now_millis());
}

/// [`tick`] with the clock already read (`now`, from `Os::now_millis`).
#[inline]
pub fn tick_at(now: u64) {
    if arena::purge_due(now) {
        arena::purge(false);
        abandon::sweep();
    }
}

/// The child of `fork` has no purger thread.
pub fn reset_in_child() {
    PURGER.store(NONE, Ordering::Relaxed);
}

/// Whether the background purger has been started in this process.
pub fn purger_running() -> bool {
    PURGER.load(Ordering::Relaxed) == RUNNING
}

fn start_thread() -> bool {
    // SAFETY: plain libc calls with valid out-parameters; the new thread
    // inherits a fully blocked signal mask, so signals keep going to the
    // application's threads; the mask is restored right after.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut thread: libc::pthread_t = core::mem::zeroed();
        let rc = libc::pthread_create(&mut thread, core::ptr::null(), purger_main, core::ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        if rc != 0 {
            return false;
        }
        libc::pthread_detach(thread);
    }
    true
}

extern "C" fn purger_main(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let seen = WAKE.load(Ordering::Acquire);
        let now = Os::now_millis();
        let due = arena::next_purge_due();
        if due > now {
            let idle = due == u64::MAX && arena::dirty_free_bytes() + crate::huge::cache_dirty_bytes() == 0;
            // Nothing waits: sleep until a free wakes us (or a minute
            // passes); else until the next purge falls due (at most a
            // second: cached huge mappings are unmapped on a timer).
            let wake_at = if idle { now + 60_000 } else { due.min(now + 1000) };
            sleep_until(seen, now, wake_at);
            if arena::next_purge_due() > Os::now_millis() {
                continue;
            }
        }
        arena::purge(false);
        abandon::sweep();
        if arena::next_purge_due() <= Os::now_millis() {
            // Another thread holds the purge lock: do not spin.
            Os::wait_timeout(&WAKE, seen, delay_ms().max(1));
        }
    }
}

/// Sleeps until `wake_at` unless a purge is already due before it, or a
/// free asks for an earlier one (`seen`: the value of [`WAKE`] read before
/// the decision to sleep).
fn sleep_until(seen: u32, now: u64, wake_at: u64) {
    SLEEP_UNTIL.store(wake_at, Ordering::Relaxed);
    // Pairs with the fence in `note_dirty` (see SLEEP_UNTIL).
    fence(Ordering::SeqCst);
    if arena::next_purge_due() >= wake_at {
        Os::wait_timeout(&WAKE, seen, wake_at - now);
    }
    SLEEP_UNTIL.store(0, Ordering::Relaxed);
}
