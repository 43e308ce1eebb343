//! glibc's malloc extras: `malloc_trim`, `malloc_stats`, `mallopt`,
//! `mallinfo`, `mallinfo2`. A program that calls them keeps working, and
//! the answers describe oxmalloc's memory, not glibc's unused arenas.

use core::ffi::c_int;

/// `malloc_trim(3)`: returns free memory to the OS at once
/// (`collect(force)`); the padding argument is ignored. Returns 1 (memory
/// may have been released).
#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    engine::collect(true);
    1
}

/// `malloc_stats(3)`: prints oxmalloc's statistics on stderr.
#[no_mangle]
pub extern "C" fn malloc_stats() {
    engine::print_stats();
}

/// `mallopt(3)`: glibc's tunables do not apply to oxmalloc (use the
/// `OXMALLOC_*` environment variables). Known parameters are accepted and
/// ignored (returns 1); unknown ones are an error (returns 0), as in glibc.
#[no_mangle]
pub extern "C" fn mallopt(param: c_int, _value: c_int) -> c_int {
    // M_MXFAST 1, M_NLBLKS 2, M_GRAIN 3, M_KEEP 4, M_TRIM_THRESHOLD -1,
    // M_TOP_PAD -2, M_MMAP_THRESHOLD -3, M_MMAP_MAX -4, M_CHECK_ACTION -5,
    // M_PERTURB -6, M_ARENA_TEST -7, M_ARENA_MAX -8.
    c_int::from((-8..=4).contains(&param) && param != 0)
}

/// `struct mallinfo2` (glibc 2.33+).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MallInfo2 {
    /// Bytes of chunk memory handed to pages and large blocks.
    pub arena: usize,
    /// Number of free chunks (not tracked: 0).
    pub ordblks: usize,
    /// Number of free fastbin blocks (none: 0).
    pub smblks: usize,
    /// Number of huge mappings (not tracked: 0).
    pub hblks: usize,
    /// Bytes in huge blocks (each its own mapping).
    pub hblkhd: usize,
    /// Unused by glibc (0).
    pub usmblks: usize,
    /// Bytes in free fastbin blocks (none: 0).
    pub fsmblks: usize,
    /// Bytes in use: `arena + hblkhd` (pages count whole, free blocks in
    /// them included).
    pub uordblks: usize,
    /// Free bytes (not tracked: 0).
    pub fordblks: usize,
    /// Free memory that trimming would give back (not tracked: 0).
    pub keepcost: usize,
}

/// `struct mallinfo` (the same fields as `int`, clamped).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MallInfo {
    /// See [`MallInfo2`].
    pub arena: c_int,
    /// See [`MallInfo2`].
    pub ordblks: c_int,
    /// See [`MallInfo2`].
    pub smblks: c_int,
    /// See [`MallInfo2`].
    pub hblks: c_int,
    /// See [`MallInfo2`].
    pub hblkhd: c_int,
    /// See [`MallInfo2`].
    pub usmblks: c_int,
    /// See [`MallInfo2`].
    pub fsmblks: c_int,
    /// See [`MallInfo2`].
    pub uordblks: c_int,
    /// See [`MallInfo2`].
    pub fordblks: c_int,
    /// See [`MallInfo2`].
    pub keepcost: c_int,
}

fn info2() -> MallInfo2 {
    // Only the statistics every engine version has: memory in spans (pages
    // and large blocks handed out) and in huge blocks.
    let s = engine::stats();
    let huge = s.huge.current as usize;
    let spans = s.spans.current as usize;
    MallInfo2 {
        arena: spans,
        hblkhd: huge,
        uordblks: spans + huge,
        ..MallInfo2::default()
    }
}

/// `mallinfo2(3)`.
#[no_mangle]
pub extern "C" fn mallinfo2() -> MallInfo2 {
    info2()
}

/// `mallinfo(3)`: as `mallinfo2`, each field clamped to `INT_MAX`.
#[no_mangle]
pub extern "C" fn mallinfo() -> MallInfo {
    let i = info2();
    let c = |v: usize| v.min(c_int::MAX as usize) as c_int;
    MallInfo {
        arena: c(i.arena),
        ordblks: c(i.ordblks),
        smblks: c(i.smblks),
        hblks: c(i.hblks),
        hblkhd: c(i.hblkhd),
        usmblks: c(i.usmblks),
        fsmblks: c(i.fsmblks),
        uordblks: c(i.uordblks),
        fordblks: c(i.fordblks),
        keepcost: c(i.keepcost),
    }
}
