//! A tour of OxMalloc as the global allocator: allocates in several
//! threads, frees across threads, gives memory back, and prints what the
//! allocator did.
//!
//! Run with `cargo run --release -p oxmalloc --example demo`.

use std::collections::HashMap;
use std::time::Instant;

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let start = Instant::now();
    let rss_start = oxmalloc::resident_bytes() as u64;

    // Four threads build maps and strings; the main thread frees what they made.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut map = HashMap::new();
                for i in 0..200_000u64 {
                    map.insert(i, format!("thread {t} value {i}"));
                }
                map
            })
        })
        .collect();
    let maps: Vec<HashMap<u64, String>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let total: usize = maps.iter().map(|m| m.values().map(String::len).sum::<usize>()).sum();
    let rss_peak = oxmalloc::resident_bytes() as u64;
    drop(maps);

    // A large vector grown by doubling (realloc in place where possible).
    let mut big: Vec<u64> = Vec::new();
    for i in 0..20_000_000u64 {
        big.push(i);
    }
    let sum: u64 = big.iter().sum();
    drop(big);

    oxmalloc::collect(true);
    let rss_end = oxmalloc::resident_bytes() as u64;
    let s = oxmalloc::stats();
    println!(
        "oxmalloc demo ({} TLS, hardened: {})",
        oxmalloc::TLS_MODEL,
        oxmalloc::HARDENED
    );
    println!("  built 4 maps of 200,000 strings ({total} bytes of text) in 4 threads, freed on the main thread");
    println!("  grew a Vec<u64> to 20M elements (sum {sum})");
    println!(
        "  resident: start {:.1} MiB, peak {:.1} MiB, after collect {:.1} MiB",
        mib(rss_start),
        mib(rss_peak),
        mib(rss_end)
    );
    println!(
        "  reserved now {:.1} MiB (peak {:.1} MiB); purged {:.1} MiB in {} calls; pages abandoned {}, reclaimed {}",
        mib(s.reserved.current),
        mib(s.reserved.peak),
        mib(s.purged_bytes),
        s.purge_calls,
        s.pages_abandoned,
        s.pages_reclaimed
    );
    println!("  took {:.2} s", start.elapsed().as_secs_f64());
}
