//! Real programs under `LD_PRELOAD` (WORKLOADS.md, "Real programs"): redis,
//! lua, python (PYTHONMALLOC=malloc, plain and threaded), sqlite, an
//! optional gcc compile and rocksdb's `db_bench` (two threads). Each runs in
//! its own process; the runner records wall time, CPU time and the peak RSS
//! of the process doing the work (for redis: the server's `VmHWM` from
//! /proc, and requests/s from redis-benchmark). Each script prints `OK
//! <checksum>` (rocksdb: how many of its random reads found a key, fixed by
//! its seed); a run fails when the program fails, prints no checksum, or
//! prints one different from the first allocator's run of the same program.
//!
//! Only the glibc row (the program as installed: no preload) and
//! `LD_PRELOAD` allocators can run real programs: a `#[global_allocator]`
//! lives inside a Rust binary. Debian's redis-server is linked with
//! libjemalloc, so its "glibc" row is really jemalloc.

use crate::allocs::Allocator;
use crate::outcome::Outcome;
use crate::runner::{measure, shell_line, Measured};
use crate::sample::{Route, Sample, Skipped};
use crate::workloads::Metric;
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A real program oxbench can drive.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    /// Name in tables.
    pub name: &'static str,
    /// Executables it needs.
    pub needs: &'static [&'static str],
    /// Debian packages that provide them.
    pub packages: &'static str,
}

/// Every real program, in report order.
pub const PROGRAMS: &[Program] = &[
    Program {
        name: "redis",
        needs: &["redis-server", "redis-benchmark", "redis-cli"],
        packages: "redis-server redis-tools",
    },
    Program {
        name: "lua",
        needs: &["lua5.4"],
        packages: "lua5.4",
    },
    Program {
        name: "python",
        needs: &["python3"],
        packages: "python3",
    },
    Program {
        name: "python-threads",
        needs: &["python3"],
        packages: "python3",
    },
    Program {
        name: "sqlite",
        needs: &["sqlite3"],
        packages: "sqlite3",
    },
    Program {
        name: "gcc",
        needs: &["gcc"],
        packages: "gcc",
    },
    Program {
        name: "rocksdb",
        needs: &["db_bench"],
        packages: "rocksdb-tools",
    },
];

/// The primary metric of a real program.
pub fn metric_of(bench: &str) -> Metric {
    if bench == "redis" {
        Metric::Throughput
    } else {
        Metric::Time
    }
}

/// Finds an executable: the system's own first (/usr/bin, so that a pyenv
/// shim script is not what gets measured), then PATH.
pub fn which(exe: &str) -> Option<PathBuf> {
    let sys = Path::new("/usr/bin").join(exe);
    if sys.is_file() {
        return Some(sys);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(exe))
        .find(|p| p.is_file())
}

/// A command of the user's (`oxbench run --cmd NAME=COMMAND`), measured
/// as the real programs are: `sh -c COMMAND`, from the directory oxbench
/// was started in, once per repetition under each allocator that can be
/// preloaded (and the glibc row, as installed). A run succeeds when the
/// command exits with status 0; its output is not compared between runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCommand {
    /// Name of the row.
    pub name: String,
    /// The shell command line.
    pub line: String,
}

/// Parses `NAME=COMMAND`: a name of letters, digits, `-`, `_` and `.`
/// that is not a workload's or a real program's (nor `all`, `real`,
/// `synthetic`), and a non-empty command.
pub fn parse_user_command(s: &str) -> Result<UserCommand, String> {
    let Some((name, line)) = s.split_once('=') else {
        return Err(format!("expected NAME=COMMAND, found {s:?}"));
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!("the name {name:?} must be letters, digits, '-', '_' or '.'"));
    }
    if crate::workloads::find(name).is_some()
        || PROGRAMS.iter().any(|p| p.name == name)
        || matches!(name, "all" | "real" | "synthetic")
    {
        return Err(format!("the name {name:?} is taken by a built-in workload or program"));
    }
    if line.trim().is_empty() {
        return Err(format!("the command of {name:?} is empty"));
    }
    Ok(UserCommand {
        name: name.to_string(),
        line: line.to_string(),
    })
}

