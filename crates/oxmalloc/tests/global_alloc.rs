//! The `GlobalAlloc` contract, checked through `OxMalloc` directly (and
//! with `OxMalloc` as this test binary's global allocator).

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

/// A byte pattern that depends on the block and the offset.
fn pattern(seed: usize, i: usize) -> u8 {
    (seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)) % 251) as u8
}

/// # Safety
/// `p` must be valid for writes of `len` bytes.
unsafe fn fill(p: *mut u8, len: usize, seed: usize) {
    for i in 0..len {
        // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
        unsafe { *p.add(i) = pattern(seed, i) };
    }
}

/// # Safety
/// `p` must be valid for reads of `len` bytes.
unsafe fn check(p: *mut u8, len: usize, seed: usize) {
    for i in 0..len {
        // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
        let got = unsafe { *p.add(i) };
        assert_eq!(got, pattern(seed, i), "byte {i} of {len} (seed {seed}) at {p:p}");
    }
}

/// Allocates, checks alignment and usable size, writes the whole usable
/// size, frees.
fn roundtrip(size: usize, align: usize) {
    let layout = Layout::from_size_align(size, align).unwrap();
    // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
    unsafe {
        let p = OxMalloc.alloc(layout);
        assert!(!p.is_null(), "alloc({size}, {align}) failed");
        assert_eq!(p as usize % align, 0, "alloc({size}, {align}) = {p:p} misaligned");
        let usable = oxmalloc::usable_size(p);
        assert!(usable >= size, "usable {usable} < size {size}");
        // Write the first, middle and last bytes of the usable size and
        // read them back (volatile, so that the memory is really touched),
        // then a pattern over the requested size for small blocks.
        // (The value depends on the offset alone: with a usable size of 1
        // the three offsets are one byte.)
        let marks = [0, usable / 2, usable - 1];
        for at in marks {
            p.add(at).write_volatile(pattern(usable, at));
        }
        for at in marks {
            let got = p.add(at).read_volatile();
            assert_eq!(
                got,
                pattern(usable, at),
                "byte {at} of alloc({size}, {align}) (usable {usable}) at {p:p}"
            );
        }
        if size <= 64 * 1024 {
            fill(p, size, size);
            check(p, size, size);
        }
        OxMalloc.dealloc(p, layout);
    }
}

#[test]
fn every_size_up_to_64k() {
    for size in 1..=4096 {
        roundtrip(size, 1);
        roundtrip(size, 8);
    }
    for size in (4096..=65536).step_by(61) {
        roundtrip(size, 8);
    }
    roundtrip(65536, 8);
}

#[test]
fn powers_of_two_plus_minus_one_up_to_256m() {
    for k in 0..=28 {
        let base = 1usize << k;
        for size in [base.saturating_sub(1).max(1), base, base + 1] {
            roundtrip(size, 8);
        }
    }
}

#[test]
fn every_alignment_up_to_2_pow_27() {
    for k in 0..=27 {
        let align = 1usize << k;
        for size in [1, 8, 24, align / 2 + 1, align, align + 1, 3 * align + 17] {
            if size == 0 {
                continue;
            }
            roundtrip(size, align);
        }
    }
    // huge alignment with huge size
    roundtrip(300 << 20, 1 << 27);
}

#[test]
fn aligned_blocks_stay_distinct() {
    for k in 3..=16 {
        let layout = Layout::from_size_align(48, 1 << k).unwrap();
        // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
        let blocks: Vec<*mut u8> = (0..64).map(|_| unsafe { OxMalloc.alloc(layout) }).collect();
        let mut sorted: Vec<usize> = blocks.iter().map(|&p| p as usize).collect();
        sorted.sort();
        for w in sorted.windows(2) {
            assert!(w[1] - w[0] >= 48, "overlapping blocks at align {}", 1 << k);
        }
        for (i, &p) in blocks.iter().enumerate() {
            assert_eq!(p as usize % (1 << k), 0);
            // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
            unsafe { fill(p, 48, i) };
        }
        for (i, &p) in blocks.iter().enumerate() {
            // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
            unsafe {
                check(p, 48, i);
                OxMalloc.dealloc(p, layout);
            }
        }
    }
}

#[test]
fn realloc_keeps_contents_across_every_path() {
    // small -> medium -> large -> huge -> small, and back up, in steps.
    let sizes = [
        16usize, 200, 1000, 3000, 12_000, 60_000, 100_000, 900_000, 3_000_000, 6_000_000, 40_000_000, 7_000_000,
        500_000, 70_000, 5000, 24, 5_000_000, 8,
    ];
    for align in [8usize, 16, 64, 4096] {
        let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
        // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
        unsafe {
            let mut p = OxMalloc.alloc(layout);
            fill(p, layout.size(), 99);
            for &new_size in &sizes[1..] {
                let keep = layout.size().min(new_size);
                let q = OxMalloc.realloc(p, layout, new_size);
                assert!(!q.is_null(), "realloc {} -> {new_size} failed", layout.size());
                assert_eq!(q as usize % align, 0, "realloc lost alignment {align}");
                check(q, keep, 99);
                layout = Layout::from_size_align(new_size, align).unwrap();
                fill(q, new_size, 99);
                p = q;
            }
            OxMalloc.dealloc(p, layout);
        }
    }
}

