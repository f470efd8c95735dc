# Runs an ONNX model with onnxruntime on the inputs foresight-export generated, for the
# converter's parity check. Usage: python3 ort_parity.py request.json response.json
import json
import sys

import numpy as np
import onnxruntime as ort

req = json.load(open(sys.argv[1]))
sess = ort.InferenceSession(req["model"], providers=["CPUExecutionProvider"])
inputs = sess.get_inputs()
inp = inputs[0] if req.get("input") is None else next(i for i in inputs if i.name == req["input"])
outputs = []
for x in req["inputs"]:
    if req["kind"] == "recommender":
        arr = np.array(x, dtype=np.int32 if inp.type == "tensor(int32)" else np.int64)
        if len(inp.shape) == 2:
            arr = arr.reshape(1, -1)
    else:
        arr = np.array([x], dtype=np.float32)
    y = sess.run([req["output"]], {inp.name: arr})[0]
    outputs.append(np.asarray(y, dtype=np.float64).reshape(-1).tolist())
json.dump({"version": ort.__version__, "outputs": outputs}, open(sys.argv[2], "w"))
