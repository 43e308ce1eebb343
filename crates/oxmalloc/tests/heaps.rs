//! First-class heaps: destroy, delete, cross-thread frees, walking, and a
//! hashbrown map over a heap.

use oxmalloc::{Heap, OxMalloc};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::{Mutex, MutexGuard};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

/// RSS-sensitive tests run one at a time. The statistics and the resident
/// size are process-wide, so every test of this file takes the lock: one
/// that allocates while another measures would skew the measure.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes [`SERIAL`] (a test that failed while holding it does not fail the others).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn count_live(heap: &mut Heap) -> usize {
    let mut n = 0;
    assert!(heap.walk(|_, _| {
        n += 1;
        true
    }));
    n
}

#[test]
fn destroy_frees_every_block_and_the_memory_comes_back() {
    let _serial = serial();
    oxmalloc::collect(true);
    let rss_before = oxmalloc::resident_bytes();
    let allocated_before = oxmalloc::stats().allocated.current;
    let heap = Heap::new().unwrap();
    let mut blocks = 0usize;
    for i in 0..400_000usize {
        let size = 64 + (i % 7) * 100;
        let p = heap.alloc(Layout::from_size_align(size, 8).unwrap());
        assert!(!p.is_null());
        // SAFETY: a fresh block of `size` bytes.
        unsafe { p.write_bytes(0xAB, size) };
        blocks += 1;
    }
    // A few large and huge blocks too.
    for size in [100_000usize, 1 << 20, 10 << 20] {
        let p = heap.alloc(Layout::from_size_align(size, 8).unwrap());
        assert!(!p.is_null());
        // SAFETY: a fresh block of `size` bytes.
        unsafe { p.write_bytes(1, size) };
        blocks += 1;
    }
    let allocated_mid = oxmalloc::stats().allocated.current;
    let rss_mid = oxmalloc::resident_bytes();
    assert!(
        allocated_mid >= allocated_before + (100 << 20),
        "stats missed the heap's blocks"
    );
    assert!(blocks > 0);
    heap.destroy();
    oxmalloc::collect(true);
    let allocated_after = oxmalloc::stats().allocated.current;
    let rss_after = oxmalloc::resident_bytes();
    eprintln!(
        "allocated {} -> {} -> {} MiB; rss {} -> {} -> {} MiB",
        allocated_before >> 20,
        allocated_mid >> 20,
        allocated_after >> 20,
        rss_before >> 20,
        rss_mid >> 20,
        rss_after >> 20
    );
    assert!(
        allocated_after < allocated_before + (4 << 20),
        "destroy left blocks counted as live"
    );
    assert!(
        rss_after < rss_before + (16 << 20),
        "destroy did not give the memory back"
    );
}

#[test]
fn delete_keeps_blocks_valid() {
    let _serial = serial();
    let heap = Heap::new().unwrap();
    let layout = Layout::from_size_align(40, 8).unwrap();
    let mut ptrs = Vec::new();
    for i in 0..10_000usize {
        let p = heap.alloc(layout);
        // SAFETY: fresh 40-byte blocks.
        unsafe { p.cast::<usize>().write(i) };
        ptrs.push(p);
    }
    let big = heap.alloc(Layout::from_size_align(300_000, 8).unwrap());
    // SAFETY: a fresh block.
    unsafe { big.write_bytes(7, 300_000) };
    heap.delete();
    // The blocks still hold their data and are freed as ordinary blocks.
    for (i, &p) in ptrs.iter().enumerate() {
        // SAFETY: delete handed the blocks to the default heap; they are live.
        unsafe {
            assert_eq!(p.cast::<usize>().read(), i);
            OxMalloc.dealloc(p, layout);
        }
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(*big.add(299_999), 7);
        OxMalloc.dealloc(big, Layout::from_size_align(300_000, 8).unwrap());
    }
    // The default heap keeps working with the adopted pages.
    let v: Vec<u64> = (0..100_000).collect();
    assert_eq!(v[99_999], 99_999);
}

#[test]
fn walk_visits_exactly_the_live_blocks() {
    let _serial = serial();
    let mut heap = Heap::new().unwrap();
    assert_eq!(count_live(&mut heap), 0);
    let layout = Layout::from_size_align(24, 8).unwrap();
    let ptrs: Vec<*mut u8> = (0..1000).map(|_| heap.alloc(layout)).collect();
    let big = heap.alloc(Layout::from_size_align(200_000, 8).unwrap());
    assert_eq!(count_live(&mut heap), 1001);
    for &p in ptrs.iter().step_by(2) {
        // SAFETY: live blocks of the heap.
        unsafe { heap.dealloc(p, layout) };
    }
    // SAFETY: as above.
    unsafe { heap.dealloc(big, Layout::from_size_align(200_000, 8).unwrap()) };
    assert_eq!(count_live(&mut heap), 500);
    let mut seen = Vec::new();
    heap.walk(|p, size| {
        assert!(size >= 24);
        seen.push(p);
        true
    });
    seen.sort();
    let mut expect: Vec<*mut u8> = ptrs.iter().copied().skip(1).step_by(2).collect();
    expect.sort();
    assert_eq!(seen, expect);
    heap.destroy();
}

