//! The `oxbench` command line.

use crate::allocs::{self, Allocator, Paths};
use crate::callgrind;
use crate::charts;
use crate::prof::{self, ProfSettings};
use crate::real::{self, RealSettings};
use crate::report;
use crate::runner::{self, Job, Settings};
use crate::sample::{Meta, Report, Sample, Skipped};
use crate::warm::Warmer;
use crate::workloads;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Compare memory allocators on time, peak memory and latency.
///
/// With no command, runs the quick suite (every workload at a small scale,
/// every allocator available here, the installed real programs) and writes
/// the report to oxbench-out/.
#[derive(Parser, Debug)]
#[command(name = "oxbench", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the workloads, real programs and allocators available here.
    List(ListArgs),
    /// Run workloads against allocators and write the report.
    Run(RunArgs),
    /// Re-render a saved run (report.json) as text and charts.
    Report(ReportArgs),
    /// Count instructions per malloc+free pair with valgrind's callgrind.
    Callgrind(CallgrindArgs),
    /// Read a heap profile (OXMALLOC_PROF) and show its allocation sites,
    /// collapsed stacks and a flame graph.
    Prof(ProfArgs),
}

#[derive(Args, Debug)]
struct ProfArgs {
    /// The profile written by oxmalloc (OXMALLOC_PROF=FILE.heap,
    /// oxmalloc::profile::dump, ox_prof_dump).
    file: PathBuf,
    /// Directory for FILE's collapsed stacks and flame graph (default: the
    /// profile's directory; names NAME.collapsed and NAME.svg).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the collapsed stacks (flamegraph.pl format) to this file.
    #[arg(long)]
    collapsed: Option<PathBuf>,
    /// Write the flame graph SVG to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Allocation sites in the table.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Keep the allocator's own frames (malloc, __rust_alloc, oxmalloc::...).
    #[arg(long)]
    raw: bool,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Do not build the worker binaries first.
    #[arg(long)]
    no_build: bool,
    /// Directory holding the worker binaries (default: TARGET/oxbench-workers/release).
    #[arg(long)]
    worker_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Allocators, comma-separated: names from `oxbench list`, `all`,
    /// NAME=/path/to/lib.so to preload a library, or NAME=KNOWN for a
    /// known allocator under another name (with --alloc-env, a second
    /// setting of it: --alloc oxmalloc,eager=oxmalloc --alloc-env
    /// eager:OXMALLOC_HUGE_PAGES=2).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    alloc: Vec<String>,
    /// Set KEY=VALUE in the environment of allocator NAME's runs only
    /// (repeatable; after --env, so it wins over it). NAME must be in
    /// --alloc.
    #[arg(long = "alloc-env", value_name = "NAME:KEY=VALUE", value_parser = allocs::parse_alloc_env)]
    alloc_env: Vec<(String, String, String)>,
    /// Workloads and real programs, comma-separated; `all`, `synthetic` or
    /// `real` [default: all, or none when --cmd is given].
    #[arg(long, value_delimiter = ',')]
    bench: Option<Vec<String>>,
    /// A command of yours to measure as the real programs are (repeatable):
    /// `sh -c COMMAND` from the current directory, under the glibc row and
    /// every allocator that can be preloaded; it must exit with status 0.
    /// E.g. --cmd 'build=make -j2 clean all' --baseline glibc.
    #[arg(long = "cmd", value_name = "NAME=COMMAND", value_parser = real::parse_user_command)]
    cmd: Vec<real::UserCommand>,
    /// Thread counts, comma-separated (default: the cores, plus 1 for the
    /// "1 and N" workloads; single-threaded workloads always use 1).
    #[arg(long, value_delimiter = ',')]
    threads: Option<Vec<usize>>,
    /// Repetitions, interleaved across allocators: each job runs every
    /// allocator once per repetition, in an order shuffled per repetition
    /// and job (reproducibly), so no allocator always runs in the same slot.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Work multiplier (1.0: about 0.5-3 s per run with glibc on 2 cores).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Also write the raw samples as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Output directory for report.txt, report.json and the SVG charts.
    #[arg(long, default_value = "oxbench-out")]
    out: PathBuf,
    /// Allocator the ratios are relative to.
    #[arg(long, default_value = "mimalloc")]
    baseline: String,
    /// Kill a run after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Pin workers with `taskset -c CPUS`.
    #[arg(long)]
    pin: Option<String>,
    /// Do not touch and release free memory before each run (by default the
    /// runner warms as much as the job's largest peak so far, +25%, so that
    /// no run pays for host-reclaimed memory its predecessor left cold).
    #[arg(long)]
    no_warm: bool,
    /// Do not build the worker binaries first.
    #[arg(long)]
    no_build: bool,
    /// Directory holding the worker binaries (default: TARGET/oxbench-workers/release).
    #[arg(long)]
    worker_dir: Option<PathBuf>,
    /// After the repetitions, rerun each synthetic row where another
    /// allocator's median is more than 10% faster than the first
    /// allocator's: N more rounds of those two alone, alternating which
    /// runs first. The report shows those rounds' ratio under the row; the
    /// table and the summary keep the interleaved repetitions' figures.
    #[arg(long, default_value_t = 0, value_name = "N")]
    confirm_gaps: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Set KEY=VALUE in the environment of every worker and real program
    /// (repeatable), e.g. --env OXMALLOC_PROF=/tmp/w.%p.heap.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// A report.json written by `oxbench run`.
    file: PathBuf,
    /// Allocator the ratios are relative to (default: the run's).
    #[arg(long)]
    baseline: Option<String>,
    /// Write the charts (and report.txt) into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CallgrindArgs {
    /// Allocators, as for `run`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    alloc: Vec<String>,
    /// Set KEY=VALUE in the environment of allocator NAME's programs only,
    /// as for `run` (repeatable; not for the one-program counts, which
    /// link every allocator into one process).
    #[arg(long = "alloc-env", value_name = "NAME:KEY=VALUE", value_parser = allocs::parse_alloc_env)]
    alloc_env: Vec<(String, String, String)>,
    /// Pairs in the long run (the short run has a tenth).
    #[arg(long, default_value_t = 200_000)]
    pairs: u64,
    /// Bytes each allocation asks for: 32 counts the small blocks' fast
    /// path; oxmalloc's blocks above 1 KiB take another (the free cache).
    /// The constant-layout counts are for 32 bytes only.
    #[arg(long, default_value_t = crate::worker::DEFAULT_PAIR_BYTES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    bytes: usize,
    /// Write the counts as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Do not build the worker binaries first.
    #[arg(long)]
    no_build: bool,
    /// Directory holding the worker binaries (default: TARGET/oxbench-workers/release).
    #[arg(long)]
    worker_dir: Option<PathBuf>,
}

