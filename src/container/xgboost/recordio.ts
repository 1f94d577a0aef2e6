// SageMaker's application/x-recordio-protobuf: RecordIO frames (magic 0xced7230a, length, payload
// padded to 4 bytes) around `aialgs.data.Record` protobuf messages. Only what XGBoost serving uses is
// read and written: Record.features["values"] / Record.label[key] as a Float32Tensor (values, keys,
// shape), with the field numbers of SageMaker's published record.proto.

const MAGIC = 0xced7230a;

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end = buf.length) {}
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated protobuf varint');
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += this.varint();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

interface Tensor { values: number[]; keys: number[]; shape: number[] }

function readTensor(r: Reader, end: number): Tensor {
  const t: Tensor = { values: [], keys: [], shape: [] };
  const view = new DataView(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength);
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) { // packed float values
      const len = r.varint();
      for (let p = r.pos; p < r.pos + len; p += 4) t.values.push(view.getFloat32(p, true));
      r.pos += len;
    } else if (field === 1 && wire === 5) {
      t.values.push(view.getFloat32(r.pos, true));
      r.pos += 4;
    } else if ((field === 2 || field === 3) && wire === 2) { // packed uint64 keys / shape
      const len = r.varint();
      const stop = r.pos + len;
      const into = field === 2 ? t.keys : t.shape;
      while (r.pos < stop) into.push(r.varint());
    } else if ((field === 2 || field === 3) && wire === 0) {
      (field === 2 ? t.keys : t.shape).push(r.varint());
    } else {
      r.skip(wire);
    }
  }
  return t;
}

/** Record.features["values"] of one record as a Float32Tensor. */
function recordFeatures(buf: Uint8Array): Tensor | undefined {
  const r = new Reader(buf);
  let found: Tensor | undefined;
  while (r.pos < buf.length) {
    const tag = r.varint();
    const len = (tag & 7) === 2 ? r.varint() : -1;
    if (tag >>> 3 !== 1 || len < 0) { if (len < 0) r.skip(tag & 7); else r.pos += len; continue; }
    // A map entry: key (1) string, value (2) Value { float32_tensor = 2 }.
    const entryEnd = r.pos + len;
    let key = '';
    let tensor: Tensor | undefined;
    while (r.pos < entryEnd) {
      const t = r.varint();
      const l = r.varint();
      if (t >>> 3 === 1) key = new TextDecoder().decode(buf.subarray(r.pos, r.pos + l));
      else if (t >>> 3 === 2) {
        const valueEnd = r.pos + l;
        const inner = new Reader(buf, valueEnd);
        inner.pos = r.pos;
        while (inner.pos < valueEnd) {
          const vt = inner.varint();
          if (vt >>> 3 === 2 && (vt & 7) === 2) {
            const tl = inner.varint();
            tensor = readTensor(inner, inner.pos + tl);
          } else inner.skip(vt & 7);
        }
      }
      r.pos += l;
    }
    if (key === 'values' && tensor) found = tensor;
    r.pos = entryEnd;
  }
  return found;
}

/** Rows (NaN where a sparse record has no value) from a RecordIO-protobuf body. */
export function decodeRecordio(body: Uint8Array): { rows: number[][]; cols: number } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const rows: number[][] = [];
  let cols = 0;
  let pos = 0;
  while (pos + 8 <= body.length) {
    if (view.getUint32(pos, true) !== MAGIC) throw new Error(`no RecordIO magic number at byte ${pos}`);
    const len = view.getUint32(pos + 4, true) & ((1 << 29) - 1);
    const start = pos + 8;
    if (start + len > body.length) throw new Error('a RecordIO record runs past the end of the body');
    const t = recordFeatures(body.subarray(start, start + len));
    if (!t) throw new Error('a record has no features["values"] float32 tensor');
    if (t.keys.length > 0) {
      const width = t.shape[0] ?? Math.max(...t.keys) + 1;
      const row = new Array<number>(width).fill(NaN);
      t.keys.forEach((k, i) => { row[k] = t.values[i] as number; });
      rows.push(row);
      cols = Math.max(cols, width);
    } else {
      rows.push(t.values);
      cols = Math.max(cols, t.values.length);
    }
    pos = start + Math.ceil(len / 4) * 4;
  }
  if (pos !== body.length) throw new Error('trailing bytes after the last RecordIO record');
  return { rows, cols };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint((field << 3) | 2), ...varint(payload.length), ...payload]);
}

/** One Record whose label map holds each key's values as a Float32Tensor, RecordIO-framed. */
export function encodeRecordio(records: readonly Readonly<Record<string, readonly number[]>>[]): Buffer {
  const frames: Buffer[] = [];
  for (const rec of records) {
    const entries: Uint8Array[] = [];
    for (const [key, values] of Object.entries(rec)) {
      const floats = Buffer.alloc(4 * values.length);
      values.forEach((v, i) => floats.writeFloatLE(v, 4 * i));
      const tensor = lengthDelimited(1, floats);
      const value = lengthDelimited(2, tensor); // Value.float32_tensor
      const entry = Uint8Array.from([...lengthDelimited(1, new TextEncoder().encode(key)), ...lengthDelimited(2, value)]);
      entries.push(lengthDelimited(2, entry)); // Record.label
    }
    const payload = Buffer.concat(entries);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(payload.length, 4);
    const pad = Buffer.alloc((4 - (payload.length % 4)) % 4);
    frames.push(header, payload, pad);
  }
  return Buffer.concat(frames);
}
