// Reads a pickled xgboost Booster without running any Python: a small pickle machine that knows the
// opcodes pickle protocols 2–5 use for plain data, records global names without importing anything,
// and returns the bytes of the Booster's `handle` state. A pickle is code in Python; here it is data.

export class PickleError extends Error {}

const MARK = Symbol('mark');
interface Global { readonly global: string }
interface Built { readonly cls: unknown; state?: unknown }

export function boosterBytesFromPickle(buf: Uint8Array): Uint8Array {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const text = new TextDecoder();
  const u8 = () => buf[pos++] as number;
  const u32 = () => { pos += 4; return view.getUint32(pos - 4, true); };
  const bytes = (n: number) => { if (pos + n > buf.length) throw new PickleError('truncated pickle'); pos += n; return buf.subarray(pos - n, pos); };
  const line = () => { const end = buf.indexOf(0x0a, pos); if (end < 0) throw new PickleError('truncated pickle'); const s = text.decode(buf.subarray(pos, end)); pos = end + 1; return s; };
  const popMark = (): unknown[] => {
    const items: unknown[] = [];
    for (;;) {
      if (stack.length === 0) throw new PickleError('pickle stack underflow');
      const v = stack.pop();
      if (v === MARK) return items.reverse();
      items.push(v);
    }
  };
  const top = () => stack[stack.length - 1];

  for (;;) {
    if (pos >= buf.length) throw new PickleError('pickle ended without STOP');
    const op = u8();
    switch (op) {
      case 0x80: pos += 1; break; // PROTO
      case 0x95: pos += 8; break; // FRAME
      case 0x2e: { // STOP
        const result = stack.pop();
        return handleOf(result);
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map<unknown, unknown>()); break; // EMPTY_DICT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: pos += 2; stack.push(view.getUint16(pos - 2, true)); break; // BININT2
      case 0x4a: pos += 4; stack.push(view.getInt32(pos - 4, true)); break; // BININT
      case 0x47: pos += 8; stack.push(view.getFloat64(pos - 8)); break; // BINFLOAT
      case 0x8c: stack.push(text.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x58: stack.push(text.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8d: { pos += 8; const n = Number(view.getBigUint64(pos - 8, true)); stack.push(text.decode(bytes(n))); break; } // BINUNICODE8
      case 0x55: stack.push(text.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x54: stack.push(text.decode(bytes(u32()))); break; // BINSTRING
      case 0x43: stack.push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32())); break; // BINBYTES
      case 0x8e: { pos += 8; stack.push(bytes(Number(view.getBigUint64(pos - 8, true)))); break; } // BINBYTES8
      case 0x96: { pos += 8; stack.push(bytes(Number(view.getBigUint64(pos - 8, true)))); break; } // BYTEARRAY8
      case 0x63: { const mod = line(); const name = line(); stack.push({ global: `${mod}.${name}` } satisfies Global); break; } // GLOBAL
      case 0x93: { const name = stack.pop(); const mod = stack.pop(); stack.push({ global: `${String(mod)}.${String(name)}` } satisfies Global); break; } // STACK_GLOBAL
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x68: stack.push(memo.get(u8())); break; // BINGET
      case 0x6a: stack.push(memo.get(u32())); break; // LONG_BINGET
      case 0x85: stack.push([stack.pop()]); break; // TUPLE1
      case 0x86: { const b = stack.pop(); const a = stack.pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = stack.pop(); const b = stack.pop(); const a = stack.pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = stack.pop(); (top() as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); (top() as unknown[]).push(...items); break; } // APPENDS
      case 0x73: { const v = stack.pop(); const k = stack.pop(); (top() as Map<unknown, unknown>).set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = top() as Map<unknown, unknown>;
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x81: case 0x52: { // NEWOBJ, REDUCE: record what would be built, build nothing
        const args = stack.pop();
        const cls = stack.pop() as Global;
        if (cls.global === '_codecs.encode') {
          // Protocol 2 writes bytes as _codecs.encode(text, 'latin1').
          const a = (args as unknown[])[0];
          stack.push(typeof a === 'string' ? Uint8Array.from(a, (ch) => ch.charCodeAt(0) & 0xff) : new Uint8Array(0));
        } else if (cls.global === 'builtins.bytearray' || cls.global === '__builtin__.bytearray') {
          // Protocol 3+ passes bytes; protocol 2 passes a latin-1 string (bytearray(s, 'latin-1')).
          const a = (args as unknown[])[0];
          stack.push(a instanceof Uint8Array ? a : typeof a === 'string' ? Uint8Array.from(a, (ch) => ch.charCodeAt(0) & 0xff) : new Uint8Array(0));
        } else {
          stack.push({ cls } satisfies Built);
        }
        break;
      }
      case 0x62: { const state = stack.pop(); (top() as Built).state = state; break; } // BUILD
      default:
        throw new PickleError(`the pickle uses opcode 0x${op.toString(16)} at byte ${pos - 1}, which a pickled xgboost Booster does not need`);
    }
  }
}

function handleOf(result: unknown): Uint8Array {
  const built = result as Built | undefined;
  const cls = (built?.cls as Global | undefined)?.global;
  if (!cls || !/\bBooster$/.test(cls)) {
    throw new PickleError(`the pickle holds a ${cls ?? typeof result}, not an xgboost Booster (a pickled XGBClassifier or other wrapper is not a model file SageMaker's XGBoost container loads either)`);
  }
  const state = built?.state;
  const handle: unknown = state instanceof Map ? (state as Map<unknown, unknown>).get('handle') : undefined;
  if (!(handle instanceof Uint8Array)) throw new PickleError('the pickled Booster has no model bytes in its "handle" state');
  return handle;
}
