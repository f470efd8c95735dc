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
# A scriptable front (500s, 429s, a request log) for the retry and pagehide tests.
flaky_port=$((port + 1))
python3 scripts/flaky-collector.py "$flaky_port" "http://127.0.0.1:$port" &
flaky=$!
trap 'kill $collector $flaky 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $collector 2>/dev/null || { cat "$work/collector.log"; exit 1; }
  sleep 0.1
done
# Backoff with full jitter can wait up to 12 s over two retries: above the runner's 20 s default
# only with the rest of a test.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
FORESIGHT_TEST_COLLECTOR="http://127.0.0.1:$port/v1/reports" \
FORESIGHT_TEST_FLAKY="http://127.0.0.1:$flaky_port" \
  cargo test -p foresight --target wasm32-unknown-unknown --features import --test web --locked

# The WebGPU scoring path: without WebGPU the SDK must choose the CPU and say so; with
# --enable-unsafe-webgpu (SwiftShader's adapter) the GPU's top-k must equal the CPU's.
cargo test -p foresight --target wasm32-unknown-unknown --features webgpu --test web_gpu --locked
FORESIGHT_EXPECT_WEBGPU=1 WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/sdk/webdriver-webgpu.json" \
  cargo test -p foresight --target wasm32-unknown-unknown --features webgpu --test web_gpu --locked
