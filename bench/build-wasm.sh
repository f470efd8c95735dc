#!/usr/bin/env bash
# Builds the two SDK wasm variants the benchmark loads, each with the `BenchModel` export
# (sdk/src/web/bench.rs): bench/build-wasm.sh OUT_FULL OUT_LEAN
#
# When sdk/src/web/mod.rs declares `mod bench;`, this is scripts/build-web.sh (and --lean),
# copied to OUT_*. Until then the SDK is built from a copy of the sources under
# target/bench-src with that one line added (the working tree is not touched), in its own
# target dirs (seeded from scripts/build-web.sh's, when present, so only the SDK recompiles).
set -euo pipefail
cd "$(dirname "$0")/.."
out_full=$1 out_lean=$2
log() { printf '[bench] %s\n' "$*" >&2; }

if grep -q '^mod bench;' sdk/src/web/mod.rs; then
  for v in full lean; do
    pkg=target/web/pkg; flag=
    [ $v = lean ] && pkg=target/web/pkg-lean flag=--lean
    if ! grep -q BenchModel "$pkg/foresight.js" 2>/dev/null; then
      log "building the $v SDK wasm (scripts/build-web.sh $flag, several minutes)"
      scripts/build-web.sh $flag
    fi
    dest=$out_full; [ $v = lean ] && dest=$out_lean
    rm -rf "$dest" && mkdir -p "$dest" && cp -r "$pkg/." "$dest/"
  done
  exit 0
fi

src=target/bench-src
log "sdk/src/web/mod.rs has no \`mod bench;\`: building from a copy in $src with it added"
rm -rf "$src" && mkdir -p "$src"
# Tracked and untracked-but-not-ignored files of the crates the workspace names (as git sees them).
git ls-files -co --exclude-standard -- Cargo.toml Cargo.lock .cargo sdk model-export ':!model-export/training' |
  while read -r f; do [ -f "$f" ] && mkdir -p "$src/$(dirname "$f")" && cp -p "$f" "$src/$f"; done
printf '\nmod bench;\n' >> "$src/sdk/src/web/mod.rs"
# Keep the original's mtime, so that cargo rebuilds only when the real sources change.
touch -r sdk/src/web/mod.rs "$src/sdk/src/web/mod.rs"
for v in full lean; do
  features=() dest=$out_full seed=target/wasm-pkg tdir=$PWD/target/bench-wasm-full
  if [ $v = lean ]; then
    features=(--no-default-features --features web) dest=$out_lean seed=target/wasm-pkg-lean tdir=$PWD/target/bench-wasm-lean
  fi
  if [ ! -d "$tdir" ] && [ -d "$seed" ]; then cp -a "$seed" "$tdir"; fi
  log "building the $v SDK wasm (release, several minutes the first time)"
  (cd "$src" && CARGO_TARGET_DIR=$tdir cargo build -q -p foresight --target wasm32-unknown-unknown --release --locked "${features[@]}")
  rm -rf "$dest" && mkdir -p "$dest"
  wasm-bindgen --target web --out-dir "$dest" "$tdir/wasm32-unknown-unknown/release/foresight.wasm"
done
