//! The per-thread heap pointer.
//!
//! `#![no_std]` code on stable Rust has no `#[thread_local]`, so the slot is
//! declared directly in assembly: an 8-byte variable in `.tdata`,
//! initialised to the address of the static empty heap (so a new thread
//! needs no set-up before its first allocation), read and written with
//! `%fs`-relative moves.
//!
//! * Initial-exec model (default on x86-64): the slot's offset from the
//!   thread pointer is loaded from the GOT (`@GOTTPOFF`), then one
//!   `%fs`-relative access — no call. In an executable the linker turns the
//!   GOT load into a constant. A shared library using it carries the
//!   `STATIC_TLS` flag: fine under `LD_PRELOAD` (loaded at start-up), but a
//!   late `dlopen` of such a library can fail when static TLS space is
//!   exhausted.
//! * General-dynamic model (feature `tls-general-dynamic`): each access calls
//!   `__tls_get_addr`; works in any library, however it is loaded.
//! * Elsewhere (other architectures, Miri, feature `portable-tls`), the slot
//!   is a pthread key and the owner key is the heap's address.

use crate::heap::{empty_heap, Heap};

#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(miri),
    not(feature = "portable-tls")
))]
mod imp {
    use super::Heap;
    use core::arch::{asm, global_asm};

    // The slot. Hidden: every copy of oxmalloc linked into a process (an
    // executable and a preloaded library, say) has its own.
    global_asm!(
        ".pushsection .tdata.oxmalloc_thread_heap,\"awT\",@progbits",
        ".p2align 3",
        ".globl oxmalloc_thread_heap_v0",
        ".hidden oxmalloc_thread_heap_v0",
        ".type oxmalloc_thread_heap_v0,@object",
        ".size oxmalloc_thread_heap_v0,8",
        "oxmalloc_thread_heap_v0:",
        ".quad {empty}",
        ".popsection",
        empty = sym crate::heap::EMPTY_HEAP,
    );

    #[cfg(not(feature = "tls-general-dynamic"))]
    #[inline(always)]
    pub fn get() -> *mut Heap {
        let heap: *mut Heap;
        // SAFETY: reads this thread's slot, which always holds a valid heap
        // pointer (initialised by the loader, then only written by `set`).
        unsafe {
            asm!(
                "mov {0}, qword ptr [rip + oxmalloc_thread_heap_v0@GOTTPOFF]",
                "mov {0}, qword ptr fs:[{0}]",
                out(reg) heap,
                options(nostack, readonly, preserves_flags, pure),
            );
        }
        heap
    }

    #[cfg(not(feature = "tls-general-dynamic"))]
    #[inline(always)]
    pub fn set(heap: *mut Heap) {
        // SAFETY: writes this thread's slot.
        unsafe {
            asm!(
                "mov {t}, qword ptr [rip + oxmalloc_thread_heap_v0@GOTTPOFF]",
                "mov qword ptr fs:[{t}], {h}",
                t = out(reg) _,
                h = in(reg) heap,
                options(nostack, preserves_flags),
            );
        }
    }

    /// Address of this thread's slot through `__tls_get_addr` (the exact
    /// instruction sequence the linker expects, padding prefixes included).
    #[cfg(feature = "tls-general-dynamic")]
    #[inline(always)]
    fn slot() -> *mut *mut Heap {
        let slot: *mut *mut Heap;
        // SAFETY: the standard general-dynamic access sequence; it calls
        // `__tls_get_addr`, hence the C ABI clobbers. The stack is aligned
        // for a call because `nostack` is not given.
        unsafe {
            asm!(
                ".byte 0x66",
                "leaq oxmalloc_thread_heap_v0@tlsgd(%rip), %rdi",
                ".word 0x6666",
                "rex64",
                "call __tls_get_addr@PLT",
                out("rax") slot,
                clobber_abi("C"),
                options(att_syntax),
            );
        }
        slot
    }

