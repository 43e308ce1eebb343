#!/usr/bin/env bash
# The hardened build and its tests (CHECKLIST B, and C27 in hardened mode):
#   1. builds target/release/liboxmalloc-secure.so (scripts/build-secure.sh);
#   2. the Rust death tests of the hardened engine (crates/oxmalloc/tests/hardened.rs)
#      and the engine's workload tests (GlobalAlloc contract, mstress shape,
#      10,000-thread churn) with the hardened engine as the global allocator;
#   3. the C-library death tests (crates/oxmalloc-capi/tests/hardened.rs), which
#      preload liboxmalloc-secure.so (`cargo test --workspace` runs them too, and
#      tests/reliability.rs, which runs every C/D/E program with both libraries).
# Run from anywhere; scripts/test.sh runs it (it loops over scripts/test-extra/*.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
step() { printf '\n--- hardened: %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "build liboxmalloc-secure.so"
scripts/build-secure.sh

step "Rust: hardened death tests and workloads (release, --features secure)"
cargo test --release -p oxmalloc --features secure \
    --test hardened --test global_alloc --test stress --test thread_churn

step "C library: hardened death tests"
[ -f target/release/liboxmalloc.so ] || cargo build --release -p oxmalloc-capi
cargo test -p oxmalloc-capi --test hardened

step "done"
