//! `oxbench prof` end to end: a profile written by a Rust program with
//! oxmalloc as its global allocator (`src/bin/prof_fixture.rs`), and one
//! written by a C program preloaded with `target/release/liboxmalloc.so`
//! (`tests/prof_fixture.c`), each with a dominant allocation site (90% of
//! the bytes) and a minor one. `oxbench prof` must put the dominant site's
//! function on top with the larger share, and write collapsed stacks and a
//! flame graph (parsed as XML) that name it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oxbench-prof-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn show(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A row of the sites table: share (percent) and function.
#[derive(Debug)]
struct Row {
    share: f64,
    function: String,
}

fn table_rows(stdout: &str) -> Vec<Row> {
    stdout
        .lines()
        .skip_while(|l| !(l.contains("bytes") && l.contains("share") && l.contains("function")))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("more sites"))
        .map(|l| {
            let cols: Vec<&str> = l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
            assert!(
                cols.len() >= 4,
                "a table row has bytes, share, function, location: {l:?}"
            );
            let share = cols[1]
                .trim_end_matches('%')
                .parse()
                .unwrap_or_else(|_| panic!("share in {l:?}"));
            Row {
                share,
                function: cols[2].to_string(),
            }
        })
        .collect()
}

/// Runs `oxbench prof` on `profile` and checks the table, the collapsed
/// stacks and the flame graph for `dominant` and `minor` (function names).
fn check_prof(profile: &Path, out: &Path, dominant: &str, minor: &str) {
    let collapsed = out.join("stacks.collapsed");
    let svg = out.join("flame.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_oxbench"))
        .args(["prof", "--top", "5"])
        .arg(profile)
        .arg("--collapsed")
        .arg(&collapsed)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(output.status.success(), "oxbench prof: {}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    let rows = table_rows(&stdout);
    assert!(!rows.is_empty(), "no sites table: {}", show(&output));
    assert!(
        rows[0].function.ends_with(dominant),
        "the top site should be {dominant}, rows: {rows:?}\n{stdout}"
    );
    let minor_row = rows
        .iter()
        .find(|r| r.function.ends_with(minor))
        .unwrap_or_else(|| panic!("no row for {minor}: {rows:?}\n{stdout}"));
    assert!(
        rows[0].share > 60.0 && rows[0].share > 3.0 * minor_row.share && minor_row.share > 1.0,
        "shares: {dominant} {}%, {minor} {}% (expected about 90% and 10%)",
        rows[0].share,
        minor_row.share
    );

    // Collapsed stacks: outermost first, the site as the leaf.
    let text = std::fs::read_to_string(&collapsed).unwrap_or_else(|e| panic!("{}: {e}", collapsed.display()));
    let leaf_bytes = |name: &str| -> u64 {
        text.lines()
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(stack, _)| stack.rsplit(';').next().is_some_and(|leaf| leaf.ends_with(name)))
            .map(|(_, n)| n.parse::<u64>().expect("bytes"))
            .sum()
    };
    let (d, m) = (leaf_bytes(dominant), leaf_bytes(minor));
    assert!(
        d > 3 * m && m > 0,
        "collapsed: {dominant} {d} bytes, {minor} {m}:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("main;") && l.contains(dominant)),
        "main is an outer frame of the site:\n{text}"
    );

    // The flame graph: valid XML naming the site.
    let svg_text = std::fs::read_to_string(&svg).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
    // inferno's SVG declares its DOCTYPE.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&svg_text, options)
        .unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        titles.iter().any(|t| t.contains(dominant)),
        "no frame titled {dominant} in the SVG ({} titles)",
        titles.len()
    );
}

