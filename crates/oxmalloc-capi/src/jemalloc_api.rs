//! jemalloc's own entry points (`mallocx`, `rallocx`, `xallocx`,
//! `sallocx`, `dallocx`, `sdallocx`, `nallocx`, `mallctl`,
//! `mallctlnametomib`, `mallctlbymib`, `malloc_stats_print`), for programs
//! built against jemalloc and run with `LD_PRELOAD=liboxmalloc.so`.
//!
//! Why: such a program (Debian's `redis-server` links `libjemalloc.so.2`)
//! calls `malloc` and `free`, which the preload takes over, and also
//! jemalloc's own functions, which it did not: a block from `mallocx` then
//! reached our `free` (an invalid free: reported, and the block leaked), a
//! block from `malloc` reached jemalloc's `sdallocx` or `sallocx` (a
//! pointer jemalloc never handed out: undefined behaviour inside it), and
//! a `mallctl` call started a second allocator in the process (redis polls
//! its statistics every 100 ms: jemalloc's arenas, metadata and background
//! thread cost it about 140 KiB of resident memory, docs/PERFORMANCE.md
//! E61). With these defined here, every call goes to one allocator.
//!
//! Semantics follow jemalloc's manual where oxmalloc has the machinery:
//! - `flags`: the alignment (`MALLOCX_LG_ALIGN` / `MALLOCX_ALIGN`, the low
//!   six bits) and `MALLOCX_ZERO` are honoured; `MALLOCX_TCACHE` and
//!   `MALLOCX_ARENA` are accepted and ignored (one allocator per thread).
//! - `nallocx(size, flags)` is the usable size `mallocx(size, flags)` gives
//!   (`engine::good_size`; `mallocx` allocates exactly that much).
//! - `xallocx` resizes in place or not at all (`engine::raw::expand`) and
//!   returns the block's real size after, as jemalloc does.
//! - `sdallocx` frees without checking the size (jemalloc accepts any size
//!   from the request to the usable size; the hardened build's sized check
//!   wants the request).
//! - `mallctl` knows the names in [`CTLS`] (statistics, purging, the
//!   arena count); every other name is `ENOENT`, so a program that probes
//!   for a jemalloc feature finds it missing. `mallctlnametomib` gives a
//!   one-element MIB for those names and a three-element one for
//!   `arena.<i>.purge` and `arena.<i>.decay`, whose second element is the
//!   arena index to set, as jemalloc's.
//! - `malloc_stats_print` writes oxmalloc's statistics table (the options
//!   string is ignored).

use crate::errno;
use core::ffi::{c_char, c_int, c_uint, c_void, CStr};
use core::ptr;

/// Low bits of `flags`: log2 of the alignment (0: the default, 16).
const LG_ALIGN_MASK: c_int = 0x3f;
/// `MALLOCX_ZERO`.
const ZERO: c_int = 0x40;
/// `MALLCTL_ARENAS_ALL`: the arena index meaning every arena.
const ARENAS_ALL: usize = 4096;

/// The alignment `flags` asks for (at least `malloc`'s 16); `None` for a
/// log2 too large for the address space.
fn alignment(flags: c_int) -> Option<usize> {
    let lg = (flags & LG_ALIGN_MASK) as u32;
    if lg >= usize::BITS - 1 {
        return None;
    }
    Some((1usize << lg).max(engine::raw::MALLOC_ALIGN))
}

/// `mallocx`: at least `size` bytes (a 0 is taken as 1, where jemalloc
/// leaves it undefined) at the alignment in `flags`, zeroed with
/// `MALLOCX_ZERO`; NULL (and `ENOMEM`) when out of memory.
#[no_mangle]
pub extern "C" fn mallocx(size: usize, flags: c_int) -> *mut c_void {
    let Some(align) = alignment(flags) else {
        return errno::enomem();
    };
    let Some(good) = engine::good_size(size, align) else {
        return errno::enomem();
    };
    let p = if flags & ZERO != 0 {
        engine::raw::aligned_zalloc(good, align)
    } else {
        engine::raw::aligned_alloc(good, align)
    };
    if p.is_null() {
        return errno::enomem();
    }
    p.cast()
}

