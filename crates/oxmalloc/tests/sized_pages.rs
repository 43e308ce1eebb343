//! Pages of request-sized blocks (`Heap::page_block_size`): a class above
//! 1 KiB that keeps being asked for one size gets pages whose blocks are
//! that size rounded to 16 bytes, not the class size (docs/PERFORMANCE.md
//! E52). Checked here: such blocks appear, and no request ever gets a block
//! too small or misaligned for it, whichever page is current, against a
//! model of every live block's extent and contents.

#![cfg(not(feature = "secure"))]

use std::alloc::Layout;
use std::collections::BTreeMap;

/// sqlite's page-cache entry: a 4 KiB page and a 272 B header, in the
/// 5,120 B class (4,097-5,120 B), whose pages hold 12 such blocks.
const ODD: usize = 4368;
/// The largest request of `ODD`'s class.
const CLASS_MAX: usize = 5120;

/// The next number of a xorshift sequence (the tests' sizes and choices).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A live block and the byte it was filled with.
struct Live {
    layout: Layout,
    fill: u8,
}

/// Live blocks by address; checks that each block is aligned, holds its
/// request (`usable_size`), overlaps no other, and keeps its contents.
#[derive(Default)]
struct Model {
    live: BTreeMap<usize, Live>,
    fills: u8,
}

impl Model {
    fn alloc(&mut self, heap: &oxmalloc::Heap, size: usize, align: usize) -> usize {
        let layout = Layout::from_size_align(size, align).unwrap();
        let p = heap.alloc(layout);
        assert!(!p.is_null(), "{size} B at {align}: out of memory");
        let addr = p as usize;
        assert_eq!(addr % align, 0, "{size} B at {align}: block {addr:#x} misaligned");
        let usable = oxmalloc::usable_size(p);
        assert!(usable >= size, "{size} B: block {addr:#x} holds only {usable}");
        if let Some((&before, b)) = self.live.range(..addr).next_back() {
            assert!(
                before + b.layout.size() <= addr,
                "{addr:#x} overlaps the block at {before:#x}"
            );
        }
        if let Some((&after, _)) = self.live.range(addr..).next() {
            assert!(
                addr + size <= after,
                "{addr:#x} ({size} B) overlaps the block at {after:#x}"
            );
        }
        self.fills = self.fills.wrapping_add(1) | 1;
        // SAFETY: a live block of `size` bytes.
        unsafe { p.write_bytes(self.fills, size) };
        self.live.insert(
            addr,
            Live {
                layout,
                fill: self.fills,
            },
        );
        addr
    }

    fn free(&mut self, heap: &oxmalloc::Heap, addr: usize) {
        let b = self.live.remove(&addr).expect("a live block");
        let p = addr as *mut u8;
        // SAFETY: a live block of `b.layout.size()` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(p, b.layout.size()) };
        if let Some(i) = bytes.iter().position(|&x| x != b.fill) {
            panic!(
                "block {addr:#x} ({} B): byte {i} is {:#x}, written {:#x}",
                b.layout.size(),
                bytes[i],
                b.fill
            );
        }
        // SAFETY: allocated from `heap` with this layout, freed once.
        unsafe { heap.dealloc(p, b.layout) };
    }

    /// Allocates `n` blocks of `ODD` bytes, the last of which must already
    /// be request-sized (`n` is well past the run that makes such pages).
    fn odd_run(&mut self, heap: &oxmalloc::Heap, n: usize) -> Vec<usize> {
        let addrs: Vec<usize> = (0..n).map(|_| self.alloc(heap, ODD, 8)).collect();
        assert_eq!(
            oxmalloc::usable_size(addrs[n - 1] as *const u8),
            ODD,
            "request-sized pages are made"
        );
        addrs
    }

    fn free_all(&mut self, heap: &oxmalloc::Heap) {
        let addrs: Vec<usize> = self.live.keys().copied().collect();
        for a in addrs {
            self.free(heap, a);
        }
    }
}

#[test]
fn one_size_asked_for_over_and_over_gets_blocks_of_that_size() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let mut model = Model::default();
    let addrs: Vec<usize> = (0..300).map(|_| model.alloc(&heap, ODD, 8)).collect();
    let sized = addrs
        .iter()
        .filter(|&&a| oxmalloc::usable_size(a as *const u8) == ODD)
        .count();
    // The first pages (before the run of slow-path requests is long enough)
    // have class-size blocks; the later ones request-sized blocks.
    assert!(
        sized >= 200,
        "{sized} of 300 blocks of {ODD} B are request-sized; expected most"
    );
    // Request-sized blocks fit 15 to a 64 KiB page, class-size ones 12.
    let last = addrs[299];
    let slice = |a: usize| a >> 16;
    let same_page = addrs.iter().filter(|&&a| slice(a) == slice(last)).count();
    let full_pages: Vec<usize> = addrs
        .iter()
        .map(|&a| slice(a))
        .filter(|&s| addrs.iter().filter(|&&a| slice(a) == s).count() == 15)
        .collect();
    assert!(
        !full_pages.is_empty(),
        "no 64 KiB page holds 15 blocks of {ODD} B (the last one holds {same_page})"
    );
    model.free_all(&heap);
}

