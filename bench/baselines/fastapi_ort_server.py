"""Baseline (c) of bench/invoke: the same ONNX model behind a hand-written FastAPI + uvicorn server.

Usage: python3 fastapi_ort_server.py MODEL_PATH PORT
"""
import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

model_path, port = sys.argv[1], int(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output_names = [o.name for o in session.get_outputs()]
app = FastAPI()


@app.get("/ping")
def ping():
    return Response(status_code=200)


@app.post("/invocations")
async def invocations(request: Request):
    rows = np.asarray(await request.json(), dtype=np.float32)
    outputs = session.run(None, {input_name: rows})
    return JSONResponse({name: out.tolist() for name, out in zip(output_names, outputs)})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
