// Baseline (b) of bench/invoke: the least a Node server can do to serve the same ONNX model — one
// process, node:http, onnxruntime-node with the same session options as berth/onnx, no routing.
import { createServer } from 'node:http';
import * as ort from 'onnxruntime-node';

const [modelPath, port] = [process.argv[2], Number(process.argv[3])];
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
const input = session.inputNames[0];

createServer((req, res) => {
  if (req.url === '/ping') return void res.writeHead(200).end();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const rows = JSON.parse(Buffer.concat(chunks).toString());
    const data = Float32Array.from(rows.flat());
    const out = await session.run({ [input]: new ort.Tensor('float32', data, [rows.length, rows[0].length]) });
    const body = {};
    for (const name of session.outputNames) {
      const t = out[name];
      const flat = Array.from(t.data, (v) => (typeof v === 'bigint' ? Number(v) : v));
      body[name] = t.dims.length === 2 ? Array.from({ length: t.dims[0] }, (_, i) => flat.slice(i * t.dims[1], (i + 1) * t.dims[1])) : flat;
    }
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  });
}).listen(port, '127.0.0.1', () => console.log('ready'));