/// `rallocx`: resizes `ptr` to at least `size` bytes at the alignment in
/// `flags`, moving it when it must; with `MALLOCX_ZERO`, the bytes past the
/// old real size are zero. NULL when out of memory (`ptr` is untouched) or
/// when `ptr` is not a live block of oxmalloc's (reported). A NULL `ptr`
/// (undefined in jemalloc) is a `mallocx`.
///
/// # Safety
/// `ptr` is NULL or a live block of this allocator, not used after it
/// moves.
#[no_mangle]
pub unsafe extern "C" fn rallocx(ptr: *mut c_void, size: usize, flags: c_int) -> *mut c_void {
    if ptr.is_null() {
        return mallocx(size, flags);
    }
    let (Some(align), old) = (alignment(flags), engine::raw::usable_size(ptr.cast())) else {
        return errno::enomem();
    };
    if old == 0 {
        // Not a live block of ours (already reported by `usable_size`).
        return ptr::null_mut();
    }
    let Some(good) = engine::good_size(size, align) else {
        return errno::enomem();
    };
    // SAFETY: caller's contract; `ptr` is a live block (checked above).
    let moved = unsafe { engine::raw::realloc_aligned(ptr.cast(), good, align) };
    if moved.is_null() {
        return errno::enomem();
    }
    if flags & ZERO != 0 {
        let now = engine::raw::usable_size(moved);
        if now > old {
            // SAFETY: `now` usable bytes at `moved`; the first `old` were kept.
            unsafe { ptr::write_bytes(moved.add(old), 0, now - old) };
        }
    }
    moved.cast()
}

/// `xallocx`: resizes `ptr` in place to at least `size + extra` bytes if
/// it can, else to at least `size` (`engine::raw::expand`: a large block
/// gives back or takes whole slices after it, a huge block's mapping is
/// cut or grows where it lies; class blocks keep their size), never moving
/// it; returns the block's real size after (less than `size`: "could not
/// be resized in place"). The flags'
/// alignment holds, since the block stays where it is; with
/// `MALLOCX_ZERO` the bytes gained read as zero. 0 for NULL.
///
/// # Safety
/// `ptr` is NULL or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn xallocx(ptr: *mut c_void, size: usize, extra: usize, flags: c_int) -> usize {
    let ptr = ptr.cast::<u8>();
    let old = engine::raw::usable_size(ptr);
    if old == 0 {
        // NULL, or not a live block of ours (reported once, here).
        return 0;
    }
    // SAFETY: caller's contract. A failed attempt leaves the block as it
    // was, so the second one starts from the same block.
    let resized = unsafe {
        !engine::raw::expand(ptr, size.saturating_add(extra)).is_null()
            || (extra != 0 && !engine::raw::expand(ptr, size).is_null())
    };
    let now = engine::raw::usable_size(ptr);
    if resized && flags & ZERO != 0 && now > old {
        // SAFETY: `now` usable bytes at `ptr`, the first `old` kept.
        unsafe { ptr::write_bytes(ptr.add(old), 0, now - old) };
    }
    now
}

/// `sallocx`: the real (usable) size of `ptr`; 0, reported, for a pointer
/// that is not a live block of oxmalloc's.
///
/// # Safety
/// `ptr` is a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn sallocx(ptr: *const c_void, _flags: c_int) -> usize {
    engine::raw::usable_size(ptr.cast_mut().cast())
}

/// `dallocx`: frees `ptr` (as `free`).
///
/// # Safety
/// `ptr` is NULL or a live block of this allocator, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dallocx(ptr: *mut c_void, _flags: c_int) {
    // SAFETY: caller's contract.
    unsafe { engine::raw::free(ptr.cast()) }
}

