//! `oxbench-locality ALLOC [SLOTS] [OPS] [rptest|larson]`: where an
//! allocator puts the blocks of an rptest-like (or larson-like) loop,
//! scored by a model of the TLB and the L2 cache, so that allocators can be
//! compared on how warm the memory they hand out is (docs/PERFORMANCE.md
//! E40).
//!
//! One thread keeps `SLOTS` (1,000) live blocks and runs `OPS` (300,000)
//! steps: free a random slot, allocate a block (rptest: 8-16,000 B,
//! linearly falling density, malloc, calloc or 16-byte alignment; larson:
//! 8-1,000 B, uniform, malloc), and touch it as the workload's checks do:
//! its first and last bytes and one byte per 4 KiB, after allocating and
//! again before freeing. Every touched address goes through two models:
//!
//! * a fully associative LRU TLB of 1,536 entries of 4 KiB (this machine's
//!   second-level TLB), with the miss rate of the first touch after an
//!   allocation and of the first touch before a free reported apart;
//! * a 1 MiB, 16-way L2 cache of 64-byte lines, indexed by the line's
//!   physical address (the page number hashed: the OS picks frames).
//!
//! The allocators are called directly; this program's own allocator is
//! the system's. A model, not a measurement: it counts nothing but the
//! workload's own touches, on one thread.

use oxbench::dist;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;

const PAGE: usize = 4096;

/// A fully associative cache with least-recently-used replacement.
struct Lru {
    capacity: usize,
    clock: u64,
    last_use: HashMap<u64, u64>,
    by_age: BTreeMap<u64, u64>,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Lru {
            capacity,
            clock: 0,
            last_use: HashMap::new(),
            by_age: BTreeMap::new(),
        }
    }

    /// Touches `key`; whether it missed.
    fn touch(&mut self, key: u64) -> bool {
        self.clock += 1;
        let missed = match self.last_use.insert(key, self.clock) {
            Some(old) => {
                self.by_age.remove(&old);
                false
            }
            None => true,
        };
        self.by_age.insert(self.clock, key);
        if self.last_use.len() > self.capacity {
            let (&age, &oldest) = self.by_age.iter().next().expect("not empty");
            self.by_age.remove(&age);
            self.last_use.remove(&oldest);
        }
        missed
    }
}

/// A set-associative cache of 64-byte lines with LRU replacement per set.
struct SetCache {
    sets: Vec<Vec<(u64, u64)>>,
    ways: usize,
    clock: u64,
}

impl SetCache {
    fn new(sets: usize, ways: usize) -> Self {
        SetCache {
            sets: vec![Vec::new(); sets],
            ways,
            clock: 0,
        }
    }

