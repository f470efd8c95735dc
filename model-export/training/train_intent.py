#!/usr/bin/env python3
"""Reference training pipeline for Foresight's intent model, on MovieLens-100K (a proxy).

    .venv-train/bin/python model-export/training/train_intent.py

MovieLens has ratings, not shopping sessions or purchases, so the label is a **proxy**, and
the AUCs below say how well the SDK's features predict *that proxy*, not purchases:

- every rating is turned into a `product_view` event at the rating's timestamp, with the
  movie's first genre as `category` and the catalog's made-up price (mldata.price_for_year);
  no other event types exist in this data, so the cart, search, click, dwell and purchase
  features are always 0;
- each scoring situation gives the feature CLI what the SDK's event log would hold at that
  moment: the user's events of the last 30 days (the store's TTL), at most the last 1000
  (its max_events); the CLI splits them into sessions with the SDK's 30-minute gap;
- labels (`--label`):
  - `return7d` (default): scored 1 minute after the last event of each session; positive if
    the user starts another session within 7 days of that moment. Sessions ending less than
    7 days before the end of the data without a later session are dropped (unknown label).
  - `like_next`: scored in the middle of a session (up to 3 random cut points per session of
    >= 2 items, `now` = the time of the last seen rating); positive if the next item the
    user rates gets >= 4 stars.

The feature vector is defined once, in Rust: this script never computes a feature. It writes
the sessions as JSON lines and runs `cargo run -q -p foresight-export -- features`
(FORESIGHT_EXPORT=/path/to/foresight-export to use a prebuilt binary instead).

Users are split 80/20 (seeded) into training and held-out users; a LightGBM classifier
(onnxmltools -> TreeEnsembleClassifier, zipmap off) and a logistic regression (skl2onnx ->
LinearClassifier, zipmap off) are trained on the same features and evaluated by AUC on the
held-out users, from the onnxruntime outputs. Writes out/intent_<label>_lgbm.onnx,
out/intent_<label>_logreg.onnx, their reference JSON, out/intent_<label>_results.json and the
intent section of results.md.

Real baskets: `--data tafeng` or `--data instacart` (data/<name>/interactions.csv from
scripts/fetch-data.sh), label `buy_again_<N>d` (`--days N`, default 7):

- each basket becomes an `add_to_cart` per line (quantity 1; Ta Feng adds the item's subclass as
  `category` and its median unit price as `price`; Instacart's sample has neither) 1 s apart, then
  one `purchase` with the basket's lines 1 s after the last: one SDK session per basket. Instacart
  orders placed on the same day as the previous one (laid out at the same second) are moved to
  1 hour after it. Purchases over the SDK's 4096-byte event limit keep the lines that fit;
- scoring moment: 1 minute after each purchase, with the log the store would hold (30-day TTL,
  1000 events, 256 KiB); positive if the customer's next basket is at most N days later
  (Ta Feng: calendar days; Instacart: days_since_prior_order). A customer's last basket is dropped
  when the data end less than N days after it; on Ta Feng, whose end is a real calendar end, every
  moment less than N days before it is dropped (keeping the positives there would select on the
  outcome);
- split: Ta Feng by time and customer (train on 80% of customers' moments from day 30, whose
  label window closes before `--cut` and misses the missing-data days 2000-12-19..25; evaluate on
  the other 20%'s moments from `--cut` on); Instacart by customer (its calendar is rebuilt
  backwards from a common end, so a date cut would not be real);
- LightGBM's tree count by 5-fold CV log loss grouped by customer; held-out AUC (with a customer
  bootstrap 95% interval), log loss, Brier, ECE (10 equal-width bins) and a reliability table from
  onnxruntime, beside a base-rate and two logistic-regression baselines (days_since_prior_session;
  prior_sessions + prior_purchases + days_since_prior_session). Writes
  out/intent_<data>_buy_again_<N>d_{lgbm,logreg}.onnx (+ .reference.json), _results.json and
  a markdown section out/intent_<data>_buy_again_<N>d.md; never results.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mldata  # noqa: E402

GAP_MS = 30 * 60_000          # StoreConfig::default().session_gap_minutes
TTL_MS = 30 * 86_400_000      # StoreConfig::default().ttl_days
MAX_EVENTS = 1000             # StoreConfig::default().max_events
RETURN_DAYS = 7
DAY_MS = 86_400_000


def sessions_of(times_ms: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of sessions, split like the SDK's store (gap > 30 min).
    Only used to choose scoring moments; the CLI does its own split for the features."""
    cuts = np.where(np.diff(times_ms) > GAP_MS)[0] + 1
    edges = [0, *cuts.tolist(), len(times_ms)]
    return list(zip(edges[:-1], edges[1:]))


def event(ml: mldata.MovieLens, item: int, at_ms: int) -> dict:
    return {"at": at_ms, "type": "product_view", "itemId": ml.item_ids[item],
            "category": ml.category[item], "price": ml.price[item]}


def log_before(ml, seq, times_ms, upto: int, now: int) -> list[dict]:
    """Events 0..upto-1 that the SDK's store would still hold at `now`."""
    lo = int(np.searchsorted(times_ms, now - TTL_MS, side="left"))
    lo = max(lo, upto - MAX_EVENTS)
    return [event(ml, int(seq[i]), int(times_ms[i])) for i in range(lo, upto)]


