//! glibc-simple: on one thread, batches of 25, 100, 400 and 1,600 blocks,
//! for each batch size and each block size (16, 32 and 64 B) in turn: all
//! blocks of a batch have the same size, every byte is written; the first
//! half of each batch is freed in allocation order (FIFO), the second half
//! in reverse (LIFO). About 2M allocations per batch size at scale 1, split
//! evenly over the three block sizes (8M in all).

use super::Params;
use crate::check::{self, Corruption, Coverage};
use crate::outcome::Outcome;
use crate::raw::Block;
use std::time::Instant;

const NAME: &str = "glibc-simple";
const BATCHES: [usize; 4] = [25, 100, 400, 1_600];
const SIZES: [usize; 3] = [16, 32, 64];

fn release(p: &Params, (mut b, tag): (Block, u64)) -> Result<(), Corruption> {
    p.fault.strike(b.bytes_mut());
    check::verify(NAME, b.bytes(), tag, Coverage::Full)?;
    b.free();
    Ok(())
}

/// Runs glibc-simple (single-threaded).
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    // Allocations per batch size and block size.
    let per_pair = p.scaled(2_000_000.0 / SIZES.len() as f64, 2_000);
    let start = Instant::now();
    let mut counter = 0u64;
    let mut ops = 0;
    let mut batch: Vec<(Block, u64)> = Vec::with_capacity(1_600);
    for &n in &BATCHES {
        for &size in &SIZES {
            for _ in 0..per_pair.div_ceil(n as u64) {
                for _ in 0..n {
                    let mut b = Block::new(size, 8);
                    counter += 1;
                    let tag = check::tag_of(b.addr(), size, counter);
                    check::fill(b.bytes_mut(), tag, Coverage::Full);
                    batch.push((b, tag));
                }
                ops += n as u64;
                // First half in allocation order, the rest newest first
                // (no second vector: nothing but the batch is allocated).
                let mut items = batch.drain(..);
                for item in items.by_ref().take(n / 2) {
                    release(p, item)?;
                }
                for item in items.rev() {
                    release(p, item)?;
                }
            }
        }
    }
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "allocs/s"))
}
