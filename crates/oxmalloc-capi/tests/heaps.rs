//! First-class heaps, `ox_stats_json` and the profiling calls through the
//! C API: `tests/c/heaps.c`, linked with `-loxmalloc` (so `free` is
//! oxmalloc's as well), checks each call's results itself; this test
//! checks its verdict, parses every statistics JSON it printed with
//! serde_json and checks the allocated figures around `ox_heap_destroy`,
//! and that the profile it wrote has samples.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn allocated_current(json: &serde_json::Value) -> u64 {
    json["allocated_bytes"]["current"]
        .as_u64()
        .unwrap_or_else(|| panic!("no allocated_bytes.current in {json}"))
}

/// Runs the compiled `heaps.c` and checks everything it printed.
fn check_heaps(prog: &std::path::Path, dir: &TempDir, how: &str) {
    let mut cmd = Command::new(prog);
    cmd.arg(dir.path()).env_remove("OXMALLOC_PROF");
    let output = run(cmd, LIMIT);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        output.status.success() && failed.is_empty() && stdout.contains(" checks, 0 failed"),
        "heaps.c ({how}): {}\n{}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        failed.join("\n"),
        tail(&output.stderr)
    );
    // The only heap error is none; the only warning the bad profile path.
    assert_no_heap_errors(&output.stderr, "heaps.c");

    // Every JSON document parses, with the documented fields.
    let mut docs = std::collections::HashMap::new();
    for line in stdout.lines().filter_map(|l| l.strip_prefix("JSON ")) {
        let (label, text) = line.split_once(' ').expect("JSON LABEL {...}");
        let value: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{label}: invalid JSON ({e}):\n{text}"));
        for key in [
            "allocated_bytes",
            "allocated_blocks",
            "reserved_bytes",
            "threads",
            "process",
            "classes",
        ] {
            assert!(value.get(key).is_some(), "{label}: no {key:?} in {text}");
        }
        assert!(value["classes"].is_array(), "{label}: classes is not an array");
        docs.insert(label.to_string(), value);
    }
    for label in ["before-destroy", "with-live-blocks", "after-destroy", "final"] {
        assert!(docs.contains_key(label), "no JSON {label} line in:\n{stdout}");
    }
    let before = allocated_current(&docs["before-destroy"]);
    let during = allocated_current(&docs["with-live-blocks"]);
    let after = allocated_current(&docs["after-destroy"]);
    // 2000 blocks of 64..4964 bytes, 2 MiB and 8 MiB.
    assert!(
        during >= before + (10 << 20),
        "allocated: before {before}, with the heap's blocks {during}"
    );
    assert!(
        after <= before + 65536,
        "ox_heap_destroy: allocated before {before}, after {after}"
    );
    let live_blocks = |label: &str| docs[label]["allocated_blocks"]["current"].as_u64().expect("blocks");
    assert!(live_blocks("after-destroy") + 2000 <= live_blocks("with-live-blocks"));

    // The profile: a header, samples, and the memory map.
    let profile = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PROFILE "))
        .expect("PROFILE line");
    let text = std::fs::read_to_string(profile).unwrap_or_else(|e| panic!("{profile}: {e}"));
    assert!(text.starts_with("heap profile: "), "{text}");
    let samples = text.lines().skip(1).take_while(|l| !l.is_empty()).count();
    // 400 blocks of 10000 bytes, one sample per ~4 KiB: about 1000 samples
    // if each were sampled at most once... at least a few dozen.
    assert!(samples >= 20, "only {samples} samples:\n{text}");
    assert!(text.contains("\nMAPPED_LIBRARIES:\n"), "no memory map in the profile");
    println!(
        "heaps.c ({how}): {} checks passed, {samples} samples in the profile",
        stdout.lines().filter(|l| l.starts_with("ok ")).count()
    );
}

#[test]
fn heaps_linked_shared() {
    let dir = TempDir::new("heaps-shared");
    let prog = compile_linked("heaps.c", &dir, Link::Shared, &[]);
    check_heaps(&prog, &dir, "linked with -loxmalloc");
}

#[test]
fn heaps_linked_static() {
    let dir = TempDir::new("heaps-static");
    let prog = compile_linked("heaps.c", &dir, Link::Static, &[]);
    check_heaps(&prog, &dir, "linked with liboxmalloc.a");
}
