//! The adaptive purge delay (`purge.rs`): memory purged on the timer and
//! reused within a second doubles the delay, once per purge pass; a calm
//! period brings it down again. Read through `stats().purge_delay_ms`.

use oxmalloc::OxMalloc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

/// Fills and frees 8 MiB of small blocks (their pages go back to the arena;
/// more than 4 MiB waiting starts the background purger), then waits until
/// the timer has purged them.
fn free_and_wait_for_purge() {
    let blocks: Vec<Box<[u8; 200]>> = (0..(8 << 20) / 200).map(|i| Box::new([i as u8; 200])).collect();
    drop(blocks);
    let start = Instant::now();
    // `collect(false)` purges what is due (also without the background
    // purger, which a sandbox may refuse).
    while {
        oxmalloc::collect(false);
        oxmalloc::stats().purge_pending != 0
    } {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "freed memory not purged: {} bytes still waiting",
            oxmalloc::stats().purge_pending
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn reused_purges_lengthen_the_delay_and_calm_shortens_it() {
    let base = oxmalloc::stats().purge_delay_ms;
    if base == 0 {
        eprintln!("SKIPPED: OXMALLOC_PURGE_DELAY=0 purges at once; there is no delay to adapt");
        return;
    }
    free_and_wait_for_purge();
    assert_eq!(
        oxmalloc::stats().purge_delay_ms,
        base,
        "a purge nobody reused changed the delay"
    );
    for round in 1..=3u32 {
        // Reusing the purged memory shows that the purge was wasted.
        free_and_wait_for_purge();
        assert_eq!(
            oxmalloc::stats().purge_delay_ms,
            base << round,
            "round {round}: purged memory reused at once should double the delay once"
        );
    }
    // After a calm period, the next purge pass halves it again.
    std::thread::sleep(Duration::from_millis(5_200));
    let blocks: Vec<Box<[u8; 200]>> = (0..(8 << 20) / 200).map(|i| Box::new([i as u8; 200])).collect();
    drop(blocks);
    let start = Instant::now();
    while {
        oxmalloc::collect(false);
        oxmalloc::stats().purge_delay_ms >= base << 3
    } {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the delay did not come down after a calm period"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
