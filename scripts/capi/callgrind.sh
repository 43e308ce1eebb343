#!/usr/bin/env bash
# Instructions per malloc(32)/free pair through the C ABI, measured with
# callgrind (deterministic: instruction counts, not time), for oxmalloc
# (initial-exec and general-dynamic TLS builds), Debian's mimalloc and
# jemalloc, and glibc. Each figure is (Ir(N pairs) - Ir(0 pairs)) / N, so
# start-up, exit and the loader cancel out; the loop itself (about 5
# instructions) is included for every allocator alike.
#
# Two shapes: "alone" (the only block of its size: each free empties its
# page) and "neighbours" (8 blocks of the same size stay live, so the page
# never empties: the steady state of real programs).
#
# Usage: scripts/capi/callgrind.sh [pairs] [size]
# Needs: valgrind, cc, libmimalloc2.0, libjemalloc2 (missing ones are skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
pairs=${1:-1000000}
size=${2:-32}
out=${OUT_DIR:-$root/target/capi-bench}
mkdir -p "$out"

cargo build --release -p oxmalloc-capi >&2
CARGO_TARGET_DIR=$root/target/tls-gd cargo build --release -p oxmalloc-capi --features tls-general-dynamic >&2

cc -O2 -fno-builtin -o "$out/pair" scripts/capi/pair.c

ir() { # preload pairs keep -> instructions collected
    local preload=$1 n=$2 keep=$3
    env ${preload:+LD_PRELOAD=$preload} valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$out/pair" "$n" "$size" "$keep" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-28s %18s %18s\n' "malloc($size)+free" "Ir/pair (alone)" "Ir/pair (neighbours)"
for entry in \
    "oxmalloc (initial-exec)=$root/target/release/liboxmalloc.so" \
    "oxmalloc (general-dynamic)=$root/target/tls-gd/release/liboxmalloc.so" \
    "mimalloc 2.0 (Debian)=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2" \
    "jemalloc 5.3 (Debian)=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" \
    "glibc=" ; do
    name=${entry%%=*}
    lib=${entry#*=}
    if [ -n "$lib" ] && [ ! -e "$lib" ]; then
        printf '%-28s %18s\n' "$name" "not installed"
        continue
    fi
    a0=$(ir "$lib" 0 0)
    a1=$(ir "$lib" "$pairs" 0)
    k0=$(ir "$lib" 0 8)
    k1=$(ir "$lib" "$pairs" 8)
    awk -v n="$name" -v a0="$a0" -v a1="$a1" -v k0="$k0" -v k1="$k1" -v p="$pairs" \
        'BEGIN { printf "%-28s %18.2f %18.2f\n", n, (a1 - a0) / p, (k1 - k0) / p }'
done
