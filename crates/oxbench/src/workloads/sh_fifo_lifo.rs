//! sh-fifo-lifo: 2N threads each fill a pointer buffer with blocks of
//! 1–1,000 B on a geometric ladder (small sizes far more often); when the
//! buffer is full, the bottom 40% is freed in FIFO order and the top 40% in
//! LIFO order, and the middle fifth stays alive into the next cycle.
//!
//! sh-fifo-lifo2 adds a main thread that allocates many 8-B blocks and
//! hands them, 1,024 at a time, to the workers, which free them.

use super::Params;
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::Block;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread;
use std::time::Instant;

const BUFFER: usize = 10_000;
const MAX_SIZE: usize = 1_000;
const CHUNK: usize = 1_024;

type Chunk = (u64, Vec<Block>);

fn release(p: &Params, name: &str, (mut b, tag): (Block, u64)) -> Result<(), Corruption> {
    p.fault.strike(b.bytes_mut());
    check::verify(name, b.bytes(), tag, Coverage::Ends)?;
    b.free();
    Ok(())
}

fn free_chunk(name: &str, (id, blocks): Chunk) -> Result<u64, Corruption> {
    let n = blocks.len() as u64;
    for b in blocks {
        check::verify(name, b.bytes(), check::tag_of(b.addr(), 8, id), Coverage::Full)?;
        b.free();
    }
    Ok(n)
}

fn worker(p: &Params, name: &str, tid: usize, rx: Option<Receiver<Chunk>>) -> Result<u64, Corruption> {
    let mut rng = dist::rng(p.seed, tid);
    let cycles = p.scaled(700.0, 2);
    let mut buf: Vec<(Block, u64)> = Vec::with_capacity(BUFFER);
    let mut counter = (tid as u64) << 48;
    let mut ops = 0;
    for _ in 0..cycles {
        while buf.len() < BUFFER {
            let size = dist::geometric_ladder(&mut rng, MAX_SIZE);
            let mut b = Block::new(size, 8);
            counter += 1;
            let tag = check::tag_of(b.addr(), size, counter);
            check::fill(b.bytes_mut(), tag, Coverage::Ends);
            buf.push((b, tag));
            ops += 1;
        }
        let top = buf.split_off(BUFFER * 3 / 5);
        let kept = buf.split_off(BUFFER * 2 / 5);
        for item in buf.drain(..) {
            release(p, name, item)?;
        }
        for item in top.into_iter().rev() {
            release(p, name, item)?;
        }
        buf.extend(kept);
        if let Some(rx) = &rx {
            while let Ok(chunk) = rx.try_recv() {
                ops += free_chunk(name, chunk)?;
            }
        }
    }
    if let Some(rx) = rx {
        for chunk in rx {
            ops += free_chunk(name, chunk)?;
        }
    }
    for item in buf {
        release(p, name, item)?;
    }
    Ok(ops)
}

fn sh(p: &Params, name: &'static str, producer: bool) -> Result<Outcome, Corruption> {
    let workers = 2 * p.threads;
    let start = Instant::now();
    let results: Vec<_> = thread::scope(|s| {
        let mut senders = Vec::new();
        let hs: Vec<_> = (0..workers)
            .map(|tid| {
                let rx = producer.then(|| {
                    let (tx, rx) = sync_channel::<Chunk>(16);
                    senders.push(tx);
                    rx
                });
                s.spawn(move || worker(p, name, tid, rx))
            })
            .collect();
        let mut produced = 0u64;
        if producer {
            let chunks = p.scaled(9_000.0, 4);
            for id in 0..chunks {
                let blocks: Vec<Block> = (0..CHUNK)
                    .map(|_| {
                        let mut b = Block::new(8, 8);
                        let tag = check::tag_of(b.addr(), 8, id);
                        check::fill(b.bytes_mut(), tag, Coverage::Full);
                        b
                    })
                    .collect();
                produced += CHUNK as u64;
                if senders[id as usize % workers].send((id, blocks)).is_err() {
                    break; // that worker stopped on an error
                }
            }
            senders.clear();
        }
        let mut r: Vec<Result<u64, Corruption>> = hs
            .into_iter()
            .map(|h| h.join().expect("sh-fifo-lifo thread panicked"))
            .collect();
        r.push(Ok(produced));
        r
    });
    let mut ops = 0;
    for r in results {
        ops += r?;
    }
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "ops/s"))
}

/// sh-fifo-lifo with 2·`p.threads` threads.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    sh(p, "sh-fifo-lifo", false)
}

/// sh-fifo-lifo2: as [`run`], plus the main thread producing 8-B blocks.
pub fn run_with_producer(p: &Params) -> Result<Outcome, Corruption> {
    sh(p, "sh-fifo-lifo2", true)
}
