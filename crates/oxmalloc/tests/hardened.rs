//! Heap corruption (CHECKLIST B) through the Rust API of the hardened build
//! (`cargo test -p oxmalloc --features secure`).
//!
//! Each death test re-executes this test binary, running only the `child`
//! test with `OXTEST_HARDENED_CHILD=<action> <size>` in its environment. The
//! child prints `ptr 0x...` (the address the allocator must name), then does
//! the bad thing through `OxMalloc` (`GlobalAlloc`) or `oxmalloc::raw`; the
//! parent asserts that it died of SIGABRT with exactly one
//! `oxmalloc: error: <kind>0x<that address>` line.

#![cfg(feature = "secure")]

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: OxMalloc = OxMalloc;

const CHILD_VAR: &str = "OXTEST_HARDENED_CHILD";
const SIZES: [usize; 3] = [8, 4096, 256 * 1024];

const DOUBLE_FREE: &str = "double free of ";
const INVALID_FREE: &str = "invalid free of ";
const INVALID_REALLOC: &str = "invalid pointer passed to realloc: ";
const INVALID_USABLE: &str = "invalid pointer passed to malloc_usable_size: ";
const SIZE_MISMATCH: &str = "size mismatch on free of ";
const OVERFLOW: &str = "heap buffer overflow past the block at ";
const CORRUPTED_LIST: &str = "corrupted free list in the page of ";
const WRITE_AFTER_FREE: &str = "write after free of ";

// ---------------------------------------------------------------------------
// The child side.

