//! `realloc` resizes in place where the span or the mapping allows: the
//! pointer does not move when a large block shrinks, when it grows into
//! free slices right after it, when a huge block shrinks (its tail is
//! unmapped), and when a huge block grows into free address space
//! (`mremap` in place). When the space after a huge block is taken, it
//! moves, with its contents.
//!
//! Whether the neighbours are free must not depend on what other threads
//! do meanwhile: each case re-runs this test binary with one test thread
//! (the harness's main thread only waits for it), no background purger
//! and a long purge delay (nothing marks the freed slices "purging"), so
//! the only thread that maps memory or takes slices is the case itself.
//! Each case frees a block's tail and then grows the block back into it.
//!
//! `oxmalloc::expand` (the case `expand`) resizes the same way and never
//! moves: where `realloc` would move, it fails.
//!
//! The hardened build moves on every resize that leaves the block's size
//! class or needs a new guard page, so these cases are for the default
//! build.

#![cfg(not(feature = "secure"))]

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

mod common;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CASE_VAR: &str = "OX_REALLOC_CASE";
const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// A transparent huge page (x86-64): huge mappings are sized in these.
const HUGE_PAGE: usize = 2 * MIB;

fn run_case(case: &str) {
    common::run_child_case(CASE_VAR, case, &[]);
}

