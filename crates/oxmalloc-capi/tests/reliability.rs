//! Concurrency, operating-system faults, fork and signals (CHECKLIST C, D
//! and E) against the C library, default and hardened (`tests/c/rel_*.c`,
//! preloaded). The hardened library is `target/release/liboxmalloc-secure.so`
//! (`scripts/build-secure.sh`); these tests fail clearly when it is missing.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn secure_so() -> PathBuf {
    let path = release_dir().join("liboxmalloc-secure.so");
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-secure.sh first (scripts/test.sh builds it)",
        path.display()
    );
    path.canonicalize().expect("canonicalize library path")
}

#[derive(Clone, Copy, Debug)]
enum Lib {
    Default,
    Hardened,
}

const BOTH: [Lib; 2] = [Lib::Default, Lib::Hardened];

impl Lib {
    fn path(self) -> PathBuf {
        match self {
            Lib::Default => lib_so(),
            Lib::Hardened => secure_so(),
        }
    }
}

/// Compiles `tests/c/<name>` once per test binary (extra flags: `-rdynamic` and the like).
fn program(name: &str, extra: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oxmalloc-reliability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    let out = dir.join(name.trim_end_matches(".c").trim_end_matches(".cpp"));
    let inc = format!("-I{}", include_dir().display());
    let mut flags = vec!["-O1", "-g", "-fno-builtin", "-Wall", "-pthread", inc.as_str()];
    flags.extend_from_slice(extra);
    compile(
        if name.ends_with(".cpp") { "c++" } else { "cc" },
        &[&c_source(name)],
        &out,
        &flags,
        &[],
    );
    built.push((name.to_string(), out.clone()));
    out
}

fn command(lib: Lib, prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("LD_PRELOAD", lib.path())
        .env_remove("OXMALLOC_SHOW_STATS")
        .env_remove("OXMALLOC_VERBOSE")
        .env_remove("OXMALLOC_SHOW_ERRORS");
    cmd
}

fn run_prog(lib: Lib, name: &str, args: &[&str]) -> Output {
    run(command(lib, &program(name, &[]), args), LIMIT)
}

fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        tail(&o.stdout),
        tail(&o.stderr)
    )
}

fn assert_ok(o: &Output, marker: &str, what: &str) {
    assert!(
        o.status.success() && stdout_of(o).contains(marker),
        "{what}: expected exit 0 and {marker:?}\n{}",
        describe(o)
    );
    assert_no_heap_errors(&o.stderr, what);
}

/// The announced `ptr 0x...` of a program.
fn announced(o: &Output) -> usize {
    let line = stdout_of(o)
        .lines()
        .find_map(|l| l.strip_prefix("ptr 0x").map(str::to_string))
        .unwrap_or_else(|| panic!("no ptr line\n{}", describe(o)));
    usize::from_str_radix(line.trim(), 16).expect("hex")
}

/// A number after `key` on the program's stdout.
fn field(o: &Output, key: &str) -> u64 {
    let text = stdout_of(o);
    let rest = text
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key:?}\n{}", describe(o)));
    rest.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("number")
}

// ---------------------------------------------------------------------------
// C. Concurrency

#[test]
fn c27_larson_xmalloc_mstress_shapes_with_content_checks() {
    let prog = program("rel_stress.c", &[]);
    for lib in BOTH {
        let what = format!("{lib:?} stress");
        let o = run(command(lib, &prog, &["4", "1500"]), LIMIT);
        assert_ok(&o, "stress ok", &what);
        assert_eq!(field(&o, "live now "), 0, "{what}: live bytes left over");
        // Bounded RSS: the resident set stays within a small factor of the live set.
        let live = field(&o, "live peak ");
        let rss = field(&o, "rss peak ");
        assert!(
            rss <= 2 * live + (128 << 20),
            "{what}: RSS peak {rss} for a live peak of {live}"
        );
    }
}

#[test]
fn e37_existing_fork_program_under_the_hardened_library() {
    // tests/c/fork.c (CHECKLIST E37/E38, default library in tests/fork.rs),
    // with the hardened checks on in the parent and every child.
    let o = run_prog(Lib::Hardened, "fork.c", &[]);
    assert_ok(&o, "fork: 50 children ok of 50", "hardened fork.c");
}

/// The `threads` row of the OXMALLOC_SHOW_STATS summary: (current, total).
fn thread_row(stderr: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(stderr);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("threads "))
        .unwrap_or_else(|| panic!("no threads row in the statistics\n{text}"));
    let numbers: Vec<u64> = row.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (numbers[0], numbers[2])
}

fn destructors(lib: Lib, rounds: &str) {
    let what = format!("{lib:?} destructors, {rounds} rounds");
    let mut cmd = command(lib, &program("rel_dtors.c", &[]), &["100", rounds]);
    cmd.env("OXMALLOC_SHOW_STATS", "1");
    let o = run(cmd, LIMIT);
    assert_ok(&o, "dtors ok", &what);
    assert!(
        stdout_of(&o).contains("destructor function ok"),
        "{what}\n{}",
        describe(&o)
    );
    let (current, total) = thread_row(&o.stderr);
    assert!(total > 100, "{what}: only {total} thread heaps were ever made");
    assert_eq!(
        current,
        1,
        "{what}: thread heaps still held at exit (a leak)\n{}",
        describe(&o)
    );
}

#[test]
fn c30_malloc_free_in_key_destructors_and_atexit() {
    for lib in BOTH {
        destructors(lib, "1");
        destructors(lib, "2");
        destructors(lib, "3");
    }
}

#[test]
fn c30_allocation_in_the_last_destructor_round_does_not_leak() {
    for lib in BOTH {
        destructors(lib, "4");
    }
}

