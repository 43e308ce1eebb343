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

/// The child side of [`run_child_case`], for the test named `child`: runs
/// the case that `var` names (nothing when `var` is unset, as in the
/// ordinary test run) and prints `case {case}: ok` once it returns.
/// Panics on a case not in `cases`.
pub fn serve_child_case(var: &str, cases: &[(&str, fn())]) {
    let Ok(case) = std::env::var(var) else {
        return;
    };
    let Some((_, run)) = cases.iter().find(|(name, _)| *name == case) else {
        panic!("unknown case {case}");
    };
    run();
    println!("case {case}: ok");
}
