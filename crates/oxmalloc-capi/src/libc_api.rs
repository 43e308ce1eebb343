//! The malloc family under glibc's names, with glibc's semantics.
//!
//! | call | oxmalloc (= glibc 2.36 unless noted) |
//! | --- | --- |
//! | `malloc(0)` | a unique, freeable pointer |
//! | `malloc(n)`, `n > PTRDIFF_MAX` or out of memory | NULL, `errno = ENOMEM` |
//! | `calloc(n, m)`, `n * m` overflows | NULL, `errno = ENOMEM` |
//! | `realloc(NULL, n)` | `malloc(n)` (so `realloc(NULL, 0)` is non-NULL) |
//! | `realloc(p, 0)`, `p` non-NULL | frees `p`, returns NULL (errno untouched) |
//! | `realloc` / `reallocarray` failure | NULL, `errno = ENOMEM`, `p` valid and intact |
//! | `posix_memalign`, alignment not a power of two or not a multiple of `sizeof(void *)` | returns `EINVAL`, out-pointer untouched |
//! | `posix_memalign`, out of memory | returns `ENOMEM`, out-pointer untouched; size 0 succeeds |
//! | `aligned_alloc`, alignment 0 or not a power of two | NULL, `errno = EINVAL` (glibc accepts 0) |
//! | `memalign`, alignment not a power of two | rounded up to the next power of two; above `SIZE_MAX/2+1`: `EINVAL` |
//! | `valloc`, `pvalloc` | page-aligned; `pvalloc` rounds the size up to whole pages (0 → one page), overflow → NULL, `ENOMEM` |
//! | `free(NULL)` | no-op; `free` preserves `errno` |
//! | `malloc_usable_size(NULL)` | 0 |
//! | `free`/`realloc`/`malloc_usable_size` of a pointer oxmalloc did not allocate | one line on stderr (`OXMALLOC_SHOW_ERRORS=0` silences it), then ignored: `free` does nothing, `realloc` returns NULL (`ENOMEM`), `malloc_usable_size` returns 0 |
//!
//! Every function here is an exported C entry point; `__libc_*` and
//! `__posix_memalign` are glibc's internal aliases that some programs (and
//! libc itself) call directly.

use crate::errno::{einval, enomem};
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};
use engine::raw::{self, MALLOC_ALIGN, MAX_SIZE};

// ---------------------------------------------------------------------------
// Implementations, shared by the exported names.

/// `malloc`.
#[inline(always)]
pub(crate) fn malloc_impl(size: usize) -> *mut c_void {
    // The engine sets errno = ENOMEM itself when it fails.
    raw::malloc(size).cast()
}

/// `calloc`.
#[inline(always)]
pub(crate) fn calloc_impl(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        return enomem();
    };
    let p = raw::zalloc(total);
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `free`.
///
/// # Safety
/// `ptr` is null or not used after this call.
#[inline(always)]
pub(crate) unsafe fn free_impl(ptr: *mut c_void) {
    // SAFETY: forwarded contract; the engine ignores null and reports
    // pointers it did not hand out without touching them.
    unsafe { raw::free(ptr.cast()) }
}

/// `realloc`, glibc's way.
///
/// # Safety
/// `ptr` is null or a block from this allocator that is not used after a
/// successful call.
#[inline]
pub(crate) unsafe fn realloc_impl(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return malloc_impl(size);
    }
    if size == 0 {
        // glibc (REALLOC_ZERO_BYTES_FREES): free and return NULL.
        // SAFETY: forwarded contract.
        unsafe { free_impl(ptr) };
        return core::ptr::null_mut();
    }
    // SAFETY: `ptr` is non-null and `size > 0`, as the engine requires; a
    // pointer that is not ours is reported and left alone (NULL returned).
    let p = unsafe { raw::realloc(ptr.cast(), size) };
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `reallocarray`.
///
/// # Safety
/// As [`realloc_impl`].
#[inline]
pub(crate) unsafe fn reallocarray_impl(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { realloc_impl(ptr, total) },
        None => enomem(),
    }
}

/// A block of `size` bytes aligned to `align` (a power of two, any value):
/// null (errno not set) when out of memory or absurdly large.
#[inline]
pub(crate) fn aligned_raw(size: usize, align: usize) -> *mut u8 {
    if align <= MALLOC_ALIGN {
        // `malloc(0)` may be an 8-byte block that is only 8-aligned.
        return raw::malloc(size.max(1));
    }
    if fits_with_alignment(size, align) {
        raw::aligned_alloc(size, align)
    } else {
        core::ptr::null_mut()
    }
}

/// Whether `size + align` stays representable below `PTRDIFF_MAX`: the
/// engine may over-allocate by the alignment, and no larger block aligned
/// so can exist anyway.
#[inline]
pub(crate) fn fits_with_alignment(size: usize, align: usize) -> bool {
    size.checked_add(align).is_some_and(|total| total <= MAX_SIZE)
}

