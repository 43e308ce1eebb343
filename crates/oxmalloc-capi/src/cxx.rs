//! C++ `operator new` and `operator delete`, every form, under their
//! Itanium-mangled names (x86-64: `size_t` is `m`, `std::align_val_t` is
//! `St11align_val_t`, `const std::nothrow_t&` is `RKSt9nothrow_t`).
//!
//! Failure semantics follow libstdc++:
//!
//! * the throwing forms call the installed `std::new_handler` in a loop
//!   while allocation fails; with no handler they throw `std::bad_alloc`
//!   (through libstdc++'s `std::__throw_bad_alloc`, found with `dlsym` at
//!   failure time). A process without a C++ runtime (a C program calling
//!   `_Znwm` by hand) gets one line on stderr and `abort()`. An aligned form
//!   given an alignment that is not a power of two throws at once.
//! * the `nothrow` forms return NULL (`errno = ENOMEM`) without calling the
//!   handler: a handler may throw, and nothing here could catch it.
//!
//! A C++ exception must not unwind through a Rust frame (the crate is built
//! with `panic = "abort"`, so Rust frames are `nounwind`). The throwing
//! forms are therefore naked functions: the fast path calls an ordinary
//! Rust function that returns (no Rust frame stays on the stack), and on
//! failure jumps to [`new_loop`], an assembly loop with its own unwind
//! information that calls the handler or the thrower itself. An exception
//! thrown there unwinds through frames that have CFI and no personality,
//! which is exactly what a C frame compiled with `-fexceptions` would be.
//!
//! Every `delete` form frees through the engine; sizes and alignments are
//! not needed to find a block (a pointer oxmalloc did not allocate is
//! reported and ignored, as for `free`).

use crate::errno::enomem;
use crate::libc_api::aligned_raw;
use core::arch::naked_asm;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};
use engine::raw::{self, MALLOC_ALIGN};

/// The outcome of one try of the `operator new` loop, returned in
/// `rax:rdx`: the block, or (when `ptr` is null) the function the loop
/// calls before trying again (the new-handler, or the thrower, which does
/// not return).
#[repr(C)]
struct Attempt {
    ptr: *mut u8,
    next: usize,
}

/// The fast path of the plain throwing forms (null on failure).
extern "C" fn new_fast(size: usize) -> *mut u8 {
    raw::malloc(size)
}

/// One try: allocate; on failure say what to call next.
extern "C" fn new_attempt(size: usize, align: usize) -> Attempt {
    if align.is_power_of_two() {
        let ptr = aligned_raw(size, align);
        if !ptr.is_null() {
            return Attempt { ptr, next: 0 };
        }
        if let Some(handler) = current_new_handler() {
            return Attempt {
                ptr: core::ptr::null_mut(),
                next: handler,
            };
        }
    }
    match lookup(&THROW_BAD_ALLOC, c"_ZSt17__throw_bad_allocv") {
        Some(thrower) => Attempt {
            ptr: core::ptr::null_mut(),
            next: thrower,
        },
        None => {
            let mut digits = [0u8; 20];
            crate::die(&[
                b"oxmalloc: fatal: out of memory in operator new (",
                crate::decimal(size, &mut digits),
                b" bytes) and no C++ runtime to throw std::bad_alloc\n",
            ])
        }
    }
}

static GET_NEW_HANDLER: AtomicUsize = AtomicUsize::new(0);
static THROW_BAD_ALLOC: AtomicUsize = AtomicUsize::new(0);

/// The address of a C++ runtime function, looked up (once found, cached) in
/// the global scope. Only failure paths call this: `dlsym` may allocate.
fn lookup(cache: &AtomicUsize, name: &core::ffi::CStr) -> Option<usize> {
    let cached = cache.load(Ordering::Relaxed);
    if cached != 0 {
        return Some(cached);
    }
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
    if addr == 0 {
        return None;
    }
    cache.store(addr, Ordering::Relaxed);
    Some(addr)
}

