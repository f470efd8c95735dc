#!/usr/bin/env python3
"""Reference training pipeline for Foresight's session recommender, on MovieLens-100K.

    .venv-train/bin/python model-export/training/train_recommender.py            # both models
    .venv-train/bin/python model-export/training/train_recommender.py --models gru --epochs-gru 3

What it does, in one run (CPU only):

1. loads MovieLens-100K (data/ml-100k/, see scripts/fetch-data.sh) and splits it
   leave-one-out per user in time order: the last item is the test target, the one before
   it the validation target, the rest is the training sequence;
2. trains a GRU4Rec-style model (Embedding -> GRU -> last hidden state -> tied output over
   all items) and a SASRec-style model (causal self-attention written with matmul/softmax,
   learned positions sliced to the sequence length) with full softmax cross-entropy on
   every prefix of each training sequence (the previous <= 50 items -> the next item),
   computed in one pass per 50-item window with the loss at every position (see
   Splits.training_windows; `--examples prefix` does one pass per prefix instead, exactly
   as defined but ~25x slower), keeping the epoch with the best validation NDCG@10;
3. evaluates on the test targets with full ranking over all items, excluding the items
   already in the user's history: HR@10, NDCG@10, MRR@20 (reciprocal rank, 0 beyond 20),
   next to a popularity baseline and a first-order Markov baseline;
4. exports each model to ONNX (legacy TorchScript exporter, opset 17): input `item_seq`
   int64 [1, "seq"], output `scores` float32 [1, n_items], index i = i-th catalog item;
   checks onnxruntime against PyTorch at sequence lengths 1, 7 and 50 and evaluates the
   metrics again from the onnxruntime outputs;
5. writes out/catalog.json, out/<model>.onnx, out/<model>.reference.json,
   out/recommender_results.json and results.md (next to this script).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mldata  # noqa: E402

MAX_LEN = 50
K_HR = 10
K_MRR = 20
PARITY_LENGTHS = (1, 7, 50)


# ---------------------------------------------------------------------------------------
# Splits and training examples
# ---------------------------------------------------------------------------------------

class Splits:
    """Leave-one-out per user: train = seq[:-2], valid target = seq[-2], test target = seq[-1]."""

    def __init__(self, ml: mldata.MovieLens):
        self.n_items = ml.n_items
        self.train = [s[:-2] for s in ml.seqs]
        self.valid_target = np.array([s[-2] for s in ml.seqs], dtype=np.int64)
        self.test_target = np.array([s[-1] for s in ml.seqs], dtype=np.int64)
        # The input for each target: everything before it (the model sees the last MAX_LEN).
        self.valid_hist = [s[:-2] for s in ml.seqs]
        self.test_hist = [s[:-1] for s in ml.seqs]
        self.popularity = np.bincount(np.concatenate(self.train), minlength=self.n_items)

    def training_examples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`--examples prefix`: every prefix of every training sequence as its own example:
        inputs [N, MAX_LEN] right-padded with n_items, their lengths [N], and targets [N]."""
        xs, lens, ys = [], [], []
        for s in self.train:
            for t in range(1, len(s)):
                x = s[max(0, t - MAX_LEN):t]
                xs.append(x)
                lens.append(len(x))
                ys.append(s[t])
        n = len(xs)
        inputs = np.full((n, MAX_LEN), self.n_items, dtype=np.int64)
        for i, x in enumerate(xs):
            inputs[i, : len(x)] = x
        return inputs, np.array(lens, dtype=np.int64), np.array(ys, dtype=np.int64)

    def training_windows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`--examples window` (default): the same prefixes, computed in one pass per window.

        A causal model's output at position i only depends on positions <= i, so one forward
        pass over s[k:k+50] with the loss at every position trains on all the prefixes inside
        the window at once (50x less compute than one pass per prefix). Windows: k = 0 counts
        targets 1..50 (exactly the prefixes s[:t]); then k = 25, 50, 75, ... count targets
        k+26..k+50 only, so each target is counted once and sees the last 26..50 items (the
        prefix definition would give it exactly 50). Returns inputs [W, MAX_LEN] (padded with
        n_items), lengths [W] and targets [W, MAX_LEN] (-100 = not counted)."""
        half = MAX_LEN // 2
        xs, ys = [], []
        for s in self.train:
            n = len(s)
            starts = [(0, 1)] + [(k, half + 1) for k in range(half, n, half) if k + half + 1 <= n - 1]
            for k, first in starts:
                x = s[k:min(n - 1, k + MAX_LEN)]
                y = np.full(MAX_LEN, -100, dtype=np.int64)
                for i in range(len(x)):
                    if i + 1 >= first:
                        y[i] = s[k + i + 1]
                xs.append(x)
                ys.append(y)
        inputs = np.full((len(xs), MAX_LEN), self.n_items, dtype=np.int64)
        for i, x in enumerate(xs):
            inputs[i, : len(x)] = x
        lens = np.array([len(x) for x in xs], dtype=np.int64)
        targets = np.stack(ys)
        assert (targets >= 0).sum() == sum(max(0, len(s) - 1) for s in self.train)
        return inputs, lens, targets


def pad_histories(hists: list[np.ndarray], pad: int) -> tuple[np.ndarray, np.ndarray]:
    inputs = np.full((len(hists), MAX_LEN), pad, dtype=np.int64)
    lens = np.zeros(len(hists), dtype=np.int64)
    for i, h in enumerate(hists):
        x = h[-MAX_LEN:]
        inputs[i, : len(x)] = x
        lens[i] = len(x)
    return inputs, lens


# ---------------------------------------------------------------------------------------
# Metrics: full ranking, history excluded
# ---------------------------------------------------------------------------------------

def ranks(scores: np.ndarray, targets: np.ndarray, hists: list[np.ndarray]) -> np.ndarray:
    """0-based rank of each target among all items not in the history. Ties are broken by
    catalog index (what a stable sort by descending score shows), so a constant scorer is
    not rewarded."""
    scores = scores.astype(np.float64, copy=True)
    out = np.empty(len(targets), dtype=np.int64)
    for u, (t, h) in enumerate(zip(targets, hists)):
        row = scores[u]
        row[h] = -np.inf
        st = row[t]
        idx = np.arange(len(row))
        out[u] = int(np.sum(row > st) + np.sum((row == st) & (idx < t)))
    return out


def metrics(rk: np.ndarray) -> dict:
    hit = rk < K_HR
    return {
        f"HR@{K_HR}": float(hit.mean()),
        f"NDCG@{K_HR}": float(np.where(hit, 1.0 / np.log2(rk + 2.0), 0.0).mean()),
        f"MRR@{K_MRR}": float(np.where(rk < K_MRR, 1.0 / (rk + 1.0), 0.0).mean()),
    }


# ---------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------

def popularity_scores(sp: Splits, n_users: int) -> np.ndarray:
    return np.tile(sp.popularity.astype(np.float64), (n_users, 1))


def markov_scores(sp: Splits, hists: list[np.ndarray]) -> np.ndarray:
    """First-order Markov chain from the training sequences: score(j) = count(last -> j),
    with popularity as a tie-break / back-off (scaled below one transition)."""
    n = sp.n_items
    trans = np.zeros((n, n), dtype=np.float64)
    for s in sp.train:
        np.add.at(trans, (s[:-1], s[1:]), 1.0)
    backoff = sp.popularity / (sp.popularity.max() + 1.0)
    last = np.array([h[-1] for h in hists])
    return trans[last] + backoff[None, :]


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------

class SessionModel(nn.Module):
    """What both recommenders share: `encode` gives a state per position, `head` scores items."""

    def all_logits(self, seq: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(seq))  # [B, L, n_items]

    def train_logits(self, seq: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        # Right padding: the state at the last real position has only seen real items (the GRU
        # runs left to right; SASRec's causal mask hides the padding after it).
        out = self.encode(seq)
        return self.head(out[torch.arange(len(lens)), lens - 1])


class GRU4Rec(SessionModel):
    """Embedding -> GRU -> last hidden state -> tied output (item embeddings) + item bias."""

    kind = "gru4rec"

    def __init__(self, n_items: int, dim: int = 64, dropout: float = 0.25):
        super().__init__()
        self.n_items = n_items
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)  # last row: padding
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(n_items))
        nn.init.normal_(self.emb.weight, std=dim ** -0.5)
        with torch.no_grad():
            self.emb.weight[n_items].zero_()

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.drop(self.emb(seq)))
        return out  # [B, L, dim]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.drop(h) @ self.emb.weight[: self.n_items].T + self.bias

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Export path: [1, seq] int64, no padding -> [1, n_items]."""
        _, h = self.gru(self.emb(item_seq))
        return h[-1] @ self.emb.weight[: self.n_items].T + self.bias


