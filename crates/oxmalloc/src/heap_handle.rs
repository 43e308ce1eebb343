//! First-class heaps: the public [`Heap`] handle.
//!
//! A `Heap` groups allocations so that they can be freed all at once
//! ([`Heap::destroy`]) or handed back to the thread's default heap
//! ([`Heap::delete`], also what dropping it does). Allocation happens on
//! the thread that created the heap (the type is neither `Send` nor `Sync`);
//! blocks may be freed from any thread, with the ordinary deallocation paths.
//!
//! ```
//! use std::alloc::Layout;
//! let mut heap = oxmalloc::Heap::new().expect("out of memory");
//! let layout = Layout::new::<[u64; 4]>();
//! let p = heap.alloc(layout);
//! assert!(!p.is_null());
//! let mut live = 0;
//! heap.walk(|_block, _size| { live += 1; true });
//! assert_eq!(live, 1);
//! heap.destroy(); // frees `p` and everything else allocated from the heap
//! ```

use crate::heap::{empty_heap, heap_acquire, Heap as RawHeap};
use crate::{alloc, chunk, free, thread, tls};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

/// A first-class heap (see the module documentation).
#[derive(Debug)]
pub struct Heap {
    raw: NonNull<RawHeap>,
    /// Allocation must stay on the creating thread.
    _not_send: PhantomData<*mut ()>,
}

impl Heap {
    /// Creates a heap for the calling thread; `None` when out of memory.
    pub fn new() -> Option<Heap> {
        let mut default = tls::heap();
        if default == crate::heap::dead_heap() {
            return None;
        }
        if default == empty_heap() {
            default = thread::init_thread();
            if default.is_null() {
                return None;
            }
        }
        let raw = NonNull::new(heap_acquire())?;
        // SAFETY: a fresh pool heap, and the calling thread's default heap.
        unsafe { raw.as_ref().init_first_class(&*default) };
        Some(Heap {
            raw,
            _not_send: PhantomData,
        })
    }

    /// The engine's heap behind the handle (for the C API).
    pub(crate) fn as_raw(&self) -> *mut RawHeap {
        self.raw.as_ptr()
    }

    /// Rebuilds a handle from [`Heap::into_raw`].
    ///
    /// # Safety
    /// `raw` must come from `into_raw` on the calling thread, once.
    pub(crate) unsafe fn from_raw(raw: *mut RawHeap) -> Option<Heap> {
        NonNull::new(raw).map(|raw| Heap {
            raw,
            _not_send: PhantomData,
        })
    }

    /// Gives up the handle without deleting the heap (for the C API).
    pub(crate) fn into_raw(self) -> *mut RawHeap {
        let raw = self.raw.as_ptr();
        core::mem::forget(self);
        raw
    }

    /// Allocates a block for `layout` from this heap; null when out of
    /// memory. A zero-sized layout gets a unique minimal block.
    pub fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the handle's heap belongs to the calling thread (the
        // handle is not Send).
        unsafe { alloc::alloc_in(self.as_raw(), layout.size(), layout.align(), false) }
    }

    /// As [`Heap::alloc`], with the block zeroed.
    pub fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { alloc::alloc_in(self.as_raw(), layout.size(), layout.align(), true) }
    }

    /// Resizes a block to `new_size` bytes, in place when possible,
    /// otherwise moving it into this heap. Null (block untouched) when out
    /// of memory.
    ///
    /// # Safety
    /// `ptr` must be a live block of oxmalloc's allocated with `layout`
    /// (from any heap); `new_size` must not be 0.
    pub unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(page) = chunk::page_of_checked(ptr) else {
            return ptr::null_mut();
        };
        let page = alloc::resolve_forward(page);
        // SAFETY: the caller's contract; the heap is the calling thread's.
        unsafe { alloc::realloc_block_in(self.as_raw(), ptr, page, new_size, layout.align()) }
    }

    /// Frees a block allocated with `layout` (from any heap, on any thread).
    ///
    /// # Safety
    /// `ptr` must be a live block of oxmalloc's allocated with `layout`.
    pub unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract; the checked path handles every alignment.
        unsafe { free::free_sized_checked(ptr, layout.size()) }
    }

    /// Calls `visit(block, usable_size)` for every live block of the heap
    /// (stopping early if it returns `false`); returns whether it saw them
    /// all. `visit` must not free blocks of this heap, nor call `fork` (it
    /// sees the big blocks with a lock held that `fork` takes).
    pub fn walk(&mut self, mut visit: impl FnMut(*mut u8, usize) -> bool) -> bool {
        // SAFETY: the heap is the calling thread's; `&mut self` keeps
        // allocation from it out of `visit`.
        unsafe { self.raw.as_ref().walk(&mut visit) }
    }

    /// Frees every block of the heap at once and the heap itself.
    /// Pointers into the heap's blocks dangle afterwards, on every thread.
    pub fn destroy(self) {
        let raw = self.into_raw();
        // SAFETY: the heap is the calling thread's; consuming the handle
        // ends its use.
        unsafe { (*raw).destroy() };
    }

    /// Hands every live block to the thread's default heap (they stay
    /// valid and are freed as usual) and frees the heap. Same as dropping it.
    pub fn delete(self) {
        drop(self)
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: the heap is the calling thread's; the handle is going away.
        unsafe { self.raw.as_ref().delete() };
    }
}

