//! The prefixed API not covered elsewhere (`tests/c/prefixed.c`):
//! `ox_calloc`, `ox_realloc`, `ox_reallocarray`, `ox_aligned_alloc`,
//! `ox_posix_memalign` with their return values and errno, `ox_stats_get`
//! (huge blocks, spans, threads, mappings, rss, heap errors), `ox_version`
//! (the crate's version and the header's macros), and the two statistics
//! printers: glibc's `malloc_stats()` and `ox_stats_print()` must each
//! print oxmalloc's table on stderr, not glibc's arenas. Linked with
//! `-loxmalloc` and with `liboxmalloc.a`.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The text between `start` and `end` marker lines of some stderr.
fn section<'a>(text: &'a str, start: &str, end: &str, how: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{how}: no {start:?} on stderr:\n{text}"));
    let rest = &text[from + start.len()..];
    let to = rest
        .find(end)
        .unwrap_or_else(|| panic!("{how}: no {end:?} after {start:?} on stderr:\n{text}"));
    &rest[..to]
}

/// One oxmalloc statistics table: its title line with our version, and
/// the `allocated blocks` row showing the 100 live blocks (the current
/// column) — not glibc's `malloc_stats` (`Arena 0:`, `system bytes`).
fn assert_oxmalloc_table(table: &str, printer: &str, how: &str) {
    let title = format!("oxmalloc {VERSION} statistics");
    assert_eq!(
        table.lines().filter(|l| l.trim_end() == title).count(),
        1,
        "{how}: {printer} did not print one oxmalloc table ({title:?}):\n{table}"
    );
    assert!(
        !table.contains("Arena 0") && !table.contains("system bytes"),
        "{how}: {printer} printed glibc's statistics:\n{table}"
    );
    let current_blocks = table
        .lines()
        .find_map(|l| l.trim().strip_prefix("allocated blocks"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{how}: {printer}: no `allocated blocks` row:\n{table}"));
    assert!(
        current_blocks >= 100,
        "{how}: {printer} shows {current_blocks} live blocks, the program holds 100:\n{table}"
    );
}

fn check(output: &Output, how: &str) {
    let verdict = assert_checks_passed(output, "prefixed", how);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Exactly one heap error: the deliberate free of a static array.
    let foreign: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("FOREIGN ")).collect();
    assert_eq!(foreign.len(), 1, "{how}: the program names its foreign pointer");
    let errors = error_lines(&output.stderr);
    assert!(
        errors.len() == 1 && errors[0].contains(foreign[0]),
        "{how}: expected one error line for the free of {}, got:\n{}",
        foreign[0],
        errors.join("\n")
    );
    let ours = section(&stderr, "== malloc_stats ==\n", "== ox_stats_print ==\n", how);
    assert_oxmalloc_table(ours, "malloc_stats()", how);
    let ours = section(&stderr, "== ox_stats_print ==\n", "== end ==\n", how);
    assert_oxmalloc_table(ours, "ox_stats_print()", how);
    println!(
        "{how}: {}; malloc_stats and ox_stats_print print oxmalloc's table",
        verdict
    );
}

#[test]
fn prefixed_api_linked_shared() {
    let dir = TempDir::new("prefixed-shared");
    let prog = compile_linked("prefixed.c", &dir, Link::Shared, &[]);
    let mut cmd = Command::new(&prog);
    cmd.arg(VERSION);
    check(&run(cmd, LIMIT), "linked with -loxmalloc");
}

#[test]
fn prefixed_api_linked_static() {
    let dir = TempDir::new("prefixed-static");
    let prog = compile_linked("prefixed.c", &dir, Link::Static, &[]);
    let mut cmd = Command::new(&prog);
    cmd.arg(VERSION);
    check(&run(cmd, LIMIT), "linked with liboxmalloc.a");
}

/// The drop-in case: a program that knows nothing of oxmalloc calls
/// glibc's `malloc_stats()`; preloaded, it gets oxmalloc's table.
#[test]
fn malloc_stats_preloaded() {
    let dir = TempDir::new("malloc-stats");
    let source = dir.join("stats.c");
    std::fs::write(
        &source,
        "#include <malloc.h>\n#include <stdio.h>\n#include <stdlib.h>\n\
         int main(void) {\n  void *live[100];\n  for (int i = 0; i < 100; i++) live[i] = malloc(48);\n\
         \x20 fputs(\"== malloc_stats ==\\n\", stderr);\n  malloc_stats();\n  fputs(\"== end ==\\n\", stderr);\n\
         \x20 for (int i = 0; i < 100; i++) free(live[i]);\n  puts(\"done\");\n  return 0;\n}\n",
    )
    .expect("write stats.c");
    let prog = dir.join("stats");
    compile("cc", &[&source], &prog, &["-O1", "-fno-builtin", "-Wall"], &[]);
    let mut cmd = Command::new(&prog);
    cmd.env("LD_PRELOAD", lib_so());
    let output = run(cmd, LIMIT);
    assert_success(&output, "malloc_stats under LD_PRELOAD");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let table = section(&stderr, "== malloc_stats ==\n", "== end ==\n", "LD_PRELOAD");
    assert_oxmalloc_table(table, "malloc_stats()", "LD_PRELOAD");
    println!("LD_PRELOAD: malloc_stats() prints oxmalloc's table");
}
