//! Linux implementation of the platform contract: raw system calls through
//! `libc`, nothing that allocates.

use super::Platform;
use core::ffi::c_char;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// The Linux platform.
pub struct Linux;

extern "C" {
    /// The C runtime's environment block; set before any constructor runs.
    static environ: *const *const c_char;
}

/// Cached `AT_PAGESZ` (0 until first asked).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The vDSO's `clock_gettime` (`os/vdso.rs`): 0 until looked up, 1 when
/// there is none (libc's is called instead).
#[cfg(all(target_pointer_width = "64", not(miri)))]
static VDSO_CLOCK: AtomicUsize = AtomicUsize::new(0);

/// Reads `CLOCK_MONOTONIC_COARSE` into `ts`: through the vDSO directly
/// where it can be found, which keeps libc's `clock_gettime` wrapper (and
/// the 64 KiB of libc around it) out of the process's resident set.
fn coarse_clock(ts: &mut libc::timespec) {
    #[cfg(all(target_pointer_width = "64", not(miri)))]
    {
        let mut clock = VDSO_CLOCK.load(Ordering::Relaxed);
        if clock == 0 {
            clock = super::vdso::clock_gettime().map_or(1, |f| f as usize);
            VDSO_CLOCK.store(clock, Ordering::Relaxed);
        }
        if clock != 1 {
            // SAFETY: a non-sentinel value is the address of the vDSO's
            // `clock_gettime` (stored just above, or by another thread the
            // same way); `ts` is a valid out-parameter.
            unsafe {
                let clock = core::mem::transmute::<usize, super::vdso::ClockGettime>(clock);
                clock(libc::CLOCK_MONOTONIC_COARSE, ts);
            }
            return;
        }
    }
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, ts) };
}

/// Runs `f` and restores `errno` afterwards, so that a failing system call on
/// a `free` path never leaks an error code into the caller (C requires `free`
/// to preserve `errno`).
#[inline]
fn preserving_errno<T>(f: impl FnOnce() -> T) -> T {
    let saved = Linux::errno();
    let result = f();
    Linux::set_errno(saved);
    result
}

/// Runs a system call that returns 0 or -1, restoring `errno` afterwards;
/// returns the call's own `errno` when it failed.
#[inline]
fn checked_call(f: impl FnOnce() -> libc::c_int) -> Result<(), i32> {
    preserving_errno(|| if f() == 0 { Ok(()) } else { Err(Linux::errno()) })
}

/// Reports an unexpected failure of a system call that must not fail
/// (with that call's `errno`), then aborts.
#[cold]
fn syscall_failed(call: &str, addr: *mut u8, size: usize, err: i32) -> ! {
    crate::fatal::fatal_syscall(call, addr as usize, size, err)
}

// glibc's `__libc_single_threaded` (since 2.32: true until the process
// first creates a thread; `pthread_create` clears it before the thread
// starts), referenced weakly, so that the library still loads where libc
// lacks it. Its address is read from a pointer that the loader fills in
// (null when there is no such symbol). Hidden: every copy of oxmalloc in a
// process has its own.
#[cfg(all(target_arch = "x86_64", target_env = "gnu", not(miri)))]
core::arch::global_asm!(
    ".weak __libc_single_threaded",
    ".pushsection .data.rel.ro.oxmalloc_libc_single_threaded,\"aw\",@progbits",
    ".p2align 3",
    ".globl oxmalloc_libc_single_threaded_v0",
    ".hidden oxmalloc_libc_single_threaded_v0",
    ".type oxmalloc_libc_single_threaded_v0,@object",
    ".size oxmalloc_libc_single_threaded_v0,8",
    "oxmalloc_libc_single_threaded_v0:",
    ".quad __libc_single_threaded",
    ".popsection",
);

#[cfg(all(target_arch = "x86_64", target_env = "gnu", not(miri)))]
extern "C" {
    /// The address of glibc's `__libc_single_threaded`, or null.
    static oxmalloc_libc_single_threaded_v0: *const u8;
}

impl Platform for Linux {
    #[inline]
    fn page_size() -> usize {
        let cached = PAGE_SIZE.load(Ordering::Relaxed);
        if cached != 0 {
            return cached;
        }
        // SAFETY: getauxval only reads the auxiliary vector; it is
        // async-signal-safe and never allocates.
        let size = unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize;
        let size = if size.is_power_of_two() { size } else { 4096 };
        PAGE_SIZE.store(size, Ordering::Relaxed);
        size
    }

    fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
        let page = Self::page_size();
        debug_assert!(align.is_power_of_two() && size % page == 0);
        let align = align.max(page);
        // Over-reserve so that an aligned range of `size` bytes fits, then
        // give back the unaligned head and the tail.
        let extra = align - page;
        let total = size.checked_add(extra)?;
        if total > isize::MAX as usize {
            return None;
        }
        // SAFETY: an anonymous private mapping at a kernel-chosen address
        // touches no existing memory.
        let raw = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let raw = raw.cast::<u8>();
        let addr = raw as usize;
        let aligned = (addr + align - 1) & !(align - 1);
        let head = aligned - addr;
        let tail = total - head - size;
        // SAFETY: head and tail are page-aligned pieces of the mapping we
        // just made, unused by anyone.
        unsafe {
            if head != 0 {
                Self::unmap(raw, head);
            }
            if tail != 0 {
                Self::unmap(raw.add(head + size), tail);
            }
        }
        // SAFETY: `raw + head` lies inside the mapping, which is not null.
        Some(unsafe { NonNull::new_unchecked(raw.add(head)) })
    }

    unsafe fn unmap(ptr: *mut u8, size: usize) {
        // SAFETY: the caller guarantees the range is ours and unused.
        if let Err(err) = checked_call(|| unsafe { libc::munmap(ptr.cast(), size) }) {
            syscall_failed("munmap", ptr, size, err);
        }
    }

    unsafe fn purge(ptr: *mut u8, size: usize, zeroing: bool) -> bool {
        let advice = if zeroing { libc::MADV_DONTNEED } else { libc::MADV_FREE };
        // SAFETY: the caller guarantees the range is ours and holds no live data.
        if checked_call(|| unsafe { libc::madvise(ptr.cast(), size, advice) }).is_ok() {
            return zeroing;
        }
        // MADV_FREE is missing before Linux 4.5: fall back to DONTNEED.
        // SAFETY: as above.
        if let Err(err) = checked_call(|| unsafe { libc::madvise(ptr.cast(), size, libc::MADV_DONTNEED) }) {
            syscall_failed("madvise", ptr, size, err);
        }
        true
    }

    unsafe fn remap_in_place(ptr: *mut u8, old: usize, new: usize) -> bool {
        // SAFETY: the caller guarantees `[ptr, ptr+old)` is ours and ends
        // where its kernel mapping ends.
        let raw = preserving_errno(|| unsafe { libc::mremap(ptr.cast(), old, new, 0) });
        raw != libc::MAP_FAILED
    }

    unsafe fn remap_to(ptr: *mut u8, old: usize, new: usize, dest: *mut u8) -> bool {
        // SAFETY: the caller guarantees both ranges are ours and that the
        // destination holds nothing that MREMAP_FIXED could clobber.
        let raw = preserving_errno(|| unsafe {
            libc::mremap(ptr.cast(), old, new, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, dest)
        });
        raw != libc::MAP_FAILED
    }

    unsafe fn protect(ptr: *mut u8, size: usize, inaccessible: bool) {
        let prot = if inaccessible {
            libc::PROT_NONE
        } else {
            libc::PROT_READ | libc::PROT_WRITE
        };
        // SAFETY: the caller guarantees the range is page-aligned and ours.
        if let Err(err) = checked_call(|| unsafe { libc::mprotect(ptr.cast(), size, prot) }) {
            syscall_failed("mprotect", ptr, size, err);
        }
    }

    unsafe fn advise_huge_pages(ptr: *mut u8, size: usize, allow: bool) {
        let advice = if allow {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // Best effort: kernels without THP answer EINVAL, which is fine.
        // SAFETY: the caller guarantees the range is ours.
        preserving_errno(|| unsafe { libc::madvise(ptr.cast(), size, advice) });
    }

    fn resident_pages(addr: usize, pages: &mut [u8]) -> Option<usize> {
        let len = pages.len() * Self::page_size();
        // SAFETY: mincore reads the page tables of the range, never its
        // memory (an unmapped or misaligned range is an error), and writes
        // one byte per page into `pages`, which has room for them all.
        let r = preserving_errno(|| unsafe { libc::mincore(addr as *mut libc::c_void, len, pages.as_mut_ptr()) });
        (r == 0).then(|| pages.iter().filter(|&&b| b & 1 != 0).count())
    }

    fn wait(word: &AtomicU32, expected: u32) {
        Self::wait_timeout(word, expected, u64::MAX);
    }

    fn wait_timeout(word: &AtomicU32, expected: u32, millis: u64) {
        let ts = libc::timespec {
            tv_sec: (millis / 1000).min(i64::MAX as u64 / 2) as libc::time_t,
            tv_nsec: ((millis % 1000) * 1_000_000) as libc::c_long,
        };
        let timeout: *const libc::timespec = if millis == u64::MAX { core::ptr::null() } else { &ts };
        // SAFETY: FUTEX_WAIT only reads the word, which lives at least as long
        // as the borrow; the timeout is a valid timespec or null.
        preserving_errno(|| unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                timeout,
            )
        });
    }

    fn wake(word: &AtomicU32, count: u32) {
        // SAFETY: FUTEX_WAKE does not access the word's memory beyond its address.
        preserving_errno(|| unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                count,
            )
        });
    }

    fn now_millis() -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        coarse_clock(&mut ts);
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }

    fn random_u64() -> u64 {
        let mut value: u64 = 0;
        // SAFETY: getrandom writes at most 8 bytes into `value`.
        let got = preserving_errno(|| unsafe {
            libc::syscall(libc::SYS_getrandom, &mut value as *mut u64, 8usize, libc::GRND_NONBLOCK)
        });
        if got == 8 {
            return value;
        }
        // No entropy source: mix the clock with an address (still differs per run under ASLR).
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid out-parameter.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let mut x = (ts.tv_nsec as u64) ^ ((ts.tv_sec as u64) << 32) ^ (&value as *const u64 as u64);
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn write_stderr(mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: writes from a valid slice.
            let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
            if n <= 0 {
                if n < 0 && Self::errno() == libc::EINTR {
                    continue;
                }
                return;
            }
            bytes = &bytes[n as usize..];
        }
    }

    fn abort() -> ! {
        // SAFETY: abort never returns and needs no preconditions.
        unsafe { libc::abort() }
    }

    #[inline]
    fn errno() -> i32 {
        // SAFETY: __errno_location returns this thread's errno slot, always valid.
        unsafe { *libc::__errno_location() }
    }

    #[inline]
    fn set_errno(value: i32) {
        // SAFETY: as in `errno`.
        unsafe { *libc::__errno_location() = value };
    }

    fn environ() -> *const *const c_char {
        // SAFETY: reading a pointer-sized static written by the C runtime at
        // start-up; a torn read is impossible on the supported targets.
        unsafe { core::ptr::read_volatile(&raw const environ) }
    }

    fn resident_bytes() -> usize {
        let mut buf = [0u8; 128];
        // SAFETY: a NUL-terminated path literal.
        let fd = unsafe { libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return 0;
        }
        // SAFETY: reads into our stack buffer, then closes the descriptor we opened.
        let n = unsafe {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            n
        };
        if n <= 0 {
            return 0;
        }
        // statm: "size resident shared text lib data dt", in pages.
        let mut fields = buf[..n as usize].split(|&b| b == b' ');
        let _size = fields.next();
        let resident = fields.next().map(crate::util::parse_decimal).unwrap_or(0);
        resident as usize * Self::page_size()
    }

    fn single_threaded() -> bool {
        #[cfg(all(target_arch = "x86_64", target_env = "gnu", not(miri)))]
        {
            // SAFETY: a pointer-sized object that the loader filled in
            // before any code ran and that nothing writes afterwards.
            let flag = unsafe { oxmalloc_libc_single_threaded_v0 };
            if !flag.is_null() {
                // SAFETY: glibc's one-byte flag, alive for the process's
                // life; read atomically, since `pthread_create` on another
                // thread may write it meanwhile.
                return unsafe { core::sync::atomic::AtomicU8::from_ptr(flag.cast_mut()) }.load(Ordering::Relaxed) != 0;
            }
        }
        false
    }
}
