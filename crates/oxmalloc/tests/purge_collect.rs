//! Purge: after ~1 GiB of small blocks is freed and `collect` runs, the
//! resident memory is back within 10% of where it started (plus a small
//! floor for the process's own bookkeeping).

use oxmalloc::OxMalloc;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

fn rss() -> usize {
    oxmalloc::resident_bytes()
}

#[test]
fn freed_gigabyte_returns_after_collect() {
    const BLOCK: usize = 120;
    const TOTAL: usize = 1 << 30;
    let mut blocks: Vec<Box<[u8; BLOCK]>> = Vec::with_capacity(TOTAL / BLOCK);
    let start = rss();
    for i in 0..TOTAL / BLOCK {
        blocks.push(Box::new([i as u8; BLOCK]));
    }
    let peak = rss();
    assert!(
        peak > start + (TOTAL * 9 / 10),
        "the blocks were not resident: {start} -> {peak}"
    );
    drop(blocks);
    oxmalloc::collect(true);
    let end = rss();
    oxmalloc::print_stats();
    let allowed = start + (start / 10).max(4 << 20);
    eprintln!(
        "rss: start {} MiB, peak {} MiB, after collect {} MiB",
        start >> 20,
        peak >> 20,
        end >> 20
    );
    assert!(
        end <= allowed,
        "resident memory not returned: start {start}, peak {peak}, end {end}"
    );
}
