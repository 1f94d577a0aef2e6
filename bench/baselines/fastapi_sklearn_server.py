"""Baseline of bench/python: the scikit-learn model of the Python container's tests behind a
hand-written FastAPI + uvicorn server (uvloop and httptools, uvicorn's fastest setup), answering
what berth's container answers for the same request: JSON rows in, JSON predictions out.

Usage: BENCH_MODEL=/path/model.joblib python3 fastapi_sklearn_server.py PORT WORKERS
"""
import json
import os
import sys

import joblib
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

model = joblib.load(os.environ["BENCH_MODEL"])
app = FastAPI()


@app.get("/ping")
async def ping():
    return Response(status_code=200)


@app.post("/invocations")
async def invocations(request: Request):
    rows = np.asarray(json.loads(await request.body()), dtype=np.float32)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    return Response(json.dumps(model.predict(rows).tolist()), media_type="application/json")


if __name__ == "__main__":
    import uvicorn

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run("fastapi_sklearn_server:app", app_dir=os.path.dirname(os.path.abspath(__file__)), host="127.0.0.1", port=port,
                workers=workers, loop="uvloop", http="httptools", log_level="warning", access_log=False)
