#!/usr/bin/env python3
"""redis-server under each allocator, driven by redis-benchmark on loopback.

For each round (default 5), every allocator in turn (interleaved, so drift
in the machine hits all alike): start redis-server with the allocator,
run redis-benchmark (bounded request count), read the server's peak RSS
(VmHWM) and shut it down. Prints the median requests/s per test and the
median peak RSS per allocator.

Allocators: glibc (LD_PRELOAD=libc.so.6 puts glibc's malloc ahead of the
jemalloc that Debian's redis-server links), jemalloc (Debian's build, as
linked), mimalloc (Debian's libmimalloc.so.2) and oxmalloc
(target/release/liboxmalloc.so).

Usage: scripts/capi/redis-bench.py [--rounds 5] [--requests 100000]
       [--clients 50] [--size 256] [--keyspace 100000] [--pipeline 1]
       [--tests set,get,...]
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
ALLOCATORS = [
    ("glibc", os.path.join(LIBDIR, "libc.so.6")),
    ("jemalloc", os.path.join(LIBDIR, "libjemalloc.so.2")),
    ("mimalloc", os.path.join(LIBDIR, "libmimalloc.so.2")),
    ("oxmalloc", os.path.join(ROOT, "target", "release", "liboxmalloc.so")),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pin(args, cpu):
    """taskset prefix: server and client on different CPUs (less variance)."""
    if args.no_pin or (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu)]


def one_run(lib, args):
    port = free_port()
    env = dict(os.environ, LD_PRELOAD=lib)
    server = subprocess.Popen(
        pin(args, 1) + ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--dir", "/tmp"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while cli(port, "ping") != "PONG":
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"redis-server with {lib} did not start")
            time.sleep(0.05)
        bench = subprocess.run(
            pin(args, 0) + ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(args.requests),
             "-c", str(args.clients), "-d", str(args.size), "-r", str(args.keyspace), "-P", str(args.pipeline),
             "-t", args.tests, "--csv"],
            capture_output=True, text=True, timeout=600)
        rps = {}
        for line in bench.stdout.splitlines():
            cells = [c.strip('"') for c in line.split('","')]
            if len(cells) >= 2 and cells[0] != "test":
                rps[cells[0].strip('"')] = float(cells[1])
        rss = peak_rss_kib(server.pid)
        cli(port, "shutdown", "nosave")
        server.wait(timeout=30)
        return rps, rss
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=100000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--keyspace", type=int, default=100000)
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 1 and the client to CPU 0")
    p.add_argument("--pipeline", type=int, default=1,
                   help="requests per round trip (-P); with 1 the single-threaded client is often the bottleneck")
    p.add_argument("--tests", default="set,get,incr,lpush,lpop,sadd,hset,zadd,lrange_100")
    args = p.parse_args()

    allocators = [(n, l) for n, l in ALLOCATORS if os.path.exists(l)]
    for n, l in ALLOCATORS:
        if not os.path.exists(l):
            print(f"{n}: {l} not found, skipped", file=sys.stderr)
    results = {n: [] for n, _ in allocators}
    for r in range(args.rounds):
        for name, lib in allocators:
            rps, rss = one_run(lib, args)
            results[name].append((rps, rss))
            print(f"round {r + 1} {name}: peak RSS {rss / 1024:.1f} MiB, "
                  + ", ".join(f"{t} {v:.0f}" for t, v in rps.items()), file=sys.stderr)

    tests = list(results[allocators[0][0]][0][0].keys())
    names = [n for n, _ in allocators]
    print(f"redis-benchmark -n {args.requests} -c {args.clients} -d {args.size} -r {args.keyspace} "
          f"-P {args.pipeline}; "
          f"median of {args.rounds} interleaved runs (requests/s)")
    print(f"{'test':<24}" + "".join(f"{n:>12}" for n in names))
    for t in tests:
        row = [statistics.median(run[0].get(t, 0.0) for run in results[n]) for n in names]
        print(f"{t:<24}" + "".join(f"{v:>12.0f}" for v in row))
    totals = [statistics.median(sum(run[0].values()) for run in results[n]) for n in names]
    print(f"{'sum of tests':<24}" + "".join(f"{v:>12.0f}" for v in totals))
    rss = [statistics.median(run[1] for run in results[n]) / 1024 for n in names]
    print(f"{'server peak RSS (MiB)':<24}" + "".join(f"{v:>12.1f}" for v in rss))


if __name__ == "__main__":
    main()
