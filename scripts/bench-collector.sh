#!/usr/bin/env bash
# Sustained reports/s and latency percentiles of `foresight-export collect` on loopback, with
# SQLite (and PostgreSQL when initdb/pg_ctl are on the machine). Bounded: REPORTS reports or
# SECONDS seconds per run, whichever comes first.
#
#   scripts/bench-collector.sh [REPORTS=5000] [THREADS=8] [SECONDS=20]
#   PROFILE=release scripts/bench-collector.sh   # optimized build (slow to compile)
set -euo pipefail
cd "$(dirname "$0")/.."

REPORTS=${1:-5000}
THREADS=${2:-8}
SECONDS_MAX=${3:-20}
PROFILE=${PROFILE:-dev}
KEY=bench-key-0001

if [ "$PROFILE" = release ]; then flag=--release; dir=release; else flag=; dir=debug; fi
cargo build -q -p foresight-export $flag --bin foresight-export --example bench_collector
BIN=target/$dir/foresight-export
LOAD=target/$dir/examples/bench_collector

work=$(mktemp -d)
collector=
pg_stop=
cleanup() {
  [ -n "$collector" ] && kill "$collector" 2>/dev/null && wait "$collector" 2>/dev/null || true
  [ -n "$pg_stop" ] && eval "$pg_stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() { # $1: label, $2: --db value
  local port; port=$(free_port)
  "$BIN" collect --addr "127.0.0.1:$port" --db "$2" --site "bench=$KEY" --rate-per-minute 100000000 \
    >/dev/null 2>"$work/collector.log" &
  collector=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  for batch in 1 10; do
    echo "== $1, batch $batch ($PROFILE build)"
    "$LOAD" --bench "http://127.0.0.1:$port" "$KEY" bench "$REPORTS" "$THREADS" "$batch" "$SECONDS_MAX"
  done
  kill "$collector"; wait "$collector" 2>/dev/null || true
  collector=
}

run "SQLite (WAL, synchronous=FULL)" "sqlite:$work/bench.db"

pgbin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1 || echo /nonexistent/x)")
if [ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_ctl" ]; then
  as=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; as=(runuser -u postgres --); fi
  port=$(free_port)
  "${as[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  "${as[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -o "-p $port -k $work -c listen_addresses=127.0.0.1" -w start >/dev/null
  pg_stop="${as[*]} $pgbin/pg_ctl -D $work/pg -m fast -w stop"
  run "PostgreSQL $("$pgbin/pg_ctl" --version | awk '{print $3}')" "postgres://postgres@127.0.0.1:$port/postgres"
else
  echo "(no initdb/pg_ctl here: PostgreSQL not measured)"
fi
