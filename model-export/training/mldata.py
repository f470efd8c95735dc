"""MovieLens-100K loading shared by train_recommender.py and train_intent.py.

The data comes from RecBole's atomic files (PyPI wheel recbole==1.2.1,
recbole/dataset_example/ml-100k/), put in data/ml-100k/ by scripts/fetch-data.sh:

    ml-100k.inter  user_id:token  item_id:token  rating:float  timestamp:float
    ml-100k.item   item_id:token  movie_title:token_seq  release_year:token  class:token_seq

Its licence forbids redistribution: nothing derived from it row by row (the data, the
catalog, trained weights) is committed; everything lands in model-export/training/out/,
which is git-ignored.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_DATA = REPO / "data" / "ml-100k"
DEFAULT_OUT = HERE / "out"


def read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    """Reads a RecBole atomic file: a TSV whose header cells are `name:type`."""
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: run scripts/fetch-data.sh (it takes MovieLens-100K from the "
            "recbole==1.2.1 wheel into data/ml-100k/)"
        )
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = [h.split(":", 1)[0] for h in rows[0]]
    return header, [r for r in rows[1:] if r]


def price_for_year(year: int | None) -> float:
    """A made-up but documented shop price: MovieLens has no prices.

    Tiered by release year, the way a video shop prices back catalogue vs new releases:
    unknown year 9.99; before 1970 4.99; 1970-1989 7.99; 1990-1995 12.99; 1996 and later
    17.99 (the data ends in April 1998, so these were the new releases).
    """
    if year is None:
        return 9.99
    if year < 1970:
        return 4.99
    if year < 1990:
        return 7.99
    if year < 1996:
        return 12.99
    return 17.99


@dataclass
class MovieLens:
    item_ids: list[str]                       # catalog order: model index i == item_ids[i]
    category: list[str]                       # first genre token of `class` (listed alphabetically)
    year: list[int | None]
    price: list[float]
    index: dict[str, int]                     # ml item id -> model index
    # per user (sorted by user id), time-ordered: (item index, rating, timestamp in seconds)
    users: list[str] = field(default_factory=list)
    seqs: list[np.ndarray] = field(default_factory=list)      # int64 item indices
    ratings: list[np.ndarray] = field(default_factory=list)   # float32
    times: list[np.ndarray] = field(default_factory=list)     # int64 seconds

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def load(data_dir: Path = DEFAULT_DATA) -> MovieLens:
    header, rows = read_atomic(data_dir / "ml-100k.item")
    col = {h: i for i, h in enumerate(header)}
    items = sorted(rows, key=lambda r: int(r[col["item_id"]]))
    item_ids = [r[col["item_id"]] for r in items]
    category = []
    year: list[int | None] = []
    for r in items:
        genres = r[col["class"]].split()
        category.append(genres[0] if genres else "unknown")
        y = r[col["release_year"]].strip()
        year.append(int(y) if y.isdigit() else None)
    price = [price_for_year(y) for y in year]
    index = {iid: i for i, iid in enumerate(item_ids)}

    header, rows = read_atomic(data_dir / "ml-100k.inter")
    col = {h: i for i, h in enumerate(header)}
    per_user: dict[str, list[tuple[int, int, int, float]]] = {}
    for pos, r in enumerate(rows):
        u = r[col["user_id"]]
        per_user.setdefault(u, []).append(
            (int(float(r[col["timestamp"]])), pos, index[r[col["item_id"]]], float(r[col["rating"]]))
        )
    ml = MovieLens(item_ids, category, year, price, index)
    for u in sorted(per_user, key=int):
        # Time order; many ratings share a second, ties keep the file's order (a stable sort,
        # as RecBole does).
        evs = sorted(per_user[u], key=lambda e: (e[0], e[1]))
        ml.users.append(u)
        ml.seqs.append(np.array([e[2] for e in evs], dtype=np.int64))
        ml.ratings.append(np.array([e[3] for e in evs], dtype=np.float32))
        ml.times.append(np.array([e[0] for e in evs], dtype=np.int64))
    return ml


def write_catalog(ml: MovieLens, popularity: np.ndarray, path: Path) -> None:
    """{"items": [{"id", "category", "price", "popularity"}]}, index i == model index i."""
    items = [
        {"id": ml.item_ids[i], "category": ml.category[i], "price": ml.price[i], "popularity": int(popularity[i])}
        for i in range(ml.n_items)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write('{\n  "items": [\n')
        f.write(",\n".join("    " + json.dumps(it) for it in items))
        f.write("\n  ]\n}\n")


def machine_info() -> dict:
    import os
    import platform

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions(*modules: str) -> dict:
    import importlib

    out = {}
    for m in modules:
        try:
            out[m] = importlib.import_module(m).__version__
        except Exception:  # noqa: BLE001 - informational only
            out[m] = "not installed"
    return out
