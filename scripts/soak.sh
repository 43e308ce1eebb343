#!/usr/bin/env bash
# Soak test (not part of CI): runs the multi-threaded stress workload
# (crates/oxmalloc-capi/tests/c/rel_stress.c: larson, xmalloc and mstress
# shapes with content checks) with liboxmalloc preloaded for a long time,
# samples its resident set size every second into a CSV, and plots it.
#
#   scripts/soak.sh [SECONDS] [THREADS]      defaults: 3600 s, 4 threads
#   SOAK_LIB=target/release/liboxmalloc-secure.so scripts/soak.sh 600
#
# Output in target/soak/: rss.csv (seconds,rss_kib), rss.png (matplotlib, or
# gnuplot), summary.txt. The run fails if the workload reports corruption or
# dies. A growing RSS over the hours with a steady live set is a leak.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
threads=${2:-4}
lib=${SOAK_LIB:-target/release/liboxmalloc.so}
out=target/soak
mkdir -p "$out"

[ -f "$lib" ] || cargo build --release -p oxmalloc-capi
[ -f "$lib" ] || { echo "soak: $lib is missing (scripts/build-secure.sh builds the hardened one)"; exit 1; }
lib=$(realpath "$lib")
cc -O2 -g -Wall -pthread -o "$out/rel_stress" crates/oxmalloc-capi/tests/c/rel_stress.c

echo "soak: $threads threads for $seconds s with $lib"
LD_PRELOAD="$lib" "$out/rel_stress" "$threads" "$((seconds * 1000))" > "$out/stress.out" 2> "$out/stress.err" &
pid=$!
echo "seconds,rss_kib" > "$out/rss.csv"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss" >> "$out/rss.csv"
    sleep 1
done
set +e
wait "$pid"
status=$?
set -e

# Summary: first and last tenth of the run, and the maximum.
awk -F, 'NR > 1 { t[NR] = $1; r[NR] = $2; n = NR }
    END {
        if (n < 3) { print "too few samples"; exit }
        k = int((n - 1) / 10); if (k < 1) k = 1
        for (i = 2; i < 2 + k; i++) a += r[i]
        for (i = n - k + 1; i <= n; i++) b += r[i]
        for (i = 2; i <= n; i++) if (r[i] > m) m = r[i]
        printf "samples %d\nrss first tenth avg %.1f MiB\nrss last tenth avg %.1f MiB\nrss max %.1f MiB\n", n - 1, a / k / 1024, b / k / 1024, m / 1024
    }' "$out/rss.csv" | tee "$out/summary.txt"
cat "$out/stress.out" | tee -a "$out/summary.txt"

if python3 -c 'import matplotlib' 2>/dev/null; then
    python3 - "$out" <<'PY'
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/rss.csv")))
t = [int(r["seconds"]) for r in rows]
rss = [int(r["rss_kib"]) / 1024 for r in rows]
plt.figure(figsize=(10, 4))
plt.plot(t, rss)
plt.xlabel("seconds")
plt.ylabel("RSS (MiB)")
plt.title("oxmalloc soak: resident set size")
plt.grid(True)
plt.tight_layout()
plt.savefig(f"{out}/rss.png")
PY
    echo "soak: plot in $out/rss.png"
elif command -v gnuplot >/dev/null; then
    gnuplot <<GP
set terminal png size 1000,400
set output "$out/rss.png"
set datafile separator ","
set xlabel "seconds"
set ylabel "RSS (MiB)"
plot "$out/rss.csv" using 1:(\$2/1024) skip 1 with lines title "RSS"
GP
    echo "soak: plot in $out/rss.png"
else
    echo "soak: no matplotlib or gnuplot: text summary only ($out/summary.txt)"
fi

if [ "$status" -ne 0 ] || ! grep -q "stress ok" "$out/stress.out"; then
    echo "soak: FAILED (status $status)"
    cat "$out/stress.err" | tail -20
    exit 1
fi
echo "soak: ok"
