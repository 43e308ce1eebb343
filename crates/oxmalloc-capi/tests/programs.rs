//! Real programs from Debian's packages under `LD_PRELOAD=liboxmalloc.so`:
//! each runs twice, with the C library's allocator and preloaded, and must
//! print the same results; the preloaded run must show no heap error and
//! one `OXMALLOC_SHOW_STATS` summary on stderr for **each process** it is
//! expected to start (the proof that oxmalloc served every one of them,
//! not only a wrapper shell): programs run directly, not through a shell;
//! gcc's processes are counted from `gcc -###` (driver, cc1, as, collect2
//! and the ld that collect2 runs), git's from its `GIT_TRACE` (one
//! `built-in:` line per git process). A program that is not installed
//! prints "SKIPPED: <program> not installed"; `tests/PACKAGES` lists the
//! packages to install.

mod common;

use common::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(300);

/// How many processes of a preloaded run must print a statistics summary.
#[derive(Clone, Copy, Debug)]
enum Processes {
    /// Exactly this many (each process the command starts).
    Exactly(usize),
    /// At least this many: for a shell script, whose forks are copies of
    /// the shell (counted when they exit through `exit`) and whose
    /// external commands are GNU coreutils, which close stderr before
    /// exiting and so print no summary (see README.md).
    AtLeast(usize),
}

/// The two runs of a command: without oxmalloc, and preloaded.
struct Pair {
    baseline: Output,
    ours: Output,
    /// Statistics summaries in the preloaded run's stderr.
    summaries: usize,
}

/// Runs `make(0)` without oxmalloc and `make(1)` preloaded (with
/// `OXMALLOC_SHOW_STATS=1`); both must succeed, the second must show
/// oxmalloc's statistics (something allocated), as many summaries as
/// `expected` says, and no heap error.
fn run_both(what: &str, expected: Processes, make: impl Fn(usize) -> Command) -> Pair {
    let baseline = run(make(0), LIMIT);
    assert_success(&baseline, &format!("{what} (without oxmalloc)"));
    let mut cmd = make(1);
    preloaded(&mut cmd);
    let ours = run(cmd, LIMIT);
    assert_success(&ours, &format!("{what} (LD_PRELOAD=liboxmalloc.so)"));
    let summaries = assert_served_by_oxmalloc(&ours.stderr, what);
    assert_no_heap_errors(&ours.stderr, what);
    let ok = match expected {
        Processes::Exactly(n) => summaries == n,
        Processes::AtLeast(n) => summaries >= n,
    };
    assert!(
        ok,
        "{what}: {summaries} oxmalloc statistics summaries, expected {expected:?} (one per process): \
         some process was not served by oxmalloc\nstderr:\n{}",
        tail(&ours.stderr)
    );
    Pair {
        baseline,
        ours,
        summaries,
    }
}

/// [`run_both`], and both runs must print the same, non-empty stdout.
/// Returns it.
fn same_output_preloaded(what: &str, expected: Processes, make: impl Fn(usize) -> Command) -> String {
    let pair = run_both(what, expected, make);
    let expected_out = String::from_utf8_lossy(&pair.baseline.stdout).into_owned();
    let got = String::from_utf8_lossy(&pair.ours.stdout).into_owned();
    assert!(!expected_out.trim().is_empty(), "{what}: the baseline printed nothing");
    assert_eq!(got, expected_out, "{what}: output differs under oxmalloc");
    println!(
        "{what}: same output ({} lines), {} process(es) served by oxmalloc",
        expected_out.lines().count(),
        pair.summaries
    );
    expected_out
}

const PYTHON_SCRIPT: &str = r#"
import collections, hashlib, json, threading

results = [None] * 8

