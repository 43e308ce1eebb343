//! C++ operator new/delete through the preloaded library (`tests/c/cxx.cpp`),
//! and the abort path of a throwing `operator new` in a process without a
//! C++ runtime (`tests/c/new_abort.c`).

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn check_cxx_output(output: &std::process::Output, what: &str) {
    let verdict = assert_checks_passed(output, "cxx", what);
    assert_served_by_oxmalloc(&output.stderr, what);
    assert_no_heap_errors(&output.stderr, what);
    println!("{what}: {verdict}");
}

#[test]
fn cxx_new_delete_preloaded() {
    if !have("c++") {
        return skip("c++");
    }
    let dir = TempDir::new("cxx");
    let prog = compile_test_program("cxx.cpp", &dir, &["-ldl"]);
    let mut cmd = Command::new(&prog);
    preloaded(&mut cmd);
    check_cxx_output(&run(cmd, LIMIT), "cxx (preloaded)");
}

#[test]
fn cxx_new_handler_can_release_memory() {
    if !have("c++") {
        return skip("c++");
    }
    let dir = TempDir::new("cxx-limit");
    let prog = compile_test_program("cxx.cpp", &dir, &["-ldl"]);
    let mut cmd = Command::new(&prog);
    // With a cap on mapped memory, the handler frees a reserve and the retry
    // inside operator new succeeds.
    preloaded(&mut cmd).env("OXMALLOC_LIMIT", "512M");
    check_cxx_output(&run(cmd, LIMIT), "cxx (OXMALLOC_LIMIT=512M)");
}

#[test]
fn throwing_new_without_cxx_runtime_aborts_with_a_message() {
    let dir = TempDir::new("new-abort");
    let prog = compile_test_program("new_abort.c", &dir, &["-ldl"]);

    let mut ok = Command::new(&prog);
    ok.arg("ok").env("LD_PRELOAD", lib_so());
    let output = run(ok, LIMIT);
    assert_success(&output, "new/delete from C");

    let mut cmd = Command::new(&prog);
    cmd.env("LD_PRELOAD", lib_so());
    let output = run(cmd, LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc_sigabrt()),
        "operator new without a C++ runtime must abort: {}\nstdout:\n{}\nstderr:\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("out of memory in operator new"))
        .collect();
    assert_eq!(lines.len(), 1, "one line on stderr naming the failure:\n{stderr}");
    assert!(lines[0].starts_with("oxmalloc: fatal: "), "{}", lines[0]);
}

fn libc_sigabrt() -> i32 {
    6
}
