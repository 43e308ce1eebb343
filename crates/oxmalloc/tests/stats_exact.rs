//! Statistics count a known sequence of allocations exactly. Own harness
//! (`harness = false`): no test threads allocate in the background.

use oxmalloc::{size_class, OxMalloc};
use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

fn class_blocks(s: &oxmalloc::Stats, class: usize) -> oxmalloc::GaugeValue {
    s.classes[class].blocks
}

fn main() {
    const SIZE: usize = 3000;
    let class = size_class::class_of(SIZE);
    let layout = Layout::from_size_align(SIZE, 8).unwrap();
    let mut ptrs: Vec<usize> = Vec::with_capacity(1000);

    let before = oxmalloc::stats();
    for _ in 0..1000 {
        // SAFETY: a valid layout; the block is freed below.
        ptrs.push(unsafe { OxMalloc.alloc(layout) } as usize);
    }
    let after_alloc = oxmalloc::stats();
    let b0 = class_blocks(&before, class);
    let b1 = class_blocks(&after_alloc, class);
    assert_eq!(b1.current - b0.current, 1000, "current blocks after 1000 allocations");
    assert_eq!(b1.total - b0.total, 1000, "total blocks after 1000 allocations");
    assert_eq!(
        after_alloc.classes[class].block_size,
        size_class::class_size(class) as u64
    );
    let bytes = (after_alloc.allocated.current - before.allocated.current) as i64;
    assert!(
        bytes >= 1000 * size_class::class_size(class) as i64,
        "allocated bytes grew by only {bytes}"
    );

    // Free 400 locally.
    for p in ptrs.drain(..400) {
        // SAFETY: live blocks with this layout.
        unsafe { OxMalloc.dealloc(p as *mut u8, layout) };
    }
    let after_free = oxmalloc::stats();
    let b2 = class_blocks(&after_free, class);
    assert_eq!(b2.current - b0.current, 600, "current blocks after 400 local frees");
    assert_eq!(b2.total - b0.total, 1000, "frees do not change the total");
    assert!(b2.peak >= b0.current + 1000, "peak lost: {b2:?} vs {b0:?}");

    // Free 100 from another thread (remote frees, counted by that thread).
    let remote: Vec<usize> = ptrs.drain(..100).collect();
    let b0_current = b0.current;
    std::thread::spawn(move || {
        for p in remote {
            // SAFETY: live blocks with this layout, handed over.
            unsafe { OxMalloc.dealloc(p as *mut u8, layout) };
        }
        // The freeing thread, still alive, sees its own frees: those it
        // holds back in a chain (`held_frees.rs`) are counted when the
        // chain goes out, which the snapshot makes happen.
        let seen = class_blocks(&oxmalloc::stats(), class).current;
        assert_eq!(seen - b0_current, 500, "remote frees seen by the freeing thread");
    })
    .join()
    .unwrap();
    let after_remote = oxmalloc::stats();
    assert_eq!(
        class_blocks(&after_remote, class).current - b0.current,
        500,
        "after 100 remote frees"
    );

    // Large blocks.
    let big = Layout::from_size_align(1 << 20, 8).unwrap();
    let bigs: Vec<usize> = (0..3)
        // SAFETY: a valid layout.
        .map(|_| unsafe { OxMalloc.alloc(big) } as usize)
        .collect();
    let with_big = oxmalloc::stats();
    assert_eq!(with_big.big_blocks.current - after_remote.big_blocks.current, 3);
    assert!(with_big.big_bytes.current - after_remote.big_bytes.current >= 3 << 20);
    for p in bigs {
        // SAFETY: live blocks with this layout.
        unsafe { OxMalloc.dealloc(p as *mut u8, big) };
    }
    let without_big = oxmalloc::stats();
    assert_eq!(without_big.big_blocks.current, after_remote.big_blocks.current);

    // The rest.
    for p in ptrs.drain(..) {
        // SAFETY: live blocks with this layout.
        unsafe { OxMalloc.dealloc(p as *mut u8, layout) };
    }
    let end = oxmalloc::stats();
    assert_eq!(class_blocks(&end, class).current, b0.current, "every block freed");
    assert_eq!(class_blocks(&end, class).total - b0.total, 1000);

    // Allocations are counted by the pages (the change of `used`): blocks
    // freed by another thread, collected (by refills and by `collect`) and
    // allocated again, with local frees and page switches in between, must
    // still count exactly once each.
    // An odd size that neither the vectors here nor `thread::spawn`
    // allocate, of a class that never borrows (a block taken from a
    // lender's page counts in the lender's class: `size_class::lender_of`).
    const SMALL: usize = 1_500;
    let small_class = size_class::class_of(SMALL);
    let small = Layout::from_size_align(SMALL, 8).unwrap();
    let s0 = class_blocks(&oxmalloc::stats(), small_class);
    let mut allocated = 0u64;
    let mut freed = 0u64;
    let mut live: Vec<usize> = Vec::new();
    for round in 0..6 {
        for _ in 0..3000 {
            // SAFETY: a valid layout; every block is freed below.
            live.push(unsafe { OxMalloc.alloc(small) } as usize);
            allocated += 1;
        }
        // Another thread frees every other block (remote frees)...
        let remote: Vec<usize> = live.iter().copied().step_by(2).collect();
        freed += remote.len() as u64;
        live = live.iter().copied().skip(1).step_by(2).collect();
        std::thread::spawn(move || {
            for p in remote {
                // SAFETY: live blocks with this layout, handed over.
                unsafe { OxMalloc.dealloc(p as *mut u8, small) };
            }
        })
        .join()
        .unwrap();
        // ...and this thread frees a third of the rest locally.
        let keep = live.len() * 2 / 3;
        for p in live.drain(keep..) {
            // SAFETY: live blocks with this layout.
            unsafe { OxMalloc.dealloc(p as *mut u8, small) };
            freed += 1;
        }
        if round % 2 == 1 {
            oxmalloc::collect(false);
        }
        let now = class_blocks(&oxmalloc::stats(), small_class);
        assert_eq!(now.total - s0.total, allocated, "round {round}: blocks ever allocated");
        assert_eq!(
            (now.current - s0.current) as u64,
            allocated - freed,
            "round {round}: live blocks"
        );
    }
    for p in live {
        // SAFETY: live blocks with this layout.
        unsafe { OxMalloc.dealloc(p as *mut u8, small) };
    }
    let s1 = class_blocks(&oxmalloc::stats(), small_class);
    assert_eq!(s1.current, s0.current, "every small block freed");
    assert_eq!(s1.total - s0.total, allocated);

    // JSON parses and carries the figures.
    let json = format!("{}", end.json());
    let value: serde_json::Value = serde_json::from_str(&json).expect("stats JSON parses");
    assert!(value["allocated_bytes"]["current"].as_u64().is_some());
    assert!(value["reserved_bytes"]["peak"].as_u64().unwrap() > 0);
    assert!(value["process"]["peak_rss"].as_u64().unwrap() > 0);
    let classes = value["classes"].as_array().unwrap();
    let ours = classes
        .iter()
        .find(|c| c["block_size"].as_u64() == Some(size_class::class_size(class) as u64))
        .expect("our class in the JSON");
    assert!(ours["total"].as_u64().unwrap() >= 1000);
    oxmalloc::print_stats();
    println!("stats_exact: ok");
}