#[test]
fn realloc_within_usable_size_does_not_move() {
    // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
    unsafe {
        for size in [1usize, 17, 100, 1000, 5000, 70_000, 300_000, 5 << 20] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let p = OxMalloc.alloc(layout);
            let usable = oxmalloc::usable_size(p);
            let q = OxMalloc.realloc(p, layout, usable);
            assert_eq!(p, q, "growing {size} to its usable size {usable} moved the block");
            OxMalloc.dealloc(q, Layout::from_size_align(usable, 8).unwrap());
        }
    }
}

#[test]
fn huge_realloc_grows_in_place_or_moves_without_losing_data() {
    // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
    unsafe {
        let mut layout = Layout::from_size_align(8 << 20, 8).unwrap();
        let mut p = OxMalloc.alloc(layout);
        fill(p, 4096, 5);
        *p.add(layout.size() - 1) = 0xAB;
        for step in 1..=6 {
            let new_size = (8 << 20) + step * (13 << 20);
            let q = OxMalloc.realloc(p, layout, new_size);
            assert!(!q.is_null());
            check(q, 4096, 5);
            assert_eq!(*q.add(layout.size() - 1), 0xAB);
            layout = Layout::from_size_align(new_size, 8).unwrap();
            *q.add(new_size - 1) = 0xAB;
            p = q;
        }
        OxMalloc.dealloc(p, layout);
    }
}

#[test]
fn alloc_zeroed_is_zero_for_every_class_fresh_and_recycled() {
    // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
    unsafe {
        for round in 0..3 {
            let mut sizes: Vec<usize> = (1..=1024).step_by(7).collect();
            sizes.extend((1024..=70_000).step_by(997));
            sizes.extend([300_000, 3_000_000, 9_000_000]);
            let mut live = Vec::new();
            for &size in &sizes {
                let layout = Layout::from_size_align(size, 8).unwrap();
                let p = OxMalloc.alloc_zeroed(layout);
                assert!(!p.is_null());
                for i in 0..size {
                    assert_eq!(*p.add(i), 0, "round {round}: byte {i} of zeroed block of {size}");
                }
                // Dirty it so that recycling must zero again.
                std::ptr::write_bytes(p, 0xEE, size);
                live.push((p, layout));
            }
            for (p, layout) in live {
                OxMalloc.dealloc(p, layout);
            }
        }
    }
}

#[test]
fn zero_sized_vec_and_box_work() {
    let v: Vec<u8> = Vec::with_capacity(0);
    assert_eq!(v.capacity(), 0);
    let b = Box::new([0u64; 0]);
    assert_eq!(b.len(), 0);
    let s: String = (0..1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    assert_eq!(s.len(), 1000);
}

#[test]
fn out_of_memory_returns_null() {
    // SAFETY: every pointer here comes from OxMalloc with the layout it is used with, is live, and is accessed within its size.
    unsafe {
        let layout = Layout::from_size_align(isize::MAX as usize - 4096, 8).unwrap();
        assert!(OxMalloc.alloc(layout).is_null());
        // More than the 47-bit user address space.
        let layout = Layout::from_size_align(1 << 48, 4096).unwrap();
        assert!(OxMalloc.alloc(layout).is_null());
        // and the allocator still works
        roundtrip(100, 8);
    }
}

/// A block freed on the fast path goes back on top of `free` (last in,
/// first out) without clearing the page's "fresh, all zero" flag: the
/// counted free must stop the next `alloc_zeroed` from trusting it.
#[test]
fn alloc_zeroed_after_a_local_free_on_a_fresh_page_is_zero() {
    // A new thread: its pages are carved fresh, so their free lists start known-zero.
    std::thread::spawn(|| {
        for size in [8usize, 24, 48, 128, 512, 1000, 4096, 20_000] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: every pointer comes from OxMalloc with `layout`, is
            // live while used, and is accessed within its size.
            unsafe {
                let first = OxMalloc.alloc_zeroed(layout);
                assert!(!first.is_null());
                std::ptr::write_bytes(first, 0xEE, size);
                OxMalloc.dealloc(first, layout);
                let again = OxMalloc.alloc_zeroed(layout);
                // The hardened build reuses freed blocks in random order.
                if !oxmalloc::HARDENED {
                    assert_eq!(again, first, "size {size}: the freed block was not reused first");
                }
                let dirty = (0..size).filter(|&i| *again.add(i) != 0).count();
                assert_eq!(
                    dirty, 0,
                    "size {size}: {dirty} bytes of a recycled zeroed block are not zero"
                );
                OxMalloc.dealloc(again, layout);
            }
        }
    })
    .join()
    .unwrap();
}
