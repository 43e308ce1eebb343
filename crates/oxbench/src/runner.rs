//! Runs one measurement per process and records wall, user and system time
//! from `wait4`, and peak RSS: the worker's own report (its `VmHWM`), or
//! `wait4`'s `ru_maxrss`, which also counts the runner's resident memory at
//! the spawn (docs/PERFORMANCE.md E26); runs a plan with interleaved
//! repetitions.

use crate::allocs::Allocator;
use crate::outcome::Outcome;
use crate::sample::Sample;
use crate::warm::Warmer;
use crate::workloads::Workload;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How a measured process ended.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when it was killed.
    pub signal: Option<i32>,
    /// Whether the watchdog killed it.
    pub timed_out: bool,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak RSS in KiB (`ru_maxrss`: at least the runner's own size).
    pub max_rss_kib: u64,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Measured {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-line account of a failure, with the end of standard error.
    pub fn failure(&self) -> String {
        let how = if self.timed_out {
            "timed out (killed)".to_string()
        } else if let Some(s) = self.signal {
            format!("killed by signal {s} ({})", signal_name(s))
        } else {
            format!("exit status {}", self.code.unwrap_or(-1))
        };
        // The lines that say what went wrong, else the last two.
        let key = [
            "DATA CORRUPTION",
            "panicked",
            "memory allocation of",
            "error",
            "Error",
            "oxmalloc:",
        ];
        let mut lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| key.iter().any(|k| l.contains(k)))
            .take(3)
            .collect();
        if lines.is_empty() {
            lines = self.stderr.lines().rev().take(2).collect();
            lines.reverse();
        }
        if lines.is_empty() {
            return how;
        }
        let mut msg = format!("{how}: {}", lines.join(" | "));
        if let Some(next) = self.stderr.lines().skip_while(|l| !l.contains("panicked")).nth(1) {
            msg = format!("{msg} | {}", next.trim());
        }
        msg
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => "signal",
    }
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Spawns `cmd`, waits for it with `wait4` and measures it; kills it after
/// `timeout`. `on_start` gets the child's pid (e.g. to poll /proc).
pub fn measure(cmd: &mut Command, timeout: Duration, on_start: impl FnOnce(u32)) -> std::io::Result<Measured> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let out = reader(child.stdout.take().expect("piped stdout"));
    let err = reader(child.stderr.take().expect("piped stderr"));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if done_rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: kill has no memory-safety preconditions; the pid is our
            // child, which is not reaped before `done_tx` is dropped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return true;
        }
        false
    });
    on_start(pid);
    let mut status = 0;
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    let rc = loop {
        // SAFETY: `status` and `ru` are valid out-pointers; `pid` is our
        // child, waited for here only (std's Child is never waited).
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, ru.as_mut_ptr()) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    let wall_s = start.elapsed().as_secs_f64();
    drop(done_tx);
    let timed_out = watchdog.join().unwrap_or(false);
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: wait4 succeeded and filled `ru`.
    let ru = unsafe { ru.assume_init() };
    let exited = libc::WIFEXITED(status);
    Ok(Measured {
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        timed_out,
        wall_s,
        user_s: tv(ru.ru_utime),
        sys_s: tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Renders a command (and its LD_PRELOAD) as a shell line for the report,
/// each word quoted where the shell would split or expand it, so that the
/// line can be pasted.
pub fn shell_line(cmd: &Command) -> String {
    let env: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), shell_word(&v?.to_string_lossy()))))
        .collect();
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_word(&a.to_string_lossy()))
        .collect();
    let mut line = env.join(" ");
    if !line.is_empty() {
        line.push(' ');
    }
    line + &args.join(" ")
}

/// `s` as one word for a POSIX shell: as it is when every character is
/// one the shell takes literally, else single-quoted.
fn shell_word(s: &str) -> String {
    let literal = |c: char| c.is_ascii_alphanumeric() || "_-./:=,+@%^".contains(c);
    if !s.is_empty() && s.chars().all(literal) {
        s.to_string()
    } else {
        sh_quote(s)
    }
}

/// `s` single-quoted for a POSIX shell (each inner quote closed, escaped
/// and reopened).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One synthetic measurement to make.
#[derive(Clone, Debug)]
pub struct Job {
    /// Workload.
    pub workload: &'static Workload,
    /// Thread count.
    pub threads: usize,
}

/// Settings shared by every job of a run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Scale factor passed to the workers.
    pub scale: f64,
    /// Kill a run after this long.
    pub timeout: Duration,
    /// `taskset -c CPUS` prefix, when pinning.
    pub pin: Option<String>,
    /// Environment variables set for every worker (`--env KEY=VALUE`).
    pub env: Vec<(String, String)>,
}

/// The worker command for `job` with allocator `a`.
pub fn worker_command(a: &Allocator, job: &Job, s: &Settings) -> Command {
    let args = [
        "run".to_string(),
        job.workload.name.to_string(),
        job.threads.to_string(),
        s.scale.to_string(),
    ];
    let mut cmd = match &s.pin {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&a.worker);
            c
        }
        None => Command::new(&a.worker),
    };
    cmd.args(args);
    cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
    a.set_on(&mut cmd);
    cmd
}

