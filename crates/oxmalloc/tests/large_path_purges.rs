//! A thread that allocates only large blocks still gets its deferred work
//! done: freed spans purged once their delay has passed, and free blocks of
//! its big-class pages given back after two sweep intervals
//! (`alloc::alloc_big_inner`, docs/PERFORMANCE.md E115). Before, only the
//! class slow paths (every 64th and 8th) ran them, and the background
//! purger starts only above 4 MiB waiting: rocksdb's writers, filling 1 MiB
//! arena blocks, kept 1.2 MiB of freed spans and about 1 MiB of free blocks
//! resident for the whole of their fill. (The hardened build indexes no
//! page, so only the spans apply there.) One test in this binary, so that
//! no other test's allocations run the deferred work for it.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

mod resident;
use resident::{page_size, resident, without_huge_pages};

/// Bytes in a slice, the unit of large blocks.
const SLICE: usize = 64 * 1024;

/// The whole OS pages inside `[block, block + size)`.
fn interior(block: *mut u8, size: usize) -> Vec<usize> {
    let page = page_size();
    ((block as usize).next_multiple_of(page)..(block as usize + size) / page * page)
        .step_by(page)
        .collect()
}

fn resident_count(pages: &[usize]) -> usize {
    pages.iter().filter(|&&a| resident(a)).count()
}

#[test]
fn large_allocations_alone_purge_freed_spans_and_sweep_free_blocks() {
    without_huge_pages();
    let large = Layout::from_size_align(2 * SLICE, 16).unwrap();
    let bigger = Layout::from_size_align(4 * SLICE, 16).unwrap();
    let big_class = Layout::from_size_align(24 * 1024, 16).unwrap();
    // Made before the hole: a small page made later could take the
    // hole's slices (a new page looks first where a free left a span),
    // and its first blocks would read as a span not purged.
    let mut held = Vec::with_capacity(16);
    // SAFETY: valid, non-zero layouts; every block is written within its
    // size and freed once, with its layout.
    unsafe {
        // A large block between two others, written whole, then freed: a
        // hole of two slices that the larger blocks below cannot take.
        let before = GLOBAL.alloc(large);
        let hole = GLOBAL.alloc(large);
        let after = GLOBAL.alloc(large);
        for b in [before, hole, after] {
            assert!(!b.is_null());
            b.write_bytes(0x11, large.size());
        }
        // Two blocks of a big class on one page, one of them freed.
        let kept = GLOBAL.alloc(big_class);
        let freed = GLOBAL.alloc(big_class);
        for b in [kept, freed] {
            assert!(!b.is_null());
            b.write_bytes(0x22, big_class.size());
        }
        // (Their lists before the frees, for the reason `held` is made first.)
        let hole_pages = interior(hole, large.size());
        let freed_pages = interior(freed, big_class.size());
        GLOBAL.dealloc(hole, large);
        GLOBAL.dealloc(freed, big_class);
        assert_eq!(
            resident_count(&hole_pages),
            hole_pages.len(),
            "the freed span was purged at once"
        );
        assert_eq!(
            resident_count(&freed_pages),
            freed_pages.len(),
            "the freed block was purged at once"
        );

        // From here on, large allocations only, for up to 10 s.
        let start = Instant::now();
        let mut done = false;
        while start.elapsed() < Duration::from_secs(10) && !done {
            std::thread::sleep(Duration::from_millis(20));
            let b = GLOBAL.alloc(bigger);
            assert!(!b.is_null());
            let range = b as usize..b as usize + bigger.size();
            assert!(
                !range.contains(&(hole as usize)),
                "a larger block took the hole: the test cannot tell a purge from a reuse"
            );
            held.push(b);
            if held.len() > 8 {
                GLOBAL.dealloc(held.remove(0), bigger);
            }
            // (The hardened build indexes no page, so it sweeps no block.)
            done = resident_count(&hole_pages) == 0 && (cfg!(feature = "secure") || resident_count(&freed_pages) == 0);
        }
        assert!(
            done,
            "after 10 s of large allocations alone, {} of {} OS pages of the freed span and {} of {} of the \
             freed block were still resident",
            resident_count(&hole_pages),
            hole_pages.len(),
            resident_count(&freed_pages),
            freed_pages.len()
        );
        // The blocks around them are untouched.
        for b in [before, after] {
            assert!(std::slice::from_raw_parts(b, large.size()).iter().all(|&x| x == 0x11));
        }
        assert!(std::slice::from_raw_parts(kept, big_class.size())
            .iter()
            .all(|&x| x == 0x22));
        for b in held {
            GLOBAL.dealloc(b, bigger);
        }
        for b in [before, after] {
            GLOBAL.dealloc(b, large);
        }
        GLOBAL.dealloc(kept, big_class);
    }
}
