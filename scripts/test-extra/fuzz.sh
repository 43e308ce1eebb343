#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 10) seconds:
# random sequences of malloc/calloc/realloc/aligned/free/cross-thread free
# (raw_ops) and of GlobalAlloc calls with arbitrary layouts (global_alloc_ops),
# checked against a model. FUZZ_FEATURES=secure fuzzes the hardened engine.
#
# Needs cargo-fuzz and the nightly toolchain, which it installs when missing
# (scripts/nightly-tools.sh); where that is impossible it prints SKIPPED and
# exits 0 (so does OXTEST_SKIP_FUZZ=1). A crash fails the run and
# leaves the reproducer in fuzz/artifacts/<target>/ (replay it with
# `cd fuzz && cargo +nightly fuzz run <target> <file>`).
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds=${FUZZ_SECONDS:-10}

if [ "${OXTEST_SKIP_FUZZ:-0}" = 1 ]; then
    echo "SKIPPED: fuzzing (OXTEST_SKIP_FUZZ=1)"
    exit 0
fi
. ../scripts/nightly-tools.sh
if ! why=$(ensure_nightly) || ! why=$(ensure_cargo_fuzz); then
    echo "SKIPPED: fuzzing: $why"
    exit 0
fi
if [ -n "$why" ]; then echo "$why"; fi

features=()
[ -n "${FUZZ_FEATURES:-}" ] && features=(--features "$FUZZ_FEATURES")
for target in raw_ops global_alloc_ops; do
    echo "fuzz: $target for ${seconds}s ${FUZZ_FEATURES:+(features $FUZZ_FEATURES)}"
    # No sanitizer: oxmalloc maps its own memory, which ASan would not see
    # anyway; the model's checks are the oracle. Debug assertions stay on.
    cargo +nightly fuzz run --sanitizer none --debug-assertions "${features[@]}" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=8192 -max_len=4096 -print_final_stats=1
done
echo "fuzz: no crash"
