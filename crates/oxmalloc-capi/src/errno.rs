//! Setting `errno` (the engine never does: the C front decides).

use core::ptr::null_mut;

/// Sets `errno` to `value`.
#[inline]
pub fn set(value: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = value };
}

/// `errno = ENOMEM`; returns null, for `return enomem();` in failure paths.
#[cold]
#[inline(never)]
pub fn enomem<T>() -> *mut T {
    set(libc::ENOMEM);
    null_mut()
}

/// `errno = EINVAL`; returns null.
#[cold]
#[inline(never)]
pub fn einval<T>() -> *mut T {
    set(libc::EINVAL);
    null_mut()
}
