//! latency: an open-loop, server-like load. Each of N threads serves
//! requests on a fixed schedule (one every 60 µs, whether or not the last
//! one is done); a request allocates a burst of 8–32 blocks of 8 B–64 KiB
//! (each doubling half as likely), writes them, keeps a quarter in a
//! per-thread ring (evicting old ones), puts one in 20 into a shared array
//! (freeing what it evicts, often another thread's block) and frees the
//! rest. Every malloc and free is timed (the frees of blocks evicted from
//! the shared array included; the clean-up after the run is not), and each
//! request from its scheduled start (so a stall delays the requests behind
//! it, as it would in a server). Reports percentiles from HDR histograms:
//! `malloc`, `free`, `request`, and the `free` histogram split three ways,
//! to show where its tail comes from: `free-small` and `free-big` (the
//! thread's own blocks, from its burst and ring, up to 1 KiB and above),
//! and `free-shared` (blocks evicted from the shared array, often freed by
//! another thread than the one that allocated them: remote frees). That
//! one is split again by who allocated the block: `free-shared-own` (the
//! freeing thread) and `free-shared-remote` (another thread: the remote
//! frees themselves). The `malloc` histogram is split by the same size:
//! `malloc-small` and `malloc-big`.

use super::{free_tagged, on_threads, take_tagged, Params};
use crate::check::{self, Corruption, Coverage};
use crate::dist;
use crate::outcome::{Outcome, Percentiles};
use crate::raw::Block;
use hdrhistogram::Histogram;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const NAME: &str = "latency";
const INTERVAL: Duration = Duration::from_micros(60);
const RING: usize = 2_048;
const SHARED: usize = 4_096;
const MAX_SIZE: usize = 64 * 1024;

/// Blocks above this size are `malloc-big` and `free-big` (oxmalloc's
/// indexed classes start there, other allocators' medium classes near it).
const SMALL_MAX: usize = 1024;

struct Hists {
    /// Every malloc; each is also in `malloc_small` or `malloc_big`.
    malloc: Histogram<u64>,
    malloc_small: Histogram<u64>,
    malloc_big: Histogram<u64>,
    /// Every free; each is also in exactly one of the three below.
    free: Histogram<u64>,
    free_small: Histogram<u64>,
    free_big: Histogram<u64>,
    /// Frees of blocks evicted from the shared array; each is also in
    /// exactly one of the two below, by who allocated the block.
    free_shared: Histogram<u64>,
    free_shared_own: Histogram<u64>,
    free_shared_remote: Histogram<u64>,
    request: Histogram<u64>,
}

impl Hists {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
        Hists {
            malloc: h(),
            malloc_small: h(),
            malloc_big: h(),
            free: h(),
            free_small: h(),
            free_big: h(),
            free_shared: h(),
            free_shared_own: h(),
            free_shared_remote: h(),
            request: h(),
        }
    }

    fn add(&mut self, o: &Hists) {
        self.malloc.add(&o.malloc).expect("same bounds");
        self.malloc_small.add(&o.malloc_small).expect("same bounds");
        self.malloc_big.add(&o.malloc_big).expect("same bounds");
        self.free.add(&o.free).expect("same bounds");
        self.free_small.add(&o.free_small).expect("same bounds");
        self.free_big.add(&o.free_big).expect("same bounds");
        self.free_shared.add(&o.free_shared).expect("same bounds");
        self.free_shared_own.add(&o.free_shared_own).expect("same bounds");
        self.free_shared_remote.add(&o.free_shared_remote).expect("same bounds");
        self.request.add(&o.request).expect("same bounds");
    }

    /// Records one malloc's latency in `malloc` and in its split histogram.
    fn record_malloc(&mut self, size: usize, d: Duration) {
        let v = ns(d);
        self.malloc.saturating_record(v);
        let split = if size <= SMALL_MAX {
            &mut self.malloc_small
        } else {
            &mut self.malloc_big
        };
        split.saturating_record(v);
    }

    /// Records one free's latency in `free` and in its split histogram.
    fn record_free(&mut self, kind: FreeKind, d: Duration) {
        let v = ns(d);
        self.free.saturating_record(v);
        let split = match kind {
            FreeKind::Own { size } if size <= SMALL_MAX => &mut self.free_small,
            FreeKind::Own { .. } => &mut self.free_big,
            FreeKind::Shared { remote } => {
                let by_owner = if remote {
                    &mut self.free_shared_remote
                } else {
                    &mut self.free_shared_own
                };
                by_owner.saturating_record(v);
                &mut self.free_shared
            }
        };
        split.saturating_record(v);
    }
}

fn ns(d: Duration) -> u64 {
    (d.as_nanos() as u64).max(1)
}

/// Which of the split free histograms a free goes to.
#[derive(Clone, Copy)]
enum FreeKind {
    Own {
        size: usize,
    },
    /// A block evicted from the shared array; `remote` when another thread
    /// allocated it.
    Shared {
        remote: bool,
    },
}

/// Bit position of the allocating thread's number in a shared-array slot.
/// The slot holds the block's address with `tid + 1` in its top byte, so
/// that the thread that evicts it knows, exactly, whose block it frees
/// (user-space addresses on Linux stay below 2^56).
const OWNER_SHIFT: u32 = 56;

/// A shared-array slot for `block`, allocated by thread `tid`.
fn with_owner(block: *mut u8, tid: usize) -> *mut u8 {
    let addr = block as usize;
    assert!(
        addr >> OWNER_SHIFT == 0 && tid < 255,
        "latency: block {addr:#x} or thread {tid} does not fit a shared slot"
    );
    block.wrapping_byte_add((tid + 1) << OWNER_SHIFT)
}

