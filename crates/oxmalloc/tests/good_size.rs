//! `oxmalloc::good_size` (jemalloc's `nallocx` behind the C ABI) against
//! what the allocator really does: for sizes in every regime (classes,
//! large blocks in slices, huge blocks in mappings of their own) and
//! several alignments, a block of exactly `good_size(size, align)` bytes
//! has exactly that usable size, which is at least `size`; at the
//! alignments above 16 tested here (64 and up) a block of `size` bytes has
//! it too; and the answer is a fixed point (asking again for it gives it
//! back).

use oxmalloc::raw;

fn sizes() -> Vec<usize> {
    let mut out = Vec::new();
    let mut s: usize = 1;
    while s <= 40 << 20 {
        for d in [0, 1, 7, 16] {
            out.push(s + d);
            out.push(s.saturating_sub(d).max(1));
        }
        s *= 2;
    }
    for s in [0, 3_000, 4_368, 70_000, (4 << 20) - 65_536, (4 << 20) - 65_535, 5 << 20] {
        out.push(s);
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn a_block_of_the_good_size_has_exactly_that_usable_size() {
    let mut checked = 0;
    for align in [16, 64, 4096, 65_536, 1 << 21] {
        for size in sizes() {
            let good = oxmalloc::good_size(size, align).expect("a size that can be allocated");
            assert!(good >= size.max(1), "good_size({size}, {align}) = {good} is smaller");
            assert_eq!(
                oxmalloc::good_size(good, align),
                Some(good),
                "good_size({size}, {align}) = {good} is not a fixed point"
            );
            if align > 16 && !oxmalloc::HARDENED {
                // Aligned requests never get request-sized blocks; a class
                // that borrows (64 B to 1 KiB, not a power of two) may have
                // a block of its lender's size, the good size, or of its
                // own, between the request and that.
                let p = raw::aligned_alloc(size, align);
                let usable = raw::usable_size(p);
                // SAFETY: a block just allocated here.
                unsafe { raw::free(p) };
                assert!(
                    usable >= size && usable <= good,
                    "{size} B aligned to {align}: usable {usable}, good_size {good}"
                );
            }
            let p = raw::aligned_alloc(good, align);
            assert!(!p.is_null(), "allocating {good} B aligned to {align}");
            assert_eq!(p as usize % align, 0, "{good} B block at {p:?} not aligned to {align}");
            let usable = raw::usable_size(p);
            // SAFETY: a block just allocated here.
            unsafe { raw::free(p) };
            if oxmalloc::HARDENED {
                // The hardened build reports the requested size.
                assert_eq!(usable, good, "hardened: {good} B aligned to {align}");
            } else {
                assert_eq!(
                    usable, good,
                    "good_size({size}, {align}) = {good}, but a block of {good} B has {usable} usable"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} sizes checked");
}

#[test]
fn plain_malloc_sizes_get_at_least_the_good_size() {
    // `malloc` may place a size a class sees over and over in request-sized
    // blocks (smaller than the class), and the size of a class that
    // borrows in blocks of its own (smaller than its lender's), so only "at most"
    // holds for it; the good size is what asking for the good size gives.
    for size in sizes().into_iter().filter(|&s| s < 1 << 20) {
        let good = oxmalloc::good_size(size, 16).unwrap();
        let p = raw::malloc(size);
        let usable = raw::usable_size(p);
        // SAFETY: a block just allocated here.
        unsafe { raw::free(p) };
        assert!(
            usable >= size && usable <= good,
            "malloc({size}): usable {usable}, good {good}"
        );
    }
}

#[test]
fn no_good_size_beyond_the_largest_allocation() {
    assert_eq!(oxmalloc::good_size(usize::MAX, 16), None);
    assert_eq!(oxmalloc::good_size(isize::MAX as usize + 1, 16), None);
}