/// Runs the command line; returns the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(quick_suite(), "oxbench (quick suite)"),
        Some(Cmd::List(a)) => list(&a),
        Some(Cmd::Run(a)) => run(a, &std::env::args().collect::<Vec<_>>().join(" ")),
        Some(Cmd::Report(a)) => report_cmd(&a),
        Some(Cmd::Callgrind(a)) => callgrind_cmd(&a),
        Some(Cmd::Prof(a)) => prof_cmd(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oxbench: error: {e}");
            2
        }
    }
}

/// Settings of the quick suite (`oxbench` with no arguments): every workload
/// at scale 0.15, three interleaved repetitions, real programs included;
/// a row where a peer is more than 10% faster than oxmalloc is rerun three
/// rounds (`--confirm-gaps 3`: three repetitions flag rows that are noise).
fn quick_suite() -> RunArgs {
    RunArgs {
        alloc: vec!["all".into()],
        alloc_env: Vec::new(),
        bench: None,
        cmd: Vec::new(),
        threads: None,
        reps: 3,
        scale: 0.15,
        json: None,
        out: PathBuf::from("oxbench-out"),
        baseline: "mimalloc".into(),
        timeout: 120,
        pin: None,
        no_warm: false,
        no_build: false,
        worker_dir: None,
        confirm_gaps: 3,
        quiet: false,
        env: Vec::new(),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn paths(worker_dir: &Option<PathBuf>) -> Paths {
    let mut p = Paths::discover();
    if let Some(d) = worker_dir {
        p.workers.clone_from(d);
    }
    p
}

fn prepare(
    alloc: &[String],
    no_build: bool,
    worker_dir: &Option<PathBuf>,
) -> Result<(Vec<Allocator>, Vec<Skipped>), String> {
    let paths = paths(worker_dir);
    if no_build || worker_dir.is_some() {
        return allocs::resolve(&paths, alloc);
    }
    let v2 = alloc
        .iter()
        .any(|a| a == "all" || a == "mimalloc-v2" || a.ends_with("=mimalloc-v2"));
    let failed = allocs::build_workers(&paths, v2, false);
    if let Some(e) = failed.workers {
        // Every worker (the preload worker too) would be an earlier build's.
        return Err(format!(
            "{e}: fix the build, or pass --no-build to run the worker binaries already built"
        ));
    }
    let (mut found, mut skipped) = allocs::resolve(&paths, alloc)?;
    if let Some(e) = failed.mimalloc_v2 {
        eprintln!("oxbench: warning: {e}; mimalloc-v2 is skipped");
        allocs::drop_unbuilt(&mut found, &mut skipped, "mimalloc-v2", &e);
    }
    Ok((found, skipped))
}

fn list(a: &ListArgs) -> Result<i32, String> {
    let (found, skipped) = prepare(&["all".into()], a.no_build, &a.worker_dir)?;
    println!("Workloads (synthetic):");
    for w in workloads::all() {
        println!("  {:<16} {}", w.name, w.summary);
    }
    println!("\nReal programs (LD_PRELOAD):");
    let (progs, missing) = real::available(&["all".into()]);
    for p in progs {
        println!("  {:<16} installed", p.name);
    }
    for s in missing {
        println!("  {:<16} skipped: {}", s.name, s.reason);
    }
    println!("\nAllocators:");
    for f in &found {
        println!("  {:<16} {:<16} {}", f.name, f.route.label(), f.detail);
    }
    for s in skipped {
        println!("  {:<16} skipped: {}", s.name, s.reason);
    }
    Ok(0)
}

fn select_benches(names: &[String]) -> Result<(Vec<&'static workloads::Workload>, Vec<String>), String> {
    let mut synth = Vec::new();
    let mut progs = Vec::new();
    for n in names {
        match n.as_str() {
            "all" => {
                synth.extend(workloads::all());
                progs.push("all".to_string());
            }
            "synthetic" => synth.extend(workloads::all()),
            "real" => progs.push("all".to_string()),
            _ => match workloads::find(n) {
                Some(w) => synth.push(w),
                None if real::PROGRAMS.iter().any(|p| p.name == n) => progs.push(n.clone()),
                None => return Err(format!("unknown workload or program {n:?} (see `oxbench list`)")),
            },
        }
    }
    let mut seen = Vec::new();
    synth.retain(|w| {
        let new = !seen.contains(&w.name);
        seen.push(w.name);
        new
    });
    Ok((synth, progs))
}

fn progress_bar(total: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:36}] {pos}/{len} ETA {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

fn note_failure(pb: &ProgressBar, s: &Sample) {
    if let Some(e) = &s.error {
        pb.println(format!(
            "FAILED {} / {}@{}: {e}\n  reproduce: {}",
            s.alloc, s.bench, s.threads, s.command
        ));
    }
}

fn run(a: RunArgs, command: &str) -> Result<i32, String> {
    if a.reps == 0 || a.scale <= 0.0 {
        return Err("--reps must be at least 1 and --scale positive".into());
    }
    if let Some(dup) = a
        .cmd
        .iter()
        .enumerate()
        .find_map(|(i, c)| a.cmd[..i].iter().any(|d| d.name == c.name).then_some(&c.name))
    {
        return Err(format!("--cmd: the name {dup:?} is given twice"));
    }
    // With commands of the user's and no --bench, only those run.
    let default_bench = if a.cmd.is_empty() {
        vec!["all".to_string()]
    } else {
        Vec::new()
    };
    let (synth, prog_names) = select_benches(a.bench.as_ref().unwrap_or(&default_bench))?;
    let (mut allocs, mut skipped) = prepare(&a.alloc, a.no_build, &a.worker_dir)?;
    allocs::apply_alloc_env(&mut allocs, &skipped, &a.alloc_env)?;
    for s in &skipped {
        eprintln!("oxbench: skipping {}: {}", s.name, s.reason);
    }
    if allocs.is_empty() {
        return Err("no allocator available to run".into());
    }
    let baseline = [a.baseline.as_str(), "glibc"]
        .into_iter()
        .find(|b| allocs.iter().any(|x| x.name == *b))
        .unwrap_or(&allocs[0].name)
        .to_string();
    if baseline != a.baseline {
        eprintln!("oxbench: baseline {} is not available; using {baseline}", a.baseline);
    }
    let n = cores();
    let jobs: Vec<Job> = synth
        .iter()
        .flat_map(|w| {
            w.thread_counts(a.threads.as_deref(), n).into_iter().map(move |t| Job {
                workload: w,
                threads: t,
            })
        })
        .collect();
    let (programs, missing) = real::available(&prog_names);
    for s in &missing {
        eprintln!("oxbench: skipping {}: {}", s.name, s.reason);
    }
    skipped.extend(missing);
    let real_allocs = real::eligible(&allocs);
    if !a.cmd.is_empty() && real_allocs.is_empty() {
        return Err("--cmd needs glibc or an allocator that can be preloaded in --alloc".into());
    }
    let total = a.reps * (jobs.len() * allocs.len() + (programs.len() + a.cmd.len()) * real_allocs.len());
    std::fs::create_dir_all(&a.out).map_err(|e| format!("cannot create {}: {e}", a.out.display()))?;
    let settings = Settings {
        scale: a.scale,
        timeout: Duration::from_secs(a.timeout),
        pin: a.pin.clone(),
        env: a.env.clone(),
    };
    let pb = progress_bar(total, a.quiet);
    let mut samples = Vec::with_capacity(total);
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let real_dir = a.out.join("real");
    std::fs::create_dir_all(&real_dir).map_err(|e| e.to_string())?;
    let real_settings = RealSettings {
        scale: a.scale,
        dir: real_dir.canonicalize().unwrap_or(real_dir),
        timeout: Duration::from_secs(a.timeout),
        env: a.env.clone(),
    };
    let mut checksums = HashMap::new();
    let mut warmer = Warmer::new(!a.no_warm);
    for rep in 0..a.reps {
        samples.extend(runner::run_rep(&allocs, &jobs, &settings, rep, &mut warmer, |s| {
            pb.inc(1);
            pb.set_message(format!("rep {} {}@{} {}", rep + 1, s.bench, s.threads, s.alloc));
            note_failure(&pb, s);
        }));
        // Real programs, then the user's commands: job numbers after the
        // synthetic jobs', so each job gets its own allocator order.
        let mut real_job = |job: usize, name: &str, run: &mut dyn FnMut(&Allocator) -> Sample| {
            for ra in runner::run_order(real_allocs.len(), rep, jobs.len() + job)
                .into_iter()
                .map(|i| &real_allocs[i])
            {
                pb.set_message(format!("rep {} {name} {}", rep + 1, ra.name));
                let s = warmer.run(name, || run(ra));
                pb.inc(1);
                note_failure(&pb, &s);
                samples.push(s);
            }
        };
        for (j, prog) in programs.iter().enumerate() {
            real_job(j, prog.name, &mut |ra| {
                real::run_program(prog, ra, &real_settings, rep, &mut checksums)
            });
        }
        for (k, user) in a.cmd.iter().enumerate() {
            real_job(programs.len() + k, &user.name, &mut |ra| {
                real::run_user_command(user, ra, &real_settings, rep)
            });
        }
    }
    pb.finish_and_clear();
    let confirm = if a.confirm_gaps > 0 && allocs.len() > 1 {
        let plan = GapReruns {
            allocs: &allocs,
            jobs: &jobs,
            settings: &settings,
            first_round: a.reps,
            rounds: a.confirm_gaps,
            quiet: a.quiet,
        };
        plan.run(&samples, &baseline, &mut warmer)
    } else {
        Vec::new()
    };
    let mut notes = vec![match &a.pin {
        Some(c) => format!("workers pinned with taskset -c {c}"),
        None => "workers not pinned".to_string(),
    }];
    if a.worker_dir.is_none() {
        notes.push(format!(
            "worker binaries from {}, built by oxbench with {}",
            paths(&None).workers.display(),
            allocs::WORKER_RUSTFLAGS
        ));
    }
    if warmer.enabled() {
        notes.push("before each run the runner touched and released free memory (the job's largest peak so far +25%, at least 256 MiB; --no-warm turns it off)".into());
    }
    let env: Vec<String> = a.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !env.is_empty() {
        notes.push(format!("every worker ran with {}", env.join(" ")));
    }
    for al in &allocs {
        let mut said = Vec::new();
        if al.of != al.name {
            said.push(format!("is {}", al.of));
        }
        if !al.env.is_empty() {
            said.push(format!("runs with {}", al.env_words()));
        }
        if !said.is_empty() {
            notes.push(format!("{}: {}", al.name, said.join(", ")));
        }
    }
    let cwd = std::env::current_dir().map_or_else(|_| "?".into(), |d| d.display().to_string());
    for user in &a.cmd {
        notes.push(format!(
            "{}: your command, sh -c {} (from {cwd})",
            user.name,
            runner::sh_quote(&user.line)
        ));
    }
    if a.confirm_gaps > 0 {
        notes.push(format!(
            "--confirm-gaps {}: each synthetic row where another allocator was more than 10% faster than {} was rerun that many rounds, the two alone",
            a.confirm_gaps, allocs[0].name
        ));
    }
    if programs.iter().any(|p| p.name == "redis") {
        notes.push("Debian's redis-server links libjemalloc: its glibc row runs jemalloc".into());
    }
    let report = Report {
        meta: Meta {
            oxbench: env!("CARGO_PKG_VERSION").into(),
            started_unix,
            cores: n,
            scale: a.scale,
            reps: a.reps,
            baseline: baseline.clone(),
            command: command.to_string(),
            notes,
            env,
        },
        allocators: allocs.iter().map(Allocator::info).collect(),
        skipped,
        samples,
        instructions: Vec::new(),
        confirm,
    };
    let failed = report.samples.iter().chain(&report.confirm).filter(|s| !s.ok).count();
    write_outputs(&report, &baseline, &a.out, a.json.as_deref())?;
    if failed > 0 {
        eprintln!("oxbench: {failed} run(s) FAILED (listed in the report, with commands to reproduce)");
        return Ok(1);
    }
    Ok(0)
}

/// The reruns of `--confirm-gaps`.
struct GapReruns<'a> {
    allocs: &'a [Allocator],
    jobs: &'a [Job],
    settings: &'a Settings,
    /// Repetition number of the first round (after the table's).
    first_round: usize,
    rounds: usize,
    quiet: bool,
}

impl GapReruns<'_> {
    /// Finds the synthetic rows of `samples` where another allocator is
    /// more than 10% faster than the first ([`report::gaps`]) and runs
    /// each `rounds` more times, the first allocator and that one alone.
    /// Real programs' rows are not rerun.
    fn run(&self, samples: &[Sample], baseline: &str, warmer: &mut Warmer) -> Vec<Sample> {
        let subject = &self.allocs[0];
        let table = Report {
            allocators: self.allocs.iter().map(Allocator::info).collect(),
            samples: samples.to_vec(),
            ..Report::default()
        };
        let rows = report::rows(&table, baseline);
        let plan: Vec<(&Job, &Allocator)> = report::gaps(&table, &rows, &subject.name)
            .iter()
            .filter_map(|g| {
                let job = self
                    .jobs
                    .iter()
                    .find(|j| j.workload.name == g.bench && j.threads == g.threads)?;
                Some((job, self.allocs.iter().find(|x| x.name == g.best)?))
            })
            .collect();
        let pb = progress_bar(plan.len() * self.rounds * 2, self.quiet);
        let mut out = Vec::new();
        for (job, best) in plan {
            let key = format!("{}@{}", job.workload.name, job.threads);
            for round in 0..self.rounds {
                let pair = if round % 2 == 0 {
                    [subject, best]
                } else {
                    [best, subject]
                };
                for al in pair {
                    pb.set_message(format!("rerun {} {key} {}", round + 1, al.name));
                    let rep = self.first_round + round;
                    let s = warmer.run(&key, || runner::run_one(al, job, self.settings, rep));
                    pb.inc(1);
                    note_failure(&pb, &s);
                    out.push(s);
                }
            }
        }
        pb.finish_and_clear();
        out
    }
}

