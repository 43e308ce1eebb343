#!/usr/bin/env bash
# Model-checks the thread_free protocol and abandonment/reclaim with loom
# (crates/oxmalloc/tests/loom_thread_free.rs). Runs on stable.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${OXTEST_SKIP_LOOM:-0}" = 1 ]; then
    echo "SKIPPED: loom model checks (OXTEST_SKIP_LOOM=1)"
    exit 0
fi
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p oxmalloc --test loom_thread_free \
    --target-dir target/loom