/// The installed `std::new_handler`, if any (`std::get_new_handler()`).
fn current_new_handler() -> Option<usize> {
    let getter = lookup(&GET_NEW_HANDLER, c"_ZSt15get_new_handlerv")?;
    // SAFETY: `std::get_new_handler` takes nothing, returns a function
    // pointer (C ABI on x86-64) and cannot throw (it is noexcept).
    let getter: extern "C" fn() -> usize = unsafe { core::mem::transmute(getter) };
    match getter() {
        0 => None,
        handler => Some(handler),
    }
}

/// The failure loop of the throwing forms: `(size, align)` in `rdi, rsi`.
/// Tries [`new_attempt`] until it returns a block; in between calls what it
/// names (the new-handler, which may throw or return, or the thrower). Has
/// its own unwind information, so exceptions pass through it.
#[unsafe(naked)]
extern "C" fn new_loop(size: usize, align: usize) -> *mut u8 {
    naked_asm!(
        ".cfi_startproc",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbx, -16",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r12, -24",
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "mov rbx, rdi",
        "mov r12, rsi",
        "2:",
        "mov rdi, rbx",
        "mov rsi, r12",
        "call {attempt}",
        "test rax, rax",
        "jnz 3f",
        "call rdx",
        "jmp 2b",
        "3:",
        "add rsp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "ret",
        ".cfi_endproc",
        attempt = sym new_attempt,
    )
}

