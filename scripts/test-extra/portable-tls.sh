#!/usr/bin/env bash
# The engine on its portable thread slot: a pthread key holds the thread's
# heap and owner keys are heap addresses, as on every target but x86-64
# Linux (feature `portable-tls` selects that path here). Neither the main
# run nor Miri (which skips tests that run the engine) covers it otherwise;
# two bugs lived there unseen until this run existed (every heap keyed with
# the empty heap's address; the key destructor tearing down the dead heap:
# commit 1210e0a). Lints, then every engine test, in release mode.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR=target/portable-tls
echo "clippy, feature portable-tls"
cargo clippy -p oxmalloc --features portable-tls --all-targets -- -D warnings
echo "engine tests, feature portable-tls (release)"
cargo test --release -p oxmalloc --features portable-tls
