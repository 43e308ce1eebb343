//! Shared by the tests that run each case in a child process of their own
//! binary: a fresh allocator, options from the environment, and no other
//! test's threads mapping memory meanwhile.

use std::process::Command;

/// Re-runs this test binary's `child` test alone with `var` set to `case`,
/// no background purger and a long purge delay (so nothing is purged or
/// unmapped behind the case's back), then `env` (which may override
/// those). Panics unless the child succeeds and prints `case {case}: ok`
/// (a child that skipped the case would otherwise pass).
pub fn run_child_case(var: &str, case: &str, env: &[(&str, &str)]) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(var, case)
        .env("OXMALLOC_BACKGROUND_PURGE", "0")
        .env("OXMALLOC_PURGE_DELAY", "600000")
        .envs(env.iter().copied())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("case {case}: ok")),
        "case {case} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
