#!/usr/bin/env bash
# Cold start, page load → first recommendation, of the npm package against onnxruntime-web in
# the same page (bench/pages/cold.html), each load in a fresh headless Chromium; prints markdown.
#   scripts/bench-cold.sh             7 loads per runtime
#   LOADS=11 scripts/bench-cold.sh
# Builds what it needs: npm/dist (scripts/build-npm.sh, reused when up to date) and
# bench/node_modules (the pinned onnxruntime-web and playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/chromium ] || scripts/setup.sh
scripts/build-npm.sh >&2
(cd bench && npm ci --no-audit --no-fund --loglevel=error >&2)
node bench/cold.mjs --loads "${LOADS:-7}"
