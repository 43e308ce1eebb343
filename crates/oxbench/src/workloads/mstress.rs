//! mstress: stress with cross-thread transfer. In each of 25 rounds, every
//! thread makes `100·S·(tid%8+1)` allocations of 8–128 B (power-of-two word
//! counts; 1% are ×100, 0.1% ×1000, 0.01% ×10000), keeps up to half of them
//! in a local array, frees a random earlier block 2 times in 3, and 1 time
//! in 4 swaps a local pointer with a random slot of a shared 1,000-slot
//! array (an atomic exchange), so blocks die on other threads. Threads are
//! joined and recreated every round; half the shared array survives a round.
//! Blocks are self-describing (size and address hash in the first word, a
//! pattern in the rest) and checked when freed.

use super::{free_tagged, on_threads, Params};
use crate::check::{self, Corruption};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::Block;
use rand::rngs::SmallRng;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

const NAME: &str = "mstress";
const SHARED: usize = 1_000;
const ROUNDS: usize = 25;
const MAX_SIZE: usize = 128 * 10_000;

fn alloc_item(rng: &mut SmallRng) -> *mut u8 {
    let mut size = 8usize << dist::uniform(rng, 0, 4);
    let r = dist::index(rng, 10_000);
    size *= match r {
        0 => 10_000,
        1..=10 => 1_000,
        11..=110 => 100,
        _ => 1,
    };
    let mut b = Block::new(size, 8);
    check::fill_tagged(b.bytes_mut());
    b.into_raw()
}

fn worker(p: &Params, tid: usize, round: usize, shared: &[AtomicPtr<u8>]) -> Result<u64, Corruption> {
    let mut rng = dist::rng(p.seed ^ round as u64, tid);
    let steps = (p.scaled(100.0 * 1_500.0, 4) as usize) * (tid % 8 + 1);
    let mut local: Vec<*mut u8> = vec![ptr::null_mut(); (steps / 2).max(1)];
    for _ in 0..steps {
        let i = dist::index(&mut rng, local.len());
        free_tagged(NAME, p, local[i], MAX_SIZE)?;
        local[i] = alloc_item(&mut rng);
        if dist::chance(&mut rng, 2.0 / 3.0) {
            let j = dist::index(&mut rng, local.len());
            free_tagged(NAME, p, std::mem::replace(&mut local[j], ptr::null_mut()), MAX_SIZE)?;
        }
        if dist::chance(&mut rng, 0.25) {
            let j = dist::index(&mut rng, local.len());
            let k = dist::index(&mut rng, SHARED);
            local[j] = shared[k].swap(local[j], Ordering::AcqRel);
        }
    }
    for q in local {
        free_tagged(NAME, p, q, MAX_SIZE)?;
    }
    Ok(steps as u64)
}

/// Runs mstress with `p.threads` threads per round.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let shared: Vec<AtomicPtr<u8>> = (0..SHARED).map(|_| AtomicPtr::new(ptr::null_mut())).collect();
    let rounds = if p.scale < 0.1 { 3 } else { ROUNDS };
    let mut rng = dist::rng(p.seed, usize::MAX);
    let start = Instant::now();
    let mut ops = 0;
    for round in 0..rounds {
        ops += on_threads(p.threads, |tid| worker(p, tid, round, &shared))?
            .iter()
            .sum::<u64>();
        // Half the shared array dies on the main thread; the rest survives.
        for slot in &shared {
            if dist::chance(&mut rng, 0.5) {
                free_tagged(NAME, p, slot.swap(ptr::null_mut(), Ordering::AcqRel), MAX_SIZE)?;
            }
        }
    }
    for slot in &shared {
        free_tagged(NAME, p, slot.swap(ptr::null_mut(), Ordering::AcqRel), MAX_SIZE)?;
    }
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "allocs/s"))
}