/// Runs the user's command once with allocator `a` (its preload, if any),
/// with `--env`'s variables; the sample's command is the line that
/// reproduces the run.
pub fn run_user_command(c: &UserCommand, a: &Allocator, s: &RealSettings, rep: usize) -> Sample {
    let mut sample = Sample::new(&a.name, &c.name, 1, rep);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&c.line);
    let Some(m) = measure_into(&mut sample, &mut cmd, a, s) else {
        return sample;
    };
    if m.success() {
        succeeded(&mut sample, s, m.wall_s);
    } else {
        sample.error = Some(m.failure());
    }
    sample
}

/// Sets `--env`'s variables, then `a`'s own (`--alloc-env`), and `a`'s
/// preload (if any) on `cmd`.
fn set_run_env(cmd: &mut Command, a: &Allocator, s: &RealSettings) {
    cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
    a.set_on(cmd);
}

/// Runs `cmd` under `a` ([`set_run_env`]) and records the line that
/// reproduces it, its wall, user and system time and its peak RSS in
/// `sample`; `None`, with the error recorded, when it could not start.
fn measure_into(sample: &mut Sample, cmd: &mut Command, a: &Allocator, s: &RealSettings) -> Option<Measured> {
    set_run_env(cmd, a, s);
    sample.command = shell_line(cmd);
    match measure(cmd, s.timeout, |_| {}) {
        Ok(m) => {
            sample.wall_s = m.wall_s;
            sample.user_s = m.user_s;
            sample.sys_s = m.sys_s;
            sample.max_rss_kib = m.max_rss_kib;
            Some(m)
        }
        Err(e) => {
            sample.error = Some(format!("could not start: {e}"));
            None
        }
    }
}

/// Marks a run that did its work: one run in `wall_s` seconds.
fn succeeded(sample: &mut Sample, s: &RealSettings, wall_s: f64) {
    sample.ok = true;
    let mut o = Outcome::per_second(1, wall_s, "runs/s");
    o.bench = sample.bench.clone();
    o.worker = sample.alloc.clone();
    o.threads = 1;
    o.scale = s.scale;
    sample.outcome = Some(o);
}

/// The programs installed here, and a skip message for the others.
pub fn available(names: &[String]) -> (Vec<Program>, Vec<Skipped>) {
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for p in PROGRAMS
        .iter()
        .filter(|p| names.iter().any(|n| n == p.name || n == "all"))
    {
        let missing: Vec<&str> = p.needs.iter().copied().filter(|e| which(e).is_none()).collect();
        if missing.is_empty() {
            ok.push(*p);
        } else {
            skipped.push(Skipped {
                name: p.name.to_string(),
                reason: format!(
                    "{} not installed (Debian: apt-get install {})",
                    missing.join(", "),
                    p.packages
                ),
            });
        }
    }
    (ok, skipped)
}

const LUA: &str = r#"
local n = tonumber(arg[1])
local total = 0
for round = 1, n do
  local t = {}
  for i = 1, 20000 do
    t[i] = { id = i, name = "item" .. i .. "_" .. round, vals = { i, i * 2, i * 3 } }
  end
  local s = {}
  for i = 1, #t, 7 do s[#s + 1] = t[i].name end
  total = total + #table.concat(s, ",")
  for i = 1, #t do total = total + t[i].vals[3] % 7 end
  t = nil
  s = nil
  if round % 8 == 0 then collectgarbage() end
end
print("OK " .. total)
"#;

const PYTHON: &str = r#"
import sys
n = int(sys.argv[1])
total = 0
for r in range(n):
    d = {}
    for i in range(20000):
        d["k%d_%d" % (i, r)] = [i, str(i) * 3, (i, r)]
    keys = sorted(d.keys())
    total += len(keys[-1]) + sum(len(v[1]) for v in d.values())
    del d, keys