/// `sdallocx`: frees `ptr` (as `free`; the size is not checked).
///
/// # Safety
/// As for [`dallocx`].
#[no_mangle]
pub unsafe extern "C" fn sdallocx(ptr: *mut c_void, _size: usize, _flags: c_int) {
    // SAFETY: caller's contract.
    unsafe { engine::raw::free(ptr.cast()) }
}

/// `nallocx`: the real size `mallocx(size, flags)` gives, without
/// allocating; 0 when no block can be that large.
#[no_mangle]
pub extern "C" fn nallocx(size: usize, flags: c_int) -> usize {
    alignment(flags)
        .and_then(|align| engine::good_size(size, align))
        .unwrap_or(0)
}

/// What a `mallctl` name reads or does.
#[derive(Clone, Copy)]
enum Ctl {
    /// `uint64_t`, read and write: a write is a refresh (oxmalloc's
    /// statistics are always current), and bumps the value read.
    Epoch,
    /// `bool`, read-only.
    Bool(fn() -> bool),
    /// `size_t`, read-only.
    Size(fn(&engine::Stats) -> u64),
    /// `unsigned`, read-only.
    Unsigned(u32),
    /// Neither read nor written: an action.
    Action(fn()),
}

/// Every `mallctl` name that oxmalloc answers. `arena.<i>.purge` and
/// `arena.<i>.decay` (any `i` up to the arena count, or
/// `MALLCTL_ARENAS_ALL`) are recognised by [`arena_purge_target`].
const CTLS: &[(&str, Ctl)] = &[
    ("epoch", Ctl::Epoch),
    ("config.stats", Ctl::Bool(|| true)),
    ("background_thread", Ctl::Bool(|| engine::stats().background_purger)),
    ("arenas.narenas", Ctl::Unsigned(1)),
    ("thread.tcache.flush", Ctl::Action(|| engine::collect(false))),
    // Bytes in live blocks.
    ("stats.allocated", Ctl::Size(|s| s.allocated.current)),
    // Bytes of the pages holding blocks (slices handed out, huge blocks).
    ("stats.active", Ctl::Size(|s| s.spans.current + s.huge.current)),
    // Memory that may be backed: an upper bound of what is resident.
    ("stats.resident", Ctl::Size(|s| s.committed)),
    ("stats.mapped", Ctl::Size(|s| s.reserved.current)),
    // Address space kept without memory behind it.
    (
        "stats.retained",
        Ctl::Size(|s| s.reserved.current.saturating_sub(s.committed)),
    ),
];

/// The value `epoch` reads: bumped by each write.
static EPOCH: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// The first element of the MIB of `arena.<i>.purge` and
/// `arena.<i>.decay` (past every index of [`CTLS`]); the second is the
/// arena index, the third [`ARENA_ACTIONS`]' index of the action.
const ARENA_MIB: usize = CTLS.len();
/// The actions of `arena.<i>.*`, all of which purge (oxmalloc has one set
/// of free memory, which its purge delay already decays).
const ARENA_ACTIONS: [&[u8]; 2] = [b"purge", b"decay"];

/// The arena index and the action's place in [`ARENA_ACTIONS`] when `name`
/// is `arena.<i>.purge` or `arena.<i>.decay`; `None` when not of that form.
fn parse_arena_ctl(name: &[u8]) -> Option<(usize, usize)> {
    let rest = name.strip_prefix(b"arena.")?;
    let dot = rest.iter().position(|&b| b == b'.')?;
    let (index, action) = (&rest[..dot], &rest[dot + 1..]);
    let action = ARENA_ACTIONS.iter().position(|&a| a == action)?;
    if index.is_empty() || index.len() > 9 || !index.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let i = index.iter().fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    Some((i, action))
}

