//! Random sequences of `GlobalAlloc` calls on `oxmalloc::OxMalloc` (alloc,
//! alloc_zeroed, realloc, dealloc, dealloc from another thread) with
//! arbitrary layouts (alignments up to 2^22), checked against a model: no
//! overlap, alignment, contents, zeroing, realloc keeping min(old, new)
//! bytes. The model lives in the system allocator.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Op {
    Alloc {
        size: u16,
        shift: u8,
        align_log: u8,
        zeroed: bool,
    },
    Realloc {
        index: u8,
        size: u16,
        shift: u8,
    },
    Dealloc {
        index: u8,
    },
    DeallocRemote {
        index: u8,
    },
}

fn size_of(size: u16, shift: u8) -> usize {
    (size as usize) << (shift % 8)
}

fn byte(addr: usize, i: usize) -> u8 {
    ((addr >> 3) as u8) ^ (i as u8).wrapping_mul(13)
}

fn fill(p: *mut u8, size: usize) {
    for i in (0..size).step_by(if size > 8192 { 257 } else { 1 }) {
        // SAFETY: `p` is live with `size` bytes.
        unsafe { *p.add(i) = byte(p as usize, i) };
    }
}

/// Checks the first `size` bytes of a block filled as `filled` bytes at `origin`.
fn check_prefix(p: *mut u8, size: usize, filled: usize, origin: usize) {
    for i in (0..size).step_by(if filled > 8192 { 257 } else { 1 }) {
        // SAFETY: `p` is live with at least `size` bytes.
        assert_eq!(unsafe { *p.add(i) }, byte(origin, i), "block {p:p} byte {i}");
    }
}

fn check(p: *mut u8, size: usize, origin: usize) {
    check_prefix(p, size, size, origin);
}

fuzz_target!(|ops: Vec<Op>| {
    // address -> (layout, address whose pattern the bytes hold)
    let mut live: BTreeMap<usize, (Layout, usize)> = BTreeMap::new();
    let pick = |live: &BTreeMap<usize, (Layout, usize)>, index: u8| {
        (!live.is_empty()).then(|| *live.keys().nth(index as usize % live.len()).unwrap())
    };
    for op in ops.into_iter().take(1000) {
        match op {
            Op::Alloc {
                size,
                shift,
                align_log,
                zeroed,
            } => {
                let size = size_of(size, shift).max(1);
                let Ok(layout) = Layout::from_size_align(size, 1 << (align_log % 23)) else {
                    continue;
                };
                // SAFETY: a non-zero-size layout.
                let p = unsafe {
                    if zeroed {
                        OxMalloc.alloc_zeroed(layout)
                    } else {
                        OxMalloc.alloc(layout)
                    }
                };
                if p.is_null() {
                    continue;
                }
                assert_eq!(p as usize % layout.align(), 0, "misaligned");
                if zeroed {
                    // SAFETY: live, `size` bytes.
                    assert!(unsafe { std::slice::from_raw_parts(p, size) }.iter().all(|&b| b == 0));
                }
                let a = p as usize;
                if let Some((&prev, (l, _))) = live.range(..=a).next_back() {
                    assert!(prev + l.size() <= a, "overlap");
                }
                if let Some((&next, _)) = live.range(a..).next() {
                    assert!(a + size <= next, "overlap");
                }
                fill(p, size);
                live.insert(a, (layout, a));
            }
            Op::Realloc { index, size, shift } => {
                let Some(a) = pick(&live, index) else { continue };
                let new_size = size_of(size, shift).max(1);
                let (layout, origin) = live[&a];
                check(a as *mut u8, layout.size(), origin);
                // SAFETY: a live block with this layout; non-zero new size.
                let q = unsafe { OxMalloc.realloc(a as *mut u8, layout, new_size) };
                if q.is_null() {
                    continue;
                }
                live.remove(&a);
                assert_eq!(q as usize % layout.align(), 0, "realloc lost the alignment");
                check_prefix(q, layout.size().min(new_size), layout.size(), origin);
                fill(q, new_size);
                let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                live.insert(q as usize, (new_layout, q as usize));
            }
            Op::Dealloc { index } => {
                let Some(a) = pick(&live, index) else { continue };
                let (layout, origin) = live.remove(&a).unwrap();
                check(a as *mut u8, layout.size(), origin);
                // SAFETY: a live block with this layout.
                unsafe { OxMalloc.dealloc(a as *mut u8, layout) };
            }
            Op::DeallocRemote { index } => {
                let Some(a) = pick(&live, index) else { continue };
                let (layout, origin) = live.remove(&a).unwrap();
                check(a as *mut u8, layout.size(), origin);
                std::thread::spawn(move || {
                    // SAFETY: a live block with this layout, given to this thread.
                    unsafe { OxMalloc.dealloc(a as *mut u8, layout) }
                })
                .join()
                .unwrap();
            }
        }
    }
    for (a, (layout, origin)) in live {
        check(a as *mut u8, layout.size(), origin);
        // SAFETY: a live block with this layout.
        unsafe { OxMalloc.dealloc(a as *mut u8, layout) };
    }
});
