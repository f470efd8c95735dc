#!/usr/bin/env python3
"""Step models for onnxruntime-web: what a skilled engineer would deploy with it instead of
re-running the whole session per event. Same weights as the whole-sequence models the benchmark
times, checked against them with onnxruntime here before anything is timed.

Two parts:

    .venv-train/bin/python bench/models/make_step_models.py sasrec
        (PyTorch; writes the committed bench/models/sasrec_5000_step.onnx)
    python3 bench/models/make_step_models.py derive OUT_DIR
        (onnx + numpy + onnxruntime only; scripts/bench.sh runs it at bench time)

`sasrec` rebuilds the seeded SASRec of make_sasrec.py (checked: it reproduces
sasrec_5000.onnx's scores) and exports one attention position with a key/value cache, as LLM
exports do: `item` [1] int64, `past_k`/`past_v` [blocks, heads, past, head_dim] (past may be 0)
-> `scores` [1, 5000], `present_k`/`present_v` [blocks, heads, past + 1, head_dim]. The position
is `past` (the model has 50 learned positions; a longer session slides its window, and then
every position moves: the whole-sequence model is the step there, for onnxruntime-web as for
the SDK).

`derive` writes into OUT_DIR:
    gru_step.onnx        tests/fixtures/session_gru.onnx cut to one GRU step: `item` [1, 1]
                         int64, `h` [1, 1, 64] -> `scores` [1, 5000], `h_next` [1, 1, 64]
    gru_step_topk.onnx   the same ending in TopK(20): + `top_values`, `top_indices` [1, 20]
    sasrec_step_topk.onnx  sasrec_5000_step.onnx ending in TopK(20)
and checks each, stepping through 7 sessions of up to 50 events, against the whole-sequence
model: max |delta| <= 1e-5 and the same top 20 at every event, or it exits with status 1.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
N_ITEMS = 5000
K = 20
TOLERANCE = 1e-5


def sessions() -> list[list[int]]:
    """Fixed pseudo-random sessions of 1..50 events (the same on every run)."""
    rng = np.random.default_rng(11)
    return [rng.integers(0, N_ITEMS, size=n).tolist() for n in (1, 2, 5, 12, 30, 49, 50)]


def top(scores: np.ndarray, k: int = K) -> list[int]:
    # Highest score first, ties by index: the order the benchmark compares.
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]


# ---- sasrec (PyTorch) -------------------------------------------------------------------

def make_sasrec() -> None:
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT / "model-export" / "training"))
    from train_recommender import SASRec  # noqa: E402

    torch.manual_seed(7)
    torch.use_deterministic_algorithms(True)
    model = SASRec(N_ITEMS)
    with torch.no_grad():
        model.bias.copy_(torch.randn(N_ITEMS) * 0.1)  # as make_sasrec.py
    model.eval()

    class Step(torch.nn.Module):
        """One position of `model` given the keys and values of the earlier ones."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, item, past_k, past_v):
            m = self.m
            dh = m.dim // m.heads
            t = past_k.shape[2]
            x = m.emb(item) * (m.dim ** 0.5) + m.pos[t]  # [1, dim]
            keys, values = [], []
            for b, blk in enumerate(m.blocks):
                q, k, v = blk["qkv"](blk["ln1"](x)).split(m.dim, dim=-1)
                q = q.reshape(m.heads, 1, dh)
                k = torch.cat([past_k[b], k.reshape(m.heads, 1, dh)], dim=1)
                v = torch.cat([past_v[b], v.reshape(m.heads, 1, dh)], dim=1)
                keys.append(k)
                values.append(v)
                att = torch.softmax((q @ k.transpose(-1, -2)) * (dh ** -0.5), dim=-1)
                x = x + blk["proj"]((att @ v).reshape(1, m.dim))
                x = x + blk["ff2"](F.gelu(blk["ff1"](blk["ln2"](x))))
            return m.head(m.ln_f(x)), torch.stack(keys), torch.stack(values)

    step = Step(model).eval()
    blocks, heads, dh = len(model.blocks), model.heads, model.dim // model.heads
    out = HERE / "sasrec_5000_step.onnx"
    example = (torch.tensor([3]), torch.zeros(blocks, heads, 4, dh), torch.zeros(blocks, heads, 4, dh))
    torch.onnx.export(
        step, example, str(out), dynamo=False, opset_version=17,
        input_names=["item", "past_k", "past_v"], output_names=["scores", "present_k", "present_v"],
        dynamic_axes={"past_k": {2: "past"}, "past_v": {2: "past"}, "present_k": {2: "present"}, "present_v": {2: "present"}},
    )
    import onnx

    m = onnx.load(str(out))
    dims = m.graph.output[0].type.tensor_type.shape.dim
    if dims[0].dim_param:
        dims[0].dim_value = 1
        onnx.save(m, str(out))
    onnx.checker.check_model(m, full_check=True)
    # The rebuilt model is the committed one (same seed, same code), and the step model agrees.
    worst = check_sasrec(HERE / "sasrec_5000.onnx", out)
    with torch.no_grad():
        for seq in sessions():
            want = model(torch.tensor([seq])).numpy()[0]
            got = whole(HERE / "sasrec_5000.onnx", seq)
            assert np.abs(want - got).max() <= TOLERANCE, "the rebuilt SASRec is not sasrec_5000.onnx"
    print(f"{out.name}: {out.stat().st_size} bytes; max |delta| vs the whole-sequence model {worst:.2e}")


# ---- derive (onnx only) -----------------------------------------------------------------

