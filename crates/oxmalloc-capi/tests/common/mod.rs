//! Shared helpers of the C-ABI tests: where the built library is, compiling
//! the C/C++ test programs, running commands (preloaded or not) under a
//! hang guard, and checking that oxmalloc really served a process.
//!
//! The tests use the release library at `<workspace>/target/release`
//! (`CARGO_MANIFEST_DIR/../../target/release`), which `cargo build
//! --release` leaves; they fail with a clear message when it is missing.
//! `OXTEST_LIB_DIR` points `lib_so` and `lib_a` at another build of the
//! same library (scripts/test-extra/portable-tls.sh runs the suite on the
//! portable thread path that way); the hardened and general-dynamic
//! libraries are always taken from their usual places.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `<workspace>/target/release`.
pub fn release_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release")
}

fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run cargo build --release first (the C-ABI tests use the release library)",
        path.display()
    );
    path.canonicalize().expect("canonicalize library path")
}

/// Where the library under test (and its `oxmalloc.pc`) is:
/// `OXTEST_LIB_DIR`, else `release_dir()`.
pub fn lib_dir() -> PathBuf {
    std::env::var_os("OXTEST_LIB_DIR").map_or_else(release_dir, PathBuf::from)
}

/// The TLS model the library under test reports (`ox_tls_model`):
/// `OXTEST_LIB_TLS_MODEL`, else the default build's `initial-exec`.
pub fn lib_tls_model() -> String {
    std::env::var("OXTEST_LIB_TLS_MODEL").unwrap_or_else(|_| "initial-exec".into())
}

/// The shared library, `target/release/liboxmalloc.so` (or under `OXTEST_LIB_DIR`).
pub fn lib_so() -> PathBuf {
    require(lib_dir().join("liboxmalloc.so"))
}

/// The static library, `target/release/liboxmalloc.a` (or under `OXTEST_LIB_DIR`).
pub fn lib_a() -> PathBuf {
    require(lib_dir().join("liboxmalloc.a"))
}

/// `crates/oxmalloc-capi/include`.
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// A C or C++ source under `tests/c/`.
pub fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c").join(name)
}

/// A scratch directory, removed when dropped (kept when the test fails,
/// for inspection, since a panic skips nothing: it is removed then too,
/// unless `OXMALLOC_KEEP_TEST_DIRS` is set).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("oxmalloc-capi-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("OXMALLOC_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Whether `program` is found on `PATH` (or is an existing path).
pub fn have(program: &str) -> bool {
    find_program(program).is_some()
}

/// The full path of `program` on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.exists().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Prints the skip line for a program that is not installed; callers
/// return right after (the test passes, saying so).
pub fn skip(program: &str) {
    skip_because(&format!(
        "{program} not installed (see crates/oxmalloc-capi/tests/PACKAGES)"
    ));
}