def work(i):
    d = {}
    for j in range(20000):
        d[f"k{i}-{j}"] = [j, str(j) * ((j % 7) + 1), {"x": j * i}]
    s = json.dumps(sorted(d.items())[:2000])
    c = collections.Counter(str(j % 97) for j in range(50000))
    words = " ".join(f"w{j % 1000}" for j in range(30000)).split()
    big = [bytes(range(j % 256)) * 40 for j in range(2000)]
    results[i] = (
        hashlib.sha256(s.encode()).hexdigest(),
        sum(c.values()),
        len(set(words)),
        sum(len(v[1]) for v in d.values()),
        sum(len(b) for b in big),
    )

threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for r in results:
    print(*r)
"#;

#[test]
fn python3_threads() {
    let Some(python) = debian_program("python3") else {
        return skip("python3");
    };
    let dir = TempDir::new("python");
    let script = dir.join("threads.py");
    std::fs::write(&script, PYTHON_SCRIPT).expect("write script");
    same_output_preloaded(
        "python3 (PYTHONMALLOC=malloc, 8 threads)",
        Processes::Exactly(1),
        |_| {
            let mut cmd = Command::new(&python);
            cmd.arg(&script)
                .env("PYTHONMALLOC", "malloc")
                .env("PYTHONHASHSEED", "0");
            cmd
        },
    );
}

const BASH_SCRIPT: &str = r#"
declare -A h
arr=()
for i in $(seq 1 3000); do h[k$i]=$((i * i)); arr+=("item-$i"); done
s=""
for i in $(seq 1 500); do s+="${arr[$i]},"; done
echo "${#h[@]} ${#arr[@]} ${#s}"
printf '%s\n' "${arr[@]}" | sort | head -3 | tr '\n' ' '
echo
sum=0
for k in "${!h[@]}"; do sum=$((sum + h[$k])); done
echo "$sum"
str="hello world"
echo "${str^^} ${str//o/0} ${str:3:5}"
echo "$(echo nested $(echo deeper $(echo deepest)))"
( for i in 1 2 3; do echo "sub $i"; done ) | while read -r a b; do echo "$b:$a"; done
f() { local x="$1"; [ "$x" -le 1 ] && { echo 1; return; }; echo $((x * $(f $((x - 1))))); }
f 12
mapfile -t lines < <(seq 1 1000)
echo "${#lines[@]} ${lines[999]}"
"#;

#[test]
fn bash_script() {
    let Some(bash) = debian_program("bash") else {
        return skip("bash");
    };
    let dir = TempDir::new("bash");
    let script = dir.join("script.sh");
    std::fs::write(&script, BASH_SCRIPT).expect("write script");
    same_output_preloaded("bash", Processes::AtLeast(1), |_| {
        let mut cmd = Command::new(&bash);
        cmd.arg(&script).env("LC_ALL", "C");
        cmd
    });
}

/// The files of the git test's repository: 300 files in 17 directories;
/// `second` appends a line to every seventh.
fn write_git_files(repo: &Path, second: bool) {
    for i in 1..=300usize {
        let dir = repo.join(format!("d{}", i % 17));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join(format!("file{i}.txt"));
        if second {
            if i % 7 == 0 {
                let mut text = std::fs::read_to_string(&file).expect("read file");
                text.push_str(&format!("change {i}\n"));
                std::fs::write(&file, text).expect("write file");
            }
        } else {
            let text: String = (1..=i * 3).map(|k| format!("line {i}: {k}\n")).collect();
            std::fs::write(&file, text).expect("write file");
        }
    }
}

