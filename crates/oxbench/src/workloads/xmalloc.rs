//! xmalloc: N producers allocate batches of 4,096 blocks of 64 B, write them
//! and pass them over a bounded queue (100 batches) to N consumers, which
//! check and free every block: all frees are remote. Reports frees/s.

use super::Params;
use crate::check::{self, Corruption, Coverage};
use crate::outcome::Outcome;
use crate::raw::Block;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

const BATCH: usize = 4_096;
const SIZE: usize = 64;
const QUEUE: usize = 100;
const NAME: &str = "xmalloc";

struct Batch {
    id: u64,
    blocks: Vec<Block>,
}

fn consume(rx: &Mutex<Receiver<Batch>>, p: &Params) -> Result<u64, Corruption> {
    let mut freed = 0;
    loop {
        let batch = match rx.lock().expect("queue lock").recv() {
            Ok(b) => b,
            Err(_) => return Ok(freed),
        };
        for mut b in batch.blocks {
            p.fault.strike(b.bytes_mut());
            let tag = check::tag_of(b.addr(), SIZE, batch.id);
            check::verify(NAME, b.bytes(), tag, Coverage::Full)?;
            b.free();
            freed += 1;
        }
    }
}

/// Runs xmalloc with `p.threads` producers and as many consumers.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let n = p.threads;
    let per_producer = (p.scaled(7_000.0, 2) / n as u64).max(1);
    let (tx, rx) = sync_channel::<Batch>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now();
    let freed = thread::scope(|s| {
        let consumers: Vec<_> = (0..n)
            .map(|_| {
                let rx = Arc::clone(&rx);
                s.spawn(move || consume(&rx, p))
            })
            .collect();
        for tid in 0..n {
            let tx = tx.clone();
            s.spawn(move || {
                for seq in 0..per_producer {
                    let id = ((tid as u64) << 40) | seq;
                    let mut blocks = Vec::with_capacity(BATCH);
                    for _ in 0..BATCH {
                        let mut b = Block::new(SIZE, 8);
                        let tag = check::tag_of(b.addr(), SIZE, id);
                        check::fill(b.bytes_mut(), tag, Coverage::Full);
                        blocks.push(b);
                    }
                    if tx.send(Batch { id, blocks }).is_err() {
                        return; // consumers stopped on an error
                    }
                }
            });
        }
        drop(tx);
        let mut total = 0;
        let mut first_error = None;
        for c in consumers {
            match c.join().expect("consumer panicked") {
                Ok(f) => total += f,
                Err(e) => {
                    first_error.get_or_insert(e);
                    // Keep draining so producers are not blocked forever.
                    while let Ok(b) = rx.lock().expect("queue lock").recv() {
                        std::mem::forget(b.blocks);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    })?;
    Ok(Outcome::per_second(freed, start.elapsed().as_secs_f64(), "frees/s"))
}
