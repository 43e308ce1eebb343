//! Options through the C API: `tests/c/options.c` calls `ox_option_get`,
//! `ox_option_set`, `ox_option_set_text` and `ox_option_get_text` and checks
//! each result itself (among them: `PROF` set from a stack buffer that is
//! then wiped reads back intact, and the numeric setter refuses it); this
//! test checks its verdict, the warning for a too-long value, and that the
//! profile written at exit goes where `OXMALLOC_PROF` named at start-up
//! although the program overwrote the environment string.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs the program in `mode` with no `OXMALLOC_*` variable but `env`;
/// checks its verdict and returns (pid, stderr).
fn run_options(prog: &Path, dir: &TempDir, mode: &str, env: &[(&str, String)], how: &str) -> (u32, String) {
    let mut cmd = Command::new(prog);
    cmd.arg(dir.path()).arg(mode);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OXMALLOC_") {
            cmd.env_remove(key);
        }
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = run(cmd, LIMIT);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        output.status.success() && failed.is_empty() && stdout.contains(" checks, 0 failed"),
        "options.c {mode} ({how}): {}\n{}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        failed.join("\n"),
        tail(&output.stderr)
    );
    assert_no_heap_errors(&output.stderr, "options.c");
    let pid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PID "))
        .and_then(|p| p.trim().parse().ok())
        .expect("PID line");
    println!(
        "options.c {mode} ({how}): {} checks passed",
        stdout.lines().filter(|l| l.starts_with("ok ")).count()
    );
    (pid, stderr)
}

fn check_api(prog: &Path, dir: &TempDir, how: &str) {
    let (_, stderr) = run_options(prog, dir, "api", &[], how);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("oxmalloc: warning:")).collect();
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("OXMALLOC_PROF is 399 bytes long") && l.contains("at most 255")),
        "no warning naming OXMALLOC_PROF for the 399-byte value:\n{stderr}"
    );
}

#[test]
fn options_linked_shared() {
    let dir = TempDir::new("options-shared");
    let prog = compile_linked("options.c", &dir, Link::Shared, &[]);
    check_api(&prog, &dir, "linked with -loxmalloc");

    // OXMALLOC_PROF from the environment: read back, then the program
    // overwrites the environment string and sets PROF again; the profile
    // at exit still goes to the start-up path.
    let prof = format!("{}/env.%p.heap", dir.path().display());
    let (pid, stderr) = run_options(&prog, &dir, "env", &[("OXMALLOC_PROF", prof)], "linked with -loxmalloc");
    let at_exit = dir.join(&format!("env.{pid}.heap"));
    let text = std::fs::read_to_string(&at_exit)
        .unwrap_or_else(|e| panic!("no profile at exit at {}: {e}\nstderr:\n{stderr}", at_exit.display()));
    assert!(text.starts_with("heap profile: "), "{text}");
    assert!(
        !stderr.contains("cannot write the heap profile"),
        "a profile went to a bad path:\n{stderr}"
    );
}

#[test]
fn options_linked_static() {
    let dir = TempDir::new("options-static");
    let prog = compile_linked("options.c", &dir, Link::Static, &[]);
    check_api(&prog, &dir, "linked with liboxmalloc.a");
}