#[test]
fn git_init_add_commit() {
    // Debian's git: another build may come first on PATH (/usr/local/bin).
    let Some(git) = debian_program("git") else {
        return skip("git");
    };
    let dir = TempDir::new("git");
    // Each run gets its own repository; the same files, names and dates
    // make the same commit hashes.
    let runs = [dir.join("run0"), dir.join("run1")];
    for run_dir in &runs {
        std::fs::create_dir_all(run_dir).expect("mkdir");
    }
    let traces = [dir.join("trace0"), dir.join("trace1")];
    // One git command run directly (no shell) in both repositories: same
    // stdout (after `keep`), and one statistics summary per git process
    // that GIT_TRACE saw start (a subcommand such as `gc` runs several).
    let step = |args: &[&str], keep: fn(&str) -> bool| -> String {
        let what = format!("git {}", args.join(" "));
        let pair = run_both(&what, Processes::AtLeast(1), |i| {
            let _ = std::fs::remove_file(&traces[i]);
            let mut cmd = Command::new(&git);
            cmd.args(args)
                .current_dir(&runs[i])
                .env("HOME", &runs[i])
                .env("GIT_TRACE", &traces[i])
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "Ox Test")
                .env("GIT_AUTHOR_EMAIL", "ox@example.invalid")
                .env("GIT_COMMITTER_NAME", "Ox Test")
                .env("GIT_COMMITTER_EMAIL", "ox@example.invalid")
                .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
                .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
                .env("LC_ALL", "C");
            cmd
        });
        let trace = std::fs::read_to_string(&traces[1]).unwrap_or_else(|e| panic!("{what}: no GIT_TRACE file: {e}"));
        let processes = trace.lines().filter(|l| l.contains("trace: built-in: git")).count();
        assert!(processes >= 1, "{what}: GIT_TRACE shows no git process:\n{trace}");
        assert_eq!(
            pair.summaries,
            processes,
            "{what}: {processes} git processes (GIT_TRACE) but {} oxmalloc statistics summaries: \
             some process was not served by oxmalloc\ntrace:\n{trace}\nstderr:\n{}",
            pair.summaries,
            tail(&pair.ours.stderr)
        );
        let filter = |out: &[u8]| -> String {
            String::from_utf8_lossy(out)
                .lines()
                .filter(|l| keep(l))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let expected = filter(&pair.baseline.stdout);
        assert_eq!(
            filter(&pair.ours.stdout),
            expected,
            "{what}: output differs under oxmalloc"
        );
        println!(
            "{what}: same output ({} lines), {processes} git process(es), each served by oxmalloc",
            expected.lines().count()
        );
        expected
    };
    let all = |_: &str| true;
    step(&["init", "-q", "-b", "main", "repo"], all);
    for run_dir in &runs {
        write_git_files(&run_dir.join("repo"), false);
    }
    step(&["-C", "repo", "add", "."], all);
    step(&["-C", "repo", "commit", "-q", "-m", "first commit"], all);
    for run_dir in &runs {
        write_git_files(&run_dir.join("repo"), true);
    }
    step(&["-C", "repo", "add", "-A"], all);
    step(&["-C", "repo", "commit", "-q", "-m", "second commit"], all);
    let heads = step(&["-C", "repo", "rev-parse", "HEAD", "HEAD~1"], all);
    assert_eq!(heads.lines().count(), 2, "two commits: {heads}");
    let log = step(&["-C", "repo", "log", "--stat", "--format=%H %an %s"], all);
    assert!(
        log.contains("300 files changed"),
        "the first commit has every file:\n{log}"
    );
    let files = step(&["-C", "repo", "ls-files"], all);
    assert_eq!(files.lines().count(), 300, "git ls-files");
    step(&["-C", "repo", "gc", "-q"], all);
    let objects = step(&["-C", "repo", "count-objects", "-v"], |l| {
        ["count:", "in-pack:", "packs:"].iter().any(|k| l.starts_with(k))
    });
    assert!(objects.contains("packs: 1"), "gc packed the objects:\n{objects}");
}

const PERL_SCRIPT: &str = r#"
use strict; use warnings;
my %h;
for my $i (1 .. 100000) { $h{"key$i"} = $i * 2; }
my @k = sort keys %h;
print scalar(@k), " $k[0] $k[-1]\n";
my $s = join(",", map { sprintf("%05d", $_) } 1 .. 20000);
print length($s), "\n";
my $count = () = $s =~ /0(\d)0/g;
print "$count\n";
my %seen;
$seen{substr($_, 0, 3)}++ for split /,/, $s;
print scalar(keys %seen), "\n";
my $t = 0;
$t += $h{$_} for @k;
print "$t\n";
my @sorted = sort { $a->[1] <=> $b->[1] or $a->[0] cmp $b->[0] } map { [$_, length($_) % 5] } @k[0 .. 9999];
print join(" ", map { $_->[0] } @sorted[0 .. 4]), "\n";
(my $r = "abc" x 10000) =~ s/b/BB/g;
print length($r), "\n";
"#;

