//! Purge without help: a thread frees ~1 GiB of small blocks and then
//! sleeps without calling the allocator again (and so does every other
//! thread): the memory must still go back to the OS after the purge delay.

use oxmalloc::OxMalloc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

static FREED: AtomicBool = AtomicBool::new(false);
static WATCHED: AtomicBool = AtomicBool::new(false);

#[test]
fn memory_returns_while_every_thread_is_idle() {
    const BLOCK: usize = 200;
    const TOTAL: usize = 1 << 30;
    let start = oxmalloc::resident_bytes();
    let worker = std::thread::spawn(move || {
        let mut blocks: Vec<Box<[u8; BLOCK]>> = Vec::with_capacity(TOTAL / BLOCK);
        for i in 0..TOTAL / BLOCK {
            blocks.push(Box::new([i as u8; BLOCK]));
        }
        let peak = oxmalloc::resident_bytes();
        drop(blocks);
        FREED.store(true, Ordering::Release);
        // Idle: no allocator call until the main thread has watched
        // (sleeping and atomics do not allocate).
        while !WATCHED.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    // The main thread does not allocate while it watches either:
    // resident_bytes reads /proc into a stack buffer.
    while !FREED.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let freed_at = Instant::now();
    let allowed = start + (start / 10).max(8 << 20);
    let mut end = usize::MAX;
    while freed_at.elapsed() < Duration::from_millis(2500) {
        end = oxmalloc::resident_bytes();
        if end <= allowed {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = freed_at.elapsed();
    WATCHED.store(true, Ordering::Release);
    let peak = worker.join().unwrap();
    eprintln!(
        "rss: start {} MiB, peak {} MiB, {} MiB after {} ms idle",
        start >> 20,
        peak >> 20,
        end >> 20,
        waited.as_millis()
    );
    assert!(peak > start + TOTAL / 2, "blocks were not resident");
    assert!(
        end <= allowed,
        "memory not returned while threads were idle: start {start}, end {end}"
    );
}
