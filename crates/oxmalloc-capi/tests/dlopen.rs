//! A late `dlopen` of liboxmalloc.so by a threaded program
//! (`tests/c/dlopen.c`): the initial-exec TLS build must still load (it
//! needs 8 bytes of the C library's static-TLS reserve) and serve the
//! prefixed API on the main thread and on a thread started before the load.
//! A general-dynamic build, when present at `target/tls-gd/release`
//! (`scripts/test.sh` builds it after the release build, as does
//! `scripts/capi/callgrind.sh`), is checked the same way; with
//! `OXTEST_REQUIRE_TLS_GD=1` (set by `scripts/test.sh`) a missing
//! one is a failure, not a skip.

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

/// The library under test: initial-exec but where `OXTEST_LIB_DIR` points
/// at another build (`common::lib_tls_model`).
#[test]
fn late_dlopen_initial_exec() {
    check(&lib_so(), &lib_tls_model());
}

#[test]
fn late_dlopen_general_dynamic_if_built() {
    let gd = release_dir().join("../tls-gd/release/liboxmalloc.so");
    let build = "cargo build --release -p oxmalloc-capi --features tls-general-dynamic --target-dir target/tls-gd";
    if !gd.exists() {
        assert!(
            std::env::var_os("OXTEST_REQUIRE_TLS_GD").is_none(),
            "OXTEST_REQUIRE_TLS_GD is set but there is no general-dynamic build at {} ({build})",
            gd.display()
        );
        return skip_because(&format!(
            "no general-dynamic build at {} (scripts/test.sh makes one: {build})",
            gd.display()
        ));
    }
    check(&gd, "general-dynamic");
}
