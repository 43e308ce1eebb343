//! oxmalloc: a fast, scalable, memory-lean general-purpose allocator.
//!
//! Use it as Rust's global allocator:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;
//!
//! let v: Vec<u64> = (0..1000).collect();
//! assert_eq!(v.iter().sum::<u64>(), 499_500);
//! ```
//!
//! The design follows mimalloc's free-list sharding: thread-local heaps,
//! pages of same-size blocks with separate `free`, `local_free` and atomic
//! `thread_free` lists, and deferred work on a regular slow-path cadence.
//! Read the modules in this order: [`size_class`], `page`, `heap`,
//! `alloc`, `free`, `chunk` and `arena` (where memory comes from), `huge`,
//! `abandon` and `thread` (thread exit), `purge` (returning memory), `os`
//! (the only platform code).
//!
//! The engine is `#![no_std]`, uses `libc` for system calls only, and never
//! allocates inside itself.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(feature = "nightly", feature(allocator_api))]
#![warn(missing_docs)]

mod abandon;
mod alloc;
mod arena;
mod chunk;
mod fatal;
mod fork;
mod free;
mod free_cache;
mod heap;
mod heap_handle;
mod held_frees;
mod huge;
mod init;
pub mod options;
mod os;
mod page;
#[cfg(feature = "page-map")]
mod page_map;
mod page_queue;
pub mod profile;
mod purge;
pub mod raw;
mod secure;
pub mod size_class;
mod stats;
mod sync;
mod thread;
mod thread_free;
mod tls;
mod util;

pub use fatal::HeapError;
pub use heap_handle::Heap;
pub use stats::{ClassStats, GaugeValue, ProcessStats, Stats};

use core::alloc::{GlobalAlloc, Layout};

/// The oxmalloc allocator, for `#[global_allocator]`.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OxMalloc;

/// Alignments from which huge blocks keep their header below the block, so
/// the pointer-to-header arithmetic of the fast paths does not apply.
const FAST_ALIGN_LIMIT: usize = chunk::CHUNK_SIZE;