/// Runs `job` once with allocator `a`, as repetition `rep`.
pub fn run_one(a: &Allocator, job: &Job, s: &Settings, rep: usize) -> Sample {
    let mut cmd = worker_command(a, job, s);
    let command = shell_line(&cmd);
    let mut sample = Sample::new(&a.name, job.workload.name, job.threads, rep);
    sample.command = command;

    match measure(&mut cmd, s.timeout, |_| {}) {
        Err(e) => sample.error = Some(format!("could not start: {e}")),
        Ok(m) => {
            sample.wall_s = m.wall_s;
            sample.user_s = m.user_s;
            sample.sys_s = m.sys_s;
            sample.max_rss_kib = m.max_rss_kib;
            if !m.success() {
                sample.error = Some(m.failure());
            } else {
                match Outcome::from_output(&m.stdout) {
                    Some(Ok(o)) => {
                        if let Some(kib) = o.peak_rss_kib {
                            sample.max_rss_kib = kib;
                        }
                        sample.outcome = Some(o);
                        sample.ok = true;
                    }
                    Some(Err(e)) => sample.error = Some(format!("bad result line: {e}")),
                    None => sample.error = Some("no result line on stdout".into()),
                }
            }
        }
    }
    sample
}

/// Runs repetition `rep` of every job with every allocator, interleaved:
/// job by job, each allocator in turn, in [`run_order`], each run after a
/// warm-up of free memory ([`Warmer`]). `progress` is called after each run
/// with the sample.
pub fn run_rep(
    allocs: &[Allocator],
    jobs: &[Job],
    s: &Settings,
    rep: usize,
    warmer: &mut Warmer,
    mut progress: impl FnMut(&Sample),
) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(allocs.len() * jobs.len());
    for (j, job) in jobs.iter().enumerate() {
        let key = format!("{}@{}", job.workload.name, job.threads);
        for i in run_order(allocs.len(), rep, j) {
            let sample = warmer.run(&key, || run_one(&allocs[i], job, s, rep));
            progress(&sample);
            samples.push(sample);
        }
    }
    samples
}

/// The order in which the `n` allocators run job `job` of repetition
/// `rep`: a shuffle seeded by both (the same plan runs in the same order
/// every time), so that no allocator always runs in the same slot or right
/// after the same other one. On this VM the slot right after glibc's
/// malloc-large (which maps and unmaps ~400 MiB) pays several times the
/// system time for the same page faults (docs/PERFORMANCE.md E31); with a
/// fixed order (and with a rotation, which keeps the neighbours) the same
/// allocator paid it in every repetition.
pub fn run_order(n: usize, rep: usize, job: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let seed = ((rep as u64) << 32) ^ job as u64;
    order.shuffle(&mut SmallRng::seed_from_u64(seed ^ 0x6f78_6265_6e63_6821));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_orders_are_reproducible_permutations_with_changing_neighbours() {
        let n = 7;
        let mut predecessors = vec![std::collections::BTreeSet::new(); n];
        let mut leaders = std::collections::BTreeSet::new();
        for rep in 0..5 {
            for job in 0..28 {
                let order = run_order(n, rep, job);
                assert_eq!(order, run_order(n, rep, job), "reproducible");
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation: {order:?}");
                leaders.insert(order[0]);
                for w in order.windows(2) {
                    predecessors[w[1]].insert(w[0]);
                }
            }
        }
        assert_eq!(leaders.len(), n, "every allocator runs first somewhere");
        for (a, p) in predecessors.iter().enumerate() {
            assert!(p.len() >= n - 2, "allocator {a} only ever follows {p:?}");
        }
        assert!(run_order(0, 3, 1).is_empty());
    }

    #[test]
    fn measures_exit_status_time_and_rss() {
        let m = measure(
            Command::new("sh").args(["-c", "echo hi; echo oops >&2; exit 3"]),
            Duration::from_secs(10),
            |_| {},
        )
        .unwrap();
        assert_eq!(m.code, Some(3));
        assert_eq!(m.stdout.trim(), "hi");
        assert!(m.failure().contains("exit status 3"), "{}", m.failure());
        assert!(m.failure().contains("oops"));
        assert!(m.max_rss_kib > 0);
        let k = measure(Command::new("sleep").arg("5"), Duration::from_millis(100), |_| {}).unwrap();
        assert!(k.timed_out);
        assert_eq!(k.signal, Some(libc::SIGKILL));
        assert!(k.wall_s < 4.0);
    }

    #[test]
    fn shell_line_shows_preload() {
        let mut c = Command::new("/bin/w");
        c.args(["run", "x"]).env("LD_PRELOAD", "/l.so");
        assert_eq!(shell_line(&c), "LD_PRELOAD=/l.so /bin/w run x");
    }

    #[test]
    fn shell_quoting_round_trips_through_sh() {
        for text in ["plain", "it's", "a 'b' \\ $HOME `x` \"q\"", ""] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(text)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        }
    }

    #[test]
    fn shell_line_quotes_words_the_shell_would_split() {
        let mut c = Command::new("sqlite3");
        c.args([":memory:", ".read /tmp/a b.sql", "it's", ""])
            .env("OXMALLOC_PROF", "/tmp/w.%p.heap");
        assert_eq!(
            shell_line(&c),
            r"OXMALLOC_PROF=/tmp/w.%p.heap sqlite3 :memory: '.read /tmp/a b.sql' 'it'\''s' ''"
        );
    }
}