#[test]
fn rust_program_profile_to_flame_graph() {
    let dir = tmp("rust");
    let profile = dir.join("p.heap");
    let output = Command::new(env!("CARGO_BIN_EXE_oxbench-prof-fixture"))
        .arg(&profile)
        .env("OXMALLOC_PROF", dir.join("exit.%p.heap"))
        .env("OXMALLOC_PROF_SAMPLE", "16K")
        .output()
        .unwrap();
    assert!(output.status.success(), "fixture: {}", show(&output));
    assert!(profile.exists(), "no profile: {}", show(&output));
    // OXMALLOC_PROF also wrote its exit profile.
    let exit_profile = dir.join(format!("exit.{}.heap", output_pid(&dir)));
    assert!(exit_profile.exists(), "no exit profile in {}", dir.display());
    check_prof(&profile, &dir, "::dominant_site", "::minor_site");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pid in the name of the one `exit.PID.heap` file of `dir`.
fn output_pid(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exit.") && n.ends_with(".heap"))
        .collect();
    assert_eq!(names.len(), 1, "exit profiles: {names:?}");
    names[0]["exit.".len()..names[0].len() - ".heap".len()].to_string()
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Compiles `tests/prof_fixture.c`; `None` (after printing why) without gcc.
fn c_fixture(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let Some(gcc) = find_program("gcc") else {
        println!("SKIPPED: gcc not installed (apt-get install gcc)");
        eprintln!("SKIPPED: gcc not installed (apt-get install gcc)");
        return None;
    };
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/liboxmalloc.so");
    assert!(
        lib.exists(),
        "{} is missing: run cargo build --release first",
        lib.display()
    );
    let exe = dir.join("prof_fixture");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prof_fixture.c");
    let cc = Command::new(gcc)
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(cc.status.success(), "gcc: {}", show(&cc));
    Some((exe, lib.canonicalize().unwrap()))
}

#[test]
fn c_program_preloaded_profile_to_flame_graph() {
    // Sampling from ox_prof_start, the profile from ox_prof_dump.
    let dir = tmp("c");
    let Some((exe, lib)) = c_fixture(&dir) else {
        return;
    };
    let profile = dir.join("c.heap");
    let output = Command::new(&exe)
        .arg(&profile)
        .env("LD_PRELOAD", &lib)
        .env_remove("OXMALLOC_PROF")
        .output()
        .unwrap();
    assert!(output.status.success(), "C fixture: {}", show(&output));
    check_prof(&profile, &dir, "dominant_site", "minor_site");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_program_preloaded_exit_profile_to_flame_graph() {
    // OXMALLOC_PROF: the profile is written at exit.
    let dir = tmp("c-exit");
    let Some((exe, lib)) = c_fixture(&dir) else {
        return;
    };
    let output = Command::new(&exe)
        .env("LD_PRELOAD", &lib)
        .env("OXMALLOC_PROF", dir.join("exit.%p.heap"))
        .env("OXMALLOC_PROF_SAMPLE", "16K")
        .output()
        .unwrap();
    assert!(output.status.success(), "C fixture: {}", show(&output));
    let profile = dir.join(format!("exit.{}.heap", output_pid(&dir)));
    check_prof(&profile, &dir, "dominant_site", "minor_site");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression test for a livelock fixed in d2f5c34: larson (2 threads)
/// under `OXMALLOC_PROF` could spin forever in `Heap::find_page` ->
/// `park_full`, whose `compare_exchange(0, NOTIFY)` failed on a bin page
/// whose `thread_free` was exactly `NOTIFY`. Uses the release worker (the
/// debug one rarely hit it).
#[test]
fn larson_under_profiling_finishes() {
    let worker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/oxbench-worker-oxmalloc");
    assert!(
        worker.exists(),
        "{} is missing: run cargo build --release first",
        worker.display()
    );
    let dir = tmp("larson");
    for attempt in 1..=3 {
        let mut child = Command::new(&worker)
            .args(["run", "larson", "2", "0.3"])
            .env("OXMALLOC_PROF", dir.join("l.%p.heap"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "attempt {attempt}: {status}");
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "attempt {attempt}: larson under OXMALLOC_PROF still running after 30 s (a 0.5 s run): livelock"
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
