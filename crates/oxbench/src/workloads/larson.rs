//! larson: a server simulation. Each lane owns 5,000 slots of 8–1000 B
//! blocks; a thread replaces random slots for one round, then starts a new
//! thread that inherits the slots (so survivors are freed by another thread)
//! and exits. Runs for a fixed time; reports replacements per second.

use super::Params;
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::Outcome;
use crate::raw::{self, Block};
use rand::rngs::SmallRng;
use std::thread::{self, JoinHandle};
use std::time::Instant;

const SLOTS: usize = 5_000;
const MIN_SIZE: usize = 8;
const MAX_SIZE: usize = 1_000;
/// Replacements a thread does before handing its slots to a new thread.
const ROUND: usize = 50 * SLOTS;

struct Slot {
    block: Block,
    tag: u64,
}

struct Lane {
    slots: Vec<Slot>,
    rng: SmallRng,
    counter: u64,
    ops: u64,
}

enum End {
    Next(JoinHandle<Result<End, Corruption>>),
    Done(u64),
}

/// larson, freeing through `dealloc` with the layout.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    larson(p, "larson", false)
}

/// larson-sized: in the glibc/LD_PRELOAD worker, frees through the C sized
/// free (`free_sized`, `sdallocx`, `mi_free_size`, `tc_free_sized`) when
/// the library exports one. Rust's
/// `GlobalAlloc::dealloc` always receives the size, so in the
/// `#[global_allocator]` workers both variants free the same way.
pub fn run_sized(p: &Params) -> Result<Outcome, Corruption> {
    let mut o = larson(p, "larson-sized", true)?;
    o.unit = format!("ops/s ({})", raw::sized_free_name());
    Ok(o)
}

fn new_slot(lane: &mut Lane) -> Slot {
    let size = dist::uniform(&mut lane.rng, MIN_SIZE, MAX_SIZE);
    let mut block = Block::new(size, 8);
    lane.counter += 1;
    let tag = check::tag_of(block.addr(), size, lane.counter);
    check::fill(block.bytes_mut(), tag, Coverage::Ends);
    Slot { block, tag }
}

fn free_slot(name: &str, p: &Params, mut s: Slot, sized: bool) -> Result<(), Corruption> {
    p.fault.strike(s.block.bytes_mut());
    check::verify(name, s.block.bytes(), s.tag, Coverage::Ends)?;
    if sized {
        s.block.free_sized();
    } else {
        s.block.free();
    }
    Ok(())
}

fn lane_round(
    mut lane: Lane,
    round: usize,
    deadline: Instant,
    p: Params,
    name: &'static str,
    sized: bool,
) -> Result<End, Corruption> {
    for _ in 0..round {
        let i = dist::index(&mut lane.rng, SLOTS);
        let fresh = new_slot(&mut lane);
        let old = std::mem::replace(&mut lane.slots[i], fresh);
        free_slot(name, &p, old, sized)?;
    }
    lane.ops += round as u64;
    if Instant::now() >= deadline {
        let ops = lane.ops;
        for s in lane.slots.drain(..) {
            free_slot(name, &p, s, sized)?;
        }
        return Ok(End::Done(ops));
    }
    let next = thread::spawn(move || lane_round(lane, round, deadline, p, name, sized));
    Ok(End::Next(next))
}

fn larson(p: &Params, name: &'static str, sized: bool) -> Result<Outcome, Corruption> {
    let round = ((ROUND as f64 * p.scale.min(1.0)) as usize).max(SLOTS);
    let start = Instant::now();
    let deadline = start + p.scaled_secs(1.5);
    // The main thread allocates the first generation; the first lane
    // threads free those blocks remotely.
    let handles: Vec<_> = (0..p.threads)
        .map(|tid| {
            let mut lane = Lane {
                slots: Vec::with_capacity(SLOTS),
                rng: dist::rng(p.seed, tid),
                counter: (tid as u64) << 48,
                ops: 0,
            };
            for _ in 0..SLOTS {
                let s = new_slot(&mut lane);
                lane.slots.push(s);
            }
            let p = p.clone();
            thread::spawn(move || lane_round(lane, round, deadline, p, name, sized))
        })
        .collect();
    let mut ops = 0;
    let mut first_error = None;
    for mut h in handles {
        loop {
            match h.join().expect("larson thread panicked") {
                Ok(End::Next(next)) => h = next,
                Ok(End::Done(n)) => {
                    ops += n;
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    break;
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Outcome::per_second(ops, start.elapsed().as_secs_f64(), "ops/s"))
}
