//! Process initialisation: a lazy, atomic do-once inside the slow path.
//!
//! The dynamic loader and the C runtime call `malloc` before any
//! constructor runs, from any thread and through any entry point, so there
//! is no "init function" to rely on: the first slow path of the first
//! thread runs [`ensure`]. Nothing in it allocates; work that may allocate
//! (registering `fork` handlers, printing the banner) runs afterwards, once
//! the thread has its heap ([`after_first_thread`]).

use crate::os::{Os, Platform};
use crate::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::{arena, fork, options, secure, thread};

const UNINIT: u32 = 0;
const RUNNING: u32 = 1;
const DONE: u32 = 2;

static STATE: AtomicU32 = AtomicU32::new(UNINIT);

/// Initialises the process once.
#[inline]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != DONE {
        ensure_slow();
    }
}

#[cold]
fn ensure_slow() {
    if STATE
        .compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Acquire)
        .is_ok()
    {
        options::load_from_env();
        // A copy that is never written again: the profile keeps the pointer
        // until exit.
        crate::profile::init_from_options();
        Os::page_size();
        secure::init();
        thread::create_key();
        STATE.store(DONE, Ordering::Release);
        Os::wake(&STATE, u32::MAX);
        return;
    }
    // Another thread is initialising: wait (briefly; nothing in it blocks).
    while STATE.load(Ordering::Acquire) != DONE {
        Os::wait_timeout(&STATE, RUNNING, 1);
    }
}

/// Whether `after_first_thread` ran.
static AFTER_FIRST: AtomicBool = AtomicBool::new(false);

/// Work after the first thread got its heap: may allocate. Runs once, also
/// when the process was initialised earlier without a heap (a library
/// constructor calling `raw::process_init`).
pub fn after_first_thread() {
    if AFTER_FIRST.swap(true, Ordering::AcqRel) {
        return;
    }
    fork::register_if_needed();
    let reserve = options::get(options::Opt::Reserve);
    if reserve > 0 {
        arena::reserve(reserve as usize);
    }
    if options::verbose() {
        crate::stats::print_banner();
    }
    crate::profile::start_if_requested();
}
