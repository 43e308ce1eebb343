#!/usr/bin/env python3
"""Where one allocator stands against the best of the others, row by row.

Reads the report.json of an `oxbench run` (synthetic workloads) and prints:
- each allocator's cost geometric mean against the run's baseline (the same
  figure as the report's summary: medians of time, or of 1/throughput, over
  the repetitions; latency rows left out, as the report leaves them out);
- what the geometric mean would be with the best allocator on each row, and
  with the best of the others, and what the subject would reach by
  matching the best other allocator wherever it is behind;
- per row, the subject against the best other allocator, with the ratio of
  each repetition pair (repetitions are interleaved, so pair i ran close in
  time) and how many pairs the subject won: a median gap that half the
  pairs contradict is noise, one that every pair shows is not;
- rows that run the same code for some allocators (larson and larson-sized
  through `#[global_allocator]`, where `dealloc` always gets the size), as
  a reading of the noise on the rows' medians.

Usage: row_gaps.py REPORT.json [--subject oxmalloc]
"""

import argparse
import json
import math
import statistics
from collections import defaultdict

# Rows whose cost is not a time (the report's summary leaves them out).
NOT_TIME = {"latency"}
# Pairs of workloads that run the same code through `#[global_allocator]`.
TWINS = [("larson", "larson-sized")]


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def load(path):
    with open(path) as f:
        report = json.load(f)
    baseline = report["meta"]["baseline"]
    allocs = [a["name"] for a in report["allocators"]]
    routes = {a["name"]: a["route"] for a in report["allocators"]}
    costs = defaultdict(lambda: defaultdict(dict))  # (bench, threads) -> alloc -> rep -> cost
    for s in report["samples"]:
        o = s.get("outcome")
        if not s["ok"] or not o or o["bench"] in NOT_TIME:
            continue
        cost = 1.0 / o["throughput"] if o.get("throughput") else o["elapsed_s"]
        costs[(o["bench"], o["threads"])][s["alloc"]][s["rep"]] = cost
    return baseline, allocs, routes, costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--subject", default=None, help="allocator to compare (default: the first)")
    args = ap.parse_args()
    baseline, allocs, routes, costs = load(args.report)
    subject = args.subject or allocs[0]
    if subject not in allocs:
        raise SystemExit(f"row_gaps: no allocator named {subject!r} in {args.report}")
    others = [a for a in allocs if a != subject]

    rel = {}
    for row, by_alloc in costs.items():
        if any(not by_alloc.get(a) for a in allocs):
            print(f"skipped {row[0]}@{row[1]}: an allocator has no successful run")
            continue
        base = statistics.median(by_alloc[baseline].values())
        rel[row] = {a: statistics.median(by_alloc[a].values()) / base for a in allocs}
    rows = sorted(rel)
    if not rows:
        raise SystemExit("row_gaps: no row where every allocator ran")

    print(f"{len(rows)} rows, cost against {baseline} (geometric means)")
    for a in allocs:
        print(f"  {a:16s} {geomean([rel[r][a] for r in rows]):.3f}")
    best_all = geomean([min(rel[r].values()) for r in rows])
    best_other = geomean([min(rel[r][a] for a in others) for r in rows])
    matched = geomean([min(rel[r][subject], min(rel[r][a] for a in others)) for r in rows])
    print(f"  best allocator on each row            {best_all:.3f}")
    print(f"  best of the others on each row        {best_other:.3f}")
    print(f"  {subject} matching the best other where behind  {matched:.3f}")

    print(f"\nper row: {subject} against the best other allocator (ratio > 1: {subject} slower)")
    for r in rows:
        best = min(others, key=lambda a: rel[r][a])
        reps = costs[r]
        pairs = [reps[subject][i] / reps[best][i] for i in sorted(reps[subject]) if i in reps[best]]
        won = sum(1 for x in pairs if x < 1)
        print(
            f"  {r[0]:15s}@{r[1]:<2} {rel[r][subject]:5.2f}  {best:12s} {rel[r][best]:5.2f}"
            f"  ratio {rel[r][subject] / rel[r][best]:4.2f}"
            f"  pairs {' '.join(f'{x:.2f}' for x in pairs)}  {subject} faster in {won}/{len(pairs)}"
        )

    for a, b in TWINS:
        twins = [a_ for a_ in allocs if routes.get(a_) == "global_allocator"]
        threads = sorted({t for (w, t) in rows if w == a} & {t for (w, t) in rows if w == b})
        if not twins or not threads:
            continue
        print(f"\nsame code under #[global_allocator]: {a} against {b}")
        for t in threads:
            cells = "  ".join(f"{x} {rel[(a, t)][x]:.2f}/{rel[(b, t)][x]:.2f}" for x in twins)
            print(f"  @{t}: {cells}")


if __name__ == "__main__":
    main()
