//! cache-scratch and cache-thrash: false sharing caused by the allocator.
//!
//! cache-scratch (passive): the main thread allocates one 1-byte block per
//! thread (neighbours in a cache line) and hands one to each thread; each
//! thread frees it, then repeatedly allocates a 1-byte block, writes it many
//! times and frees it. An allocator that gives a thread its neighbour's freed
//! block makes the threads fight over one cache line.
//!
//! cache-thrash (active): the same without the hand-off.

use super::{on_threads, Params};
use crate::check::Corruption;
use crate::outcome::Outcome;
use crate::raw::Block;
use std::sync::Mutex;
use std::time::Instant;

/// Writes per thread at scale 1.
const WRITES: f64 = 2_500_000_000.0;

fn churn(p: &Params, name: &str, tid: usize) -> Result<u64, Corruption> {
    let iterations = ((1_000.0 * p.scale) as u64).clamp(10, 1_000);
    let reps = (p.scaled(WRITES, 100) / iterations).max(1);
    for it in 0..iterations {
        let mut b = Block::new(1, 1);
        let cell = b.bytes_mut().as_mut_ptr();
        for r in 0..reps {
            // SAFETY: `cell` points to the live 1-byte block; volatile keeps
            // every write (the point of the benchmark).
            unsafe { cell.write_volatile(r as u8 ^ tid as u8) };
        }
        let expected = ((reps - 1) as u8) ^ tid as u8;
        if it == 0 {
            p.fault.strike(b.bytes_mut());
        }
        // SAFETY: as above.
        let got = unsafe { cell.read_volatile() };
        if got != expected {
            return Err(Corruption::new(
                name,
                format!("1-byte block {cell:p} of thread {tid} holds {got:#04x}, expected {expected:#04x}"),
            ));
        }
        b.free();
    }
    Ok(iterations * reps)
}

fn finish(writes: Vec<u64>, start: Instant) -> Result<Outcome, Corruption> {
    let ops = writes.iter().sum();
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "writes/s"))
}

/// cache-scratch with `p.threads` threads.
pub fn run_scratch(p: &Params) -> Result<Outcome, Corruption> {
    const NAME: &str = "cache-scratch";
    let start = Instant::now();
    // Consecutive 1-byte blocks: likely neighbours in one cache line.
    let handed: Vec<Mutex<Option<Block>>> = (0..p.threads)
        .map(|tid| {
            let mut b = Block::new(1, 1);
            b.bytes_mut()[0] = tid as u8;
            Mutex::new(Some(b))
        })
        .collect();
    let writes = on_threads(p.threads, |tid| {
        let b = handed[tid]
            .lock()
            .expect("hand-off lock")
            .take()
            .expect("one block per thread");
        if b.bytes()[0] != tid as u8 {
            return Err(Corruption::new(
                NAME,
                format!("handed-off block {:#x} lost its byte", b.addr()),
            ));
        }
        b.free();
        churn(p, NAME, tid)
    })?;
    finish(writes, start)
}

/// cache-thrash with `p.threads` threads.
pub fn run_thrash(p: &Params) -> Result<Outcome, Corruption> {
    let start = Instant::now();
    let writes = on_threads(p.threads, |tid| churn(p, "cache-thrash", tid))?;
    finish(writes, start)
}
