#!/usr/bin/env bash
# Builds the two SDK wasm variants the benchmark loads, with the `bench` feature (the SDK then
# exports `BenchModel`, sdk/src/web/bench.rs) and copies them: bench/build-wasm.sh OUT_FULL OUT_LEAN
# scripts/build-web.sh is incremental: up to date, it only re-runs wasm-bindgen.
set -euo pipefail
cd "$(dirname "$0")/.."
out_full=$1 out_lean=$2
for v in full lean; do
  pkg=target/web/pkg-full-bench flag=--full dest=$out_full
  [ $v = lean ] && pkg=target/web/pkg-lean-bench flag=--lean dest=$out_lean
  printf '[bench] building the %s SDK wasm (scripts/build-web.sh %s)\n' "$v" "$flag" >&2
  BENCH=1 scripts/build-web.sh $flag
  rm -rf "$dest" && mkdir -p "$dest" && cp "$pkg/foresight.js" "$pkg/foresight_bg.wasm" "$dest/"
done
