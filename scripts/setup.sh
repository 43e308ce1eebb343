#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian machine.
# Idempotent; skips apt when everything is present. Prints what it skips.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential g++ pkg-config valgrind python3 git perl sqlite3 lua5.4 redis-server redis-tools
          libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4)
for extra in crates/oxmalloc-capi/tests/PACKAGES crates/oxbench/PACKAGES; do
    if [ -f "$extra" ]; then
        while read -r p; do [ -n "$p" ] && [ "${p#\#}" = "$p" ] && packages+=("$p"); done < "$extra"
    fi
done

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all Debian packages present"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts redis as a service on install; the tests start their own.
    (command -v service >/dev/null && service redis-server stop >/dev/null 2>&1) || true
else
    echo "setup: SKIPPED installing ${missing[*]} (not root or no apt-get); tests that need them will say so"
fi
