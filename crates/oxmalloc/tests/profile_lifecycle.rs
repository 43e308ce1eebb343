//! Heap profiling across the paths where a block dies or moves without an
//! ordinary `free`, and across `fork`:
//!
//! * `Heap::destroy` drops the samples of the blocks it frees (class pages,
//!   large and huge blocks), so that the live count and the dumped bytes
//!   come back and the sample table does not fill up with stale entries;
//! * a huge block that `realloc` moves with `mremap` keeps exactly one
//!   sample, which its `free` then drops;
//! * `fork` while another thread holds the sample table's lock (a dump
//!   into a pipe nobody reads fast) or a heap's `large` lock (a walk of
//!   its big blocks), and while threads churn with profiling on: every
//!   child allocates, frees a sampled block and exits in time.
//!
//! Profiling is process-wide and cannot be turned off, so every test here
//! samples every allocation, and they run one at a time.

use oxmalloc::{profile, Heap, OxMalloc};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

mod bare_thread;

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

static SERIAL: Mutex<()> = Mutex::new(());

/// The test lock, and the watchdog's deadline while a test runs.
struct Serial {
    _guard: MutexGuard<'static, ()>,
}

impl Drop for Serial {
    fn drop(&mut self) {
        DEADLINE_MS.store(u64::MAX, Ordering::Relaxed);
    }
}

/// When the running test must have finished (ms since `EPOCH`).
static DEADLINE_MS: AtomicU64 = AtomicU64::new(u64::MAX);
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Takes the test lock, makes sure every allocation is sampled, and arms a
/// watchdog: a deadlock in this process (rather than in a child) ends it
/// with a message instead of hanging the test run.
fn serial() -> Serial {
    static WATCHDOG: Once = Once::new();
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(200));
            if now_ms() > DEADLINE_MS.load(Ordering::Relaxed) {
                let msg = b"profile_lifecycle: a test hung (deadlock in the parent process)\n";
                // SAFETY: writing a static buffer to stderr, then leaving
                // without touching the (possibly deadlocked) allocator.
                unsafe {
                    libc::write(2, msg.as_ptr().cast(), msg.len());
                    libc::_exit(101);
                }
            }
        });
    });
    static QUIET_PANICS: Once = Once::new();
    QUIET_PANICS.call_once(|| {
        // No backtraces: symbolizing one caches the debug information for
        // good, whose thousands of (sampled) blocks would fill the sample
        // table and fail the tests after the first failure.
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    });
    DEADLINE_MS.store(now_ms() + 180_000, Ordering::Relaxed);
    assert!(profile::start(1), "profiling needs the unwinder (libgcc_s)");
    Serial { _guard: guard }
}

fn live_samples() -> u64 {
    profile::counts().1
}

fn dropped_samples() -> u64 {
    profile::counts().2
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("oxmalloc-prof-{}-{name}", std::process::id()))
}

/// The header totals of a dump (`heap profile: N: BYTES [...]`) and its
/// `# oxmalloc:` comment line.
fn dump_totals(name: &str) -> (u64, u64, String) {
    let path = temp_path(name);
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    assert!(profile::dump(&c_path), "the dump was not written");
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let header = text.lines().next().unwrap();
    let rest = header.strip_prefix("heap profile: ").expect(header);
    let first = rest.split('[').next().unwrap();
    let (n, bytes) = first.split_once(':').expect(header);
    let comment = text
        .lines()
        .nth(1)
        .filter(|l| l.starts_with("# oxmalloc:"))
        .unwrap_or_else(|| {
            panic!(
                "no `# oxmalloc:` line after the header:\n{}",
                &text[..text.len().min(400)]
            )
        })
        .to_string();
    (n.trim().parse().unwrap(), bytes.trim().parse().unwrap(), comment)
}

/// Remote frees into the page of the freeing thread's held chain take a
/// short path (`free::free_into_held_chain`), which must still drop the
/// samples of the blocks it frees.
#[test]
fn remote_frees_into_a_held_chain_drop_their_samples() {
    let _serial = serial();
    let layout = Layout::from_size_align(64, 8).unwrap();
    let mut blocks: Vec<usize> = Vec::with_capacity(512);
    let live_before = live_samples();
    for _ in 0..512 {
        // SAFETY: a valid layout; every block is freed once, below.
        let b = unsafe { OxMalloc.alloc(layout) };
        assert!(!b.is_null());
        blocks.push(b as usize);
    }
    let sampled = live_samples() - live_before;
    assert!(sampled > 0, "none of the blocks was sampled");
    // A bare thread frees only these blocks, one page after the other.
    bare_thread::free_on_bare_thread(&blocks, layout);
    // Within 2: the test harness's own thread may take or drop a sampled
    // block meanwhile (seen: one either way, in 6 of 12 runs).
    let left = live_samples();
    assert!(
        left <= live_before + 2,
        "{sampled} samples taken, {} of them left after the remote frees",
        left - live_before
    );
}