    /// Touches the line of `addr`; whether it missed.
    fn touch(&mut self, addr: usize) -> bool {
        let frame = ((addr / PAGE) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        let line = frame << 6 | (addr as u64 >> 6 & 63);
        let count = self.sets.len() as u64;
        let set = &mut self.sets[(line % count) as usize];
        self.clock += 1;
        if let Some(entry) = set.iter_mut().find(|e| e.0 == line) {
            entry.1 = self.clock;
            return false;
        }
        if set.len() == self.ways {
            let oldest = (0..set.len()).min_by_key(|&i| set[i].1).expect("a full set");
            set.swap_remove(oldest);
        }
        set.push((line, self.clock));
        true
    }
}

#[derive(Default)]
struct Score {
    after_alloc: (u64, u64),
    before_free: (u64, u64),
    l2: (u64, u64),
    pages: HashSet<usize>,
}

struct Models {
    tlb: Lru,
    l2: SetCache,
    score: Score,
}

impl Models {
    /// Touches `block` as rptest's checks do; the first touch is scored in
    /// `first` (misses, touches).
    fn touch_block(&mut self, block: usize, size: usize, after_alloc: bool) {
        let mut offsets = vec![0];
        offsets.extend((PAGE..size.saturating_sub(16)).step_by(PAGE));
        offsets.push(size - 1);
        for (i, off) in offsets.into_iter().enumerate() {
            let addr = block + off;
            let tlb_miss = self.tlb.touch((addr / PAGE) as u64);
            if i == 0 {
                let first = if after_alloc {
                    &mut self.score.after_alloc
                } else {
                    &mut self.score.before_free
                };
                first.0 += tlb_miss as u64;
                first.1 += 1;
            }
            self.score.l2.0 += self.l2.touch(addr) as u64;
            self.score.l2.1 += 1;
            if after_alloc {
                self.score.pages.insert(addr / PAGE);
            }
        }
    }
}

/// The size and kind (0 malloc, 1 calloc, 2 16-byte aligned) of the next block.
fn next_request(rng: &mut SmallRng, larson: bool) -> (usize, u32) {
    if larson {
        (rng.random_range(8..=1000), 0)
    } else {
        (dist::linear_falling(rng, 8, 16_000), rng.random_range(0..3))
    }
}

fn run<A: GlobalAlloc>(allocator: &A, slots: usize, ops: usize, larson: bool) -> Score {
    let mut rng = SmallRng::seed_from_u64(42);
    let mut live: Vec<Option<(*mut u8, Layout)>> = vec![None; slots];
    let mut models = Models {
        tlb: Lru::new(1536),
        l2: SetCache::new(1024, 16),
        score: Score::default(),
    };
    for _ in 0..ops {
        let slot = &mut live[rng.random_range(0..slots)];
        if let Some((block, layout)) = slot.take() {
            models.touch_block(block as usize, layout.size(), false);
            // SAFETY: allocated below by the same allocator with `layout`.
            unsafe { allocator.dealloc(block, layout) };
        }
        let (size, kind) = next_request(&mut rng, larson);
        let layout = Layout::from_size_align(size, if kind == 2 { 16 } else { 8 }).expect("layout");
        // SAFETY: a non-zero size.
        let block = unsafe {
            if kind == 1 {
                allocator.alloc_zeroed(layout)
            } else {
                allocator.alloc(layout)
            }
        };
        assert!(!block.is_null(), "out of memory");
        models.touch_block(block as usize, size, true);
        *slot = Some((block, layout));
    }
    for (block, layout) in live.into_iter().flatten() {
        // SAFETY: as above.
        unsafe { allocator.dealloc(block, layout) };
    }
    models.score
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize, default: usize| args.get(i).map_or(Some(default), |s| s.parse().ok());
    let (Some(slots), Some(ops)) = (number(2, 1_000), number(3, 300_000)) else {
        eprintln!("usage: oxbench-locality oxmalloc|mimalloc|rpmalloc|snmalloc|jemalloc [SLOTS] [OPS] [rptest|larson]");
        return ExitCode::from(2);
    };
    let usage = || {
        eprintln!("usage: oxbench-locality oxmalloc|mimalloc|rpmalloc|snmalloc|jemalloc [SLOTS] [OPS] [rptest|larson]");
        ExitCode::from(2)
    };
    let larson = match args.get(4).map(String::as_str) {
        None | Some("rptest") => false,
        Some("larson") => true,
        Some(_) => return usage(),
    };
    let name = args.get(1).map(String::as_str).unwrap_or("");
    let score = match name {
        "oxmalloc" => run(&oxmalloc::OxMalloc, slots, ops, larson),
        "mimalloc" => run(&mimalloc::MiMalloc, slots, ops, larson),
        "rpmalloc" => run(&rpmalloc::RpMalloc, slots, ops, larson),
        "snmalloc" => run(&snmalloc_rs::SnMalloc, slots, ops, larson),
        "jemalloc" => run(&tikv_jemallocator::Jemalloc, slots, ops, larson),
        _ => return usage(),
    };
    let rate = |(misses, touches): (u64, u64)| misses as f64 / touches.max(1) as f64;
    println!(
        "{name:10} {} slots {slots} ops {ops}: TLB miss at first touch after malloc {:.3}, before free {:.3}; \
         L2 miss {:.3}; 4 KiB pages handed out {}",
        if larson { "larson" } else { "rptest" },
        rate(score.after_alloc),
        rate(score.before_free),
        rate(score.l2),
        score.pages.len()
    );
    ExitCode::SUCCESS
}
