#!/usr/bin/env bash
# The engine on its portable thread slot: a pthread key holds the thread's
# heap and owner keys are heap addresses, as on every target but x86-64
# Linux (feature `portable-tls` selects that path here). Neither the main
# run nor Miri (which skips tests that run the engine) covers it otherwise;
# two bugs lived there unseen until this run existed (every heap keyed with
# the empty heap's address; the key destructor tearing down the dead heap:
# commit 1210e0a). Lints, every engine test in release mode, then the
# C-ABI suite against a liboxmalloc.so/.a built with the feature (where
# the key's destructor runs among the program's own thread-exit code).
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR=target/portable-tls
echo "clippy, feature portable-tls"
cargo clippy -p oxmalloc --features portable-tls --all-targets -- -D warnings
echo "engine tests, feature portable-tls (release)"
cargo test --release -p oxmalloc --features portable-tls

echo "C library, feature portable-tls"
cargo build --release -p oxmalloc-capi --features portable-tls
lib_dir="$PWD/target/portable-tls/release"
banner=$(OXMALLOC_VERBOSE=1 LD_PRELOAD="$lib_dir/liboxmalloc.so" /bin/true 2>&1 | head -1)
case "$banner" in
    *"(tls pthread-key"*) echo "  $banner" ;;
    *) echo "portable-tls: $lib_dir/liboxmalloc.so is not on the pthread-key path: '$banner'" >&2; exit 1 ;;
esac
echo "C-ABI tests against it (OXTEST_LIB_DIR=$lib_dir)"
# The default target directory: the tests find the hardened and
# general-dynamic libraries there, and their own build is shared with the
# main run.
OXTEST_LIB_DIR="$lib_dir" OXTEST_LIB_TLS_MODEL=pthread-key CARGO_TARGET_DIR=target \
    cargo test -p oxmalloc-capi --no-fail-fast
