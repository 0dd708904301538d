#!/usr/bin/env bash
# Issuances per second with 1, 2 and 3 `carimbo serve` replicas on one PostgreSQL
# database, next to one `carimbo dev` node on SQLite (the baseline), all with the
# development file keys so that only the storage and the replica count differ.
# Starts a throwaway PostgreSQL (initdb in a temporary directory, default durability:
# fsync and synchronous_commit on) and prints a markdown table on stdout; used by
# scripts/bench.sh. Not part of CI.
#
#   scripts/bench-replicas.sh [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=3
if [ "${1:-}" = "--seconds" ]; then seconds=$2; fi

bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "error: PostgreSQL is needed (apt-get install postgresql)" >&2; exit 1; }
cargo build --release --locked -p carimbo-cli -p carimbo-bench >&2
bin=$PWD/target/release

work=$(mktemp -d)
chmod 755 "$work"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    as_pg "$bindir/pg_ctl" -D "$work/pg/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # port
    for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "error: nothing listens on $1" >&2; exit 1
}

mkdir "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$bindir/initdb" -D "$work/pg/data" -U carimbo -A trust -E UTF8 --no-locale >/dev/null
pg_port=$(free_port)
as_pg "$bindir/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-k $work/pg -c listen_addresses=127.0.0.1 -p $pg_port -c max_connections=200" start >/dev/null
as_pg "$bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U carimbo carimbo

# The development CA (ceremony with file keys, config), first served on SQLite.
api=$(free_port) publication=$(free_port)
"$bin/carimbo" dev --data-dir "$work/dev" --listen "127.0.0.1:$api" --publication-listen "127.0.0.1:$publication" \
    >"$work/dev.out" 2>&1 &
pids+=($!)
wait_port "$api"
load() { # label replicas concurrency url...
    local label=$1 replicas=$2 concurrency=$3; shift 3
    local cas=()
    for url in "$@"; do cas+=(--ca "$url"); done
    "$bin/carimbo-bench" issue-load "${cas[@]}" --ca-bundle "$work/dev/ca-bundle.pem" \
        --admin-token-file "$work/dev/admin.token" --provisioner dev --san dns:load.localhost \
        --concurrency "$concurrency" --seconds "$seconds" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %s | %d | %.0f | %.1f | %.1f | %d |" % (sys.argv[1], sys.argv[2], r["concurrency"], r["rate"], r["p50_ms"], r["p99_ms"], r["errors"]))' "$label" "$replicas"
}
rows=()
for concurrency in 16 32; do
    rows+=("$(load "SQLite (carimbo dev)" 1 "$concurrency" "https://127.0.0.1:$api")")
done
kill "${pids[@]}"; wait 2>/dev/null || true
pids=()

# The same CA on PostgreSQL: replica configs with their own ports and audit chains.
printf 'postgres://carimbo@127.0.0.1:%s/carimbo' "$pg_port" >"$work/dev/pg.url"
chmod 600 "$work/dev/pg.url"
urls=()
for i in 1 2 3; do
    api=$(free_port) publication=$(free_port)
    sed -e "s|^listen = .*|listen = \"127.0.0.1:$api\"|" \
        -e "s|^publication-listen = .*|publication-listen = \"127.0.0.1:$publication\"|" \
        -e "s|^sqlite = .*|postgres-url-file = \"pg.url\"\nmax-connections = 16|" \
        "$work/dev/carimbo.toml" >"$work/dev/replica-$i.toml"
    printf '\n[audit]\nchain = "replica-%s"\n' "$i" >>"$work/dev/replica-$i.toml"
    urls+=("https://127.0.0.1:$api")
done
for count in 1 2 3; do
    "$bin/carimbo" serve --config "$work/dev/replica-$count.toml" >"$work/replica-$count.out" 2>&1 &
    pids+=($!)
    wait_port "${urls[$((count - 1))]##*:}"
    for concurrency in 16 32; do
        rows+=("$(load "PostgreSQL" "$count" "$concurrency" "${urls[@]:0:$count}")")
    done
done

cat <<MD
| database | replicas | concurrent clients | issuances/s | p50 ms | p99 ms | errors |
|---|---|---|---|---|---|---|
MD
printf '%s\n' "${rows[@]}"
