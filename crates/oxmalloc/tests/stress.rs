//! The mstress shape (see shared/WORKLOADS.md): threads allocate blocks of
//! mixed sizes, free random earlier ones, and swap blocks through a shared
//! atomic array so that blocks die on other threads; every block carries a
//! pattern derived from its address, checked when it is freed. Threads are
//! joined and recreated each round; half of the shared array survives.
//! And the larson shape: each lane's slots pass from a thread to the one it
//! starts before exiting, which frees them into the exited thread's
//! abandoned pages (and takes those pages, `abandon::reclaim_on_free`)
//! while other lanes' threads exit, reclaim and sweep.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const SHARED_SLOTS: usize = 1000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A block: first word its size, then a pattern of its address.
fn new_block(size: usize) -> usize {
    let size = size.max(16);
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: blocks come from OxMalloc with a size of at least 16 stored in their first word; they are accessed within that size and freed once.
    let p = unsafe { OxMalloc.alloc(layout) };
    assert!(!p.is_null(), "out of memory for {size} bytes");
    // SAFETY: blocks come from OxMalloc with a size of at least 16 stored in their first word; they are accessed within that size and freed once.
    unsafe {
        (p as *mut usize).write(size);
        let words = size / 8;
        for i in 1..words {
            (p as *mut usize)
                .add(i)
                .write((p as usize) ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
    }
    p as usize
}

fn free_block(addr: usize) {
    let p = addr as *mut u8;
    // SAFETY: blocks come from OxMalloc with a size of at least 16 stored in their first word; they are accessed within that size and freed once.
    unsafe {
        let size = (p as *const usize).read();
        assert!(
            (16..=64 << 20).contains(&size),
            "block {p:p}: corrupt size word {size:#x}"
        );
        for i in 1..size / 8 {
            let got = (p as *const usize).add(i).read();
            let want = addr ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(got, want, "block {p:p} of {size} bytes: word {i} corrupted");
        }
        OxMalloc.dealloc(p, Layout::from_size_align(size, 8).unwrap());
    }
}

fn random_size(rng: &mut Rng) -> usize {
    // 8..128 bytes in power-of-two word counts, with rare big outliers.
    let words = 1usize << rng.below(5);
    let base = words * 8 + rng.below(8) * 8;
    match rng.below(10_000) {
        0 => base * 10_000,
        1..=10 => base * 1000,
        11..=110 => base * 100,
        _ => base,
    }
}

fn worker(tid: usize, round: usize, steps: usize, shared: Arc<Vec<AtomicUsize>>) {
    let mut rng = Rng((0x1234_5678 ^ ((tid as u64) << 32) ^ (round as u64 * 7919)) | 1);
    let mut live: Vec<usize> = Vec::with_capacity(steps / 2);
    for _ in 0..steps {
        let r = rng.below(12);
        if r < 8 && !live.is_empty() {
            // 2/3: free a random earlier block
            let i = rng.below(live.len());
            free_block(live.swap_remove(i));
        } else if r < 11 && !live.is_empty() {
            // 1/4: swap with a shared slot, so blocks die on other threads
            let i = rng.below(live.len());
            let slot = &shared[rng.below(SHARED_SLOTS)];
            let old = slot.swap(live[i], Ordering::AcqRel);
            if old == 0 {
                live.swap_remove(i);
            } else {
                live[i] = old;
            }
        } else if live.len() < steps / 2 {
            live.push(new_block(random_size(&mut rng)));
        }
    }
    for b in live {
        free_block(b);
    }
}

fn run(threads: usize, rounds: usize, steps: usize) {
    let shared: Arc<Vec<AtomicUsize>> = Arc::new((0..SHARED_SLOTS).map(|_| AtomicUsize::new(0)).collect());
    for round in 0..rounds {
        let handles: Vec<_> = (0..threads)
            .map(|tid| {
                let shared = shared.clone();
                std::thread::spawn(move || worker(tid, round, steps * (tid % 8 + 1), shared))
            })
            .collect();
        for h in handles {
            h.join().expect("worker failed");
        }
        // Half of the shared array survives each round.
        for slot in shared.iter().step_by(2) {
            let b = slot.swap(0, Ordering::AcqRel);
            if b != 0 {
                free_block(b);
            }
        }
    }
    for slot in shared.iter() {
        let b = slot.swap(0, Ordering::AcqRel);
        if b != 0 {
            free_block(b);
        }
    }
}

#[test]
fn mstress_shape_six_threads() {
    run(6, 12, 20_000);
    let s = oxmalloc::stats();
    assert_eq!(s.errors, 0, "heap errors were reported");
}

#[test]
fn mstress_shape_eight_threads_short_rounds() {
    run(8, 25, 3000);
}

/// How a larson thread ends: it started the next one, or was the last.
enum LaneEnd {
    Next(std::thread::JoinHandle<LaneEnd>),
    Done(Vec<usize>),
}

/// One thread of a larson lane: replaces random slots `replacements`
/// times, then starts the next thread with the slots (`generations` left)
/// and exits without waiting for it.
fn larson_lane(lane: usize, mut slots: Vec<usize>, generations: usize, replacements: usize) -> LaneEnd {
    let mut rng = Rng((0x9e37_79b9 ^ ((lane as u64) << 40) ^ (generations as u64)) | 1);
    for _ in 0..replacements {
        let i = rng.below(slots.len());
        let fresh = new_block(8 + rng.below(1000));
        free_block(std::mem::replace(&mut slots[i], fresh));
    }
    if generations == 1 {
        return LaneEnd::Done(slots);
    }
    LaneEnd::Next(std::thread::spawn(move || {
        larson_lane(lane, slots, generations - 1, replacements)
    }))
}

#[test]
fn larson_shape_four_lanes() {
    let lanes: Vec<_> = (0..4)
        .map(|lane| {
            let slots = (0..1000).map(|k| new_block(8 + k % 1000)).collect();
            std::thread::spawn(move || larson_lane(lane, slots, 30, 3000))
        })
        .collect();
    for mut lane in lanes {
        let slots = loop {
            match lane.join().expect("larson thread failed") {
                LaneEnd::Next(next) => lane = next,
                LaneEnd::Done(slots) => break slots,
            }
        };
        for b in slots {
            free_block(b);
        }
    }
    assert_eq!(oxmalloc::stats().errors, 0, "heap errors were reported");
}
