//! The prefixed API (`ox_*`, declared in `include/oxmalloc.h`): the same
//! allocator under names that never clash with the C library's, plus
//! control and statistics calls. Allocation calls have exactly the
//! semantics of their glibc counterparts (see [`crate::libc_api`]).

use crate::errno::{einval, enomem};
use crate::libc_api::{
    aligned_alloc_impl, calloc_impl, fits_with_alignment, free_impl, malloc_impl, posix_memalign_impl, realloc_impl,
    reallocarray_impl, usable_size_impl,
};
use core::ffi::{c_char, c_int, c_longlong, c_void, CStr};
use engine::options::{self, Kind, OPTIONS};

/// `ox_malloc`: as `malloc`.
#[no_mangle]
pub extern "C" fn ox_malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// `ox_calloc`: as `calloc`.
#[no_mangle]
pub extern "C" fn ox_calloc(count: usize, size: usize) -> *mut c_void {
    calloc_impl(count, size)
}

/// `ox_realloc`: as `realloc` (`ox_realloc(p, 0)` frees `p`, returns NULL).
///
/// # Safety
/// `ptr` is NULL or a block from this allocator; after a non-NULL return
/// (or `size == 0`) the old pointer must not be used.
#[no_mangle]
pub unsafe extern "C" fn ox_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { realloc_impl(ptr, size) }
}

/// `ox_reallocarray`: as `reallocarray`.
///
/// # Safety
/// As [`ox_realloc`].
#[no_mangle]
pub unsafe extern "C" fn ox_reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { reallocarray_impl(ptr, count, size) }
}

/// `ox_realloc_aligned`: `ox_realloc` to a block aligned to `alignment` (a
/// power of two; mimalloc's `mi_realloc_aligned`): resized in place when
/// `ptr` is already at that alignment and its block allows, else moved to
/// a block at that alignment. A NULL `ptr` is `ox_aligned_alloc`; a size of
/// 0 frees `ptr` and returns NULL (as `ox_realloc`). NULL with `EINVAL` for
/// an alignment that is not a power of two, with `ENOMEM` when out of
/// memory; `ptr` is untouched then.
///
/// # Safety
/// As [`ox_realloc`].
#[no_mangle]
pub unsafe extern "C" fn ox_realloc_aligned(ptr: *mut c_void, size: usize, alignment: usize) -> *mut c_void {
    if !alignment.is_power_of_two() {
        return einval();
    }
    if ptr.is_null() {
        return aligned_alloc_impl(alignment, size);
    }
    if alignment <= engine::raw::MALLOC_ALIGN || size == 0 {
        // SAFETY: forwarded contract.
        return unsafe { realloc_impl(ptr, size) };
    }
    if !fits_with_alignment(size, alignment) {
        return enomem();
    }
    // SAFETY: `ptr` is non-null and `size > 0`, as the engine requires; a
    // pointer that is not ours is reported and left alone (NULL returned).
    let p = unsafe { engine::raw::realloc_aligned(ptr.cast(), size, alignment) };
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `ox_free`: as `free`.
///
/// # Safety
/// `ptr` is NULL or a block from this allocator, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ox_free(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

/// `ox_usable_size`: as `malloc_usable_size`.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator (anything else is
/// reported and answered with 0).
#[no_mangle]
pub unsafe extern "C" fn ox_usable_size(ptr: *const c_void) -> usize {
    usable_size_impl(ptr)
}

/// `ox_expand`: resizes `ptr` in place so that at least `size` bytes are
/// usable, never moving it (mimalloc's `mi_expand`): `ptr` when it did,
/// NULL when it cannot (the block is unchanged) or `ptr` is NULL
/// (`engine::raw::expand`).
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator, not resized or freed
/// by another thread meanwhile (anything else is reported and answered
/// with NULL).
#[no_mangle]
pub unsafe extern "C" fn ox_expand(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { engine::raw::expand(ptr.cast(), size) }.cast()
}

/// `ox_good_size`: the largest usable size a block of `size` bytes gets,
/// without allocating (`engine::good_size`); 0 when nothing that large can
/// be allocated.
#[no_mangle]
pub extern "C" fn ox_good_size(size: usize) -> usize {
    engine::good_size(size, engine::raw::MALLOC_ALIGN).unwrap_or(0)
}

/// `ox_good_size_aligned`: [`ox_good_size`] at `alignment` (a power of
/// two; 0 for anything else, as `ox_aligned_alloc` fails there).
#[no_mangle]
pub extern "C" fn ox_good_size_aligned(alignment: usize, size: usize) -> usize {
    if !alignment.is_power_of_two() {
        return 0;
    }
    engine::good_size(size, alignment).unwrap_or(0)
}

/// `ox_aligned_alloc`: as `aligned_alloc` (alignment first).
#[no_mangle]
pub extern "C" fn ox_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    aligned_alloc_impl(align, size)
}