fn write_outputs(report: &Report, baseline: &str, out: &Path, json: Option<&Path>) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json_path = out.join("report.json");
    report
        .save(&json_path)
        .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    if let Some(j) = json {
        report.save(j).map_err(|e| format!("writing {}: {e}", j.display()))?;
    }
    let text = report::render(report, baseline);
    print!("{text}");
    std::fs::write(out.join("report.txt"), &text).map_err(|e| e.to_string())?;
    let rows = report::rows(report, baseline);
    let names: Vec<String> = report.allocators.iter().map(|a| a.name.clone()).collect();
    match charts::write_all(out, &rows, &names, baseline) {
        Ok(files) => {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            println!("\nWrote {} and charts: {}", json_path.display(), files.join(", "));
        }
        Err(e) => eprintln!("oxbench: warning: charts not written: {e}"),
    }
    Ok(())
}

fn report_cmd(a: &ReportArgs) -> Result<i32, String> {
    let report = Report::load(&a.file).map_err(|e| format!("reading {}: {e}", a.file.display()))?;
    let baseline = a.baseline.clone().unwrap_or_else(|| report.meta.baseline.clone());
    match &a.out {
        Some(out) => write_outputs(&report, &baseline, out, None)?,
        None => print!("{}", report::render(&report, &baseline)),
    }
    Ok(0)
}

