//! The malloc family with C semantics, for the C front (`oxmalloc-capi`)
//! and for Rust code that needs `malloc`-style calls (no `Layout` at free).
//!
//! Blocks are aligned to 16 bytes like glibc's (`malloc(0)` returns a
//! unique 8-byte block). Every allocation that fails sets `errno = ENOMEM`;
//! other errors (`EINVAL` for bad alignments) are the C front's to set.

use crate::alloc::{self, resolve_forward};
use crate::fatal::{report, HeapError};
use crate::size_class::{DIRECT_MAX, WORD};
use crate::{chunk, free};

/// Alignment of every `malloc` block (C's `max_align_t`).
pub const MALLOC_ALIGN: usize = 16;
/// The largest size any allocation can have (`PTRDIFF_MAX`).
pub const MAX_SIZE: usize = isize::MAX as usize;

/// Formats `n` in decimal into `buf`, without allocating (for the C
/// front's messages); the digits written.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    crate::util::decimal(n, buf)
}

/// `malloc`: a block of at least `size` bytes aligned to 16; null when out
/// of memory or `size` is absurd. `malloc(0)` is a unique pointer.
#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    if !crate::secure::ENABLED && size <= DIRECT_MAX {
        // Round to whole 16-byte units (even word counts) so every block of
        // more than 8 bytes is 16-aligned; 0 keeps the 8-byte class.
        // SAFETY: the index is at most DIRECT_MAX / 8.
        unsafe { alloc::alloc_direct(((size + 15) / WORD) & !1) }
    } else {
        malloc_generic(size)
    }
}

/// `malloc` beyond the direct table, out of line so that the fast path
/// above stays a leaf (no stack frame; its only calls are tail calls).
#[inline(never)]
fn malloc_generic(size: usize) -> *mut u8 {
    if size <= MAX_SIZE {
        alloc::alloc_generic(size, MALLOC_ALIGN, false)
    } else {
        alloc::out_of_memory()
    }
}

/// `calloc` for a total of `size` bytes (the caller checks the product for overflow).
#[inline]
pub fn zalloc(size: usize) -> *mut u8 {
    alloc_sized(size, MALLOC_ALIGN, true)
}

/// A block of `size` bytes aligned to `align` (a power of two); null when
/// out of memory.
#[inline]
pub fn aligned_alloc(size: usize, align: usize) -> *mut u8 {
    alloc_sized(size, align, false)
}

/// [`aligned_alloc`], zeroed (as [`zalloc`]: fresh memory is not written
/// again); null when out of memory.
#[inline]
pub fn aligned_zalloc(size: usize, align: usize) -> *mut u8 {
    alloc_sized(size, align, true)
}

/// The checks the allocation calls above share: a size above [`MAX_SIZE`]
/// is out of memory, 0 counts as 1, the alignment is at least 16.
#[inline]
fn alloc_sized(size: usize, align: usize, zero: bool) -> *mut u8 {
    if size > MAX_SIZE {
        return alloc::out_of_memory();
    }
    alloc::alloc_generic(size.max(1), align.max(MALLOC_ALIGN), zero)
}

/// `free`: null is ignored; a pointer oxmalloc did not hand out is reported
/// and ignored.
///
/// # Safety
/// A block of oxmalloc's must not be used after it is freed.
#[inline(always)]
pub unsafe fn free(ptr: *mut u8) {
    // SAFETY: forwarded contract.
    unsafe { free::free_checked(ptr) }
}

/// Sized `free` (C++ sized `delete`, `free_sized`): the hardened build
/// checks `size` against the block's requested size.
///
/// # Safety
/// As for [`free`].
#[inline]
pub unsafe fn free_sized(ptr: *mut u8, size: usize) {
    if crate::secure::ENABLED {
        // SAFETY: forwarded contract.
        unsafe { free::free_hardened(ptr, size) }
    } else {
        // SAFETY: forwarded contract.
        unsafe { free::free_checked(ptr) }
    }
}

/// `realloc` for a non-null `ptr` and `size > 0`: resizes in place when
/// possible, else moves. Null when out of memory (the block is untouched)
/// or when `ptr` is not a live block of oxmalloc's (reported).
///
/// # Safety
/// A block of oxmalloc's must not be used after it is moved.
pub unsafe fn realloc(ptr: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: forwarded contract; the thread's own heap.
    unsafe { realloc_into(crate::tls::heap(), ptr, size, MALLOC_ALIGN) }
}