_sessions_cache: dict = {}


def session(path: Path):
    import onnxruntime as ort

    if path not in _sessions_cache:
        _sessions_cache[path] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _sessions_cache[path]


def whole(path: Path, seq: list[int]) -> np.ndarray:
    s = session(path)
    return s.run(None, {s.get_inputs()[0].name: np.array([seq], dtype=np.int64)})[0][0]


def compare(name: str, want: np.ndarray, got: np.ndarray, picked: np.ndarray | None, where: str) -> float:
    delta = float(np.abs(want - got).max())
    if delta > TOLERANCE:
        raise SystemExit(f"{name}: max |delta| {delta:.2e} vs the whole-sequence model at {where}")
    if top(got) != top(want):
        raise SystemExit(f"{name}: top-{K} differs from the whole-sequence model at {where}")
    if picked is not None and picked.tolist() != top(want):
        raise SystemExit(f"{name}: TopK's {K} differ from the whole-sequence model's at {where}")
    return delta


def check_gru(whole_path: Path, step_path: Path) -> float:
    s = session(step_path)
    names = [o.name for o in s.get_outputs()]
    worst = 0.0
    for seq in sessions():
        h = np.zeros((1, 1, 64), dtype=np.float32)
        for t, item in enumerate(seq):
            out = dict(zip(names, s.run(None, {"item": np.array([[item]], dtype=np.int64), "h": h})))
            h = out["h_next"]
            picked = out["top_indices"][0] if "top_indices" in out else None
            worst = max(worst, compare(step_path.name, whole(whole_path, seq[: t + 1]), out["scores"][0], picked, f"event {t + 1} of {seq}"))
    return worst


def check_sasrec(whole_path: Path, step_path: Path) -> float:
    s = session(step_path)
    names = [o.name for o in s.get_outputs()]
    shape = s.get_inputs()[1].shape  # [blocks, heads, 'past', head_dim]
    worst = 0.0
    for seq in sessions():
        k = np.zeros((shape[0], shape[1], 0, shape[3]), dtype=np.float32)
        v = k.copy()
        for t, item in enumerate(seq):
            out = dict(zip(names, s.run(None, {"item": np.array([item], dtype=np.int64), "past_k": k, "past_v": v})))
            k, v = out["present_k"], out["present_v"]
            picked = out["top_indices"][0] if "top_indices" in out else None
            worst = max(worst, compare(step_path.name, whole(whole_path, seq[: t + 1]), out["scores"][0], picked, f"event {t + 1} of {seq}"))
    return worst


def with_topk(model, k: int = K):
    """`model` with TopK(k) on its `scores` output, as serving exports end (scores kept)."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    g.initializer.append(helper.make_tensor("top_k", TensorProto.INT64, [1], [k]))
    g.node.append(helper.make_node("TopK", ["scores", "top_k"], ["top_values", "top_indices"], axis=-1, largest=1, sorted=1, name="TopK_serving"))
    g.output.append(helper.make_tensor_value_info("top_values", TensorProto.FLOAT, [1, k]))
    g.output.append(helper.make_tensor_value_info("top_indices", TensorProto.INT64, [1, k]))
    onnx.checker.check_model(m)
    return m


def gru_step(model):
    """session_gru.onnx cut to one step: the GRU takes `h` as its initial state."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    gru = next(n for n in g.node if n.op_type == "GRU")
    hidden = next(a.i for a in gru.attribute if a.name == "hidden_size")
    # GRU inputs: X, W, R, B, sequence_lens (empty: every sequence is whole), initial_h.
    while len(gru.input) < 5:
        gru.input.append("")
    gru.input.append("h")
    reshape = next(n for n in g.node if n.op_type == "Reshape" and n.input[0] == gru.output[1])
    g.node.append(helper.make_node("Identity", [gru.output[1]], ["h_next"], name="h_next"))
    del g.input[:]
    g.input.extend([
        helper.make_tensor_value_info("item", TensorProto.INT64, [1, 1]),
        helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 1, hidden]),
    ])
    gather = next(n for n in g.node if n.op_type == "Gather")
    gather.input[1] = "item"
    g.output.append(helper.make_tensor_value_info("h_next", TensorProto.FLOAT, [1, 1, hidden]))
    assert reshape is not None
    onnx.checker.check_model(m)
    return m


def derive(out_dir: Path) -> None:
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    gru_whole = ROOT / "tests/fixtures/session_gru.onnx"
    step = gru_step(onnx.load(str(gru_whole)))
    written = {
        "gru_step.onnx": (step, check_gru, gru_whole),
        "gru_step_topk.onnx": (with_topk(step), check_gru, gru_whole),
        "sasrec_step_topk.onnx": (with_topk(onnx.load(str(HERE / "sasrec_5000_step.onnx"))), check_sasrec, HERE / "sasrec_5000.onnx"),
    }
    for name, (model, check, reference) in written.items():
        path = out_dir / name
        onnx.save(model, str(path))
        worst = check(reference, path)
        print(f"{name}: {path.stat().st_size} bytes; every event of 7 sessions vs {reference.name}: max |delta| {worst:.2e}, top-{K} identical")
    worst = check_sasrec(HERE / "sasrec_5000.onnx", HERE / "sasrec_5000_step.onnx")
    print(f"sasrec_5000_step.onnx: every event of 7 sessions vs sasrec_5000.onnx: max |delta| {worst:.2e}, top-{K} identical")


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "sasrec":
        make_sasrec()
    elif len(sys.argv) == 3 and sys.argv[1] == "derive":
        derive(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