print("OK", total)
"#;

const PYTHON_THREADS: &str = r#"
import sys, threading
n = int(sys.argv[1])
totals = [0] * 4
def work(t):
    s = 0
    for r in range(n):
        l = [("t%d-%d-%d" % (t, r, i)) * 2 for i in range(10000)]
        d = {x: len(x) for x in l}
        s += sum(d.values()) + len(l)
    totals[t] = s
ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("OK", sum(totals))
"#;

fn sqlite_script(rows: u64) -> String {
    let mut s = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);\n");
    let chunk = 100_000u64;
    let mut done = 0;
    while done < rows {
        let end = (done + chunk).min(rows);
        s += &format!(
            "BEGIN;\nWITH RECURSIVE c(x) AS (SELECT {} UNION ALL SELECT x+1 FROM c WHERE x < {end}) \
             INSERT INTO t(a, b) SELECT (x * 7919) % 1000, printf('row-%d-%s', x, hex(x * x)) FROM c;\nCOMMIT;\n",
            done + 1
        );
        done = end;
    }
    s += "CREATE INDEX ta ON t(a);\n";
    s += "SELECT a, count(*), sum(length(b)) FROM t GROUP BY a ORDER BY 2 DESC, 1 LIMIT 3;\n";
    s +=
        "SELECT 'OK', count(*), sum(a), sum(length(b)), (SELECT count(*) FROM t WHERE a BETWEEN 100 AND 199) FROM t;\n";
    s
}

fn gcc_source(functions: usize) -> String {
    let mut s = String::from("#include <string.h>\n");
    for i in 0..functions {
        s += &format!(
            "struct s{i} {{ int a[{n}]; char name[32]; }};\n\
             int f{i}(struct s{i} *p, int x) {{ int acc = 0; for (int k = 0; k < {n}; k++) {{ p->a[k] = x * k + {i}; acc += p->a[k] % 13; }}\n\
             switch (x & 7) {{ case 0: acc += {i}; break; case 1: acc ^= x; break; case 2: acc -= 3; break; default: acc += (int)strlen(p->name); }}\n\
             return acc; }}\n",
            n = i % 17 + 3
        );
    }
    s += "int main(void) { return 0; }\n";
    s
}

/// What one program run needs.
pub struct RealSettings {
    /// Scale factor.
    pub scale: f64,
    /// Directory for scripts and outputs.
    pub dir: PathBuf,
    /// Kill a run after this long.
    pub timeout: Duration,
    /// Environment variables set for every program (`--env KEY=VALUE`).
    pub env: Vec<(String, String)>,
}

fn scaled(s: &RealSettings, base: f64, min: u64) -> u64 {
    ((base * s.scale) as u64).max(min)
}

/// The command running `prog`, with scripts written into the work directory.
fn command(prog: &Program, s: &RealSettings) -> std::io::Result<Command> {
    let exe = |n: &str| which(n).unwrap_or_else(|| PathBuf::from(n));
    Ok(match prog.name {
        "lua" => {
            let f = s.dir.join("churn.lua");
            std::fs::write(&f, LUA)?;
            let mut c = Command::new(exe("lua5.4"));
            c.arg(f).arg(scaled(s, 60.0, 2).to_string());
            c
        }
        "python" | "python-threads" => {
            let (file, text, base) = if prog.name == "python" {
                ("churn.py", PYTHON, 40.0)
            } else {
                ("churn_threads.py", PYTHON_THREADS, 15.0)
            };
            let f = s.dir.join(file);
            std::fs::write(&f, text)?;
            let mut c = Command::new(exe("python3"));
            c.arg(f).arg(scaled(s, base, 1).to_string());
            c.env("PYTHONMALLOC", "malloc");
            c
        }
        "sqlite" => {
            let f = s.dir.join("load.sql");
            std::fs::write(&f, sqlite_script(scaled(s, 1_000_000.0, 1_000)))?;
            let mut c = Command::new(exe("sqlite3"));
            c.arg(":memory:").arg(format!(".read {}", f.display()));
            c
        }
        "gcc" => {
            let f = s.dir.join("big.c");
            std::fs::write(&f, gcc_source(scaled(s, 800.0, 20) as usize))?;
            let mut c = Command::new(exe("gcc"));
            c.args(["-O2", "-c", "-o"]).arg(s.dir.join("big.o")).arg(f);
            c
        }
        "rocksdb" => {
            // A fresh database each run: db_bench would destroy an old one
            // itself, but a run killed midway must not leave the next one
            // reading its files.
            let db = s.dir.join("rocksdb");
            match std::fs::remove_dir_all(&db) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut c = Command::new(exe("db_bench"));
            c.arg("--benchmarks=fillrandom,readrandom")
                .arg(format!("--num={}", scaled(s, 400_000.0, 1_000)))
                .arg(format!("--db={}", db.display()))
                .args(["--threads=2", "--seed=1", "--progress_reports=false"]);
            c
        }
        other => unreachable!("no command for {other}"),
    })
}