#[test]
fn perl_script() {
    let Some(perl) = debian_program("perl") else {
        return skip("perl");
    };
    let dir = TempDir::new("perl");
    let script = dir.join("script.pl");
    std::fs::write(&script, PERL_SCRIPT).expect("write script");
    same_output_preloaded("perl", Processes::Exactly(1), |_| {
        let mut cmd = Command::new(&perl);
        cmd.arg(&script).env("PERL_HASH_SEED", "0").env("LC_ALL", "C");
        cmd
    });
}

/// The processes `gcc ARGS` starts, from `gcc -### ARGS` (the driver
/// prints each command it would run on a line of its own, starting with a
/// space): the driver itself, each command's program, and the `ld` that
/// `collect2` runs.
fn gcc_processes(gcc: &Path, args: &[&str], cwd: &Path) -> Vec<String> {
    let mut cmd = Command::new(gcc);
    cmd.arg("-###").args(args).current_dir(cwd).env("LC_ALL", "C");
    let out = run(cmd, LIMIT);
    assert_success(&out, "gcc -###");
    let mut names = vec!["gcc".to_string()];
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let Some(command) = line.strip_prefix(' ') else {
            continue;
        };
        let program = command.split_whitespace().next().unwrap_or_default().trim_matches('"');
        let name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "collect2" {
            names.push(name);
            names.push("ld".to_string());
        } else {
            names.push(name);
        }
    }
    names
}

#[test]
fn gcc_compiles_c() {
    let Some(gcc) = debian_program("gcc") else {
        return skip("gcc");
    };
    let dir = TempDir::new("gcc");
    let runs = [dir.join("run0"), dir.join("run1")];
    for run_dir in &runs {
        std::fs::create_dir_all(run_dir).expect("mkdir");
    }
    let source = c_source("contract.c");
    let source = source.to_str().expect("utf-8 path");
    // Three steps, gcc run directly in each: compile to assembly (driver,
    // cc1), assemble (driver, as), link (driver, collect2, ld). Every
    // process must print a summary; the assembly, the object and the
    // executable must be the same as without oxmalloc.
    let steps: [(&str, &[&str], &str); 3] = [
        ("cc1", &["-O2", "-fno-builtin", "-S", "-o", "-", source], ""),
        ("as", &["-c", "-o", "contract.o", "contract.s"], "contract.o"),
        ("collect2", &["-o", "contract", "contract.o", "-ldl"], "contract"),
    ];
    for (tool, args, product) in steps {
        let processes = gcc_processes(&gcc, args, &runs[0]);
        assert!(
            processes.iter().any(|p| p == tool),
            "gcc {args:?} should run {tool}; gcc -### lists {processes:?}"
        );
        let what = format!("gcc {} ({})", args.join(" "), processes.join(", "));
        let pair = run_both(&what, Processes::Exactly(processes.len()), |i| {
            let mut cmd = Command::new(&gcc);
            cmd.args(args).current_dir(&runs[i]).env("LC_ALL", "C");
            cmd
        });
        if product.is_empty() {
            // The assembly on stdout: the input of the next step.
            assert!(
                String::from_utf8_lossy(&pair.baseline.stdout).contains("main:"),
                "{what}: no assembly printed"
            );
            assert_eq!(
                pair.ours.stdout, pair.baseline.stdout,
                "{what}: assembly differs under oxmalloc"
            );
            std::fs::write(runs[0].join("contract.s"), &pair.baseline.stdout).expect("write contract.s");
            std::fs::write(runs[1].join("contract.s"), &pair.ours.stdout).expect("write contract.s");
        } else {
            let read = |i: usize| std::fs::read(runs[i].join(product)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let (expected, got) = (read(0), read(1));
            assert!(!expected.is_empty(), "{what}: empty {product}");
            assert!(got == expected, "{what}: {product} differs under oxmalloc");
        }
        println!(
            "{what}: same result, {} processes, {} statistics summaries",
            processes.len(),
            pair.summaries
        );
    }
}

#[test]
fn sqlite3_insert_and_query() {
    let Some(sqlite3) = debian_program("sqlite3") else {
        return skip("sqlite3");
    };
    let dir = TempDir::new("sqlite");
    let mut sql = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, val REAL, grp INTEGER);\nBEGIN;\n");
    for i in 1..=100_000u64 {
        sql.push_str(&format!(
            "INSERT INTO t VALUES({i}, 'name-{i}-{}', {}, {});\n",
            "x".repeat((i % 50) as usize),
            (i * 37 % 1000) as f64 / 8.0,
            i % 97
        ));
    }
    sql.push_str(
        "COMMIT;
CREATE INDEX t_grp ON t(grp);
SELECT count(*), sum(val), min(name), max(name) FROM t;
SELECT grp, count(*), round(avg(val), 3) FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT name FROM t WHERE id % 9973 = 0 ORDER BY name;
SELECT count(*) FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.grp = 3;
SELECT group_concat(id, '|') FROM (SELECT id FROM t ORDER BY val DESC, id LIMIT 20);
SELECT length(group_concat(name)) FROM t;
UPDATE t SET name = upper(name) WHERE grp = 5;
DELETE FROM t WHERE grp = 7;
SELECT count(*), sum(length(name)) FROM t;
",
    );
    let script = dir.join("script.sql");
    std::fs::write(&script, sql).expect("write sql");
    same_output_preloaded("sqlite3 (10^5 rows)", Processes::Exactly(1), |i| {
        let db = dir.join(&format!("db{i}.sqlite"));
        let mut cmd = Command::new(&sqlite3);
        cmd.arg("-batch").arg(&db).arg(format!(".read {}", script.display()));
        cmd
    });
}