/// The block in a shared-array slot, and the thread that allocated it
/// (`None` for an empty slot).
fn split_owner(slot: *mut u8) -> (*mut u8, Option<usize>) {
    let tag = slot as usize >> OWNER_SHIFT;
    (slot.wrapping_byte_sub(tag << OWNER_SHIFT), tag.checked_sub(1))
}

fn timed_free(p: &Params, h: &mut Hists, (mut b, tag): (Block, u64)) -> Result<(), Corruption> {
    p.fault.strike(b.bytes_mut());
    check::verify(NAME, b.bytes(), tag, Coverage::Ends)?;
    let kind = FreeKind::Own { size: b.bytes().len() };
    let t = Instant::now();
    b.free();
    h.record_free(kind, t.elapsed());
    Ok(())
}

fn worker(p: &Params, tid: usize, shared: &[AtomicPtr<u8>]) -> Result<(Hists, u64), Corruption> {
    let mut rng = dist::rng(p.seed, tid);
    let mut h = Hists::new();
    let requests = p.scaled(25_000.0, 50);
    let mut ring: Vec<Option<(Block, u64)>> = (0..RING).map(|_| None).collect();
    let mut ring_pos = 0;
    let mut counter = (tid as u64) << 48;
    let mut ops = 0;
    let mut burst: Vec<(Block, u64)> = Vec::with_capacity(32);
    let start = Instant::now();
    for r in 0..requests {
        let scheduled = start + INTERVAL * r as u32;
        loop {
            let now = Instant::now();
            if now >= scheduled {
                break;
            }
            if scheduled - now > Duration::from_micros(200) {
                thread::sleep(Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
        }
        for _ in 0..dist::uniform(&mut rng, 8, 32) {
            let size = dist::halving_doublings(&mut rng, 8, MAX_SIZE);
            let t = Instant::now();
            let mut b = Block::new(size, 8);
            h.record_malloc(size, t.elapsed());
            counter += 1;
            ops += 1;
            if dist::index(&mut rng, 20) == 0 {
                check::fill_tagged(b.bytes_mut());
                let k = dist::index(&mut rng, SHARED);
                let slot = shared[k].swap(with_owner(b.into_raw(), tid), Ordering::AcqRel);
                let (evicted, owner) = split_owner(slot);
                if let Some(old) = take_tagged(NAME, p, evicted, MAX_SIZE)? {
                    let remote = owner != Some(tid);
                    let t = Instant::now();
                    old.free();
                    h.record_free(FreeKind::Shared { remote }, t.elapsed());
                }
                continue;
            }
            let tag = check::tag_of(b.addr(), size, counter);
            check::fill(b.bytes_mut(), tag, Coverage::Ends);
            burst.push((b, tag));
        }
        // The last quarter of the burst is kept in the ring; the rest dies now.
        let kept_from = burst.len() - burst.len() / 4;
        for item in burst.drain(kept_from..) {
            if let Some(old) = ring[ring_pos].replace(item) {
                timed_free(p, &mut h, old)?;
            }
            ring_pos = (ring_pos + 1) % RING;
        }
        for item in burst.drain(..) {
            timed_free(p, &mut h, item)?;
        }
        h.request.saturating_record(ns(scheduled.elapsed()));
    }
    for item in ring.into_iter().flatten() {
        timed_free(p, &mut h, item)?;
    }
    Ok((h, ops))
}

/// Runs latency with `p.threads` threads.
pub fn run(p: &Params) -> Result<Outcome, Corruption> {
    let shared: Vec<AtomicPtr<u8>> = (0..SHARED).map(|_| AtomicPtr::new(ptr::null_mut())).collect();
    let start = Instant::now();
    let results = on_threads(p.threads, |tid| worker(p, tid, &shared));
    let elapsed = start.elapsed().as_secs_f64();
    for slot in &shared {
        let (block, _) = split_owner(slot.swap(ptr::null_mut(), Ordering::AcqRel));
        free_tagged(NAME, p, block, MAX_SIZE)?;
    }
    let mut total = Hists::new();
    let mut ops = 0;
    for (h, n) in results? {
        total.add(&h);
        ops += n;
    }
    let mut o = Outcome::per_second(ops, elapsed, "allocs/s");
    for (name, h) in [
        ("malloc", &total.malloc),
        ("malloc-small", &total.malloc_small),
        ("malloc-big", &total.malloc_big),
        ("free", &total.free),
        ("free-small", &total.free_small),
        ("free-big", &total.free_big),
        ("free-shared", &total.free_shared),
        ("free-shared-own", &total.free_shared_own),
        ("free-shared-remote", &total.free_shared_remote),
        ("request", &total.request),
    ] {
        o.latency.insert(name.into(), Percentiles::of(h));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_slot_gives_back_its_block_and_the_thread_that_made_it() {
        let mut word = 0u64;
        let block = (&raw mut word).cast::<u8>();
        for tid in [0, 1, 7, 8, 254] {
            let (back, owner) = split_owner(with_owner(block, tid));
            assert_eq!(back, block, "thread {tid}");
            assert_eq!(owner, Some(tid), "thread {tid}");
        }
        assert_eq!(split_owner(ptr::null_mut()), (ptr::null_mut(), None), "an empty slot");
    }

    #[test]
    #[should_panic(expected = "does not fit a shared slot")]
    fn a_thread_number_that_does_not_fit_is_refused() {
        let mut word = 0u64;
        with_owner((&raw mut word).cast::<u8>(), 255);
    }
}