class SASRec(SessionModel):
    """Causal self-attention (pre-LayerNorm blocks) with manual attention, so the sequence
    length stays symbolic in the ONNX graph: the causal mask is built from arange(L) and the
    learned positional embedding is sliced to L (inputs longer than max_len are not
    supported; the SDK sends at most 50 items)."""

    kind = "sasrec"

    def __init__(self, n_items: int, dim: int = 64, heads: int = 2, blocks: int = 2,
                 max_len: int = MAX_LEN, dropout: float = 0.2):
        super().__init__()
        assert dim % heads == 0
        self.n_items, self.dim, self.heads = n_items, dim, heads
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(dim),
                "qkv": nn.Linear(dim, 3 * dim),
                "proj": nn.Linear(dim, dim),
                "ln2": nn.LayerNorm(dim),
                "ff1": nn.Linear(dim, dim * 2),
                "ff2": nn.Linear(dim * 2, dim),
            }))
        self.ln_f = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(n_items))
        nn.init.normal_(self.emb.weight, std=dim ** -0.5)
        with torch.no_grad():
            self.emb.weight[n_items].zero_()

    def attend(self, blk: nn.ModuleDict, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        dh = self.dim // self.heads
        q, k, v = blk["qkv"](x).split(self.dim, dim=-1)
        # [B, L, H, dh] -> [B, H, L, dh]; -1 keeps the sequence axis symbolic in the export.
        q = q.reshape(b, -1, self.heads, dh).transpose(1, 2)
        k = k.reshape(b, -1, self.heads, dh).transpose(1, 2)
        v = v.reshape(b, -1, self.heads, dh).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) * (dh ** -0.5)
        att = att.masked_fill(blocked, -1e9)
        att = self.drop(torch.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, -1, self.dim)
        return blk["proj"](y)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        n = seq.shape[1]
        x = self.emb(seq) * (self.dim ** 0.5) + self.pos[:n]
        x = self.drop(x)
        i = torch.arange(n, device=seq.device)
        blocked = i.unsqueeze(0) > i.unsqueeze(1)  # [L, L]: key after query
        for blk in self.blocks:
            x = x + self.drop(self.attend(blk, blk["ln1"](x), blocked))
            x = x + self.drop(blk["ff2"](self.drop(F.gelu(blk["ff1"](blk["ln2"](x))))))
        return self.ln_f(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.emb.weight[: self.n_items].T + self.bias

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(item_seq)[:, -1])


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------

