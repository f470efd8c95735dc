#!/usr/bin/env python3
"""GRU4Rec and SASRec with full-softmax cross-entropy on a shop log, fitted on the period before
the validation period of `foresight-export train --eval --test-days N`, exported to ONNX in the
shapes the SDK's own kernels recognise (`format gru` / `format attention` in
`foresight-export convert`).

    python model-export/training/train_sequence.py --interactions data/tafeng/interactions.csv \
        --catalog /tmp/seq/tafeng_catalog.json --test-days 14 --model gru --out /tmp/seq/tafeng_gru.onnx

The catalog is the one `foresight-export train --out-catalog` writes for the same log: the model's
item index i is `items[i].id` there. The split is `by_time` of model-export/src/train/evaluate.rs:
end = the last timestamp of the log, test_from = end - days, validation_from = test_from - days;
the fit sees each visitor's interactions up to validation_from; the validation period
(validation_from, test_from] only picks the epoch (validation NDCG@10 on at most --max-cases
targets, every k-th in time order, full ranking, nothing excluded, the input the last --max-len
items before the target); nothing after test_from is read past the split.

Training: each fit sequence is cut, from its end backwards, into windows of at most max_len + 1
items; every position of a window predicts the next item with a softmax over the whole catalog.
One thread (torch.set_num_threads(1)), seeded, deterministic.

The ONNX file: input `item_seq` int64 [1, seq] (catalog indices, oldest first, seq symbolic),
output `scores` float32 [1, n_items] for the position after the last item. SASRec takes at most
max_len items (learned positions): give it the last max_len.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------
# Data and split
# ---------------------------------------------------------------------------------------

def natural_key(s: str):
    return [(0, int(p), p) if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", s) if p != ""]


def load(path: str, catalog: str):
    items = [it["id"] for it in json.load(open(catalog))["items"]]
    index = {iid: i for i, iid in enumerate(items)}
    users: dict[str, list[tuple[float, int]]] = {}
    missing = 0
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        uc, ic, tc = head.index("user_id"), head.index("item_id"), head.index("timestamp")
        for row in r:
            i = index.get(row[ic])
            if i is None:
                missing += 1
                continue
            users.setdefault(row[uc], []).append((float(row[tc]), i))
    if missing:
        print(f"warning: {missing} interactions with items not in the catalog skipped", file=sys.stderr)
    names = sorted(users, key=natural_key)
    seqs, times = [], []
    for u in names:
        ev = sorted(users[u], key=lambda e: e[0])  # stable: ties keep file order
        seqs.append(np.array([e[1] for e in ev], dtype=np.int64))
        times.append(np.array([e[0] for e in ev], dtype=np.float64))
    return items, seqs, times


def split(seqs, times, n_items, days, max_cases, max_len):
    end = max(t.max() for t in times)
    test_from = end - days * 86400.0
    val_from = test_from - days * 86400.0
    fit, seen = [], np.zeros(n_items, dtype=bool)
    for s, t in zip(seqs, times):
        k = int(np.searchsorted(t, val_from, side="right"))
        if k > 0:
            fit.append(s[:k])
            seen[s[:k]] = True
    events = []
    for u, t in enumerate(times):
        for p in np.nonzero((t > val_from) & (t <= test_from))[0]:
            if p > 0:
                events.append((t[p], u, int(p)))
    events.sort()
    cases = [(seqs[u][max(0, p - max_len):p], int(seqs[u][p])) for _, u, p in events if seen[seqs[u][p]]]
    k = max(1, math.ceil(len(cases) / max(1, max_cases)))
    return fit, cases[::k], (val_from, test_from, end), len(cases)


def windows(fit, max_len):
    """Each sequence cut from its end into windows of <= max_len + 1 items (inputs + next)."""
    out = []
    for s in fit:
        e = len(s)
        while e >= 2:
            b = max(0, e - (max_len + 1))
            out.append(s[b:e])
            e = b + 1 if b > 0 else 0  # the next window's last item is this one's first input
    return out


def batch_of(wins, pad):
    L = max(len(w) for w in wins) - 1
    x = np.full((len(wins), L), pad, dtype=np.int64)
    y = np.full((len(wins), L), -100, dtype=np.int64)
    for r, w in enumerate(wins):
        x[r, : len(w) - 1] = w[:-1]
        y[r, : len(w) - 1] = w[1:]
    return torch.from_numpy(x), torch.from_numpy(y)


# ---------------------------------------------------------------------------------------
# Models (training form: padding row = n_items; export form: exactly n_items rows)
# ---------------------------------------------------------------------------------------

class Gru4Rec(nn.Module):
    """Embedding -> GRU (batch first) -> hidden state -> nn.Linear over the catalog."""

    def __init__(self, rows: int, n_out: int, emb: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.emb = nn.Embedding(rows, emb)
        self.gru = nn.GRU(emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, n_out)
        self.drop = nn.Dropout(dropout)

    def all_positions(self, x):
        h, _ = self.gru(self.drop(self.emb(x)))
        return self.drop(h)

    def logits(self, h):
        return self.out(h)

    def forward(self, item_seq):  # export: last hidden state only
        _, h = self.gru(self.emb(item_seq))
        return self.out(h[-1])


class SasRec(nn.Module):
    """Embedding * sqrt(d) + learned positions -> pre-norm causal blocks (fused QKV, attention
    as matmul/softmax) -> final LayerNorm -> last position -> tied head (h . E^T + bias)."""

    def __init__(self, rows: int, n_out: int, d: int, heads: int, blocks: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        self.d, self.heads, self.n_out = d, heads, n_out
        self.emb = nn.Embedding(rows, d)
        nn.init.normal_(self.emb.weight, std=d ** -0.5)
        self.pos = nn.Parameter(torch.randn(max_len, d) * 0.02)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "ln1": nn.LayerNorm(d), "qkv": nn.Linear(d, 3 * d), "proj": nn.Linear(d, d),
                "ln2": nn.LayerNorm(d), "ff1": nn.Linear(d, 4 * d), "ff2": nn.Linear(4 * d, d),
            })
            for _ in range(blocks)
        )
        self.ln_f = nn.LayerNorm(d)
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.drop = nn.Dropout(dropout)

    def attend(self, blk, x, blocked):
        b, d, h = x.shape[0], self.d, self.heads
        dh = d // h
        q, k, v = blk["qkv"](x).split(d, dim=-1)
        q = q.reshape(b, -1, h, dh).transpose(1, 2)
        k = k.reshape(b, -1, h, dh).transpose(1, 2)
        v = v.reshape(b, -1, h, dh).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) * (dh ** -0.5)
        att = att.masked_fill(blocked, -1e9)
        y = (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, -1, d)
        return blk["proj"](y)

    def encode(self, item_seq):
        n = item_seq.shape[1]
        x = self.emb(item_seq) * (self.d ** 0.5) + self.pos[:n]
        x = self.drop(x)
        i = torch.arange(n, device=item_seq.device)
        blocked = i.unsqueeze(0) > i.unsqueeze(1)
        for blk in self.blocks:
            x = x + self.drop(self.attend(blk, blk["ln1"](x), blocked))
            x = x + self.drop(blk["ff2"](F.gelu(blk["ff1"](blk["ln2"](x)))))
        return self.ln_f(x)

    def all_positions(self, x):
        return self.encode(x)

    def logits(self, h):
        return h @ self.emb.weight[: self.n_out].T + self.bias

    def forward(self, item_seq):  # export: last position only
        h = self.encode(item_seq)[:, -1]
        return h @ self.emb.weight.T + self.bias


# ---------------------------------------------------------------------------------------
# Validation (full ranking, nothing excluded, ties at the expected rank)
# ---------------------------------------------------------------------------------------

@torch.no_grad()
def ndcg10(model, cases, pad, bs=256):
    model.eval()
    total = 0.0
    for s in range(0, len(cases), bs):
        chunk = cases[s : s + bs]
        L = max(len(h) for h, _ in chunk)
        x = np.full((len(chunk), L), pad, dtype=np.int64)
        for r, (h, _) in enumerate(chunk):
            x[r, : len(h)] = h
        x = torch.from_numpy(x)
        last = torch.tensor([len(h) - 1 for h, _ in chunk])
        hs = model.all_positions(x)[torch.arange(len(chunk)), last]
        sc = model.logits(hs)
        tgt = torch.tensor([t for _, t in chunk])
        ts = sc[torch.arange(len(chunk)), tgt].unsqueeze(1)
        rank = (sc > ts).sum(1).double() + ((sc == ts).sum(1).double() - 1) / 2
        total += torch.where(rank < 10, 1.0 / torch.log2(rank + 2), torch.zeros_like(rank)).sum().item()
    model.train()
    return total / max(1, len(cases))


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------

def export(model, kind, n, args, path):
    """Copy the weights into a model with exactly n item rows (no padding row) and export it
    with the legacy exporter, opset 17, the sequence axis symbolic."""
    if kind == "gru":
        m = Gru4Rec(n, n, args.emb, args.hidden)
    else:
        m = SasRec(n, n, args.dim, args.heads, args.blocks, args.max_len)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["emb.weight"] = sd["emb.weight"][:n]
    m.load_state_dict(sd)
    m.eval()
    example = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]) % n
    torch.onnx.export(
        m, (example,), str(path), dynamo=False, opset_version=17,
        input_names=["item_seq"], output_names=["scores"], dynamic_axes={"item_seq": {1: "seq"}},
    )
    return m


def check_onnx(m, path, n, cases):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for h, _ in cases[:5]:
        x = np.asarray(h, dtype=np.int64)[None, :]
        want = m(torch.from_numpy(x)).detach().numpy()
        got = sess.run(["scores"], {"item_seq": x})[0]
        assert got.shape == (1, n), got.shape
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interactions", required=True)
    ap.add_argument("--catalog", required=True, help="catalog JSON of `foresight-export train --out-catalog`")
    ap.add_argument("--test-days", type=float, required=True)
    ap.add_argument("--model", choices=["gru", "sasrec"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=10, help="at most this many (the best by validation NDCG@10 is kept)")
    ap.add_argument("--patience", type=int, default=2, help="stop after this many epochs without a better NDCG@10")
    ap.add_argument("--time-budget", type=float, default=540.0, help="seconds of training; no epoch starts that would end past it (at the last epoch's pace)")
    ap.add_argument("--max-windows", type=int, default=0, help="per epoch, at most this many training windows (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--max-cases", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--emb", type=int, default=64, help="GRU: embedding size")
    ap.add_argument("--hidden", type=int, default=100, help="GRU: hidden size")
    ap.add_argument("--dim", type=int, default=64, help="SASRec: model width")
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    items, seqs, times = load(args.interactions, args.catalog)
    n = len(items)
    fit, cases, (vf, tf, end), n_val = split(seqs, times, n, args.test_days, args.max_cases, args.max_len)
    wins = windows(fit, args.max_len)
    n_targets = sum(len(w) - 1 for w in wins)
    print(f"{n} items, {len(seqs)} visitors; fit: {sum(len(s) for s in fit)} interactions of {len(fit)} visitors "
          f"(t <= {vf:.0f}), {len(wins)} windows, {n_targets} next-item targets; validation: {len(cases)} of "
          f"{n_val} targets in ({vf:.0f}, {tf:.0f}]; loaded in {time.time() - t0:.1f}s", flush=True)

    pad = n
    if args.model == "gru":
        model = Gru4Rec(n + 1, n, args.emb, args.hidden, args.dropout)
    else:
        model = SasRec(n + 1, n, args.dim, args.heads, args.blocks, args.max_len, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    best, best_state, best_epoch, stale = -1.0, None, 0, 0
    print(f"epoch 0: validation NDCG@10 {ndcg10(model, cases, pad):.4f}", flush=True)
    t_train = time.time()
    for epoch in range(1, args.epochs + 1):
        te = time.time()
        order = rng.permutation(len(wins))
        if args.max_windows and len(order) > args.max_windows:
            order = order[: args.max_windows]
        total, count = 0.0, 0
        model.train()
        for s in range(0, len(order), args.batch):
            x, y = batch_of([wins[i] for i in order[s : s + args.batch]], pad)
            h = model.all_positions(x)
            keep = y.reshape(-1) >= 0
            logits = model.logits(h.reshape(-1, h.shape[-1])[keep])
            loss = F.cross_entropy(logits, y.reshape(-1)[keep])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * int(keep.sum())
            count += int(keep.sum())
        v = ndcg10(model, cases, pad)
        print(f"epoch {epoch}: train loss {total / count:.4f} on {count} targets, validation NDCG@10 {v:.4f}, "
              f"{time.time() - te:.1f}s", flush=True)
        if v > best:
            best, best_epoch, stale = v, epoch, 0
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
        else:
            stale += 1
        if stale >= args.patience:
            break
        if time.time() - t_train + (time.time() - te) > args.time_budget:
            print(f"time budget of {args.time_budget:.0f}s spent", flush=True)
            break
    train_s = time.time() - t_train
    model.load_state_dict(best_state)
    model.eval()
    m = export(model, args.model, n, args, args.out)
    worst = check_onnx(m, args.out, n, cases)
    print(f"training: {train_s:.1f}s ({epoch} epochs, 1 thread); kept epoch {best_epoch}, validation NDCG@10 "
          f"{best:.4f}; {args.out}: {Path(args.out).stat().st_size} bytes, {n} items, onnxruntime vs torch max "
          f"|diff| {worst:.2e}", flush=True)


if __name__ == "__main__":
    main()
