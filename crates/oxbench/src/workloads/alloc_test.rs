//! alloc-test: 2^18 slots shared out among the threads; each thread takes
//! random steps on its own slots, choosing a slot by the 80/20 rule: an
//! empty slot gets a new block of 9–1024 B (each doubling of the size half
//! as likely), fully written; a full slot's block is fully read and freed.

use super::{on_threads, Params};
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::Block;
use std::time::Instant;

const NAME: &str = "alloc-test";
const SLOTS: usize = 1 << 18;

fn worker(p: &Params, tid: usize) -> Result<u64, Corruption> {
    let mut rng = dist::rng(p.seed, tid);
    let n = (SLOTS / p.threads).max(1);
    let steps = p.scaled(20_000_000.0, 1_000);
    let mut slots: Vec<Option<(Block, u64)>> = (0..n).map(|_| None).collect();
    let mut counter = (tid as u64) << 48;
    for _ in 0..steps {
        let i = dist::pareto_index(&mut rng, n);
        match slots[i].take() {
            Some((mut b, tag)) => {
                p.fault.strike(b.bytes_mut());
                check::verify(NAME, b.bytes(), tag, Coverage::Full)?;
                b.free();
            }
            None => {
                let size = dist::halving_doublings(&mut rng, 8, 1023) + 1;
                let mut b = Block::new(size, 8);
                counter += 1;
                let tag = check::tag_of(b.addr(), size, counter);
                check::fill(b.bytes_mut(), tag, Coverage::Full);
                slots[i] = Some((b, tag));
            }
        }
    }
    for (b, tag) in slots.into_iter().flatten() {
        check::verify(NAME, b.bytes(), tag, Coverage::Full)?;
        b.free();
    }
    Ok(steps)
}

/// Runs alloc-test with `p.threads` threads.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let start = Instant::now();
    let ops = on_threads(p.threads, |tid| worker(p, tid))?.iter().sum();
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "steps/s"))
}