/// `ox_posix_memalign`: as `posix_memalign`.
///
/// # Safety
/// `out` must be valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn ox_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { posix_memalign_impl(out, align, size) }
}

/// `ox_is_ours`: 1 when `ptr` points into memory oxmalloc manages (a block,
/// live or not), 0 otherwise.
#[no_mangle]
pub extern "C" fn ox_is_ours(ptr: *const c_void) -> c_int {
    c_int::from(engine::raw::is_ours(ptr.cast()))
}

/// `ox_collect`: returns free memory to the OS; with `force` non-zero, all
/// of it at once (as `malloc_trim`), otherwise what has waited its delay.
#[no_mangle]
pub extern "C" fn ox_collect(force: c_int) {
    engine::collect(force != 0);
}

/// `ox_stats_print`: the statistics table on stderr (as `malloc_stats`).
#[no_mangle]
pub extern "C" fn ox_stats_print() {
    engine::print_stats();
}

/// `ox_stats_t`: a snapshot of the statistics (bytes unless noted).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OxStats {
    /// Bytes of chunk slices handed to pages and large blocks now.
    pub in_spans: u64,
    /// Peak of `in_spans`.
    pub in_spans_peak: u64,
    /// Bytes in huge blocks (mappings of their own) now.
    pub huge: u64,
    /// Peak of `huge`.
    pub huge_peak: u64,
    /// Threads with a heap now (count).
    pub threads: u64,
    /// Peak of `threads`.
    pub threads_peak: u64,
    /// Regular chunks mapped now (count).
    pub chunks: u64,
    /// Bytes given back to the OS so far.
    pub purged: u64,
    /// `mmap` calls so far (count).
    pub mmap_calls: u64,
    /// `munmap` calls so far (count).
    pub munmap_calls: u64,
    /// Heap errors detected (invalid frees and the like; count).
    pub errors: u64,
    /// Resident set size of the process now.
    pub rss: u64,
}

/// `ox_stats_get`: fills `*out` (ignored when NULL).
///
/// # Safety
/// `out` is NULL or valid for writing an `ox_stats_t`.
#[no_mangle]
pub unsafe extern "C" fn ox_stats_get(out: *mut OxStats) {
    if out.is_null() {
        return;
    }
    let s = engine::stats();
    let stats = OxStats {
        in_spans: s.spans.current,
        in_spans_peak: s.spans.peak,
        huge: s.huge.current,
        huge_peak: s.huge.peak,
        threads: s.threads.current,
        threads_peak: s.threads.peak,
        chunks: s.chunks,
        purged: s.purged_bytes,
        mmap_calls: s.mmap_calls,
        munmap_calls: s.munmap_calls,
        errors: s.errors,
        rss: engine::resident_bytes() as u64,
    };
    // SAFETY: caller's contract.
    unsafe { out.write(stats) };
}

/// The index in [`OPTIONS`] of the option `name` (with or without the
/// `OXMALLOC_` prefix, any case).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe fn option_index(name: *const c_char) -> Option<usize> {
    if name.is_null() {
        return None;
    }
    // SAFETY: caller's contract.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    let name = match name.get(..9) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"OXMALLOC_") => &name[9..],
        _ => name,
    };
    options::index_of(name)
}