    #[cfg(feature = "tls-general-dynamic")]
    #[inline(always)]
    pub fn get() -> *mut Heap {
        // SAFETY: the slot of the calling thread is valid and initialised.
        unsafe { *slot() }
    }

    #[cfg(feature = "tls-general-dynamic")]
    #[inline(always)]
    pub fn set(heap: *mut Heap) {
        // SAFETY: as in `get`.
        unsafe { *slot() = heap }
    }

    /// The thread pointer: `%fs:0` holds its own address in every
    /// TLS-variant-II runtime, one instruction to read.
    #[inline(always)]
    pub fn owner_key() -> usize {
        let key: usize;
        // SAFETY: reads the TCB's self-pointer, always mapped for a live thread.
        unsafe {
            asm!(
                "mov {0}, qword ptr fs:[0]",
                out(reg) key,
                options(nostack, readonly, preserves_flags, pure),
            );
        }
        key
    }

    /// The thread pointer does not depend on the heap.
    #[inline(always)]
    pub fn owner_key_for(_heap: *const Heap) -> usize {
        owner_key()
    }

    pub const MODEL: &str = if cfg!(feature = "tls-general-dynamic") {
        "general-dynamic"
    } else {
        "initial-exec"
    };
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(miri),
    not(feature = "portable-tls")
)))]
mod imp {
    use super::Heap;

    #[inline]
    pub fn get() -> *mut Heap {
        let key = crate::thread::thread_key();
        if key == 0 {
            return super::empty_heap();
        }
        // SAFETY: reading a key created by `thread::create_key`.
        let value = unsafe { libc::pthread_getspecific((key - 1) as libc::pthread_key_t) };
        if value.is_null() {
            super::empty_heap()
        } else {
            value.cast()
        }
    }

    #[inline]
    pub fn set(heap: *mut Heap) {
        let key = crate::thread::thread_key();
        if key == 0 {
            return;
        }
        let value = if heap == super::empty_heap() {
            core::ptr::null_mut()
        } else {
            heap.cast()
        };
        // SAFETY: writing a key created by `thread::create_key`.
        unsafe { libc::pthread_setspecific((key - 1) as libc::pthread_key_t, value) };
    }

    /// The address of the thread's default heap.
    #[inline]
    pub fn owner_key() -> usize {
        get() as usize
    }

    /// The heap's address, which is its thread's key once it is in the slot.
    #[inline]
    pub fn owner_key_for(heap: *const Heap) -> usize {
        heap as usize
    }

    pub const MODEL: &str = "pthread-key";
}

/// The calling thread's heap ([`empty_heap`] before its first allocation).
#[inline(always)]
pub fn heap() -> *mut Heap {
    imp::get()
}

/// Sets the calling thread's heap.
#[inline(always)]
pub fn set_heap(heap: *mut Heap) {
    imp::set(heap)
}

/// A word that identifies the calling thread while it lives: the owner key
/// of the pages its heaps own. On x86-64 Linux it is the thread pointer;
/// elsewhere (and with feature `portable-tls`) the address of the thread's
/// default heap.
#[inline(always)]
pub fn owner_key() -> usize {
    imp::owner_key()
}

/// The owner key that the calling thread has while `heap` is its default
/// heap: [`owner_key`] once `heap` is in the slot, and already before (a
/// heap is keyed while it is set up, before it is published). Where the key
/// is the heap's address, reading [`owner_key`] during set-up gave the
/// address of the empty (or dead) heap, shared by every thread that has no
/// heap: their frees then passed for local ones in each other's pages.
#[inline]
pub fn owner_key_for(heap: *const Heap) -> usize {
    imp::owner_key_for(heap)
}

/// Whether the calling thread has a heap of its own.
#[inline]
pub fn has_heap() -> bool {
    let heap = heap();
    heap != empty_heap() && heap != crate::heap::dead_heap()
}

/// The TLS model this build uses, for banners and reports.
pub const MODEL: &str = imp::MODEL;