/// `realloc` to a block aligned to `align` (at least 16), moving (when it
/// must) into `heap`.
///
/// # Safety
/// As for [`realloc`]; `heap` is the calling thread's default heap or one
/// of its first-class heaps.
unsafe fn realloc_into(heap: *mut crate::heap::Heap, ptr: *mut u8, size: usize, align: usize) -> *mut u8 {
    if size > MAX_SIZE {
        return alloc::out_of_memory();
    }
    let Some(page) = live_block_page(ptr) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `ptr` is a live block (checked as far as cheaply possible)
    // and `page` its descriptor.
    unsafe { alloc::realloc_block_in(heap, ptr, page, size, align) }
}

/// `realloc` to a block aligned to `align` (a power of two; mimalloc's
/// `mi_realloc_aligned`, what jemalloc's `rallocx` does with an alignment):
/// for a non-null `ptr` and `size > 0`, resizes in place when `ptr` is
/// already at that alignment and its block allows, else moves it to a
/// block at that alignment. Null when out of memory (the block is
/// untouched) or when `ptr` is not a live block of oxmalloc's (reported).
///
/// # Safety
/// As for [`realloc`].
pub unsafe fn realloc_aligned(ptr: *mut u8, size: usize, align: usize) -> *mut u8 {
    // SAFETY: forwarded contract; the thread's own heap.
    unsafe { realloc_into(crate::tls::heap(), ptr, size, align.max(MALLOC_ALIGN)) }
}

/// The descriptor of `ptr`, a block to resize: `None`, reported as an
/// invalid realloc, when `ptr` is not the start of a live block of ours
/// (as far as [`alloc::block_usable_size`] checks cheaply).
fn live_block_page(ptr: *mut u8) -> Option<*mut crate::page::Page> {
    let Some(page) = chunk::page_of_checked(ptr) else {
        report(HeapError::InvalidRealloc, ptr as usize, 0, 0);
        return None;
    };
    let page = resolve_forward(page);
    // SAFETY: descriptors in a chunk the map vouches for are valid memory.
    if alloc::block_usable_size(unsafe { &*page }, ptr).is_none() {
        report(HeapError::InvalidRealloc, ptr as usize, 0, 0);
        return None;
    }
    Some(page)
}

