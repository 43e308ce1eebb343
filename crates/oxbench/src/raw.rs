//! Raw blocks from the global allocator, as a C program would use malloc.
//!
//! Workloads allocate through `std::alloc` (so through whatever
//! `#[global_allocator]` the worker installed, or through glibc's malloc
//! family and hence any `LD_PRELOAD`ed library in the glibc worker) and keep
//! the size with the pointer, so every free passes the exact `Layout`.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// A live block: pointer, size and alignment. Freed explicitly by
/// [`Block::free`]; dropping a `Block` leaks it.
#[derive(Debug)]
pub struct Block {
    ptr: NonNull<u8>,
    size: usize,
    align: usize,
}

// SAFETY: a Block is a unique owner of its allocation, like a Box<[u8]>; the
// global allocator allows freeing on any thread.
unsafe impl Send for Block {}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size.max(1), align).expect("valid layout")
}

impl Block {
    /// Allocates `size` bytes (at least 1) aligned to `align` (a power of two).
    /// Aborts the process when the allocator returns null.
    #[inline]
    pub fn new(size: usize, align: usize) -> Block {
        let l = layout(size, align);
        // SAFETY: `l` has a non-zero size.
        let p = unsafe { alloc::alloc(l) };
        Block::checked(p, l)
    }

    /// Like [`Block::new`], with zeroed memory (`calloc`).
    #[inline]
    pub fn zeroed(size: usize, align: usize) -> Block {
        let l = layout(size, align);
        // SAFETY: `l` has a non-zero size.
        let p = unsafe { alloc::alloc_zeroed(l) };
        Block::checked(p, l)
    }

    fn checked(p: *mut u8, l: Layout) -> Block {
        match NonNull::new(p) {
            Some(ptr) => Block {
                ptr,
                size: l.size(),
                align: l.align(),
            },
            None => alloc::handle_alloc_error(l),
        }
    }

    /// Size in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Address of the first byte.
    #[inline]
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The block's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the block owns `size` bytes from `ptr`; all of them were
        // initialised (zeroed or written) before any read the workloads do,
        // or are plain bytes the allocator handed out, which is fine for u8.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
    }

    /// The block's bytes, writable.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
    }

    /// Frees the block with its exact layout.
    #[inline]
    pub fn free(self) {
        // SAFETY: `ptr` came from the global allocator with this layout and is
        // freed once, since `self` is consumed.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout(self.size, self.align)) }
    }

    /// Frees the block through the C library's sized free when the worker
    /// installed one (see [`install_c_sized_free`]), otherwise as [`Block::free`].
    #[inline]
    pub fn free_sized(self) {
        match c_sized_free() {
            Some(f) => {
                // SAFETY: in the glibc worker, `System` allocated this block
                // with malloc/posix_memalign of the same library that exports
                // `f`, and `size` is the size that was asked for.
                unsafe { f.call(self.ptr.as_ptr(), self.size) }
            }
            None => self.free(),
        }
    }

    /// Resizes the block with `realloc`; returns whether it stayed in place.
    pub fn realloc(&mut self, new_size: usize) -> bool {
        let old = self.ptr.as_ptr();
        // SAFETY: `ptr` is live with this layout; `new_size` is non-zero.
        let p = unsafe { alloc::realloc(old, layout(self.size, self.align), new_size.max(1)) };
        let l = layout(new_size, self.align);
        *self = Block::checked(p, l);
        p == old
    }

    /// Gives up ownership, returning the pointer (for atomic slot arrays).
    pub fn into_raw(self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Takes ownership back of a pointer from [`Block::into_raw`].
    ///
    /// # Safety
    /// `ptr` must come from `into_raw` of a block of this `size` and `align`,
    /// and be owned by no other `Block`.
    pub unsafe fn from_raw(ptr: *mut u8, size: usize, align: usize) -> Block {
        Block {
            ptr: NonNull::new(ptr).expect("non-null block"),
            size: size.max(1),
            align,
        }
    }
}

/// A C sized-free entry point found in the process: C23 `free_sized`,
/// jemalloc's `sdallocx` (flags 0), mimalloc's `mi_free_size` or tcmalloc's
/// `tc_free_sized`.
#[derive(Clone, Copy, Debug)]
pub struct SizedFree {
    /// Symbol name.
    pub name: &'static str,
    /// Its address.
    addr: usize,
    /// Whether it takes a third `flags` argument (`sdallocx`).
    flags: bool,
}

static SIZED_FREE: OnceLock<Option<SizedFree>> = OnceLock::new();

/// Looks up a C sized free in the running process (used by the glibc worker,
/// so that under `LD_PRELOAD` the `larson-sized` workload frees with the size
/// where the preloaded library offers it). Returns its name.
pub fn install_c_sized_free() -> Option<&'static str> {
    const CANDIDATES: [(&std::ffi::CStr, &str, bool); 4] = [
        (c"free_sized", "free_sized", false),
        (c"sdallocx", "sdallocx", true),
        (c"mi_free_size", "mi_free_size", false),
        (c"tc_free_sized", "tc_free_sized", false),
    ];
    let found = SIZED_FREE.get_or_init(|| {
        CANDIDATES.iter().find_map(|&(sym, name, flags)| {
            // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name is
            // always safe to call; null means the symbol is absent.
            let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, sym.as_ptr()) } as usize;
            (addr != 0).then_some(SizedFree { name, addr, flags })
        })
    });
    found.map(|f| f.name)
}

fn c_sized_free() -> Option<SizedFree> {
    SIZED_FREE.get().copied().flatten()
}

impl SizedFree {
    /// Frees `p` of `size` bytes.
    ///
    /// # Safety
    /// `p` must be a live block of `size` requested bytes from the library
    /// that exports this function.
    unsafe fn call(self, p: *mut u8, size: usize) {
        type Two = unsafe extern "C" fn(*mut libc::c_void, usize);
        type Three = unsafe extern "C" fn(*mut libc::c_void, usize, libc::c_int);
        if self.flags {
            // SAFETY: `addr` is `sdallocx`, `void sdallocx(void *, size_t, int)`.
            let f = unsafe { std::mem::transmute::<usize, Three>(self.addr) };
            // SAFETY: the caller's contract; flags 0.
            unsafe { f(p.cast(), size, 0) }
        } else {
            // SAFETY: the other candidates are `void f(void *, size_t)`.
            let f = unsafe { std::mem::transmute::<usize, Two>(self.addr) };
            // SAFETY: the caller's contract.
            unsafe { f(p.cast(), size) }
        }
    }
}

/// Name of the free used by [`Block::free_sized`].
pub fn sized_free_name() -> &'static str {
    c_sized_free().map_or("dealloc(layout)", |f| f.name)
}

/// Resident set size of this process now, in KiB (from /proc/self/statm).
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

/// CPU time (user + system) this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid out-pointer for getrusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: getrusage succeeded and filled `ru`.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_alloc_realloc_free() {
        let mut b = Block::new(100, 16);
        assert_eq!(b.addr() % 16, 0);
        b.bytes_mut().fill(7);
        b.realloc(10_000);
        assert_eq!(b.size(), 10_000);
        assert!(b.bytes()[..100].iter().all(|&x| x == 7));
        b.free();
        let z = Block::zeroed(5000, 8);
        assert!(z.bytes().iter().all(|&x| x == 0));
        let p = z.into_raw();
        // SAFETY: from into_raw of a 5000-byte, 8-aligned block.
        let z = unsafe { Block::from_raw(p, 5000, 8) };
        z.free_sized();
        assert!(rss_kib() > 0);
    }
}
