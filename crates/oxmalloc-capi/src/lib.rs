//! `liboxmalloc`: the oxmalloc engine behind the C allocator's ABI.
//!
//! Building this crate (`cargo build --release -p oxmalloc-capi`) leaves
//! `target/release/liboxmalloc.so` and `target/release/liboxmalloc.a`. The
//! shared library is a drop-in replacement for the C allocator:
//!
//! ```text
//! LD_PRELOAD=target/release/liboxmalloc.so program
//! ```
//!
//! It exports, with glibc's names and semantics:
//!
//! * the malloc family ([`libc_api`]): `malloc`, `free`, `calloc`, `realloc`,
//!   `reallocarray`, `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`,
//!   `pvalloc`, `malloc_usable_size`, `cfree`, and glibc's `__libc_*` aliases;
//! * glibc's extras ([`glibc_extras`]): `malloc_trim`, `malloc_stats`,
//!   `mallopt`, `mallinfo`, `mallinfo2`;
//! * every C++ `operator new` / `operator delete` ([`cxx`]);
//! * jemalloc's own API ([`jemalloc_api`]: `mallocx`, `rallocx`, `xallocx`,
//!   `sallocx`, `dallocx`, `sdallocx`, `nallocx`, `mallctl`,
//!   `mallctlnametomib`, `mallctlbymib`, `malloc_stats_print`), so that a
//!   program built against jemalloc runs on oxmalloc alone when preloaded;
//! * a prefixed API, `ox_*` ([`prefixed`]), with first-class heaps,
//!   statistics as JSON and heap profiling ([`heaps`]), declared in
//!   `include/oxmalloc.h`.
//!
//! No entry point allocates other than through the engine, and nothing here
//! uses `std`. Errors follow glibc: a failed allocation returns NULL with
//! `errno = ENOMEM`; a bad alignment gives `EINVAL`; `free` preserves
//! `errno` (the engine's system-call wrappers restore it).
//!
//! Start-up: the loader and libc call `malloc` before any constructor runs;
//! the engine initialises lazily inside its slow path. The constructor
//! below only makes sure the process-wide set-up (options, `fork` handlers)
//! is done at load time even if nothing has allocated yet. The destructor
//! prints statistics when `OXMALLOC_SHOW_STATS` is set.

#![no_std]
#![warn(missing_docs)]

pub mod cxx;
mod errno;
pub mod glibc_extras;
pub mod heaps;
pub mod jemalloc_api;
pub mod libc_api;
pub mod prefixed;

use engine::options::{self, Opt};

/// Writes `parts` to standard error as one `write(2)` (at most 256 bytes),
/// without allocating.
pub(crate) fn write_stderr(parts: &[&[u8]]) {
    let mut buf = [0u8; 256];
    let mut len = 0;
    for part in parts {
        for &b in *part {
            if len < buf.len() {
                buf[len] = b;
                len += 1;
            }
        }
    }
    let mut done = 0;
    while done < len {
        // SAFETY: writes from a valid stack buffer.
        let n = unsafe { libc::write(2, buf[done..].as_ptr().cast(), len - done) };
        if n <= 0 {
            // SAFETY: __errno_location returns this thread's errno slot.
            if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return;
        }
        done += n as usize;
    }
}

/// Formats `n` in decimal into `buf`, returning the digits.
pub(crate) fn decimal(n: usize, buf: &mut [u8; 20]) -> &[u8] {
    engine::raw::decimal(n as u64, buf)
}

/// Writes one line and aborts (never allocates, never unwinds).
#[cold]
pub(crate) fn die(parts: &[&[u8]]) -> ! {
    write_stderr(parts);
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Rust code linked into the library (a dependency that uses `alloc`, say)
/// allocates from oxmalloc too.
#[global_allocator]
static RUST_ALLOCATOR: engine::OxMalloc = engine::OxMalloc;

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Only the location: formatting the message could need more than a
    // stack buffer, and nothing here may allocate.
    let mut line_buf = [0u8; 20];
    match info.location() {
        Some(loc) => die(&[
            b"oxmalloc: fatal: panic at ",
            loc.file().as_bytes(),
            b":",
            decimal(loc.line() as usize, &mut line_buf),
            b"\n",
        ]),
        None => die(&[b"oxmalloc: fatal: panic\n"]),
    }
}

// Without LTO (the dev profile), the precompiled `core` keeps references to
// the unwinding personality routine, which only `std` defines: the shared
// library would then fail to load ("undefined symbol: rust_eh_personality").
// Nothing here ever unwinds (panic = "abort", and C++ exceptions only cross
// the assembly frames of `cxx`), so a hidden routine that aborts satisfies
// the reference without exporting anything.
core::arch::global_asm!(
    ".pushsection .text.rust_eh_personality,\"ax\",@progbits",
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality,@function",
    "rust_eh_personality:",
    "jmp {abort}",
    ".size rust_eh_personality, . - rust_eh_personality",
    ".popsection",
    abort = sym personality_called,
);

/// Reached only if something tries to unwind through Rust frames.
extern "C" fn personality_called() -> ! {
    die(&[b"oxmalloc: fatal: an exception tried to unwind through oxmalloc\n"])
}

/// Library constructor: process-wide set-up (options from the environment,
/// the thread-exit key) at load time, and the `fork` handlers if the process
/// already has threads (a late `dlopen`); otherwise the engine registers
/// them once it has (`fork.rs` in the engine).
extern "C" fn on_load() {
    // One allocation first: the engine runs its "after the first thread"
    // work (the OXMALLOC_VERBOSE banner, OXMALLOC_RESERVE) only when the
    // first thread set-up is also the one that initialises the process, so
    // `process_init` alone, when nothing has allocated yet, would skip it.
    let probe = engine::raw::malloc(1);
    // SAFETY: `probe` is null or a block just allocated and not used.
    unsafe { engine::raw::free(probe) };
    engine::raw::process_init();
}

/// Library destructor: the `OXMALLOC_SHOW_STATS` summary. `.fini_array`
/// runs once per process, at `exit` (not at `_exit`, and not in a child
/// that leaves with `_exit`).
extern "C" fn on_unload() {
    if options::get(Opt::ShowStats) != 0 {
        engine::print_stats();
    }
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static ON_UNLOAD: extern "C" fn() = on_unload;
