#!/usr/bin/env bash
# Carimbo's benchmarks: builds release binaries, sets up a throwaway SoftHSM2 token,
# runs carimbo-bench (signing and envelope figures beside their baselines) and the
# 1 GiB file round trips through `carimbo kms` with both providers, and writes
# docs/benchmarks.md. Not part of CI (it takes minutes and needs ~3 GiB of disk).
#
#   scripts/bench.sh [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=3
if [ "${1:-}" = "--seconds" ]; then seconds=$2; fi

for tool in openssl softhsm2-util /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install openssl softhsm2 time)" >&2; exit 1; }
done

cargo build --release --locked -p carimbo-cli -p carimbo-bench -p ca-ceremony
bin=target/release

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
pin=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
softhsm2-util --init-token --free --label bench --so-pin "$pin" --pin "$pin" >/dev/null
(umask 077; printf '%s' "$pin" >"$work/pin")
module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
cat >"$work/pkcs11.toml" <<CONF
version = 1
module = "$module"
token-label = "bench"
pin-file = "$work/pin"
CONF

tables=$("$bin/carimbo-bench" --seconds "$seconds" --pkcs11-config "$work/pkcs11.toml")

# 1 GiB file round trips through the CLI: wall time and peak RSS of each process.
head -c 1073741824 /dev/urandom >"$work/plain"
roundtrip() { # provider-label extra-flags...
    local label=$1; shift
    local ring="$work/ring-$label"
    "$bin/carimbo" kms create-key --keyring "$ring" --name envelope-data/bench/gib --purpose envelope "$@" >/dev/null
    local row="| $label"
    for step in encrypt decrypt; do
        local in=$work/plain out=$work/sealed
        [ "$step" = decrypt ] && in=$work/sealed out=$work/opened
        local key=(); [ "$step" = encrypt ] && key=(--key envelope-data/bench/gib)
        local stats
        stats=$( { /usr/bin/time -f '%e %M' "$bin/carimbo" kms "$step" --keyring "$ring" "${key[@]}" \
            --context bench=gib --in "$in" --out "$out" 2>&1 >/dev/null; } | tail -1)
        local secs=${stats% *} kib=${stats#* }
        row+=" | $(awk -v s="$secs" 'BEGIN { printf "%.2f s, %.0f MB/s", s, 1073.741824 / s }') | $(awk -v k="$kib" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
    done
    cmp -s "$work/plain" "$work/opened" || { echo "error: $label round trip mismatch" >&2; exit 1; }
    rm -f "$work/sealed" "$work/opened"
    echo "$row |"
}
file_row=$(roundtrip "file provider")
pkcs11_row=$(roundtrip "PKCS#11 provider (SoftHSM2)" --pkcs11-config "$work/pkcs11.toml")
start=$(date +%s.%N)
cat "$work/plain" >/dev/null
read_rate=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", 1073.741824 / (b - a) }')
start=$(date +%s.%N)
dd if="$work/plain" of="$work/copy" bs=1M conv=fsync status=none
copy_rate=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", 1073.741824 / (b - a) }')
rm -f "$work/copy"

# Issuances per second over HTTPS: `carimbo dev` (file provider), then `carimbo serve`
# with the intermediate's key in SoftHSM2 (made by the real ceremony).
wait_for() { # file pattern
    for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "error: timed out waiting for $2 in $1" >&2; cat "$1" >&2; exit 1
}
load_rows() { # label ca bundle admin provisioner san
    local label=$1 ca=$2 bundle=$3 admin=$4 provisioner=$5 san=$6
    for concurrency in 1 4 16 32; do
        "$bin/carimbo-bench" issue-load --ca "$ca" --ca-bundle "$bundle" --admin-token-file "$admin" \
            --provisioner "$provisioner" --san "$san" --concurrency "$concurrency" --seconds "$seconds" |
            python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %d | %.0f | %.1f | %.1f | %d |" % (sys.argv[1], r["concurrency"], r["rate"], r["p50_ms"], r["p99_ms"], r["errors"]))' "$label"
    done
}
"$bin/carimbo" dev --data-dir "$work/dev" --listen 127.0.0.1:18443 --publication-listen 127.0.0.1:18080 >"$work/dev.out" 2>&1 &
dev_pid=$!
wait_for "$work/dev.out" "Try:"
issue_file=$(load_rows "file provider (carimbo dev)" https://127.0.0.1:18443 "$work/dev/ca-bundle.pem" "$work/dev/admin.token" dev dns:load.localhost)
kill "$dev_pid"; wait "$dev_pid" 2>/dev/null || true

for label in bench-root bench-ca; do
    softhsm2-util --init-token --free --label "$label" --so-pin "$pin" --pin "$pin" >/dev/null
done
mkdir "$work/cer"
cp config/ceremony/root.toml config/ceremony/int-server-key.toml config/ceremony/int-server.toml "$work/cer/"
cat >"$work/cer/credentials.toml" <<CONF
version = 1
[tokens.root]
module = "$module"
token-label = "bench-root"
pin-file = "$work/pin"
[tokens.ca]
module = "$module"
token-label = "bench-ca"
pin-file = "$work/pin"
CONF
for step in "root root.toml" "key int-server-key.toml" "intermediate int-server.toml"; do
    set -- $step
    "$bin/ca-ceremony" "$1" --config "$work/cer/$2" --credentials "$work/cer/credentials.toml" >/dev/null
done
cat >"$work/cer/pkcs11-ca.toml" <<CONF
version = 1
module = "$module"
token-label = "bench-ca"
pin-file = "$work/pin"
sessions = 8
CONF
(umask 077; printf 'cat_%s' "$pin" >"$work/cer/admin.token")
cat >"$work/cer/carimbo.toml" <<CONF
version = 1
[server]
listen = "127.0.0.1:18543"
publication-url = "http://127.0.0.1:18180"
[tls]
certificate = "tls/server.pem"
key = "tls/server.key"
self-issue = { provisioner = "bench", sans = ["dns:ca.example.com", "ip:127.0.0.1"] }
[database]
sqlite = "carimbo.db"
[keys]
pkcs11-config = "pkcs11-ca.toml"
[[issuers]]
name = "int-server"
profiles = ["server"]
certificate = "int-server.pem"
chain = ["root.pem"]
key-reference = "int-server.key.toml"
[[provisioners]]
name = "bench"
type = "token"
profiles = ["server"]
sans = ["dns:**.example.com", "ip:127.0.0.1"]
max-ttl = "24h"
[[admins]]
name = "bench"
role = "admin"
token-file = "admin.token"
CONF
"$bin/carimbo" serve --config "$work/cer/carimbo.toml" >"$work/serve.out" 2>&1 &
serve_pid=$!
wait_for "$work/serve.out" "API on"
issue_hsm=$(load_rows "PKCS#11 provider (SoftHSM2)" https://127.0.0.1:18543 "$work/cer/root.pem" "$work/cer/admin.token" bench dns:load.example.com)
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
{
    echo "# Benchmarks"
    echo
    echo "Measured by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu), $(openssl version | cut -d' ' -f1-2),"
    echo "SoftHSM2 $(softhsm2-util --version), release build. Figures are from one run; every"
    echo "figure stands next to a baseline measured in the same run. Goals from the KMS issue"
    echo "are reported, not enforced: in-process ECDSA P-256 ≥ 80% of \`openssl speed ecdsap256\`"
    echo "per core; PKCS#11 through the pool ≥ 80% of raw SoftHSM2 \`C_Sign\`; envelope ≥ 1 GB/s"
    echo "per core; memory < 64 MiB for any size."
    echo
    echo "$tables"
    echo
    echo "### 1 GiB file round trip through \`carimbo kms\`"
    echo
    echo "Random 1 GiB file on local disk (page cache warm after the first read), segment"
    echo "size 64 KiB, one process per step; wall time and peak RSS from \`/usr/bin/time\`."
    echo "The CLI fsyncs its output before renaming it into place, so the disk is part of the"
    echo "figure. Baselines in the same run: reading the file (\`cat\` to /dev/null) $read_rate MB/s;"
    echo "copying it with \`dd bs=1M conv=fsync\` (read + write + fsync, no crypto) $copy_rate MB/s."
    echo
    echo "| provider | encrypt | peak RSS | decrypt | peak RSS |"
    echo "|---|---|---|---|---|"
    echo "$file_row"
    echo "$pkcs11_row"
    echo
    echo "### Issuances per second over HTTPS"
    echo
    echo "\`carimbo-bench issue-load\`: one certificate is bootstrapped, then N concurrent"
    echo "clients renew it by proof of possession for ${seconds}s each — the whole issuance"
    echo "path per request: TLS, proof check, CSR checks, policy, TBS built and linted with a"
    echo "throwaway key, intent stored, issuer signature (ECDSA P-256), signature verified,"
    echo "certificate stored, audit event appended; SQLite in WAL mode with synchronous=FULL"
    echo "(three durable commits per issuance). Client and server share the 2 cores. Baseline:"
    echo "the signature rates above (in-process aws-lc-rs; raw SoftHSM2 \`C_Sign\`)."
    echo
    echo "| provider | concurrent clients | issuances/s | p50 ms | p99 ms | errors |"
    echo "|---|---|---|---|---|---|"
    echo "$issue_file"
    echo "$issue_hsm"
} >docs/benchmarks.md
cat docs/benchmarks.md
