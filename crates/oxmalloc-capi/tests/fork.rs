//! fork while threads allocate (`tests/c/fork.c`, CHECKLIST E37/E38): 50
//! forks from a process whose 4 threads churn; every child allocates every
//! size class up to 64 KiB and large sizes, frees the parent's blocks,
//! starts a thread, and exits cleanly (a hung child dies of SIGALRM and
//! fails the run).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn fork_while_threads_allocate() {
    let dir = TempDir::new("fork");
    let prog = compile_test_program("fork.c", &dir, &[]);
    let mut cmd = Command::new(&prog);
    preloaded(&mut cmd);
    let output = run(cmd, Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("fork: 50 children ok of 50"),
        "fork test failed: {}\n{stdout}\nstderr:\n{}",
        output.status,
        tail(&output.stderr)
    );
    // The parent and each child (they leave through exit) print a summary.
    let summaries = assert_served_by_oxmalloc(&output.stderr, "fork");
    assert_eq!(summaries, 51, "one statistics summary per process");
    assert_no_heap_errors(&output.stderr, "fork");
    println!("{}", stdout.trim());
}
