#!/usr/bin/env bash
# Miri over the engine's unit tests, with strict provenance:
#   MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-disable-isolation" \
#       cargo +nightly miri test -p oxmalloc --lib
# Miri checks every pointer operation of the engine (provenance, alignment,
# out-of-bounds, use after free, data races between threads it schedules).
#
# The unit tests cover the engine's pure logic (size classes, page lists and
# block indexing, queues, span bitmaps, option parsing, locks); under Miri
# they run on Miri's allocator (the OS layer, TLS assembly and mmap are
# beyond what Miri emulates) and sample the exhaustive loops.
#
# Installs Miri when it is missing (scripts/nightly-tools.sh); skips with a
# SKIPPED line (exit 0) when that is impossible. Undefined behaviour, a
# failed test or any other error fails the run. OXTEST_SKIP_MIRI=1 skips
# on purpose.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${OXTEST_SKIP_MIRI:-0}" = 1 ]; then
    echo "SKIPPED: Miri (OXTEST_SKIP_MIRI=1)"
    exit 0
fi
. scripts/nightly-tools.sh
if ! why=$(ensure_nightly) || ! why=$(ensure_component miri cargo +nightly miri --version); then
    echo "SKIPPED: Miri: $why"
    exit 0
fi
if [ -n "$why" ]; then echo "$why"; fi

export MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-disable-isolation ${MIRIFLAGS:-}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo +nightly miri test -p oxmalloc --lib "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 0 ]; then
    echo "Miri: engine unit tests passed"
    exit 0
fi
if grep -q "Undefined Behavior" "$log"; then
    echo "FAILED: Miri found undefined behaviour (see above)"
    exit 1
fi
echo "FAILED: Miri run failed (status $status)"
exit 1
