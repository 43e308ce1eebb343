#!/usr/bin/env bash
# The engine's optional builds that the main test run does not cover:
#   * feature `page-map` (the two-level page map kept for measurement,
#     docs/PERFORMANCE.md E5), on stable: unit tests, the GlobalAlloc
#     contract and bad pointers;
#   * feature `nightly` (`core::alloc::Allocator` for `&Heap`), on the
#     nightly toolchain: tests/nightly_allocator.rs.
# Installs the nightly toolchain when it is missing (scripts/nightly-tools.sh);
# prints SKIPPED for the nightly part when that is impossible.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "feature page-map (stable)"
CARGO_TARGET_DIR=target/page-map cargo test -p oxmalloc --features page-map \
    --lib --test global_alloc --test bad_pointers --test stress

. scripts/nightly-tools.sh
if ! why=$(ensure_nightly); then
    echo "SKIPPED: feature nightly: $why"
    exit 0
fi
if [ -n "$why" ]; then echo "$why"; fi
echo "feature nightly (core::alloc::Allocator)"
CARGO_TARGET_DIR=target/nightly cargo +nightly test -p oxmalloc --features nightly --test nightly_allocator