// SAFETY: every method follows the GlobalAlloc contract: blocks are at
// least `layout.size()` bytes, aligned to `layout.align()`, distinct while
// live; failures return null; nothing unwinds (the engine has no panicking
// paths, and the workspace builds with panic=abort).
unsafe impl GlobalAlloc for OxMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        alloc::alloc(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        alloc::alloc_zeroed(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if secure::ENABLED {
            // SAFETY: the caller guarantees `ptr` is a live block of ours
            // allocated with `layout`.
            unsafe { free::free_sized(ptr, layout.size()) }
        } else if layout.align() >= FAST_ALIGN_LIMIT {
            // SAFETY: the caller guarantees `ptr` is a live block of ours.
            unsafe { free::free_checked(ptr) }
        } else {
            // SAFETY: as above; its header is at the chunk base.
            unsafe { free::free_trusted(ptr) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let page = if layout.align() >= FAST_ALIGN_LIMIT {
            match chunk::page_of_checked(ptr) {
                Some(page) => page,
                None => return core::ptr::null_mut(),
            }
        } else {
            chunk::page_of_trusted(ptr)
        };
        let page = alloc::resolve_forward(page);
        // SAFETY: the caller guarantees `ptr` is live with this layout and
        // `new_size` is non-zero; `page` is its descriptor.
        unsafe { alloc::realloc_block(ptr, page, new_size, layout.align()) }
    }
}

/// The usable size of a block: at least what was asked for; writing up to
/// it is allowed. Returns 0 (after reporting the error) when `ptr` is not
/// the start of a live block of oxmalloc's.
pub fn usable_size(ptr: *const u8) -> usize {
    match alloc::usable_size_checked(ptr.cast_mut()) {
        Some(size) => size,
        None => {
            if !ptr.is_null() {
                fatal::report(HeapError::InvalidUsableSize, ptr as usize, 0, 0);
            }
            0
        }
    }
}

/// Resizes the block `ptr` in place, never moving it, so that at least
/// `size` bytes are usable; returns whether it did (the block is unchanged
/// when not). What fits: a class block up to its usable size; a large
/// block (above 64 KiB) grows into free slices right after it, or gives
/// its last slices back; a huge block (above 4 MiB) asked for more than
/// 4 MiB unmaps its tail or grows its mapping into free address space right
/// after it, and fits any smaller size as it is. The hardened
/// build resizes nothing: it answers `true` up to the size first asked
/// for. mimalloc's `mi_expand`, jemalloc's `xallocx`; C: `ox_expand`.
///
/// # Safety
/// `ptr` must be null or a live block of oxmalloc's, which no other thread
/// resizes or frees meanwhile. A `ptr` that is not a live block is
/// reported (invalid realloc) and answered `false`.
pub unsafe fn expand(ptr: *mut u8, size: usize) -> bool {
    // SAFETY: forwarded contract.
    !unsafe { raw::expand(ptr, size) }.is_null()
}

/// Returns free memory to the OS: collects the calling thread's pages
/// (with `force`, also the pages it is allocating from), gives back
/// abandoned pages that emptied, and purges free memory (with `force`, all
/// of it at once; otherwise what has waited its purge delay).
pub fn collect(force: bool) {
    if tls::has_heap() {
        // SAFETY: the calling thread's own heap.
        unsafe { (*tls::heap()).collect(force) };
    }
    abandon::sweep();
    arena::purge(force);
    purge::start_if_wanted();
}

/// A snapshot of the statistics: exact for the calling thread's own work;
/// other live threads' figures are as their pages last reported them (on
/// slow paths), and exact again once those threads exit.
pub fn stats() -> Stats {
    stats::snapshot()
}

/// Prints the statistics as a table on stderr (without allocating).
pub fn print_stats() {
    stats::print()
}

/// The table of [`print_stats`], given to `out` one line at a time (each
/// with its newline), without allocating: for callers that send it
/// elsewhere than stderr (jemalloc's `malloc_stats_print` callback).
pub fn print_stats_to(out: &mut dyn FnMut(&[u8])) {
    stats::print_to(out)
}

/// The usable size that allocating `size` bytes aligned to `align` (a
/// power of two, 16 for plain `malloc`) gives, without allocating: what
/// jemalloc's `nallocx` and mimalloc's `mi_good_size` answer. Allocating
/// exactly that many bytes at that alignment gives a block of exactly that
/// usable size. `None` when nothing that large can be allocated.
pub fn good_size(size: usize, align: usize) -> Option<usize> {
    alloc::good_size(size, align.max(raw::MALLOC_ALIGN))
}

/// Resident set size of the process in bytes (from `/proc/self/statm`).
pub fn resident_bytes() -> usize {
    use os::Platform;
    os::Os::resident_bytes()
}

/// The TLS model this build uses (`initial-exec`, `general-dynamic` or `pthread-key`).
pub const TLS_MODEL: &str = tls::MODEL;

/// Whether this is the hardened build (feature `secure`).
pub const HARDENED: bool = secure::ENABLED;

/// Whether the allocator's `fork` handlers are registered. They are
/// registered once the process has had a second thread, or at start-up in
/// the hardened build, or by `raw::process_init`; for tests and diagnostics.
pub fn fork_handlers_registered() -> bool {
    fork::registered()
}

/// A one-way fingerprint of the hardened build's process secret (drawn from
/// `getrandom` at start-up and again in a `fork` child); for tests.
pub fn secret_fingerprint() -> u64 {
    secure::secret_fingerprint()
}

// The unit tests run on oxmalloc itself, except under Miri, which checks
// the engine's pure logic (size classes, queues, masks, parsing, locks)
// with its own allocator: the OS layer's mmap/madvise/TLS assembly are
// beyond what Miri emulates.
#[cfg(all(test, not(miri)))]
#[global_allocator]
static TEST_ALLOCATOR: OxMalloc = OxMalloc;
