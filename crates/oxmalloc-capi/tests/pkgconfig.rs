//! The build tree's pkg-config file, `target/release/oxmalloc.pc` (written
//! by `build.rs` next to the library): `pkg-config --cflags --libs
//! oxmalloc` with `PKG_CONFIG_PATH=target/release` must compile and link a
//! C program against the release library, and the program must be served
//! by oxmalloc (its `malloc` is ours per `ox_is_ours`, it prints
//! `ox_version` and the statistics at exit).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const VERSION: &str = env!("CARGO_PKG_VERSION");

const PROGRAM: &str = r#"#include <oxmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *p = malloc(100);
    if (p == NULL) return 1;
    strcpy(p, "hello");
    printf("version %s, tls %s, malloc is oxmalloc's: %d, %s\n", ox_version(), ox_tls_model(), ox_is_ours(p), p);
    free(p);
    return 0;
}
"#;

/// `pkg-config ARGS oxmalloc` with the build tree's `.pc`; its stdout.
fn pkg_config(pkg_config: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(pkg_config);
    cmd.args(args)
        .arg("oxmalloc")
        .env("PKG_CONFIG_PATH", lib_dir())
        .env_remove("PKG_CONFIG_LIBDIR");
    let out = run(cmd, LIMIT);
    assert_success(
        &out,
        &format!("pkg-config {args:?} oxmalloc (PKG_CONFIG_PATH={})", lib_dir().display()),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn canonical(path: &str, what: &str) -> PathBuf {
    Path::new(path)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{what} {path}: {e}"))
}

#[test]
fn pkg_config_builds_a_program_served_by_oxmalloc() {
    let Some(pkg_config_bin) = find_program("pkg-config") else {
        return skip("pkg-config");
    };
    let lib = lib_so();
    let pc = lib_dir().join("oxmalloc.pc");
    assert!(
        pc.is_file(),
        "{} is missing: build.rs writes it on `cargo build --release -p oxmalloc-capi`",
        pc.display()
    );

    assert_eq!(
        pkg_config(&pkg_config_bin, &["--modversion"]),
        VERSION,
        "Version: of oxmalloc.pc"
    );
    let libdir = pkg_config(&pkg_config_bin, &["--variable=libdir"]);
    assert_eq!(
        canonical(&libdir, "libdir"),
        lib.parent().expect("lib dir"),
        "libdir of oxmalloc.pc is where the library is"
    );
    let includedir = pkg_config(&pkg_config_bin, &["--variable=includedir"]);
    assert_eq!(
        canonical(&includedir, "includedir"),
        include_dir().canonicalize().expect("include dir"),
        "includedir of oxmalloc.pc"
    );
    let static_libs = pkg_config(&pkg_config_bin, &["--static", "--libs"]);
    assert!(
        static_libs.contains("-lpthread") && static_libs.contains("-ldl"),
        "--static --libs lists the private libraries: {static_libs}"
    );

    let flags = pkg_config(&pkg_config_bin, &["--cflags", "--libs"]);
    assert!(
        flags.contains("-loxmalloc") && flags.contains("-I") && flags.contains("-L"),
        "pkg-config --cflags --libs oxmalloc: {flags}"
    );
    let dir = TempDir::new("pkgconfig");
    let source = dir.join("prog.c");
    std::fs::write(&source, PROGRAM).expect("write prog.c");
    let prog = dir.join("prog");
    let mut extra: Vec<&str> = flags.split_whitespace().collect();
    let rpath = format!("-Wl,-rpath,{libdir}");
    extra.push(&rpath);
    compile("cc", &[&source], &prog, &["-O1", "-Wall", "-fno-builtin"], &extra);

    let mut cmd = Command::new(&prog);
    cmd.env("OXMALLOC_SHOW_STATS", "1").env_remove("LD_PRELOAD");
    let output = run(cmd, LIMIT);
    assert_success(&output, "the program built with pkg-config");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = format!(
        "version {VERSION}, tls {}, malloc is oxmalloc's: 1, hello",
        lib_tls_model()
    );
    assert_eq!(stdout.trim(), expected, "the program built with pkg-config");
    let summaries = assert_served_by_oxmalloc(&output.stderr, "the program built with pkg-config");
    assert_eq!(summaries, 1, "one process, one statistics summary");
    println!("pkg-config --cflags --libs oxmalloc: {flags}\n{}", stdout.trim());
}