#[test]
fn c31_threads_racing_on_first_use_while_options_are_read() {
    let prog = program("rel_firstuse.c", &[]);
    for lib in BOTH {
        for run_no in 0..10 {
            let what = format!("{lib:?} first use, run {run_no}");
            let mut cmd = command(lib, &prog, &["32"]);
            cmd.env("OXMALLOC_PURGE_DELAY", "0")
                .env("OXMALLOC_RESERVE", "64M")
                .env("OXMALLOC_ALLOW_THP", "0")
                .env("OXMALLOC_SHOW_STATS", "1")
                .env("OXMALLOC_VERBOSE", if run_no % 2 == 0 { "1" } else { "0" });
            let o = run(cmd, LIMIT);
            assert_ok(&o, "firstuse ok", &what);
            assert!(
                !String::from_utf8_lossy(&o.stderr).contains("warning"),
                "{what}: an option was not understood\n{}",
                describe(&o)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// D. Operating-system faults

#[test]
fn d32_rlimit_as_200_mb_eight_threads_every_allocation_function() {
    for lib in BOTH {
        let o = run_prog(lib, "rel_oom.c", &["200", "8"]);
        assert_ok(&o, "oom ok", &format!("{lib:?} RLIMIT_AS"));
    }
}

#[test]
fn d33_d34_mmap_failures_give_enomem_never_a_crash() {
    let prog = program("rel_syscalls.c", &["-rdynamic"]);
    for lib in BOTH {
        for mode in ["mmap", "mmap_random"] {
            let o = run(command(lib, &prog, &[mode]), LIMIT);
            assert_ok(&o, &format!("{mode} ok"), &format!("{lib:?} {mode}"));
        }
    }
}

/// Runs a `rel_syscalls` mode whose injected failure must be fatal; returns the line.
fn syscall_fatal(lib: Lib, mode: &str) -> String {
    let prog = program("rel_syscalls.c", &["-rdynamic"]);
    let what = format!("{lib:?} failing {mode}");
    let o = run(command(lib, &prog, &[mode]), LIMIT);
    assert!(stdout_of(&o).contains("armed"), "{what}\n{}", describe(&o));
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGABRT),
        "{what}: not SIGABRT\n{}",
        describe(&o)
    );
    let lines = error_lines(&o.stderr);
    assert_eq!(lines.len(), 1, "{what}: one line expected\n{}", describe(&o));
    let prefix = format!("oxmalloc: fatal: {mode} failed on 0x");
    assert!(lines[0].starts_with(&prefix), "{what}: {:?}", lines[0]);
    lines[0].clone()
}

#[test]
fn d33_unexpected_munmap_madvise_mprotect_failure_is_fatal_naming_the_call() {
    for lib in BOTH {
        syscall_fatal(lib, "madvise");
        syscall_fatal(lib, "munmap");
    }
    syscall_fatal(Lib::Hardened, "mprotect");
}

#[test]
fn d33_fatal_syscall_line_carries_the_errno_of_the_call() {
    for lib in BOTH {
        let line = syscall_fatal(lib, "madvise");
        assert!(line.ends_with("errno 22"), "{line}");
        let line = syscall_fatal(lib, "munmap");
        assert!(line.ends_with("errno 22"), "{line}");
    }
    let line = syscall_fatal(Lib::Hardened, "mprotect");
    assert!(line.ends_with("errno 12"), "{line}");
}

#[test]
fn d36_two_gib_of_120_byte_blocks_purged_while_every_thread_idles() {
    // CHECKLIST D36 at its full size (2 GiB: ~3 s and 2.4 GB of RSS here).
    let o = run_prog(Lib::Default, "rel_purge_big.c", &["2048", "20"]);
    assert_ok(&o, "purge ok", "2 GiB of 120 B blocks");
}

// ---------------------------------------------------------------------------
// E. fork and signals

#[test]
fn e38_fork_child_frees_blocks_cached_by_other_threads() {
    for lib in BOTH {
        let o = run_prog(lib, "rel_fork.c", &["free"]);
        assert_ok(&o, "fork ok", &format!("{lib:?} fork free"));
        assert!(stdout_of(&o).contains("child status 0 signal 0"), "{}", describe(&o));
    }
}

#[test]
fn e38_hardened_checks_still_work_in_a_fork_child() {
    for (mode, kind) in [
        ("double", "double free of "),
        ("overflow", "heap buffer overflow past the block at "),
    ] {
        let what = format!("hardened fork child {mode}");
        let o = run_prog(Lib::Hardened, "rel_fork.c", &[mode]);
        assert!(o.status.success(), "{what}: the parent failed\n{}", describe(&o));
        assert!(
            stdout_of(&o).contains("child status -1 signal 6"),
            "{what}: the child did not die of SIGABRT\n{}",
            describe(&o)
        );
        let lines = error_lines(&o.stderr);
        let expected = format!("oxmalloc: error: {kind}{:#x}", announced(&o));
        assert!(
            lines.len() == 1 && lines[0].starts_with(&expected),
            "{what}: expected one line {expected:?}\n{}",
            describe(&o)
        );
    }
}

#[test]
fn e39_fatal_error_from_a_signal_handler_and_with_memory_exhausted() {
    for mode in ["handler", "exhausted"] {
        for attempt in 0..3 {
            let what = format!("hardened double free, {mode}, attempt {attempt}");
            let o = run(
                command(Lib::Hardened, &program("rel_signal.c", &[]), &[mode]),
                Duration::from_secs(30),
            );
            assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{what}\n{}", describe(&o));
            let lines = error_lines(&o.stderr);
            let expected = format!("oxmalloc: error: double free of {:#x}", announced(&o));
            assert!(
                lines.len() == 1 && lines[0].starts_with(&expected),
                "{what}: expected {expected:?}\n{}",
                describe(&o)
            );
        }
    }
}
