//! The allocators oxbench knows, how each is reached, and whether it is
//! available here.
//!
//! - `#[global_allocator]` workers: one binary per allocator crate, built by
//!   `cargo build --release -p oxbench --bins` into `TARGET/oxbench-workers`
//!   with every loop aligned to 64 bytes ([`WORKER_RUSTFLAGS`]; oxbench
//!   does that before a run unless `--no-build`). mimalloc v2 comes from the
//!   same crate as v3 with a different feature and its `links = "mimalloc"`
//!   forbids both in one build, so its worker lives in a separate small cargo
//!   workspace, `crates/oxbench/workers/mimalloc-v2`, built on demand (with
//!   the same flags) into `TARGET/oxbench-mimalloc-v2`.
//! - `LD_PRELOAD`: the glibc worker runs with the library preloaded: oxmalloc's
//!   `liboxmalloc.so`, Debian's libmimalloc / libjemalloc / libtcmalloc_minimal
//!   when installed, and any `NAME=PATH` given on the command line.
//! - Another name for a known allocator, `NAME=KNOWN` (`eager=oxmalloc`),
//!   with variables of its own (`--alloc-env eager:OXMALLOC_HUGE_PAGES=2`):
//!   two settings of one allocator side by side, interleaved and warmed
//!   like any two allocators.

use crate::sample::{AllocInfo, Route, Skipped};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An allocator ready to run.
#[derive(Clone, Debug)]
pub struct Allocator {
    /// Name in tables and on the command line.
    pub name: String,
    /// How it is put in place.
    pub route: Route,
    /// Worker binary.
    pub worker: PathBuf,
    /// Library to preload, for [`Route::LdPreload`].
    pub preload: Option<PathBuf>,
    /// Version or path, for the report (and the variables of `env`).
    pub detail: String,
    /// The known allocator this row runs (its name in `oxbench list`), or
    /// `name` for a `NAME=PATH` preload.
    pub of: String,
    /// Variables set for this allocator's runs only (`--alloc-env`), after
    /// `--env`'s.
    pub env: Vec<(String, String)>,
}

impl Allocator {
    /// Its description for the saved report.
    pub fn info(&self) -> AllocInfo {
        AllocInfo {
            name: self.name.clone(),
            route: self.route,
            detail: self.detail.clone(),
        }
    }

    /// Puts this allocator in place for `cmd`: its own variables
    /// (`--alloc-env`, after whatever the caller set, so they win) and its
    /// preload. Every route a run takes (workers, real programs, `--cmd`,
    /// callgrind) goes through here.
    pub fn set_on(&self, cmd: &mut Command) {
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(lib) = &self.preload {
            cmd.env("LD_PRELOAD", lib);
        }
    }

    /// Its own variables as `KEY=VALUE` words (empty when it has none).
    pub fn env_words(&self) -> String {
        let words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        words.join(" ")
    }
}

/// Where things are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The workspace root (with the top Cargo.toml).
    pub workspace: PathBuf,
    /// The cargo target directory oxbench builds workers into.
    pub target: PathBuf,
    /// Where the worker binaries are.
    pub workers: PathBuf,
}

impl Paths {
    /// Paths derived from where this executable lives (`TARGET/PROFILE/oxbench`)
    /// and where the crate was compiled from.
    pub fn discover() -> Paths {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let workspace = workspace.canonicalize().unwrap_or(workspace);
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
            .filter(|t| t.join("release").is_dir() || t.join("debug").is_dir())
            .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
            .unwrap_or_else(|| workspace.join("target"));
        Paths {
            workers: target.join(WORKERS_DIR).join("release"),
            workspace,
            target,
        }
    }

    fn workers_target(&self) -> PathBuf {
        self.target.join(WORKERS_DIR)
    }

    fn mimalloc_v2_manifest(&self) -> PathBuf {
        self.workspace.join("crates/oxbench/workers/mimalloc-v2/Cargo.toml")
    }

    fn mimalloc_v2_target(&self) -> PathBuf {
        self.target.join("oxbench-mimalloc-v2")
    }
}

/// Cargo target directory, under the workspace's, of the worker binaries:
/// apart from `target/release` because they are built with other flags.
const WORKERS_DIR: &str = "oxbench-workers";

