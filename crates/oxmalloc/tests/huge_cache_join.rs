//! The huge-block cache joins freed mappings (`huge.rs`, `join_cached`):
//! a block larger than any cached mapping gets the backed ones moved, with
//! `mremap`, into one new mapping, so their pages need no new faults. The
//! joined mapping may span several kernel mappings (unless the kernel
//! merges them), which `realloc` must grow and move without losing a byte,
//! and a zeroed block built from dirty pieces must still read as zero.
//!
//! What is cached must not depend on other threads or on the timed purge:
//! the case runs in a child of this test binary with one test thread, no
//! background purger and a long purge delay.

#![cfg(not(feature = "secure"))]

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_HUGE_JOIN_CASE";
const MIB: usize = 1 << 20;

fn run_case(case: &str, env: &[(&str, &str)]) {
    common::run_child_case(CASE_VAR, case, env);
}

#[test]
fn freed_huge_mappings_join_into_a_larger_block() {
    run_case("join", &[]);
}

/// A cached mapping cut for a smaller block keeps its tail cached, and the
/// block grows over that tail by `realloc` without a system call.
#[test]
fn a_cut_block_grows_over_its_cached_tail() {
    run_case("absorb", &[]);
}

/// Threads allocate, resize and free huge blocks at once while the timed
/// purge (1 ms) runs: cuts, joins, growth over cached tails and purges
/// race, and every block keeps its bytes (one per page, checked) and
/// zeroed blocks read as zero.
#[test]
fn threads_cut_join_and_resize_at_once() {
    run_case(
        "threads",
        &[("OXMALLOC_PURGE_DELAY", "1"), ("OXMALLOC_BACKGROUND_PURGE", "1")],
    );
}

/// A join that needs fresh memory while a cached mapping was just purged
/// on the timer means the purge only bought faults: the purge delay
/// doubles, as for arena spans reused after their purge.
#[test]
fn fresh_memory_after_a_cache_purge_lengthens_the_delay() {
    run_case("backoff", &[("OXMALLOC_PURGE_DELAY", "5")]);
}

/// A block aligned to a chunk or more sits one chunk above its mapping's
/// header, and the mapping is sized in huge pages: it must really be
/// mapped to that size. (It was not: the reservation covered the block
/// only, so freeing the block unmapped up to 2 MiB of whatever lay after
/// it; raw_ops fuzzing crashed on that once the cache placed mappings
/// there.)
#[test]
fn an_over_aligned_mapping_frees_only_itself() {
    run_case("aligned-extent", &[]);
}

/// With huge pages off, mappings are not sized in huge pages and are never
/// joined (the most recent one grows instead); blocks stay whole and zeroed.
#[test]
fn without_huge_pages_nothing_is_joined() {
    run_case("no-join", &[("OXMALLOC_HUGE_PAGES", "0")]);
}

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(
        CASE_VAR,
        &[
            ("join", || joins_and_resizes(true)),
            ("no-join", || joins_and_resizes(false)),
            ("absorb", grows_over_the_cached_tail),
            ("threads", threads_at_once),
            ("backoff", fresh_memory_after_a_purge_backs_off),
            ("aligned-extent", over_aligned_free_spares_its_neighbour),
        ],
    );
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

fn byte(i: usize, seed: usize) -> u8 {
    (i.wrapping_mul(131).wrapping_add(seed) % 251) as u8
}

/// # Safety
/// `p` must be valid for writes of `len` bytes.
unsafe fn fill(p: *mut u8, len: usize, seed: usize) {
    for i in 0..len {
        // SAFETY: caller's contract.
        unsafe { *p.add(i) = byte(i, seed) };
    }
}

/// # Safety
/// `p` must be valid for reads of `len` bytes.
unsafe fn check(p: *const u8, len: usize, seed: usize, what: &str) {
    // SAFETY: caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    if let Some(i) = (0..len).find(|&i| bytes[i] != byte(i, seed)) {
        panic!(
            "{what}: byte {i} of {len} is {:#x}, expected {:#x}",
            bytes[i],
            byte(i, seed)
        );
    }
}

