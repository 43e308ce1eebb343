//! rptest: each thread keeps 1,000 slots and runs loops of 100 operations,
//! each freeing a random slot and allocating 8–16,000 B (linearly falling
//! density) with malloc, calloc or 16-byte alignment, touching every page.
//! Every other loop a batch of 32 blocks goes to the next thread, which
//! checks and frees it. Reports operations per CPU second.

use super::{on_threads, Params};
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::{self, Block};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

const NAME: &str = "rptest";
const SLOTS: usize = 1_000;
const OPS_PER_LOOP: usize = 100;
const HANDOFF: usize = 32;
/// How often a thread that has finished its loops drains its inbox while
/// the others still send: a sender adds a batch every 200 operations
/// (tens of microseconds), so a few batches at most wait between drains.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_micros(100);

type Item = (Block, u64);
type Inbox = Mutex<Vec<Vec<Item>>>;

fn free_item(p: &Params, (mut b, tag): Item) -> Result<(), Corruption> {
    p.fault.strike(b.bytes_mut());
    check::verify(NAME, b.bytes(), tag, Coverage::Pages)?;
    b.free();
    Ok(())
}

fn drain(p: &Params, inbox: &Inbox) -> Result<(), Corruption> {
    let batches = std::mem::take(&mut *inbox.lock().expect("inbox lock"));
    for batch in batches {
        for item in batch {
            free_item(p, item)?;
        }
    }
    Ok(())
}

fn worker(
    p: &Params,
    tid: usize,
    inboxes: &[Inbox],
    barrier: &Barrier,
    finished: &AtomicUsize,
) -> Result<u64, Corruption> {
    let mut rng = dist::rng(p.seed, tid);
    let loops = p.scaled(16_000.0, 4);
    let mut slots: Vec<Option<Item>> = (0..SLOTS).map(|_| None).collect();
    let mut counter = (tid as u64) << 48;
    let mut ops = 0u64;
    let mut run_loops = || -> Result<(), Corruption> {
        for lp in 0..loops {
            drain(p, &inboxes[tid])?;
            for _ in 0..OPS_PER_LOOP {
                let i = dist::index(&mut rng, SLOTS);
                if let Some(item) = slots[i].take() {
                    free_item(p, item)?;
                }
                let size = dist::linear_falling(&mut rng, 8, 16_000);
                let mut b = match dist::index(&mut rng, 3) {
                    0 => Block::new(size, 8),
                    1 => {
                        let z = Block::zeroed(size, 8);
                        check::verify_zeroed(NAME, z.bytes(), 4096)?;
                        z
                    }
                    _ => Block::new(size, 16),
                };
                counter += 1;
                let tag = check::tag_of(b.addr(), size, counter);
                check::fill(b.bytes_mut(), tag, Coverage::Pages);
                slots[i] = Some((b, tag));
                ops += 1;
            }
            if lp % 2 == 1 && inboxes.len() > 1 {
                let batch: Vec<Item> = (0..HANDOFF)
                    .filter_map(|_| slots[dist::index(&mut rng, SLOTS)].take())
                    .collect();
                let next = (tid + 1) % inboxes.len();
                inboxes[next].lock().expect("inbox lock").push(batch);
            }
        }
        Ok(())
    };
    let result = run_loops();
    // Keep draining while the others still send: a thread that finishes
    // first must not let its inbox pile up (the live set would then depend
    // on how unevenly the threads were scheduled, not on the allocator).
    // It sleeps between drains rather than yielding: the figure is
    // operations per CPU-second of the process, and a thread that yields
    // in a loop while the others finish burns CPU whenever a core is
    // free (2 threads on 2 cores), which made the result follow how
    // unevenly the threads finished (docs/PERFORMANCE.md E64).
    finished.fetch_add(1, Ordering::AcqRel);
    while finished.load(Ordering::Acquire) < inboxes.len() {
        drain(p, &inboxes[tid])?;
        std::thread::sleep(WAIT_POLL);
    }
    // Everyone stops sending before the last drain.
    barrier.wait();
    result?;
    drain(p, &inboxes[tid])?;
    for item in slots.into_iter().flatten() {
        free_item(p, item)?;
    }
    Ok(ops)
}

/// Runs rptest with `p.threads` threads.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let inboxes: Vec<Inbox> = (0..p.threads).map(|_| Mutex::new(Vec::new())).collect();
    let barrier = Barrier::new(p.threads);
    let finished = AtomicUsize::new(0);
    let cpu0 = raw::cpu_seconds();
    let start = Instant::now();
    let results = on_threads(p.threads, |tid| worker(p, tid, &inboxes, &barrier, &finished));
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (raw::cpu_seconds() - cpu0).max(1e-6);
    let ops: u64 = results?.iter().sum();
    let mut o = Outcome::per_second(ops, elapsed, "ops/cpu-s");
    o.throughput = ops as f64 / cpu;
    Ok(o.with("cpu_s", cpu))
}
