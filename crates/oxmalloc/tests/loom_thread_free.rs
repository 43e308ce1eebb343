//! Model checks (loom) of the concurrent protocols around a page's
//! `thread_free` list, on the engine's own `thread_free.rs` compiled against
//! loom's atomics:
//!
//! * remote frees pushing (one block, or a chain of held frees) while the
//!   owner takes the whole list: no block is lost or seen twice;
//! * the full-page handshake: when the owner parks a page (asks to be
//!   notified) while a remote free races, either the park fails (the owner
//!   sees the block) or exactly one pusher reports the notification;
//! * abandonment and reclaim: the owner abandons a page (last collection,
//!   then publishes it under a lock) while a remote free races; a reclaimer
//!   takes the page under the lock; every block ends up collected exactly once.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p oxmalloc --release --test loom_thread_free`
//! (`scripts/test-extra/loom.sh`).

#![cfg(loom)]

mod sync {
    pub use loom::sync::atomic;
}

#[path = "../src/thread_free.rs"]
#[allow(dead_code)]
mod thread_free;

use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use thread_free::ThreadFree;

/// A fake block: a link cell (blocks are 8-aligned addresses; we use
/// indices * 8 and keep the links in an array of atomics).
struct Blocks {
    links: Vec<AtomicUsize>,
}

impl Blocks {
    fn new(n: usize) -> Arc<Blocks> {
        Arc::new(Blocks {
            links: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        })
    }
    fn addr(i: usize) -> usize {
        (i + 1) * 8
    }
    /// The fake block `addr` as the pointer the list stores (never dereferenced).
    fn ptr(addr: usize) -> *mut u8 {
        std::ptr::without_provenance_mut(addr)
    }
    fn link(&self, addr: usize, next: usize) {
        self.links[addr / 8 - 1].store(next, Ordering::Relaxed);
    }
    fn next(&self, addr: usize) -> usize {
        self.links[addr / 8 - 1].load(Ordering::Relaxed)
    }
    /// Walks a list taken with `take_all`, returning the addresses; the
    /// count the list's word carried must be the walked length.
    fn walk(&self, (head, count): (*mut u8, usize)) -> Vec<usize> {
        let seen = self.walk_from(head);
        assert_eq!(seen.len(), count, "the list's count disagrees with its length");
        seen
    }

    /// Walks a list from `head`, returning the addresses.
    fn walk_from(&self, head: *mut u8) -> Vec<usize> {
        let mut head = head as usize;
        let mut out = Vec::new();
        while head != 0 {
            out.push(head);
            assert!(out.len() <= self.links.len(), "cycle in the list");
            head = self.next(head);
        }
        out
    }
}

#[test]
fn pushes_racing_with_take_all_lose_nothing() {
    loom::model(|| {
        let list = Arc::new(ThreadFree::from_word(AtomicPtr::new(std::ptr::null_mut())));
        let blocks = Blocks::new(2);
        let pushers: Vec<_> = (0..2)
            .map(|i| {
                let (list, blocks) = (list.clone(), blocks.clone());
                thread::spawn(move || {
                    let b = Blocks::addr(i);
                    list.push(Blocks::ptr(b), |next| blocks.link(b, next as usize));
                })
            })
            .collect();
        let mut seen = blocks.walk(list.take_all());
        for p in pushers {
            p.join().unwrap();
        }
        seen.extend(blocks.walk(list.take_all()));
        seen.sort();
        assert_eq!(seen, vec![Blocks::addr(0), Blocks::addr(1)]);
        assert!(!list.has_blocks());
    });
}

