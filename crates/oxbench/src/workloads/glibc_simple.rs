//! glibc-simple: on one thread, batches of 25, 100, 400 and 1,600 blocks of
//! 16, 32 and 64 B, every byte written; the first half of each batch is
//! freed in allocation order (FIFO), the second half in reverse (LIFO).

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
    let per_batch_size = p.scaled(8_000_000.0, 2_000);
    let start = Instant::now();
    let mut counter = 0u64;
    let mut ops = 0;
    let mut batch: Vec<(Block, u64)> = Vec::with_capacity(1_600);
    for &n in &BATCHES {
        for _ in 0..per_batch_size.div_ceil(n as u64) {
            for i in 0..n {
                let size = SIZES[i % SIZES.len()];
                let mut b = Block::new(size, 8);
                counter += 1;
                let tag = check::tag_of(b.addr(), size, counter);
                check::fill(b.bytes_mut(), tag, Coverage::Full);
                batch.push((b, tag));
            }
            ops += n as u64;
            let lifo = batch.split_off(n / 2);
            for item in batch.drain(..) {
                release(p, item)?;
            }
            for item in lifo.into_iter().rev() {
                release(p, item)?;
            }
        }
    }
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "allocs/s"))
}
