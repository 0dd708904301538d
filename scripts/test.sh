#!/usr/bin/env bash
# Carimbo's test command (the README's): installs what the tests need on a Debian
# machine, sets up throwaway backends, and runs formatting, lints and every test with
# absent backends turned into failures (CARIMBO_REQUIRE_BACKENDS=1).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v softhsm2-util >/dev/null || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null || missing+=(opensc)
# PostgreSQL server programs: the store's tests start a throwaway server (as the
# `postgres` user when run as root). Debian keeps initdb off PATH.
have_initdb() {
    { command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; } ||
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
        command -v initdb >/dev/null
}
have_initdb || missing+=(postgresql)
# The ACME test runs the real certbot against `carimbo dev`.
command -v certbot >/dev/null || missing+=(certbot)
# Headless Chromium renders the admin dashboard in its test.
command -v chromium >/dev/null || missing+=(chromium)
# libfaketime shifts a service's clock for the clock-fault test.
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null ||
    compgen -G '/usr/lib/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
        echo "installing with sudo: ${missing[*]}"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: the tests need these packages: ${missing[*]}" >&2
        echo "install them (Debian: apt-get install ${missing[*]}) and run again" >&2
        exit 1
    fi
fi

# A Python with the `cryptography` package runs the independent decoder of the envelope
# format: the one on PATH if it has it (or can pip-install it), else Debian's.
python=python3
if ! { command -v python3 >/dev/null && python3 -c 'import cryptography' 2>/dev/null; }; then
    if command -v python3 >/dev/null && python3 -m pip install --quiet cryptography 2>/dev/null; then
        :
    elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing: python3-cryptography"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null; }
        python=/usr/bin/python3
    else
        echo "error: the tests need python3 with the cryptography package (pip install cryptography, or apt-get install python3-cryptography)" >&2
        exit 1
    fi
fi
export CARIMBO_PYTHON=$python
# pkilint (RFC 5280 / RFC 6960 linters) checks the certificates and CRLs we produce.
if ! "$python" -c 'import pkilint' 2>/dev/null; then
    echo "installing the Python pkilint package"
    "$python" -m pip install --quiet pkilint 2>/dev/null ||
        "$python" -m pip install --quiet --break-system-packages pkilint || {
        echo "error: the tests need pkilint (pip install pkilint)" >&2
        exit 1
    }
fi

# moto's server emulates AWS KMS for the AWS provider's tests. Only what its KMS
# emulation needs: moto, flask and flask-cors (the `moto[server]` extra would add
# docker, cfn-lint and more). Into the Python above if pip can, else into a virtual
# environment under the target directory.
moto_packages=(moto flask flask-cors)
has_moto() { "$1" -c 'import moto.server, flask, flask_cors' 2>/dev/null; }
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
venv="$(cd "$target_dir" && pwd)/moto-venv"
if has_moto "$python"; then
    moto_python=$python
elif has_moto "$venv/bin/python"; then
    moto_python=$venv/bin/python
else
    echo "installing the Python packages ${moto_packages[*]} (AWS KMS emulator)"
    if "$python" -m pip install --quiet "${moto_packages[@]}" 2>/dev/null ||
        "$python" -m pip install --quiet --break-system-packages "${moto_packages[@]}" 2>/dev/null; then
        moto_python=$python
    else
        if ! "$python" -m venv "$venv" 2>/dev/null; then
            rm -rf "$venv"
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                echo "installing: python3-venv"
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            fi
            "$python" -m venv "$venv" || {
                echo "error: cannot install the AWS KMS emulator: neither pip nor venv work for $python" >&2
                echo "install it yourself (pip install ${moto_packages[*]}, or apt-get install python3-venv) and run again" >&2
                exit 1
            }
        fi
        "$venv/bin/python" -m pip install --quiet "${moto_packages[@]}"
        moto_python=$venv/bin/python
    fi
fi
has_moto "$moto_python" || {
    echo "error: $moto_python still cannot import moto's server (pip install ${moto_packages[*]})" >&2
    exit 1
}
export CARIMBO_MOTO_PYTHON=$moto_python

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Temporary files of the tests (some fixtures live for the whole test process and are
# never dropped) go under the work directory, removed at exit. Open like /tmp: the
# PostgreSQL test server runs as the `postgres` user when the tests run as root.
chmod 0755 "$work"
mkdir -m 1777 "$work/tmp"
export TMPDIR="$work/tmp"
# A one-off build (CI, a fresh clone) gains nothing from incremental caches, which
# take gigabytes of disk.
if [ -n "${CI:-}" ]; then
    export CARGO_INCREMENTAL=0
fi
# Say so early when the disk is nearly full: a cold build and test run needs a few GB.
avail_kb=$(df -Pk "$target_dir" | awk 'NR==2 {print $4}')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((4 * 1024 * 1024)) ]; then
    echo "warning: only $((avail_kb / 1024)) MiB free under $target_dir; a cold build needs about 4 GiB" >&2
fi

# A throwaway SoftHSM2 token directory; each test process creates its own tokens in it.
mkdir "$work/tokens"
cat >"$work/softhsm2.conf" <<CONF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$work/softhsm2.conf"
export CARIMBO_REQUIRE_BACKENDS=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Supply chain: licenses, bans and sources of the whole dependency tree (deny.toml).
# The advisory check needs the RustSec database from the network; docs/security.md
# says how to run it where it can be fetched. A pinned cargo-deny, installed once
# (a cold build of it takes about 8 minutes on two cores).
cargo_deny_version=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $cargo_deny_version"; then
    echo "installing cargo-deny $cargo_deny_version"
    cargo install --locked --quiet cargo-deny --version "$cargo_deny_version"
fi
cargo deny --locked check bans licenses sources
cargo test --workspace --locked