/// Runs `arena.<arena>.purge` or `.decay`: `EPERM` when asked to read or
/// write a value, `EFAULT` for an arena that does not exist (0 is
/// oxmalloc; 1, the arena count, and `MALLCTL_ARENAS_ALL` mean all), else
/// purges every free page now.
fn run_arena_ctl(arena: usize, oldp: *mut c_void, newp: *mut c_void) -> c_int {
    if !oldp.is_null() || !newp.is_null() {
        return libc::EPERM;
    }
    if arena > 1 && arena != ARENAS_ALL {
        return libc::EFAULT;
    }
    engine::collect(true);
    0
}

/// Reads `value` into `*oldp` when asked (`EINVAL` when `*oldlenp` is not
/// its size).
///
/// # Safety
/// `oldp` is NULL or valid for writing `*oldlenp` bytes; `oldlenp` is NULL
/// or valid.
unsafe fn read_out<T: Copy>(value: T, oldp: *mut c_void, oldlenp: *mut usize) -> c_int {
    if oldp.is_null() {
        return 0;
    }
    // SAFETY: caller's contract.
    if oldlenp.is_null() || unsafe { *oldlenp } != size_of::<T>() {
        return libc::EINVAL;
    }
    // SAFETY: caller's contract: `size_of::<T>()` writable bytes (unaligned
    // allowed, as C callers pass any buffer).
    unsafe { oldp.cast::<T>().write_unaligned(value) };
    0
}

/// A value a control reads, in the C type the caller's buffer holds.
enum Value {
    U64(u64),
    Bool(bool),
    Unsigned(c_uint),
    Size(usize),
}

/// Runs control `ctl` with `mallctl`'s arguments.
///
/// # Safety
/// As for [`mallctl`].
unsafe fn run_ctl(ctl: Ctl, oldp: *mut c_void, oldlenp: *mut usize, newp: *mut c_void, newlen: usize) -> c_int {
    use core::sync::atomic::Ordering;
    if !newp.is_null() && !matches!(ctl, Ctl::Epoch) {
        return libc::EPERM;
    }
    let value = match ctl {
        Ctl::Epoch => {
            if !newp.is_null() {
                if newlen != size_of::<u64>() {
                    return libc::EINVAL;
                }
                EPOCH.fetch_add(1, Ordering::Relaxed);
            }
            Value::U64(EPOCH.load(Ordering::Relaxed))
        }
        Ctl::Bool(get) => Value::Bool(get()),
        Ctl::Unsigned(n) => Value::Unsigned(n),
        // (A snapshot only when there is somewhere to put it.)
        Ctl::Size(get) if !oldp.is_null() => Value::Size(get(&engine::stats()) as usize),
        Ctl::Size(_) => return 0,
        Ctl::Action(run) => {
            if !oldp.is_null() {
                return libc::EPERM;
            }
            run();
            return 0;
        }
    };
    // SAFETY: forwarded contract (`oldp`, `oldlenp`).
    unsafe {
        match value {
            Value::U64(v) => read_out(v, oldp, oldlenp),
            Value::Bool(v) => read_out(v, oldp, oldlenp),
            Value::Unsigned(v) => read_out(v, oldp, oldlenp),
            Value::Size(v) => read_out(v, oldp, oldlenp),
        }
    }
}

/// `mallctl`: reads or writes the control `name` (see [`CTLS`]); 0 on
/// success, `ENOENT` for a name oxmalloc does not have, `EINVAL` for a
/// wrong length, `EPERM` for writing a read-only value (or reading an
/// action), `EFAULT` for an arena that does not exist.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `oldp` is NULL or valid for
/// writing `*oldlenp` bytes, with `oldlenp` valid when `oldp` is not NULL;
/// `newp` is NULL or valid for reading `newlen` bytes.
#[no_mangle]
pub unsafe extern "C" fn mallctl(
    name: *const c_char,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    if name.is_null() {
        return libc::ENOENT;
    }
    // SAFETY: caller's contract.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    if let Some(&(_, ctl)) = CTLS.iter().find(|(n, _)| n.as_bytes() == name) {
        // SAFETY: forwarded contract.
        return unsafe { run_ctl(ctl, oldp, oldlenp, newp, newlen) };
    }
    match parse_arena_ctl(name) {
        Some((arena, _)) => run_arena_ctl(arena, oldp, newp),
        None => libc::ENOENT,
    }
}

