//! Indexed pages (blocks above 1 KiB, `page.rs`, `FreeIndex`): the owner's
//! frees go to a free index in the chunk header, so that reusing a freed
//! block reads nothing of it (docs/PERFORMANCE.md E34). Checked with the
//! block's memory made inaccessible between its free and its reuse: a pop
//! that read a link in the block would crash the test.

#![cfg(not(feature = "secure"))]

use std::alloc::Layout;
use std::collections::BTreeSet;
use std::process::Command;

/// Sizes of several indexed classes: one a page holds 56 of, blocks
/// sharing OS pages, blocks of whole OS pages, and multi-slice pages.
const SIZES: [usize; 5] = [1100, 2048, 4096, 24 * 1024, 60 * 1024];

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Sets the protection of the OS pages overlapping `[addr, addr + len)`.
fn protect(addr: *mut u8, len: usize, prot: libc::c_int) {
    let page = page_size();
    let start = addr as usize & !(page - 1);
    let end = (addr as usize + len).next_multiple_of(page);
    // SAFETY: the range covers a live or freed block of ours (and, for
    // blocks smaller than a page, its neighbours in the same page, which
    // nothing touches while they are inaccessible).
    let r = unsafe { libc::mprotect(start as *mut libc::c_void, end - start, prot) };
    assert_eq!(r, 0, "mprotect({start:#x}): {}", std::io::Error::last_os_error());
}

#[test]
fn a_freed_big_block_is_reused_without_being_read() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    for size in SIZES {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..3).map(|_| heap.alloc(layout)).collect();
        for &b in &blocks {
            assert!(!b.is_null());
            // SAFETY: a live block of `size` bytes.
            unsafe { b.write_bytes(0x5A, size) };
        }
        let freed = blocks[1];
        // SAFETY: allocated from `heap` with `layout`, freed once.
        unsafe { heap.dealloc(freed, layout) };
        protect(freed, size, libc::PROT_NONE);
        // The last block freed is the first reused; taking it must not
        // read it (with a link in the block, this faults).
        let again = heap.alloc(layout);
        protect(freed, size, libc::PROT_READ | libc::PROT_WRITE);
        assert_eq!(again, freed, "{size} B: the block freed last is reused first");
        // SAFETY: live blocks of `size` bytes, each freed once.
        unsafe {
            again.write_bytes(0x3C, size);
            for &b in [blocks[0], again, blocks[2]].iter() {
                heap.dealloc(b, layout);
            }
        }
    }
}

/// Blocks on the free index are free to the heap walk, and the walk sees
/// every live block, against a set of the live blocks kept by the test.
#[test]
fn the_heap_walk_skips_indexed_free_blocks() {
    let mut heap = oxmalloc::Heap::new().expect("a heap");
    let mut live = BTreeSet::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..2_000 {
        let size = SIZES[next() as usize % SIZES.len()];
        let layout = Layout::from_size_align(size, 8).unwrap();
        if next() % 3 != 0 || live.is_empty() {
            let b = heap.alloc(layout);
            assert!(!b.is_null());
            assert!(live.insert((b as usize, size)), "round {round}: {b:p} handed out twice");
        } else {
            let pick = *live.iter().nth(next() as usize % live.len()).unwrap();
            live.remove(&pick);
            let layout = Layout::from_size_align(pick.1, 8).unwrap();
            // SAFETY: a live block of this heap with this layout, freed once.
            unsafe { heap.dealloc(pick.0 as *mut u8, layout) };
        }
    }
    let mut seen = BTreeSet::new();
    heap.walk(|block, usable| {
        seen.insert(block as usize);
        assert!(usable >= 1100, "{block:p}: {usable} usable bytes");
        true
    });
    let expected: BTreeSet<usize> = live.iter().map(|&(b, _)| b).collect();
    assert_eq!(seen, expected, "the walk reports exactly the live blocks");
    heap.destroy();
}

