//! First-class heaps, statistics as JSON and heap profiling for C
//! (`ox_heap_*`, `ox_stats_json`, `ox_prof_*`, declared in
//! `include/oxmalloc.h`).
//!
//! A heap (`ox_heap_t *`) belongs to the thread that created it: only that
//! thread may allocate from it, visit it, destroy or delete it. Its blocks
//! are ordinary oxmalloc blocks: any thread frees them with `ox_free` or
//! `free` (and `ox_realloc`/`realloc` resize them), at any time before the
//! heap is destroyed. Errors follow the malloc family: NULL with
//! `errno = ENOMEM` when out of memory; a NULL heap gives NULL with
//! `errno = EINVAL`.

use crate::errno::{einval, enomem};
use crate::libc_api::free_impl;
use core::ffi::{c_char, c_void, CStr};
use engine::options::{self, Opt};
use engine::raw::{self, MAX_SIZE};

/// `ox_heap_t`: an opaque first-class heap.
pub type OxHeap = c_void;

/// `ox_heap_new`: a new heap for the calling thread; NULL (`ENOMEM`) when
/// out of memory.
#[no_mangle]
pub extern "C" fn ox_heap_new() -> *mut OxHeap {
    let heap = raw::heap_new();
    if heap.is_null() {
        return enomem();
    }
    heap
}

