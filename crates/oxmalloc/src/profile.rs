//! Heap profiling: a sample of the live allocations, with their call stacks.
//!
//! Turned on by `OXMALLOC_PROF=<path>` (or [`start`]); off, it costs nothing
//! on any path. About one allocation per `OXMALLOC_PROF_SAMPLE` bytes
//! (512 KiB by default) is sampled: its call stack is taken with the
//! system unwinder (`_Unwind_Backtrace` from libgcc_s, looked up at start)
//! into a fixed table, and forgotten when the block is freed. The live
//! samples are written on demand ([`dump`]) and at exit, in the legacy
//! text heap-profile format that `pprof` reads (counts and bytes already
//! scaled by the sampling, `@ heapprofile`), followed by the process's
//! memory map so that addresses can be symbolised offline
//! (`oxbench prof FILE` turns it into collapsed stacks and a flame graph).
//!
//! How sampling stays off the fast path: the allocation slow path keeps a
//! per-heap countdown of bytes. When it refills a page's free list, it cuts
//! the list so that the fast path hands out at most the countdown's worth
//! of blocks before coming back; so the slow path sees every sampling
//! point. Pages holding a sampled block send their frees to the slow path
//! (the owner word carries `OWNER_SLOW`), which drops the sample.
//!
//! Blocks that die without a `free` drop their samples too: the class
//! pages and big blocks of a destroyed heap ([`on_page_freed`],
//! [`on_free`] from `free_big_block`); a huge block that `realloc` moves
//! with `mremap` takes its sample along ([`on_moved`]). Otherwise stale
//! samples would stay in every dump and fill the table, and new samples
//! would be dropped.

use crate::heap::Heap;
use crate::os::{Os, Platform};
use crate::page::{Page, OWNER_SLOW};
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::sync::Mutex;
use crate::util::Line;
use crate::{options, stats};
use core::ffi::{c_char, c_int, c_void, CStr};
use core::ptr;

/// Frames kept per sample.
pub const MAX_FRAMES: usize = 40;
/// log2 of the capacity of the sample table (live samples beyond it are
/// dropped and counted).
const TABLE_BITS: u32 = 13;
const TABLE_SLOTS: usize = 1 << TABLE_BITS;

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Set once some page has taken a sample (never cleared). Until then a
/// free need not read `Page::samples`, which sits on the descriptor's
/// second line: a remote free reads the first line alone otherwise, and
/// each more line the owner's core holds is one more wait
/// (docs/PERFORMANCE.md E81, E102).
static SAMPLED: AtomicBool = AtomicBool::new(false);
static RATE: AtomicU64 = AtomicU64::new(512 * 1024);
static TAKEN: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// `_Unwind_Backtrace` and `_Unwind_GetIP`, found at start (0: none).
static UNWIND_BACKTRACE: AtomicUsize = AtomicUsize::new(0);
static UNWIND_GET_IP: AtomicUsize = AtomicUsize::new(0);

/// One live sampled allocation.
#[derive(Clone, Copy)]
#[repr(C)]
struct Sample {
    /// The block (0: free slot).
    addr: usize,
    /// Bytes requested.
    size: usize,
    /// Bytes this sample stands for (`max(size, rate)`).
    weight: u64,
    depth: u32,
    frames: [usize; MAX_FRAMES],
}

/// A free slot (`addr` of a sample is never 0).
const EMPTY: usize = 0;

/// The sample table: open addressing on the block address; mapped on the
/// first sample.
struct Table {
    slots: *mut Sample,
}
// SAFETY: the table is only touched with its lock held.
unsafe impl Send for Table {}

static TABLE: Mutex<Table> = Mutex::new(Table { slots: ptr::null_mut() });
/// The path given by `OXMALLOC_PROF` (a C string owned by the environment).
static PATH: AtomicPtr<c_char> = AtomicPtr::new(ptr::null_mut());

