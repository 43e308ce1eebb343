//! `oxbench-pairs ALLOC MODE N [BYTES]`: `N` pairs of `GlobalAlloc::alloc`
//! and `dealloc` of `BYTES` (32) bytes called on one allocator value,
//! several allocators linked into this one program, for counting
//! instructions per pair with callgrind side by side (`oxbench callgrind`).
//! `MODE` is `opaque` (the layout goes through `black_box`, as
//! `__rust_alloc` sees it) or `constant` (the layout folds, as for
//! `Box::new` of a known type; 32 bytes only, compiled in). The program's
//! own global allocator is the system's; the measured allocators are called
//! directly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;

/// The allocators this program can measure, in report order.
const ALLOCATORS: &[&str] = &["oxmalloc", "mimalloc", "jemalloc", "snmalloc", "rpmalloc", "system"];

/// Bytes of the constant layout.
const CONSTANT_BYTES: usize = oxbench::worker::DEFAULT_PAIR_BYTES;

#[inline(never)]
fn pairs<A: GlobalAlloc, const OPAQUE: bool>(allocator: &A, n: u64, bytes: usize) {
    let bytes = if OPAQUE { bytes } else { CONSTANT_BYTES };
    let layout = Layout::from_size_align(bytes, 8).expect("layout");
    for _ in 0..n {
        let layout = if OPAQUE { black_box(layout) } else { layout };
        // SAFETY: the layout has a non-zero size; the block is freed with the
        // same allocator and layout.
        unsafe {
            let p = allocator.alloc(layout);
            if p.is_null() {
                std::process::abort();
            }
            allocator.dealloc(black_box(p), layout);
        }
    }
}

/// Runs `n` pairs on `allocator`, in one monomorphised loop per mode (so
/// that the constant-layout loop really folds the layout).
fn run<A: GlobalAlloc>(allocator: &A, n: u64, opaque: bool, bytes: usize) {
    if opaque {
        pairs::<A, true>(allocator, n, bytes);
    } else {
        pairs::<A, false>(allocator, n, bytes);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(mode), Some(n)) = (args.get(1), args.get(2), args.get(3).and_then(|n| n.parse().ok())) else {
        eprintln!(
            "usage: oxbench-pairs {{{}}} {{opaque|constant}} N [BYTES]",
            ALLOCATORS.join("|")
        );
        return ExitCode::from(2);
    };
    let bytes = match args.get(4).map(|b| b.parse::<usize>()) {
        None => CONSTANT_BYTES,
        Some(Ok(b)) if b > 0 => b,
        Some(_) => {
            eprintln!("oxbench-pairs: BYTES must be a positive number");
            return ExitCode::from(2);
        }
    };
    let opaque = match mode.as_str() {
        "opaque" => true,
        "constant" => false,
        _ => {
            eprintln!("oxbench-pairs: unknown mode {mode:?} (opaque or constant)");
            return ExitCode::from(2);
        }
    };
    if !opaque && bytes != CONSTANT_BYTES {
        eprintln!("oxbench-pairs: the constant layout is {CONSTANT_BYTES} bytes (compiled in); use opaque for {bytes}");
        return ExitCode::from(2);
    }
    match name.as_str() {
        "oxmalloc" => run(&oxmalloc::OxMalloc, n, opaque, bytes),
        "mimalloc" => run(&mimalloc::MiMalloc, n, opaque, bytes),
        "jemalloc" => run(&tikv_jemallocator::Jemalloc, n, opaque, bytes),
        "snmalloc" => run(&snmalloc_rs::SnMalloc, n, opaque, bytes),
        "rpmalloc" => run(&rpmalloc::RpMalloc, n, opaque, bytes),
        "system" => run(&System, n, opaque, bytes),
        _ => {
            eprintln!("oxbench-pairs: unknown allocator {name:?} ({})", ALLOCATORS.join(", "));
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
