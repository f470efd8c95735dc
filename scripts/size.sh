#!/usr/bin/env bash
# What the SDK costs a page, against onnxruntime-web (the peer a shop would otherwise ship):
# the npm package's core (JS + wasm every page loads), the tract module it fetches only for graph
# models, the WebGPU scoring module it fetches only for visitor towers where WebGPU has an
# adapter, and onnxruntime-web's wasm runtime (its `ort.wasm.min.mjs` + the SIMD wasm it
# instantiates), all gzip -9. Builds npm/dist first (scripts/build-npm.sh: release
# wasm, wasm-opt -Oz, and the core's size budget).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-npm.sh >&2
if [ ! -d bench/node_modules/onnxruntime-web ]; then
  (cd bench && npm ci --no-audit --no-fund --silent)
fi
ort=bench/node_modules/onnxruntime-web
gz() { cat "$@" | gzip -9c | wc -c; }
raw() { cat "$@" | wc -c; }
core=(npm/dist/*.js npm/dist/wasm/foresight.js npm/dist/wasm/foresight_bg.wasm)
tract=(npm/dist/tract/foresight_tract.js npm/dist/tract/foresight_tract_bg.wasm)
gpu=(npm/dist/gpu/foresight_gpu.js npm/dist/gpu/foresight_gpu_bg.wasm)
peer=("$ort/dist/ort.wasm.min.mjs" "$ort/dist/ort-wasm-simd-threaded.wasm")
# Each file gzipped on its own, as a server sends them.
sum_gz() { local t=0; for f in "$@"; do t=$((t + $(gz "$f"))); done; echo $t; }
sum_raw() { local t=0; for f in "$@"; do t=$((t + $(raw "$f"))); done; echo $t; }
peer_gz=$(sum_gz "${peer[@]}")
row() {
  local name=$1; shift
  local r g; r=$(sum_raw "$@"); g=$(sum_gz "$@")
  awk -v n="$name" -v r="$r" -v g="$g" -v p="$peer_gz" 'BEGIN { printf "| %s | %.1f KB | %.1f KB | %.3f× |\n", n, r / 1024, g / 1024, g / p }'
}
echo "SDK at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- sdk npm scripts || echo ' (with uncommitted changes)'), onnxruntime-web $(node -p "require('./$ort/package.json').version")"
echo
echo "| what | raw | gzip -9 | gzip vs onnxruntime-web |"
echo "|---|---|---|---|"
row "Foresight core: JS + wasm every page loads" "${core[@]}"
row "Foresight tract module (only for nnef/onnx bundles)" "${tract[@]}"
row "Foresight WebGPU module (only for visitor towers, with a WebGPU adapter)" "${gpu[@]}"
row "onnxruntime-web wasm runtime (ort.wasm.min.mjs + ort-wasm-simd-threaded.wasm)" "${peer[@]}"
