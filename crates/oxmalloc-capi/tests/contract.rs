//! CHECKLIST section A through the built library: `tests/c/contract.c`
//! run preloaded, linked against `liboxmalloc.so`, and linked statically
//! with `liboxmalloc.a`.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// Runs the contract program and checks its verdict and its stderr: the
/// only heap errors reported must be the deliberate foreign-pointer calls.
fn check_contract(output: &std::process::Output, how: &str) {
    let verdict = assert_checks_passed(output, "contract", how);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let foreign: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("FOREIGN ")).collect();
    assert_eq!(foreign.len(), 5, "the program lists its foreign pointers ({how})");
    let errors = error_lines(&output.stderr);
    for line in &errors {
        assert!(
            foreign.iter().any(|addr| line.contains(addr)),
            "unexpected heap error ({how}): {line}\nall errors:\n{}",
            errors.join("\n")
        );
    }
    // free, realloc and malloc_usable_size of each foreign pointer are reported.
    assert_eq!(
        errors.len(),
        15,
        "each foreign call reported once ({how}):\n{}",
        errors.join("\n")
    );
    println!("{how}: {verdict}");
}

#[test]
fn contract_preloaded() {
    let dir = TempDir::new("contract-preload");
    let prog = compile_test_program("contract.c", &dir, &["-ldl"]);
    let mut cmd = Command::new(&prog);
    cmd.env("LD_PRELOAD", lib_so());
    check_contract(&run(cmd, LIMIT), "LD_PRELOAD");
}

#[test]
fn contract_linked_shared() {
    let dir = TempDir::new("contract-shared");
    let prog = compile_linked("contract.c", &dir, Link::Shared, &["-ldl"]);
    check_contract(&run(Command::new(&prog), LIMIT), "linked with -loxmalloc");
}

#[test]
fn contract_linked_static() {
    let dir = TempDir::new("contract-static");
    // -rdynamic: the program looks up ox_is_ours and the glibc aliases with dlsym.
    let prog = compile_linked("contract.c", &dir, Link::Static, &["-rdynamic"]);
    check_contract(&run(Command::new(&prog), LIMIT), "linked with liboxmalloc.a");
}
