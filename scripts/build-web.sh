#!/usr/bin/env bash
# Release wasm of the SDK + its JS bindings (wasm-bindgen --target web).
#   scripts/build-web.sh          → target/web/pkg    the shipped core: no graph runtime (tract) and no
#                                   wgpu inside; target/web/tract, the tract module the core fetches
#                                   only when a bundle is a graph (nnef/onnx); and target/web/gpu,
#                                   the WebGPU scoring module it fetches only for a visitor tower in
#                                   a browser with a WebGPU adapter
#   scripts/build-web.sh --full   → target/web/pkg-full  tract with ONNX compiled in (bench/)
#   scripts/build-web.sh --lean   → target/web/pkg-lean  tract NNEF compiled in, no ONNX (bench/)
#   scripts/build-web.sh --lean-webgpu → target/web/pkg-lean-webgpu (--lean + WebGPU scoring)
# With BENCH=1, the variant also exports `BenchModel` / `BenchScorer` (cargo feature `bench`,
# for bench/ only) and goes to its own folder (…-bench), so the shipped builds never carry them.
set -euo pipefail
cd "$(dirname "$0")/.."
features=(--no-default-features --features web) out=target/web/pkg core=1
case "${1:-}" in
  --full) features=(--features webgpu) out=target/web/pkg-full core=0 ;;
  --lean) features=(--no-default-features --features web,tract) out=target/web/pkg-lean core=0 ;;
  --lean-webgpu) features=(--no-default-features --features web,tract,webgpu) out=target/web/pkg-lean-webgpu core=0 ;;
  "") ;;
  *) echo "usage: $0 [--full | --lean | --lean-webgpu]" >&2; exit 2 ;;
esac
if [ "${BENCH:-0}" = 1 ]; then
  features+=(--features bench) out=$out-bench core=0
fi
# Cargo rebuilds the crate when features change, so each variant gets its own target dir.
target_dir=target/wasm-${out##*/}
CARGO_TARGET_DIR=$target_dir cargo build -p foresight --target wasm32-unknown-unknown --profile web --locked "${features[@]}"
wasm-bindgen --target web --out-dir "$out" "$target_dir/wasm32-unknown-unknown/web/foresight.wasm"
if [ "$core" = 1 ]; then
  CARGO_TARGET_DIR=target/wasm-tract cargo build -p foresight-tract --target wasm32-unknown-unknown --profile web --locked
  wasm-bindgen --target web --out-dir target/web/tract target/wasm-tract/wasm32-unknown-unknown/web/foresight_tract.wasm
  # Its own target dir: building it would otherwise rebuild the core's foresight.wasm with wgpu.
  CARGO_TARGET_DIR=target/wasm-gpu cargo build -p foresight-gpu --target wasm32-unknown-unknown --profile web --locked
  wasm-bindgen --target web --out-dir target/web/gpu target/wasm-gpu/wasm32-unknown-unknown/web/foresight_gpu.wasm
fi
