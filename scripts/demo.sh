#!/usr/bin/env bash
# The demo film store: MovieLens-100K, a recommender trained by `foresight-export train`, signed
# bundles, the npm package, the collector on SQLite, and a static server.
#
#   scripts/demo.sh               build what is missing, start both servers, print the URL
#   scripts/demo.sh --build-only  assemble target/demo-site/ and stop (the end-to-end tests)
#
# Ports: PORT (static, 8080) and COLLECTOR_PORT (8787). Generated, per machine, never committed:
# target/demo-model/ (the trained model, its catalog, a demo signing key) and
# target/demo-data/collector.db.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[demo] %s\n' "$*"; }

build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true
port=${PORT:-8080}
collector_port=${COLLECTOR_PORT:-8787}
model=target/demo-model
site=target/demo-site

scripts/fetch-data.sh
cargo build -q -p foresight-export --locked
bin=target/debug/foresight-export

mkdir -p "$model"
# Retrained when missing or older than the trainer (its output format may have grown).
if [ ! -s "$model/recommender.onnx" ] || [ ! -s "$model/titles.json" ] || [ "$bin" -nt "$model/recommender.onnx" ]; then
  log "training the recommender on MovieLens-100K (foresight-export train, ~30 s)"
  "$bin" train --interactions data/ml-100k/ml-100k.inter --items data/ml-100k/ml-100k.item \
    --out-model "$model/recommender.onnx.tmp" --out-catalog "$model/catalog.json" \
    --out-titles "$model/titles.json" --quiet
  mv "$model/recommender.onnx.tmp" "$model/recommender.onnx"
else
  log "using the trained model in $model/ (delete it to retrain)"
fi
if [ ! -s "$model/demo.key" ]; then
  "$bin" keygen --out "$model/demo" >/dev/null
fi
# Bundles are rebuilt when the model, the key or the converter is newer.
if [ ! -s "$model/recommender.fsb" ] || [ "$model/recommender.onnx" -nt "$model/recommender.fsb" ] || [ "$bin" -nt "$model/recommender.fsb" ]; then
  log "converting and signing the bundles"
  "$bin" convert "$model/recommender.onnx" --kind recommender --catalog "$model/catalog.json" \
    --signing-key "$model/demo.key" --out "$model/recommender.fsb" >"$model/convert.log"
  # The intent model reads the SDK's own session features, not the catalog: the fixture's
  # logistic regression serves any shop.
  "$bin" convert tests/fixtures/intent_logreg.onnx --kind intent \
    --signing-key "$model/demo.key" --out "$model/intent.fsb" >>"$model/convert.log"
fi

scripts/build-npm.sh

log "assembling $site/"
rm -rf "$site" && mkdir -p "$site/data" "$site/models" "$site/sdk"
(cd demo-site && find . -path ./tests -prune -o -path ./node_modules -prune -o -type f -print) | while read -r f; do
  mkdir -p "$site/$(dirname "$f")" && cp "demo-site/$f" "$site/$f"
done
cp -r npm/dist/. "$site/sdk/"
cp "$model/recommender.fsb" "$model/intent.fsb" "$site/models/"
python3 - "$model" "$site" "$collector_port" <<'EOF'
import json, sys
model, site, collector_port = sys.argv[1], sys.argv[2], sys.argv[3]
catalog = json.load(open(f"{model}/catalog.json"))["items"]
titles = json.load(open(f"{model}/titles.json"))["items"]
films = []
for c, t in zip(catalog, titles):
    assert c["id"] == t["id"], (c["id"], t["id"])
    films.append({"id": c["id"], "title": t.get("title") or f"Film {c['id']}", "year": t.get("year"),
                  "genres": t.get("genres") or [], "price": c.get("price"), "popularity": c.get("popularity", 0)})
json.dump({"items": films}, open(f"{site}/data/films.json", "w"))
runtime = {
    "publicKey": open(f"{model}/demo.pub").read().strip(),
    "collector": {"url": f"http://127.0.0.1:{collector_port}/v1/reports", "site": "demo-shop", "key": "demo-key"},
    "bundles": ["/models/recommender.fsb", "/models/intent.fsb"],
}
json.dump(runtime, open(f"{site}/data/runtime.json", "w"), indent=2)
EOF
log "$site/ ready: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$site/data/films.json") films"
$build_only && exit 0

mkdir -p target/demo-data
"$bin" collect --addr "127.0.0.1:$collector_port" --db "sqlite:target/demo-data/collector.db" \
  --site demo-shop=demo-key --allow-origin "http://127.0.0.1:$port" --allow-origin "http://localhost:$port" &
collector=$!
python3 -m http.server --bind 127.0.0.1 --directory "$site" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $collector $server 2>/dev/null || true' EXIT INT TERM
sleep 1
kill -0 $collector 2>/dev/null || { echo "[demo] the collector did not start (port $collector_port in use?)" >&2; exit 1; }
kill -0 $server 2>/dev/null || { echo "[demo] the static server did not start (port $port in use?)" >&2; exit 1; }
echo
echo "  Foresight film store:   http://127.0.0.1:${port}/"
echo "  Collector (SQLite):     http://127.0.0.1:${collector_port}/v1/health"
echo "  What it has received:   $bin aggregates --db sqlite:target/demo-data/collector.db --site demo-shop --catalog $model/catalog.json"
echo "  Stop with Ctrl-C."
echo
wait