#[test]
fn two_sizes_of_one_class_asked_for_in_turn_get_blocks_of_the_larger() {
    // sqlite asks for 4,104 B in `ODD`'s class now and then, between its
    // page-cache entries (E74): a run of one exact size broke at each.
    const SMALLER: usize = 4104;
    let heap = oxmalloc::Heap::new().expect("a heap");
    let mut model = Model::default();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let addrs: Vec<usize> = (0..600)
        .map(|_| {
            let size = if xorshift(&mut rng) % 3 == 0 { SMALLER } else { ODD };
            model.alloc(&heap, size, 8)
        })
        .collect();
    let usable = |a: usize| oxmalloc::usable_size(a as *const u8);
    let sized = addrs.iter().filter(|&&a| usable(a) == ODD).count();
    assert!(
        sized >= 500,
        "{sized} of 600 blocks of {SMALLER} or {ODD} B are {ODD} B; expected most"
    );
    assert!(
        addrs[550..].iter().all(|&a| usable(a) == ODD),
        "a late block of the run is not {ODD} B"
    );
    model.free_all(&heap);
}

#[test]
fn sizes_spread_over_a_class_keep_class_size_pages() {
    // Sizes that all fit blocks of `ODD` bytes, but many of them: no run of
    // one or two sizes, so the pages keep class-size blocks, which serve
    // every request of the class without a slow path.
    let heap = oxmalloc::Heap::new().expect("a heap");
    let mut model = Model::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let addrs: Vec<usize> = (0..600)
        .map(|_| model.alloc(&heap, 4097 + (xorshift(&mut rng) >> 8) as usize % (ODD - 4096), 8))
        .collect();
    let sized = addrs
        .iter()
        .filter(|&&a| oxmalloc::usable_size(a as *const u8) < CLASS_MAX)
        .count();
    assert!(
        sized <= 30,
        "{sized} of 600 blocks of sizes spread over 4,097-{ODD} B are request-sized"
    );
    model.free_all(&heap);
}

#[test]
fn other_requests_of_the_class_never_get_a_block_too_small() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let mut model = Model::default();
    let odd = model.odd_run(&heap, 200);
    // Free a block of a request-sized page: its page becomes the class's
    // current page (E40), where the requests below must not be served.
    model.free(&heap, odd[190]);
    let big = model.alloc(&heap, CLASS_MAX, 8);
    assert!(oxmalloc::usable_size(big as *const u8) >= CLASS_MAX);
    // Alignments that pick this class, and ones that pick a larger one.
    for (i, align) in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096].into_iter().enumerate() {
        model.free(&heap, odd[150 + i]);
        model.alloc(&heap, ODD, align);
    }
    // The odd size still reuses the request-sized blocks freed above.
    let again = model.alloc(&heap, ODD, 8);
    assert!(oxmalloc::usable_size(again as *const u8) >= ODD);
    model.free_all(&heap);
}

#[test]
fn mixed_sizes_and_alignments_against_the_model() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let mut model = Model::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || xorshift(&mut rng);
    for round in 0..20_000 {
        let r = next();
        // Runs of one size (which make request-sized pages), broken now and
        // then by other sizes and alignments of the same classes.
        let (size, align) = match r % 16 {
            0 => (4097 + (r >> 8) as usize % (CLASS_MAX - 4096), 8),
            1 => (ODD, 64 << ((r >> 8) % 4)),
            2 => (1025 + (r >> 8) as usize % 127, 8),
            3 => (9000 + (r >> 8) as usize % 200, 8),
            4..=6 => (1040, 16),
            7..=9 => (9000, 8),
            _ => (ODD, 8),
        };
        if model.live.len() > 400 || (r >> 32) % 3 == 0 && !model.live.is_empty() {
            let nth = (r >> 40) as usize % model.live.len();
            let addr = *model.live.keys().nth(nth).unwrap();
            model.free(&heap, addr);
        } else {
            model.alloc(&heap, size, align);
        }
        if round % 5_000 == 4_999 {
            model.free_all(&heap);
        }
    }
    model.free_all(&heap);
}

#[test]
fn realloc_out_of_a_request_sized_block_keeps_the_contents() {
    let heap = oxmalloc::Heap::new().expect("a heap");
    let mut model = Model::default();
    let addr = model.odd_run(&heap, 100)[99];
    let live = model.live.remove(&addr).unwrap();
    // SAFETY: a live block of `heap` with that layout.
    let grown = unsafe { heap.realloc(addr as *mut u8, live.layout, CLASS_MAX) };
    assert!(!grown.is_null());
    assert!(oxmalloc::usable_size(grown) >= CLASS_MAX);
    // SAFETY: the grown block holds `CLASS_MAX` bytes, the first `ODD` copied.
    let bytes = unsafe { std::slice::from_raw_parts(grown, ODD) };
    assert!(bytes.iter().all(|&b| b == live.fill), "realloc lost the contents");
    // SAFETY: allocated with `CLASS_MAX` bytes at 8 by the realloc.
    unsafe { heap.dealloc(grown, Layout::from_size_align(CLASS_MAX, 8).unwrap()) };
    model.free_all(&heap);
}
