//! Smoke test of the `oxbench` command: a tiny run for two allocators writes
//! JSON that loads back and SVG charts that parse as XML; `report` re-renders.

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

use oxbench::sample::{InstrCount, Report, Route};
use std::path::{Path, PathBuf};
use std::process::Command;

fn oxbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxbench"))
}

fn worker_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_oxbench")).parent().unwrap().to_path_buf()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oxbench-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `oxbench run` with the test's workers, no build, no progress bar,
/// writing into `out`; `args` are the rest.
fn run_tiny(out: &Path, args: &[&str]) -> std::process::Output {
    oxbench()
        .args(["run", "--no-build", "--quiet"])
        .args(args)
        .arg("--worker-dir")
        .arg(worker_dir())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn check_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert!(root.descendants().filter(|n| n.has_tag_name("rect")).count() > 2);
    let texts: String = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        texts.contains("glibc") && texts.contains("oxmalloc"),
        "legend in {}",
        path.display()
    );
}

#[test]
fn tiny_run_writes_json_and_charts_and_report_rerenders() {
    let out = tmp("run");
    let json = out.join("samples.json");
    let json_arg = json.to_str().unwrap();
    let st = run_tiny(
        &out,
        &[
            "--alloc",
            "glibc,oxmalloc",
            "--bench",
            "glibc-simple,xmalloc,latency,alloc-test",
            "--threads",
            "1,2",
            "--reps",
            "2",
            "--scale",
            "0.003",
            "--baseline",
            "glibc",
            "--json",
            json_arg,
        ],
    );
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&st.stderr));
    assert!(stdout.contains("Summary: geometric means"), "{stdout}");

    let r = Report::load(&json).unwrap();
    assert_eq!(r, Report::load(&out.join("report.json")).unwrap());
    // glibc-simple is single-threaded; the others run at 1 and 2 threads.
    assert_eq!(r.samples.len(), 2 * 2 * (1 + 2 + 2 + 2));
    assert!(r.samples.iter().all(|s| s.ok), "{:?}", r.samples.iter().find(|s| !s.ok));
    assert!(r.samples.iter().all(|s| s.max_rss_kib > 0 && s.wall_s > 0.0));
    // The peak is the worker's own (VmHWM), not wait4's, which counts the
    // runner's memory too (docs/PERFORMANCE.md E26).
    for s in &r.samples {
        let own = s.outcome.as_ref().and_then(|o| o.peak_rss_kib);
        assert_eq!(
            own,
            Some(s.max_rss_kib),
            "{} {}: peak RSS not the worker's own",
            s.alloc,
            s.bench
        );
    }
    assert_eq!(r.route_of("glibc"), Some(Route::GlobalAllocator));
    assert_eq!(r.meta.baseline, "glibc");
    let lat = r.samples.iter().find(|s| s.bench == "latency").unwrap();
    assert!(lat.outcome.as_ref().unwrap().latency.contains_key("malloc"));

    for chart in ["cost.svg", "memory.svg", "threads-alloc-test.svg"] {
        check_svg(&out.join(chart));
    }

    let again = tmp("report");
    let st = oxbench()
        .arg("report")
        .arg(&json)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = std::fs::read_to_string(again.join("report.txt")).unwrap();
    assert!(text.contains("xmalloc (threads 2"), "{text}");
    assert!(text.contains("global_allocator"));
    check_svg(&again.join("cost.svg"));
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn a_preloaded_library_is_a_row_and_a_missing_one_is_skipped() {
    let out = tmp("preload");
    // Preloading the C library itself is harmless and always possible.
    let arch = std::env::consts::ARCH;
    let libc = [format!("/lib/{arch}-linux-gnu/libc.so.6"), "/lib64/libc.so.6".into()]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("libc.so.6");
    let alloc = format!("glibc,libc-again={libc},ghost=/nonexistent/libghost.so");
    let st = run_tiny(
        &out,
        &[
            "--bench",
            "glibc-simple",
            "--reps",
            "1",
            "--scale",
            "0.002",
            "--alloc",
            &alloc,
        ],
    );
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let r = Report::load(&out.join("report.json")).unwrap();
    assert_eq!(r.route_of("libc-again"), Some(Route::LdPreload));
    let row = r.samples.iter().find(|s| s.alloc == "libc-again").unwrap();
    assert!(row.ok && row.command.starts_with("LD_PRELOAD="), "{row:?}");
    assert!(r
        .skipped
        .iter()
        .any(|s| s.name == "ghost" && s.reason.contains("does not exist")));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_failing_run_is_reported_with_its_command_and_a_nonzero_exit() {
    // A "preload" that is not a library makes the loader complain but the
    // worker still runs; an allocator whose worker crashes is simulated by
    // pointing the worker directory at one where `oxbench-worker-oxmalloc`
    // is a script that exits with status 3.
    let out = tmp("fail");
    let dir = out.join("workers");
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("oxbench-worker-oxmalloc");
    std::fs::write(&fake, "#!/bin/sh\necho 'DATA CORRUPTION in fake: byte 0' >&2\nexit 3\n").unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let st = oxbench()
        .args([
            "run",
            "--no-build",
            "--quiet",
            "--bench",
            "mleak",
            "--reps",
            "1",
            "--scale",
            "0.002",
        ])
        .args(["--alloc", "oxmalloc"])
        .arg("--worker-dir")
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1));
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("DATA CORRUPTION in fake"), "{text}");
    assert!(text.contains("oxbench-worker-oxmalloc run mleak 1 0.002"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_command_of_the_users_runs_under_each_preloadable_allocator_and_alone() {
    // The C library preloaded again stands in for an allocator library; the
    // command appends what it was preloaded with to a file, so the file
    // tells which runs the preload reached.
    let out = tmp("cmd");
    let libc = [
        format!("/lib/{}-linux-gnu/libc.so.6", std::env::consts::ARCH),
        "/lib64/libc.so.6".into(),
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libc.so.6");
    let seen = out.join("seen");
    let probe = format!("probe=echo \"${{LD_PRELOAD:-none}}\" >> '{}'", seen.display());
    let alloc = format!("glibc,libc-again={libc}");
    let st = run_tiny(
        &out,
        &["--cmd", &probe, "--reps", "2", "--alloc", &alloc, "--baseline", "glibc"],
    );
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let mut lines: Vec<String> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, [libc.clone(), libc.clone(), "none".into(), "none".into()]);
    let r = Report::load(&out.join("report.json")).unwrap();
    // With --cmd and no --bench, only the command runs.
    assert!(r.samples.iter().all(|s| s.bench == "probe"), "{:?}", r.samples);
    assert_eq!(r.samples.len(), 4);
    for s in &r.samples {
        assert!(s.ok && s.max_rss_kib > 0 && s.wall_s > 0.0, "{s:?}");
    }
    let again = r.samples.iter().find(|s| s.alloc == "libc-again").unwrap();
    assert!(
        again.command.starts_with("LD_PRELOAD=") && again.command.contains("sh -c 'echo"),
        "{}",
        again.command
    );
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(text.contains("probe: your command, sh -c"), "{text}");

    // A command that fails fails the run, with the line that reproduces it.
    let st = run_tiny(
        &out,
        &["--cmd", "boom=echo oops >&2; exit 3", "--reps", "1", "--alloc", "glibc"],
    );
    assert_eq!(st.status.code(), Some(1));
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(text.contains("FAILED") && text.contains("exit status 3"), "{text}");
    assert!(text.contains("sh -c 'echo oops >&2; exit 3'"), "{text}");

    // Names are checked: a built-in's name, or no name, is refused up front.
    for bad in ["larson=true", "=true", "x y=true", "ok="] {
        let st = run_tiny(&out, &["--cmd", bad, "--alloc", "glibc"]);
        assert_eq!(
            st.status.code(),
            Some(2),
            "{bad}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    let st = run_tiny(&out, &["--cmd", "a=true", "--cmd", "a=false", "--alloc", "glibc"]);
    assert!(
        !st.status.success() && String::from_utf8_lossy(&st.stderr).contains("given twice"),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_second_setting_of_one_allocator_runs_with_its_own_variables() {
    // glibc twice: `glibc` and `g2=glibc` with a variable of its own; the
    // command records the variable, the workload's rows record their
    // command lines.
    let out = tmp("alloc-env");
    let seen = out.join("seen");
    let probe = format!("probe=echo \"${{PROBE_SETTING:-unset}}\" >> '{}'", seen.display());
    let st = run_tiny(
        &out,
        &[
            "--cmd",
            &probe,
            "--bench",
            "glibc-simple",
            "--scale",
            "0.002",
            "--reps",
            "2",
            "--alloc",
            "glibc,g2=glibc",
            "--alloc-env",
            "g2:PROBE_SETTING=second",
            "--baseline",
            "glibc",
        ],
    );
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let mut lines: Vec<String> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["second", "second", "unset", "unset"]);
    let r = Report::load(&out.join("report.json")).unwrap();
    let simple = |alloc: &str| {
        r.samples
            .iter()
            .find(|s| s.alloc == alloc && s.bench == "glibc-simple")
            .unwrap_or_else(|| panic!("no glibc-simple row for {alloc}: {:?}", r.samples))
    };
    assert!(simple("g2").ok && simple("g2").command.contains("PROBE_SETTING=second"));
    assert!(
        !simple("glibc").command.contains("PROBE_SETTING"),
        "{}",
        simple("glibc").command
    );
    assert_eq!(r.route_of("g2"), Some(Route::GlobalAllocator));
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(text.contains("g2: is glibc, runs with PROBE_SETTING=second"), "{text}");

    // A variable for an allocator that is not in the run is refused.
    let st = run_tiny(
        &out,
        &["--bench", "glibc-simple", "--alloc", "glibc", "--alloc-env", "g3:K=V"],
    );
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && err.contains("no allocator \"g3\""), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_gap_is_rerun_with_the_two_allocators_alone() {
    // `slow` is glibc made to map every block (a system call per malloc,
    // about 170 times glibc's time on this row): glibc is far more than 10%
    // faster, so glibc-simple@1 is a gap of `slow`'s, rerun twice with the
    // two alone.
    let out = tmp("confirm");
    let args = |confirm: &'static str| {
        [
            "--bench",
            "glibc-simple",
            "--scale",
            "0.002",
            "--reps",
            "2",
            "--alloc",
            "slow=glibc,glibc",
            "--alloc-env",
            "slow:GLIBC_TUNABLES=glibc.malloc.mmap_threshold=0",
            "--baseline",
            "glibc",
            "--confirm-gaps",
            confirm,
        ]
    };
    let st = run_tiny(&out, &args("2"));
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let r = Report::load(&out.join("report.json")).unwrap();
    assert_eq!(
        r.samples.len(),
        4,
        "the table keeps its own repetitions: {:?}",
        r.samples
    );
    let mut reruns: Vec<(&str, usize)> = r.confirm.iter().map(|s| (s.alloc.as_str(), s.rep)).collect();
    reruns.sort();
    assert_eq!(reruns, [("glibc", 2), ("glibc", 3), ("slow", 2), ("slow", 3)]);
    assert!(
        r.confirm
            .iter()
            .all(|s| s.ok && s.bench == "glibc-simple" && s.threads == 1),
        "{:?}",
        r.confirm
    );
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        text.contains("rerun 2 rounds, the two alone: x") && text.contains("slow faster in 0/2: the gap stands"),
        "{text}"
    );
    assert!(text.contains("--confirm-gaps 2: each synthetic row"), "{text}");
    // The default reruns nothing.
    let st = run_tiny(&out, &args("0"));
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let r = Report::load(&out.join("report.json")).unwrap();
    assert!(r.confirm.is_empty(), "{:?}", r.confirm);
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(text.contains("slow faster in 0/2") && !text.contains("rerun"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn list_names_workloads_and_allocators() {
    let st = oxbench()
        .args(["list", "--no-build", "--worker-dir"])
        .arg(worker_dir())
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = String::from_utf8_lossy(&st.stdout);
    for w in oxbench::workloads::all() {
        assert!(text.contains(w.name), "{} missing from list", w.name);
    }
    assert!(text.contains("oxmalloc") && text.contains("glibc"));
}

#[test]
fn real_programs_run_or_are_skipped_with_a_reason() {
    let out = tmp("real");
    let st = run_tiny(
        &out,
        &[
            "--bench",
            "real",
            "--reps",
            "1",
            "--scale",
            "0.01",
            "--alloc",
            "glibc,jemalloc-deb",
        ],
    );
    let r = Report::load(&out.join("report.json")).unwrap();
    assert!(
        st.status.success(),
        "{:?}",
        r.samples.iter().filter(|s| !s.ok).collect::<Vec<_>>()
    );
    for p in oxbench::real::PROGRAMS {
        let ran = r.samples.iter().any(|s| s.bench == p.name);
        let skipped = r
            .skipped
            .iter()
            .any(|s| s.name == p.name && s.reason.contains("apt-get install"));
        assert!(ran != skipped, "{}: ran {ran}, skipped {skipped}", p.name);
        if ran {
            let glibc = r
                .samples
                .iter()
                .find(|s| s.bench == p.name && s.alloc == "glibc")
                .unwrap();
            assert!(glibc.max_rss_kib > 0 && glibc.wall_s > 0.0, "{glibc:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn env_reaches_every_worker_and_is_recorded() {
    // OXMALLOC_PROF in the workers' environment: each oxmalloc worker
    // writes a heap profile at exit, which `oxbench prof` reads.
    let out = tmp("env");
    let prof = out.join("w.%p.heap");
    let env_arg = format!("OXMALLOC_PROF={}", prof.display());
    let st = run_tiny(
        &out,
        &[
            "--alloc",
            "oxmalloc",
            "--bench",
            "glibc-simple,xmalloc",
            "--threads",
            "2",
            "--reps",
            "2",
            "--scale",
            "0.003",
            "--baseline",
            "oxmalloc",
            "--env",
            &env_arg,
            "--env",
            "OXMALLOC_PROF_SAMPLE=64K",
        ],
    );
    assert!(
        st.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    let r = Report::load(&out.join("report.json")).unwrap();
    assert_eq!(
        r.meta.env,
        vec![env_arg.clone(), "OXMALLOC_PROF_SAMPLE=64K".to_string()]
    );
    assert!(r.meta.notes.iter().any(|n| n.contains(&env_arg)), "{:?}", r.meta.notes);
    assert!(
        r.samples.iter().all(|s| s.command.contains(&env_arg)),
        "the reproduce line carries the variables"
    );
    let profiles: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "heap"))
        .collect();
    assert_eq!(profiles.len(), 4, "one profile per worker run: {profiles:?}");
    let st = oxbench()
        .arg("prof")
        .arg(&profiles[0])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    // A bad --env is refused.
    let st = run_tiny(
        &out,
        &["--alloc", "oxmalloc", "--bench", "xmalloc", "--env", "NOEQUALS"],
    );
    assert_eq!(st.status.code(), Some(2), "{}", String::from_utf8_lossy(&st.stderr));
    let _ = std::fs::remove_dir_all(&out);
}

/// Whether valgrind runs here; if not, says that `test` is skipped.
fn valgrind_or_skip(test: &str) -> bool {
    let has_valgrind = oxbench::callgrind::valgrind_available();
    if !has_valgrind {
        eprintln!("SKIPPED: {test}: valgrind is not installed (scripts/setup.sh installs it)");
    }
    has_valgrind
}

/// Runs `oxbench callgrind --no-build ARGS --json JSON` on the test
/// workers, checks that it succeeded, and returns the report and stdout.
fn callgrind_to_json(args: &[&str], json: &Path) -> (Report, String) {
    let o = oxbench()
        .args(["callgrind", "--no-build"])
        .args(args)
        .arg("--json")
        .arg(json)
        .arg("--worker-dir")
        .arg(worker_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    (Report::load(json).unwrap(), stdout)
}

/// `oxbench callgrind --bytes`: the pairs ask for the size given, through
/// the workers, the C program and the one-program counts, and the report
/// says so. glibc serves 32 B from its thread cache and 64 KiB from its
/// heap proper, so its counts tell whether the size reached it.
#[test]
fn callgrind_counts_pairs_of_the_size_asked() {
    if !valgrind_or_skip("callgrind --bytes test") {
        return;
    }
    let out = tmp("callgrind-bytes");
    let counts = |bytes: &str| {
        let json = out.join(format!("counts-{bytes}.json"));
        let (report, stdout) = callgrind_to_json(&["--alloc", "glibc", "--pairs", "2000", "--bytes", bytes], &json);
        assert!(
            stdout.contains(&format!("pair of {bytes} B")),
            "the report does not name the size:\n{stdout}"
        );
        (report.instructions, stdout)
    };
    let (small, _) = counts("32");
    let (big, stdout) = counts("65536");
    assert!(big.iter().all(|c| c.bytes == 65536), "{big:?}");
    assert!(
        big.iter().all(|c| !c.via.contains("constant")),
        "a constant layout was counted at another size than its own:\n{stdout}"
    );
    for via in ["GlobalAlloc", "C ABI", "GlobalAlloc value, opaque layout"] {
        let per_pair = |counts: &[InstrCount]| {
            counts
                .iter()
                .find(|c| c.via == via)
                .unwrap_or_else(|| panic!("no glibc count via {via}:\n{stdout}"))
                .per_pair
        };
        let (s, b) = (per_pair(&small), per_pair(&big));
        assert!(
            b > s + 20.0,
            "glibc via {via}: {b} instructions at 64 KiB against {s} at 32 B"
        );
    }
    // A size of 0 is refused.
    let o = oxbench()
        .args(["callgrind", "--no-build", "--bytes", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&out);
}

/// `oxbench callgrind` end to end: instruction counts per pair for oxmalloc
/// and glibc through their workers, through the C ABI (glibc) and through
/// `GlobalAlloc` called on the allocator values in one program, written to
/// JSON. (Debug builds: the counts are checked for plausibility only.)
#[test]
fn callgrind_counts_instructions_per_pair() {
    if !valgrind_or_skip("callgrind test") {
        return;
    }
    let out = tmp("callgrind");
    let json = out.join("counts.json");
    let (report, stdout) = callgrind_to_json(
        &[
            "--alloc",
            "oxmalloc,glibc,nomem=oxmalloc",
            // A second oxmalloc that may map nothing: its worker aborts at
            // its first allocation, so its variable reached it.
            "--alloc-env",
            "nomem:OXMALLOC_LIMIT=1",
            "--pairs",
            "2000",
        ],
        &json,
    );
    let count = |alloc: &str, via: &str| {
        report
            .instructions
            .iter()
            .find(|c| c.alloc == alloc && c.via == via)
            .unwrap_or_else(|| panic!("no count for {alloc} via {via}:\n{stdout}"))
            .per_pair
    };
    for alloc in ["oxmalloc", "glibc"] {
        for via in [
            "GlobalAlloc",
            "GlobalAlloc value, opaque layout",
            "GlobalAlloc value, constant layout",
        ] {
            let n = count(alloc, via);
            assert!(
                (5.0..100_000.0).contains(&n),
                "{alloc} via {via}: {n} instructions per pair"
            );
        }
    }
    let c_abi = count("glibc", "C ABI");
    assert!((5.0..100_000.0).contains(&c_abi), "glibc C ABI: {c_abi}");
    assert!(
        report.instructions.iter().all(|c| c.alloc != "nomem"),
        "nomem was counted:\n{stdout}"
    );
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.name == "callgrind nomem" && s.reason.contains("under callgrind")),
        "{:?}",
        report.skipped
    );
    let _ = std::fs::remove_dir_all(&out);
}
