#!/usr/bin/env bash
# The SDK's browser tests in headless Chromium, with a real collector on loopback for the
# delivery tests (its address reaches the test build through FORESIGHT_TEST_COLLECTOR).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${COLLECTOR_PORT:-18787}
work=$(mktemp -d)
cargo build -q -p foresight-export --locked
target/debug/foresight-export collect --addr "127.0.0.1:$port" --db "sqlite:$work/collector.db" \
  --site test-shop=site-key --allow-origin '*' >"$work/collector.log" 2>&1 &
collector=$!
trap 'kill $collector 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $collector 2>/dev/null || { cat "$work/collector.log"; exit 1; }
  sleep 0.1
done
FORESIGHT_TEST_COLLECTOR="http://127.0.0.1:$port/v1/reports" \
  cargo test -p foresight --target wasm32-unknown-unknown --test web --locked
