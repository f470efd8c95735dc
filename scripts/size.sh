#!/usr/bin/env bash
# Size of the shipped SDK, full and lean (bundles only), after wasm-bindgen and after
# wasm-opt -Oz (binaryen from npm: Debian's wasm-opt 108 is too old), raw and gzip -9.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools/binaryen
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" binaryen@132 >/dev/null
fi
report() { printf '%-34s %10d bytes raw %10d bytes gzip -9\n' "$1" "$(stat -c %s "$2")" "$(gzip -9c "$2" | wc -c)"; }
for variant in "" --lean; do
  scripts/build-web.sh $variant >/dev/null
  pkg=target/web/pkg${variant:+-lean}
  "$tools/node_modules/.bin/wasm-opt" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$pkg/foresight_bg.wasm" -o "$pkg/foresight_bg.opt.wasm"
  name=${variant:+lean, bundles only}
  report "wasm (${name:-full})" "$pkg/foresight_bg.wasm"
  report "wasm (${name:-full}) wasm-opt -Oz" "$pkg/foresight_bg.opt.wasm"
done
report "JS glue" target/web/pkg/foresight.js