def scoring_situations(ml: mldata.MovieLens, label: str, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    data_end = max(int(t.max()) for t in ml.times) * 1000
    out = []
    for u, (seq, ratings, times) in enumerate(zip(ml.seqs, ml.ratings, ml.times)):
        t_ms = times * 1000
        sess = sessions_of(t_ms)
        for j, (a, b) in enumerate(sess):
            if label == "return7d":
                end = int(t_ms[b - 1])
                now = end + 60_000
                if j + 1 < len(sess):
                    returned = int(t_ms[sess[j + 1][0]]) - now <= RETURN_DAYS * DAY_MS
                else:
                    returned = False
                if not returned and data_end - now < RETURN_DAYS * DAY_MS:
                    continue  # censored: the data ends before we could see a return
                out.append({"user": u, "now": now, "y": int(returned), "events": log_before(ml, seq, t_ms, b, now)})
            else:
                if b - a < 2:
                    continue
                cuts = rng.choice(np.arange(a + 1, b), size=min(3, b - a - 1), replace=False)
                for c in sorted(cuts.tolist()):
                    now = int(t_ms[c - 1])
                    out.append({"user": u, "now": now, "y": int(ratings[c] >= 4),
                                "events": log_before(ml, seq, t_ms, c, now)})
    return out


def features_from_rust(situations: list[dict]) -> tuple[list[str], np.ndarray]:
    """Feature vectors from the SDK's own code, via the CLI."""
    lines = (json.dumps({"now": s["now"], "events": s["events"]}, separators=(",", ":")) for s in situations)
    return features_from_lines(lines, len(situations))


def features_from_lines(lines, expected: int) -> tuple[list[str], np.ndarray]:
    """Runs `foresight-export features` on JSON lines `{"now": ms, "events": [...]}`."""
    exe = os.environ.get("FORESIGHT_EXPORT")
    cmd = shlex.split(exe) if exe else ["cargo", "run", "-q", "-p", "foresight-export", "--"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sessions.jsonl"
        with src.open("w") as f:
            for line in lines:
                f.write(line + "\n")
        dst = Path(tmp) / "features.csv"
        t0 = time.perf_counter()
        r = subprocess.run(cmd + ["features", "--input", str(src), "--output", str(dst)],
                           cwd=mldata.REPO, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} features failed ({r.returncode}):\n{r.stderr}")
        rows = list(csv.reader(io.StringIO(dst.read_text())))
        print(f"features: {len(rows) - 1} vectors from `{' '.join(cmd)} features` "
              f"({src.stat().st_size / 1e6:.1f} MB of JSON lines, {time.perf_counter() - t0:.1f} s)", flush=True)
    names = rows[0]
    x = np.array(rows[1:], dtype=np.float32)
    assert x.shape == (expected, len(names)), x.shape
    return names, x


def ort_probabilities(proto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["probabilities"], {"features": x})[0]


def exact_float32_thresholds(proto, booster) -> int:
    """Makes the ONNX trees split exactly like LightGBM.

    LightGBM compares `x <= t` with a double threshold t; the ONNX TreeEnsemble stores t as
    float32, and onnxmltools rounds it to the *nearest* float32. When that rounds up, an input
    equal to the rounded value goes left in ONNX and right in LightGBM (seen here: up to 3e-3
    in probability, on `mean_price_viewed`, whose values are dense). Rounding t *down* to a
    float32 instead gives x <= floor32(t) <=> x <= t for every float32 x, i.e. the same
    decisions. Returns how many thresholds changed."""
    from onnx import helper

    exact: dict[tuple[int, np.float32], float] = {}

    def walk(node):
        if "split_feature" in node:
            t = float(node["threshold"])
            exact[(int(node["split_feature"]), np.float32(t))] = t
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    moved = 0
    for nd in proto.graph.node:
        if nd.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in nd.attribute}
        modes = [m.decode() if isinstance(m, bytes) else m for m in helper.get_attribute_value(attrs["nodes_modes"])]
        feats = list(attrs["nodes_featureids"].ints)
        vals = list(attrs["nodes_values"].floats)
        for i, (mode, f, v) in enumerate(zip(modes, feats, vals)):
            if mode != "BRANCH_LEQ":
                continue
            t = exact.get((f, np.float32(v)))
            if t is None:
                continue
            down = np.float32(t)
            if float(down) > t:
                down = np.nextafter(down, np.float32(-np.inf))
            if down != np.float32(v):
                vals[i] = float(down)
                moved += 1
        del attrs["nodes_values"].floats[:]
        attrs["nodes_values"].floats.extend(vals)
    return moved


def sig7(x: float) -> float:
    return float(f"{x:.7g}")


def to_onnx(lgbm, logreg, n: int, xte: np.ndarray):
    """Both models as ONNX (zipmap off), the LightGBM thresholds rounded down to float32 so the
    graph splits as LightGBM does; the largest |onnxruntime − LightGBM| before that, and the
    count of thresholds moved."""
    import onnxmltools
    import skl2onnx
    from onnxmltools.convert.common.data_types import FloatTensorType

    lgbm_onnx = onnxmltools.convert_lightgbm(lgbm, initial_types=[("features", FloatTensorType([None, n]))],
                                             zipmap=False, target_opset=15)
    p_lib = lgbm.predict_proba(xte)
    before = float(np.abs(ort_probabilities(lgbm_onnx, xte) - p_lib).max())
    moved = exact_float32_thresholds(lgbm_onnx, lgbm.booster_)
    after = float(np.abs(ort_probabilities(lgbm_onnx, xte) - p_lib).max())
    print(f"lightgbm -> onnx: max |onnxruntime - lightgbm| {before:.1e} with onnxmltools' thresholds, "
          f"{after:.1e} after rounding {moved} thresholds down to float32", flush=True)
    lr_onnx = skl2onnx.to_onnx(logreg, initial_types=[("features", skl2onnx.common.data_types.FloatTensorType([None, n]))],
                               options={id(logreg): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    return lgbm_onnx, lr_onnx, before, moved


def write_reference(out: Path, model: Path, names: list[str], xte: np.ndarray, sess) -> None:
    """Reference cases for runtimes (tract) to reproduce: the first 8 held-out rows."""
    cases = [{"features": [sig7(v) for v in row], "probabilities": [sig7(v) for v in pr]}
             for row, pr in zip(xte[:8], sess.run(["probabilities"], {"features": xte[:8]})[0])]
    out.write_text(json.dumps({"model": model.name, "feature_names": names, "cases": cases}, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="movielens",
                    help="movielens (default), tafeng, instacart, or the path of a MovieLens-100K directory")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="tafeng/instacart: directory with interactions.csv (default data/<name>)")
    ap.add_argument("--out", type=Path, default=mldata.DEFAULT_OUT)
    ap.add_argument("--results", type=Path, default=mldata.HERE / "results.md",
                    help="MovieLens only; the shop data sets write out/intent_<data>_<label>.md instead")
    ap.add_argument("--label", choices=["return7d", "like_next", "buy_again"], default=None,
                    help="MovieLens: return7d (default) or like_next; tafeng/instacart: buy_again (the only one)")
    ap.add_argument("--days", type=int, default=7, help="buy_again: the N of 'buys again within N days'")
    ap.add_argument("--cut", default=SHOP_CUT["tafeng"],
                    help="tafeng: the time split's cut date (UTC, YYYY-MM-DD)")
    ap.add_argument("--threads", type=int, default=None, help="LightGBM threads (MovieLens 2, shop data 1)")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if args.data in SHOP_DATA:
        if args.label not in (None, "buy_again"):
            ap.error(f"--data {args.data} has only --label buy_again")
        return shop_main(args)
    if args.label == "buy_again":
        ap.error("--label buy_again needs --data tafeng or instacart")
    args.label = args.label or "return7d"
    args.data = mldata.DEFAULT_DATA if args.data == "movielens" else Path(args.data)

    import lightgbm
    import onnx
    import onnxmltools
    import onnxruntime as ort
    import skl2onnx
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    t_all = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    ml = mldata.load(args.data)
    sit = scoring_situations(ml, args.label, args.seed)
    y = np.array([s["y"] for s in sit], dtype=np.int64)
    users = np.array([s["user"] for s in sit])
    print(f"label {args.label}: {len(sit)} scoring situations, {y.mean():.1%} positive, "
          f"{sum(len(s['events']) for s in sit)} events in total", flush=True)
    names, x = features_from_rust(sit)

    rng = np.random.default_rng(args.seed)
    held_out_users = set(rng.choice(len(ml.users), size=len(ml.users) // 5, replace=False).tolist())
    test = np.array([u in held_out_users for u in users])
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    print(f"split by user: {len(ml.users) - len(held_out_users)} training users ({len(ytr)} rows), "
          f"{len(held_out_users)} held-out users ({len(yte)} rows)", flush=True)
    constant = [n for n, c in zip(names, x.T) if np.all(c == c[0])]

    # Number of trees by 5-fold cross-validation grouped by user (training users only).
    from sklearn.model_selection import GroupKFold

    params = dict(objective="binary", learning_rate=0.03, num_leaves=15, min_child_samples=30,
                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                  seed=args.seed, num_threads=2, verbose=-1, deterministic=True, force_row_wise=True)
    folds = list(GroupKFold(n_splits=5).split(xtr, ytr, groups=users[~test]))
    cv = lightgbm.cv({**params, "metric": "auc"}, lightgbm.Dataset(xtr, ytr), num_boost_round=400,
                     folds=folds, stratified=False)
    cv_auc = np.array(cv["valid auc-mean"])
    best_iter = int(cv_auc.argmax()) + 1
    print(f"lightgbm 5-fold CV (grouped by user): best {best_iter} trees, CV AUC {cv_auc.max():.4f}", flush=True)
    lgbm = lightgbm.LGBMClassifier(n_estimators=best_iter, learning_rate=params["learning_rate"],
                                   num_leaves=params["num_leaves"], min_child_samples=params["min_child_samples"],
                                   subsample=params["subsample"], subsample_freq=1,
                                   colsample_bytree=params["colsample_bytree"], reg_lambda=params["reg_lambda"],
                                   random_state=args.seed, n_jobs=2, verbose=-1, deterministic=True,
                                   force_row_wise=True)
    lgbm.fit(xtr, ytr)
    logreg = LogisticRegression(C=1.0, max_iter=5000)
    logreg.fit(xtr, ytr)

    lgbm_onnx, lr_onnx, before, moved = to_onnx(lgbm, logreg, len(names), xte)
    res = {"label": args.label, "rows": len(sit), "positive_rate": float(y.mean()),
           "train_rows": int(len(ytr)), "test_rows": int(len(yte)), "held_out_users": len(held_out_users),
           "feature_names": names, "constant_features": constant, "models": {},
           "versions": mldata.versions("lightgbm", "sklearn", "onnxmltools", "skl2onnx", "onnx", "onnxruntime", "numpy"),
           "machine": mldata.machine_info()}
    for key, model, proto in [("lgbm", lgbm, lgbm_onnx), ("logreg", logreg, lr_onnx)]:
        proto.graph.name = f"intent_{args.label}_{key}"  # onnxmltools' default is a random UUID
        path = args.out / f"intent_{args.label}_{key}.onnx"
        path.write_bytes(proto.SerializeToString())
        onnx.checker.check_model(str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs = [o.name for o in sess.get_outputs()]
        assert outs == ["label", "probabilities"], outs
        p_ort = sess.run(["probabilities"], {"features": xte})[0]
        p_lib = model.predict_proba(xte)
        auc_ort = roc_auc_score(yte, p_ort[:, 1])
        auc_lib = roc_auc_score(yte, p_lib[:, 1])
        auc_train = roc_auc_score(ytr, sess.run(["probabilities"], {"features": xtr})[0][:, 1])
        m = onnx.load(str(path))
        info = {
            "onnx": path.name, "bytes": path.stat().st_size,
            "ops": sorted({nd.op_type for nd in m.graph.node}),
            "opsets": {o.domain or "ai.onnx": o.version for o in m.opset_import},
            "auc_heldout_onnxruntime": auc_ort, "auc_heldout_library": auc_lib, "auc_train": auc_train,
            "max_abs_ort_vs_library": float(np.abs(p_ort - p_lib).max()),
        }
        if key == "lgbm":
            info["trees"] = int(lgbm.booster_.num_trees())
            info["cv_auc"] = float(cv_auc.max())
            info["max_abs_before_threshold_fix"] = before
            info["thresholds_rounded_down"] = moved
            info["params"] = {k: v for k, v in lgbm.get_params().items()
                              if k in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "subsample",
                                       "colsample_bytree", "reg_lambda")}
        else:
            info["coefficients"] = {nm: float(c) for nm, c in zip(names, logreg.coef_[0])}
            info["intercept"] = float(logreg.intercept_[0])
        res["models"][key] = info
        write_reference(args.out / f"intent_{args.label}_{key}.reference.json", path, names, xte, sess)
        print(f"{key}: held-out AUC {auc_ort:.4f} (onnxruntime; library {auc_lib:.4f}), train AUC {auc_train:.4f}, "
              f"|onnxruntime - library| <= {info['max_abs_ort_vs_library']:.1e}, {path.name} {info['bytes']} bytes", flush=True)
    res["total_seconds"] = time.perf_counter() - t_all
    (args.out / f"intent_{args.label}_results.json").write_text(json.dumps(res, indent=1) + "\n")
    write_section(res, args.results)
    print(f"wrote {args.results} and {args.out}/ in {res['total_seconds']:.0f} s")
    return 0


LABEL_DOC = {
    "return7d": "scored 1 minute after the last event of a session; positive = the user starts another "
                "session within 7 days (sessions ending < 7 days before the data's end without a later "
                "session are dropped as censored)",
    "like_next": "scored mid-session (up to 3 random cut points per session of >= 2 items, `now` = time of "
                 "the last seen rating); positive = the next item the user rates gets >= 4 stars",
}


def write_section(res: dict, results: Path) -> None:
    """Keeps one subsection per label under '# Intent model' in results.md."""
    marker = "# Intent model"
    text = results.read_text() if results.exists() else ""
    head, intent = (text[: text.index(marker)], text[text.index(marker):]) if marker in text else (text, "")
    sub = f"## Label `{res['label']}`"
    parts = {}
    if intent:
        for chunk in intent.split("\n## Label ")[1:]:
            name = chunk.split("`")[1]
            parts[name] = "## Label " + chunk.rstrip() + "\n"
    m = res["models"]
    lines = [
        sub,
        "",
        f"- {LABEL_DOC[res['label']]}",
        f"- {res['rows']} scoring situations, {res['positive_rate']:.1%} positive; split by user: "
        f"{res['train_rows']} training rows, {res['test_rows']} rows of {res['held_out_users']} held-out users",
        f"- constant in this data set: {', '.join('`' + c + '`' for c in res['constant_features'])}",
        f"- LightGBM: {m['lgbm']['trees']} trees chosen by 5-fold cross-validation grouped by user (CV AUC "
        f"{m['lgbm']['cv_auc']:.4f}), learning rate {m['lgbm']['params']['learning_rate']}, "
        f"{m['lgbm']['params']['num_leaves']} leaves; {m['lgbm']['thresholds_rounded_down']} split thresholds "
        f"rounded down to float32 after conversion (max |onnxruntime − LightGBM| "
        f"{m['lgbm']['max_abs_before_threshold_fix']:.1e} with onnxmltools' nearest rounding, "
        f"{m['lgbm']['max_abs_ort_vs_library']:.1e} after); logistic regression: scikit-learn, C = 1, "
        "no scaling (the features are already log1p-squashed)",
        "",
        "| model | held-out AUC (onnxruntime) | held-out AUC (library) | train AUC | ONNX | max \\|onnxruntime − library\\| |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for key, label in [("lgbm", f"LightGBM ({m['lgbm']['trees']} trees)"), ("logreg", "logistic regression")]:
        i = m[key]
        lines.append(f"| {label} | {i['auc_heldout_onnxruntime']:.4f} | {i['auc_heldout_library']:.4f} | "
                     f"{i['auc_train']:.4f} | `out/{i['onnx']}`, {i['bytes'] / 1024:.1f} KiB, "
                     f"{', '.join(i['ops'])} | {i['max_abs_ort_vs_library']:.1e} |")
    top = sorted(m["logreg"]["coefficients"].items(), key=lambda kv: -abs(kv[1]))[:5]
    lines += ["", "Largest logistic-regression weights: " + ", ".join(f"`{k}` {v:+.2f}" for k, v in top) + ".", ""]
    parts[res["label"]] = "\n".join(lines)
    v = res["versions"]
    intro = [
        marker,
        "",
        "Written by `train_intent.py` (one subsection per `--label`; re-run it to update).",
        "",
        "**The labels are proxies.** MovieLens has ratings, not shopping sessions: every rating becomes a "
        "`product_view` event (first genre as category, the catalog's made-up price), so the cart, search, "
        "click, dwell and purchase features are always 0 here, and the AUCs measure how well the "
        "SDK's features predict the proxy, not purchases. Feature vectors come from the Rust CLI "
        "(`foresight-export features`), given what the SDK's log would hold at the scoring moment (events "
        "of the last 30 days, at most 1000, sessions split at 30-minute gaps).",
        "",
        "Held-out AUCs are computed from onnxruntime's outputs on the exported models; the users are "
        "split 80/20 with a fixed seed, so with ~190 held-out users they move by a few hundredths "
        "with the seed.",
        "",
        f"Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + f"; {res['machine']['cpu']}.",
        "",
    ]
    body = "\n".join(intro) + "\n" + "\n".join(parts[k].rstrip() + "\n" for k in sorted(parts))
    results.write_text((head.rstrip() + "\n\n" if head.strip() else "") + body)


# ---------------------------------------------------------------------------------------------
# Ta Feng and Instacart: real baskets (`--data tafeng|instacart`, label `buy_again_<N>d`).

SHOP_DATA = ("tafeng", "instacart")
SHOP_CUT = {"tafeng": "2001-02-01"}
TAFENG_MISSING_DAYS = ("2000-12-19", "2000-12-25")
MAX_EVENT_BYTES = 4096        # sdk/src/capture.rs: the largest event `track` accepts, as JSON
MAX_STORE_BYTES = 256 * 1024  # StoreConfig::default().max_bytes
PURCHASE_AFTER_MS = 1_000     # the purchase event follows the basket's last add_to_cart
SCORE_AFTER_MS = 60_000       # scoring moment: 1 minute after the purchase
SAME_DAY_SHIFT_MS = 60 * 60_000
RF_BASELINE = "logistic regression on prior_sessions, prior_purchases, days_since_prior_session"


def load_baskets(name: str, data_dir: Path):
    """user -> [(first timestamp in s, [item ids in add-to-cart order], basket id)] in time order,
    and item -> (category, price) where the data set has them (Ta Feng only)."""
    baskets: dict[str, dict] = {}
    with (data_dir / "interactions.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            b = baskets.setdefault(r["basket"], {"user": r["user_id"], "rows": []})
            b["rows"].append((int(r["timestamp"]), r["item_id"]))
    per_user: dict[str, list] = {}
    for bid, b in baskets.items():
        rows = sorted(b["rows"])
        # Instacart basket ids are "<user>-<order_number>": the order number breaks ties
        # between same-day orders (laid out at the same second by shop_data.py).
        order = int(bid.rsplit("-", 1)[1]) if name == "instacart" else 0
        per_user.setdefault(b["user"], []).append((rows[0][0], order, [it for _, it in rows], bid))
    users = {u: [(t, items, bid) for t, _, items, bid in sorted(v)] for u, v in per_user.items()}
    meta: dict[str, tuple] = {}
    items_csv = data_dir / "items.csv"
    if items_csv.exists():
        with items_csv.open(newline="") as f:
            for r in csv.DictReader(f):
                cat = (r.get("category") or "").strip() or None
                price = float(r["price"]) if (r.get("price") or "").strip() else None
                meta[r["item_id"]] = (cat, price)
    return users, meta


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def basket_events(items: list[str], start_ms: int, meta: dict, stats: dict) -> list[tuple[int, str, int]]:
    """One add_to_cart per line (1 s apart, quantity 1, category and price where known), then
    one purchase with the basket's lines. Returns (at, event JSON with `at`, stored bytes)."""
    out = []
    lines: dict[str, list] = {}
    for k, item in enumerate(items):
        cat, price = meta.get(item, (None, None))
        ev = {"type": "add_to_cart", "itemId": item, "quantity": 1}
        if cat is not None:
            ev["category"] = cat
        if price is not None:
            ev["price"] = price
        out.append((start_ms + 1000 * k, ev))
        line = lines.setdefault(item, [0, price])
        line[0] += 1
    plines = [{"itemId": i, "quantity": q, **({"price": p} if p is not None else {})} for i, (q, p) in lines.items()]
    purchase = {"type": "purchase", "items": plines}
    if any(p is not None for _, p in lines.values()):
        purchase["total"] = round(sum(q * p for q, p in lines.values() if p is not None), 2)
    # The SDK rejects events over 4096 bytes of JSON; a real page would have to cut the lines
    # too. Only the count of purchase events is a feature, so the lines' content does not matter.
    if len(compact(purchase)) > MAX_EVENT_BYTES - 64:
        stats["purchases_truncated"] += 1
        while len(compact(purchase)) > MAX_EVENT_BYTES - 64:
            plines.pop()
    out.append((start_ms + 1000 * (len(items) - 1) + PURCHASE_AFTER_MS, purchase))
    res = []
    for at, ev in out:
        text = compact(ev)
        res.append((at, '{"at":%d,%s' % (at, text[1:]), len(text) + 40))  # ~ the store's JSON per event
    return res


def shop_situations(name: str, users: dict, meta: dict, days: int, stats: dict):
    """Scoring moments (1 min after each purchase), their labels, and the JSON line the feature
    CLI reads for each: the events the SDK's store would hold at that moment."""
    real_end = name == "tafeng"
    end_s = max(b[-1][0] for b in users.values())
    start_s = min(b[0][0] for b in users.values())
    rows = []   # dicts: user, day (from the data's start), now, y
    lines = []
    for u, baskets in users.items():
        ats, texts, sizes, purchase_at = [], [], [], []
        prev_end = None
        for first_s, items, _ in baskets:
            start_ms = first_s * 1000
            if prev_end is not None and start_ms <= prev_end + GAP_MS:
                # Instacart orders placed on the same day (days_since_prior_order = 0) are laid
                # out at the same second; put the later one an hour after the earlier, so that
                # each order stays one SDK session.
                start_ms = prev_end + SAME_DAY_SHIFT_MS
                stats["same_day_orders_shifted"] += 1
            evs = basket_events(items, start_ms, meta, stats)
            for at, t, n in evs:
                ats.append(at)
                texts.append(t)
                sizes.append(n)
            purchase_at.append(len(ats))   # events [0, this) are logged once the purchase is
            prev_end = evs[-1][0]
        ats_a = np.array(ats, dtype=np.int64)
        csize = np.concatenate([[0], np.cumsum(sizes)])
        for j, (first_s, _, _) in enumerate(baskets):
            day = (first_s - start_s) / 86_400
            if j + 1 < len(baskets):
                gap = round((baskets[j + 1][0] - first_s) / 86_400)
                y = int(gap <= days)
            else:
                y = 0
            follow_up = (end_s - first_s) / 86_400
            if j + 1 == len(baskets) and follow_up < days:
                stats["dropped_unknown"] += 1     # no later basket, and the data ends too soon to tell
                continue
            if real_end and follow_up < days:
                # Ta Feng's end is a real calendar end: moments within N days of it have a label
                # only when positive; keeping those would select on the outcome, so drop them all.
                stats["dropped_short_follow_up"] += 1
                continue
            hi = purchase_at[j]
            now = int(ats_a[hi - 1]) + SCORE_AFTER_MS
            lo = int(np.searchsorted(ats_a, now - TTL_MS, side="left"))   # the store drops at < now - TTL
            lo = max(lo, hi - MAX_EVENTS)
            while lo < hi - 1 and (csize[hi] - csize[lo]) + (hi - lo) + 32 > MAX_STORE_BYTES:
                lo += 1
                stats["evicted_for_bytes"] += 1
            rows.append({"user": u, "day": day, "now": now, "y": y, "events": hi - lo})
            lines.append('{"now":%d,"events":[%s]}' % (now, ",".join(texts[lo:hi])))
    return rows, lines, start_s, end_s


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            mp, obs = float(p[m].mean()), float(y[m].mean())
            ece += m.sum() / len(y) * abs(mp - obs)
            table.append({"bin": f"[{b / bins:.1f}, {(b + 1) / bins:.1f}{']' if b == bins - 1 else ')'}",
                          "mean_predicted": mp, "observed": obs, "count": int(m.sum())})
    auc = float(roc_auc_score(y, p)) if len(set(p.tolist())) > 1 else 0.5
    return {"auc": auc, "log_loss": float(log_loss(y, p, labels=[0, 1])), "brier": float(brier_score_loss(y, p)),
            "ece10": float(ece), "mean_predicted": float(p.mean()), "reliability": table}


def auc_ci(y, p, groups, seed, n_boot=200, minus=None):
    """95% interval of the AUC (or, with `minus`, of AUC(p) - AUC(minus) on the same resamples)
    from resampling held-out customers (the unit that was sampled)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.where(inv == g)[0] for g in range(len(uniq))]
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        if y[idx].min() != y[idx].max():
            v = roc_auc_score(y[idx], p[idx])
            vals.append(v - roc_auc_score(y[idx], minus[idx]) if minus is not None else v)
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def shop_main(args) -> int:
    import lightgbm
    import onnx
    import onnxmltools
    import onnxruntime as ort
    import skl2onnx
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from collections import Counter
    from datetime import datetime, timezone

    t_all = time.perf_counter()
    name, days = args.data, args.days
    label = f"buy_again_{days}d"
    threads = args.threads or 1
    data_dir = args.data_dir or (mldata.REPO / "data" / name)
    args.out.mkdir(parents=True, exist_ok=True)
    users, meta = load_baskets(name, data_dir)
    stats = Counter()
    rows, lines, start_s, end_s = shop_situations(name, users, meta, days, stats)
    y = np.array([r["y"] for r in rows], dtype=np.int64)
    groups = np.array([r["user"] for r in rows])
    day = np.array([r["day"] for r in rows])
    n_baskets = sum(len(b) for b in users.values())
    print(f"{name}: {len(users)} customers, {n_baskets} baskets; label {label}: {len(rows)} scoring moments, "
          f"{y.mean():.1%} positive, {sum(r['events'] for r in rows)} logged events in total; {dict(stats)} "
          f"({time.perf_counter() - t_all:.1f} s)", flush=True)
    names, x = features_from_lines(iter(lines), len(rows))
    del lines

    rng = np.random.default_rng(args.seed)
    uniq = sorted(users)
    held = set(rng.choice(len(uniq), size=len(uniq) // 5, replace=False).tolist())
    held_out = np.array([i in held for i in range(len(uniq))])
    uidx = {u: i for i, u in enumerate(uniq)}
    test_user = held_out[np.array([uidx[g] for g in groups])]
    if name == "tafeng":
        cut_s = int(datetime.strptime(args.cut, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp())
        cut_day = (cut_s - (start_s - start_s % 86_400)) / 86_400
        day0 = start_s - start_s % 86_400
        warm = day >= TTL_MS / DAY_MS   # the log holds the 30 days the device would
        # Ta Feng has ~10% of the usual baskets on 2000-12-19..25 (missing data, not a real lull):
        # a label window over those days would be a false negative, so those moments don't train.
        gap_lo, gap_hi = ((int(datetime.strptime(d, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()) - day0)
                          / 86_400 for d in TAFENG_MISSING_DAYS)
        clean = ~((day + 1 <= gap_hi) & (day + days >= gap_lo))
        train = ~test_user & warm & clean & (day + days < cut_day)   # label window closed before the cut
        test = test_user & (day >= cut_day)
        stats["train_moments_over_missing_days"] = int((~test_user & warm & ~clean).sum())
        split = (f"time and customer: training = the 80% training customers' moments from day 30 (the "
                 f"store's TTL, so their logs are full) whose {days}-day label window closes before "
                 f"{args.cut} and misses the days with missing data ({TAFENG_MISSING_DAYS[0]} to "
                 f"{TAFENG_MISSING_DAYS[1]}); held out = the other 20% of customers' moments on or after {args.cut}")
    else:
        train, test = ~test_user, test_user
        split = ("customer: 80% of customers (seeded) for training, all moments of the other 20% held out "
                 "(Instacart's calendar is rebuilt backwards from a common end, so a calendar cut would "
                 "not be a real one)")
    xtr, ytr, xte, yte = x[train], y[train], x[test], y[test]
    print(f"split by {split}: {len(ytr)} training rows ({ytr.mean():.1%} positive), {len(yte)} held-out rows "
          f"({yte.mean():.1%} positive) of {len(set(groups[test]))} customers", flush=True)
    constant = [n for n, c in zip(names, x.T) if np.all(c == c[0])]

    params = dict(objective="binary", learning_rate=0.03, num_leaves=15, min_child_samples=30,
                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                  seed=args.seed, num_threads=threads, verbose=-1, deterministic=True, force_row_wise=True)
    t0 = time.perf_counter()
    folds = list(GroupKFold(n_splits=5).split(xtr, ytr, groups=groups[train]))
    # Trees chosen by CV log loss, not AUC: the probabilities themselves are used (calibration is
    # reported), and a model stopped at its best AUC is often still shrunk towards the base rate.
    cv = lightgbm.cv({**params, "metric": ["binary_logloss", "auc"]}, lightgbm.Dataset(xtr, ytr),
                     num_boost_round=600, folds=folds, stratified=False)
    cv_ll = np.array(cv["valid binary_logloss-mean"])
    best_iter = int(cv_ll.argmin()) + 1
    cv_auc = np.array(cv["valid auc-mean"])[: best_iter]
    lgbm = lightgbm.LGBMClassifier(n_estimators=best_iter, learning_rate=params["learning_rate"],
                                   num_leaves=params["num_leaves"], min_child_samples=params["min_child_samples"],
                                   subsample=params["subsample"], subsample_freq=1,
                                   colsample_bytree=params["colsample_bytree"], reg_lambda=params["reg_lambda"],
                                   random_state=args.seed, n_jobs=threads, verbose=-1, deterministic=True,
                                   force_row_wise=True)
    lgbm.fit(xtr, ytr)
    logreg = LogisticRegression(C=1.0, max_iter=5000).fit(xtr, ytr)
    fit_s = time.perf_counter() - t0
    print(f"lightgbm 5-fold CV (grouped by customer): {best_iter} trees by CV log loss ({cv_ll.min():.4f}), "
          f"CV AUC there {cv_auc[-1]:.4f}; "
          f"fitting {fit_s:.1f} s", flush=True)

    col = {n: i for i, n in enumerate(names)}
    baselines = {}
    base_rate = float(ytr.mean())
    baselines["base rate (training positive rate)"] = np.full(len(yte), base_rate)
    for title, feats in [("logistic regression on days_since_prior_session", ["days_since_prior_session"]),
                         (RF_BASELINE, ["prior_sessions", "prior_purchases", "days_since_prior_session"])]:
        cols = [col[f] for f in feats]
        m = LogisticRegression(C=1.0, max_iter=5000).fit(xtr[:, cols], ytr)
        baselines[title] = m.predict_proba(xte[:, cols])[:, 1]

    lgbm_onnx, lr_onnx, before, moved = to_onnx(lgbm, logreg, len(names), xte)
    res = {"data": name, "label": label, "days": days, "split": split, "customers": len(users), "baskets": n_baskets,
           "rows": len(rows), "positive_rate": float(y.mean()), "train_rows": int(len(ytr)),
           "train_positive_rate": base_rate, "test_rows": int(len(yte)), "test_positive_rate": float(yte.mean()),
           "test_customers": int(len(set(groups[test]))), "stats": dict(stats),
           "data_span": [datetime.fromtimestamp(start_s, timezone.utc).strftime("%Y-%m-%d"),
                         datetime.fromtimestamp(end_s, timezone.utc).strftime("%Y-%m-%d")],
           "feature_names": names, "constant_features": constant,
           "feature_means_test": {nm: float(v) for nm, v in zip(names, xte.mean(axis=0))},
           "models": {}, "baselines": {},
           "versions": mldata.versions("lightgbm", "sklearn", "onnxmltools", "skl2onnx", "onnx", "onnxruntime", "numpy"),
           "machine": mldata.machine_info()}
    gte = groups[test]
    for key, model, proto in [("lgbm", lgbm, lgbm_onnx), ("logreg", logreg, lr_onnx)]:
        stem = f"intent_{name}_{label}_{key}"
        proto.graph.name = stem
        path = args.out / f"{stem}.onnx"
        path.write_bytes(proto.SerializeToString())
        onnx.checker.check_model(str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
        p_ort = sess.run(["probabilities"], {"features": xte})[0]
        p_model = model.predict_proba(xte)
        info = calibration(yte, p_ort[:, 1])
        info["auc_ci95"] = auc_ci(yte, p_ort[:, 1], gte, args.seed)
        rf = baselines[RF_BASELINE]
        info["auc_minus_rf_baseline"] = info["auc"] - calibration(yte, rf)["auc"]
        info["auc_minus_rf_baseline_ci95"] = auc_ci(yte, p_ort[:, 1], gte, args.seed, minus=rf)
        info["auc_train"] = calibration(ytr, sess.run(["probabilities"], {"features": xtr})[0][:, 1])["auc"]
        info.update({"onnx": path.name, "bytes": path.stat().st_size,
                     "ops": sorted({nd.op_type for nd in onnx.load(str(path)).graph.node}),
                     "max_abs_ort_vs_library": float(np.abs(p_ort - p_model).max())})
        if key == "lgbm":
            info.update(trees=int(lgbm.booster_.num_trees()), cv_auc=float(cv_auc[-1]), cv_log_loss=float(cv_ll.min()),
                        max_abs_before_threshold_fix=before, thresholds_rounded_down=moved,
                        importance_gain={nm: float(g) for nm, g in zip(
                            names, lgbm.booster_.feature_importance("gain"))})
        else:
            info["coefficients"] = {nm: float(c) for nm, c in zip(names, logreg.coef_[0])}
            info["intercept"] = float(logreg.intercept_[0])
        res["models"][key] = info
        write_reference(args.out / f"{stem}.reference.json", path, names, xte, sess)
        print(f"{key}: held-out AUC {info['auc']:.4f} [{info['auc_ci95'][0]:.3f}, {info['auc_ci95'][1]:.3f}], "
              f"log loss {info['log_loss']:.4f}, Brier {info['brier']:.4f}, ECE {info['ece10']:.4f} (onnxruntime); "
              f"|onnxruntime - library| <= {info['max_abs_ort_vs_library']:.1e}; {path.name}", flush=True)
    for title, p in baselines.items():
        info = calibration(yte, p)
        if len(set(p.tolist())) > 1:
            info["auc_ci95"] = auc_ci(yte, p, gte, args.seed)
        res["baselines"][title] = info
        print(f"baseline {title}: AUC {info['auc']:.4f}, log loss {info['log_loss']:.4f}, "
              f"Brier {info['brier']:.4f}, ECE {info['ece10']:.4f}", flush=True)
    res["total_seconds"] = time.perf_counter() - t_all
    (args.out / f"intent_{name}_{label}_results.json").write_text(json.dumps(res, indent=1) + "\n")
    md = args.out / f"intent_{name}_{label}.md"
    md.write_text(shop_section(res))
    print(f"wrote {md} and {args.out}/intent_{name}_{label}_* in {res['total_seconds']:.0f} s")
    return 0


def shop_section(res: dict) -> str:
    m, b = res["models"], res["baselines"]
    lg = m["lgbm"]
    lines = [
        f"## {res['data']}: `{res['label']}`",
        "",
        f"- {res['customers']} customers, {res['baskets']} baskets ({res['data_span'][0]} to {res['data_span'][1]}"
        f"{', a calendar rebuilt from the gaps between orders' if res['data'] == 'instacart' else ''}); "
        f"{res['rows']} scoring moments (1 minute after each basket's purchase event), {res['positive_rate']:.1%} "
        f"positive = another basket within {res['days']} days",
        f"- split by {res['split']}: {res['train_rows']} training rows ({res['train_positive_rate']:.1%} positive), "
        f"{res['test_rows']} held-out rows ({res['test_positive_rate']:.1%} positive) of {res['test_customers']} customers",
        f"- dropped / adjusted: {', '.join(f'{k} {v}' for k, v in res['stats'].items())}",
        f"- constant in this data: {', '.join('`' + c + '`' for c in res['constant_features'])}",
        f"- LightGBM: {lg['trees']} trees (learning rate 0.03, 15 leaves) by 5-fold CV log loss grouped by customer "
        f"(CV log loss {lg['cv_log_loss']:.4f}, CV AUC {lg['cv_auc']:.4f}); "
        f"{lg['thresholds_rounded_down']} thresholds rounded down to float32 (max |onnxruntime − LightGBM| "
        f"{lg['max_abs_before_threshold_fix']:.1e} before, {lg['max_abs_ort_vs_library']:.1e} after); "
        "logistic regression: scikit-learn, C = 1",
        "",
        "| model | held-out AUC [95% CI, customer bootstrap] | log loss | Brier | ECE (10 bins) | mean predicted | train AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    def row(title, i, train=""):
        ci = f" [{i['auc_ci95'][0]:.3f}, {i['auc_ci95'][1]:.3f}]" if "auc_ci95" in i else ""
        return (f"| {title} | {i['auc']:.4f}{ci} | {i['log_loss']:.4f} | {i['brier']:.4f} | {i['ece10']:.4f} | "
                f"{i['mean_predicted']:.3f} | {train} |")
    lines.append(row(f"LightGBM, all features (`out/{lg['onnx']}`, onnxruntime)", lg, f"{lg['auc_train']:.4f}"))
    lines.append(row(f"logistic regression, all features (`out/{m['logreg']['onnx']}`, onnxruntime)", m["logreg"],
                     f"{m['logreg']['auc_train']:.4f}"))
    for title, i in b.items():
        lines.append(row(f"baseline: {title}", i))
    lines += ["", f"Observed held-out rate: {res['test_positive_rate']:.3f}. AUC gain over the recency/frequency "
              "baseline (last row), paired customer bootstrap: " + "; ".join(
                  f"{t} {m[k]['auc_minus_rf_baseline']:+.4f} [{m[k]['auc_minus_rf_baseline_ci95'][0]:+.4f}, "
                  f"{m[k]['auc_minus_rf_baseline_ci95'][1]:+.4f}]"
                  for k, t in [("lgbm", "LightGBM"), ("logreg", "logistic regression")]) + ".", ""]
    for key, title in [("lgbm", "LightGBM"), ("logreg", "logistic regression")]:
        lines += [f"Reliability, {title} (held out):", "", "| bin | mean predicted | observed rate | count |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {t['bin']} | {t['mean_predicted']:.3f} | {t['observed']:.3f} | {t['count']} |"
                  for t in m[key]["reliability"]]
        lines.append("")
    gain = sorted(lg["importance_gain"].items(), key=lambda kv: -kv[1])
    tot = sum(v for _, v in gain) or 1.0
    lines += ["LightGBM gain share: " + ", ".join(f"`{k}` {v / tot:.0%}" for k, v in gain if v > 0) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
