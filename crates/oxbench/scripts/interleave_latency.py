#!/usr/bin/env python3
"""Latency percentiles of worker binaries, one run of each per round.

The latency workload's companion to `interleave_workers.py`: for A/B checks
of an engine change on the tails of `malloc` and `free` (copy the first
build of `oxbench-worker-oxmalloc` aside before the second). Each round runs
every worker once (`WORKER run latency THREADS SCALE`), in the given order on
even rounds and reversed on odd ones, so that the machine's drift hits all of
them alike. Prints, per worker and histogram, the median over the rounds of
p50, p99, p99.9 and max (ns), with the min-max of each; then, per
histogram, the median count of calls slower than 200, 300, 500 and 1,000
ns (which of the split histograms holds the calls above another
allocator's p99.9, docs/PERFORMANCE.md E95); then the median peak RSS.
The histograms are `malloc` and its two parts by size, `malloc-small`
(up to 1 KiB) and `malloc-big`; `free`, and the three parts of `free`:
`free-small` and `free-big` (the thread's own blocks up to 1 KiB and above)
and `free-shared` (blocks evicted from the shared array, half of them freed
by another thread than the one that allocated them), itself split into
`free-shared-own` and `free-shared-remote` by who allocated the block.

A run of the latency workload at scale 0.5 takes about a second and its
tails move by 20-30% from run to run on a 2-core VM: use 30 rounds or more,
and run two copies of the same binary side by side to see what a difference
between builds must exceed (docs/PERFORMANCE.md E59).

Usage: interleave_latency.py WORKER[,WORKER...] ROUNDS [THREADS [SCALE]]
Example: interleave_latency.py /tmp/base-worker,target/oxbench-workers/release/oxbench-worker-oxmalloc 41
"""

import statistics
import sys

from interleave_workers import worker_result

HISTOGRAMS = [
    "malloc",
    "malloc-small",
    "malloc-big",
    "free",
    "free-small",
    "free-big",
    "free-shared",
    "free-shared-own",
    "free-shared-remote",
]
PERCENTILES = [("p50", "p50"), ("p99", "p99"), ("p99.9", "p999"), ("max", "max")]


def main():
    if len(sys.argv) not in (3, 4, 5):
        raise SystemExit(__doc__)
    workers = sys.argv[1].split(",")
    rounds = int(sys.argv[2])
    threads = sys.argv[3] if len(sys.argv) > 3 else "2"
    scale = sys.argv[4] if len(sys.argv) > 4 else "0.5"
    results = {w: [] for w in workers}
    for r in range(rounds):
        for w in workers if r % 2 == 0 else workers[::-1]:
            results[w].append(worker_result(w, f"latency {threads} {scale}"))
    print(f"latency@{threads}, scale {scale}, {rounds} rounds: median [min-max] in ns")
    for w in workers:
        print(w)
        for h in HISTOGRAMS:
            cells = []
            for label, key in PERCENTILES:
                values = [res["latency"][h][key] for res in results[w] if h in res.get("latency", {})]
                if not values:
                    cells.append(f"{label} -")
                    continue
                cells.append(f"{label} {statistics.median(values):.0f} [{min(values)}-{max(values)}]")
            print(f"  {h:<12} " + " | ".join(cells))
        print("  calls above 200 / 300 / 500 / 1000 ns, median:")
        for h in HISTOGRAMS:
            cells = []
            for ns in ("200", "300", "500", "1000"):
                values = [res["latency"][h].get("slower_than", {}).get(ns) for res in results[w] if h in res.get("latency", {})]
                values = [v for v in values if v is not None]
                cells.append(f"{statistics.median(values):.0f}" if values else "-")
            print(f"    {h:<18} " + " / ".join(cells))
        rss = statistics.median(res["peak_rss_kib"] for res in results[w])
        print(f"  peak RSS {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