/// Prints `SKIPPED: <why>` where it is seen even when the test harness
/// captures the output of passing tests: `println!`/`eprintln!` are
/// captured (shown only with `--nocapture` or on failure), a direct write
/// to the process's stderr is not.
pub fn skip_because(why: &str) {
    use std::io::Write;
    println!("SKIPPED: {why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Debian's program (`/usr/bin/NAME`) rather than another build earlier on
/// `PATH` (a version-manager shim, a `/usr/local/bin` build); any on
/// `PATH` when Debian's is missing.
pub fn debian_program(name: &str) -> Option<PathBuf> {
    let system = Path::new("/usr/bin").join(name);
    if system.is_file() {
        return Some(system);
    }
    find_program(name)
}

/// The number of `OXMALLOC_SHOW_STATS` summaries (lines
/// `oxmalloc [version] statistics`) in some stderr output: one per process
/// that oxmalloc served and that exited through `exit` with stderr open.
pub fn stats_summaries(stderr: &[u8]) -> usize {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("oxmalloc ") && l.trim_end().ends_with("statistics"))
        .count()
}

/// Compiles C sources (paths) into `out` with `cc`, plus `extra` arguments
/// (after the sources: libraries go there). Panics with the compiler's
/// output on failure.
pub fn compile(compiler: &str, sources: &[&Path], out: &Path, flags: &[&str], extra: &[&str]) {
    let mut cmd = Command::new(compiler);
    // An rpath given in `extra` becomes DT_RPATH, which wins over the
    // LD_LIBRARY_PATH that `cargo test` sets (it lists target/debug, where a
    // debug liboxmalloc.so may be older than the release one under test).
    cmd.args(flags)
        .arg("-o")
        .arg(out)
        .args(sources)
        .args(extra)
        .arg("-Wl,--disable-new-dtags");
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "compiling {:?} failed:\n{}{}",
        sources,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Compiles one test program from `tests/c/` with the usual flags: no
/// built-in allocator folding, warnings on, optimised.
pub fn compile_test_program(name: &str, dir: &TempDir, extra: &[&str]) -> PathBuf {
    let src = c_source(name);
    let is_cxx = name.ends_with(".cpp");
    let out = dir.join(name.split('.').next().unwrap_or("prog"));
    let inc = format!("-I{}", include_dir().display());
    let mut flags = vec!["-O1", "-g", "-fno-builtin", "-Wall", "-pthread", inc.as_str()];
    if is_cxx {
        flags.push("-std=c++17");
    }
    compile(if is_cxx { "c++" } else { "cc" }, &[&src], &out, &flags, extra);
    out
}

/// How a test program is linked with oxmalloc.
pub enum Link {
    /// With `-loxmalloc`, found through an rpath to the release directory.
    Shared,
    /// With `liboxmalloc.a` and the libraries it needs.
    Static,
}

/// Compiles a test program from `tests/c/` (as [`compile_test_program`])
/// linked with oxmalloc as `link` says, then `extra`.
pub fn compile_linked(name: &str, dir: &TempDir, link: Link, extra: &[&str]) -> PathBuf {
    let mut args: Vec<String> = match link {
        Link::Shared => {
            let lib_dir = lib_so().parent().expect("lib dir").to_path_buf();
            vec![
                format!("-L{}", lib_dir.display()),
                format!("-Wl,-rpath,{}", lib_dir.display()),
                "-loxmalloc".into(),
            ]
        }
        Link::Static => vec![
            lib_a().to_str().expect("utf-8 path").into(),
            "-lpthread".into(),
            "-ldl".into(),
        ],
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    compile_test_program(name, dir, &args)
}

/// Asserts that a check program (tests/c/check.h) exited successfully
/// with its last verdict line `<program>: N checks, 0 failed`; returns
/// that line.
pub fn assert_checks_passed(output: &Output, program: &str, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("{program}: ");
    let verdict = stdout.lines().find(|l| l.starts_with(&prefix));
    assert!(
        output.status.success() && verdict.is_some_and(|v| v.ends_with(" 0 failed")),
        "{program} checks failed ({what}): {}\n{stdout}\nstderr:\n{}",
        output.status,
        tail(&output.stderr)
    );
    verdict.unwrap_or_default().to_string()
}

/// Runs `cmd` to completion with its output captured; a run longer than
/// `limit` is killed and the test fails (a hang guard, not a timing check).
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let description = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    // Drain the pipes on threads so a chatty child cannot block.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = out_thread.join().unwrap_or_default();
            let err = err_thread.join().unwrap_or_default();
            panic!(
                "{description} still running after {limit:?}: killed (hang?)\nstdout:\n{}\nstderr:\n{}",
                tail(&out),
                tail(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// The last 4 KiB of some output, for failure messages.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(4096);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Adds `LD_PRELOAD=liboxmalloc.so` and `OXMALLOC_SHOW_STATS=1`.
pub fn preloaded(cmd: &mut Command) -> &mut Command {
    cmd.env("LD_PRELOAD", lib_so()).env("OXMALLOC_SHOW_STATS", "1")
}

/// Asserts that the run succeeded, showing its output when not.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr)
    );
}

/// Checks that stderr carries at least one `OXMALLOC_SHOW_STATS` summary
/// (a line `oxmalloc [version] statistics`) and that the summaries report
/// blocks allocated (the `allocated blocks` row's total, or `pages
/// allocated N`): proof that oxmalloc, not the C library, served the
/// process. Returns the number of summaries (one per process that exited
/// through `exit` with its stderr still open).
pub fn assert_served_by_oxmalloc(stderr: &[u8], what: &str) -> usize {
    let text = String::from_utf8_lossy(stderr);
    let summaries = stats_summaries(stderr);
    assert!(
        summaries > 0,
        "{what}: no oxmalloc statistics on stderr, so oxmalloc was not used\nstderr:\n{}",
        tail(stderr)
    );
    let nonzero = |word: Option<&str>| word.and_then(|w| w.trim().parse::<u64>().ok()).is_some_and(|n| n > 0);
    let allocated_something = text.lines().any(|line| {
        let line = line.trim();
        (line.starts_with("allocated blocks") && nonzero(line.split_whitespace().last()))
            || nonzero(
                line.split("pages allocated ")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next()),
            )
    });
    assert!(
        allocated_something,
        "{what}: the statistics show nothing allocated\nstderr:\n{}",
        tail(stderr)
    );
    summaries
}

/// oxmalloc's error lines (`oxmalloc: error: ...`) in some output.
pub fn error_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("oxmalloc: error") || l.contains("oxmalloc: fatal") || l.contains("oxmalloc: internal"))
        .map(str::to_string)
        .collect()
}

/// Asserts that oxmalloc reported no heap error.
pub fn assert_no_heap_errors(stderr: &[u8], what: &str) {
    let errors = error_lines(stderr);
    assert!(
        errors.is_empty(),
        "{what}: oxmalloc reported errors:\n{}",
        errors.join("\n")
    );
}