/// The child side: does nothing unless the case variable is set.
#[test]
fn child() {
    common::serve_child_case(
        CASE_VAR,
        &[
            ("large", large_shrinks_and_grows_in_place),
            ("huge", huge_shrinks_and_grows_in_place),
            ("huge-blocked", huge_growth_blocked_by_a_mapping_moves),
            ("expand", expand_resizes_in_place_or_not_at_all),
        ],
    );
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn byte(i: usize) -> u8 {
    (i.wrapping_mul(131) % 251) as u8
}

/// # Safety
/// `p` must be valid for writes of `len` bytes.
unsafe fn fill(p: *mut u8, len: usize) {
    for i in 0..len {
        // SAFETY: caller's contract.
        unsafe { *p.add(i) = byte(i) };
    }
}

/// # Safety
/// `p` must be valid for reads of `len` bytes.
unsafe fn check(p: *const u8, len: usize, what: &str) {
    // SAFETY: caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    if let Some(i) = (0..len).find(|&i| bytes[i] != byte(i)) {
        panic!("{what}: byte {i} is {:#x}, expected {:#x}", bytes[i], byte(i));
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Whether every page of `[addr, addr + len)` is mapped (`mincore` fails
/// with ENOMEM on a range that holds an unmapped page). Allocates nothing,
/// so that no chunk gets mapped into the space a case has just freed.
fn mapped(addr: usize, len: usize) -> bool {
    let page = page_size();
    let mut vec = [0u8; 8192];
    assert!(len.div_ceil(page) <= vec.len(), "mapped(): {len} bytes is too long");
    // SAFETY: `vec` has a byte per page of the range; mincore only reads
    // the page tables.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr()) };
    if r == 0 {
        return true;
    }
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!(errno, Some(libc::ENOMEM), "mincore({addr:#x}, {len})");
    false
}

/// A large block (a span of 64 KiB slices) shrinks in place, giving its
/// tail back to the arena; then grows in place into those free slices.
fn large_shrinks_and_grows_in_place() {
    const BIG: usize = MIB; // 16 slices
    const SMALL: usize = 300 * KIB; // 5 slices
                                    // SAFETY: every pointer comes from OxMalloc with the layout it is used
                                    // with, is live, and is accessed within its size.
    unsafe {
        let p = OxMalloc.alloc(layout(BIG));
        assert!(!p.is_null());
        fill(p, BIG);
        let spans_before = oxmalloc::stats().spans.current;
        let q = OxMalloc.realloc(p, layout(BIG), SMALL);
        assert_eq!(q, p, "shrinking a large block {BIG} -> {SMALL} moved it");
        check(q, SMALL, "after the shrink");
        let usable = oxmalloc::usable_size(q);
        assert!((SMALL..BIG).contains(&usable), "after the shrink: usable size {usable}");
        let spans_after = oxmalloc::stats().spans.current;
        assert!(
            spans_after + (BIG - usable) as u64 <= spans_before,
            "the tail was not given back: spans {spans_before} -> {spans_after} bytes"
        );
        // The tail's slices are free (nothing took them since): growing
        // back takes them in place.
        let r = OxMalloc.realloc(q, layout(SMALL), BIG);
        assert_eq!(r, p, "growing a large block {SMALL} -> {BIG} into free slices moved it");
        check(r, SMALL, "after the growth");
        assert!(oxmalloc::usable_size(r) >= BIG);
        fill(r, BIG);
        check(r, BIG, "the grown block");
        // A second shrink and growth, by less than a slice's worth each way.
        let s = OxMalloc.realloc(r, layout(BIG), BIG - 100 * KIB);
        assert_eq!(s, p, "shrinking {BIG} -> {} moved it", BIG - 100 * KIB);
        let t = OxMalloc.realloc(s, layout(BIG - 100 * KIB), BIG);
        assert_eq!(t, p, "growing back to {BIG} moved it");
        check(t, BIG - 100 * KIB, "after the second growth");
        OxMalloc.dealloc(t, layout(BIG));
    }
}

/// A huge block shrinks in place (its tail unmapped), then grows in place
/// into the address space the shrink freed (`mremap` without moving).
fn huge_shrinks_and_grows_in_place() {
    const BIG: usize = 24 * MIB;
    const SMALL: usize = 8 * MIB;
    const GROWN: usize = 20 * MIB;
    let page = page_size();
    // SAFETY: every pointer comes from OxMalloc with the layout it is used
    // with, is live, and is accessed within its size.
    unsafe {
        let p = OxMalloc.alloc(layout(BIG));
        assert!(!p.is_null());
        fill(p, page);
        fill(p.add(SMALL - page), page);
        let reserved_before = oxmalloc::stats().reserved.current;
        let q = OxMalloc.realloc(p, layout(BIG), SMALL);
        assert_eq!(q, p, "shrinking a huge block {BIG} -> {SMALL} moved it");
        let reserved_after = oxmalloc::stats().reserved.current;
        assert_eq!(
            reserved_before - reserved_after,
            (BIG - SMALL) as u64,
            "the shrink did not unmap the tail"
        );
        assert!(mapped(p as usize, SMALL), "the kept part is not mapped");
        // With huge pages advised (the default) a huge mapping ends on a
        // huge-page boundary (its header, one slice below the block, is
        // chunk-aligned): the slack up to it stays, nothing after it.
        let mapping_end = (p as usize + SMALL).next_multiple_of(HUGE_PAGE);
        assert!(
            mapped(p as usize, mapping_end - p as usize),
            "the shrunk mapping is not whole"
        );
        assert!(
            !mapped(mapping_end, page),
            "the first page past the shrunk mapping is still mapped"
        );
        assert!(
            !mapped(p as usize + BIG - page, page),
            "the old last page is still mapped"
        );
        check(q, page, "first page after the shrink");
        check(q.add(SMALL - page), page, "last page after the shrink");
        // Nothing was mapped since the tail went away: it is free address
        // space, and the growth happens there.
        let r = OxMalloc.realloc(q, layout(SMALL), GROWN);
        assert_eq!(
            r, p,
            "growing a huge block {SMALL} -> {GROWN} into free address space moved it"
        );
        assert!(mapped(p as usize, GROWN), "the grown block is not all mapped");
        check(r, page, "first page after the growth");
        check(r.add(SMALL - page), page, "old last page after the growth");
        // The growth is fresh memory, writable to its end.
        r.add(GROWN - 1).write_volatile(0x5A);
        assert_eq!(r.add(GROWN - 1).read_volatile(), 0x5A);
        assert_eq!(
            oxmalloc::stats().reserved.current - reserved_after,
            (GROWN - SMALL) as u64
        );
        OxMalloc.dealloc(r, layout(GROWN));
    }
}

/// Takes the page of address space at `at`, so that no mapping can grow
/// into it: maps an inaccessible page there unless something is already
/// mapped (`MAP_FIXED_NOREPLACE` never replaces a mapping). Returns the
/// page it mapped (for [`release_probe`]), or `None` when one was there.
fn block_address_at(at: usize) -> Option<*mut libc::c_void> {
    let page = page_size();
    // SAFETY: a new anonymous mapping, which replaces nothing.
    let probe = unsafe {
        libc::mmap(
            at as *mut libc::c_void,
            page,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    let ours = probe != libc::MAP_FAILED && probe as usize == at;
    if probe != libc::MAP_FAILED && !ours {
        // A kernel before 4.17 took the address as a hint.
        // SAFETY: the page just mapped elsewhere, used by nothing.
        unsafe { libc::munmap(probe, page) };
    }
    assert!(ours || mapped(at, page), "nothing blocks the space at {at:#x}");
    ours.then_some(probe)
}

/// Unmaps a page [`block_address_at`] mapped, after checking it is still there.
fn release_probe(probe: Option<*mut libc::c_void>) {
    if let Some(probe) = probe {
        assert!(mapped(probe as usize, page_size()), "the probe mapping went away");
        // SAFETY: our probe page, used by nothing.
        unsafe { libc::munmap(probe, page_size()) };
    }
}

/// When the address space after a huge block is taken (here by a mapping
/// of our own), growing it moves it, contents and all.
fn huge_growth_blocked_by_a_mapping_moves() {
    const SIZE: usize = 8 * MIB;
    const GROWN: usize = 12 * MIB;
    // SAFETY: every pointer comes from OxMalloc with the layout it is used
    // with, is live, and is accessed within its size.
    unsafe {
        let p = OxMalloc.alloc(layout(SIZE));
        assert!(!p.is_null());
        fill(p, SIZE);
        let probe = block_address_at(p as usize + SIZE);
        let q = OxMalloc.realloc(p, layout(SIZE), GROWN);
        assert!(!q.is_null());
        assert_ne!(q, p, "the block grew over the mapping after it");
        check(q, SIZE, "the moved block");
        q.add(GROWN - 1).write_volatile(0x5A);
        release_probe(probe);
        OxMalloc.dealloc(q, layout(GROWN));
    }
}

/// `oxmalloc::expand` never moves: a class block fits up to its usable
/// size; a large block shrinks, then grows back into its freed tail, and
/// fails past the largest span; a huge block shrinks (its tail unmapped),
/// fits any large size as it is, grows back into the address space it
/// freed, and fails where a mapping after it would make `realloc` move
/// it. A failed call leaves the block as it was.
fn expand_resizes_in_place_or_not_at_all() {
    const BIG: usize = MIB;
    const SMALL: usize = 300 * KIB;
    const HUGE: usize = 8 * MIB;
    const HUGE_KEPT: usize = 5 * MIB;
    // SAFETY: every pointer comes from OxMalloc with the layout it is used
    // with, is live, and is accessed within its usable size.
    unsafe {
        let c = OxMalloc.alloc(layout(100));
        let usable = oxmalloc::usable_size(c);
        assert!(oxmalloc::expand(c, usable), "a class block to its usable size {usable}");
        assert!(
            !oxmalloc::expand(c, usable + 1),
            "a class block past its usable size {usable}"
        );
        assert_eq!(oxmalloc::usable_size(c), usable);
        OxMalloc.dealloc(c, layout(100));
        assert!(!oxmalloc::expand(std::ptr::null_mut(), 10), "null");

        let p = OxMalloc.alloc(layout(BIG));
        assert!(!p.is_null());
        fill(p, BIG);
        let spans_before = oxmalloc::stats().spans.current;
        assert!(oxmalloc::expand(p, SMALL), "shrinking a large block {BIG} -> {SMALL}");
        let shrunk = oxmalloc::usable_size(p);
        assert!((SMALL..BIG).contains(&shrunk), "after the shrink: usable size {shrunk}");
        assert!(
            oxmalloc::stats().spans.current + (BIG - shrunk) as u64 <= spans_before,
            "the tail was not given back"
        );
        check(p, SMALL, "after the shrink");
        assert!(oxmalloc::expand(p, BIG), "growing {SMALL} -> {BIG} into the free tail");
        assert!(oxmalloc::usable_size(p) >= BIG);
        check(p, SMALL, "after the growth");
        fill(p, BIG);
        assert!(!oxmalloc::expand(p, 64 * MIB), "a large block past the largest span");
        assert!(oxmalloc::usable_size(p) >= BIG, "the failed growth changed the block");
        check(p, BIG, "after the failed growth");
        OxMalloc.dealloc(p, layout(BIG));

        let h = OxMalloc.alloc(layout(HUGE));
        assert!(!h.is_null());
        fill(h, HUGE_KEPT);
        let reserved_before = oxmalloc::stats().reserved.current;
        assert!(
            oxmalloc::expand(h, HUGE_KEPT),
            "shrinking a huge block {HUGE} -> {HUGE_KEPT}"
        );
        let shrunk = oxmalloc::usable_size(h);
        assert!(
            (HUGE_KEPT..HUGE).contains(&shrunk),
            "after the shrink: usable size {shrunk}"
        );
        assert!(
            oxmalloc::stats().reserved.current < reserved_before,
            "the shrink did not unmap the tail"
        );
        check(h, HUGE_KEPT, "the huge block after the shrink");
        assert!(oxmalloc::expand(h, SMALL), "a huge block to a large size");
        assert_eq!(
            oxmalloc::usable_size(h),
            shrunk,
            "a huge block became smaller than huge"
        );
        // Nothing was mapped since the tail went away: the mapping grows there.
        assert!(
            oxmalloc::expand(h, HUGE),
            "growing {HUGE_KEPT} -> {HUGE} into the freed tail"
        );
        assert!(oxmalloc::usable_size(h) >= HUGE);
        assert!(mapped(h as usize, HUGE), "the grown block is not all mapped");
        check(h, HUGE_KEPT, "the huge block after the growth");
        h.add(HUGE - 1).write_volatile(0x5A);
        // A mapping right past the block's mapping (which ends at most a huge
        // page past the block) blocks a growth past it: expand fails where
        // realloc would move, and the block stays as it was.
        let usable = oxmalloc::usable_size(h);
        let probe = block_address_at((h as usize + usable).next_multiple_of(HUGE_PAGE));
        assert!(
            !oxmalloc::expand(h, usable + 2 * HUGE_PAGE),
            "a huge block grew over the mapping after it"
        );
        assert_eq!(oxmalloc::usable_size(h), usable, "the failed growth changed the block");
        check(h, HUGE_KEPT, "the huge block after the failed growth");
        release_probe(probe);
        OxMalloc.dealloc(h, layout(HUGE));
    }
}

#[test]
fn expand_resizes_in_place_or_fails() {
    run_case("expand");
}

#[test]
fn large_block_shrinks_and_grows_in_place() {
    run_case("large");
}

#[test]
fn huge_block_shrinks_and_grows_in_place() {
    run_case("huge");
}

#[test]
fn huge_block_moves_when_the_space_after_it_is_taken() {
    run_case("huge-blocked");
}
