//! `oxbench-pairs ALLOC MODE N`: `N` pairs of 32-byte `GlobalAlloc::alloc`
//! and `dealloc` called on one allocator value, several allocators linked
//! into this one program, for counting instructions per pair with callgrind
//! side by side (`oxbench callgrind`). `MODE` is `opaque` (the layout goes
//! through `black_box`, as `__rust_alloc` sees it) or `constant` (the layout
//! folds, as for `Box::new` of a known type). The program's own global
//! allocator is the system's; the measured allocators are called directly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;

/// The allocators this program can measure, in report order.
const ALLOCATORS: &[&str] = &["oxmalloc", "mimalloc", "jemalloc", "snmalloc", "rpmalloc", "system"];

#[inline(never)]
fn pairs<A: GlobalAlloc, const OPAQUE: bool>(allocator: &A, n: u64) {
    let layout = Layout::from_size_align(32, 8).expect("layout");
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
fn run<A: GlobalAlloc>(allocator: &A, n: u64, opaque: bool) {
    if opaque {
        pairs::<A, true>(allocator, n);
    } else {
        pairs::<A, false>(allocator, n);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(mode), Some(n)) = (args.get(1), args.get(2), args.get(3).and_then(|n| n.parse().ok())) else {
        eprintln!(
            "usage: oxbench-pairs {{{}}} {{opaque|constant}} N",
            ALLOCATORS.join("|")
        );
        return ExitCode::from(2);
    };
    let opaque = match mode.as_str() {
        "opaque" => true,
        "constant" => false,
        _ => {
            eprintln!("oxbench-pairs: unknown mode {mode:?} (opaque or constant)");
            return ExitCode::from(2);
        }
    };
    match name.as_str() {
        "oxmalloc" => run(&oxmalloc::OxMalloc, n, opaque),
        "mimalloc" => run(&mimalloc::MiMalloc, n, opaque),
        "jemalloc" => run(&tikv_jemallocator::Jemalloc, n, opaque),
        "snmalloc" => run(&snmalloc_rs::SnMalloc, n, opaque),
        "rpmalloc" => run(&rpmalloc::RpMalloc, n, opaque),
        "system" => run(&System, n, opaque),
        _ => {
            eprintln!("oxbench-pairs: unknown allocator {name:?} ({})", ALLOCATORS.join(", "));
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