/// # Safety
/// `p` must be valid for reads of `len` bytes.
unsafe fn check_zero(p: *const u8, len: usize, what: &str) {
    // SAFETY: caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    if let Some(i) = bytes.iter().position(|&b| b != 0) {
        panic!("{what}: byte {i} of {len} is {:#x}, not zero", bytes[i]);
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// `mincore`'s byte per page of `[addr, addr + len)` (page-aligned
/// `addr`); `None` when the range holds an unmapped page (ENOMEM).
fn page_states(addr: usize, len: usize) -> Option<Vec<u8>> {
    let mut vec = vec![0u8; len.div_ceil(page_size())];
    // SAFETY: `vec` has a byte per page of the range; mincore only reads
    // the page tables.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr()) };
    (r == 0).then_some(vec)
}

/// Bytes of `[addr, addr + len)` (page-aligned `addr`) backed by memory.
fn resident_bytes(addr: usize, len: usize) -> usize {
    let states = page_states(addr, len)
        .unwrap_or_else(|| panic!("mincore({addr:#x}, {len}): {}", std::io::Error::last_os_error()));
    states.iter().filter(|&&b| b & 1 != 0).count() * page_size()
}

/// Whether `[addr, addr + len)` is all mapped.
fn mapped(addr: usize, len: usize) -> bool {
    page_states(addr, len).is_some()
}

fn joins_and_resizes(joins: bool) {
    const PIECE: usize = 6 * MIB;
    const JOINED: usize = 20 * MIB;
    const GROWN: usize = 40 * MIB;
    const REGROWN: usize = 64 * MIB;
    const SHRUNK: usize = 10 * MIB;
    // SAFETY: every pointer comes from OxMalloc with the layout it is used
    // with, is live, and is accessed within its size.
    unsafe {
        // Three huge blocks, written to the last byte, then freed: three
        // backed mappings of 8 MiB in the cache (6 MiB and the header's
        // slice, in whole huge pages).
        let pieces: Vec<*mut u8> = (0..3).map(|_| OxMalloc.alloc(layout(PIECE))).collect();
        for (n, &p) in pieces.iter().enumerate() {
            assert!(!p.is_null());
            fill(p, PIECE, n);
        }
        for &p in &pieces {
            OxMalloc.dealloc(p, layout(PIECE));
        }
        // None of them holds 20 MiB: the three are joined (the last one
        // cut), and their pages come along resident.
        let p = OxMalloc.alloc_zeroed(layout(JOINED));
        assert!(!p.is_null());
        let resident = resident_bytes(p as usize, JOINED);
        if joins {
            assert!(
                resident >= JOINED - 2 * MIB,
                "a 20 MiB block after three 6 MiB ones were freed: only {} MiB resident; the cached pages were not reused",
                resident / MIB
            );
        } else {
            // One freed mapping grown: its 6 MiB (and a slice) resident.
            assert!(
                resident <= PIECE + 2 * MIB,
                "huge pages off: {} MiB of a 20 MiB block resident; cached mappings were joined",
                resident / MIB
            );
        }
        // Zeroed although every piece was written.
        check_zero(p, JOINED, "the joined zeroed block");
        fill(p, JOINED, 7);
        // Growing a joined mapping: in place (its last kernel mapping
        // grows) or moved one huge page at a time; either way whole.
        let q = OxMalloc.realloc(p, layout(JOINED), GROWN);
        assert!(!q.is_null());
        check(q, JOINED, 7, "the joined block grown to 40 MiB");
        fill(q.add(JOINED), GROWN - JOINED, 9);
        let r = OxMalloc.realloc(q, layout(GROWN), REGROWN);
        assert!(!r.is_null());
        check(r, JOINED, 7, "the joined block grown to 64 MiB (old part)");
        check(
            r.add(JOINED),
            GROWN - JOINED,
            9,
            "the joined block grown to 64 MiB (first growth)",
        );
        r.add(REGROWN - 1).write_volatile(0x5A);
        let s = OxMalloc.realloc(r, layout(REGROWN), SHRUNK);
        assert!(!s.is_null());
        check(s, SHRUNK, 7, "the joined block shrunk to 10 MiB");
        // Freed, the joined mapping is cached and joined again into a
        // larger block: its pages move one huge page at a time.
        OxMalloc.dealloc(s, layout(SHRUNK));
        let t = OxMalloc.alloc_zeroed(layout(JOINED));
        assert!(!t.is_null());
        check_zero(t, JOINED, "a zeroed block joined from a joined mapping");
        fill(t, JOINED, 11);
        check(t, JOINED, 11, "the second joined block");
        OxMalloc.dealloc(t, layout(JOINED));
    }
}

fn grows_over_the_cached_tail() {
    const FIRST: usize = 30 * MIB;
    const SMALL: usize = 6 * MIB;
    const GROWN: usize = 20 * MIB;
    // SAFETY: every pointer comes from OxMalloc with the layout it is used
    // with, is live, and is accessed within its size.
    unsafe {
        let a = OxMalloc.alloc(layout(FIRST));
        assert!(!a.is_null());
        fill(a, FIRST, 3);
        OxMalloc.dealloc(a, layout(FIRST));
        let reserved = oxmalloc::stats().reserved.current;
        // The cached 32 MiB mapping is cut: the block takes its head.
        let b = OxMalloc.alloc(layout(SMALL));
        assert_eq!(b, a, "a 6 MiB block did not reuse the cached 30 MiB block's mapping");
        assert_eq!(
            oxmalloc::stats().reserved.current,
            reserved,
            "cutting the cached mapping unmapped its tail"
        );
        fill(b, SMALL, 5);
        let c = OxMalloc.realloc(b, layout(SMALL), GROWN);
        assert_eq!(c, b, "growing over the cached tail moved the block");
        assert_eq!(
            oxmalloc::stats().reserved.current,
            reserved,
            "growing over the cached tail mapped memory"
        );
        check(c, SMALL, 5, "the block grown over its cached tail");
        // The growth holds the first block's old bytes: writable, whole.
        fill(c.add(SMALL), GROWN - SMALL, 6);
        check(c.add(SMALL), GROWN - SMALL, 6, "the growth");
        OxMalloc.dealloc(c, layout(GROWN));
    }
}

/// One byte per page of a block: the page's byte for `seed`.
fn page_byte(page: usize, seed: usize) -> u8 {
    (page.wrapping_mul(0x9E37).wrapping_add(seed.wrapping_mul(31)) % 251) as u8 | 1
}

/// # Safety
/// `p` must be valid for writes of `len` bytes.
unsafe fn mark_pages(p: *mut u8, from: usize, len: usize, seed: usize) {
    let page = page_size();
    for i in (from.div_ceil(page)..len.div_ceil(page)).map(|n| n * page) {
        // SAFETY: caller's contract (`i < len`).
        unsafe { *p.add(i) = page_byte(i / page, seed) };
    }
}

/// # Safety
/// `p` must be valid for reads of `len` bytes.
unsafe fn check_pages(p: *const u8, len: usize, seed: usize, what: &str) {
    let page = page_size();
    for i in (0..len.div_ceil(page)).map(|n| n * page) {
        // SAFETY: caller's contract (`i < len`).
        let got = unsafe { *p.add(i) };
        assert_eq!(got, page_byte(i / page, seed), "{what}: byte {i} of {len}");
    }
}

fn threads_at_once() {
    const THREADS: usize = 4;
    const STEPS: usize = 300;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) * 0x1234_5678_9ABC);
                let mut next = move |n: usize| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % n as u64) as usize
                };
                // (block, size, seed)
                let mut live: Vec<(*mut u8, usize, usize)> = Vec::new();
                for step in 0..STEPS {
                    let size = (3 + next(30)) * MIB + next(MIB);
                    // SAFETY: every block comes from OxMalloc with the
                    // layout it is used with, and is accessed within it.
                    unsafe {
                        match next(4) {
                            0 | 1 if live.len() < 3 => {
                                let zeroed = next(2) == 0;
                                let p = if zeroed {
                                    OxMalloc.alloc_zeroed(layout(size))
                                } else {
                                    OxMalloc.alloc(layout(size))
                                };
                                assert!(!p.is_null(), "thread {t}: {size} bytes refused");
                                if zeroed {
                                    let page = page_size();
                                    for i in (0..size.div_ceil(page)).map(|n| n * page + next(page)) {
                                        let i = i.min(size - 1);
                                        assert_eq!(*p.add(i), 0, "thread {t}: zeroed block, byte {i} of {size}");
                                    }
                                }
                                mark_pages(p, 0, size, step);
                                live.push((p, size, step));
                            }
                            2 if !live.is_empty() => {
                                let i = next(live.len());
                                let (p, old, seed) = live[i];
                                check_pages(p, old, seed, "before realloc");
                                let q = OxMalloc.realloc(p, layout(old), size);
                                assert!(!q.is_null(), "thread {t}: realloc to {size} refused");
                                check_pages(q, old.min(size), seed, "after realloc");
                                if size > old {
                                    mark_pages(q, old, size, seed);
                                }
                                live[i] = (q, size, seed);
                            }
                            _ if !live.is_empty() => {
                                let (p, size, seed) = live.swap_remove(next(live.len()));
                                check_pages(p, size, seed, "before free");
                                OxMalloc.dealloc(p, layout(size));
                            }
                            _ => {}
                        }
                    }
                }
                for (p, size, seed) in live {
                    // SAFETY: as above.
                    unsafe {
                        check_pages(p, size, seed, "at the end");
                        OxMalloc.dealloc(p, layout(size));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a thread failed");
    }
}

