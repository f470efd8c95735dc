#!/usr/bin/env bash
# Size of the shipped SDK: release wasm after wasm-bindgen, and after wasm-opt -Oz (binaryen
# from npm: Debian's wasm-opt 108 is too old), raw and gzip -9.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-web.sh
tools=.tools/binaryen
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" binaryen@132 >/dev/null
fi
pkg=target/web/pkg
"$tools/node_modules/.bin/wasm-opt" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$pkg/foresight_bg.wasm" -o "$pkg/foresight_bg.opt.wasm"
report() { printf '%-28s %10d bytes raw %10d bytes gzip -9\n' "$1" "$(stat -c %s "$2")" "$(gzip -9c "$2" | wc -c)"; }
report "wasm (wasm-bindgen)" "$pkg/foresight_bg.wasm"
report "wasm (wasm-opt -Oz)" "$pkg/foresight_bg.opt.wasm"
report "JS glue" "$pkg/foresight.js"
