//! glibc-thread: each thread keeps a 1,024-slot working set and, for a fixed
//! time, frees a random slot and allocates 4–32,768 B (density ∝ size^-2),
//! writing every byte. Reports iterations per second.

use super::{on_threads, Params};
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::Block;
use std::time::Instant;

const NAME: &str = "glibc-thread";
const SLOTS: usize = 1_024;

fn worker(p: &Params, tid: usize, deadline: Instant) -> Result<u64, Corruption> {
    let mut rng = dist::rng(p.seed, tid);
    let mut slots: Vec<Option<(Block, u64)>> = (0..SLOTS).map(|_| None).collect();
    let mut counter = (tid as u64) << 48;
    let mut iterations = 0u64;
    loop {
        for _ in 0..256 {
            let i = dist::index(&mut rng, SLOTS);
            if let Some((mut b, tag)) = slots[i].take() {
                p.fault.strike(b.bytes_mut());
                check::verify(NAME, b.bytes(), tag, Coverage::Full)?;
                b.free();
            }
            let size = dist::power_law_2(&mut rng, 4, 32_768);
            let mut b = Block::new(size, 8);
            counter += 1;
            let tag = check::tag_of(b.addr(), size, counter);
            check::fill(b.bytes_mut(), tag, Coverage::Full);
            slots[i] = Some((b, tag));
        }
        iterations += 256;
        if Instant::now() >= deadline {
            break;
        }
    }
    for (b, tag) in slots.into_iter().flatten() {
        check::verify(NAME, b.bytes(), tag, Coverage::Full)?;
        b.free();
    }
    Ok(iterations)
}

/// Runs glibc-thread with `p.threads` threads.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let start = Instant::now();
    let deadline = start + p.scaled_secs(1.5);
    let ops = on_threads(p.threads, |tid| worker(p, tid, deadline))?.iter().sum();
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "iterations/s"))
}
