#!/usr/bin/env bash
# The npm package foresight-sdk: wasm-bindgen output + the typed layer → npm/dist/, then a size
# report (raw and gzip -9 bytes of every file the package ships): the core a page always loads,
# the tract module (dist/tract/) it fetches only for graph models, and the WebGPU scoring module
# (dist/gpu/) it fetches only for visitor towers where the browser has a WebGPU adapter.
#   scripts/build-npm.sh            reuses target/web/pkg when it is newer than the SDK's sources
#   scripts/build-npm.sh --rebuild  always runs scripts/build-web.sh first
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=target/web/pkg tract=target/web/tract gpu=target/web/gpu dist=npm/dist

rebuild=0
[ "${1:-}" = "--rebuild" ] && rebuild=1
if [ ! -f "$pkg/foresight_bg.wasm" ] || [ ! -f "$pkg/foresight.js" ] || [ ! -f "$tract/foresight_tract_bg.wasm" ] || [ ! -f "$gpu/foresight_gpu_bg.wasm" ]; then
  rebuild=1
elif [ -n "$(find sdk/src sdk/tract sdk/gpu sdk/Cargo.toml Cargo.toml Cargo.lock .cargo -newer "$pkg/foresight_bg.wasm" -print -quit)" ]; then
  # A source newer than the wasm: the wasm is stale.
  rebuild=1
fi
if [ "$rebuild" = 1 ]; then
  scripts/build-web.sh
else
  echo "reusing $pkg (newer than the SDK sources, Cargo files and .cargo/; --rebuild to force)"
fi

# wasm-opt -Oz (binaryen from npm: Debian's wasm-opt is too old for this wasm): the shipped
# modules are ~30% smaller raw, ~15% gzipped. FORESIGHT_WASM_OPT=0 skips it (faster local builds).
# Each is shipped opt'ed when that was made from this build (newer than the plain one); the glue
# loads it under the plain name. Extra arguments are passed on (the core's, below).
optimized() {
  local wasm=$1 opt=${1%.wasm}.opt.wasm
  shift
  if [ "${FORESIGHT_WASM_OPT:-1}" != 0 ] && { [ ! -f "$opt" ] || [ "$wasm" -nt "$opt" ]; }; then
    tools=.tools/binaryen
    if [ ! -x "$tools/node_modules/.bin/wasm-opt" ]; then
      mkdir -p "$tools"
      npm install --silent --no-audit --no-fund --prefix "$tools" binaryen@132 >/dev/null
    fi
    echo "wasm-opt -Oz $wasm (about a minute)" >&2
    "$tools/node_modules/.bin/wasm-opt" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue "$@" "$wasm" -o "$opt"
  fi
  if [ -f "$opt" ] && [ "$opt" -nt "$wasm" ]; then echo "$opt"; else echo "$wasm"; fi
}

# Formatting a float with `core::fmt` anywhere in the core links Rust's whole float printer
# (`flt2dec` and its tables, 19 KB of its gzip); the core writes the numbers in its messages with
# `error::Num`. wasm-bindgen's output still has the symbol names, so a new `{}` of a float, a
# `{:?}` of a struct holding one, or a `clamp` with bounds that are not constants shows here.
if grep -q flt2dec "$pkg/foresight_bg.wasm"; then
  echo "the core wasm links core::fmt's float printer (flt2dec): a float is formatted with {} or {:?}" >&2
  echo "somewhere in it; write it with foresight::error::Num (see its doc comment for how to find it)" >&2
  exit 1
fi

rm -rf "$dist"
mkdir -p "$dist/wasm" "$dist/tract" "$dist/gpu"
cp "$pkg/foresight.js" "$pkg/foresight.d.ts" "$dist/wasm/"
# The core, which every page loads, gets two more passes: `--converge` repeats -Oz until the
# module stops shrinking, and `--low-memory-unused` folds constant offsets into loads and stores,
# which holds for Rust's wasm32 layout (the stack is first and grows down from 1 MiB: the low
# 1 KB is touched only by a stack that overflowed already). 248,115 → 245,227 B gzip.
cp "$(optimized "$pkg/foresight_bg.wasm" --converge --low-memory-unused)" "$dist/wasm/foresight_bg.wasm"
cp "$tract/foresight_tract.js" "$dist/tract/"
cp "$(optimized "$tract/foresight_tract_bg.wasm")" "$dist/tract/foresight_tract_bg.wasm"
cp "$gpu/foresight_gpu.js" "$dist/gpu/"
cp "$(optimized "$gpu/foresight_gpu_bg.wasm")" "$dist/gpu/foresight_gpu_bg.wasm"
cp npm/src/*.js npm/src/*.d.ts "$dist/"
# The shipped JS minified, as onnxruntime-web ships its module: esbuild, one file at a time, so
# every import, `import()` and `new URL(…, import.meta.url)` stays as written and bundlers and
# plain servers resolve the same files. Names are kept (classes, stack frames) in the package's
# own files, not in wasm-bindgen's glue, whose hundred-odd generated import names kept twice were
# 0.8 KB gzip; a source map with the original text sits beside each file for debugging; pages
# never fetch it.
# FORESIGHT_MINIFY=0 ships the files as written.
if [ "${FORESIGHT_MINIFY:-1}" != 0 ]; then
  esbuild=.tools/esbuild/node_modules/.bin/esbuild
  if [ ! -x "$esbuild" ]; then
    mkdir -p .tools/esbuild
    npm install --silent --no-audit --no-fund --prefix .tools/esbuild esbuild@0.25.12 >/dev/null
  fi
  find "$dist" -name '*.js' | while read -r f; do
    keep=--keep-names
    case "$f" in */wasm/foresight.js | */tract/foresight_tract.js | */gpu/foresight_gpu.js) keep= ;; esac
    "$esbuild" "$f" --minify $keep --format=esm --sourcemap --log-level=warning --allow-overwrite --outfile="$f"
  done
