//! The sampled peak of live blocks stays near the truth when every block is
//! freed by a thread that never allocates it (a producer and a consumer), and
//! when the freeing thread never allocates at all: such a thread gets a heap
//! at its first free (its frees are then counted on its own counters rather
//! than on the shared gauges, which every free of it wrote before). Own
//! harness (`harness = false`): no test threads allocate in the background.
//!
//! Before the consumer's frees were reported on their own, the producer's
//! reports raised the live gauge by every block ever made and nothing
//! lowered it until the consumer exited: the peak here read about
//! `ROUNDS * BATCH` blocks.

mod bare_thread;

use oxmalloc::{size_class, OxMalloc};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc::sync_channel;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

/// A size whose class nothing else in this test allocates while it counts,
/// and that never borrows (a block taken from a lender's page counts in
/// the lender's class: `size_class::lender_of`).
const SIZE: usize = 1_200;
const BATCH: usize = 500;
const ROUNDS: usize = 200;

fn live_blocks(class: usize) -> oxmalloc::GaugeValue {
    oxmalloc::stats().classes[class].blocks
}

/// Makes `ROUNDS` batches here and has `consume` free them on another
/// thread, at most two batches in flight (a channel of one); returns the
/// class's live-block gauge after the consumer is done.
fn produce(layout: Layout, consume: fn(Vec<usize>, Layout)) -> oxmalloc::GaugeValue {
    let (tx, rx) = sync_channel::<Vec<usize>>(1);
    let consumer = std::thread::spawn(move || {
        // One allocation of another class gives this thread its heap.
        std::hint::black_box(Box::new([0u8; 40]));
        for batch in rx {
            consume(batch, layout);
        }
    });
    for _ in 0..ROUNDS {
        let batch: Vec<usize> = (0..BATCH)
            // SAFETY: a valid layout; the consumer frees every block.
            .map(|_| unsafe { OxMalloc.alloc(layout) } as usize)
            .collect();
        tx.send(batch).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    live_blocks(size_class::class_of(layout.size()))
}

fn free_all(batch: Vec<usize>, layout: Layout) {
    for p in batch {
        // SAFETY: live blocks with this layout, handed over.
        unsafe { OxMalloc.dealloc(p as *mut u8, layout) };
    }
}

fn main() {
    let (peak, bound) = check(free_all, 1, "with a consumer that has a heap");
    // The same with every batch freed by a bare POSIX thread that runs no
    // Rust runtime code and allocates nothing: its first free gives it a
    // heap (so the consumer and each of the `ROUNDS` bare threads get one).
    let (bare_peak, bare_bound) = check(
        |batch, layout| bare_thread::free_on_bare_thread(&batch, layout),
        1 + ROUNDS as u64,
        "with bare freeing threads",
    );
    // (Printed at the end: stdout's buffer is a block of this class.)
    println!("consumer with a heap: peak {peak} blocks (bound {bound})");
    println!("bare freeing threads: peak {bare_peak} blocks (bound {bare_bound})");
}

/// One producer/consumer run with `consume` (see [`produce`]): checks the
/// counts, that `new_heaps` threads got a heap, and that the sampled peak
/// stayed near the live set; returns the peak and its bound.
fn check(consume: fn(Vec<usize>, Layout), new_heaps: u64, how: &str) -> (u64, u64) {
    let class = size_class::class_of(SIZE);
    let layout = Layout::from_size_align(SIZE, 8).unwrap();
    let before = live_blocks(class);
    let threads_before = oxmalloc::stats().threads.total;
    // At most the batch being made, one in the channel and one being freed
    // are live; each side may be up to `REPORT_BYTES` (64 KiB) of this
    // class (and the consumer 64 frees) behind in its reports.
    let slack = 2 * (64 * 1024 / size_class::class_size(class) as u64) + 64;
    let bound = before.peak.max(before.current) + 3 * BATCH as u64 + slack;

    let after = produce(layout, consume);
    assert_eq!(
        oxmalloc::stats().threads.total,
        threads_before + new_heaps,
        "threads that got a heap ({how})"
    );
    assert_eq!(after.current, before.current, "every block freed ({how})");
    assert_eq!(after.total - before.total, (ROUNDS * BATCH) as u64);
    assert!(
        after.peak <= bound,
        "peak {} blocks {how} (bound {bound}, {} made in this run)",
        after.peak,
        ROUNDS * BATCH
    );
    assert!(after.peak >= before.current + BATCH as u64, "peak lost: {after:?}");
    (after.peak, bound)
}