const LUA_SCRIPT: &str = r#"
local t = {}
for i = 1, 200000 do t[i] = tostring(i) .. string.rep("x", i % 10) end
local m = {}
for i, v in ipairs(t) do m[v] = i end
local cnt = 0
for _ in pairs(m) do cnt = cnt + 1 end
table.sort(t)
local parts = {}
for i = 1, 1000 do parts[#parts + 1] = t[i] end
local s = table.concat(parts, ",")
collectgarbage("collect")
print(cnt, t[1], t[#t], #s)
local function mk(n) return function(x) return x + n end end
local acc = 0
for i = 1, 100000 do acc = mk(i)(acc) % 1000003 end
print(acc)
local words = {}
for w in string.gmatch(string.rep("alpha beta gamma ", 20000), "%a+") do words[w] = (words[w] or 0) + 1 end
print(words.alpha, words.beta, words.gamma)
local co = coroutine.wrap(function() for i = 1, 5 do coroutine.yield(i * i) end end)
local ys = {}
for _ = 1, 5 do ys[#ys + 1] = co() end
print(table.concat(ys, " "))
"#;

#[test]
fn lua_script() {
    let Some(lua) = debian_program("lua5.4") else {
        return skip("lua5.4");
    };
    let dir = TempDir::new("lua");
    let script = dir.join("script.lua");
    std::fs::write(&script, LUA_SCRIPT).expect("write script");
    same_output_preloaded("lua5.4", Processes::Exactly(1), |_| {
        let mut cmd = Command::new(&lua);
        cmd.arg(&script);
        cmd
    });
}

/// A port that was free a moment ago on the loopback interface.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A redis-server on loopback; shut down (and waited for) on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    cli: PathBuf,
}

impl Redis {
    fn start(server: &Path, cli: &Path, dir: &Path, preload: bool) -> Redis {
        let port = free_port();
        let mut cmd = Command::new(server);
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--daemonize",
            "no",
            "--enable-debug-command",
            "yes",
            "--protected-mode",
            "yes",
        ])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if preload {
            preloaded(&mut cmd);
        }
        let child = cmd.spawn().expect("start redis-server");
        let redis = Redis {
            child: Some(child),
            port,
            cli: cli.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new(cli)
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.cli)
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `SHUTDOWN NOSAVE`, then the server's output.
    fn stop(mut self) -> std::process::Output {
        let _ = Command::new(&self.cli)
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .output();
        let child = self.child.take().expect("running");
        wait_with_deadline(child, Duration::from_secs(30))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_with_deadline(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("redis-server did not stop:\n{}", tail(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deterministic work whose answers are compared between allocators.
fn redis_workload(redis: &Redis) -> String {
    let mut out = String::new();
    out += &redis.cli(&["flushall"]);
    out += &redis.cli(&["debug", "populate", "20000", "key", "64"]);
    out += &redis.cli(&["dbsize"]);
    out += &redis.cli(&["get", "key:4242"]);
    out += &redis.cli(&["rpush", "list", "a", "b", "c", "d"]);
    out += &redis.cli(&["lrange", "list", "0", "-1"]);
    let big = "v".repeat(100_000); // one argv string: under 128 KiB
    out += &redis.cli(&["set", "big", &big]);
    out += &redis.cli(&["strlen", "big"]);
    out += &redis.cli(&["append", "big", "tail"]);
    out += &redis.cli(&["zadd", "z", "1", "one", "2", "two", "3", "three"]);
    out += &redis.cli(&["zrange", "z", "0", "-1", "withscores"]);
    out += &redis.cli(&["hset", "h", "f1", "v1", "f2", "v2"]);
    out += &redis.cli(&["hgetall", "h"]);
    out += &redis.cli(&["del", "key:1", "key:2", "key:3"]);
    out += &redis.cli(&["debug", "digest"]);
    out
}

#[test]
fn redis_server_under_redis_benchmark() {
    let (Some(server), Some(cli), Some(bench)) = (
        debian_program("redis-server"),
        debian_program("redis-cli"),
        debian_program("redis-benchmark"),
    ) else {
        return skip("redis-server/redis-cli/redis-benchmark");
    };
    let dir = TempDir::new("redis");
    let mut answers = Vec::new();
    for preload in [false, true] {
        let what = if preload {
            "redis-server (LD_PRELOAD)"
        } else {
            "redis-server"
        };
        let redis = Redis::start(&server, &cli, dir.path(), preload);
        // A few seconds of load: bounded by the request count.
        let mut cmd = Command::new(&bench);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &redis.port.to_string(),
            "-q",
            "-n",
            "30000",
            "-c",
            "20",
            "-d",
            "200",
        ])
        .args([
            "-t",
            "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset",
        ]);
        let load = run(cmd, LIMIT);
        assert_success(&load, &format!("redis-benchmark against {what}"));
        assert!(
            String::from_utf8_lossy(&load.stdout).contains("requests per second"),
            "redis-benchmark printed no results:\n{}",
            tail(&load.stdout)
        );
        let answer = redis_workload(&redis);
        let output = redis.stop();
        assert!(
            output.status.success(),
            "{what} exited with {}:\n{}",
            output.status,
            tail(&output.stdout)
        );
        if preload {
            let summaries = assert_served_by_oxmalloc(&output.stderr, what);
            assert_eq!(
                summaries,
                1,
                "{what}: one process, one statistics summary\n{}",
                tail(&output.stderr)
            );
            assert_no_heap_errors(&output.stderr, what);
        }
        answers.push(answer);
    }
    assert!(answers[0].contains("20000"), "the workload ran:\n{}", answers[0]);
    assert_eq!(answers[1], answers[0], "redis answers differ under oxmalloc");
    println!("redis-server: same answers under oxmalloc after redis-benchmark");
}
