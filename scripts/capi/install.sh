#!/usr/bin/env bash
# Installs liboxmalloc for C programs: the shared and static libraries, the
# header and a pkg-config file, under PREFIX (default /usr/local):
#   PREFIX/lib/liboxmalloc.so, PREFIX/lib/liboxmalloc.a,
#   PREFIX/include/oxmalloc.h, PREFIX/lib/pkgconfig/oxmalloc.pc
# Usage: scripts/capi/install.sh [PREFIX]   (builds the release library first)
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=${1:-/usr/local}
cargo build --release -p oxmalloc-capi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 755 target/release/liboxmalloc.so "$prefix/lib/liboxmalloc.so"
install -m 644 target/release/liboxmalloc.a "$prefix/lib/liboxmalloc.a"
install -m 644 crates/oxmalloc-capi/include/oxmalloc.h "$prefix/include/oxmalloc.h"
sed -e "s|@LIBDIR@|$prefix/lib|" -e "s|@INCLUDEDIR@|$prefix/include|" -e "s|@VERSION@|$version|" \
    crates/oxmalloc-capi/oxmalloc.pc.in > "$prefix/lib/pkgconfig/oxmalloc.pc"
echo "installed liboxmalloc $version under $prefix"