fn prof_cmd(a: &ProfArgs) -> Result<i32, String> {
    prof::run(&ProfSettings {
        file: a.file.clone(),
        out: a.out.clone(),
        collapsed: a.collapsed.clone(),
        svg: a.svg.clone(),
        top: a.top,
        raw: a.raw,
    })?;
    Ok(0)
}

fn callgrind_cmd(a: &CallgrindArgs) -> Result<i32, String> {
    let (mut allocs, mut skipped) = prepare(&a.alloc, a.no_build, &a.worker_dir)?;
    allocs::apply_alloc_env(&mut allocs, &skipped, &a.alloc_env)?;
    let dir = std::env::temp_dir().join(format!("oxbench-callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let bytes = a.bytes;
    let (mut counts, more) = callgrind::run(&allocs, &dir, a.pairs, bytes, |name| {
        eprintln!("oxbench: callgrind {name}")
    });
    skipped.extend(more);
    let names: Vec<String> = allocs.iter().map(|x| x.name.clone()).collect();
    let pairs_bin = paths(&a.worker_dir).workers.join("oxbench-pairs");
    let (one, more) = callgrind::run_one_program(&pairs_bin, &names, &dir, a.pairs, bytes, |name| {
        eprintln!("oxbench: callgrind {name}")
    });
    counts.extend(one);
    skipped.extend(more);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "Instructions per malloc+free pair of {bytes} B (callgrind, {} pairs minus {}):",
        a.pairs,
        a.pairs / 10
    );
    println!("  {:<16} {:<36} {:>8}", "allocator", "via", "instr");
    for c in &counts {
        println!("  {:<16} {:<36} {:>8.1}", c.alloc, c.via, c.per_pair);
    }
    for s in &skipped {
        println!("  skipped {}: {}", s.name, s.reason);
    }
    if let Some(j) = &a.json {
        let report = Report {
            allocators: allocs.iter().map(Allocator::info).collect(),
            skipped,
            instructions: counts,
            ..Report::default()
        };
        report.save(j).map_err(|e| format!("writing {}: {e}", j.display()))?;
    }
    Ok(0)
}