#[test]
fn a_chain_push_racing_with_a_push_and_take_all_loses_nothing() {
    // A thread publishes its held frees (blocks 0 -> 1, `held_frees.rs`)
    // while another pushes block 2 and the owner takes the list.
    loom::model(|| {
        let list = Arc::new(ThreadFree::from_word(AtomicPtr::new(std::ptr::null_mut())));
        let blocks = Blocks::new(3);
        let chain = {
            let (list, blocks) = (list.clone(), blocks.clone());
            thread::spawn(move || {
                let (head, tail) = (Blocks::addr(0), Blocks::addr(1));
                blocks.link(head, tail);
                list.push_chain(Blocks::ptr(head), 2, |next| blocks.link(tail, next as usize));
            })
        };
        let single = {
            let (list, blocks) = (list.clone(), blocks.clone());
            thread::spawn(move || {
                let b = Blocks::addr(2);
                list.push(Blocks::ptr(b), |next| blocks.link(b, next as usize));
            })
        };
        let mut seen = blocks.walk(list.take_all());
        chain.join().unwrap();
        single.join().unwrap();
        seen.extend(blocks.walk(list.take_all()));
        seen.sort();
        assert_eq!(seen, (0..3).map(Blocks::addr).collect::<Vec<_>>());
    });
}

#[test]
fn parking_a_full_page_never_misses_a_remote_free() {
    loom::model(|| {
        let list = Arc::new(ThreadFree::from_word(AtomicPtr::new(std::ptr::null_mut())));
        let blocks = Blocks::new(1);
        let notified = Arc::new(AtomicUsize::new(0));
        let pusher = {
            let (list, blocks, notified) = (list.clone(), blocks.clone(), notified.clone());
            thread::spawn(move || {
                let b = Blocks::addr(0);
                if list.push(Blocks::ptr(b), |next| blocks.link(b, next as usize)) {
                    notified.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let parked = list.try_park();
        pusher.join().unwrap();
        let taken = blocks.walk(list.take_all());
        assert_eq!(taken, vec![Blocks::addr(0)], "the block must be collectable");
        if parked {
            // The owner waits for a notification: the push must have sent it.
            assert_eq!(notified.load(Ordering::Relaxed), 1);
        } else {
            // The park failed because the block was already there.
            assert_eq!(notified.load(Ordering::Relaxed), 0);
        }
    });
}

#[test]
fn abandon_and_reclaim_race_with_a_remote_free() {
    loom::model(|| {
        let list = Arc::new(ThreadFree::from_word(AtomicPtr::new(std::ptr::null_mut())));
        let blocks = Blocks::new(2);
        // The abandoned-pages list: `true` when the page is on it.
        let abandoned = Arc::new(Mutex::new(false));
        let collected = Arc::new(Mutex::new(Vec::new()));
        // Block 0 was freed remotely before the owner starts abandoning.
        list.push(Blocks::ptr(Blocks::addr(0)), |next| {
            blocks.link(Blocks::addr(0), next as usize)
        });
        let remote = {
            let (list, blocks) = (list.clone(), blocks.clone());
            thread::spawn(move || {
                let b = Blocks::addr(1);
                list.push(Blocks::ptr(b), |next| blocks.link(b, next as usize));
            })
        };
        let owner = {
            let (list, blocks, abandoned, collected) =
                (list.clone(), blocks.clone(), abandoned.clone(), collected.clone());
            thread::spawn(move || {
                // Last collection, then publish the page.
                collected.lock().unwrap().extend(blocks.walk(list.take_all()));
                *abandoned.lock().unwrap() = true;
            })
        };
        let reclaimer = {
            let (list, blocks, abandoned, collected) =
                (list.clone(), blocks.clone(), abandoned.clone(), collected.clone());
            thread::spawn(move || {
                let mut on_list = abandoned.lock().unwrap();
                if *on_list {
                    *on_list = false;
                    // Holding the list lock makes us the page's owner.
                    collected.lock().unwrap().extend(blocks.walk(list.take_all()));
                }
            })
        };
        remote.join().unwrap();
        owner.join().unwrap();
        reclaimer.join().unwrap();
        // Whoever owns the page last collects what is left.
        let mut all = collected.lock().unwrap().clone();
        all.extend(blocks.walk(list.take_all()));
        all.sort();
        assert_eq!(
            all,
            vec![Blocks::addr(0), Blocks::addr(1)],
            "each block collected exactly once"
        );
    });
}
