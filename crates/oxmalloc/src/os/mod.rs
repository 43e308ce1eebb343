//! The platform layer: the only place that talks to the operating system.
//!
//! [`Platform`] states the contract the engine relies on; each supported
//! system implements it in its own file (only Linux today). The rest of the
//! engine is pure logic over memory that this layer hands out, and names the
//! implementation through the [`Os`] alias.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(all(target_os = "linux", target_pointer_width = "64", not(miri)))]
mod vdso;
#[cfg(target_os = "linux")]
pub use linux::Linux as Os;

#[cfg(not(target_os = "linux"))]
compile_error!("oxmalloc supports Linux only for now (see os/mod.rs for the platform contract)");

/// What the engine needs from the operating system.
///
/// Every function is callable at any time, from any thread, including before
/// the allocator is initialised and from inside the allocator itself: none of
/// them may allocate or take a lock that `malloc` could also take.
pub trait Platform {
    /// Size of the operating system's pages (the unit of purging and protection).
    fn page_size() -> usize;

    /// Reserves `size` bytes of read-write address space aligned to `align`
    /// (a power of two, at least the OS page size). The memory is zeroed and
    /// costs no physical memory until touched. Returns `None` when the
    /// system refuses (the caller reports `ENOMEM`).
    fn map(size: usize, align: usize) -> Option<core::ptr::NonNull<u8>>;

    /// Returns a range obtained from [`Platform::map`] (or a page-aligned
    /// part of one) to the system.
    ///
    /// # Safety
    /// `[ptr, ptr+size)` must be mapped by oxmalloc and unused by anyone.
    unsafe fn unmap(ptr: *mut u8, size: usize);

    /// Gives the physical memory behind `[ptr, ptr+size)` back to the system
    /// while keeping the address range. Returns `true` when the range now
    /// reads as zero (`MADV_DONTNEED`), `false` when its contents are
    /// undefined until written (`MADV_FREE`).
    ///
    /// # Safety
    /// The range must be page-aligned, mapped by oxmalloc, and hold no live data.
    unsafe fn purge(ptr: *mut u8, size: usize, zeroing: bool) -> bool;

    /// Resizes a mapping without moving it; `false` (and nothing changed)
    /// when the neighbouring address space is taken.
    ///
    /// # Safety
    /// `[ptr, ptr+old)` must be page-aligned, oxmalloc's, unused by anyone
    /// else, and lie in one kernel mapping, up to its end (a whole mapping
    /// made by [`Platform::map`], or the tail of one).
    unsafe fn remap_in_place(ptr: *mut u8, old: usize, new: usize) -> bool;

    /// Moves the pages of `[ptr, ptr+old)` (without copying them) to
    /// `dest`, replacing the `new` bytes reserved there, and resizes them;
    /// `false` (and nothing changed) when the system refuses.
    ///
    /// # Safety
    /// `[ptr, ptr+old)` must be page-aligned, oxmalloc's, unused by anyone
    /// else, and lie in one kernel mapping (one made by [`Platform::map`],
    /// or a part of one, moved or not since); `[dest, dest+new)` a
    /// reservation of oxmalloc's that holds nothing.
    unsafe fn remap_to(ptr: *mut u8, old: usize, new: usize, dest: *mut u8) -> bool;

    /// Makes `[ptr, ptr+size)` inaccessible (`true`) or read-write again
    /// (guard pages of the hardened build).
    ///
    /// # Safety
    /// The range must be page-aligned and mapped by oxmalloc.
    #[cfg_attr(not(feature = "secure"), allow(dead_code))]
    unsafe fn protect(ptr: *mut u8, size: usize, inaccessible: bool);

    /// Asks for (`MADV_HUGEPAGE`) or refuses (`MADV_NOHUGEPAGE`) transparent
    /// huge pages on a range; best effort.
    ///
    /// # Safety
    /// The range must be mapped by oxmalloc.
    unsafe fn advise_huge_pages(ptr: *mut u8, size: usize, allow: bool);

    /// How many of the `pages.len()` OS pages from `addr` are resident
    /// (`mincore`), using `pages` as the kernel's answer buffer; `None` when
    /// the system cannot tell (`addr` not page-aligned, part of the range
    /// not mapped). Only reads page tables: any range may be asked about.
    fn resident_pages(addr: usize, pages: &mut [u8]) -> Option<usize>;

    /// Blocks while `*word == expected` (futex wait); may return spuriously.
    fn wait(word: &core::sync::atomic::AtomicU32, expected: u32);
    /// As [`Platform::wait`], giving up after `millis` milliseconds.
    fn wait_timeout(word: &core::sync::atomic::AtomicU32, expected: u32, millis: u64);
    /// Wakes up to `count` threads blocked in [`Platform::wait`] on `word`.
    fn wake(word: &core::sync::atomic::AtomicU32, count: u32);
    /// A monotonic clock in milliseconds (cheap; resolution of a few ms is enough).
    fn now_millis() -> u64;

    /// 64 random bits (secrets of the hardened build) from the kernel's
    /// generator (`getrandom`), falling back
    /// to a mix of clock and address bits when the call is unavailable.
    #[cfg_attr(not(feature = "secure"), allow(dead_code))]
    fn random_u64() -> u64;

    /// Writes all of `bytes` to standard error with raw `write(2)` calls.
    fn write_stderr(bytes: &[u8]);
    /// Terminates the process with `SIGABRT`.
    fn abort() -> !;

    /// Reads the calling thread's `errno`.
    fn errno() -> i32;
    /// Sets the calling thread's `errno`.
    fn set_errno(value: i32);

    /// The process environment as the C runtime holds it (`environ`); read
    /// without allocating. Null when there is none yet.
    fn environ() -> *const *const core::ffi::c_char;

    /// Resident set size of this process in bytes, from `/proc/self/statm`
    /// (0 when unavailable). Reads into a stack buffer; never allocates.
    fn resident_bytes() -> usize;

    /// Whether the process is known to have had only one thread so far:
    /// no thread was ever created. False when the system cannot tell.
    fn single_threaded() -> bool;
}