fi

echo
echo "size report (npm/dist; gzip -9)"
tally=$(mktemp)
( cd "$dist" && find . -type f | sed 's|^\./||' | sort | while read -r f; do
    printf '%s %s %s\n' "$f" "$(wc -c < "$f")" "$(gzip -9 -c "$f" | wc -c)"
  done ) | awk '
  function human(n) { return n >= 1048576 ? sprintf("%.2f MB", n / 1048576) : sprintf("%.1f KB", n / 1024) }
  { printf "  %-28s %12d %12d\n", $1, $2, $3
    # Source maps: fetched by a debugger only, never by the page.
    if ($1 ~ /\.map$/) { mr += $2; mg += $3; ar += $2; ag += $3; next }
    if ($1 ~ /^tract\//) { tr += $2; tg += $3; ar += $2; ag += $3; next }
    if ($1 ~ /^gpu\//) { gr += $2; gg += $3; ar += $2; ag += $3; next }
    # Imported by index.js only when the config names sources (GA4 / Segment events).
    if ($1 ~ /^sources\./) { sr += $2; sg += $3; ar += $2; ag += $3; next }
    if ($1 ~ /\.d\.ts$/) { dr += $2; dg += $3 }
    else if ($1 ~ /\.js$/) { jr += $2; jg += $3 }
    else if ($1 ~ /\.wasm$/) { wr += $2; wg += $3 }
    ar += $2; ag += $3 }
  BEGIN { printf "  %-28s %12s %12s\n", "file", "raw bytes", "gzip bytes" }
  END {
    printf "  %-28s %12d %12d   (%s / %s)\n", "total JS", jr, jg, human(jr), human(jg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "total wasm", wr, wg, human(wr), human(wg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "core JS + wasm (page loads)", jr + wr, jg + wg, human(jr + wr), human(jg + wg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "tract module (graphs only)", tr, tg, human(tr), human(tg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "WebGPU module (towers only)", gr, gg, human(gr), human(gg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "sources (only with sources)", sr, sg, human(sr), human(sg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "source maps (debugging only)", mr, mg, human(mr), human(mg)
    printf "  %-28s %12d %12d   (%s / %s)\n", "all (incl. .d.ts, maps)", ar, ag, human(ar), human(ag)
    print jg + wg > "/dev/fd/3"
  }' 3> "$tally"
# What every page loads, gzipped, may not grow: the budget is a ratchet at the size reached when
# tract left the core (~442 KB with WebGPU scoring), raised once by 10 KB for per-placement rules
# (+8.4 KB of wasm: the config's new section) and the start() handle (+2.2 KB of JS), and by
# 1 KB for the buyAgain placement and the transition model's repeat term (+4.4 KB gzip in all,
# measured 466,267 → 470,626 bytes; most of it the placement's deserializer and explanation).
# Lowered to 405,000 when WebGPU scoring left for its own module (→ 434,257) and events,
# placements and queued reports stopped carrying derived deserializers (→ 401,929), then to
# 393,000 when every ranking sorted with one comparator (`topk::best_first`, → 389,676), then
# to 350,000 when the config, the manifest and stored state were read by hand (`json.rs`,
# → 358,543), errors became one word and maps stopped being built by sorting (→ 347,510), and
# to 339,000 when the JS shipped minified (→ 336,404), to 296,000 when the SDK outside its hot
# loops was built for size (the `web` profile, → 293,026), and to 263,000 when the top-k stopped
# sorting slices (→ 282,860), signatures went to the browser's WebCrypto (→ 265,379) and the
# core's wasm-opt and the glue's minification were tightened (→ 260,613), and to 243,000 when
# the public key was decoded without the base64 crate and the core stopped linking Rust's float
# printer (→ 240,188; issue #15's target, 250 KB, reached). Lower this as the core shrinks.
budget=${FORESIGHT_CORE_BUDGET:-243000}
core=$(cat "$tally") && rm -f "$tally"
if [ "${FORESIGHT_WASM_OPT:-1}" = 0 ]; then
  echo "core $core bytes gzipped without wasm-opt: the budget ($budget) applies to the optimized build"
elif [ "$core" -gt "$budget" ]; then
  echo "the core (JS + wasm a page loads) is $core bytes gzipped, over the budget of $budget" >&2
  exit 1
else
  echo "core $core bytes gzipped, within the budget of $budget"
fi
