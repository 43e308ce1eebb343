#!/bin/sh
# Sampling overhead of oxmalloc's heap profiler (see README, "Heap
# profiles"): oxbench workloads at 2 threads for oxmalloc without
# profiling, with OXMALLOC_PROF (default 512K sampling) and with
# OXMALLOC_PROF_SAMPLE=4M; REPS repetitions, the three configurations
# alternating within each repetition; then one merged report with the
# configurations as three allocators (oxmalloc = baseline). All three run
# the same worker binary, the one `cargo build` puts in target/release.
#
#   cargo build --release -p oxbench --bins
#   crates/oxbench/scripts/prof_overhead.sh [OUT] [REPS]
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${1:-/tmp/oxbench-prof-overhead}
REPS=${2:-5}
BIN=$ROOT/target/release/oxbench
B=larson,xmalloc,mstress,glibc-thread,alloc-test
rm -rf "$OUT"
mkdir -p "$OUT/prof"
run() { # name, extra args...
    name=$1
    shift
    "$BIN" run --no-build --worker-dir "$ROOT/target/release" --quiet --alloc oxmalloc --bench $B --threads 2 --reps 1 --scale 1 \
        --timeout 30 --baseline oxmalloc --out "$OUT/$name" "$@" >"$OUT/$name.txt" 2>&1
    echo "$name: exit status $?"
}
rep=1
while [ "$rep" -le "$REPS" ]; do
    run "off-$rep"
    run "on-$rep" --env "OXMALLOC_PROF=$OUT/prof/w.%p.heap"
    run "on4m-$rep" --env "OXMALLOC_PROF=$OUT/prof/w4m.%p.heap" --env OXMALLOC_PROF_SAMPLE=4M
    rep=$((rep + 1))
done
python3 - "$OUT" "$REPS" <<'PY'
import json, sys
out, reps = sys.argv[1], int(sys.argv[2])
configs = {"off": "oxmalloc", "on": "oxmalloc-prof", "on4m": "oxmalloc-prof4M"}
merged, samples = None, []
for rep in range(1, reps + 1):
    for c, name in configs.items():
        r = json.load(open(f"{out}/{c}-{rep}/report.json"))
        merged = merged or r
        for s in r["samples"]:
            s["alloc"], s["rep"] = name, rep - 1
            samples.append(s)
info = merged["allocators"][0]
merged["allocators"] = [dict(info, name=n) for n in configs.values()]
merged["samples"] = samples
merged["meta"]["reps"] = reps
merged["meta"]["env"] = []
merged["meta"]["command"] = "crates/oxbench/scripts/prof_overhead.sh"
merged["meta"]["notes"] = ["oxmalloc-prof: OXMALLOC_PROF set (512K sampling); oxmalloc-prof4M: OXMALLOC_PROF_SAMPLE=4M"]
json.dump(merged, open(f"{out}/merged.json", "w"))
PY
"$BIN" report "$OUT/merged.json" --baseline oxmalloc --out "$OUT/merged"