#[test]
fn destroy_drops_the_samples_of_the_blocks_it_frees() {
    let _serial = serial();
    let live_before = live_samples();
    let dropped_before = dropped_samples();
    let (_, bytes_before, _) = dump_totals("destroy-before");
    // Every allocation is sampled (about half of the small ones: the fast
    // path hands out the block after each sample): 6 rounds of 4000
    // small blocks overflow the 8191-slot table unless destroy forgets them.
    const HUGE: usize = 24 << 20;
    for round in 0..6 {
        let heap = Heap::new().unwrap();
        for i in 0..4000usize {
            let size = 16 + (i % 9) * 40;
            let p = heap.alloc(Layout::from_size_align(size, 8).unwrap());
            assert!(!p.is_null());
        }
        for size in [100_000usize, 300_000, HUGE] {
            assert!(!heap.alloc(Layout::from_size_align(size, 8).unwrap()).is_null());
        }
        let live_mid = live_samples();
        assert!(
            live_mid >= live_before + 1000,
            "round {round}: only {} samples live for 4003 blocks",
            live_mid - live_before
        );
        if round == 0 {
            let (_, bytes_mid, _) = dump_totals("destroy-mid");
            assert!(
                bytes_mid >= bytes_before + HUGE as u64,
                "the big blocks were not sampled: {bytes_before} -> {bytes_mid} bytes"
            );
        }
        heap.destroy();
        let live_after = live_samples();
        assert!(
            live_after <= live_before + 20,
            "round {round}: destroy left {} of {} samples live",
            live_after.saturating_sub(live_before),
            live_mid - live_before
        );
    }
    let (_, bytes_after, comment) = dump_totals("destroy-after");
    assert!(
        bytes_after < bytes_before + (1 << 20),
        "the dump still counts destroyed blocks: {bytes_before} -> {bytes_after} bytes ({comment})"
    );
    assert_eq!(
        dropped_samples(),
        dropped_before,
        "samples were dropped: the table filled with stale entries ({comment})"
    );
    assert!(comment.contains(" dropped "), "{comment}");
}