/// Declares a plain throwing form: the fast path, then a tail jump to the loop.
macro_rules! throwing_new {
    ($(#[$doc:meta])* $export:literal, $name:ident) => {
        $(#[$doc])*
        #[unsafe(naked)]
        #[export_name = $export]
        pub extern "C" fn $name(size: usize) -> *mut c_void {
            naked_asm!(
                ".cfi_startproc",
                "push rdi",
                ".cfi_adjust_cfa_offset 8",
                "call {fast}",
                "pop rdi",
                ".cfi_adjust_cfa_offset -8",
                "test rax, rax",
                "jz 2f",
                "ret",
                "2:",
                "mov esi, {align}",
                "jmp {slow}",
                ".cfi_endproc",
                fast = sym new_fast,
                slow = sym new_loop,
                align = const MALLOC_ALIGN,
            )
        }
    };
}

/// Declares an aligned throwing form: straight to the loop.
macro_rules! throwing_aligned_new {
    ($(#[$doc:meta])* $export:literal, $name:ident) => {
        $(#[$doc])*
        #[unsafe(naked)]
        #[export_name = $export]
        pub extern "C" fn $name(size: usize, align: usize) -> *mut c_void {
            naked_asm!(
                ".cfi_startproc",
                "jmp {slow}",
                ".cfi_endproc",
                slow = sym new_loop,
            )
        }
    };
}

throwing_new!(
    /// `operator new(size_t)`.
    "_Znwm",
    operator_new
);
throwing_new!(
    /// `operator new[](size_t)`.
    "_Znam",
    operator_new_array
);
throwing_aligned_new!(
    /// `operator new(size_t, std::align_val_t)`.
    "_ZnwmSt11align_val_t",
    operator_new_aligned
);
throwing_aligned_new!(
    /// `operator new[](size_t, std::align_val_t)`.
    "_ZnamSt11align_val_t",
    operator_new_array_aligned
);

/// The nothrow forms: NULL with `ENOMEM` on failure.
#[inline(always)]
fn nothrow_new(size: usize) -> *mut c_void {
    crate::libc_api::malloc_impl(size)
}

/// The aligned nothrow forms; a bad alignment gives NULL.
#[inline(always)]
fn nothrow_aligned_new(size: usize, align: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return enomem();
    }
    let p = aligned_raw(size, align);
    if p.is_null() {
        return enomem();
    }
    p.cast()
}

/// `operator new(size_t, const std::nothrow_t&)`.
#[export_name = "_ZnwmRKSt9nothrow_t"]
pub extern "C" fn operator_new_nothrow(size: usize, _tag: *const c_void) -> *mut c_void {
    nothrow_new(size)
}

/// `operator new[](size_t, const std::nothrow_t&)`.
#[export_name = "_ZnamRKSt9nothrow_t"]
pub extern "C" fn operator_new_array_nothrow(size: usize, _tag: *const c_void) -> *mut c_void {
    nothrow_new(size)
}

/// `operator new(size_t, std::align_val_t, const std::nothrow_t&)`.
#[export_name = "_ZnwmSt11align_val_tRKSt9nothrow_t"]
pub extern "C" fn operator_new_aligned_nothrow(size: usize, align: usize, _tag: *const c_void) -> *mut c_void {
    nothrow_aligned_new(size, align)
}

/// `operator new[](size_t, std::align_val_t, const std::nothrow_t&)`.
#[export_name = "_ZnamSt11align_val_tRKSt9nothrow_t"]
pub extern "C" fn operator_new_array_aligned_nothrow(size: usize, align: usize, _tag: *const c_void) -> *mut c_void {
    nothrow_aligned_new(size, align)
}

/// Declares `operator delete` forms: each frees `ptr`, ignoring the rest.
macro_rules! deletes {
    ($($(#[$doc:meta])* $export:literal => $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// `ptr` is null or a block from this allocator, not used afterwards.
        #[export_name = $export]
        pub unsafe extern "C" fn $name(ptr: *mut c_void $(, $arg: $ty)*) {
            $(let _ = $arg;)*
            // SAFETY: forwarded contract; null and foreign pointers are
            // handled by the engine.
            unsafe { raw::free(ptr.cast()) }
        }
    )*};
}

deletes! {
    /// `operator delete(void*)`.
    "_ZdlPv" => operator_delete();
    /// `operator delete[](void*)`.
    "_ZdaPv" => operator_delete_array();
    /// `operator delete(void*, const std::nothrow_t&)`.
    "_ZdlPvRKSt9nothrow_t" => operator_delete_nothrow(tag: *const c_void);
    /// `operator delete[](void*, const std::nothrow_t&)`.
    "_ZdaPvRKSt9nothrow_t" => operator_delete_array_nothrow(tag: *const c_void);
    /// `operator delete(void*, std::align_val_t)`.
    "_ZdlPvSt11align_val_t" => operator_delete_aligned(align: usize);
    /// `operator delete[](void*, std::align_val_t)`.
    "_ZdaPvSt11align_val_t" => operator_delete_array_aligned(align: usize);
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)`.
    "_ZdlPvSt11align_val_tRKSt9nothrow_t" => operator_delete_aligned_nothrow(align: usize, tag: *const c_void);
    /// `operator delete[](void*, std::align_val_t, const std::nothrow_t&)`.
    "_ZdaPvSt11align_val_tRKSt9nothrow_t" => operator_delete_array_aligned_nothrow(align: usize, tag: *const c_void);
}

/// Sized `delete` forms: the hardened library checks the size against the
/// block's requested size (C++'s sized deallocation passes the same size
/// that `new` got); the default one ignores it.
macro_rules! sized_deletes {
    ($($(#[$doc:meta])* $export:literal => $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// `ptr` is null or a live block; it must not be used afterwards.
        #[export_name = $export]
        pub unsafe extern "C" fn $name(ptr: *mut c_void, size: usize $(, $arg: $ty)*) {
            $(let _ = $arg;)*
            // SAFETY: forwarded contract; null and foreign pointers are
            // handled by the engine.
            unsafe { raw::free_sized(ptr.cast(), size) }
        }
    )*};
}

sized_deletes! {
    /// `operator delete(void*, size_t)`.
    "_ZdlPvm" => operator_delete_sized();
    /// `operator delete[](void*, size_t)`.
    "_ZdaPvm" => operator_delete_array_sized();
    /// `operator delete(void*, size_t, std::align_val_t)`.
    "_ZdlPvmSt11align_val_t" => operator_delete_sized_aligned(align: usize);
    /// `operator delete[](void*, size_t, std::align_val_t)`.
    "_ZdaPvmSt11align_val_t" => operator_delete_array_sized_aligned(align: usize);
}