/// Extra rustc flags of the worker builds. Each `#[global_allocator]` worker
/// is its own binary, so the workload's hot loops land at a different
/// address in each, and their alignment alone moved results: cache-thrash's
/// write loop (the same instructions in every worker) took 0.24 s of user
/// time in the oxmalloc worker and 0.21-0.22 s in the others, and 0.21-0.22
/// s in all of them once loops were aligned to 64 bytes (docs/PERFORMANCE.md
/// E45). Aligning every loop puts each at the same place in the
/// instruction fetch lines in every worker. C and C++ allocators are built
/// by their crates' own compilers and keep their own code layout.
pub const WORKER_RUSTFLAGS: &str = "-Cllvm-args=-align-loops=64";

/// The `RUSTFLAGS` of a worker build: the caller's own, then
/// [`WORKER_RUSTFLAGS`], in cargo's encoded form (separated by 0x1f).
fn worker_rustflags() -> String {
    encoded_worker_rustflags(
        std::env::var("CARGO_ENCODED_RUSTFLAGS").ok().as_deref(),
        std::env::var("RUSTFLAGS").ok().as_deref(),
    )
}

/// [`worker_rustflags`] given the two variables: cargo reads
/// `CARGO_ENCODED_RUSTFLAGS` first, so a non-empty one wins, as there.
fn encoded_worker_rustflags(encoded: Option<&str>, plain: Option<&str>) -> String {
    let own: Vec<&str> = match encoded {
        Some(e) if !e.is_empty() => e.split('\x1f').collect(),
        _ => plain.unwrap_or_default().split_whitespace().collect(),
    };
    own.into_iter()
        .chain(std::iter::once(WORKER_RUSTFLAGS))
        .collect::<Vec<_>>()
        .join("\x1f")
}

/// The `#[global_allocator]` workers of this package.
const GLOBAL: &[(&str, &str)] = &[
    ("oxmalloc", "oxmalloc (workspace crate)"),
    ("glibc", "std::alloc::System (glibc malloc)"),
    ("mimalloc", "mimalloc v3.3.2 (crate mimalloc 0.1.52)"),
    (
        "mimalloc-v2",
        "mimalloc v2.3.2 (crate mimalloc 0.1.52, feature v2; separate workspace)",
    ),
    ("jemalloc", "jemalloc 5.3 (crate tikv-jemallocator 0.7)"),
    ("snmalloc", "snmalloc (crate snmalloc-rs 0.7, build_cc)"),
    ("rpmalloc", "rpmalloc (crate rpmalloc 0.2)"),
    ("rallocator", "rallocator 0.3 (pure Rust, snmalloc port)"),
];

/// Debian's preloadable allocators: name, library file, package.
const DEBIAN: &[(&str, &str, &str)] = &[
    ("mimalloc-deb", "libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc-deb", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc-deb", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
];

/// Every built-in allocator name, in report order.
pub fn builtin_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = GLOBAL.iter().map(|g| g.0).collect();
    v.push("oxmalloc-preload");
    v.extend(DEBIAN.iter().map(|d| d.0));
    v
}

fn worker_name(alloc: &str) -> String {
    format!("oxbench-worker-{alloc}")
}