#[cfg(feature = "allocator-api2")]
mod api2 {
    use super::Heap;
    use allocator_api2::alloc::{AllocError, Allocator};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    fn block(ptr: *mut u8, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        NonNull::new(ptr)
            .map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
            .ok_or(AllocError)
    }

    fn dangling(layout: Layout) -> NonNull<[u8]> {
        // A well-aligned non-null address for a zero-sized block.
        let p = core::ptr::without_provenance_mut::<u8>(layout.align());
        // SAFETY: the address is the (non-zero) alignment.
        NonNull::slice_from_raw_parts(unsafe { NonNull::new_unchecked(p) }, 0)
    }

    // SAFETY: blocks are valid for their layout until deallocated, distinct
    // while live, and may be freed through any `&Heap` of the same heap (or
    // any oxmalloc deallocation path); zero-sized requests never reach the heap.
    unsafe impl Allocator for &Heap {
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if layout.size() == 0 {
                return Ok(dangling(layout));
            }
            block(Heap::alloc(self, layout), layout)
        }

        fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if layout.size() == 0 {
                return Ok(dangling(layout));
            }
            block(Heap::alloc_zeroed(self, layout), layout)
        }

        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            if layout.size() != 0 {
                // SAFETY: the trait's contract: a live block of this allocator.
                unsafe { Heap::dealloc(self, ptr.as_ptr(), layout) }
            }
        }

        unsafe fn grow(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if old.size() == 0 || new.align() > old.align() {
                let fresh = self.allocate(new)?;
                // SAFETY: the trait's contract: `ptr` holds `old.size()` bytes.
                unsafe {
                    core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr().cast(), old.size());
                    self.deallocate(ptr, old);
                }
                return Ok(fresh);
            }
            // SAFETY: the trait's contract: a live block with layout `old`.
            block(unsafe { Heap::realloc(self, ptr.as_ptr(), old, new.size()) }, new)
        }

        unsafe fn grow_zeroed(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
            // SAFETY: forwarded contract.
            let grown = unsafe { self.grow(ptr, old, new)? };
            // SAFETY: the new block holds `new.size()` bytes.
            unsafe {
                grown
                    .as_ptr()
                    .cast::<u8>()
                    .add(old.size())
                    .write_bytes(0, new.size() - old.size())
            };
            Ok(grown)
        }

        unsafe fn shrink(&self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if new.size() == 0 {
                // SAFETY: the trait's contract.
                unsafe { self.deallocate(ptr, old) };
                return Ok(dangling(new));
            }
            if new.align() > old.align() {
                let fresh = self.allocate(new)?;
                // SAFETY: the trait's contract.
                unsafe {
                    core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr().cast(), new.size());
                    self.deallocate(ptr, old);
                }
                return Ok(fresh);
            }
            // SAFETY: the trait's contract: a live block with layout `old`.
            block(unsafe { Heap::realloc(self, ptr.as_ptr(), old, new.size()) }, new)
        }
    }
}

#[cfg(feature = "nightly")]
mod nightly {
    use super::Heap;
    use core::alloc::{AllocError, Allocator, Layout};
    use core::ptr::NonNull;

    // SAFETY: as for the allocator-api2 implementation.
    unsafe impl Allocator for &Heap {
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if layout.size() == 0 {
                let p = core::ptr::without_provenance_mut::<u8>(layout.align());
                // SAFETY: the alignment is non-zero.
                return Ok(NonNull::slice_from_raw_parts(unsafe { NonNull::new_unchecked(p) }, 0));
            }
            NonNull::new(Heap::alloc(self, layout))
                .map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
                .ok_or(AllocError)
        }

        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            if layout.size() != 0 {
                // SAFETY: the trait's contract.
                unsafe { Heap::dealloc(self, ptr.as_ptr(), layout) }
            }
        }
    }
}
