#!/usr/bin/env python3
"""Writes bench/models/sasrec_5000.onnx: a SASRec-style attention recommender over the
5,000-item fixture catalog (tests/fixtures/catalog.json) for the benchmark. It is the
architecture of model-export/training/train_recommender.py's SASRec (imported from there:
Embedding·√d + learned positions, 2 pre-LN blocks of 2-head causal self-attention written with
matmul/softmax, GELU FFN, LayerNorm, last position, tied output + item bias; dim 64, max length
50), exported the same way (legacy exporter, opset 17, symbolic `seq`), with seeded random
weights: no training, no data. Deterministic: re-runs give the same bytes.

    .venv-train/bin/python bench/models/make_sasrec.py
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "model-export" / "training"))
from train_recommender import SASRec, export_onnx  # noqa: E402

N_ITEMS = 5000
OUT = Path(__file__).resolve().parent / "sasrec_5000.onnx"


def main() -> None:
    torch.manual_seed(7)
    torch.use_deterministic_algorithms(True)
    model = SASRec(N_ITEMS)
    with torch.no_grad():
        # A mild item bias, so that scores differ even where embeddings are alike.
        model.bias.copy_(torch.randn(N_ITEMS) * 0.1)
    model.eval()
    export_onnx(model, OUT)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(OUT), providers=["CPUExecutionProvider"])
    ref = json.loads((ROOT / "tests/fixtures/session_gru.reference.json").read_text())
    worst = 0.0
    for case in ref["cases"]:
        x = torch.tensor([case["indices"]], dtype=torch.int64)
        with torch.no_grad():
            want = model(x).numpy()
        got = sess.run(None, {"item_seq": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - want).max()))
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"{OUT.name}: {OUT.stat().st_size} bytes, sha256 {digest}, "
          f"onnxruntime {ort.__version__} vs torch {torch.__version__}: max |Δ| {worst:.2e} over {len(ref['cases'])} cases")


if __name__ == "__main__":
    main()