fn fresh_memory_after_a_purge_backs_off() {
    const PIECE: usize = 6 * MIB;
    const BIGGER: usize = 20 * MIB;
    let delay = oxmalloc::stats().purge_delay_ms;
    assert_eq!(delay, 5, "OXMALLOC_PURGE_DELAY=5 not in effect");
    // SAFETY: every pointer comes from OxMalloc with the layout it is used
    // with, is live, and is accessed within its size.
    unsafe {
        let p = OxMalloc.alloc(layout(PIECE));
        assert!(!p.is_null());
        fill(p, PIECE, 1);
        let purged_before = oxmalloc::stats().purged_bytes;
        OxMalloc.dealloc(p, layout(PIECE));
        // The timer purges the cached mapping (no background purger here:
        // `collect(false)` runs what is due).
        let start = std::time::Instant::now();
        while oxmalloc::stats().purged_bytes < purged_before + PIECE as u64 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the cached mapping was not purged"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
            oxmalloc::collect(false);
        }
        assert_eq!(
            oxmalloc::stats().purge_delay_ms,
            delay,
            "the delay moved before any reuse"
        );
        // Nothing backed to join: the block is fresh memory.
        let q = OxMalloc.alloc(layout(BIGGER));
        assert!(!q.is_null());
        assert_eq!(
            oxmalloc::stats().purge_delay_ms,
            2 * delay,
            "fresh memory right after a cache purge did not double the delay"
        );
        OxMalloc.dealloc(q, layout(BIGGER));
    }
}

fn over_aligned_free_spares_its_neighbour() {
    let page = page_size();
    for align in [4 * MIB, 8 * MIB] {
        // SAFETY: the block comes from OxMalloc with this layout; the probe
        // is placed with MAP_FIXED_NOREPLACE, which never replaces a mapping.
        unsafe {
            let layout = Layout::from_size_align(page, align).unwrap();
            let p = OxMalloc.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            p.write_bytes(0x5A, page);
            // Whatever the mapping really covers, map a probe page in the
            // first free page after the block within the next 2 MiB.
            let probe = (1..2 * MIB / page).map(|i| p as usize + i * page).find(|&at| {
                let r = libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                );
                if r != libc::MAP_FAILED && r as usize != at {
                    // A kernel before 4.17 took the address as a hint.
                    libc::munmap(r, page);
                }
                r as usize == at
            });
            OxMalloc.dealloc(p, layout);
            if let Some(at) = probe {
                assert!(
                    mapped(at, page),
                    "freeing a {align}-aligned block unmapped the page mapped at {:#x}, {} bytes after it",
                    at,
                    at - p as usize
                );
                libc::munmap(at as *mut libc::c_void, page);
            }
        }
    }
}
