#![no_std]
//! stub
use engine as _;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// test
#[no_mangle]
pub extern "C" fn ox_malloc(size: usize) -> *mut u8 {
    engine::raw::malloc(size)
}
