//! Error reporting that never allocates.
//!
//! Every detected misuse is described in one line on standard error, built
//! in a stack buffer and written with raw `write(2)`:
//!
//! ```text
//! oxmalloc: error: double free of 0x7f1200010040 (size 16)
//! ```
//!
//! In hardened mode (and for errors after which nothing is safe) the process
//! then aborts; otherwise the offending call is ignored, which is always safe
//! because every check runs before anything is written.

use crate::os::{Os, Platform};
use crate::util::Line;

/// The kinds of heap misuse that oxmalloc detects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// A block freed twice.
    DoubleFree,
    /// A pointer that is not the start of a live block was freed.
    InvalidFree,
    /// `realloc` called on a pointer that is not a live block.
    InvalidRealloc,
    /// `malloc_usable_size` (or `usable_size`) on a pointer that is not a live block.
    InvalidUsableSize,
    /// A sized free whose size does not match the block (`extra` = size given).
    SizeMismatch,
    /// The canary after a block was overwritten.
    BufferOverflow,
    /// A free-list link points outside its page.
    CorruptedFreeList,
    /// A free block was written to before it was handed out again.
    WriteAfterFree,
}

impl HeapError {
    fn describe(self) -> &'static str {
        match self {
            HeapError::DoubleFree => "double free of ",
            HeapError::InvalidFree => "invalid free of ",
            HeapError::InvalidRealloc => "invalid pointer passed to realloc: ",
            HeapError::InvalidUsableSize => "invalid pointer passed to malloc_usable_size: ",
            HeapError::SizeMismatch => "size mismatch on free of ",
            HeapError::BufferOverflow => "heap buffer overflow past the block at ",
            HeapError::CorruptedFreeList => "corrupted free list in the page of ",
            HeapError::WriteAfterFree => "write after free of ",
        }
    }
}

/// Describes `error` at `addr` on standard error; `size` is the block's
/// size where known (0 otherwise) and `given` the size a sized free claimed.
/// Aborts in hardened mode; returns otherwise so the caller can ignore the call.
#[cold]
#[inline(never)]
pub fn report(error: HeapError, addr: usize, size: usize, given: usize) {
    if crate::options::show_errors() || crate::secure::ENABLED {
        let mut line = Line::new();
        line.str("oxmalloc: error: ").str(error.describe()).hex(addr);
        if error == HeapError::SizeMismatch {
            line.str(" (size mismatch: given ")
                .dec(given as u64)
                .str(", actual ")
                .dec(size as u64)
                .str(")");
        } else if size != 0 {
            line.str(" (size ").dec(size as u64).str(")");
        } else if matches!(
            error,
            HeapError::InvalidFree | HeapError::InvalidRealloc | HeapError::InvalidUsableSize
        ) {
            line.str(" (not a block allocated by oxmalloc)");
        }
        line.str("\n");
        Os::write_stderr(line.as_bytes());
    }
    crate::stats::count_error();
    if crate::secure::ENABLED || error == HeapError::CorruptedFreeList || error == HeapError::BufferOverflow {
        Os::abort();
    }
}

/// Reports `error` and aborts, whatever the mode.
#[cold]
#[inline(never)]
pub fn fatal(error: HeapError, addr: usize, size: usize) -> ! {
    let mut line = Line::new();
    line.str("oxmalloc: error: ").str(error.describe()).hex(addr);
    if size != 0 {
        line.str(" (size ").dec(size as u64).str(")");
    }
    line.str("\n");
    Os::write_stderr(line.as_bytes());
    Os::abort()
}

/// A sized free (Rust `Layout`, C++ sized delete) named the wrong size: say
/// both sizes, then abort.
#[cold]
#[inline(never)]
pub fn fatal_size_mismatch(addr: usize, given: usize, actual: usize) -> ! {
    let mut line = Line::new();
    line.str("oxmalloc: error: size mismatch on free of ")
        .hex(addr)
        .str(" (size mismatch: given ");
    line.dec(given as u64).str(", actual ").dec(actual as u64).str(")\n");
    Os::write_stderr(line.as_bytes());
    Os::abort()
}

/// A system call that cannot fail in a correct program failed: say which,
/// with the range and `errno`, then abort.
#[cold]
#[inline(never)]
pub fn fatal_syscall(call: &str, addr: usize, size: usize, errno: i32) -> ! {
    let mut line = Line::new();
    line.str("oxmalloc: fatal: ")
        .str(call)
        .str(" failed on ")
        .hex(addr)
        .str(" (size ");
    line.dec(size as u64).str("): errno ").signed(errno as i64).str("\n");
    Os::write_stderr(line.as_bytes());
    Os::abort()
}

/// Writes a warning line (`oxmalloc: warning: ...`); used for bad option values.
#[cold]
pub fn warn(parts: &[&[u8]]) {
    let mut line = Line::new();
    line.str("oxmalloc: warning: ");
    for part in parts {
        line.bytes(part);
    }
    line.str("\n");
    Os::write_stderr(line.as_bytes());
}
