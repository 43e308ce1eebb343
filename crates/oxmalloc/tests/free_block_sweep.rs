//! Free blocks of big classes inside a page that stays in use go back to
//! the OS once they have stayed free for a while, through the allocation
//! slow path of their owning thread (`Heap::sweep_free_blocks`,
//! docs/PERFORMANCE.md E54). Without it they stay resident for as long as
//! their page lives. (Pages are indexed only outside the hardened build.)

#![cfg(not(feature = "secure"))]

use oxmalloc::OxMalloc;
use std::alloc::{alloc, dealloc, Layout};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

mod resident;
use resident::{page_size, resident};

/// The whole OS pages inside `[block, block + size)`.
fn interior(block: *mut u8, size: usize) -> impl Iterator<Item = usize> {
    let page = page_size();
    ((block as usize).next_multiple_of(page)..(block as usize + size) / page * page).step_by(page)
}

#[test]
fn free_big_blocks_of_a_live_page_go_back_to_the_os() {
    const SIZE: usize = 24 * 1024;
    let layout = Layout::from_size_align(SIZE, 16).unwrap();
    // SAFETY: a non-zero layout; each block is written whole, then freed once.
    let blocks: Vec<*mut u8> = (0..8)
        .map(|_| unsafe {
            let block = alloc(layout);
            assert!(!block.is_null());
            block.write_bytes(0xa5, SIZE);
            block
        })
        .collect();
    let (live, freed) = blocks.split_first().unwrap();
    for &block in freed {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { dealloc(block, layout) };
    }
    assert!(
        freed.iter().all(|&b| interior(b, SIZE).all(resident)),
        "freed blocks were not resident to begin with"
    );
    // Allocation slow paths (each round carves new pages of small blocks)
    // run the sweep; two sweeps at least 50 ms apart purge the blocks.
    let start = Instant::now();
    let mut purged = false;
    while start.elapsed() < Duration::from_secs(10) {
        let churn: Vec<Box<[u8; 48]>> = (0..20_000).map(|_| Box::new([0u8; 48])).collect();
        drop(black_box(churn));
        if freed.iter().all(|&b| !interior(b, SIZE).any(resident)) {
            purged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        purged,
        "free 24 KiB blocks stayed resident for 10 s of allocation slow paths ({} of {} pages resident)",
        freed
            .iter()
            .flat_map(|&b| interior(b, SIZE))
            .filter(|&a| resident(a))
            .count(),
        freed.iter().flat_map(|&b| interior(b, SIZE)).count()
    );
    // The live block is untouched, and the purged ones can be used again.
    // SAFETY: `live` holds SIZE bytes.
    assert!(unsafe { std::slice::from_raw_parts(*live, SIZE) }
        .iter()
        .all(|&b| b == 0xa5));
    // SAFETY: as above; the new blocks are written whole, then freed once.
    unsafe {
        let again: Vec<*mut u8> = (0..freed.len()).map(|_| alloc(layout)).collect();
        for &block in &again {
            assert!(!block.is_null());
            block.write_bytes(0x3c, SIZE);
            assert_eq!(*block.add(SIZE / 2), 0x3c);
        }
        for block in again {
            dealloc(block, layout);
        }
        dealloc(*live, layout);
    }
}
