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
    exe = os.environ.get("FORESIGHT_EXPORT")
    cmd = shlex.split(exe) if exe else ["cargo", "run", "-q", "-p", "foresight-export", "--"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sessions.jsonl"
        with src.open("w") as f:
            for s in situations:
                f.write(json.dumps({"now": s["now"], "events": s["events"]}, separators=(",", ":")) + "\n")
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
    assert x.shape == (len(situations), len(names)), x.shape
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=mldata.DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=mldata.DEFAULT_OUT)
    ap.add_argument("--results", type=Path, default=mldata.HERE / "results.md")
    ap.add_argument("--label", choices=["return7d", "like_next"], default="return7d")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

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

    n = len(names)
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
        # Reference cases for runtimes (tract) to reproduce: the first 8 held-out rows.
        cases = [{"features": [sig7(v) for v in row], "probabilities": [sig7(v) for v in pr]}
                 for row, pr in zip(xte[:8], sess.run(["probabilities"], {"features": xte[:8]})[0])]
        (args.out / f"intent_{args.label}_{key}.reference.json").write_text(json.dumps(
            {"model": path.name, "feature_names": names, "cases": cases}, indent=1) + "\n")
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


if __name__ == "__main__":
    sys.exit(main())