fn blank(a: &Allocator, prog: &Program, rep: usize) -> Sample {
    Sample::new(&a.name, prog.name, 1, rep)
}

/// Runs `prog` once with allocator `a` (its preload, if any).
/// `checksums` remembers the first `OK` line per program, to compare.
pub fn run_program(
    prog: &Program,
    a: &Allocator,
    s: &RealSettings,
    rep: usize,
    checksums: &mut HashMap<String, String>,
) -> Sample {
    if prog.name == "redis" {
        return run_redis(a, s, rep);
    }
    let mut sample = blank(a, prog, rep);
    let mut cmd = match command(prog, s) {
        Ok(c) => c,
        Err(e) => {
            sample.error = Some(format!("cannot write the script: {e}"));
            return sample;
        }
    };
    let Some(m) = measure_into(&mut sample, &mut cmd, a, s) else {
        return sample;
    };
    let ok_line = if prog.name == "rocksdb" {
        rocksdb_checksum(&m.stdout)
    } else {
        m.stdout.lines().find(|l| l.starts_with("OK")).map(str::to_string)
    };
    if !m.success() {
        sample.error = Some(m.failure());
    } else if prog.name == "gcc" {
        sample.ok = s.dir.join("big.o").exists();
        if !sample.ok {
            sample.error = Some("gcc produced no object file".into());
        }
    } else if let Some(line) = ok_line {
        let reference = checksums.entry(prog.name.to_string()).or_insert_with(|| line.clone());
        if *reference == line {
            sample.ok = true;
        } else {
            sample.error = Some(format!("output {line:?} differs from the first run's {reference:?}"));
        }
    } else {
        sample.error = Some("no OK line in the output".into());
    }
    if sample.ok {
        succeeded(&mut sample, s, m.wall_s);
    }
    sample
}

/// db_bench's checksum: `OK <found> of <keys> found`, from its readrandom
/// line (`readrandom : ... (3428 of 4000 found)`), once fillrandom has
/// reported too; `None` when either line is missing.
fn rocksdb_checksum(stdout: &str) -> Option<String> {
    stdout.lines().find(|l| l.starts_with("fillrandom"))?;
    let read = stdout.lines().find(|l| l.starts_with("readrandom"))?;
    let open = read.rfind('(')?;
    let found = read[open + 1..].strip_suffix(" found)")?;
    let (hits, of) = found.split_once(" of ")?;
    let number = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    (number(hits) && number(of)).then(|| format!("OK {hits} of {of} found"))
}