/// `ox_option_get`: the value of an option (`"SHOW_STATS"` or
/// `"OXMALLOC_SHOW_STATS"`); -1 when there is no such option. A text
/// option (`PROF`) gives 1 when set and 0 when unset; read its text with
/// [`ox_option_get_text`].
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ox_option_get(name: *const c_char) -> c_longlong {
    // SAFETY: forwarded contract.
    match unsafe { option_index(name) } {
        Some(i) => options::value_at(i),
        None => -1,
    }
}

/// `ox_option_set`: sets an option as if `OXMALLOC_<name>=<value>` were in
/// the environment (booleans: any non-zero value is 1). Returns 0, or -1
/// when there is no such option, the value is negative, or the option is a
/// text option (`PROF`: set it with [`ox_option_set_text`]). Options that
/// shape start-up (RESERVE, VERBOSE) only count before the first allocation.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ox_option_set(name: *const c_char, value: c_longlong) -> c_int {
    // SAFETY: forwarded contract.
    let Some(index) = (unsafe { option_index(name) }) else {
        return -1;
    };
    if value < 0 {
        return -1;
    }
    let info = &OPTIONS[index];
    if info.kind == Kind::Text {
        // A number is no text: it would be taken for a path.
        return -1;
    }
    let value = if info.kind == Kind::Bool {
        (value != 0) as usize
    } else {
        value as usize
    };
    // Build "OXMALLOC_NAME=VALUE" on the stack and let the engine parse it.
    let mut buf = [0u8; 96];
    let mut len = 0;
    let mut digits = [0u8; 20];
    for part in [
        b"OXMALLOC_" as &[u8],
        info.name.as_bytes(),
        b"=",
        crate::decimal(value, &mut digits),
    ] {
        let end = len + part.len();
        if end > buf.len() {
            return -1;
        }
        buf[len..end].copy_from_slice(part);
        len = end;
    }
    options::apply_env_entry(&buf[..len]);
    0
}

/// `ox_option_set_text`: sets a text option (`"PROF"`) to a copy of
/// `value` (NULL or `""`: unset); `value` may be freed or overwritten as
/// soon as this returns. Returns 0, or -1 when there is no such option, it
/// is not a text option, or `value` is longer than 255 bytes
/// ([`options::TEXT_MAX`], with a warning); the option then keeps its value.
///
/// # Safety
/// `name` and `value` are each NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ox_option_set_text(name: *const c_char, value: *const c_char) -> c_int {
    // SAFETY: forwarded contract.
    let Some(index) = (unsafe { option_index(name) }) else {
        return -1;
    };
    let value = if value.is_null() {
        &[][..]
    } else {
        // SAFETY: caller's contract: a NUL-terminated string.
        unsafe { CStr::from_ptr(value) }.to_bytes()
    };
    match options::set_text_at(index, value) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// `ox_option_get_text`: copies a text option's value into `buf` like
/// `snprintf` (at most `len - 1` bytes and a NUL; nothing when `len` is 0)
/// and returns its whole length (0: unset), or -1 when there is no such
/// option or it is not a text option.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `buf` is NULL or points to
/// `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ox_option_get_text(name: *const c_char, buf: *mut c_char, len: usize) -> c_longlong {
    // SAFETY: forwarded contract.
    let Some(index) = (unsafe { option_index(name) }) else {
        return -1;
    };
    if OPTIONS[index].kind != Kind::Text {
        return -1;
    }
    let text = options::text_at(index);
    let value = text.as_ref().map_or(&[][..], |t| t.as_bytes());
    if !buf.is_null() && len > 0 {
        let n = value.len().min(len - 1);
        // SAFETY: caller's contract: `buf` has `len` writable bytes, and we
        // write `n + 1 <= len` of them from our own copy (no overlap).
        unsafe {
            core::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
    }
    value.len() as c_longlong
}

/// `ox_version`: the version string, e.g. `"0.1.0"`.
#[no_mangle]
pub extern "C" fn ox_version() -> *const c_char {
    const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// `ox_tls_model`: `"initial-exec"`, `"general-dynamic"` or `"pthread-key"`.
#[no_mangle]
pub extern "C" fn ox_tls_model() -> *const c_char {
    match engine::TLS_MODEL {
        "initial-exec" => c"initial-exec".as_ptr(),
        "general-dynamic" => c"general-dynamic".as_ptr(),
        _ => c"pthread-key".as_ptr(),
    }
}