/// `aligned_alloc`: alignment 0 or not a power of two is `EINVAL`.
#[inline]
pub(crate) fn aligned_alloc_impl(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return einval();
    }
    let p = aligned_raw(size, align);
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `memalign`: glibc rounds a non-power-of-two alignment up.
#[inline]
pub(crate) fn memalign_impl(align: usize, size: usize) -> *mut c_void {
    let align = if align.is_power_of_two() {
        align
    } else if align > usize::MAX / 2 + 1 {
        return einval();
    } else {
        align.next_power_of_two()
    };
    let p = aligned_raw(size, align);
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `posix_memalign`: returns 0, `EINVAL` or `ENOMEM`; `*out` is written
/// only on success.
///
/// # Safety
/// `out` must be valid for a pointer-sized write.
#[inline]
pub(crate) unsafe fn posix_memalign_impl(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || align < core::mem::size_of::<*mut c_void>() {
        return libc::EINVAL;
    }
    let p = aligned_raw(size, align);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: caller's contract.
    unsafe { out.write(p.cast()) };
    0
}

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The system page size (cached; `getauxval` neither allocates nor locks).
pub(crate) fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: getauxval has no preconditions.
    let size = unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize;
    let size = if size.is_power_of_two() { size } else { 4096 };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// `valloc`.
#[inline]
pub(crate) fn valloc_impl(size: usize) -> *mut c_void {
    memalign_impl(page_size(), size)
}

/// `pvalloc`: whole pages (at least one).
#[inline]
pub(crate) fn pvalloc_impl(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_add(page - 1) {
        Some(padded) => memalign_impl(page, padded & !(page - 1)),
        None => enomem(),
    }
}

/// `malloc_usable_size`.
#[inline]
pub(crate) fn usable_size_impl(ptr: *const c_void) -> usize {
    raw::usable_size(ptr.cast_mut().cast())
}

// ---------------------------------------------------------------------------
// The exported names.

/// `malloc(3)`: at least `size` bytes aligned to 16; NULL with
/// `errno = ENOMEM` on failure; `malloc(0)` is a unique pointer.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// `calloc(3)`: zeroed; NULL with `ENOMEM` when `count * size` overflows.
#[no_mangle]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    calloc_impl(count, size)
}

/// `free(3)`: NULL is a no-op; `errno` is preserved.
///
/// # Safety
/// `ptr` is NULL or a block from this allocator, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

/// `cfree`: an old name of `free`.
///
/// # Safety
/// As [`free`].
#[no_mangle]
pub unsafe extern "C" fn cfree(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

/// C23 `free_sized`: the hardened library checks `size` against the
/// block's requested size (a mismatch is fatal); the default one ignores it.
///
/// # Safety
/// As [`free`].
#[no_mangle]
pub unsafe extern "C" fn free_sized(ptr: *mut c_void, size: usize) {
    // SAFETY: forwarded contract.
    unsafe { raw::free_sized(ptr.cast(), size) }
}

/// C23 `free_aligned_sized`: as `free_sized` (the alignment is not needed).
///
/// # Safety
/// As [`free`].
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(ptr: *mut c_void, _align: usize, size: usize) {
    // SAFETY: forwarded contract.
    unsafe { raw::free_sized(ptr.cast(), size) }
}

/// `realloc(3)`, glibc's semantics: `realloc(NULL, n)` is `malloc(n)`,
/// `realloc(p, 0)` frees `p` and returns NULL; on failure NULL with
/// `ENOMEM`, and `p` stays valid and unchanged.
///
/// # Safety
/// `ptr` is NULL or a block from this allocator; after a non-NULL return
/// (or `size == 0`) the old pointer must not be used.
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { realloc_impl(ptr, size) }
}

/// `reallocarray(3)`: `realloc(ptr, count * size)` with an overflow check
/// (NULL, `ENOMEM`, `ptr` intact).
///
/// # Safety
/// As [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { reallocarray_impl(ptr, count, size) }
}

/// `posix_memalign(3)`.
///
/// # Safety
/// `out` must be valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { posix_memalign_impl(out, align, size) }
}

/// `aligned_alloc(3)` (C11).
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    aligned_alloc_impl(align, size)
}

/// `memalign(3)`.
#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    memalign_impl(align, size)
}

/// `valloc(3)`: page-aligned.
#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    valloc_impl(size)
}

/// `pvalloc(3)`: page-aligned, size rounded up to whole pages.
#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    pvalloc_impl(size)
}

/// `malloc_usable_size(3)`: 0 for NULL.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator (anything else is
/// reported and answered with 0).
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    usable_size_impl(ptr)
}

// glibc's internal aliases.

/// glibc alias of [`malloc`].
#[no_mangle]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// glibc alias of [`calloc`].
#[no_mangle]
pub extern "C" fn __libc_calloc(count: usize, size: usize) -> *mut c_void {
    calloc_impl(count, size)
}

/// glibc alias of [`realloc`].
///
/// # Safety
/// As [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { realloc_impl(ptr, size) }
}

/// glibc alias of [`free`].
///
/// # Safety
/// As [`free`].
#[no_mangle]
pub unsafe extern "C" fn __libc_free(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

/// glibc alias of [`memalign`].
#[no_mangle]
pub extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    memalign_impl(align, size)
}

/// glibc alias of [`valloc`].
#[no_mangle]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    valloc_impl(size)
}

/// glibc alias of [`pvalloc`].
#[no_mangle]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc_impl(size)
}

/// glibc alias of [`posix_memalign`].
///
/// # Safety
/// As [`posix_memalign`].
#[no_mangle]
pub unsafe extern "C" fn __posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { posix_memalign_impl(out, align, size) }
}