fn free_port() -> Option<u16> {
    Some(TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port())
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    crate::outcome::proc_status_kib(&pid.to_string(), "VmHWM:")
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new(which("redis-cli")?)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Starts redis-server with the allocator preloaded, drives it with
/// redis-benchmark (pipelined LPUSH, SET, GET over random keys) and
/// records requests/s and the server's peak RSS.
fn run_redis(a: &Allocator, s: &RealSettings, rep: usize) -> Sample {
    let prog = &PROGRAMS[0];
    let mut sample = blank(a, prog, rep);
    let Some(port) = free_port() else {
        sample.error = Some("no free TCP port on 127.0.0.1".into());
        return sample;
    };
    let mut server = Command::new(which("redis-server").unwrap_or_else(|| "redis-server".into()));
    server.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]);
    set_run_env(&mut server, a, s);
    let requests = ((100_000.0 * s.scale) as u64).max(1_000);
    let server_line = shell_line(&server);
    let (pid_tx, pid_rx) = mpsc::channel();
    let timeout = s.timeout;
    let server_thread = thread::spawn(move || {
        measure(&mut server, timeout, move |pid| {
            let _ = pid_tx.send(pid);
        })
    });
    let Ok(pid) = pid_rx.recv_timeout(Duration::from_secs(10)) else {
        sample.error = Some(match server_thread.join() {
            Ok(Err(e)) => format!("could not start redis-server: {e}"),
            _ => "redis-server did not start".into(),
        });
        return sample;
    };
    let ready = Instant::now();
    while redis_cli(port, &["ping"]).as_deref() != Some("PONG") {
        if ready.elapsed() > Duration::from_secs(10) || server_thread.is_finished() {
            // SAFETY: kill has no memory-safety preconditions; `pid` is the
            // server, still unreaped while its measuring thread waits.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let why = match server_thread.join() {
                Ok(Ok(m)) => m.failure(),
                _ => "no answer".into(),
            };
            sample.error = Some(format!("redis-server did not answer PING: {why}"));
            sample.command = server_line;
            return sample;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut bench = Command::new(which("redis-benchmark").unwrap_or_else(|| "redis-benchmark".into()));
    bench.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "-P", "16"]);
    bench.args([
        "-n",
        &requests.to_string(),
        "-r",
        "1000000",
        "-t",
        "lpush,set,get",
        "--csv",
    ]);
    sample.command = format!("{server_line} &  {}", shell_line(&bench));
    let b = measure(&mut bench, s.timeout, |_| {});
    let roundtrip = redis_cli(port, &["set", "oxbench:check", "value-42"]).is_some()
        && redis_cli(port, &["get", "oxbench:check"]).as_deref() == Some("value-42");
    let hwm = vm_hwm_kib(pid);
    let _ = redis_cli(port, &["shutdown", "nosave"]);
    let srv = server_thread.join();
    match (b, srv) {
        (Ok(b), Ok(Ok(srv))) => {
            sample.wall_s = b.wall_s;
            sample.user_s = srv.user_s;
            sample.sys_s = srv.sys_s;
            sample.max_rss_kib = hwm.unwrap_or(srv.max_rss_kib);
            let rps = benchmark_rates(&b.stdout);
            if !b.success() || rps.len() < 3 {
                sample.error = Some(format!("redis-benchmark: {} {}", b.failure(), b.stdout.trim()));
            } else if !roundtrip {
                sample.error = Some("SET/GET round trip failed after the benchmark".into());
            } else if srv.signal.is_some() {
                sample.error = Some(format!("redis-server: {}", srv.failure()));
            } else {
                let total = requests as f64 * rps.len() as f64;
                let mut o = Outcome::per_second(total as u64, b.wall_s, "requests/s");
                record_rates(&mut o, rps);
                o.bench = "redis".into();
                o.worker = a.name.clone();
                o.threads = 1;
                o.scale = s.scale;
                sample.outcome = Some(o);
                sample.ok = true;
            }
        }
        (Err(e), _) => sample.error = Some(format!("could not run redis-benchmark: {e}")),
        (_, Ok(Err(e))) => sample.error = Some(format!("redis-server: {e}")),
        (_, Err(_)) => sample.error = Some("redis-server measuring thread panicked".into()),
    }
    sample
}