/// The engine's chunk and slice sizes (docs/DESIGN.md, "Memory layout").
const CHUNK_SIZE: usize = 4 << 20;
const SLICE_SIZE: usize = 64 << 10;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn announce(p: *const u8) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ptr {:#x}", p as usize).unwrap();
    out.flush().unwrap();
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn alloc(size: usize) -> *mut u8 {
    // SAFETY: a non-zero layout.
    let p = unsafe { OxMalloc.alloc(layout(size)) };
    assert!(!p.is_null());
    // SAFETY: the block is `size` bytes.
    unsafe { p.write_bytes(0x11, size) };
    p
}

/// Frees `p` from a new thread (a remote free).
fn dealloc_in_thread(p: *mut u8, size: usize) {
    let addr = p as usize;
    std::thread::spawn(move || {
        // SAFETY: the block is live (or this is the deliberate bad call).
        unsafe { OxMalloc.dealloc(addr as *mut u8, layout(size)) }
    })
    .join()
    .unwrap();
}

/// Allocations of `size` until the process dies (or 200,000 are made).
fn churn(size: usize) {
    for _ in 0..200_000 {
        let p = alloc(size);
        std::hint::black_box(p);
    }
}

/// 1,024 operations on size classes far from `size`.
fn other_operations(size: usize) {
    let mut live: Vec<Vec<u8>> = Vec::new();
    for i in 0..1024usize {
        let n = if size <= 1024 { 2048 + i % 2000 } else { 16 + i % 500 };
        if i % 3 == 2 {
            live.pop();
        } else {
            live.push(vec![i as u8; n]);
        }
    }
}

#[allow(clippy::too_many_lines)]
fn child_action(action: &str, n: usize) {
    let keep = alloc(n);
    match action {
        "none" => {
            let p = alloc(n);
            announce(p);
            // SAFETY: a live block with its layout.
            unsafe { OxMalloc.dealloc(p, layout(n)) };
        }
        "double_free" => {
            let p = alloc(n);
            // SAFETY: deliberate double free (the second call).
            unsafe {
                OxMalloc.dealloc(p, layout(n));
                announce(p);
                OxMalloc.dealloc(p, layout(n));
            }
        }
        "double_free_delayed" => {
            let (p, q) = (alloc(n), alloc(n));
            // SAFETY: deliberate double free of `p` after 2,048 other operations.
            unsafe {
                OxMalloc.dealloc(p, layout(n));
                other_operations(n);
                OxMalloc.dealloc(q, layout(n));
                other_operations(n);
                announce(p);
                OxMalloc.dealloc(p, layout(n));
            }
        }
        "double_free_remote" => {
            let p = alloc(n);
            dealloc_in_thread(p, n);
            announce(p);
            dealloc_in_thread(p, n);
        }
        "double_free_race" => {
            // Allocated by a third thread, freed at once by two others.
            let p = std::thread::spawn(move || alloc(n) as usize).join().unwrap();
            announce(p as *const u8);
            let barrier = Arc::new(Barrier::new(2));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        // SAFETY: deliberate racing double free.
                        unsafe { OxMalloc.dealloc(p as *mut u8, layout(n)) };
                    })
                })
                .collect();
            for r in racers {
                r.join().unwrap();
            }
        }
        "raw_free_wild" => {
            announce(0x5a5a_5a5a_5000 as *const u8);
            // SAFETY: deliberate invalid free (the engine must not write through it).
            unsafe { oxmalloc::raw::free(0x5a5a_5a5a_5000 as *mut u8) };
        }
        "raw_free_stack" => {
            let local = [0u8; 64];
            let p = std::hint::black_box(local.as_ptr());
            announce(p);
            // SAFETY: deliberate invalid free.
            unsafe { oxmalloc::raw::free(p.cast_mut()) };
        }
        "raw_free_plus_1" | "raw_free_plus_8" | "raw_free_plus_16" => {
            let offset: usize = action.rsplit('_').next().unwrap().parse().unwrap();
            let p = oxmalloc::raw::malloc(n);
            let bad = p.wrapping_add(offset);
            announce(bad);
            // SAFETY: deliberate invalid free.
            unsafe { oxmalloc::raw::free(bad) };
        }
        "raw_realloc_wild" => {
            announce(0x5a5a_5a5a_5000 as *const u8);
            // SAFETY: deliberate invalid realloc.
            let r = unsafe { oxmalloc::raw::realloc(0x5a5a_5a5a_5000 as *mut u8, 100) };
            assert!(r.is_null());
        }
        "raw_realloc_freed" => {
            let p = oxmalloc::raw::malloc(n);
            // SAFETY: deliberate realloc of a freed block.
            unsafe {
                oxmalloc::raw::free(p);
                announce(p);
                std::hint::black_box(oxmalloc::raw::realloc(p, n + 100));
            }
        }
        "usable_size_freed" => {
            let p = oxmalloc::raw::malloc(n);
            // SAFETY: freeing a live block; usable_size of it afterwards is the bad call.
            unsafe { oxmalloc::raw::free(p) };
            announce(p);
            std::hint::black_box(oxmalloc::usable_size(p));
        }
        "usable_size_unaligned" => {
            let p = oxmalloc::raw::malloc(n);
            announce(p.wrapping_add(8));
            std::hint::black_box(oxmalloc::usable_size(p.wrapping_add(8)));
        }
        "dealloc_bigger" | "dealloc_smaller" => {
            let p = alloc(n);
            let given = if action == "dealloc_bigger" { n + 8 } else { n - 1 };
            announce(p);
            // SAFETY: deliberate dealloc with the wrong layout.
            unsafe { OxMalloc.dealloc(p, layout(given)) };
        }
        "overflow1" | "overflow8" => {
            let p = alloc(n);
            let len = if action == "overflow1" { 1 } else { 8 };
            announce(p);
            // SAFETY: deliberate overflow past the requested size (within the block's slack).
            unsafe {
                p.add(n).write_bytes(0x5a, len);
                OxMalloc.dealloc(p, layout(n));
            }
        }
        "link_zero" | "link_self" | "link_zero_remote" => {
            let p = alloc(n);
            let neighbour = alloc(n);
            if action.ends_with("remote") {
                dealloc_in_thread(p, n);
            } else {
                // SAFETY: a live block with its layout.
                unsafe { OxMalloc.dealloc(p, layout(n)) };
            }
            let value = if action == "link_self" { p as usize } else { 0 };
            // SAFETY: deliberate write into a freed block (its link word).
            unsafe { p.cast::<usize>().write_unaligned(value) };
            announce(p);
            churn(n);
            std::hint::black_box(neighbour);
        }
        "write_after_free" => {
            let p = alloc(n);
            let neighbour = alloc(n);
            // SAFETY: a live block; then a deliberate write after free.
            unsafe {
                OxMalloc.dealloc(p, layout(n));
                *p.add(8) ^= 0xff;
            }
            announce(p);
            churn(n);
            std::hint::black_box(neighbour);
        }
        "read_freed" => {
            let p = alloc(n);
            // SAFETY: a live block; then a deliberate read after free.
            unsafe {
                OxMalloc.dealloc(p, layout(n));
                announce(p);
                std::hint::black_box(p.add(n / 2).read_volatile());
            }
        }
        "write_past_end" => {
            // The block's usable span, as the heap's walk reports it; the
            // OS page after it is the guard.
            let mut heap = oxmalloc::Heap::new().unwrap();
            let p = heap.alloc(layout(n));
            assert!(!p.is_null());
            let mut usable = 0;
            heap.walk(|block, size| {
                if block == p {
                    usable = size;
                }
                true
            });
            assert!(usable >= n, "the walk did not report the block (usable {usable})");
            let page = page_size();
            // The trailer ends the span, which ends on a page boundary.
            let end = (p as usize + usable).next_multiple_of(page);
            announce(end as *const u8);
            // SAFETY: the last byte of the block's span is ours (rewritten
            // with its own value); the next byte is the guard page: the
            // deliberate bad write.
            unsafe {
                let last = p.add(end - 1 - p as usize);
                last.write_volatile(last.read_volatile());
                println!("last byte of the span written");
                std::io::stdout().flush().unwrap();
                last.add(1).write_volatile(0x5a);
            }
            std::mem::forget(heap);
        }
        "read_header_guard" => {
            // The chunk of a small block: its header slice (64 KiB) ends
            // with an inaccessible OS page.
            let p = alloc(n);
            let chunk = p as usize & !(CHUNK_SIZE - 1);
            let guard = chunk + SLICE_SIZE - page_size();
            announce(guard as *const u8);
            // SAFETY: the chunk header is mapped memory of the allocator
            // (read only); the guard read is the deliberate bad access.
            unsafe {
                std::hint::black_box((chunk as *const u8).read_volatile());
                println!("chunk header readable");
                std::io::stdout().flush().unwrap();
                std::hint::black_box((guard as *const u8).read_volatile());
            }
        }
        "fingerprint" => {
            println!("fingerprint {:#x}", oxmalloc::secret_fingerprint());
            std::io::stdout().flush().unwrap();
            // SAFETY: fork in a process whose other threads (the test
            // harness's) do nothing the child needs; the child only reads
            // the fingerprint, writes it with write(2), and leaves with _exit.
            unsafe {
                let pid = libc::fork();
                assert!(pid >= 0);
                if pid == 0 {
                    let line = format!("forked {:#x}\n", oxmalloc::secret_fingerprint());
                    libc::write(1, line.as_ptr().cast(), line.len());
                    libc::_exit(0);
                }
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
            }
        }
        _ => panic!("unknown action {action}"),
    }
    // SAFETY: `keep` is live with its layout.
    unsafe { OxMalloc.dealloc(keep, layout(n)) };
    println!("survived");
}

