# Runs an ONNX model with onnxruntime on the inputs foresight-export generated, for the
# converter's parity check. Usage: python3 ort_parity.py request.json response.json
#
# Writes {"version", "outputs"} on success, or {"error", "fix"} — one sentence each — on any
# failure: the converter shows those, never a Python traceback.
import json
import sys


def fail(response, error, fix):
    json.dump({"error": error, "fix": fix}, open(response, "w"))
    sys.exit(0)


def session_for(ort, model, output):
    """A session that can return `output`, exposing it as a graph output when it is an
    intermediate tensor (onnxruntime only returns graph outputs)."""
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    if output in [o.name for o in sess.get_outputs()]:
        return sess
    try:
        import onnx
    except ImportError:
        raise LookupError(
            f"`{output}` is not a graph output and the `onnx` package, needed to expose it, is not installed"
        )
    proto = onnx.load(model)
    produced = {name for node in proto.graph.node for name in node.output}
    if output not in produced:
        raise LookupError(f"no node of the model computes `{output}`")
    proto.graph.output.append(onnx.ValueInfoProto(name=output))
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def main(request, response):
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        fail(response, f"python cannot import {e.name}", "pip install onnxruntime numpy, or pass --no-onnxruntime")
    req = json.load(open(request))
    try:
        sess = session_for(ort, req["model"], req["output"])
    except LookupError as e:
        fail(response, str(e), "pip install onnx, or pass --no-onnxruntime to compare with tract only")
    except Exception as e:  # onnxruntime raises its own types; all mean the same here
        fail(response, f"onnxruntime cannot load the model ({type(e).__name__}: {first_line(e)})",
             "check that onnxruntime supports the model's opset, or pass --no-onnxruntime")
    inputs = sess.get_inputs()
    names = [i.name for i in inputs]
    if req.get("input") is not None and req["input"] not in names:
        fail(response, f"the model has no input `{req['input']}` (it has {', '.join(names)})", "pass --input with one of those")
    inp = inputs[0] if req.get("input") is None else inputs[names.index(req["input"])]
    outputs = []
    try:
        for x in req["inputs"]:
            if req["kind"] == "recommender":
                arr = np.array(x, dtype=np.int32 if inp.type == "tensor(int32)" else np.int64)
                if len(inp.shape) == 2:
                    arr = arr.reshape(1, -1)
            else:
                arr = np.array([x], dtype=np.float32)
            y = sess.run([req["output"]], {inp.name: arr})[0]
            outputs.append(np.asarray(y, dtype=np.float64).reshape(-1).tolist())
    except Exception as e:
        fail(response, f"onnxruntime failed while running the model ({type(e).__name__}: {first_line(e)})",
             "run the model once with onnxruntime yourself on a [1, seq] input, or pass --no-onnxruntime")
    json.dump({"version": ort.__version__, "outputs": outputs}, open(response, "w"))


def first_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else "no message"


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