/// The allocators that can run real programs: glibc (no preload) and
/// every `LD_PRELOAD` allocator.
pub fn eligible(allocs: &[Allocator]) -> Vec<Allocator> {
    allocs
        .iter()
        .filter(|a| a.route == Route::LdPreload || a.of == "glibc")
        .map(|a| {
            let mut a = a.clone();
            if a.of == "glibc" {
                a.preload = None;
            }
            a
        })
        .collect()
}

/// The requests per second of each test in `redis-benchmark --csv`'s
/// output (`"SET","1007999.94",...`), as printed: `inf` included, which it
/// prints for a test that ends within its clock's resolution (the tiny
/// scales of the tests).
fn benchmark_rates(stdout: &str) -> Vec<(String, f64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(|x| x.trim_matches('"')).collect();
            Some((f.first()?.to_string(), f.get(1)?.parse().ok()?))
        })
        .collect()
}

/// Adds each test's rate to the outcome's extra figures as `<TEST>_rps`
/// (an `inf` is left out: [`Outcome::set_extra`]).
fn record_rates(o: &mut Outcome, rates: Vec<(String, f64)>) {
    for (test, r) in rates {
        o.set_extra(&format!("{test}_rps"), r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_infinite_redis_rate_is_left_out_and_the_outcome_reads_back() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"LPUSH\",\"inf\",\"0.1\"\n\"SET\",\"1007999.94\",\"0.2\"\n";
        let rates = benchmark_rates(csv);
        assert_eq!(rates.len(), 2, "{rates:?}");
        assert!(rates[0].1.is_infinite());
        let mut o = Outcome::per_second(2000, 0.01, "requests/s");
        record_rates(&mut o, rates);
        assert_eq!(o.extra.get("SET_rps"), Some(&1007999.94));
        assert!(!o.extra.contains_key("LPUSH_rps"));
        let json = serde_json::to_string(&o).unwrap();
        let back: Outcome = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back.extra, o.extra);
    }

    #[test]
    fn rocksdb_checksum_is_read_from_the_readrandom_line() {
        let out = "DB path: [/tmp/x]\nfillrandom   :       6.908 micros/op 288517 ops/sec 0.028 seconds 8000 operations;   31.9 MB/s\n\
                   readrandom   :       1.666 micros/op 1019238 ops/sec 0.008 seconds 8000 operations;   96.3 MB/s (3428 of 4000 found)\n";
        assert_eq!(rocksdb_checksum(out).as_deref(), Some("OK 3428 of 4000 found"));
        let no_fill = out.lines().nth(2).unwrap();
        assert_eq!(rocksdb_checksum(no_fill), None, "a run that did not fill is not OK");
        let cut = out.replace(" (3428 of 4000 found)", "");
        assert_eq!(rocksdb_checksum(&cut), None);
        let garbled = out.replace("3428 of", "34x8 of");
        assert_eq!(rocksdb_checksum(&garbled), None);
    }

    #[test]
    fn sqlite_script_inserts_in_chunks() {
        let s = sqlite_script(250_000);
        assert_eq!(s.matches("BEGIN;").count(), 3);
        assert!(s.contains("x < 250000"));
        assert!(s.contains("SELECT 'OK'"));
    }

    #[test]
    fn user_commands_are_parsed_and_checked() {
        let c = parse_user_command("build=make -j2 X=1").unwrap();
        assert_eq!((c.name.as_str(), c.line.as_str()), ("build", "make -j2 X=1"));
        for taken in ["larson", "redis", "all", "real", "synthetic"] {
            assert!(parse_user_command(&format!("{taken}=true")).is_err(), "{taken}");
        }
        for bad in ["no-equals", "=true", "a b=true", "a,b=true", "ok=  "] {
            assert!(parse_user_command(bad).is_err(), "{bad}");
        }
        assert!(parse_user_command("v1.2_x-y=true").is_ok());
    }

    #[test]
    fn metrics() {
        assert_eq!(metric_of("redis"), Metric::Throughput);
        assert_eq!(metric_of("lua"), Metric::Time);
    }
}