/// The re-executed child: runs the action named in the environment.
/// Without the variable (a normal test run) it does nothing.
#[test]
fn child() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        let (action, size) = spec.split_once(' ').expect("ACTION SIZE");
        child_action(action, size.parse().expect("size"));
    }
}

// ---------------------------------------------------------------------------
// The parent side.

fn run_child(action: &str, size: usize) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, format!("{action} {size}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    // The harness prints "test child ... " before the child's own output,
    // on the same line: the parsers below look inside lines.
    // Hang guard: read the pipes on threads, kill after a minute.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut buf).ok();
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut buf).ok();
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("child {action} {size}: still running after 60 s (hang?)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

fn describe(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn announced(o: &Output, what: &str) -> usize {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let hex = stdout
        .lines()
        .find_map(|l| l.split("ptr 0x").nth(1))
        .unwrap_or_else(|| panic!("{what}: no ptr line\n{}", describe(o)));
    usize::from_str_radix(hex.trim(), 16).unwrap()
}

fn error_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("oxmalloc: error") || l.starts_with("oxmalloc: fatal"))
        .map(str::to_string)
        .collect()
}

/// Runs `action` at `size` and asserts SIGABRT with one line naming `kind`
/// and the announced address; returns that line.
fn death(action: &str, size: usize, kind: &str) -> String {
    let what = format!("{action} at {size} B");
    let o = run_child(action, size);
    let addr = announced(&o, &what);
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGABRT),
        "{what}: not SIGABRT\n{}",
        describe(&o)
    );
    let errors = error_lines(&o);
    assert_eq!(errors.len(), 1, "{what}: expected one error line\n{}", describe(&o));
    let expected = format!("oxmalloc: error: {kind}{addr:#x}");
    let rest = errors[0]
        .strip_prefix(&expected)
        .unwrap_or_else(|| panic!("{what}: expected {expected:?}, got {:?}\n{}", errors[0], describe(&o)));
    assert!(
        !rest.starts_with(|c: char| c.is_ascii_hexdigit()),
        "{what}: {}",
        errors[0]
    );
    errors[0].clone()
}