/// `mallctlnametomib`: a one-element MIB (the name's place in [`CTLS`]) for
/// the names of [`CTLS`]; for `arena.<i>.purge` and `arena.<i>.decay`
/// three elements ([`ARENA_MIB`], `i`, the action), whose second a caller
/// may change before `mallctlbymib`, as jemalloc documents. `ENOENT` for
/// other names, `EINVAL` when `*miblenp` is too small for the MIB.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `mibp` is valid for writing
/// `*miblenp` elements; `miblenp` is valid.
#[no_mangle]
pub unsafe extern "C" fn mallctlnametomib(name: *const c_char, mibp: *mut usize, miblenp: *mut usize) -> c_int {
    if name.is_null() || mibp.is_null() || miblenp.is_null() {
        return libc::ENOENT;
    }
    // SAFETY: caller's contract.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    let mib = if let Some(index) = CTLS.iter().position(|(n, _)| n.as_bytes() == name) {
        [index, 0, 0]
    } else if let Some((arena, action)) = parse_arena_ctl(name) {
        [ARENA_MIB, arena, action]
    } else {
        return libc::ENOENT;
    };
    let len = if mib[0] == ARENA_MIB { 3 } else { 1 };
    // SAFETY: caller's contract: `*miblenp` writable elements at `mibp`.
    unsafe {
        if *miblenp < len {
            return libc::EINVAL;
        }
        ptr::copy_nonoverlapping(mib.as_ptr(), mibp, len);
        *miblenp = len;
    }
    0
}

/// `mallctlbymib`: `mallctl` for a MIB from [`mallctlnametomib`].
///
/// # Safety
/// `mibp` is valid for reading `miblen` elements; the rest as for
/// [`mallctl`].
#[no_mangle]
pub unsafe extern "C" fn mallctlbymib(
    mibp: *const usize,
    miblen: usize,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    if mibp.is_null() || miblen == 0 {
        return libc::ENOENT;
    }
    // SAFETY: caller's contract: `miblen` readable elements.
    let mib = unsafe { core::slice::from_raw_parts(mibp, miblen) };
    match *mib {
        [ARENA_MIB, arena, action] if action < ARENA_ACTIONS.len() => run_arena_ctl(arena, oldp, newp),
        [index] => match CTLS.get(index) {
            // SAFETY: forwarded contract.
            Some(&(_, ctl)) => unsafe { run_ctl(ctl, oldp, oldlenp, newp, newlen) },
            None => libc::ENOENT,
        },
        _ => libc::ENOENT,
    }
}

/// jemalloc's write callback: `(cbopaque, NUL-terminated text)`.
pub type WriteCallback = unsafe extern "C" fn(*mut c_void, *const c_char);

/// `malloc_stats_print`: oxmalloc's statistics table, one line per call of
/// `write_cb(cbopaque, line)`, or on stderr when `write_cb` is NULL; the
/// options string is ignored. Does not allocate.
///
/// # Safety
/// `write_cb` is NULL or a function that may be called with `cbopaque`
/// and a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn malloc_stats_print(
    write_cb: Option<WriteCallback>,
    cbopaque: *mut c_void,
    _opts: *const c_char,
) {
    let Some(write_cb) = write_cb else {
        engine::print_stats();
        return;
    };
    engine::print_stats_to(&mut |line| {
        let mut text = [0u8; 1024];
        let len = line.len().min(text.len() - 1);
        text[..len].copy_from_slice(&line[..len]);
        // SAFETY: caller's contract; `text` is NUL-terminated.
        unsafe { write_cb(cbopaque, text.as_ptr().cast()) };
    });
}
