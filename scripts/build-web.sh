#!/usr/bin/env bash
# Release wasm of the SDK + its JS bindings (wasm-bindgen --target web).
#   scripts/build-web.sh          → target/web/pkg       (loads ONNX and bundles; WebGPU scoring)
#   scripts/build-web.sh --lean   → target/web/pkg-lean  (bundles only: no tract-onnx inside)
#   scripts/build-web.sh --lean-webgpu → target/web/pkg-lean-webgpu (lean + WebGPU scoring)
# With BENCH=1, the variant also exports `BenchModel` / `BenchScorer` (cargo feature `bench`,
# for bench/ only) and goes to its own folder (…-bench), so the shipped builds never carry them.
set -euo pipefail
cd "$(dirname "$0")/.."
features=(--features webgpu) out=target/web/pkg
if [ "${1:-}" = "--lean" ]; then
  features=(--no-default-features --features web) out=target/web/pkg-lean
elif [ "${1:-}" = "--lean-webgpu" ]; then
  features=(--no-default-features --features web,webgpu) out=target/web/pkg-lean-webgpu
fi
if [ "${BENCH:-0}" = 1 ]; then
  features+=(--features bench) out=$out-bench
fi
# Cargo rebuilds the crate when features change, so each variant gets its own target dir.
target_dir=target/wasm-${out##*/}
CARGO_TARGET_DIR=$target_dir cargo build -p foresight --target wasm32-unknown-unknown --release --locked "${features[@]}"
wasm-bindgen --target web --out-dir "$out" "$target_dir/wasm32-unknown-unknown/release/foresight.wasm"
