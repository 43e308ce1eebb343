//! Random sequences of malloc / calloc / realloc / aligned_alloc / free /
//! cross-thread free through `oxmalloc::raw`, checked against a model:
//! blocks never overlap, are aligned, keep their contents (a pattern per
//! block), have a usable size at least the request, calloc'ed ones read zero,
//! and realloc keeps min(old, new) bytes. The model itself lives in the
//! system allocator (this binary's global allocator), out of oxmalloc's reach.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oxmalloc::raw;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
enum Op {
    Malloc { size: u16, big: u8 },
    Calloc { count: u8, size: u16 },
    Realloc { index: u8, size: u16, big: u8 },
    Aligned { size: u16, align_log: u8 },
    Free { index: u8 },
    FreeRemote { index: u8 },
    Check { index: u8 },
}

struct Live {
    size: usize,
    seed: u8,
}

/// Sizes: mostly small, sometimes large (x 64 KiB) or huge (x 1 MiB).
fn size_of(size: u16, big: u8) -> usize {
    match big % 16 {
        0 => size as usize * 64,
        1 => (size as usize % 16 + 1) << 20,
        _ => size as usize % 4096,
    }
}

fn pattern(p: usize, seed: u8, i: usize) -> u8 {
    ((p >> 4) as u8)
        .wrapping_add(seed)
        .wrapping_add((i as u8).wrapping_mul(31))
}

/// Writes the block's pattern (every byte for small blocks, a sample for big ones).
fn fill(p: *mut u8, size: usize, seed: u8) {
    let step = if size > 8192 { 509 } else { 1 };
    for i in (0..size).step_by(step) {
        // SAFETY: `p` is a live block of at least `size` bytes.
        unsafe { *p.add(i) = pattern(p as usize, seed, i) };
    }
}

fn check(p: *mut u8, size: usize, seed: u8, upto: usize) {
    let step = if size > 8192 { 509 } else { 1 };
    for i in (0..size.min(upto)).step_by(step) {
        // SAFETY: `p` is a live block of at least `size` bytes.
        let got = unsafe { *p.add(i) };
        assert_eq!(got, pattern(p as usize, seed, i), "block {p:p} ({size} B) byte {i}");
    }
}

/// A helper thread that frees what it is sent (remote frees), and answers.
fn remote() -> &'static (mpsc::SyncSender<usize>, std::sync::Mutex<mpsc::Receiver<()>>) {
    static REMOTE: OnceLock<(mpsc::SyncSender<usize>, std::sync::Mutex<mpsc::Receiver<()>>)> = OnceLock::new();
    REMOTE.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<usize>(0);
        let (done_tx, done_rx) = mpsc::sync_channel::<()>(0);
        std::thread::spawn(move || {
            for p in rx {
                // SAFETY: the block was live and is no longer used by the sender.
                unsafe { raw::free(p as *mut u8) };
                done_tx.send(()).unwrap();
            }
        });
        (tx, std::sync::Mutex::new(done_rx))
    })
}

/// The alignment `malloc(n)` guarantees: 16 bytes, or 8 for requests of
/// 8 bytes or less (all such a size needs).
fn malloc_align(n: usize) -> usize {
    if n > 8 {
        16
    } else {
        8
    }
}

struct Model {
    live: BTreeMap<usize, Live>,
    seed: u8,
}

impl Model {
    fn add(&mut self, p: *mut u8, size: usize, align: usize, zeroed: bool) {
        if p.is_null() {
            return;
        }
        let addr = p as usize;
        assert_eq!(addr % align, 0, "{p:p} not aligned to {align}");
        assert!(raw::usable_size(p) >= size, "usable size below the request");
        if zeroed {
            // SAFETY: a live block of `size` bytes.
            assert!(unsafe { std::slice::from_raw_parts(p, size) }.iter().all(|&b| b == 0));
        }
        // No overlap with the neighbours (0-byte requests still take a byte).
        let end = addr + size.max(1);
        if let Some((&prev, l)) = self.live.range(..=addr).next_back() {
            assert!(prev + l.size.max(1) <= addr, "{p:p} overlaps the block at {prev:#x}");
        }
        if let Some((&next, _)) = self.live.range(addr..).next() {
            assert!(end <= next, "{p:p} ({size} B) overlaps the block at {next:#x}");
        }
        self.seed = self.seed.wrapping_add(1);
        fill(p, size, self.seed);
        self.live.insert(addr, Live { size, seed: self.seed });
    }

    fn pick(&self, index: u8) -> Option<usize> {
        if self.live.is_empty() {
            return None;
        }
        self.live.keys().nth(index as usize % self.live.len()).copied()
    }

    fn take(&mut self, index: u8) -> Option<(usize, Live)> {
        let addr = self.pick(index)?;
        let l = self.live.remove(&addr).unwrap();
        check(addr as *mut u8, l.size, l.seed, usize::MAX);
        Some((addr, l))
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut m = Model {
        live: BTreeMap::new(),
        seed: 0,
    };
    for op in ops.into_iter().take(2000) {
        match op {
            Op::Malloc { size, big } => {
                let n = size_of(size, big);
                m.add(raw::malloc(n), n, malloc_align(n), false);
            }
            Op::Calloc { count, size } => {
                let n = count as usize * (size as usize % 512);
                m.add(raw::zalloc(n), n, 8, true);
            }
            Op::Aligned { size, align_log } => {
                let align = 1usize << (align_log % 24);
                let n = size as usize % 8192;
                m.add(raw::aligned_alloc(n, align), n, align, false);
            }
            Op::Realloc { index, size, big } => {
                let n = size_of(size, big).max(1);
                if let Some((addr, l)) = m.take(index) {
                    // SAFETY: a live block of ours; `n > 0`.
                    let q = unsafe { raw::realloc(addr as *mut u8, n) };
                    if q.is_null() {
                        m.live.insert(addr, l);
                    } else {
                        // The first min(old, new) bytes moved with the block.
                        // (Sampled as it was filled: by the old size's step.)
                        let keep = l.size.min(n);
                        let step = if l.size > 8192 { 509 } else { 1 };
                        for i in (0..keep).step_by(step) {
                            // SAFETY: `q` is a live block of `n >= keep` bytes.
                            let got = unsafe { *q.add(i) };
                            assert_eq!(got, pattern(addr, l.seed, i), "realloc lost byte {i}");
                        }
                        // Aligned as `malloc(n)` is (a block of 8 bytes or
                        // less, malloc(0)'s resized in place, is 8-aligned).
                        m.add(q, n, malloc_align(n), false);
                    }
                }
            }
            Op::Free { index } => {
                if let Some((addr, _)) = m.take(index) {
                    // SAFETY: a live block of ours, dropped from the model.
                    unsafe { raw::free(addr as *mut u8) };
                }
            }
            Op::FreeRemote { index } => {
                if let Some((addr, _)) = m.take(index) {
                    let (tx, done) = remote();
                    tx.send(addr).unwrap();
                    done.lock().unwrap().recv().unwrap();
                }
            }
            Op::Check { index } => {
                if let Some(addr) = m.pick(index) {
                    let l = &m.live[&addr];
                    check(addr as *mut u8, l.size, l.seed, usize::MAX);
                }
            }
        }
    }
    for (addr, l) in std::mem::take(&mut m.live) {
        check(addr as *mut u8, l.size, l.seed, usize::MAX);
        // SAFETY: a live block of ours.
        unsafe { raw::free(addr as *mut u8) };
    }
});
