//! The nightly `core::alloc::Allocator` implementation of `&Heap` (feature
//! `nightly`; run by `scripts/test-extra/nightly-features.sh`): std
//! collections allocate from the heap, grow and shrink through it, and
//! their memory is the heap's blocks.

#![cfg(feature = "nightly")]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

use oxmalloc::{Heap, OxMalloc};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

/// Whether some live block of `heap` holds `addr`, and how many are live.
fn find(heap: &mut Heap, addr: usize) -> (bool, usize) {
    let (mut found, mut live) = (false, 0);
    heap.walk(|p, size| {
        live += 1;
        found |= (p as usize..p as usize + size).contains(&addr);
        true
    });
    (found, live)
}

#[test]
fn std_collections_allocate_from_the_heap() {
    let mut heap = Heap::new().unwrap();
    let (vec_addr, box_addr) = {
        let mut v: Vec<u64, &Heap> = Vec::new_in(&heap);
        for i in 0..100_000u64 {
            v.push(i * 7);
        }
        v.truncate(10);
        v.shrink_to_fit();
        assert_eq!(v.iter().sum::<u64>(), 7 * 45);
        let b = Box::new_in([3u8; 300], &heap);
        assert!(b.iter().all(|&x| x == 3));
        let addrs = (v.as_ptr() as usize, b.as_ptr() as usize);
        // Keep both blocks but end their borrow of `heap` so it can be
        // walked; `destroy` frees them.
        std::mem::forget(v);
        std::mem::forget(b);
        addrs
    };
    let (vec_found, live) = find(&mut heap, vec_addr);
    assert!(vec_found, "the vector's buffer is not a block of the heap");
    assert!(find(&mut heap, box_addr).0, "the box is not a block of the heap");
    assert_eq!(
        live, 2,
        "blocks left after shrinking: the old buffers were not freed into the heap"
    );
    heap.destroy();
}

#[test]
fn zero_sized_allocations_do_not_touch_the_heap() {
    let mut heap = Heap::new().unwrap();
    let mut v: Vec<(), &Heap> = Vec::new_in(&heap);
    for _ in 0..1000 {
        v.push(());
    }
    assert_eq!(v.len(), 1000);
    drop(v);
    assert_eq!(find(&mut heap, 0).1, 0);
    heap.destroy();
}
