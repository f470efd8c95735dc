#!/usr/bin/env bash
# Foresight vs onnxruntime-web, side by side in headless Chromium, plus cold start, tracking
# overhead and MovieLens-100K accuracy; writes bench/RESULTS.md and prints it.
#
#   scripts/bench.sh              5 page loads per measurement, 300 timed runs per model
#   LOADS=3 RUNS=200 scripts/bench.sh
#
# Installs what it needs: Chromium (scripts/setup.sh), bench/node_modules (npm ci: the pinned
# onnxruntime-web and playwright-core), the two SDK wasm builds with the BenchModel export
# (bench/build-wasm.sh → target/bench-pkg/, reused when up to date), foresight-export (debug,
# as scripts/demo.sh builds it; FORESIGHT_EXPORT=/path overrides), MovieLens-100K
# (scripts/fetch-data.sh). Generated inputs and the raw figures go to target/bench-site/.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[bench] %s\n' "$*" >&2; }

[ -x /usr/bin/chromium ] || scripts/setup.sh
command -v npm >/dev/null || { echo "[bench] node and npm are needed (Debian: apt-get install nodejs npm)" >&2; exit 1; }
log "npm ci (bench/package-lock.json)"
(cd bench && npm ci --no-audit --no-fund --loglevel=error)

bench/build-wasm.sh target/bench-pkg/full target/bench-pkg/lean

if [ -n "${FORESIGHT_EXPORT:-}" ]; then
  bin=$FORESIGHT_EXPORT
else
  log "building foresight-export (debug)"
  cargo build -q -p foresight-export --locked
  bin=target/debug/foresight-export
fi

site=target/bench-site
mkdir -p "$site"
# The lean build reads only bundles. `convert` recognises SASRec and writes the `attention`
# format (the SDK's kernels, key/value cache); should it fail, the lean column says why.
rm -f "$site/sasrec_5000.fsb" "$site/sasrec_5000.convert-error.txt"
log "converting bench/models/sasrec_5000.onnx to a signed bundle (test key)"
if ! "$bin" convert bench/models/sasrec_5000.onnx --kind recommender --catalog tests/fixtures/catalog.json \
    --signing-key tests/fixtures/bundles/test-signing.key --no-onnxruntime --out "$site/sasrec_5000.fsb" \
    >"$site/convert.log" 2>"$site/sasrec_5000.convert-error.txt"; then
  log "SASRec could not be bundled: $(head -1 "$site/sasrec_5000.convert-error.txt")"
  rm -f "$site/sasrec_5000.fsb"
else
  rm -f "$site/sasrec_5000.convert-error.txt"
fi

# onnxruntime-web's step models (GRU from the fixture, SASRec's committed step model + TopK),
# each checked against its whole-sequence model at every event before anything is timed.
log "onnxruntime-web step models (bench/models/make_step_models.py derive)"
python3 bench/models/make_step_models.py derive "$site" >&2

eval_arg=()
if scripts/fetch-data.sh >&2; then
  log "accuracy: foresight-export train --eval --json on MovieLens-100K"
  "$bin" train --interactions data/ml-100k/ml-100k.inter --items data/ml-100k/ml-100k.item \
    --out-model "$site/ml100k-model.onnx" --out-catalog "$site/ml100k-catalog.json" --json --quiet >"$site/train-eval.json"
  eval_arg=(--eval "$site/train-eval.json")
else
  log "MovieLens-100K unavailable: the accuracy section is left out"
fi

node bench/run.mjs --pkg-full target/bench-pkg/full --pkg-lean target/bench-pkg/lean --generated "$site" \
  --loads "${LOADS:-5}" --runs "${RUNS:-300}" --out bench/RESULTS.md "${eval_arg[@]}"
cat bench/RESULTS.md