/// Whether profiling is on (one relaxed load; false unless asked for).
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Reads `OXMALLOC_PROF` / `OXMALLOC_PROF_SAMPLE` (process initialisation;
/// must not allocate). The path is the option's pinned copy, valid for the
/// rest of the process.
pub fn init_from_options() {
    let path = options::pinned_text(options::Opt::Prof);
    if path.is_null() {
        return;
    }
    PATH.store(path.cast_mut(), Ordering::Relaxed);
    RATE.store(options::get(options::Opt::ProfSample).max(1) as u64, Ordering::Relaxed);
}

/// Second stage (may allocate: `dlopen`): finds the unwinder, registers the
/// exit dump, and turns sampling on.
pub fn start_if_requested() {
    if PATH.load(Ordering::Relaxed).is_null() {
        return;
    }
    if start_sampling() {
        extern "C" fn dump_at_exit(_: *mut c_void) {
            dump_to_option_path();
        }
        extern "C" {
            // glibc's registration behind `atexit` (which itself lives in
            // libc_nonshared.a and so cannot be referenced from a shared
            // library); a null DSO handle keeps it until exit.
            fn __cxa_atexit(f: extern "C" fn(*mut c_void), arg: *mut c_void, dso: *mut c_void) -> c_int;
        }
        // SAFETY: registering a plain C function with no argument.
        unsafe { __cxa_atexit(dump_at_exit, ptr::null_mut(), ptr::null_mut()) };
    }
}

/// Turns sampling on with about one sample per `sample_bytes`; returns
/// whether the unwinder was found. The live samples can then be written
/// with [`dump`].
pub fn start(sample_bytes: usize) -> bool {
    RATE.store(sample_bytes.max(1) as u64, Ordering::Relaxed);
    start_sampling()
}

fn start_sampling() -> bool {
    if !find_unwinder() {
        crate::fatal::warn(&[b"heap profiling needs _Unwind_Backtrace (libgcc_s); profiling is off"]);
        return false;
    }
    ACTIVE.store(true, Ordering::Release);
    true
}

fn find_unwinder() -> bool {
    if UNWIND_BACKTRACE.load(Ordering::Relaxed) != 0 {
        return true;
    }
    // SAFETY: dlsym/dlopen with NUL-terminated names; the handle of
    // libgcc_s is kept open for the life of the process.
    unsafe {
        let mut backtrace = libc::dlsym(libc::RTLD_DEFAULT, c"_Unwind_Backtrace".as_ptr());
        let mut get_ip = libc::dlsym(libc::RTLD_DEFAULT, c"_Unwind_GetIP".as_ptr());
        if backtrace.is_null() || get_ip.is_null() {
            let lib = libc::dlopen(c"libgcc_s.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
            if lib.is_null() {
                return false;
            }
            backtrace = libc::dlsym(lib, c"_Unwind_Backtrace".as_ptr());
            get_ip = libc::dlsym(lib, c"_Unwind_GetIP".as_ptr());
        }
        if backtrace.is_null() || get_ip.is_null() {
            return false;
        }
        UNWIND_GET_IP.store(get_ip as usize, Ordering::Relaxed);
        UNWIND_BACKTRACE.store(backtrace as usize, Ordering::Release);
    }
    true
}

/// A sampling interval around the rate (uniform in [rate/2, 3*rate/2), so
/// that periodic allocation patterns do not alias with the sampling).
fn next_interval(heap: &Heap) -> i64 {
    let rate = RATE.load(Ordering::Relaxed);
    let mut x = heap.prof_seed.get() ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    heap.prof_seed.set(x);
    (rate / 2 + x % rate.max(1)) as i64
}

/// The slow path allocated `block` (of `requested` bytes) from `page` of
/// `heap`: accounts the bytes the fast path handed out since the last
/// visit, samples when the countdown runs out, and cuts the page's free
/// list to the remaining countdown.
///
/// # Safety
/// `heap` must be the calling thread's, `page` one of its class pages,
/// `block` just popped from it.
#[cold]
pub unsafe fn on_slow_alloc(heap: &Heap, page: &Page, block: *mut u8, requested: usize) {
    let class = page.class();
    let size = page.block_size.get() as i64;
    let handed = heap.prof_handed[class].get() as i64;
    let mut countdown = heap.prof_countdown.get() - handed * size - size;
    if countdown <= 0 {
        if heap.prof_countdown.get() == 0 && handed == 0 {
            // First visit: start a countdown instead of sampling at once.
            countdown = next_interval(heap);
        } else {
            // SAFETY: forwarded contract.
            if unsafe { record(heap, block, requested) } {
                mark_sampled(page, block);
                page.owner.fetch_or(OWNER_SLOW, Ordering::Relaxed);
            }
            countdown += next_interval(heap);
        }
    }
    heap.prof_countdown.set(countdown.max(1));
    // Let the fast path hand out at most `countdown` bytes of this class;
    // local frees into the page take the slow path meanwhile (onto
    // `local_free`), or they would lengthen the cut list.
    let allowed = (countdown / size).max(1) as usize;
    // SAFETY: forwarded contract: we own the page.
    let kept = unsafe { page.cut_free_list(allowed) };
    // (A window opened before profiling started would let the fast path
    // hand out blocks past the countdown.)
    page.close_window();
    page.owner.fetch_or(OWNER_SLOW, Ordering::Relaxed);
    heap.prof_handed[class].set(kept as u32);
}

/// A large or huge block of `requested` bytes was allocated.
///
/// # Safety
/// `heap` must be the calling thread's (or the empty heap), `page` the
/// block's descriptor.
#[cold]
pub unsafe fn on_big_alloc(heap: *mut Heap, page: &Page, block: *mut u8, requested: usize) {
    if heap == crate::heap::empty_heap() || heap == crate::heap::dead_heap() {
        return;
    }
    // SAFETY: caller's contract.
    let heap = unsafe { &*heap };
    let countdown = heap.prof_countdown.get() - requested as i64;
    if countdown <= 0 {
        // SAFETY: forwarded contract.
        if unsafe { record(heap, block, requested) } {
            mark_sampled(page, block);
        }
        heap.prof_countdown.set(countdown.max(0) + next_interval(heap));
    } else {
        heap.prof_countdown.set(countdown);
    }
}

/// The bit of `page.sample_bits` for `block`.
fn sample_bit(page: &Page, block: *mut u8) -> u32 {
    let index = if page.kind() == crate::page::PageKind::Class {
        page.block_index(block as usize).unwrap_or(0)
    } else {
        0
    };
    1 << (index % 32)
}

/// Notes that `page` holds a sample at `block`.
fn mark_sampled(page: &Page, block: *mut u8) {
    // Set before the block is handed out, so before any free of it: a
    // thread that frees it got it through a synchronisation that makes
    // this store visible to its load in `on_free`.
    if !SAMPLED.load(Ordering::Relaxed) {
        SAMPLED.store(true, Ordering::Relaxed);
    }
    page.samples.fetch_add(1, Ordering::Relaxed);
    page.sample_bits.fetch_or(sample_bit(page, block), Ordering::Relaxed);
}

/// Whether the process has taken a sample (`SAMPLED`).
#[inline(always)]
pub fn any_sampled() -> bool {
    SAMPLED.load(Ordering::Relaxed)
}

/// Whether `page` may hold samples. Until the process has taken one, the
/// answer needs no read of `Page::samples` (see `SAMPLED`): a free into a
/// full page of a process that never profiled would otherwise miss on that
/// line (rptest, docs/PERFORMANCE.md E96).
#[inline(always)]
pub fn page_has_samples(page: &Page) -> bool {
    SAMPLED.load(Ordering::Relaxed) && page.samples.load(Ordering::Relaxed) != 0
}

/// A block of a page with samples is freed: forget its sample, if any.
/// Every remote free asks, so the common answer (no samples in the page)
/// is inline: as a call, it was 2% of xmalloc's time (docs/PERFORMANCE.md E35).
#[inline(always)]
pub fn on_free(page: &Page, block: *mut u8) {
    if page_has_samples(page) {
        forget_sample(page, block);
    }
}

/// [`on_free`] for a page that holds samples.
#[cold]
#[inline(never)]
fn forget_sample(page: &Page, block: *mut u8) {
    if page.sample_bits.load(Ordering::Relaxed) & sample_bit(page, block) == 0 {
        return;
    }
    let mut table = TABLE.lock();
    if table.forget(block as usize) {
        drop(table);
        if page.samples.fetch_sub(1, Ordering::Relaxed) == 1 {
            page.sample_bits.store(0, Ordering::Relaxed);
        }
    }
}

/// A class page is freed with whatever blocks it still holds (`Heap::destroy`):
/// forgets the samples of its blocks, whose frees will never come.
///
/// The caller must own the page (no block of it is allocated or freed
/// meanwhile); only its blocks whose bit is set in `sample_bits` are
/// looked up, and the scan stops once `samples` of them were found.
#[cold]
pub fn on_page_freed(page: &Page) {
    let mut left = page.samples.load(Ordering::Relaxed);
    if left == 0 {
        return;
    }
    let bits = page.sample_bits.load(Ordering::Relaxed);
    let start = page.start.get() as usize;
    let size = page.block_size.get();
    let mut table = TABLE.lock();
    for index in 0..page.capacity() as usize {
        if left == 0 {
            break;
        }
        if bits & (1 << (index % 32)) != 0 && table.forget(start + index * size) {
            left -= 1;
        }
    }
    drop(table);
    page.samples.store(0, Ordering::Relaxed);
    page.sample_bits.store(0, Ordering::Relaxed);
}

/// A huge block of `page` moves from `old` to `new` (`realloc` through
/// `mremap`): its sample, if any, moves along (same call stack and size).
/// Called before the move, while nothing can be mapped at `new` but our
/// reservation and `old` is still ours, so no other block can own either
/// address meanwhile; called again with the addresses swapped if the move
/// fails.
#[cold]
pub fn on_moved(page: &Page, old: *mut u8, new: *mut u8) {
    if page.samples.load(Ordering::Relaxed) == 0 || old == new {
        return;
    }
    let mut table = TABLE.lock();
    if table.slots.is_null() {
        return;
    }
    if let Some(i) = table.find(old as usize) {
        // SAFETY: a slot of the mapped table we hold.
        let mut sample = unsafe { table.slot(i).read() };
        table.remove(i);
        sample.addr = new as usize;
        // The slot just emptied leaves room: the count of entries is unchanged.
        let slot = table.probe_vacant(new as usize);
        // SAFETY: a vacant slot of the table we hold.
        unsafe { slot.write(sample) };
    }
}

impl Table {
    fn hash(addr: usize) -> usize {
        (addr >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (usize::BITS - TABLE_BITS)
    }

    /// The slot at index `i` (< TABLE_SLOTS) of the mapped table.
    fn slot(&self, i: usize) -> *mut Sample {
        // SAFETY: `i < TABLE_SLOTS` and the table is mapped.
        unsafe { self.slots.add(i) }
    }

    fn addr_at(&self, i: usize) -> usize {
        // SAFETY: a slot of the mapped table.
        unsafe { (*self.slot(i)).addr }
    }

    /// The index of the slot holding `addr`, if any (linear probing).
    fn find(&mut self, addr: usize) -> Option<usize> {
        let mut i = Self::hash(addr);
        for _ in 0..TABLE_SLOTS {
            match self.addr_at(i) {
                a if a == addr => return Some(i),
                EMPTY => return None,
                _ => i = (i + 1) % TABLE_SLOTS,
            }
        }
        None
    }

    /// A free slot to store `addr` in, if the table has room (one is kept
    /// empty so that probes always end).
    fn vacant(&mut self, addr: usize) -> Option<*mut Sample> {
        if LIVE.load(Ordering::Relaxed) + 1 >= TABLE_SLOTS as u64 as usize {
            return None;
        }
        Some(self.probe_vacant(addr))
    }

    /// The first empty slot of `addr`'s probe run (the table must have one).
    fn probe_vacant(&mut self, addr: usize) -> *mut Sample {
        let mut i = Self::hash(addr);
        while self.addr_at(i) != EMPTY {
            i = (i + 1) % TABLE_SLOTS;
        }
        self.slot(i)
    }

    /// Forgets the sample at `addr`, if there is one (and the table is
    /// mapped); returns whether there was.
    fn forget(&mut self, addr: usize) -> bool {
        if self.slots.is_null() {
            return false;
        }
        match self.find(addr) {
            Some(slot) => {
                self.remove(slot);
                LIVE.fetch_sub(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Empties slot `i`, shifting later entries of the probe run back so
    /// that lookups never need tombstones (backward-shift deletion).
    fn remove(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = (j + 1) % TABLE_SLOTS;
            let a = self.addr_at(j);
            if a == EMPTY {
                break;
            }
            let home = Self::hash(a);
            // Move the entry at `j` into the hole at `i` unless its home
            // lies cyclically in (i, j].
            let in_between = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !in_between {
                // SAFETY: two distinct slots of the mapped table.
                unsafe { self.slot(i).write(self.slot(j).read()) };
                i = j;
            }
        }
        // SAFETY: a slot of the mapped table.
        unsafe { (*self.slot(i)).addr = EMPTY };
    }
}

struct Frames {
    ips: [usize; MAX_FRAMES],
    depth: usize,
    skip: usize,
}

extern "C" fn collect_frame(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    const URC_NO_REASON: c_int = 0;
    const URC_END_OF_STACK: c_int = 5;
    // SAFETY: `arg` is the `Frames` passed to `_Unwind_Backtrace` below;
    // `_Unwind_GetIP` was found by `find_unwinder` and has this signature.
    unsafe {
        let frames = &mut *arg.cast::<Frames>();
        let get_ip: extern "C" fn(*mut c_void) -> usize = core::mem::transmute(UNWIND_GET_IP.load(Ordering::Relaxed));
        let ip = get_ip(ctx);
        if ip == 0 {
            return URC_END_OF_STACK;
        }
        if frames.skip > 0 {
            frames.skip -= 1;
            return URC_NO_REASON;
        }
        frames.ips[frames.depth] = ip;
        frames.depth += 1;
        if frames.depth == MAX_FRAMES {
            URC_END_OF_STACK
        } else {
            URC_NO_REASON
        }
    }
}

/// Takes the call stack and stores a sample; `false` when the table is full
/// or a sample is already being taken on this thread (the unwinder may
/// allocate).
///
/// # Safety
/// `heap` must be the calling thread's.
unsafe fn record(heap: &Heap, block: *mut u8, requested: usize) -> bool {
    if heap.prof_busy.get() {
        return false;
    }
    heap.prof_busy.set(true);
    let mut frames = Frames {
        ips: [0; MAX_FRAMES],
        depth: 0,
        skip: 2,
    };
    let backtrace = UNWIND_BACKTRACE.load(Ordering::Acquire);
    if backtrace != 0 {
        // SAFETY: the function was looked up by name and has this signature.
        unsafe {
            let backtrace: extern "C" fn(extern "C" fn(*mut c_void, *mut c_void) -> c_int, *mut c_void) -> c_int =
                core::mem::transmute(backtrace);
            backtrace(collect_frame, (&raw mut frames).cast());
        }
    }
    let rate = RATE.load(Ordering::Relaxed);
    let mut table = TABLE.lock();
    if table.slots.is_null() {
        let bytes = (TABLE_SLOTS * core::mem::size_of::<Sample>()).next_multiple_of(Os::page_size());
        match Os::map(bytes, Os::page_size()) {
            Some(mem) => {
                stats::os_mapped(bytes);
                table.slots = mem.as_ptr().cast();
            }
            None => {
                heap.prof_busy.set(false);
                return false;
            }
        }
    }
    let stored = match table.vacant(block as usize) {
        Some(slot) => {
            // SAFETY: a vacant slot of the table we hold.
            unsafe {
                slot.write(Sample {
                    addr: block as usize,
                    size: requested,
                    weight: (requested as u64).max(rate),
                    depth: frames.depth as u32,
                    frames: frames.ips,
                });
            }
            LIVE.fetch_add(1, Ordering::Relaxed);
            TAKEN.fetch_add(1, Ordering::Relaxed);
            true
        }
        None => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            false
        }
    };
    drop(table);
    heap.prof_busy.set(false);
    stored
}

/// `fork` (see `fork.rs` for the order): takes the sample table's lock.
pub fn lock_for_fork() {
    TABLE.lock_for_fork();
}

/// `fork`, in the parent: releases what [`lock_for_fork`] took.
///
/// # Safety
/// The calling thread must have called [`lock_for_fork`].
pub unsafe fn unlock_after_fork() {
    // SAFETY: forwarded contract.
    unsafe { TABLE.unlock_after_fork() };
}

/// `fork`, in the child: frees the sample table's lock (the table is
/// consistent: the parent held the lock across the fork).
///
/// # Safety
/// Only in the child of `fork`, while it is single-threaded.
pub unsafe fn reset_in_child() {
    // SAFETY: forwarded contract.
    unsafe { TABLE.reset_in_child() };
}

/// Samples taken so far, live now, and dropped for want of room.
pub fn counts() -> (u64, u64, u64) {
    (
        TAKEN.load(Ordering::Relaxed),
        LIVE.load(Ordering::Relaxed) as u64,
        DROPPED.load(Ordering::Relaxed),
    )
}

fn dump_to_option_path() {
    let path = PATH.load(Ordering::Relaxed);
    if path.is_null() {
        return;
    }
    // SAFETY: the environment string lives for the whole process.
    let path = unsafe { CStr::from_ptr(path) };
    dump(path);
}

/// A file descriptor that writes lines, without allocating.
struct Out(c_int);

impl Out {
    fn write(&self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: writing from a valid slice to our descriptor.
            let n = unsafe { libc::write(self.0, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                return;
            }
            rest = &rest[n as usize..];
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(self.0) };
    }
}

/// Writes the live samples to `path` (`%p` in it becomes the process id).
/// Returns whether the file was written. Does not allocate.
pub fn dump(path: &CStr) -> bool {
    // Expand %p into a stack buffer.
    let mut name = [0u8; 512];
    let mut len = 0;
    let bytes = path.to_bytes();
    let mut i = 0;
    while i < bytes.len() && len < name.len() - 24 {
        if bytes[i] == b'%' && bytes.get(i + 1) == Some(&b'p') {
            let mut pid = Line::new();
            // SAFETY: getpid has no preconditions.
            pid.dec(unsafe { libc::getpid() } as u64);
            for &b in pid.as_bytes() {
                name[len] = b;
                len += 1;
            }
            i += 2;
        } else {
            name[len] = bytes[i];
            len += 1;
            i += 1;
        }
    }
    name[len] = 0;
    // SAFETY: a NUL-terminated path in our buffer.
    let fd = unsafe {
        libc::open(
            name.as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        crate::fatal::warn(&[b"cannot write the heap profile to ", &name[..len]]);
        return false;
    }
    let out = Out(fd);
    let table = TABLE.lock();
    // Header: totals.
    let (mut objects, mut space) = (0u64, 0u64);
    table.each(|s| {
        objects += s.weight / (s.size.max(1) as u64);
        space += s.weight;
    });
    let mut line = Line::new();
    line.str("heap profile: ")
        .dec(objects)
        .str(": ")
        .dec(space)
        .str(" [")
        .dec(objects)
        .str(": ");
    line.dec(space).str("] @ heapprofile\n");
    out.write(line.as_bytes());
    // The sampler's own counts, as a comment (`pprof` skips `#` lines), so
    // that a profile missing samples for want of room says so.
    let (taken, live, dropped) = counts();
    let mut line = Line::new();
    line.str("# oxmalloc: samples taken ")
        .dec(taken)
        .str(", live ")
        .dec(live)
        .str(", dropped ")
        .dec(dropped);
    if dropped != 0 {
        line.str(" (the sample table was full: this profile misses allocations)");
    }
    line.str("\n");
    out.write(line.as_bytes());
    table.each(|s| {
        let count = (s.weight / s.size.max(1) as u64).max(1);
        let mut line = Line::new();
        line.dec(count)
            .str(": ")
            .dec(s.weight)
            .str(" [")
            .dec(count)
            .str(": ")
            .dec(s.weight)
            .str("] @");
        for &ip in &s.frames[..s.depth as usize] {
            // A deep stack does not fit one `Line` (which truncates): write
            // it out in pieces.
            if line.as_bytes().len() > 512 - 24 {
                out.write(line.as_bytes());
                line = Line::new();
            }
            line.str(" ").hex(ip);
        }
        line.str("\n");
        out.write(line.as_bytes());
    });
    drop(table);
    out.write(b"\nMAPPED_LIBRARIES:\n");
    // SAFETY: a NUL-terminated path literal.
    let maps = unsafe { libc::open(c"/proc/self/maps".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if maps >= 0 {
        let maps = Out(maps);
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into our stack buffer.
            let n = unsafe { libc::read(maps.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.write(&buf[..n as usize]);
        }
    }
    true
}

impl Table {
    /// Calls `f` on every live sample.
    fn each(&self, mut f: impl FnMut(&Sample)) {
        if self.slots.is_null() {
            return;
        }
        for i in 0..TABLE_SLOTS {
            // SAFETY: `i < TABLE_SLOTS` and the table is mapped.
            let s = unsafe { &*self.slots.add(i) };
            if s.addr != EMPTY {
                f(s);
            }
        }
    }
}
