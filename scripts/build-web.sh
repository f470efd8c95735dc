#!/usr/bin/env bash
# Release wasm of the SDK + its JS bindings (wasm-bindgen --target web) in target/web/pkg.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p foresight --target wasm32-unknown-unknown --release --locked
wasm-bindgen --target web --out-dir target/web/pkg target/wasm32-unknown-unknown/release/foresight.wasm
