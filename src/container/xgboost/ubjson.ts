// A Universal Binary JSON reader for XGBoost's .ubj models: big-endian numbers, length-prefixed
// strings and keys, and the optimised containers (`$` type, `#` count) XGBoost writes for its arrays,
// which are returned as typed arrays.

export class UbjsonError extends Error {}

export function decodeUbjson(buf: Uint8Array): unknown {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const text = new TextDecoder();

  const need = (n: number) => {
    if (pos + n > buf.length) throw new UbjsonError(`unexpected end of data at byte ${pos}`);
  };
  const int = (marker: number): number => {
    switch (marker) {
      case 0x69: need(1); return view.getInt8(pos++); // i
      case 0x55: need(1); return view.getUint8(pos++); // U
      case 0x49: need(2); pos += 2; return view.getInt16(pos - 2); // I
      case 0x6c: need(4); pos += 4; return view.getInt32(pos - 4); // l
      case 0x4c: { need(8); pos += 8; return Number(view.getBigInt64(pos - 8)); } // L
      default: throw new UbjsonError(`expected an integer marker at byte ${pos - 1}, found 0x${marker.toString(16)}`);
    }
  };
  const length = () => {
    need(1);
    return int(buf[pos++] as number);
  };
  const string = () => {
    const n = length();
    need(n);
    pos += n;
    return text.decode(buf.subarray(pos - n, pos));
  };

  const typedArray = (type: number, count: number): unknown => {
    const read = (size: number, make: (off: number) => unknown) => {
      need(size * count);
      const out = make(pos);
      pos += size * count;
      return out;
    };
    switch (type) {
      case 0x64: return read(4, (o) => { const a = new Float32Array(count); for (let i = 0; i < count; i++) a[i] = view.getFloat32(o + 4 * i); return a; }); // d
      case 0x44: return read(8, (o) => { const a = new Float64Array(count); for (let i = 0; i < count; i++) a[i] = view.getFloat64(o + 8 * i); return a; }); // D
      case 0x6c: return read(4, (o) => { const a = new Int32Array(count); for (let i = 0; i < count; i++) a[i] = view.getInt32(o + 4 * i); return a; }); // l
      case 0x4c: return read(8, (o) => { const a = new Float64Array(count); for (let i = 0; i < count; i++) a[i] = Number(view.getBigInt64(o + 8 * i)); return a; }); // L
      case 0x49: return read(2, (o) => { const a = new Int16Array(count); for (let i = 0; i < count; i++) a[i] = view.getInt16(o + 2 * i); return a; }); // I
      case 0x69: return read(1, (o) => new Int8Array(buf.slice(o, o + count).buffer)); // i
      case 0x55: return read(1, (o) => buf.slice(o, o + count)); // U
      default: {
        // No `$` type: every element carries its own marker.
        const out: unknown[] = [];
        for (let i = 0; i < count; i++) {
          if (type >= 0) out.push(value(type));
          else { need(1); out.push(value(buf[pos++] as number)); }
        }
        return out;
      }
    }
  };

  const value = (marker: number): unknown => {
    switch (marker) {
      case 0x5a: return null; // Z
      case 0x54: return true; // T
      case 0x46: return false; // F
      case 0x69: case 0x55: case 0x49: case 0x6c: case 0x4c: return int(marker);
      case 0x64: need(4); pos += 4; return view.getFloat32(pos - 4); // d
      case 0x44: need(8); pos += 8; return view.getFloat64(pos - 8); // D
      case 0x53: return string(); // S
      case 0x43: need(1); return String.fromCharCode(buf[pos++] as number); // C
      case 0x5b: return array(); // [
      case 0x7b: return object(); // {
      default: throw new UbjsonError(`unknown marker 0x${marker.toString(16)} at byte ${pos - 1}`);
    }
  };

  const header = (): { type?: number; count?: number } => {
    let type: number | undefined;
    let count: number | undefined;
    if (buf[pos] === 0x24) { pos++; need(1); type = buf[pos++]; } // $
    if (buf[pos] === 0x23) { pos++; count = length(); } // #
    return { type, count };
  };

  const array = (): unknown => {
    const { type, count } = header();
    if (count !== undefined) return typedArray(type ?? -1, count);
    const out: unknown[] = [];
    for (;;) {
      need(1);
      const m = buf[pos++] as number;
      if (m === 0x5d) return out; // ]
      out.push(value(m));
    }
  };

  const object = (): Record<string, unknown> => {
    const { type, count } = header();
    const out: Record<string, unknown> = {};
    if (count !== undefined) {
      for (let i = 0; i < count; i++) {
        const k = string();
        if (type !== undefined) out[k] = value(type);
        else { need(1); out[k] = value(buf[pos++] as number); }
      }
      return out;
    }
    for (;;) {
      need(1);
      if (buf[pos] === 0x7d) { pos++; return out; } // }
      const k = string();
      need(1);
      out[k] = value(buf[pos++] as number);
    }
  };

  need(1);
  return value(buf[pos++] as number);
}