/// A block freed again after the index already holds every carved block
/// of its page stops the process with one line naming the error and the
/// block (pushing it would overflow the index). Run in a child process.
#[test]
fn a_double_free_that_would_overflow_the_index_is_fatal() {
    if let Ok(case) = std::env::var("INDEXED_PAGES_DOUBLE_FREE_CHILD") {
        assert_eq!(case, "1");
        let heap = oxmalloc::Heap::new().expect("a heap");
        let layout = Layout::from_size_align(2048, 8).unwrap();
        // A fresh page: one carved block.
        let b = heap.alloc(layout);
        println!("block {:#x}", b as usize);
        // SAFETY: the first free is valid; the second is the error under test.
        unsafe {
            heap.dealloc(b, layout);
            heap.dealloc(b, layout);
        }
        println!("survived");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_double_free_that_would_overflow_the_index_is_fatal",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("INDEXED_PAGES_DOUBLE_FREE_CHILD", "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let block = stdout
        .lines()
        .find_map(|l| l.split("block ").nth(1))
        .unwrap_or_else(|| panic!("the child did not run the case:\n{stdout}\n{stderr}"));
    assert!(!out.status.success(), "the double free went unnoticed:\n{stdout}");
    assert!(!stdout.contains("survived"));
    assert!(
        stderr.contains(&format!("oxmalloc: error: double free of {block}")),
        "stderr: {stderr}"
    );
}

/// A thread that exits leaves its pages to others (abandoned), free index
/// included: a page whose only room is in its index must count as having
/// room, and its indexed blocks must be handed out again, never a live one.
/// (The class, 3 KiB blocks, is used by no other test of this binary, so
/// no other test's heap reclaims the page first.)
#[test]
fn an_abandoned_page_is_reclaimed_with_its_free_index() {
    use std::alloc::GlobalAlloc;
    let layout = Layout::from_size_align(3000, 8).unwrap();
    // A page of 3 KiB blocks holds 21: allocate them all (the page is
    // fully carved), free every other one (into the index), exit.
    let (freed, kept) = std::thread::spawn(move || {
        let blocks: Vec<usize> = (0..21)
            // SAFETY: a valid layout.
            .map(|_| unsafe { oxmalloc::OxMalloc.alloc(layout) } as usize)
            .collect();
        let (mut freed, mut kept) = (Vec::new(), Vec::new());
        for (i, &b) in blocks.iter().enumerate() {
            assert_ne!(b, 0);
            if i % 2 == 0 {
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { oxmalloc::OxMalloc.dealloc(b as *mut u8, layout) };
                freed.push(b);
            } else {
                // SAFETY: a live block of 3000 bytes.
                unsafe { (b as *mut u8).write_bytes(0x77, 3000) };
                kept.push(b);
            }
        }
        (freed, kept)
    })
    .join()
    .unwrap();
    let again: Vec<usize> = (0..freed.len())
        // SAFETY: a valid layout.
        .map(|_| unsafe { oxmalloc::OxMalloc.alloc(layout) } as usize)
        .collect();
    let freed_set: BTreeSet<usize> = freed.iter().copied().collect();
    for &b in &again {
        assert!(!kept.contains(&b), "{b:#x}: a live block handed out");
        // SAFETY: a live block of 3000 bytes.
        unsafe { (b as *mut u8).write_bytes(0x11, 3000) };
    }
    let reused = again.iter().filter(|b| freed_set.contains(b)).count();
    assert_eq!(
        reused,
        freed.len(),
        "the abandoned page's indexed blocks come back first"
    );
    for &b in &kept {
        // SAFETY: the other thread's writes are visible after `join`.
        assert!((0..3000).all(|i| unsafe { *(b as *const u8).add(i) } == 0x77));
    }
    for &b in again.iter().chain(&kept) {
        // SAFETY: live blocks allocated with `layout`, each freed once.
        unsafe { oxmalloc::OxMalloc.dealloc(b as *mut u8, layout) };
    }
}