#[test]
fn huge_realloc_moved_by_mremap_keeps_exactly_one_sample() {
    let _serial = serial();
    let page = 4096;
    const SIZE: usize = 64 << 20;
    let (_, bytes_before, _) = dump_totals("realloc-before");
    let layout = Layout::from_size_align(SIZE, 8).unwrap();
    // SAFETY: a non-zero layout.
    let p = unsafe { GLOBAL.alloc(layout) };
    assert!(!p.is_null());
    // SAFETY: the first byte of our block.
    unsafe { p.write(7) };
    let (_, bytes_alloc, _) = dump_totals("realloc-alloc");
    // (Within 1 MiB: other samples come and go meanwhile.)
    assert!(
        bytes_alloc + (1 << 20) >= bytes_before + SIZE as u64,
        "the huge block was not sampled: {bytes_before} -> {bytes_alloc}"
    );
    // Occupy the page right after the block's mapping, so that `mremap`
    // cannot grow it in place and must move it.
    let guard = if cfg!(feature = "secure") { page } else { 0 };
    let after = p as usize + SIZE + guard;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let blocker = unsafe {
        libc::mmap(
            after as *mut libc::c_void,
            page,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    let blocked = blocker == after as *mut libc::c_void
        || (blocker == libc::MAP_FAILED && std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST));
    assert!(blocked, "could not occupy the page after the huge block");
    // SAFETY: `p` is live with `layout`; the new size is non-zero.
    let q = unsafe { GLOBAL.realloc(p, layout, 2 * SIZE) };
    assert!(!q.is_null());
    assert_ne!(q, p, "the block did not move");
    // SAFETY: the moved block kept its first byte.
    assert_eq!(unsafe { q.read() }, 7);
    let (_, bytes_moved, comment) = dump_totals("realloc-moved");
    // One sample, of the old size (moved along) or of the new one (a
    // hardened build moves by allocating, copying and freeing): not none,
    // and not the old one left behind besides.
    let grown = bytes_moved.saturating_sub(bytes_before);
    assert!(
        grown + (1 << 20) >= SIZE as u64 && grown < 3 * SIZE as u64,
        "after the move the profile holds {grown} bytes more (one sample of {SIZE} or {} expected; {comment})",
        2 * SIZE
    );
    // SAFETY: `q` is live with the new size.
    unsafe { GLOBAL.dealloc(q, Layout::from_size_align(2 * SIZE, 8).unwrap()) };
    let (_, bytes_freed, comment) = dump_totals("realloc-freed");
    assert!(
        bytes_freed < bytes_before + (1 << 20),
        "freeing the moved block left its sample behind: {bytes_before} -> {bytes_freed} bytes ({comment})"
    );
    if blocker != libc::MAP_FAILED {
        // SAFETY: the page we mapped.
        unsafe { libc::munmap(blocker, page) };
    }
}

/// Waits (a bounded time) until another thread raises `flag`.
fn wait_for(flag: &AtomicBool, what: &str) {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) {
        assert!(start.elapsed() < Duration::from_secs(30), "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Raises its flag when dropped (also when the test panics).
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Forks; the child runs `child` (which must only use the allocator and
/// async-signal-safe calls) and `_exit`s with its result; the parent
/// waits at most `limit` and returns the child's exit status (`None`: it
/// hung and was killed).
fn fork_and_wait(limit: Duration, child: impl FnOnce() -> i32) -> Option<i32> {
    // SAFETY: the child only runs `child` (allocator calls) and `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child();
        // SAFETY: leaving the child at once, without running destructors
        // or atexit handlers of the parent's state.
        unsafe { libc::_exit(code) };
    }
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        assert_eq!(r, 0, "waitpid failed");
        if start.elapsed() > limit {
            // SAFETY: our own child, hung.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What every child does: allocates (sampled: the unwinder and the sample
/// table), frees `sampled` (a block of the parent's with a sample), uses
/// a heap with a big block, and dumps. Returns 0, or which step failed.
fn child_work(sampled: usize) -> i32 {
    let small = Layout::from_size_align(48, 8).unwrap();
    let big = Layout::from_size_align(200_000, 8).unwrap();
    let before = live_samples();
    // SAFETY: non-zero layouts; every block is freed with its layout.
    unsafe {
        let a = GLOBAL.alloc(small);
        let b = GLOBAL.alloc(big);
        if a.is_null() || b.is_null() {
            return 2;
        }
        if live_samples() <= before {
            return 3;
        }
        GLOBAL.dealloc(a, small);
        GLOBAL.dealloc(b, big);
        if sampled != 0 {
            let live = live_samples();
            GLOBAL.dealloc(sampled as *mut u8, big);
            if live_samples() != live - 1 {
                return 4;
            }
        }
    }
    let Some(heap) = Heap::new() else { return 5 };
    if heap.alloc(big).is_null() || heap.alloc(small).is_null() {
        return 6;
    }
    heap.destroy();
    if !profile::dump(c"/dev/null") {
        return 7;
    }
    0
}

/// Allocates a big block (sampled) for a child to free; `exact`: no other
/// thread of the test allocates, so check that it took a sample (up to five
/// tries: the harness thread may still be reporting the previous test, see
/// `fork_while_a_walk_holds_a_heaps_large_lock`).
fn sampled_big_block(exact: bool) -> usize {
    let big = Layout::from_size_align(200_000, 8).unwrap();
    let mut attempt = 0;
    loop {
        let live = live_samples();
        // SAFETY: a non-zero layout.
        let p = unsafe { GLOBAL.alloc(big) };
        assert!(!p.is_null());
        let sampled = live_samples() == live + 1;
        attempt += 1;
        if !exact || sampled {
            return p as usize;
        }
        assert!(attempt < 5, "the big block was not sampled");
        free_big_block(p as usize);
    }
}

fn free_big_block(p: usize) {
    // SAFETY: a block from `sampled_big_block`.
    unsafe { GLOBAL.dealloc(p as *mut u8, Layout::from_size_align(200_000, 8).unwrap()) };
}

#[test]
fn fork_while_a_dump_holds_the_sample_table() {
    let _serial = serial();
    // Enough live samples that their dump overflows a pipe's buffer.
    let keep: Vec<Box<[u8; 40]>> = (0..3000).map(|_| Box::new([1; 40])).collect();
    let fifo = temp_path("fifo");
    let fifo_c = CString::new(fifo.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_file(&fifo);
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo_c.as_ptr(), 0o600) }, 0, "mkfifo failed");
    // A sampled block for the child to free (allocated now: once the dump
    // runs, this thread must not allocate, or it would wait for the table).
    let block = sampled_big_block(true);
    let reading = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fifo, reading) = (fifo.clone(), reading.clone());
        std::thread::spawn(move || {
            use std::io::Read;
            // Nothing here may allocate once the dump holds the table (an
            // allocation would wait for it, and the dump for this reader).
            let mut buf = vec![0u8; 4096];
            let mut f = std::fs::File::open(&fifo).unwrap();
            let mut total = 0;
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                total += n;
                if !reading.swap(true, Ordering::AcqRel) {
                    // The dump holds the table's lock until it has written
                    // everything: keep it waiting a while.
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        })
    };
    let dumper = {
        let fifo_c = fifo_c.clone();
        std::thread::spawn(move || profile::dump(&fifo_c))
    };
    wait_for(&reading, "the dump to start writing");
    let status = fork_and_wait(Duration::from_secs(20), || child_work(block));
    assert!(dumper.join().unwrap(), "the dump into the pipe failed");
    let bytes = reader.join().unwrap();
    assert!(bytes > 64 * 1024, "the dump ({bytes} bytes) fits in the pipe");
    let _ = std::fs::remove_file(&fifo);
    free_big_block(block);
    drop(keep);
    assert_eq!(
        status,
        Some(0),
        "the child forked while a dump held the sample table failed (None: it hung)"
    );
}

#[test]
fn fork_while_a_walk_holds_a_heaps_large_lock() {
    let _serial = serial();
    let holding = Arc::new(AtomicBool::new(false));
    let forked = Arc::new(AtomicBool::new(false));
    let block = Arc::new(AtomicUsize::new(0));
    let walker = {
        let (holding, forked, block) = (holding.clone(), forked.clone(), block.clone());
        std::thread::spawn(move || {
            let mut heap = Heap::new().unwrap();
            let big = Layout::from_size_align(200_000, 8).unwrap();
            // The live count is process-wide: the harness thread, reporting
            // the previous test, may allocate or free a sampled block between
            // the two reads (this failed about 1 run in 12). Such a race
            // cannot repeat five times; a block that is never sampled fails
            // every attempt.
            let mut attempt = 0;
            let (p, sampled) = loop {
                let live = live_samples();
                let p = heap.alloc(big);
                let sampled = live_samples() == live + 1;
                attempt += 1;
                if sampled || attempt == 5 {
                    break (p, sampled);
                }
                // SAFETY: allocated just above from `heap` with `big`.
                unsafe { heap.dealloc(p, big) };
            };
            block.store(p as usize, Ordering::Release);
            // Big blocks are visited with the heap's `large` lock held.
            heap.walk(|_, size| {
                if size >= 200_000 && !holding.swap(true, Ordering::AcqRel) {
                    std::thread::sleep(Duration::from_millis(300));
                }
                true
            });
            // Keep the heap (and its big block) alive until the fork: the
            // child frees the block in its copy; here it goes with the heap.
            while !forked.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            heap.destroy();
            sampled
        })
    };
    let status = {
        let _forked = RaiseOnDrop(forked);
        wait_for(&holding, "the walk to reach the big block");
        let p = block.load(Ordering::Acquire);
        assert!(p != 0, "the heap's big block was not allocated");
        // The child frees the heap's big block: its sample (the table) and
        // its heap's `large` list.
        fork_and_wait(Duration::from_secs(20), || child_work(p))
    };
    assert!(walker.join().unwrap(), "the heap's big block was not sampled");
    assert_eq!(
        status,
        Some(0),
        "the child forked while a walk held a heap's large lock failed (None: it hung)"
    );
}

#[test]
fn fork_repeatedly_while_threads_churn_with_profiling_and_heaps() {
    let _serial = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let heap = Heap::new().unwrap();
                    let mut kept = Vec::new();
                    for i in 0..200usize {
                        let size = 16 + (i * 37 + t) % 700;
                        assert!(!heap.alloc(Layout::from_size_align(size, 8).unwrap()).is_null());
                        kept.push(vec![t as u8; size]);
                        if i % 50 == 0 {
                            let big = Layout::from_size_align(150_000 + i, 8).unwrap();
                            let p = heap.alloc(big);
                            assert!(!p.is_null());
                            if i % 100 == 0 {
                                // SAFETY: a live block of this heap.
                                unsafe { heap.dealloc(p, big) };
                            }
                        }
                    }
                    heap.destroy();
                    drop(kept);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let mut failures = Vec::new();
    for i in 0..40 {
        let block = sampled_big_block(false);
        match fork_and_wait(Duration::from_secs(20), || child_work(block)) {
            Some(0) => {}
            other => failures.push((i, other)),
        }
        free_big_block(block);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(rounds > 0);
    assert!(failures.is_empty(), "children failed (None: hung): {failures:?}");
}
