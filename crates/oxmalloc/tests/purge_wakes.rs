//! Once the background purger runs, a small free must still wake it: after
//! it has gone idle (nothing waiting, a long sleep), a thread frees 1 MiB,
//! less than the amount that starts the purger, and then calls the
//! allocator no more. The 1 MiB must go back after the purge delay, not
//! when the purger's idle sleep ends up to a minute later
//! (docs/PERFORMANCE.md E51).

use oxmalloc::OxMalloc;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

/// Polls `done` every 10 ms (sleeping does not allocate) until it holds;
/// returns whether it did within `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Allocates `bytes` as one large block, writes every page, frees it.
fn touch_and_free(bytes: usize) {
    let mut block = vec![0u8; bytes];
    for i in (0..bytes).step_by(4096) {
        block[i] = 1;
    }
    black_box(&mut block);
}

#[test]
fn a_small_free_wakes_an_idle_purger() {
    // More than the background threshold (4 MiB), to start the purger.
    let big: Vec<Vec<u8>> = (0..8).map(|_| vec![1u8; 1 << 20]).collect();
    drop(black_box(big));
    // The purger starts at the next allocator entry point after the frees.
    drop(black_box(vec![0u8; 64]));
    assert!(
        wait_until(Duration::from_secs(5), || oxmalloc::stats().purge_pending == 0),
        "the first 8 MiB were not purged: {} bytes pending",
        oxmalloc::stats().purge_pending
    );
    assert!(oxmalloc::stats().background_purger, "no background purger");
    // Let the purger find nothing to do and go to its long sleep.
    std::thread::sleep(Duration::from_millis(300));
    let purged_before = oxmalloc::stats().purged_bytes;
    touch_and_free(1 << 20);
    let purged_since = || oxmalloc::stats().purged_bytes - purged_before;
    wait_until(Duration::from_secs(3), || purged_since() >= 1 << 20);
    let purged = purged_since();
    assert!(
        purged >= 1 << 20,
        "1 MiB freed while the purger slept stayed unpurged: {purged} bytes purged since, {} pending",
        oxmalloc::stats().purge_pending
    );
}
