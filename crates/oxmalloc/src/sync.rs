//! Synchronisation primitives that never allocate.
//!
//! The engine imports its atomics from here (`crate::sync::atomic`): a
//! module that must also run under a model checker names only this path,
//! and its test provides loom's atomics under the same name (see
//! `thread_free.rs` and `tests/loom_thread_free.rs`).

pub use core::sync::atomic;

use crate::os::{Os, Platform};
use atomic::{AtomicU32, Ordering};
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// A futex-based mutual-exclusion lock (0 = free, 1 = held, 2 = held with waiters).
///
/// Held only on slow paths (arena, abandoned pages, metadata pools). It
/// spins briefly before sleeping, since the critical sections are short.
/// Taking it first registers the `fork` handlers when the process needs
/// them and they are not yet (`fork::before_lock`).
pub struct Mutex<T> {
    state: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `value`, so sharing the mutex
// shares `T` only with one thread at a time, which needs `T: Send`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the `T` it owns.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> Self {
        Mutex {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, blocking while another thread holds it.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        crate::fork::before_lock();
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        MutexGuard { mutex: self }
    }

    /// Takes the lock if it is free.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        crate::fork::before_lock();
        self.state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| MutexGuard { mutex: self })
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..100 {
            if self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            core::hint::spin_loop();
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            Os::wait(&self.state, 2);
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            Os::wake(&self.state, 1);
        }
    }

    /// Takes the lock and keeps it without a guard (before `fork`).
    pub fn lock_for_fork(&self) {
        core::mem::forget(self.lock());
    }

    /// Releases a lock taken by [`Mutex::lock_for_fork`] (parent after `fork`).
    ///
    /// # Safety
    /// The calling thread must hold the lock through `lock_for_fork`.
    pub unsafe fn unlock_after_fork(&self) {
        self.unlock();
    }

    /// Resets the lock to free in a child process after `fork`, where the
    /// thread that held it no longer exists.
    ///
    /// # Safety
    /// Only in the child of `fork`, while it is still single-threaded.
    pub unsafe fn reset_in_child(&self) {
        self.state.store(0, Ordering::Relaxed);
    }
}

/// Proof of holding a [`Mutex`]; releases it when dropped.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this thread holds the lock.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this thread holds the lock, and `&mut self`
        // makes this the only reference through it.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::sync::Arc;

    #[test]
    fn mutex_serialises_increments() {
        let m = Arc::new(Mutex::new(0u64));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 80_000);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let m = Mutex::new(());
        let g = m.lock();
        assert!(m.try_lock().is_none());
        drop(g);
        assert!(m.try_lock().is_some());
    }
}
