//! Fresh blocks of 4 KiB and more leave `malloc` untouched (`page.rs`,
//! `UNTOUCHED_HANDOUT`): linking a batch of them onto a free list wrote into
//! one OS page per block, so `malloc` took the page faults the caller's first
//! writes would have taken anyway (docs/PERFORMANCE.md E24). Seen with
//! `mincore`, on blocks of a new heap in a process with huge pages off.

#![cfg(not(feature = "secure"))]

use std::alloc::Layout;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Whether the OS page holding `addr` is resident.
fn resident(addr: usize) -> bool {
    let page = page_size();
    let mut vec = [0u8; 1];
    // SAFETY: one byte of `vec` for the one page asked about; mincore only
    // reads the page tables.
    let r = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore({addr:#x}): {}", std::io::Error::last_os_error());
    vec[0] & 1 != 0
}

#[test]
fn fresh_blocks_of_a_page_or_more_are_not_written_by_malloc() {
    // A transparent huge page under the chunk would make every block of it
    // resident at the first write anywhere in it.
    // SAFETY: prctl with these arguments only sets a flag of this process.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_THP_DISABLE: {}", std::io::Error::last_os_error());
    let heap = oxmalloc::Heap::new().expect("a heap");
    for size in [4096, 6144, 16 * 1024, 60 * 1024] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..6).map(|_| heap.alloc(layout)).collect();
        for (i, &b) in blocks.iter().enumerate() {
            assert!(!b.is_null());
            assert!(
                !resident(b as usize),
                "{size} B block {i} at {b:p}: malloc wrote into it"
            );
        }
        for &b in &blocks {
            // SAFETY: a live block of `size` bytes.
            unsafe { b.write_bytes(0xA5, size) };
            // The check can fail: the write made the page resident.
            assert!(
                resident(b as usize),
                "{size} B block at {b:p} not resident after a write"
            );
        }
        for &b in &blocks {
            // SAFETY: allocated from `heap` with `layout`, freed once.
            unsafe { heap.dealloc(b, layout) };
        }
        // Reused blocks are dirty; fresh ones read as zero without a memset.
        let zeroed: Vec<*mut u8> = (0..12).map(|_| heap.alloc_zeroed(layout)).collect();
        for &b in &zeroed {
            // SAFETY: a live block of `size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(b, size) };
            assert!(
                bytes.iter().all(|&x| x == 0),
                "{size} B alloc_zeroed block at {b:p} not zero"
            );
        }
        for &b in &zeroed {
            // SAFETY: as above.
            unsafe { heap.dealloc(b, layout) };
        }
    }
    heap.delete();
}
