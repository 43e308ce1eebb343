#!/usr/bin/env bash
# Builds the hardened C library: target/release/liboxmalloc-secure.so (and .a).
#
# Cargo unifies a dependency's features across one build, so the hardened
# engine cannot be built by the same `cargo build` as the default one; it is
# built into its own target directory and copied next to liboxmalloc.so.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p oxmalloc-capi --features secure --target-dir target/secure "$@"
mkdir -p target/release
cp target/secure/release/liboxmalloc.so target/release/liboxmalloc-secure.so
cp target/secure/release/liboxmalloc.a target/release/liboxmalloc-secure.a
echo "built target/release/liboxmalloc-secure.so"