/// `ox_heap_malloc`: as `malloc`, from `heap`.
///
/// # Safety
/// `heap` is NULL or a live heap created by the calling thread.
#[no_mangle]
pub unsafe extern "C" fn ox_heap_malloc(heap: *mut OxHeap, size: usize) -> *mut c_void {
    if heap.is_null() {
        return einval();
    }
    // SAFETY: caller's contract.
    let p = unsafe { raw::heap_malloc(heap, size) };
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `ox_heap_calloc`: as `calloc`, from `heap` (an overflowing product is
/// NULL with `ENOMEM`).
///
/// # Safety
/// As [`ox_heap_malloc`].
#[no_mangle]
pub unsafe extern "C" fn ox_heap_calloc(heap: *mut OxHeap, count: usize, size: usize) -> *mut c_void {
    if heap.is_null() {
        return einval();
    }
    let Some(total) = count.checked_mul(size) else {
        return enomem();
    };
    // SAFETY: caller's contract.
    let p = unsafe { raw::heap_zalloc(heap, total.max(1)) };
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `ox_heap_realloc`: as `realloc`, a moved block landing in `heap`:
/// `ptr == NULL` is `ox_heap_malloc(heap, size)`; `size == 0` frees `ptr`
/// and returns NULL; on failure NULL with `ENOMEM`, `ptr` intact.
///
/// # Safety
/// As [`ox_heap_malloc`]; `ptr` is NULL or a live block of oxmalloc's (of
/// any heap), not used after a non-NULL return or a `size == 0` call.
#[no_mangle]
pub unsafe extern "C" fn ox_heap_realloc(heap: *mut OxHeap, ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: forwarded contract.
        return unsafe { ox_heap_malloc(heap, size) };
    }
    if size == 0 {
        // SAFETY: forwarded contract.
        unsafe { free_impl(ptr) };
        return core::ptr::null_mut();
    }
    if heap.is_null() {
        return einval();
    }
    // SAFETY: `ptr` is non-null and `size > 0`, as the engine requires;
    // the rest is the caller's contract.
    let p = unsafe { raw::heap_realloc(heap, ptr.cast(), size) };
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `ox_heap_aligned_alloc`: as `aligned_alloc`, from `heap` (alignment 0
/// or not a power of two: NULL with `EINVAL`).
///
/// # Safety
/// As [`ox_heap_malloc`].
#[no_mangle]
pub unsafe extern "C" fn ox_heap_aligned_alloc(heap: *mut OxHeap, align: usize, size: usize) -> *mut c_void {
    if heap.is_null() || !align.is_power_of_two() {
        return einval();
    }
    // Keep size + align representable (as `aligned_alloc`).
    match size.checked_add(align) {
        Some(total) if total <= MAX_SIZE => {}
        _ => return enomem(),
    }
    // SAFETY: caller's contract.
    let p = unsafe { raw::heap_aligned_alloc(heap, size.max(1), align) };
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `ox_heap_destroy`: frees every block of the heap at once, then the heap
/// (NULL: nothing). No block of the heap may be used afterwards, on any
/// thread.
///
/// # Safety
/// `heap` is NULL or a live heap created by the calling thread; it is not
/// used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ox_heap_destroy(heap: *mut OxHeap) {
    if !heap.is_null() {
        // SAFETY: caller's contract.
        unsafe { raw::heap_destroy(heap) };
    }
}

/// `ox_heap_delete`: frees the heap; its live blocks stay valid (they move
/// to the thread's default heap) and are freed as usual (NULL: nothing).
///
/// # Safety
/// As [`ox_heap_destroy`].
#[no_mangle]
pub unsafe extern "C" fn ox_heap_delete(heap: *mut OxHeap) {
    if !heap.is_null() {
        // SAFETY: caller's contract.
        unsafe { raw::heap_delete(heap) };
    }
}

/// The visitor of [`ox_heap_visit_blocks`].
pub type VisitFn = extern "C" fn(block: *mut c_void, size: usize, arg: *mut c_void) -> bool;

/// `ox_heap_visit_blocks`: calls `visit(block, usable_size, arg)` for every
/// live block of `heap` until it returns false; returns whether every
/// block was visited (false for a NULL heap or visitor).
///
/// # Safety
/// As [`ox_heap_malloc`]; `visit` must not allocate from the heap nor free
/// its blocks.
#[no_mangle]
pub unsafe extern "C" fn ox_heap_visit_blocks(heap: *mut OxHeap, visit: Option<VisitFn>, arg: *mut c_void) -> bool {
    let Some(visit) = visit else {
        return false;
    };
    if heap.is_null() {
        return false;
    }
    // SAFETY: forwarded contract.
    unsafe { raw::heap_visit(heap, visit, arg) }
}

/// Writes into a C buffer, truncating, and counts every byte offered.
struct CBuf<'a> {
    buf: &'a mut [u8],
    /// Bytes offered so far (the full length).
    len: usize,
}

impl CBuf<'_> {
    fn put(&mut self, bytes: &[u8]) {
        // Room for the bytes, keeping one for the terminating NUL.
        let room = self.buf.len().saturating_sub(1);
        if self.len < room {
            let n = bytes.len().min(room - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        }
        self.len += bytes.len();
    }
}

/// `ox_stats_json`: the statistics as one JSON object, written into
/// `buf` (at most `len - 1` bytes and a NUL, like `snprintf`); returns the
/// length of the whole text, without the NUL. `buf` may be NULL when `len`
/// is 0 (to ask for the length). Does not allocate.
///
/// # Safety
/// `buf` is valid for writing `len` bytes (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn ox_stats_json(buf: *mut c_char, len: usize) -> usize {
    let buf: &mut [u8] = if buf.is_null() || len == 0 {
        &mut []
    } else {
        // SAFETY: caller's contract: `len` writable bytes at `buf`.
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
    };
    let stats = engine::stats();
    let mut out = CBuf { buf, len: 0 };
    stats.json().write_to(&mut |piece| out.put(piece));
    let total = out.len;
    if !out.buf.is_empty() {
        let end = total.min(out.buf.len() - 1);
        out.buf[end] = 0;
    }
    total
}

/// `ox_prof_start`: turns heap profiling on, with about one sample per
/// `sample_bytes` allocated (0: `OXMALLOC_PROF_SAMPLE`, 512 KiB by
/// default). Returns false when the unwinder (libgcc_s) is missing.
/// Samples are written with [`ox_prof_dump`]; unlike `OXMALLOC_PROF`, this
/// writes nothing at exit.
#[no_mangle]
pub extern "C" fn ox_prof_start(sample_bytes: usize) -> bool {
    let rate = if sample_bytes == 0 {
        options::get(Opt::ProfSample).max(1) as usize
    } else {
        sample_bytes
    };
    engine::profile::start(rate)
}

/// `ox_prof_dump`: writes the live sampled allocations to `path` (`%p`
/// becomes the process id; NULL: the current `PROF` option, from the
/// environment or [`crate::prefixed::ox_option_set_text`]) in the text
/// heap-profile format read by `oxbench prof` and `pprof`. Returns whether
/// the file was written. Does not allocate.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ox_prof_dump(path: *const c_char) -> bool {
    if path.is_null() {
        // A copy of the option's current value, on our stack.
        return match options::text(Opt::Prof) {
            Some(text) => engine::profile::dump(text.as_c_str()),
            None => false,
        };
    }
    // SAFETY: caller's contract: a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(path) };
    engine::profile::dump(path)
}
