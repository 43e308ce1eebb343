# Sourced by scripts/test-extra/{miri,tsan,fuzz}.sh: installs the nightly
# pieces they need (the nightly toolchain, a rustup component, cargo-fuzz)
# when they are missing and installing is possible. Each function returns
# non-zero after printing why it could not, so the caller can print its
# SKIPPED line. OXTEST_NO_INSTALL=1 installs nothing (only checks).

# ensure_nightly: the nightly toolchain is there (installs a minimal one).
ensure_nightly() {
    rustup run nightly rustc --version >/dev/null 2>&1 && return 0
    if [ "${OXTEST_NO_INSTALL:-0}" = 1 ] || ! command -v rustup >/dev/null; then
        echo "no nightly toolchain (rustup toolchain install nightly)"
        return 1
    fi
    echo "installing the nightly toolchain (rustup toolchain install nightly --profile minimal)"
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || {
        echo "no nightly toolchain: rustup toolchain install nightly failed"
        return 1
    }
}

# ensure_component NAME CHECK-COMMAND...: the nightly component NAME is
# installed, checked by running CHECK-COMMAND.
ensure_component() {
    local name=$1
    shift
    "$@" >/dev/null 2>&1 && return 0
    if [ "${OXTEST_NO_INSTALL:-0}" = 1 ]; then
        echo "nightly has no $name (rustup component add $name --toolchain nightly)"
        return 1
    fi
    echo "installing $name (rustup component add $name --toolchain nightly)"
    rustup component add "$name" --toolchain nightly >/dev/null 2>&1 && "$@" >/dev/null 2>&1 || {
        echo "nightly has no $name: rustup component add $name --toolchain nightly failed"
        return 1
    }
}

# ensure_cargo_fuzz: `cargo +nightly fuzz` works (cargo install cargo-fuzz).
ensure_cargo_fuzz() {
    cargo +nightly fuzz --help >/dev/null 2>&1 && return 0
    if [ "${OXTEST_NO_INSTALL:-0}" = 1 ]; then
        echo "cargo-fuzz is not installed (cargo install cargo-fuzz)"
        return 1
    fi
    echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked >/dev/null 2>&1 && cargo +nightly fuzz --help >/dev/null 2>&1 || {
        echo "cargo-fuzz is not installed: cargo install cargo-fuzz failed"
        return 1
    }
}
