#!/usr/bin/env bash
# End to end, as a shop and a visitor meet it: the npm package's type check and own tests, the
# demo store in headless Chromium (Playwright) against a real collector, the same store on the Ta
# Feng catalog (DATA=tafeng, its model trained on the last 14 days: DEMO_QUICK=1, ~35 s), and the
# packed package in a fresh Vite app. Screenshots go to target/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${E2E_PORT:-18080}
collector_port=${E2E_COLLECTOR_PORT:-18788}
tafeng_port=${E2E_TAFENG_PORT:-18081}
shots=$root/target/screenshots
mkdir -p "$shots"

PORT=$port COLLECTOR_PORT=$collector_port scripts/demo.sh --build-only
bin=$root/target/debug/foresight-export

echo "[e2e] npm package: types (tsc --noEmit over index.d.ts and test/types/) and tests"
(cd npm && npm ci --no-audit --no-fund --silent && npm run --silent typecheck && npm test)
tarball=$(cd npm && npm pack --silent --pack-destination "$root/target" | tail -1)

work=$(mktemp -d)
"$bin" collect --addr "127.0.0.1:$collector_port" --db "sqlite:$work/collector.db" \
  --site demo-shop=demo-key --allow-origin "http://127.0.0.1:$port" --allow-origin "http://127.0.0.1:$tafeng_port" >"$work/collector.log" 2>&1 &
collector=$!
python3 -m http.server --bind 127.0.0.1 --directory target/demo-site "$port" >"$work/http.log" 2>&1 &
server=$!
tafeng_server=
trap 'kill $collector $server $tafeng_server 2>/dev/null || true; rm -rf "$work"' EXIT
for p in "$collector_port" "$port"; do
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    sleep 0.1
  done
done

echo "[e2e] demo store in Chromium"
(cd demo-site/tests && npm ci --no-audit --no-fund --silent &&
  DEMO_URL="http://127.0.0.1:$port/" COLLECTOR_URL="http://127.0.0.1:$collector_port" \
  COLLECTOR_DB="$work/collector.db" FORESIGHT_EXPORT="$bin" SCREENSHOT_DIR="$shots" \
  node --test --test-concurrency=1 e2e.mjs)

echo "[e2e] the demo store on Ta Feng (DATA=tafeng; the quick model: its last 14 days, rank 16)"
DATA=tafeng DEMO_QUICK=1 PORT=$tafeng_port COLLECTOR_PORT=$collector_port scripts/demo.sh --build-only
python3 -m http.server --bind 127.0.0.1 --directory target/demo-site-tafeng "$tafeng_port" >"$work/http-tafeng.log" 2>&1 &
tafeng_server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$tafeng_port") 2>/dev/null && break
  sleep 0.1
done
(cd demo-site/tests && DEMO_URL="http://127.0.0.1:$tafeng_port/" SCREENSHOT_DIR="$shots" \
  node --test --test-concurrency=1 tafeng.mjs)

echo "[e2e] the packed package in a fresh Vite app, and npm/README.md's React hook and plain <script> page"
(cd tests/vite && npm ci --no-audit --no-fund --silent &&
  FORESIGHT_TARBALL="$root/target/$tarball" DEMO_MODEL="$root/target/demo-model" SCREENSHOT_DIR="$shots" \
  node --test --test-concurrency=1 run.mjs readme.mjs)
echo "[e2e] screenshots: $shots"