/// Resizes the block `ptr` without moving it, so that at least `size` bytes
/// are usable (mimalloc's `mi_expand`; what jemalloc's `xallocx` does):
/// `ptr` when it did, null when it cannot (the block is unchanged, and
/// `realloc` would move it) or when `ptr` is null or not a live block of
/// oxmalloc's (reported). A class block fits any size up to its usable
/// size; a large block grows into free slices right after it, or gives its
/// last slices back; a huge block asked for more than the large sizes
/// unmaps its tail or grows into free address space right after it. The hardened
/// build resizes nothing: it answers yes up to the size first asked for.
///
/// # Safety
/// `ptr` is null or a live block of this allocator, which no other thread
/// resizes or frees meanwhile.
pub unsafe fn expand(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() || size > MAX_SIZE {
        return core::ptr::null_mut();
    }
    let Some(page) = live_block_page(ptr) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `ptr` is a live block (caller's contract, checked as far as
    // cheaply possible) and `page` its resolved descriptor.
    if unsafe { alloc::resize_in_place(ptr, page, size.max(1)) } {
        ptr
    } else {
        core::ptr::null_mut()
    }
}

/// `malloc_usable_size`: 0 for null; reports and returns 0 for a pointer
/// that is not a live block of oxmalloc's.
pub fn usable_size(ptr: *mut u8) -> usize {
    if ptr.is_null() {
        return 0;
    }
    crate::usable_size(ptr)
}

/// Whether `ptr` points into memory that oxmalloc manages (any block, live or not).
pub fn is_ours(ptr: *const u8) -> bool {
    chunk::page_of_checked(ptr.cast_mut()).is_some()
}

/// Initialises the process now (options, thread key, `fork` handlers)
/// instead of lazily at the first allocation. For library constructors.
/// Idempotent. The `fork` handlers are registered now if the process
/// already has more than one thread (or in the hardened build); otherwise
/// before the first lock taken once it has (`fork.rs`).
pub fn process_init() {
    crate::init::ensure();
    crate::fork::register_if_needed();
}

// ---------------------------------------------------------------------------
// First-class heaps for the C API (`ox_heap_*`). A heap is an opaque
// pointer; allocation must happen on the thread that created it.
// ---------------------------------------------------------------------------

/// An opaque first-class heap handle for C.
pub type RawHeap = *mut core::ffi::c_void;

/// Creates a heap for the calling thread; null when out of memory.
pub fn heap_new() -> RawHeap {
    crate::Heap::new().map_or(core::ptr::null_mut(), |h| h.into_raw().cast())
}

/// Rebuilds the handle (valid while the caller keeps the contract).
///
/// # Safety
/// `heap` must come from [`heap_new`] on the calling thread and be alive.
unsafe fn with_heap<T>(heap: RawHeap, f: impl FnOnce(&mut crate::Heap) -> T) -> Option<T> {
    // SAFETY: caller's contract.
    let mut handle = unsafe { crate::Heap::from_raw(heap.cast())? };
    let result = f(&mut handle);
    handle.into_raw();
    Some(result)
}

/// `malloc` from a heap (16-byte alignment).
///
/// # Safety
/// `heap` must come from [`heap_new`] on the calling thread and be alive.
pub unsafe fn heap_malloc(heap: RawHeap, size: usize) -> *mut u8 {
    if size > MAX_SIZE {
        return alloc::out_of_memory();
    }
    // SAFETY: forwarded contract.
    unsafe { with_heap(heap, |h| alloc::alloc_in(h.as_raw(), size, MALLOC_ALIGN, false)) }
        .unwrap_or(core::ptr::null_mut())
}

/// Zeroed allocation of `size` bytes (the caller checks `n * size` overflow).
///
/// # Safety
/// As for [`heap_malloc`].
pub unsafe fn heap_zalloc(heap: RawHeap, size: usize) -> *mut u8 {
    if size > MAX_SIZE {
        return alloc::out_of_memory();
    }
    // SAFETY: forwarded contract.
    unsafe { with_heap(heap, |h| alloc::alloc_in(h.as_raw(), size, MALLOC_ALIGN, true)) }
        .unwrap_or(core::ptr::null_mut())
}

/// Aligned allocation from a heap (`align` a power of two).
///
/// # Safety
/// As for [`heap_malloc`].
pub unsafe fn heap_aligned_alloc(heap: RawHeap, size: usize, align: usize) -> *mut u8 {
    if size > MAX_SIZE {
        return alloc::out_of_memory();
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_heap(heap, |h| {
            alloc::alloc_in(h.as_raw(), size, align.max(MALLOC_ALIGN), false)
        })
    }
    .unwrap_or(core::ptr::null_mut())
}

/// `realloc` into a heap for a non-null `ptr` and `size > 0`; a moved block
/// lands in `heap`. Null when out of memory or `ptr` is invalid (reported).
///
/// # Safety
/// As for [`heap_malloc`], and `ptr` as for [`realloc`].
pub unsafe fn heap_realloc(heap: RawHeap, ptr: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { with_heap(heap, |h| realloc_into(h.as_raw(), ptr, size, MALLOC_ALIGN)) }.unwrap_or(core::ptr::null_mut())
}

/// Frees every block of the heap at once, and the heap.
///
/// # Safety
/// As for [`heap_malloc`]; no block of the heap may be used afterwards.
pub unsafe fn heap_destroy(heap: RawHeap) {
    // SAFETY: caller's contract.
    if let Some(h) = unsafe { crate::Heap::from_raw(heap.cast()) } {
        h.destroy();
    }
}

/// Hands the heap's live blocks to the thread's default heap, and frees the heap.
///
/// # Safety
/// As for [`heap_malloc`]; the heap may not be used afterwards.
pub unsafe fn heap_delete(heap: RawHeap) {
    // SAFETY: caller's contract.
    if let Some(h) = unsafe { crate::Heap::from_raw(heap.cast()) } {
        h.delete();
    }
}

/// Calls `visit(block, usable_size, arg)` for every live block of the heap,
/// stopping when it returns false; returns whether every block was visited.
///
/// # Safety
/// As for [`heap_malloc`]; `visit` must not allocate from or free into the heap.
pub unsafe fn heap_visit(
    heap: RawHeap,
    visit: extern "C" fn(*mut core::ffi::c_void, usize, *mut core::ffi::c_void) -> bool,
    arg: *mut core::ffi::c_void,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { with_heap(heap, |h| h.walk(|block, size| visit(block.cast(), size, arg))) }.unwrap_or(false)
}