fn debian_lib(file: &str) -> Option<PathBuf> {
    let arch = std::env::consts::ARCH;
    [
        format!("/usr/lib/{arch}-linux-gnu/{file}"),
        format!("/usr/lib64/{file}"),
        format!("/usr/lib/{file}"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Where `liboxmalloc.so` is, if built: this target directory's release
/// folder, then the workspace's `target/release`.
pub fn oxmalloc_so(paths: &Paths) -> Option<PathBuf> {
    [
        paths.target.join("release/liboxmalloc.so"),
        paths.workspace.join("target/release/liboxmalloc.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// A user-given `NAME=PATH` preload.
pub fn parse_custom(spec: &str) -> Option<(String, PathBuf)> {
    let (name, path) = spec.split_once('=')?;
    (!name.is_empty() && !path.is_empty()).then(|| (name.to_string(), PathBuf::from(path)))
}

/// A user-given `NAME:KEY=VALUE` (`--alloc-env`): a variable for the runs
/// of allocator `NAME` only.
pub fn parse_alloc_env(spec: &str) -> Result<(String, String, String), String> {
    let bad = || format!("expected NAME:KEY=VALUE (an allocator of --alloc, then a variable), found {spec:?}");
    let (name, var) = spec.split_once(':').ok_or_else(bad)?;
    let (key, value) = var.split_once('=').ok_or_else(bad)?;
    if name.is_empty() || key.is_empty() || key.contains('\0') {
        return Err(bad());
    }
    Ok((name.to_string(), key.to_string(), value.to_string()))
}

/// Gives each allocator its `--alloc-env` variables (`NAME`, `KEY`,
/// `VALUE`), in the order given, and names them in its detail; an error
/// when one names an allocator that is not in the run (a typo would
/// otherwise measure the wrong setting without a word).
pub fn apply_alloc_env(
    allocs: &mut [Allocator],
    skipped: &[Skipped],
    vars: &[(String, String, String)],
) -> Result<(), String> {
    for (name, key, value) in vars {
        match allocs.iter_mut().find(|a| a.name == *name) {
            Some(a) => a.env.push((key.clone(), value.clone())),
            None if skipped.iter().any(|s| s.name == *name) => {}
            None => {
                let known: Vec<&str> = allocs.iter().map(|a| a.name.as_str()).collect();
                return Err(format!(
                    "--alloc-env {name}:{key}=...: no allocator {name:?} in this run (it has {})",
                    known.join(", ")
                ));
            }
        }
    }
    for a in allocs.iter_mut().filter(|a| !a.env.is_empty()) {
        a.detail = format!("{} with {}", a.detail, a.env_words());
    }
    Ok(())
}

/// What failed in [`build_workers`]: each field holds the message, `None`
/// when that build succeeded (or was not asked for).
#[derive(Debug)]
pub struct BuildFailures {
    /// The workspace's worker binaries (every allocator but mimalloc v2).
    pub workers: Option<String>,
    /// The mimalloc-v2 worker (its own workspace).
    pub mimalloc_v2: Option<String>,
}

/// Builds the worker binaries (`cargo build --release -p oxbench --bins`, into
/// their own target directory with [`WORKER_RUSTFLAGS`]) and, when wanted,
/// the mimalloc-v2 worker. A binary left by an earlier build is still on
/// disk after a failed one, so the caller must not run it
/// ([`drop_unbuilt`]).
pub fn build_workers(paths: &Paths, want_v2: bool, quiet: bool) -> BuildFailures {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let run = |what: &str, cmd: &mut Command| {
        if quiet {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        match cmd.status() {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!("building {what} failed ({s})")),
            Err(e) => Some(format!("building {what}: cannot run cargo: {e}")),
        }
    };
    let flags = worker_rustflags();
    eprintln!(
        "oxbench: building worker binaries (cargo build --release -p oxbench --bins, {WORKER_RUSTFLAGS}, into {})",
        paths.workers_target().display()
    );
    let workers = run(
        "the worker binaries",
        Command::new(&cargo)
            .args(["build", "--release", "-p", "oxbench", "--bins", "--manifest-path"])
            .arg(paths.workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(paths.workers_target())
            .env("CARGO_ENCODED_RUSTFLAGS", &flags),
    );
    let mimalloc_v2 = if want_v2 {
        eprintln!("oxbench: building the mimalloc-v2 worker (separate workspace)");
        run(
            "the mimalloc-v2 worker",
            Command::new(&cargo)
                .args(["build", "--release", "--manifest-path"])
                .arg(paths.mimalloc_v2_manifest())
                .arg("--target-dir")
                .arg(paths.mimalloc_v2_target())
                .env("CARGO_ENCODED_RUSTFLAGS", &flags),
        )
    } else {
        None
    };
    BuildFailures { workers, mimalloc_v2 }
}

/// Moves the allocators that run the worker of known allocator `of` from
/// `found` to `skipped`, with `reason`: that worker did not build, and the
/// binary on disk, if any, is from an earlier build.
pub fn drop_unbuilt(found: &mut Vec<Allocator>, skipped: &mut Vec<Skipped>, of: &str, reason: &str) {
    found.retain(|a| {
        let keep = a.of != of;
        if !keep {
            skipped.push(Skipped {
                name: a.name.clone(),
                reason: format!("{reason}; the binary of an earlier build is not used"),
            });
        }
        keep
    });
}

/// Resolves the requested allocators (`all` or names, `NAME=PATH`
/// preloads, and `NAME=KNOWN` for a known allocator under another name)
/// against what exists here. A name given twice is an error.
pub fn resolve(paths: &Paths, requested: &[String]) -> Result<(Vec<Allocator>, Vec<Skipped>), String> {
    // (row name, known allocator)
    let mut names: Vec<(String, String)> = Vec::new();
    let mut custom: Vec<(String, PathBuf)> = Vec::new();
    for r in requested {
        if r == "all" {
            names.extend(builtin_names().into_iter().map(|n| (n.to_string(), n.to_string())));
        } else if let Some((name, path)) = parse_custom(r) {
            let target = path.to_string_lossy();
            if builtin_names().contains(&target.as_ref()) {
                names.push((name, target.into_owned()));
            } else {
                custom.push((name, path));
            }
        } else if builtin_names().contains(&r.as_str()) {
            names.push((r.clone(), r.clone()));
        } else {
            return Err(format!(
                "unknown allocator {r:?}; known: {}, or NAME=/path/to/lib.so, or NAME=KNOWN",
                builtin_names().join(", ")
            ));
        }
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    names.retain(|n| {
        let new = !seen.contains(n);
        seen.push(n.clone());
        new
    });
    let mut row_names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    row_names.extend(custom.iter().map(|(n, _)| n.as_str()));
    for (i, n) in row_names.iter().enumerate() {
        if row_names[..i].contains(n) {
            return Err(format!("allocator name {n:?} is given twice in --alloc"));
        }
    }
    let glibc_worker = paths.workers.join(worker_name("glibc"));
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut skip = |name: &str, reason: String| {
        skipped.push(Skipped {
            name: name.to_string(),
            reason,
        })
    };
    let preload = |name: &str, of: &str, lib: PathBuf, detail: String| Allocator {
        name: name.to_string(),
        route: Route::LdPreload,
        worker: glibc_worker.clone(),
        preload: Some(lib),
        detail,
        of: of.to_string(),
        env: Vec::new(),
    };
    for (row, name) in &names {
        if let Some((_, detail)) = GLOBAL.iter().find(|g| g.0 == name) {
            let worker = if name == "mimalloc-v2" {
                paths.mimalloc_v2_target().join("release").join(worker_name(name))
            } else {
                paths.workers.join(worker_name(name))
            };
            if worker.exists() {
                found.push(Allocator {
                    name: row.clone(),
                    route: Route::GlobalAllocator,
                    worker,
                    preload: None,
                    detail: detail.to_string(),
                    of: name.clone(),
                    env: Vec::new(),
                });
            } else {
                skip(row, format!("worker {} not built", worker.display()));
            }
        } else if name == "oxmalloc-preload" {
            match oxmalloc_so(paths) {
                Some(lib) => found.push(preload(row, name, lib.clone(), lib.display().to_string())),
                None => skip(
                    row,
                    "liboxmalloc.so not found in target/release (run `cargo build --release` of the workspace)".into(),
                ),
            }
        } else if let Some((_, file, pkg)) = DEBIAN.iter().find(|d| d.0 == name) {
            match debian_lib(file) {
                Some(lib) => found.push(preload(row, name, lib.clone(), lib.display().to_string())),
                None => skip(row, format!("{file} not installed (Debian package {pkg})")),
            }
        }
    }
    for (name, lib) in custom {
        if lib.exists() {
            found.push(preload(&name, &name, lib.clone(), lib.display().to_string()));
        } else {
            skip(&name, format!("{} does not exist", lib.display()));
        }
    }
    if found.iter().any(|a| a.route == Route::LdPreload) && !glibc_worker.exists() {
        return Err(format!("the preload worker {} is not built", glibc_worker.display()));
    }
    Ok((found, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_did_not_build_is_skipped_not_run() {
        let alloc = |name: &str, of: &str| Allocator {
            name: name.into(),
            route: Route::GlobalAllocator,
            worker: PathBuf::from("/nonexistent"),
            preload: None,
            detail: String::new(),
            of: of.into(),
            env: Vec::new(),
        };
        let mut found = vec![
            alloc("mimalloc", "mimalloc"),
            alloc("mi2", "mimalloc-v2"),
            alloc("oxmalloc", "oxmalloc"),
        ];
        let mut skipped = Vec::new();
        drop_unbuilt(
            &mut found,
            &mut skipped,
            "mimalloc-v2",
            "building the mimalloc-v2 worker failed",
        );
        let names: Vec<&str> = found.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["mimalloc", "oxmalloc"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].name, "mi2");
        assert!(
            skipped[0].reason.starts_with("building the mimalloc-v2 worker failed"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn worker_builds_keep_the_callers_rustflags_and_align_loops() {
        assert_eq!(encoded_worker_rustflags(None, None), WORKER_RUSTFLAGS);
        assert_eq!(
            encoded_worker_rustflags(None, Some(" -C target-cpu=native  -g ")),
            format!("-C\x1ftarget-cpu=native\x1f-g\x1f{WORKER_RUSTFLAGS}")
        );
        // A path with a space survives the encoded form, which wins.
        assert_eq!(
            encoded_worker_rustflags(Some("-L\x1f/a b"), Some("-g")),
            format!("-L\x1f/a b\x1f{WORKER_RUSTFLAGS}")
        );
        assert_eq!(
            encoded_worker_rustflags(Some(""), Some("-g")),
            format!("-g\x1f{WORKER_RUSTFLAGS}")
        );
    }

    #[test]
    fn custom_specs() {
        assert_eq!(
            parse_custom("mine=/x/lib.so"),
            Some(("mine".into(), PathBuf::from("/x/lib.so")))
        );
        assert_eq!(parse_custom("mimalloc"), None);
        assert_eq!(parse_custom("=/x"), None);
    }

    /// Paths under which no worker is built (a directory that does not exist).
    fn nothing_built(tag: &str) -> Paths {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        Paths {
            workspace: dir.clone(),
            target: dir.clone(),
            workers: dir.join("none"),
        }
    }

    #[test]
    fn unknown_names_are_rejected_and_missing_libs_skipped() {
        let paths = nothing_built("oxbench-allocs");
        assert!(resolve(&paths, &["nope".into()]).is_err());
        let (found, skipped) = resolve(&paths, &["jemalloc".into(), "x=/does/not/exist.so".into()]).unwrap();
        assert!(found.is_empty());
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].reason.contains("not built"));
        assert!(skipped[1].reason.contains("does not exist"));
    }

    #[test]
    fn a_known_allocator_takes_another_name_and_names_stay_unique() {
        let paths = nothing_built("oxbench-alias");
        // Not built here: skipped under the row's own name, as what it is.
        let (found, skipped) = resolve(&paths, &["jemalloc".into(), "je2=jemalloc".into()]).unwrap();
        assert!(found.is_empty());
        let names: Vec<&str> = skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["jemalloc", "je2"]);
        // The same row twice is one row; one name for two things is refused.
        let twice = ["jemalloc", "je2=jemalloc", "jemalloc", "je2=jemalloc"].map(String::from);
        let (_, skipped) = resolve(&paths, &twice).unwrap();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let err = resolve(&paths, &["jemalloc".into(), "jemalloc=/x/lib.so".into()]).unwrap_err();
        assert!(err.contains("given twice"), "{err}");
        let err = resolve(&paths, &["a=jemalloc".into(), "a=mimalloc".into()]).unwrap_err();
        assert!(err.contains("given twice"), "{err}");
    }

    #[test]
    fn alloc_env_specs_and_where_they_go() {
        assert_eq!(
            parse_alloc_env("eager:OXMALLOC_HUGE_PAGES=2"),
            Ok(("eager".into(), "OXMALLOC_HUGE_PAGES".into(), "2".into()))
        );
        // The value may hold ':' and '='; the name may not be empty.
        assert_eq!(
            parse_alloc_env("x:K=a:b=c"),
            Ok(("x".into(), "K".into(), "a:b=c".into()))
        );
        for bad in ["K=V", ":K=V", "x:=V", "x:K", "x"] {
            assert!(parse_alloc_env(bad).is_err(), "{bad}");
        }
        let row = |name: &str| Allocator {
            name: name.into(),
            route: Route::GlobalAllocator,
            worker: PathBuf::from("/w"),
            preload: None,
            detail: "d".into(),
            of: "oxmalloc".into(),
            env: Vec::new(),
        };
        let mut allocs = vec![row("oxmalloc"), row("eager")];
        let vars = [
            ("eager".to_string(), "A".to_string(), "1".to_string()),
            ("eager".to_string(), "B".to_string(), "2".to_string()),
        ];
        apply_alloc_env(&mut allocs, &[], &vars).unwrap();
        assert!(allocs[0].env.is_empty() && allocs[0].detail == "d");
        assert_eq!(allocs[1].env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_eq!(allocs[1].detail, "d with A=1 B=2");
        // A name not in the run is an error, unless it was skipped.
        let typo = [("eagre".to_string(), "A".to_string(), "1".to_string())];
        let err = apply_alloc_env(&mut allocs, &[], &typo).unwrap_err();
        assert!(err.contains("eagre") && err.contains("oxmalloc, eager"), "{err}");
        let gone = Skipped {
            name: "eagre".into(),
            reason: "not built".into(),
        };
        apply_alloc_env(&mut allocs, &[gone], &typo).unwrap();
    }
}
