"""Baseline of bench/xgboost: xgboost's own predict and inplace_predict on the same model and rows.

Usage: /usr/bin/python3 xgboost_predict.py MODEL ROWS.csv SINGLE_CALLS
Prints JSON: median single-row latency (microseconds) of predict(DMatrix) and inplace_predict, and
rows per second of inplace_predict for batches of 1, 100 and all rows (all cores, xgboost's default).
"""
import json
import statistics
import sys
import time
import warnings

import numpy as np
import xgboost as xgb

warnings.filterwarnings("ignore")
model_path, rows_path, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
booster = xgb.Booster()
booster.load_model(model_path)
X = np.genfromtxt(rows_path, delimiter=",", dtype=np.float32)


def timed(fn, n):
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


one = X[:1]
for _ in range(200):
    booster.inplace_predict(one)
single_inplace = statistics.median(timed(lambda: booster.inplace_predict(one), calls)) * 1e6
single_predict = statistics.median(timed(lambda: booster.predict(xgb.DMatrix(one)), max(100, calls // 10))) * 1e6
rates = {}
for size in (1, 100, len(X)):
    batch = X[:size]
    reps = max(3, min(2000, 200000 // size))
    total = sum(timed(lambda: booster.inplace_predict(batch), reps))
    rates[str(size)] = size * reps / total
print(json.dumps({"single_inplace_us": single_inplace, "single_predict_us": single_predict, "rows_per_s": rates, "checksum": float(booster.inplace_predict(X[:100]).sum())}))
