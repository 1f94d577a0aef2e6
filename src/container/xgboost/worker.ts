// A worker thread of ParallelModel: compiles the model from the bytes it is given and predicts the
// slices of rows it is sent.
import { parentPort, workerData } from 'node:worker_threads';
import { compile } from './compile.js';
import { readModel } from './model.js';

const model = compile(readModel((workerData as { bytes: Uint8Array }).bytes));
parentPort?.on('message', (m: { id: number; data: Float32Array; rows: number; cols: number }) => {
  try {
    const out = model.predict({ data: m.data, rows: m.rows, cols: m.cols });
    parentPort?.postMessage({ id: m.id, out }, [out.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort?.postMessage({ id: m.id, error: (err as Error).message });
  }
});
