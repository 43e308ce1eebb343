//! Allocation from Rust `thread_local!` destructors (CHECKLIST C30): each
//! of 200 threads leaves a thread-local value whose destructor frees the
//! thread's blocks, allocates and frees more, and hands a block to the main
//! thread. No crash, the blocks are intact, and no thread heap is left
//! behind once every thread has been joined.

use std::cell::RefCell;
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

struct Holder {
    blocks: Vec<Vec<u64>>,
    out: mpsc::Sender<Vec<u64>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        for (i, b) in self.blocks.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as u64), "a thread's block was corrupted");
        }
        self.blocks.clear();
        let churn: Vec<Box<[u8]>> = (0..100).map(|i| vec![i as u8; 1 + i * 37].into_boxed_slice()).collect();
        drop(churn);
        let _ = self.out.send(vec![7u64; 300]);
    }
}

thread_local! {
    static HOLDER: RefCell<Option<Holder>> = const { RefCell::new(None) };
}

#[test]
fn thread_local_destructors_allocate_and_free() {
    let before = oxmalloc::stats().threads.current;
    let (tx, rx) = mpsc::channel();
    for _ in 0..20 {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let out = tx.clone();
                std::thread::spawn(move || {
                    let blocks = (0..50).map(|i| vec![i as u64; 1 + i * 13]).collect();
                    HOLDER.with(|h| *h.borrow_mut() = Some(Holder { blocks, out }));
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread failed");
        }
    }
    drop(tx);
    let handed: Vec<Vec<u64>> = rx.iter().collect();
    assert_eq!(handed.len(), 200, "every destructor ran");
    assert!(handed.iter().all(|b| b.iter().all(|&x| x == 7)));
    drop(handed);
    let after = oxmalloc::stats().threads.current;
    assert_eq!(after, before, "thread heaps left behind by exited threads");
    assert_eq!(oxmalloc::stats().errors, 0);
}