@torch.no_grad()
def model_scores(model: nn.Module, inputs: np.ndarray, lens: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(inputs), batch):
        x = torch.from_numpy(inputs[s:s + batch])
        ln = torch.from_numpy(lens[s:s + batch])
        x = x[:, : int(ln.max())]
        out.append(model.train_logits(x, ln).numpy())
    return np.concatenate(out)


def train(model: nn.Module, sp: Splits, epochs: int, lr: float, batch: int, seed: int,
          examples: str = "window", log=print) -> dict:
    if examples == "prefix":
        inputs, lens, targets = sp.training_examples()
    else:
        inputs, lens, targets = sp.training_windows()
    n_targets = int((targets >= 0).sum())
    v_in, v_len = pad_histories(sp.valid_hist, sp.n_items)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    best = {"ndcg": -1.0, "epoch": 0, "state": None}
    history = []
    t_start = time.perf_counter()
    for ep in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(inputs))
        total, count = 0.0, 0
        for s in range(0, len(order), batch):
            ix = order[s:s + batch]
            ln = torch.from_numpy(lens[ix])
            x = torch.from_numpy(inputs[ix][:, : int(ln.max())])
            if examples == "prefix":
                y = torch.from_numpy(targets[ix])
                loss = F.cross_entropy(model.train_logits(x, ln), y)
                n = len(ix)
            else:
                y = torch.from_numpy(targets[ix][:, : x.shape[1]])
                logits = model.all_logits(x)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
                n = int((y >= 0).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * n
            count += n
        val = metrics(ranks(model_scores(model, v_in, v_len), sp.valid_target, sp.valid_hist))
        dt = time.perf_counter() - t0
        history.append({"epoch": ep, "loss": total / count, "seconds": dt, **{f"val_{k}": v for k, v in val.items()}})
        log(f"[{model.kind}] epoch {ep:2d}/{epochs}  loss {total / count:.4f}  "
            f"val HR@10 {val['HR@10']:.4f}  NDCG@10 {val['NDCG@10']:.4f}  MRR@20 {val['MRR@20']:.4f}  "
            f"({dt:.1f}s, {n_targets} targets in {len(inputs)} {examples}s)", flush=True)
        if val["NDCG@10"] > best["ndcg"]:
            best = {"ndcg": val["NDCG@10"], "epoch": ep,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    model.load_state_dict(best["state"])
    model.eval()
    return {"epochs": epochs, "best_epoch": best["epoch"], "train_seconds": time.perf_counter() - t_start,
            "examples": examples, "rows": int(len(inputs)), "targets": n_targets, "history": history}


# ---------------------------------------------------------------------------------------
# ONNX export and checks
# ---------------------------------------------------------------------------------------

def export_onnx(model: nn.Module, path: Path) -> None:
    import onnx

    model.eval()
    example = torch.zeros((1, 7), dtype=torch.int64)
    torch.onnx.export(
        model, (example,), str(path), dynamo=False, opset_version=17,
        input_names=["item_seq"], output_names=["scores"],
        dynamic_axes={"item_seq": {1: "seq"}},
    )
    m = onnx.load(str(path))
    # Batch stays 1 (the SDK scores one visitor). The legacy exporter sometimes cannot infer
    # that for the output (SASRec's comes out as ['Addscores_dim_0', n_items]): declare it.
    out_dims = m.graph.output[0].type.tensor_type.shape.dim
    if out_dims[0].dim_param:
        out_dims[0].dim_value = 1
        onnx.save(m, str(path))
    onnx.checker.check_model(m, full_check=True)
    dims = [d.dim_value or d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, "seq"], dims
    dims = [d.dim_value or d.dim_param for d in m.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, model.n_items], dims


def sig7(x: float) -> float:
    return float(f"{x:.7g}")


def parity_and_reference(model: nn.Module, sess, sp: Splits, path: Path) -> dict:
    """max |onnxruntime - PyTorch| at lengths 1, 7, 50 on real user histories; writes the
    cases (with onnxruntime scores, 7 significant digits) as a reference file for tract."""
    rng = np.random.default_rng(7)
    users = rng.choice([u for u, h in enumerate(sp.test_hist) if len(h) >= max(PARITY_LENGTHS)], 4, replace=False)
    worst: dict[int, float] = {}
    cases = []
    for n in PARITY_LENGTHS:
        worst[n] = 0.0
        for u in users:
            seq = sp.test_hist[u][-n:].reshape(1, -1)
            with torch.no_grad():
                pt = model(torch.from_numpy(seq)).numpy()
            ort = sess.run(["scores"], {"item_seq": seq})[0]
            assert ort.shape == (1, sp.n_items) and ort.dtype == np.float32, (ort.shape, ort.dtype)
            worst[n] = max(worst[n], float(np.abs(pt - ort).max()))
            cases.append({"indices": seq[0].tolist(), "scores": [sig7(v) for v in ort[0]]})
    ref = {
        "model": path.name.replace(".reference.json", ".onnx"),
        "input": {"name": "item_seq", "dtype": "int64", "shape": [1, "seq"]},
        "output": {"name": "scores", "dtype": "float32", "shape": [1, sp.n_items]},
        "note": "onnxruntime scores, 7 significant digits; indices are catalog positions",
        "cases": cases,
    }
    with path.open("w") as f:
        f.write(json.dumps({k: v for k, v in ref.items() if k != "cases"})[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")
    return {str(n): w for n, w in worst.items()}


def ort_scores(sess, hists: list[np.ndarray]) -> np.ndarray:
    out = np.empty((len(hists), sess.get_outputs()[0].shape[1]), dtype=np.float32)
    for u, h in enumerate(hists):
        out[u] = sess.run(["scores"], {"item_seq": h[-MAX_LEN:].reshape(1, -1)})[0][0]
    return out


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

EXAMPLES_DOC = {
    "window": "computed in one forward pass per window with the loss at every position "
              "(`--examples window`): sequences of <= 51 items exactly, longer ones in windows "
              "s[k:k+50], k = 25, 50, ..., where targets beyond the 50th see the last 26 to 50 "
              "items instead of exactly 50",
    "prefix": "one forward pass per prefix with exactly the last <= 50 items (`--examples prefix`)",
}


def write_results_md(res: dict, path: Path) -> None:
    cols = [f"HR@{K_HR}", f"NDCG@{K_HR}", f"MRR@{K_MRR}"]
    lines = [
        "# Recommender on MovieLens-100K: reference results",
        "",
        "Written by `train_recommender.py` (do not edit by hand; re-run it). Intent-model results",
        "are in the second part, written by `train_intent.py`.",
        "",
        f"- data: MovieLens-100K from the `recbole==1.2.1` wheel, {res['data']['users']} users, "
        f"{res['data']['items']} items, {res['data']['interactions']} ratings (every rating counts as "
        "an interaction, whatever its value)",
        "- split: leave-one-out per user in time order (ties in the timestamp keep file order): last "
        "item = test, second-to-last = validation, the rest = training sequence; the training "
        f"targets are the {res['data']['train_examples']} prefixes of the training sequences "
        "(previous items -> next item), " + EXAMPLES_DOC[res["examples"]],
        "- metrics: test targets, full ranking over all items, items already in the user's history "
        "excluded, ties broken by catalog index; MRR@20 is 0 beyond rank 20; one target per user, "
        f"{res['data']['users']} users",
        "- model selection: the epoch with the best validation NDCG@10",
        "",
        "## Test metrics",
        "",
        "| model | " + " | ".join(cols) + " | validation NDCG@10 |",
        "| --- | " + " | ".join("---:" for _ in cols) + " | ---: |",
    ]
    for row in res["table"]:
        val = row.get("valid", {}).get("NDCG@10")
        lines.append(f"| {row['name']} | " + " | ".join(f"{row['test'][c]:.4f}" for c in cols)
                     + f" | {'' if val is None else f'{val:.4f}'} |")
    lines += ["", "## Models", ""]
    for name, m in res["models"].items():
        lines.append(f"### {name}")
        lines.append("")
        lines.append(f"- architecture: {m['architecture']}")
        lines.append(f"- parameters: {m['parameters']:,}; ONNX file `out/{m['onnx']}` {m['onnx_bytes'] / 1024:.0f} KiB "
                     f"(legacy TorchScript exporter, opset 17; ops: {', '.join(m['onnx_ops'])})")
        t = m["training"]
        lines.append(f"- training: {t['epochs']} epochs, Adam lr {m['lr']}, batch {m['batch']} {t['examples']}s "
                     f"({t['rows']} {t['examples']}s, {t['targets']} targets per epoch), best epoch "
                     f"{t['best_epoch']}; {t['train_seconds']:.0f} s wall in total "
                     f"({t['train_seconds'] / t['epochs']:.0f} s per epoch incl. validation)")
        lines.append("- onnxruntime vs PyTorch, max |Δ| over the score vector: "
                     + ", ".join(f"length {n}: {v:.2e}" for n, v in m["parity"].items()))
        lines.append(f"- test metrics recomputed from onnxruntime outputs: max |Δ| vs PyTorch's metrics "
                     f"{m['metric_delta_ort']:.1e}; ranks identical for {m['ranks_equal_ort']}/{res['data']['users']} users")
        lines.append("")
        lines.append("| epoch | loss | val HR@10 | val NDCG@10 | val MRR@20 | seconds |")
        lines.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for h in t["history"]:
            lines.append(f"| {h['epoch']} | {h['loss']:.4f} | {h['val_HR@10']:.4f} | {h['val_NDCG@10']:.4f} "
                         f"| {h['val_MRR@20']:.4f} | {h['seconds']:.1f} |")
        lines.append("")
    lines += [
        "## Catalog",
        "",
        "`out/catalog.json`: `{\"items\": [{\"id\", \"category\", \"price\", \"popularity\"}]}`, model index "
        "i = item i, items in MovieLens id order. `category` is the first genre listed for the movie; "
        "MovieLens lists genres in a fixed, alphabetical order, so that is the alphabetically first one "
        "(Toy Story: Animation; `unknown` for the 2 items MovieLens marks so). `price` is made up, since MovieLens has none: tiered "
        "by release year (unknown 9.99; before 1970 4.99; 1970-89 7.99; 1990-95 12.99; 1996+ "
        "17.99). `popularity` is the item's count of training interactions (validation and test "
        "targets excluded).",
        "",
        "## Machine and versions",
        "",
        f"- {res['machine']['cpu']}, {res['machine']['cores']} cores visible, {res['machine']['memory']} RAM, "
        f"{res['machine']['os']}, CPU only (torch threads: {res['torch_threads']})",
        "- " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()),
        f"- total run time {res['total_seconds']:.0f} s",
        "",
    ]
    path.write_text("\n".join(lines))


def update_results_md(section: str, path: Path, marker: str) -> None:
    """Replaces (or appends) the part of results.md that starts with `marker`."""
    text = path.read_text() if path.exists() else ""
    if marker in text:
        text = text[: text.index(marker)].rstrip() + "\n"
    path.write_text(text + ("\n" if text else "") + section)


# ---------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=mldata.DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=mldata.DEFAULT_OUT)
    ap.add_argument("--results", type=Path, default=mldata.HERE / "results.md")
    ap.add_argument("--models", default="gru,sasrec", help="comma list of gru, sasrec")
    ap.add_argument("--epochs-gru", type=int, default=20)
    ap.add_argument("--epochs-sasrec", type=int, default=25)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--examples", choices=["window", "prefix"], default="window",
                    help="window: one pass per 50-item window, loss at every position (default); "
                         "prefix: one pass per prefix, exactly the last <= 50 items (~25x slower)")
    ap.add_argument("--batch", type=int, default=0, help="rows per step (default: 64 windows or 256 prefixes)")
    ap.add_argument("--lr-gru", type=float, default=3e-3)
    ap.add_argument("--lr-sasrec", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = ap.parse_args()
    if not args.batch:
        args.batch = 64 if args.examples == "window" else 256

    import onnx
    import onnxruntime as ort

    t_all = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    ml = mldata.load(args.data)
    sp = Splits(ml)
    n_users = len(ml.users)
    n_inter = int(sum(len(s) for s in ml.seqs))
    print(f"MovieLens-100K: {n_users} users, {ml.n_items} items, {n_inter} interactions; "
          f"train {sum(len(s) for s in sp.train)}, valid {n_users}, test {n_users}", flush=True)
    mldata.write_catalog(ml, sp.popularity, args.out / "catalog.json")

    res: dict = {
        "data": {"users": n_users, "items": ml.n_items, "interactions": n_inter,
                 "train_examples": int(sum(max(0, len(s) - 1) for s in sp.train))},
        "table": [], "models": {}, "examples": args.examples,
        "machine": mldata.machine_info(), "torch_threads": torch.get_num_threads(),
        "versions": mldata.versions("torch", "numpy", "onnx", "onnxruntime"),
    }

    # Baselines
    for name, fn in [("Popularity (train counts)", lambda h: popularity_scores(sp, len(h))),
                     ("First-order Markov (train transitions, popularity back-off)", lambda h: markov_scores(sp, h))]:
        row = {"name": name,
               "valid": metrics(ranks(fn(sp.valid_hist), sp.valid_target, sp.valid_hist)),
               "test": metrics(ranks(fn(sp.test_hist), sp.test_target, sp.test_hist))}
        res["table"].append(row)
        print(f"{name}: test " + "  ".join(f"{k} {v:.4f}" for k, v in row["test"].items()), flush=True)

    t_in, t_len = pad_histories(sp.test_hist, sp.n_items)
    specs = {
        "gru": (lambda: GRU4Rec(ml.n_items, args.dim), args.epochs_gru, args.lr_gru, "GRU4Rec",
                f"Embedding({ml.n_items}+1 padding, {args.dim}) -> GRU({args.dim}) -> last hidden state -> "
                f"scores = h · Eᵀ (tied) + item bias; dropout 0.25 on embeddings and hidden state"),
        "sasrec": (lambda: SASRec(ml.n_items, args.dim), args.epochs_sasrec, args.lr_sasrec, "SASRec",
                   f"Embedding·√d + learned positions[:L] -> 2 pre-LN blocks (2-head causal self-attention "
                   f"written with matmul/softmax, mask from arange(L); GELU FFN ×2) -> LayerNorm -> last position "
                   f"-> tied output + item bias; dropout 0.2; dim {args.dim}"),
    }
    for key in [k.strip() for k in args.models.split(",") if k.strip()]:
        make, epochs, lr, label, arch = specs[key]
        torch.manual_seed(args.seed)
        model = make()
        n_params = sum(p.numel() for p in model.parameters())
        print(f"== {label}: {n_params:,} parameters, {epochs} epochs", flush=True)
        tr = train(model, sp, epochs, lr, args.batch, args.seed, args.examples)

        pt_valid = metrics(ranks(model_scores(model, *pad_histories(sp.valid_hist, sp.n_items)), sp.valid_target, sp.valid_hist))
        pt_rank = ranks(model_scores(model, t_in, t_len), sp.test_target, sp.test_hist)
        pt_test = metrics(pt_rank)

        onnx_path = args.out / f"{model.kind}.onnx"
        export_onnx(model, onnx_path)
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        parity = parity_and_reference(model, sess, sp, args.out / f"{model.kind}.reference.json")
        ort_rank = ranks(ort_scores(sess, sp.test_hist), sp.test_target, sp.test_hist)
        ort_test = metrics(ort_rank)
        ops = sorted({n.op_type for n in onnx.load(str(onnx_path)).graph.node})
        print(f"{label}: test (PyTorch)     " + "  ".join(f"{k} {v:.4f}" for k, v in pt_test.items()))
        print(f"{label}: test (onnxruntime) " + "  ".join(f"{k} {v:.4f}" for k, v in ort_test.items()))
        print(f"{label}: onnxruntime vs PyTorch max|Δ| " + ", ".join(f"len {n}: {v:.2e}" for n, v in parity.items()), flush=True)

        res["table"].append({"name": f"{label} (PyTorch)", "valid": pt_valid, "test": pt_test})
        res["table"].append({"name": f"{label} (onnxruntime)", "test": ort_test})
        res["models"][label] = {
            "architecture": arch, "parameters": n_params, "lr": lr, "batch": args.batch,
            "training": tr, "onnx": onnx_path.name, "onnx_bytes": onnx_path.stat().st_size, "onnx_ops": ops,
            "parity": parity,
            "metric_delta_ort": max(abs(pt_test[k] - ort_test[k]) for k in pt_test),
            "ranks_equal_ort": int((pt_rank == ort_rank).sum()),
        }

    res["total_seconds"] = time.perf_counter() - t_all
    (args.out / "recommender_results.json").write_text(json.dumps(res, indent=1) + "\n")
    # Keep the intent section (written by train_intent.py) if it is there.
    intent_marker = "# Intent model"
    old = args.results.read_text() if args.results.exists() else ""
    write_results_md(res, args.results)
    if intent_marker in old:
        args.results.write_text(args.results.read_text().rstrip() + "\n\n" + old[old.index(intent_marker):])
    print(f"wrote {args.results} and {args.out}/ in {res['total_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
