#!/usr/bin/env bash
# Sustained reports/s and latency percentiles of `foresight-export collect` on loopback, with
# SQLite and (when initdb/pg_ctl are on the machine) PostgreSQL, one collector process and two
# sharing the database; then SIGKILL at random moments under load, ROUNDS times per database,
# checking that no acknowledged report is lost or stored twice (examples/collector_kill9.rs).
# Bounded: REPORTS reports or SECONDS seconds per run, whichever comes first.
#
#   scripts/bench-collector.sh [REPORTS=30000] [THREADS=8] [SECONDS=20]
#   PROFILE=dev scripts/bench-collector.sh    # the debug build (quick to compile, slower)
#   ROUNDS=10 (kill -9 rounds; 0 skips them)
set -euo pipefail
cd "$(dirname "$0")/.."

REPORTS=${1:-30000}
THREADS=${2:-8}
SECONDS_MAX=${3:-20}
PROFILE=${PROFILE:-release}
ROUNDS=${ROUNDS:-10}
KEY=bench-key-0001

if [ "$PROFILE" = release ]; then flag=--release; dir=release; else flag=; dir=debug; fi
cargo build -q -p foresight-export $flag --bin foresight-export --example bench_collector --example collector_kill9
BIN=target/$dir/foresight-export
LOAD=target/$dir/examples/bench_collector
KILL9=target/$dir/examples/collector_kill9
echo "foresight-export at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $PROFILE build, $(nproc) cores"

work=$(mktemp -d)
collector=
pg_stop=
cleanup() {
  for pid in $collector; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  [ -n "$pg_stop" ] && eval "$pg_stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_collector() { # $1: --db value; sets $url, appends the pid to $collector
  local port; port=$(free_port)
  "$BIN" collect --addr "127.0.0.1:$port" --db "$1" --site "bench=$KEY" --rate-per-minute 100000000 \
    >/dev/null 2>>"$work/collector.log" &
  collector="$collector $!"
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -fsS "$url/v1/health" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the collector did not start:"; cat "$work/collector.log"; exit 1
}

stop_collectors() {
  for pid in $collector; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  collector=
}

run() { # $1: label, $2: --db value, $3: collector processes (1 or 2)
  local urls=
  for _ in $(seq "${3:-1}"); do start_collector "$2"; urls="${urls:+$urls,}$url"; done
  for batch in 1 10 50; do
    echo "== $1, ${3:-1} process(es), batch $batch"
    "$LOAD" --bench "$urls" "$KEY" bench "$REPORTS" "$THREADS" "$batch" "$SECONDS_MAX"
  done
  stop_collectors
  # `aggregates` over everything just stored: the database sums the sketch cells.
  local t0 t1 n
  t0=$(date +%s.%N)
  n=$("$BIN" aggregates --db "$2" --site bench --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["reports"])')
  t1=$(date +%s.%N)
  python3 -c "t=$t1-$t0; print(f'aggregates: {$n} reports summed in {t:.2f} s ({$n/t:,.0f} reports/s, the process included)')"
}

kill9() { # $1: label, $2: --db value
  [ "$ROUNDS" -gt 0 ] || return 0
  echo "== $1: kill -9 under load, $ROUNDS rounds"
  "$KILL9" "$BIN" "$2" "$ROUNDS"
}

run "SQLite (WAL, synchronous=FULL)" "sqlite:$work/bench.db"
kill9 "SQLite" "sqlite:$work/kill9.db"

pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1 || echo /nonexistent/x)")")
if [ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_ctl" ]; then
  as=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; as=(runuser -u postgres --); fi
  port=$(free_port)
  "${as[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  "${as[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -o "-p $port -k $work -c listen_addresses=127.0.0.1" -w start >/dev/null
  pg_stop="${as[*]} $pgbin/pg_ctl -D $work/pg -m fast -w stop"
  pg="PostgreSQL $("$pgbin/pg_ctl" --version | awk '{print $3}')"
  "${as[@]}" "$pgbin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE two" -c "CREATE DATABASE kill9" postgres
  run "$pg" "postgres://postgres@127.0.0.1:$port/postgres"
  run "$pg" "postgres://postgres@127.0.0.1:$port/two" 2
  kill9 "$pg" "postgres://postgres@127.0.0.1:$port/kill9"
else
  echo "(no initdb/pg_ctl here: PostgreSQL not measured)"
fi
