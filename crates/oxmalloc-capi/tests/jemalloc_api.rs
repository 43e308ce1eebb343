//! jemalloc's own API through the built library (`tests/c/jemalloc_api.c`):
//! linked with `-loxmalloc`, with `liboxmalloc.a`, and — the case it is
//! for — a program linked against jemalloc (`libjemalloc.so.2`, Debian's
//! `libjemalloc2`) with `liboxmalloc.so` preloaded, where every call must
//! reach oxmalloc. The same program run without the preload is jemalloc's
//! alone and must fail the checks (it finds no `ox_is_ours`, and jemalloc's
//! statistics do not move without a refresh): the test tells the two apart.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn check(output: &std::process::Output, how: &str) {
    let verdict = assert_checks_passed(output, "jemalloc_api", how);
    assert_no_heap_errors(&output.stderr, how);
    println!("{how}: {verdict}");
}

#[test]
fn jemalloc_api_linked_shared() {
    let dir = TempDir::new("jemalloc-api-shared");
    let prog = compile_linked("jemalloc_api.c", &dir, Link::Shared, &["-ldl"]);
    check(&run(Command::new(&prog), LIMIT), "linked with -loxmalloc");
}

#[test]
fn jemalloc_api_linked_static() {
    let dir = TempDir::new("jemalloc-api-static");
    // -rdynamic: the program looks up ox_is_ours with dlsym.
    let prog = compile_linked("jemalloc_api.c", &dir, Link::Static, &["-rdynamic"]);
    check(&run(Command::new(&prog), LIMIT), "linked with liboxmalloc.a");
}

/// Debian's jemalloc, where `libjemalloc2` installs it.
fn libjemalloc() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

#[test]
fn a_program_built_against_jemalloc_runs_on_oxmalloc_alone_when_preloaded() {
    let Some(jemalloc) = libjemalloc() else {
        skip_because("libjemalloc.so.2 is not installed (apt package libjemalloc2, in tests/PACKAGES)");
        return;
    };
    let dir = TempDir::new("jemalloc-api-preload");
    let prog = compile_test_program(
        "jemalloc_api.c",
        &dir,
        &[jemalloc.to_str().expect("utf-8 path"), "-ldl"],
    );
    let mut cmd = Command::new(&prog);
    cmd.env("LD_PRELOAD", lib_so());
    check(&run(cmd, LIMIT), "linked against jemalloc, liboxmalloc.so preloaded");

    // Without the preload, jemalloc serves it: the checks must see that
    // (it fails them, then crashes on calls that are undefined for it,
    // such as mallctl(NULL)).
    let alone = run(Command::new(&prog), LIMIT);
    let stdout = String::from_utf8_lossy(&alone.stdout);
    assert!(
        !alone.status.success()
            && stdout.contains("FAIL")
            && stdout.contains("ox_is_ours is found")
            && stdout.contains("stats.allocated"),
        "without the preload (jemalloc alone) the checks should fail:\n{stdout}"
    );
}