#[test]
fn control_child_without_bad_call_survives() {
    for size in SIZES {
        let o = run_child("none", size);
        assert!(o.status.success(), "{}", describe(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("survived"));
        assert!(error_lines(&o).is_empty(), "{}", describe(&o));
    }
}

#[test]
fn b15_b16_double_free_through_dealloc() {
    for size in SIZES {
        death("double_free", size, DOUBLE_FREE);
        death("double_free_delayed", size, DOUBLE_FREE);
        death("double_free_remote", size, DOUBLE_FREE);
    }
}

#[test]
fn b17_racing_double_free_is_fatal_exactly_once() {
    for size in [8, 4096, 100, 30000] {
        for _ in 0..5 {
            death("double_free_race", size, DOUBLE_FREE);
        }
    }
}

#[test]
fn b17_racing_double_free_of_a_large_block_is_fatal_exactly_once() {
    for _ in 0..200 {
        death("double_free_race", 256 * 1024, DOUBLE_FREE);
    }
}

#[test]
fn b18_b19_invalid_frees_through_raw() {
    for size in SIZES {
        death("raw_free_wild", size, INVALID_FREE);
        death("raw_free_stack", size, INVALID_FREE);
        death("raw_free_plus_1", size, INVALID_FREE);
        death("raw_free_plus_8", size, INVALID_FREE);
        if size > 16 {
            death("raw_free_plus_16", size, INVALID_FREE);
        }
    }
}

#[test]
fn b20_realloc_and_usable_size_of_bad_pointers() {
    for size in SIZES {
        death("raw_realloc_wild", size, INVALID_REALLOC);
        death("usable_size_freed", size, INVALID_USABLE);
        death("usable_size_unaligned", size, INVALID_USABLE);
    }
    death("raw_realloc_freed", 256 * 1024, INVALID_REALLOC);
}

#[test]
fn b20_realloc_of_freed_small_block() {
    for size in [8, 4096] {
        death("raw_realloc_freed", size, INVALID_REALLOC);
    }
}

#[test]
fn b21_dealloc_with_the_wrong_layout_size() {
    for size in SIZES.into_iter().chain([24, 120, 65528]) {
        let line = death("dealloc_bigger", size, SIZE_MISMATCH);
        let detail = format!("(size mismatch: given {}, actual {size})", size + 8);
        assert!(line.ends_with(&detail), "{line} lacks {detail}");
        let line = death("dealloc_smaller", size, SIZE_MISMATCH);
        let detail = format!("(size mismatch: given {}, actual {size})", size - 1);
        assert!(line.ends_with(&detail), "{line} lacks {detail}");
    }
}

#[test]
fn b22_overflow_caught_at_dealloc() {
    for size in SIZES.into_iter().chain([24, 56, 120, 1016, 4088, 65528, 100]) {
        death("overflow1", size, OVERFLOW);
        death("overflow8", size, OVERFLOW);
    }
}

#[test]
fn b23_corrupted_links_and_b24_write_after_free() {
    for size in [8, 4096, 100] {
        death("link_zero", size, CORRUPTED_LIST);
        death("link_self", size, CORRUPTED_LIST);
        death("link_zero_remote", size, CORRUPTED_LIST);
    }
    for size in [4096, 100, 30000] {
        death("write_after_free", size, WRITE_AFTER_FREE);
    }
}

#[test]
fn b25_reading_a_freed_large_block_faults() {
    for size in [256 * 1024, 8 << 20] {
        let o = run_child("read_freed", size);
        announced(&o, "read_freed");
        assert_eq!(o.status.signal(), Some(libc::SIGSEGV), "{}", describe(&o));
    }
}

/// Runs `action` at `size` and asserts that it died of SIGSEGV after the
/// access just before the guard (`before` printed) succeeded.
fn faults(action: &str, size: usize, before: &str) {
    let o = run_child(action, size);
    let what = format!("{action} at {size} B");
    announced(&o, &what);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(before),
        "{what}: the access before the guard failed\n{}",
        describe(&o)
    );
    assert!(!stdout.contains("survived"), "{what}: no fault\n{}", describe(&o));
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGSEGV),
        "{what}: not SIGSEGV\n{}",
        describe(&o)
    );
}

