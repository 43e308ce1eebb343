#!/usr/bin/env bash
# ThreadSanitizer over the engine's multi-threaded stress test (CHECKLIST C27):
#   RUSTFLAGS=-Zsanitizer=thread cargo +nightly test -Zbuild-std \
#       --target x86_64-unknown-linux-gnu -p oxmalloc --test stress
# The engine and std are rebuilt with TSan instrumentation (target/tsan), so
# every atomic and plain access of the allocator is checked for data races
# while threads allocate, free remotely and exit.
#
# Needs the nightly toolchain with rust-src, which it installs when missing
# (scripts/nightly-tools.sh); where that is impossible it prints SKIPPED and
# exits 0. OXTEST_SKIP_TSAN=1 skips it on purpose (also with a
# SKIPPED line). Extra test names can be given as arguments (default: stress).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${OXTEST_SKIP_TSAN:-0}" = 1 ]; then
    echo "SKIPPED: ThreadSanitizer run (OXTEST_SKIP_TSAN=1)"
    exit 0
fi
. scripts/nightly-tools.sh
has_rust_src() { [ -d "$(rustup run nightly rustc --print sysroot)/lib/rustlib/src/rust/library" ]; }
if ! why=$(ensure_nightly) || ! why=$(ensure_component rust-src has_rust_src); then
    echo "SKIPPED: ThreadSanitizer run: $why"
    exit 0
fi
if [ -n "$why" ]; then echo "$why"; fi

target=$(rustup run nightly rustc -vV | sed -n 's/^host: //p')
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(stress)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done

echo "ThreadSanitizer: ${tests[*]} ($target, target/tsan)"
# halt_on_error: the first race report fails the run; second_deadlock_stack
# makes lock-order reports readable.
# tsan.supp lists known engine issues (each explained there).
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/test-extra/tsan.supp ${TSAN_OPTIONS:-}"
# The workspace's dev profile aborts on panic; -Zbuild-std would then build
# core twice (abort for the library, unwind for the test harness).
CARGO_PROFILE_DEV_PANIC=unwind RUSTFLAGS="-Zsanitizer=thread ${RUSTFLAGS:-}" RUSTDOCFLAGS="-Zsanitizer=thread" \
    cargo +nightly test -Zbuild-std --target "$target" --target-dir target/tsan \
    -p oxmalloc "${args[@]}"
