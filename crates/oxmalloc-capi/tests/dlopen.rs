//! A late `dlopen` of liboxmalloc.so by a threaded program
//! (`tests/c/dlopen.c`): the initial-exec TLS build must still load (it
//! needs 8 bytes of the C library's static-TLS reserve) and serve the
//! prefixed API on the main thread and on a thread started before the load.
//! A general-dynamic build, when present at `target/tls-gd/release` (made by
//! `scripts/capi/callgrind.sh`), is checked the same way.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn check(lib: &std::path::Path, model: &str) {
    let dir = TempDir::new("dlopen");
    let prog = compile_test_program("dlopen.c", &dir, &["-ldl"]);
    let mut cmd = Command::new(&prog);
    cmd.arg(lib);
    let output = run(cmd, Duration::from_secs(60));
    assert_success(&output, &format!("dlopen of {}", lib.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("dlopen ok (tls {model})")), "{stdout}");
}

#[test]
fn late_dlopen_initial_exec() {
    check(&lib_so(), "initial-exec");
}

#[test]
fn late_dlopen_general_dynamic_if_built() {
    let gd = release_dir().join("../tls-gd/release/liboxmalloc.so");
    if !gd.exists() {
        println!(
            "SKIPPED: no general-dynamic build at {} (scripts/capi/callgrind.sh makes one)",
            gd.display()
        );
        return;
    }
    check(&gd, "general-dynamic");
}
