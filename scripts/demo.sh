#!/usr/bin/env bash
# Builds the release SDK and serves the example store on the committed fixture models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-web.sh
out=target/demo
rm -rf "$out" && mkdir -p "$out/fixtures"
cp -r target/web/pkg "$out/pkg"
cp examples/basic/*.html "$out/"
cp tests/fixtures/{catalog.json,session_gru.onnx,intent_logreg.onnx} "$out/fixtures/"
cp tests/fixtures/bundles/{session_gru.fsb,intent_logreg.fsb,test-signing.pub} "$out/fixtures/"
port=${PORT:-8080}
echo
echo "  Foresight example store: http://127.0.0.1:${port}/"
echo "  (timings of track/recommend/intent in this browser: http://127.0.0.1:${port}/bench.html)"
echo
exec python3 -m http.server --bind 127.0.0.1 --directory "$out" "$port"
