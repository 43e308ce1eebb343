//! mleak: thread churn. Rounds of 10 short-lived threads; each `calloc`s one
//! 128-B block, checks it is zero, writes it, swaps it into a random slot of
//! a shared 1,000-slot array, checks and frees the block it evicted, and
//! exits. Memory must not grow with the number of threads: the outcome
//! reports RSS after the first 10% of rounds and at the end.

use super::{free_tagged, on_threads, Params};
use crate::check::{self, Corruption};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::{self, Block};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

const NAME: &str = "mleak";
const SHARED: usize = 1_000;
const THREADS_PER_ROUND: usize = 10;
const SIZE: usize = 128;

fn short_thread(p: &Params, shared: &[AtomicPtr<u8>], round: usize, t: usize) -> Result<(), Corruption> {
    let mut rng = dist::rng(p.seed ^ round as u64, t);
    let mut b = Block::zeroed(SIZE, 8);
    check::verify_zeroed(NAME, b.bytes(), 1)?;
    check::fill_tagged(b.bytes_mut());
    let k = dist::index(&mut rng, SHARED);
    let evicted = shared[k].swap(b.into_raw(), Ordering::AcqRel);
    free_tagged(NAME, p, evicted, SIZE)
}

/// Runs mleak (10 threads per round; the thread count is not used).
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let shared: Vec<AtomicPtr<u8>> = (0..SHARED).map(|_| AtomicPtr::new(ptr::null_mut())).collect();
    let rounds = p.scaled(2_000.0, 20) as usize;
    let start = Instant::now();
    let mut rss_early = 0;
    for round in 0..rounds {
        on_threads(THREADS_PER_ROUND, |t| short_thread(p, &shared, round, t))?;
        if round == rounds / 10 {
            rss_early = raw::rss_kib();
        }
    }
    let rss_end = raw::rss_kib();
    for slot in &shared {
        free_tagged(NAME, p, slot.swap(ptr::null_mut(), Ordering::AcqRel), SIZE)?;
    }
    let threads = (rounds * THREADS_PER_ROUND) as u64;
    let o = Outcome::per_second(threads, start.elapsed().as_secs_f64(), "threads/s");
    Ok(o.with("rss_early_kib", rss_early as f64)
        .with("rss_end_kib", rss_end as f64)
        .with("rss_growth_kib", rss_end as f64 - rss_early as f64))
}
