//! Purge without help: a thread frees ~1 GiB of small blocks and then
//! sleeps without calling the allocator again (and so does every other
//! thread): the memory must still go back to the OS after the purge delay.

use oxmalloc::OxMalloc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

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
        // Idle: no allocator call from here on (sleep does not allocate).
        std::thread::sleep(Duration::from_millis(3000));
        peak
    });
    // The main thread does not allocate while it watches either:
    // resident_bytes reads /proc into a stack buffer.
    std::thread::sleep(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_millis(2500);
    let allowed = start + (start / 10).max(8 << 20);
    let mut end = usize::MAX;
    while Instant::now() < deadline {
        end = oxmalloc::resident_bytes();
        if end <= allowed {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak = worker.join().unwrap();
    eprintln!(
        "rss: start {} MiB, peak {} MiB, while idle {} MiB",
        start >> 20,
        peak >> 20,
        end >> 20
    );
    assert!(peak > start + TOTAL / 2, "blocks were not resident");
    assert!(
        end <= allowed,
        "memory not returned while threads were idle: start {start}, end {end}"
    );
}
