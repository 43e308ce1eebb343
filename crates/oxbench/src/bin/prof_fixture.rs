//! Test fixture of `oxbench prof` (tests/prof.rs): oxmalloc as the global
//! allocator, one dominant allocation site (`dominant_site`, 90% of the
//! bytes by default) and one minor one (`minor_site`), kept live while the
//! profile is written with `oxmalloc::profile::dump`, then freed.
//!
//! Usage: `oxbench-prof-fixture PROFILE [DOMINANT_BLOCKS MINOR_BLOCKS]`,
//! with `OXMALLOC_PROF` set (it turns sampling on; the exit dump it asks
//! for is written after the frees, so it holds almost nothing).

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

use std::ffi::CString;
use std::hint::black_box;

const BLOCK: usize = 4096;

#[inline(never)]
fn dominant_site(blocks: usize, keep: &mut Vec<Box<[u8]>>) {
    for i in 0..blocks {
        keep.push(black_box(vec![i as u8; BLOCK].into_boxed_slice()));
    }
}

#[inline(never)]
fn minor_site(blocks: usize, keep: &mut Vec<Box<[u8]>>) {
    for i in 0..blocks {
        keep.push(black_box(vec![(i * 3) as u8; BLOCK].into_boxed_slice()));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: oxbench-prof-fixture PROFILE [DOMINANT_BLOCKS MINOR_BLOCKS]");
        std::process::exit(2);
    };
    let number = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (dominant, minor) = (number(2, 2304), number(3, 256));
    // Room for every block up front, so that growing `keep` adds nothing
    // to either site.
    let mut keep = Vec::with_capacity(dominant + minor);
    dominant_site(dominant, &mut keep);
    minor_site(minor, &mut keep);
    let path = CString::new(path.as_str()).expect("a path without NUL");
    let (taken, live, dropped) = oxmalloc::profile::counts();
    println!("samples taken {taken}, live {live}, dropped {dropped}");
    if !oxmalloc::profile::dump(&path) {
        eprintln!("oxbench-prof-fixture: the profile was not written");
        std::process::exit(1);
    }
    let checksum: u64 = keep.iter().map(|b| u64::from(b[BLOCK / 2])).sum();
    println!("dumped {} blocks (checksum {checksum})", keep.len());
    drop(keep);
}
