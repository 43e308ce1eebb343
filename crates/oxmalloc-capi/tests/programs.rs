//! Real programs from Debian's packages under `LD_PRELOAD=liboxmalloc.so`:
//! each runs twice, with the C library's allocator and preloaded, and must
//! print the same results; the preloaded run must show oxmalloc's
//! statistics summary on stderr (proof that oxmalloc served it) and no
//! heap error. A program that is not installed prints "SKIPPED: <program>
//! not installed"; `tests/PACKAGES` lists the packages to install.

mod common;

use common::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(300);

/// Runs `make(run_index, preload)` without and with oxmalloc, checks both
/// succeed with the same stdout, and that oxmalloc served the second.
fn same_output_preloaded(what: &str, make: impl Fn(usize) -> Command) -> String {
    let baseline = run(make(0), LIMIT);
    assert_success(&baseline, &format!("{what} (without oxmalloc)"));
    let mut cmd = make(1);
    preloaded(&mut cmd);
    let ours = run(cmd, LIMIT);
    assert_success(&ours, &format!("{what} (LD_PRELOAD=liboxmalloc.so)"));
    let expected = String::from_utf8_lossy(&baseline.stdout).into_owned();
    let got = String::from_utf8_lossy(&ours.stdout).into_owned();
    assert!(!expected.trim().is_empty(), "{what}: the baseline printed nothing");
    assert_eq!(got, expected, "{what}: output differs under oxmalloc");
    let summaries = assert_served_by_oxmalloc(&ours.stderr, what);
    assert_no_heap_errors(&ours.stderr, what);
    println!(
        "{what}: same output ({} lines), {summaries} process(es) served by oxmalloc",
        expected.lines().count()
    );
    expected
}

/// Debian's interpreter rather than a version-manager shim when both exist.
fn debian_program(name: &str) -> Option<PathBuf> {
    let system = Path::new("/usr/bin").join(name);
    if system.is_file() {
        return Some(system);
    }
    find_program(name)
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
    same_output_preloaded("python3 (PYTHONMALLOC=malloc, 8 threads)", |_| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .env("PYTHONMALLOC", "malloc")
            .env("PYTHONHASHSEED", "0");
        cmd
    });
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
    same_output_preloaded("bash", |_| {
        let mut cmd = Command::new(&bash);
        cmd.arg(&script).env("LC_ALL", "C");
        cmd
    });
}

#[test]
fn git_init_add_commit() {
    let Some(git) = find_program("git") else {
        return skip("git");
    };
    let dir = TempDir::new("git");
    // Each run gets its own repository; the same files, names and dates
    // make the same commit hash.
    let script = r#"set -e
git init -q -b main repo
cd repo
for i in $(seq 1 300); do
  mkdir -p "d$((i % 17))"
  seq 1 $((i * 3)) | sed "s/^/line $i: /" > "d$((i % 17))/file$i.txt"
done
git add .
git commit -q -m "first commit"
for i in $(seq 1 300 | awk 'NR % 7 == 0'); do echo "change $i" >> "d$((i % 17))/file$i.txt"; done
git add -A
git commit -q -m "second commit"
git rev-parse HEAD HEAD~1
git log --stat --format='%H %an %s' | head -40
git ls-files | wc -l
git gc -q
git count-objects -v | grep -E '^(count|in-pack|packs)'
"#;
    let Some(bash) = debian_program("bash") else {
        return skip("bash");
    };
    let git_dir = git.parent().expect("git dir").to_path_buf();
    same_output_preloaded("git (init, add, commit, gc)", |i| {
        let work = dir.join(&format!("run{i}"));
        std::fs::create_dir_all(&work).expect("mkdir");
        let mut cmd = Command::new(&bash);
        cmd.arg("-c")
            .arg(script)
            .current_dir(&work)
            .env("HOME", &work)
            .env("PATH", format!("{}:/usr/bin:/bin", git_dir.display()))
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
    same_output_preloaded("perl", |_| {
        let mut cmd = Command::new(&perl);
        cmd.arg(&script).env("PERL_HASH_SEED", "0").env("LC_ALL", "C");
        cmd
    });
}

#[test]
fn gcc_compiles_c() {
    let Some(gcc) = debian_program("gcc") else {
        return skip("gcc");
    };
    let dir = TempDir::new("gcc");
    let source = c_source("contract.c");
    // The driver, cc1, as, collect2 and ld all run preloaded. The assembly
    // must be identical, and the linked program must run.
    same_output_preloaded("gcc (cc1, as, ld)", |i| {
        let asm = dir.join(&format!("contract{i}.s"));
        let exe = dir.join(&format!("contract{i}"));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "set -e; {gcc} -O2 -fno-builtin -S -o {asm} {src}; cat {asm}; {gcc} -O2 -fno-builtin -o {exe} {src} -ldl; test -x {exe}; echo linked",
                gcc = gcc.display(),
                asm = asm.display(),
                exe = exe.display(),
                src = source.display()
            ))
            .env("LC_ALL", "C");
        cmd
    });
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
    same_output_preloaded("sqlite3 (10^5 rows)", |i| {
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
    same_output_preloaded("lua5.4", |_| {
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
            assert_served_by_oxmalloc(&output.stderr, what);
            assert_no_heap_errors(&output.stderr, what);
        }
        answers.push(answer);
    }
    assert!(answers[0].contains("20000"), "the workload ran:\n{}", answers[0]);
    assert_eq!(answers[1], answers[0], "redis answers differ under oxmalloc");
    println!("redis-server: same answers under oxmalloc after redis-benchmark");
}
