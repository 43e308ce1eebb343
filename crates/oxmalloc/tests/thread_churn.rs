//! Thread churn: 10,000 short-lived threads, each leaving one live block
//! that another thread frees after it exited. Dead threads' pages must be
//! reclaimed: memory stays bounded by the live set, not the thread count.

use oxmalloc::OxMalloc;
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

fn rss_mib() -> f64 {
    oxmalloc::resident_bytes() as f64 / (1 << 20) as f64
}

#[test]
fn ten_thousand_short_threads_keep_memory_bounded() {
    const THREADS: usize = 10_000;
    const BATCH: usize = 10;
    let mut previous: Vec<Box<[u8]>> = Vec::new();
    let mut rss_at_1000 = 0.0;
    let mut abandoned_at_1000 = 0;
    for batch in 0..THREADS / BATCH {
        let (tx, rx) = mpsc::channel::<Box<[u8]>>();
        let handles: Vec<_> = (0..BATCH)
            .map(|i| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    // A little churn, then leave one block behind.
                    let scratch: Vec<Vec<u8>> = (0..20).map(|k| vec![k as u8; 16 + k * 24]).collect();
                    drop(scratch);
                    let size = [24usize, 128, 700, 5000][(batch + i) % 4];
                    tx.send(vec![(batch % 251) as u8; size].into_boxed_slice()).unwrap();
                })
            })
            .collect();
        drop(tx);
        for h in handles {
            h.join().unwrap();
        }
        // Free the previous batch's blocks: their owners have exited.
        for b in previous.drain(..) {
            assert!(b.iter().all(|&x| x == b[0]), "block contents changed");
        }
        previous = rx.iter().collect();
        assert_eq!(previous.len(), BATCH);
        if batch == 1000 / BATCH {
            rss_at_1000 = rss_mib();
            abandoned_at_1000 = oxmalloc::stats().pages_abandoned_now;
        }
    }
    drop(previous);
    oxmalloc::collect(true);
    let rss_end = rss_mib();
    let stats = oxmalloc::stats();
    eprintln!(
        "rss after 1000 threads {rss_at_1000:.1} MiB, after {THREADS}: {rss_end:.1} MiB; \
         abandoned pages now {} (at 1000: {abandoned_at_1000}), abandoned total {}, reclaimed {}",
        stats.pages_abandoned_now, stats.pages_abandoned, stats.pages_reclaimed
    );
    assert!(stats.pages_reclaimed > 0, "no abandoned page was ever reclaimed");
    assert!(
        rss_end < rss_at_1000 + 8.0,
        "memory grew with the number of threads: {rss_at_1000:.1} MiB -> {rss_end:.1} MiB"
    );
    assert!(
        stats.pages_abandoned_now < 64,
        "{} pages still abandoned",
        stats.pages_abandoned_now
    );
}

#[test]
fn frees_from_threads_that_never_allocated_do_not_grow_memory() {
    // Blocks made here are freed by raw pthreads that never allocate.
    let baseline = rss_mib();
    for _round in 0..50 {
        let blocks: Vec<usize> = (0..20_000)
            .map(|i| Box::into_raw(vec![1u8; 64 + i % 512].into_boxed_slice()) as *mut u8 as usize)
            .collect();
        let lens: Vec<usize> = (0..20_000).map(|i| 64 + i % 512).collect();
        let work = Box::into_raw(Box::new((blocks, lens)));
        extern "C" fn free_all(arg: *mut libc::c_void) -> *mut libc::c_void {
            let work = arg as *mut (Vec<usize>, Vec<usize>);
            // SAFETY: the main thread handed us the vectors and waits for us.
            unsafe {
                for (&b, &len) in (*work).0.iter().zip((*work).1.iter()) {
                    let slice = std::ptr::slice_from_raw_parts_mut(b as *mut u8, len);
                    drop(Box::from_raw(slice));
                }
            }
            std::ptr::null_mut()
        }
        // SAFETY: plain pthread calls with valid arguments; the worker owns `work` until it is joined.
        unsafe {
            let mut t: libc::pthread_t = std::mem::zeroed();
            assert_eq!(libc::pthread_create(&mut t, std::ptr::null(), free_all, work.cast()), 0);
            libc::pthread_join(t, std::ptr::null_mut());
            drop(Box::from_raw(work));
        }
    }
    oxmalloc::collect(true);
    let end = rss_mib();
    eprintln!("rss {baseline:.1} MiB -> {end:.1} MiB after 50 rounds of 20,000 remote frees");
    assert!(end < baseline + 24.0, "memory grew: {baseline:.1} MiB -> {end:.1} MiB");
}
