#!/usr/bin/env bash
# The test command of README.md (and of CI, through .ci/run).
# Runs on a fresh clone: installs packages, checks formatting and lints,
# builds the release libraries (the C-ABI tests preload them), runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

# A fresh clone compiles everything once: incremental caches would only take
# disk (about 1.5 GiB for the debug tests), and a CI run has failed on a full
# disk before. Print the free space so that such a failure reads as one.
export CARGO_INCREMENTAL=0
df -h . | tail -n 1 | awk '{ print "disk: " $4 " free of " $2 }'

step "setup"
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The mimalloc-v2 worker (its own workspace) builds oxbench's library without
# the `cli` and `allocators` features; a workload or worker item that reaches
# into them breaks only that worker, whose rows `oxbench run` then skips.
step "oxbench library without default features (the mimalloc-v2 worker's build)"
cargo check -p oxbench --no-default-features --lib

step "release build (liboxmalloc.so, liboxmalloc.a, oxbench)"
cargo build --release --workspace

step "general-dynamic TLS library (target/tls-gd: tests/dlopen.rs loads it late)"
cargo build --release -p oxmalloc-capi --features tls-general-dynamic --target-dir target/tls-gd

step "hardened library (liboxmalloc-secure.so: the C-ABI hardened tests preload it)"
scripts/build-secure.sh

step "tests (debug build: overflow checks on)"
OXTEST_REQUIRE_TLS_GD=1 cargo test --workspace

step "engine stress tests again in release mode"
cargo test --release -p oxmalloc --test stress --test thread_churn --test purge_collect --test purge_idle

for extra in scripts/test-extra/*.sh; do
    [ -x "$extra" ] || continue
    step "$extra"
    "$extra"
done

step "all tests passed"
