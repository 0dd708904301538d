#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time (default 60 s each) with
# libFuzzer through cargo-fuzz, starting from the committed seed corpus, and prints
# libFuzzer's final figures for each. Not part of the test command: CI replays the
# corpora and regression inputs with the stable toolchain (tests/it/fuzz_replay.rs).
#
#   scripts/fuzz.sh [seconds-per-target] [target ...]
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`) and a nightly compiler: the
# `nightly` toolchain if rustup has one, otherwise the stable compiler with
# RUSTC_BOOTSTRAP=1 (which lets stable accept the nightly-only sanitizer flags).
# New inputs that increase coverage go to fuzz/target-corpus/<target>/ (not
# committed); a crashing input is saved under fuzz/artifacts/<target>/ and the run
# stops with a failure: fix the bug, add a unit test, and commit the input to
# fuzz/regressions/<target>/ so that CI replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(csr ocsp_request envelope jwt issuance_body ceremony_config)
fi

if ! command -v cargo-fuzz >/dev/null; then
    echo "error: cargo-fuzz is not installed (cargo install --locked cargo-fuzz)" >&2
    exit 1
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

# No sanitizer: the code under test is safe Rust (unsafe is denied in the workspace),
# so AddressSanitizer would add little but halve the speed and double the build.
# Debug assertions stay on (cargo fuzz's default), so overflows are found too.
build_flags=(--sanitizer none --release)
cargo "${toolchain[@]}" fuzz build "${build_flags[@]}"

for target in "${targets[@]}"; do
    echo "== $target (${seconds}s)"
    mkdir -p "target-corpus/$target" "artifacts/$target"
    cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" "$target" \
        "target-corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" 2>&1 |
        grep -E '^(Done|stat::|==|INFO: -max_total_time|.*(panicked|ERROR|SUMMARY|crash-|timeout-|oom-))' || true
    if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "error: $target found a failing input: $(ls "artifacts/$target")" >&2
        exit 1
    fi
done
