#!/usr/bin/env python3
"""Times worker binaries against each other, one run of each per round.

For A/B checks of an engine change between two builds of
`oxbench-worker-oxmalloc` (copy the first build aside before the second):
each round runs every worker once, so that the machine's drift hits all
of them alike, in the given order on even rounds and reversed on odd
ones (position matters: in batches whose rounds ran every row in turn,
malloc-large read 3-5x slower for whichever worker ran first in the
round, docs/PERFORMANCE.md E54). Prints, per workload, the median cost (time, or 1/throughput) of
each worker relative to the first one's median, with the min-max range,
and the median peak RSS.

Usage: interleave_workers.py WORKER[,WORKER...] "BENCH THREADS SCALE[;...]" ROUNDS
Example: interleave_workers.py /tmp/base-worker,target/oxbench-workers/release/oxbench-worker-oxmalloc "xmalloc 2 0.5;larson 2 0.5" 9
"""

import json
import statistics
import subprocess
import sys
from collections import defaultdict


def worker_result(worker, row):
    """Runs `WORKER run ROW` once; its result (the `OXBENCH-RESULT` JSON)."""
    out = subprocess.run([worker, "run", *row.split()], capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("OXBENCH-RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{worker} run {row} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(lines[0].split(" ", 1)[1])


def run_once(worker, row):
    result = worker_result(worker, row)
    cost = 1.0 / result["throughput"] if result.get("throughput") else result["elapsed_s"]
    return cost, result.get("peak_rss_kib", 0)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    workers = sys.argv[1].split(",")
    rows = [r.strip() for r in sys.argv[2].split(";") if r.strip()]
    rounds = int(sys.argv[3])
    for row in rows:
        costs = defaultdict(list)
        rss = defaultdict(list)
        for round_number in range(rounds):
            for w in workers if round_number % 2 == 0 else workers[::-1]:
                cost, peak = run_once(w, row)
                costs[w].append(cost)
                rss[w].append(peak)
        base = statistics.median(costs[workers[0]])
        cells = "  ".join(
            f"{w.split('/')[-1]} {statistics.median(costs[w]) / base:.3f}"
            f" [{min(costs[w]) / base:.2f}-{max(costs[w]) / base:.2f}]"
            f" {statistics.median(rss[w]) / 1024:.1f} MiB"
            for w in workers
        )
        print(f"{row:22s} {cells}", flush=True)


if __name__ == "__main__":
    main()