#[test]
fn writing_the_page_after_a_large_or_huge_block_faults() {
    // 256 KiB: a large block (a span); 8 MiB: a huge block (a mapping).
    for size in [256 * 1024, 300_000, 8 << 20, (8 << 20) + 100] {
        faults("write_past_end", size, "last byte of the span written");
    }
}

#[test]
fn reading_the_last_page_of_a_chunk_header_slice_faults() {
    for size in [8, 4096] {
        faults("read_header_guard", size, "chunk header readable");
    }
}

fn fingerprints() -> (String, String) {
    let o = run_child("fingerprint", 8);
    assert!(o.status.success(), "{}", describe(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.split(prefix).nth(1))
            .unwrap_or_else(|| panic!("no {prefix} line\n{stdout}"))
            .to_string()
    };
    (field("fingerprint "), field("forked "))
}

#[test]
fn b26_secrets_differ_between_runs_and_after_fork() {
    let (first, first_child) = fingerprints();
    let (second, second_child) = fingerprints();
    assert_ne!(first, second, "two runs drew the same secret");
    assert_ne!(first, first_child, "the fork child was not reseeded");
    assert_ne!(second, second_child, "the fork child was not reseeded");
    assert_ne!(first_child, second_child);
    assert_ne!(format!("{:#x}", oxmalloc::secret_fingerprint()), first);
}

/// `expand` in the hardened build resizes nothing: it answers yes up to the
/// size first asked for (the trailer guards that size), no beyond, even
/// within the block's usable bytes or into free slices after a large block.
#[test]
fn expand_answers_up_to_the_requested_size_and_resizes_nothing() {
    for size in SIZES {
        let p = alloc(size);
        // SAFETY: `p` is a live block of `size` bytes from OxMalloc.
        unsafe {
            assert!(oxmalloc::expand(p, size), "{size} B block to its own size");
            assert!(oxmalloc::expand(p, 1), "{size} B block to 1 byte");
            assert!(!oxmalloc::expand(p, size + 1), "{size} B block past its requested size");
            assert!(!oxmalloc::expand(p, size * 4), "{size} B block to four times its size");
            assert_eq!(oxmalloc::usable_size(p), size, "expand changed the {size} B block");
            p.write_bytes(0xA5, size);
            OxMalloc.dealloc(p, layout(size));
        }
    }
}