#[test]
fn blocks_of_a_heap_can_be_freed_by_other_threads() {
    let _serial = serial();
    let mut heap = Heap::new().unwrap();
    let layout = Layout::from_size_align(100, 8).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
    let freer = std::thread::spawn(move || {
        let mut freed = 0;
        for batch in rx {
            for p in batch {
                // SAFETY: blocks of oxmalloc's with this layout, handed over.
                unsafe { std::alloc::dealloc(p as *mut u8, layout) };
                freed += 1;
            }
        }
        freed
    });
    let mut kept = Vec::new();
    for round in 0..50 {
        let batch: Vec<usize> = (0..1000).map(|_| heap.alloc(layout) as usize).collect();
        kept.push(heap.alloc(layout) as usize);
        tx.send(batch).unwrap();
        if round % 10 == 0 {
            // Keep allocating while the other thread frees.
            let extra: Vec<usize> = (0..500).map(|_| heap.alloc(layout) as usize).collect();
            for p in extra {
                // SAFETY: live blocks of the heap.
                unsafe { heap.dealloc(p as *mut u8, layout) };
            }
        }
    }
    drop(tx);
    assert_eq!(freer.join().unwrap(), 50_000);
    assert_eq!(count_live(&mut heap), kept.len());
    heap.destroy();
}

/// Whether some live block of `heap` holds `addr`.
fn heap_holds(heap: &mut Heap, addr: usize) -> bool {
    let mut found = false;
    heap.walk(|p, size| {
        found = (p as usize..p as usize + size).contains(&addr);
        !found
    });
    found
}

#[test]
fn hashbrown_map_over_a_heap() {
    let _serial = serial();
    let mut heap = Heap::new().unwrap();
    let (map_entry, set_entry) = {
        let mut map = hashbrown::HashMap::new_in(&heap);
        for i in 0..100_000u64 {
            map.insert(i, i * 3);
        }
        for i in 0..100_000u64 {
            assert_eq!(map[&i], i * 3);
        }
        map.retain(|k, _| k % 2 == 0);
        assert_eq!(map.len(), 50_000);
        let mut v = allocator_api2_vec(&heap);
        v.extend(0..10_000u32);
        assert_eq!(v.iter().map(|&x| x as u64).sum::<u64>(), 49_995_000);
        // Addresses inside the tables' memory (an entry lives in its table).
        let map_entry = map.get_key_value(&4242).unwrap().0 as *const u64 as usize;
        let set_entry = v.get(&777).unwrap() as *const u32 as usize;
        // Keep the tables allocated but end their borrow of `heap`, so that
        // it can be walked; `destroy` frees them below.
        std::mem::forget(map);
        std::mem::forget(v);
        (map_entry, set_entry)
    };
    // The tables' memory came from the heap (an `Allocator` that fell back
    // to the global allocator would leave the heap without any block).
    assert!(count_live(&mut heap) >= 2, "the heap has no live block for the tables");
    assert!(
        heap_holds(&mut heap, map_entry),
        "the map's table is not a block of the heap"
    );
    assert!(
        heap_holds(&mut heap, set_entry),
        "the set's table is not a block of the heap"
    );
    heap.destroy();
}

fn allocator_api2_vec(heap: &Heap) -> hashbrown::HashSet<u32, hashbrown::DefaultHashBuilder, &Heap> {
    hashbrown::HashSet::with_hasher_in(hashbrown::DefaultHashBuilder::default(), heap)
}

#[test]
fn realloc_into_a_heap_keeps_contents() {
    let _serial = serial();
    let mut heap = Heap::new().unwrap();
    let mut layout = Layout::from_size_align(16, 8).unwrap();
    let mut p = heap.alloc(layout);
    // SAFETY: fresh block.
    unsafe { p.write_bytes(9, 16) };
    for size in [100usize, 5000, 70_000, 2_000_000, 9_000_000, 32] {
        // SAFETY: `p` is live with `layout`.
        let q = unsafe { heap.realloc(p, layout, size) };
        assert!(!q.is_null());
        // SAFETY: the first 16 bytes were kept.
        unsafe {
            for i in 0..16 {
                assert_eq!(*q.add(i), 9);
            }
        }
        layout = Layout::from_size_align(size, 8).unwrap();
        p = q;
    }
    assert_eq!(count_live(&mut heap), 1);
    heap.destroy();
}
