//! Start-up (`tests/c/startup.c`): the first allocator call of a process
//! through every entry point, from the main thread or a new one, in a
//! constructor; 16 threads racing on their first call; the
//! `OXMALLOC_VERBOSE` banner and the `OXMALLOC_SHOW_STATS` summary each
//! printed exactly once. Preloaded, and linked statically (where the
//! program's priority-101 constructor runs before liboxmalloc's).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const ENTRIES: [&str; 9] = [
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "free",
    "usable_size",
];

fn check_all_entries(prog: &Path, preload: bool, how: &str) {
    for first in ENTRIES {
        for place in ["main", "thread"] {
            let mut cmd = Command::new(prog);
            cmd.env("STARTUP_FIRST", first)
                .env("STARTUP_WHERE", place)
                .env("OXMALLOC_VERBOSE", "1")
                .env("OXMALLOC_SHOW_STATS", "1");
            if preload {
                cmd.env("LD_PRELOAD", lib_so());
            }
            let what = format!("{how}: first call {first} from the {place} thread");
            let output = run(cmd, LIMIT);
            assert_success(&output, &what);
            assert!(String::from_utf8_lossy(&output.stdout).contains("startup ok"), "{what}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            let banners = stderr
                .lines()
                .filter(|l| l.starts_with("oxmalloc ") && l.contains("(tls "))
                .count();
            assert_eq!(banners, 1, "{what}: the OXMALLOC_VERBOSE banner once\n{stderr}");
            assert_eq!(
                assert_served_by_oxmalloc(&output.stderr, &what),
                1,
                "{what}: the OXMALLOC_SHOW_STATS summary exactly once\n{stderr}"
            );
            assert_no_heap_errors(&output.stderr, &what);
        }
    }
}

#[test]
fn first_call_through_any_entry_preloaded() {
    let dir = TempDir::new("startup-preload");
    let prog = compile_test_program("startup.c", &dir, &[]);
    check_all_entries(&prog, true, "LD_PRELOAD");
}

#[test]
fn first_call_through_any_entry_static() {
    let dir = TempDir::new("startup-static");
    let archive = lib_a();
    let prog = compile_test_program("startup.c", &dir, &[archive.to_str().expect("utf-8 path"), "-ldl"]);
    check_all_entries(&prog, false, "liboxmalloc.a");
}

#[test]
fn no_output_without_options() {
    // Without OXMALLOC_* variables a preloaded program prints nothing extra.
    let dir = TempDir::new("startup-quiet");
    let prog = compile_test_program("startup.c", &dir, &[]);
    let mut cmd = Command::new(&prog);
    cmd.env("LD_PRELOAD", lib_so())
        .env_remove("OXMALLOC_VERBOSE")
        .env_remove("OXMALLOC_SHOW_STATS");
    let output = run(cmd, LIMIT);
    assert_success(&output, "quiet start-up");
    assert!(output.stderr.is_empty(), "unexpected stderr:\n{}", tail(&output.stderr));
}
