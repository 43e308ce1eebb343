//! Warms the machine's free memory before each measured run.
//!
//! On a virtual machine whose host reclaims the guest's free memory (free
//! page reporting, a balloon), the first touch of a page the guest freed a
//! while ago faults on the host as well: several times the system time of
//! a touch of memory freed a moment ago. Which run pays that depended on
//! what ran before it, not on its allocator: realloc-growth with oxmalloc
//! took 0.23-0.26 s right after a process had touched and freed 768 MiB,
//! and 0.71-0.78 s three seconds later, with the same faults
//! (docs/PERFORMANCE.md E36). So before each run the runner touches and
//! releases as much memory as the job's largest peak so far (and a quarter
//! more), in huge pages where the system gives them: the run then starts
//! on memory the host still backs, as it would on a machine of its own.
//! The warm-up is not timed.
//!
//! The warm-up must not show in the next run's peak RSS: a program started
//! through `vfork`/`posix_spawn` inherits the runner's peak (`VmHWM`) in
//! its `ru_maxrss` (the kernel keeps the larger of the two at `exec`), so
//! after each warm-up the runner resets its own peak (`/proc/self/clear_refs`,
//! `5`); where it cannot, it stops warming rather than inflate the figures.

use crate::sample::Sample;
use std::collections::HashMap;

/// Bytes warmed before a job's first run, and at least before any run.
const MIN_WARM: usize = 256 << 20;
/// Bytes warmed at most.
const MAX_WARM: usize = 4 << 30;
/// The alignment and size the kernel backs with a transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Remembers each job's largest peak RSS and warms that much before it runs.
#[derive(Debug, Default)]
pub struct Warmer {
    enabled: bool,
    peak_kib: HashMap<String, u64>,
}

impl Warmer {
    /// A warmer that warms (`enabled`) or does nothing.
    pub fn new(enabled: bool) -> Self {
        Warmer {
            enabled,
            peak_kib: HashMap::new(),
        }
    }

    /// Whether it warms.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Bytes to warm before a run of `job`.
    pub fn size_for(&self, job: &str) -> usize {
        let peak = self.peak_kib.get(job).copied().unwrap_or(0) as usize * 1024;
        (peak + peak / 4).clamp(MIN_WARM, MAX_WARM)
    }

    /// Warms memory for `job`, makes the run, and remembers its peak when
    /// it succeeded.
    pub fn run(&mut self, job: &str, run: impl FnOnce() -> Sample) -> Sample {
        self.before(job);
        let sample = run();
        if sample.ok {
            self.after(job, sample.max_rss_kib);
        }
        sample
    }

    /// Call right before a run of `job`.
    fn before(&mut self, job: &str) {
        if self.enabled && !touch_and_release(self.size_for(job)) {
            eprintln!(
                "oxbench: cannot reset the runner's peak RSS (/proc/self/clear_refs): runs without warm-up from now on"
            );
            self.enabled = false;
        }
    }

    /// Call after a run of `job` that peaked at `peak_kib`.
    fn after(&mut self, job: &str, peak_kib: u64) {
        let e = self.peak_kib.entry(job.to_string()).or_insert(0);
        *e = (*e).max(peak_kib);
    }
}

/// Maps `bytes` of fresh memory (in huge pages where the system allows),
/// writes one byte in every 4 KiB page, unmaps it and resets this
/// process's peak RSS to its current RSS. Touches nothing when the mapping
/// is refused (warming only helps the measurement). Returns `false` when
/// the peak could not be reset.
pub fn touch_and_release(bytes: usize) -> bool {
    touch(bytes);
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn touch(bytes: usize) {
    let len = bytes + HUGE_PAGE;
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // touches no existing memory; the result is checked before use.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return;
    }
    let start = (base as usize).next_multiple_of(HUGE_PAGE);
    // SAFETY: `[start, start+bytes)` lies inside the mapping just made
    // (`start` is at most one huge page past `base`, and the mapping is one
    // huge page longer than `bytes`); madvise only advises (failure is fine,
    // e.g. where THP is off).
    unsafe { libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE) };
    for at in (start..start + bytes).step_by(4096) {
        // SAFETY: inside our own writable mapping, which nothing else uses.
        unsafe { std::ptr::write_volatile(at as *mut u8, 1) };
    }
    // SAFETY: exactly the mapping made above, no longer used.
    unsafe { libc::munmap(base, len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_a_quarter_more_than_the_largest_peak_within_bounds() {
        let mut w = Warmer::new(false);
        assert_eq!(w.size_for("realloc-growth@1"), MIN_WARM, "unknown job");
        w.after("realloc-growth@1", 400 << 10);
        w.after("realloc-growth@1", 300 << 10);
        assert_eq!(w.size_for("realloc-growth@1"), 500 << 20, "the largest peak, +25%");
        w.after("larson@2", 10 << 10);
        assert_eq!(w.size_for("larson@2"), MIN_WARM, "at least the minimum");
        w.after("huge@1", 100 << 20);
        assert_eq!(w.size_for("huge@1"), MAX_WARM, "at most the maximum");
        assert_eq!(w.size_for("realloc-growth@1"), 500 << 20, "jobs kept apart");
    }

    fn status_kib(field: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn touch_and_release_gives_the_memory_back_and_leaves_no_peak() {
        let size = status_kib("VmSize:");
        let hwm = status_kib("VmHWM:").max(status_kib("VmRSS:"));
        // 1 GiB in all: a kept mapping or a kept peak would show, other
        // tests' memory does not reach it.
        for _ in 0..4 {
            assert!(touch_and_release(256 << 20), "cannot reset the peak RSS");
        }
        let (size_after, hwm_after) = (status_kib("VmSize:"), status_kib("VmHWM:"));
        assert!(
            size_after < size + (256 << 10),
            "VmSize {size} -> {size_after} KiB: warm-up mappings stayed"
        );
        assert!(
            hwm_after < hwm + (128 << 10),
            "VmHWM {hwm} -> {hwm_after} KiB: the warm-up shows in the peak"
        );
    }
}
