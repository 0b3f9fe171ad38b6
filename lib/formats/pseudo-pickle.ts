/**
 * McUtils' pseudo-pickling of objects: an object is stored as a dict
 *   { pseudopickle_protocol: 1, class: { pseudopickle_protocol: 1, pickle_data: <base64 pickle of the class> }, state: <to_state()> }
 * where the class pickle is a protocol-4 reference to `module.qualname` (pickle's STACK_GLOBAL), so a
 * Python program that defines the class loads our objects and we load theirs. Only class
 * references are ever unpickled here — no other pickle opcodes are accepted.
 */
import { CheckpointerError } from '../errors';
import { float16ToNumber } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { pythonClassPath } from '../values/registry';

export const PSEUDOPICKLE_PROTOCOL = 1;

/** Pickle (protocol 4) of a reference to the class `module.qualname`. */
export function pickleClassRef(module: string, qualname: string): Buffer {
  const str = (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 256) return Buffer.concat([Buffer.from([0x8c, b.length]), b, Buffer.from([0x94])]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from([0x58]), len, b, Buffer.from([0x94])]);
  };
  const body = Buffer.concat([str(module), str(qualname), Buffer.from([0x93, 0x94, 0x2e])]);
  const frame = Buffer.alloc(11);
  frame[0] = 0x80; // PROTO
  frame[1] = 4;
  frame[2] = 0x95; // FRAME
  frame.writeBigUInt64LE(BigInt(body.length), 3);
  return Buffer.concat([frame, body]);
}

/** The `module.qualname` a class-reference pickle names; throws on any other pickle. */
export function unpickleClassRef(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strings: string[] = [];
  let pos = 0;
  let result: string | undefined;
  const need = (n: number): void => {
    if (pos + n > b.length) throw new Error('truncated class pickle');
  };
  while (pos < b.length) {
    const op = b[pos++]!;
    switch (op) {
      case 0x80: need(1); pos += 1; break; // PROTO
      case 0x95: need(8); pos += 8; break; // FRAME
      case 0x94: break; // MEMOIZE
      case 0x8c: { need(1); const n = b[pos++]!; need(n); strings.push(b.toString('utf8', pos, pos + n)); pos += n; break; }
      case 0x58: { need(4); const n = b.readUInt32LE(pos); pos += 4; need(n); strings.push(b.toString('utf8', pos, pos + n)); pos += n; break; }
      case 0x93: { // STACK_GLOBAL
        const name = strings.pop();
        const mod = strings.pop();
        if (name === undefined || mod === undefined) throw new Error('malformed class pickle');
        result = `${mod}.${name}`;
        break;
      }
      case 0x63: { // GLOBAL: "c<module>\n<name>\n" (protocols 0-3)
        const nl1 = b.indexOf(0x0a, pos);
        const nl2 = nl1 < 0 ? -1 : b.indexOf(0x0a, nl1 + 1);
        if (nl2 < 0) throw new Error('malformed class pickle');
        result = `${b.toString('utf8', pos, nl1)}.${b.toString('utf8', nl1 + 1, nl2)}`;
        pos = nl2 + 1;
        break;
      }
      case 0x71: need(1); pos += 1; break; // BINPUT
      case 0x72: need(4); pos += 4; break; // LONG_BINPUT
      case 0x2e: // STOP
        if (result === undefined) throw new Error('class pickle names no class');
        return result;
      default:
        throw new Error(`class pickle has unsupported opcode 0x${op.toString(16)}`);
    }
  }
  throw new Error('class pickle has no STOP');
}

/** The class-reference pickle for a registered name, base64-encoded as McUtils stores it. */
export function classPickleBase64(className: string): string {
  const { module, qualname } = pythonClassPath(className);
  return pickleClassRef(module, qualname).toString('base64');
}

/** The `module.qualname` from McUtils' base64 `pickle_data`. */
export function classNameFromPickleBase64(data: string | Uint8Array): string {
  const text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  return unpickleClassRef(Buffer.from(text, 'base64'));
}

/** Bare qualname for matching: `__main__.DataHolderClass` is stored; users may register either. */
export function displayClassName(storedName: string): string {
  return storedName.startsWith('__main__.') ? storedName.slice('__main__.'.length) : storedName;
}

/** The pseudo-pickle dict for JSON: plain nested objects. */
export function encodePseudoPickleJson<T>(className: string, state: T): { pseudopickle_protocol: number; class: { pseudopickle_protocol: number; pickle_data: string }; state: T } {
  return {
    pseudopickle_protocol: PSEUDOPICKLE_PROTOCOL,
    class: { pseudopickle_protocol: PSEUDOPICKLE_PROTOCOL, pickle_data: classPickleBase64(className) },
    state,
  };
}

/** Recognises a pseudo-pickle dict read from JSON; undefined for an ordinary dict. */
export function decodePseudoPickleJson(node: { [k: string]: unknown }): { className: string; state: unknown } | undefined {
  const cls = node.class as { [k: string]: unknown } | undefined;
  if (node.pseudopickle_protocol === undefined || cls === null || typeof cls !== 'object' || typeof cls.pickle_data !== 'string') return undefined;
  try {
    return { className: displayClassName(classNameFromPickleBase64(cls.pickle_data)), state: node.state };
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------------ pickled values

/**
 * McUtils pickles what it cannot turn into JSON/HDF5 primitives — `bytes`, numpy scalars such as
 * `np.bool_` or `np.complex128` — and stores `{pseudopickle_protocol: 1, pickle_data: <base64>}`.
 * This reads those pickles with a small, closed interpreter: only the opcodes such pickles use,
 * and only the callables `numpy.core.multiarray.scalar` (numpy 2: `numpy._core.multiarray`),
 * `numpy.dtype` and `_codecs.encode` (protocol 2 bytes). Anything else is refused, so reading a
 * file never runs code.
 */
export class PickleError extends Error {}

const SCALAR_FUNCS = new Set(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar']);
const DTYPE_CLASS = 'numpy.dtype';
const CODECS_ENCODE = '_codecs.encode';

class PickleGlobal {
  constructor(readonly name: string) {}
}
class PickleDType {
  byteorder = '=';
  constructor(readonly code: string) {}
}
const MARK = Symbol('mark');

/** A numpy scalar's value from its dtype code (`b1`, `<f8`, `c16`, `U3`, …) and raw bytes. */
function numpyScalarValue(dt: PickleDType, raw: Buffer): unknown {
  const m = /^([biufcSUV])(\d+)$/.exec(dt.code);
  if (!m) throw new PickleError(`numpy scalar of dtype ${JSON.stringify(dt.code)} is not read (datetime, long double and object scalars are not supported)`);
  const kind = m[1]!;
  const size = Number(m[2]);
  const big = dt.byteorder === '>';
  if (raw.length !== size * (kind === 'U' ? 4 : 1)) throw new PickleError(`numpy scalar of dtype ${dt.code} holds ${raw.length} bytes`);
  switch (kind) {
    case 'b':
      if (size !== 1) break;
      return raw[0] !== 0;
    case 'i':
    case 'u': {
      if (![1, 2, 4, 8].includes(size)) break;
      if (size === 8) {
        const v = kind === 'i' ? (big ? raw.readBigInt64BE(0) : raw.readBigInt64LE(0)) : (big ? raw.readBigUInt64BE(0) : raw.readBigUInt64LE(0));
        const n = Number(v);
        return Number.isSafeInteger(n) ? n : v;
      }
      return kind === 'i' ? (big ? raw.readIntBE(0, size) : raw.readIntLE(0, size)) : (big ? raw.readUIntBE(0, size) : raw.readUIntLE(0, size));
    }
    case 'f':
      if (size === 2) return float16ToNumber(big ? raw.readUInt16BE(0) : raw.readUInt16LE(0));
      if (size === 4) return big ? raw.readFloatBE(0) : raw.readFloatLE(0);
      if (size === 8) return big ? raw.readDoubleBE(0) : raw.readDoubleLE(0);
      throw new PickleError(`numpy scalar of dtype ${dt.code} is a long double, which this package does not read`);
    case 'c': {
      if (size === 8) return new NDArray(Float32Array.of(big ? raw.readFloatBE(0) : raw.readFloatLE(0), big ? raw.readFloatBE(4) : raw.readFloatLE(4)), [], 'complex64');
      if (size === 16) return new NDArray(Float64Array.of(big ? raw.readDoubleBE(0) : raw.readDoubleLE(0), big ? raw.readDoubleBE(8) : raw.readDoubleLE(8)), [], 'complex128');
      throw new PickleError(`numpy scalar of dtype ${dt.code} is a long double complex, which this package does not read`);
    }
    case 'S':
    case 'V': {
      let end = raw.length;
      if (kind === 'S') while (end > 0 && raw[end - 1] === 0) end--;
      return Buffer.from(raw.subarray(0, end));
    }
    case 'U': {
      let s = '';
      for (let i = 0; i < size; i++) {
        const c = big ? raw.readUInt32BE(4 * i) : raw.readUInt32LE(4 * i);
        if (c > 0x10ffff) throw new PickleError('numpy str_ scalar holds an invalid code point');
        s += String.fromCodePoint(c);
      }
      return s.replace(/\0+$/, '');
    }
  }
  throw new PickleError(`numpy scalar of dtype ${dt.code} is not read`);
}

/**
 * The value a pickle of `bytes`, a numpy scalar or a class reference stands for: Buffer, boolean,
 * number / bigint (64-bit ints beyond 2^53), 0-d complex NDArray, string; a class reference gives
 * a PickleGlobal-free `{ className }`. Throws PickleError for any other pickle.
 */
export function unpickleValue(bytes: Uint8Array): unknown {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const need = (n: number): void => {
    if (n < 0 || pos + n > b.length) throw new PickleError('truncated pickle');
  };
  const pop = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) throw new PickleError('malformed pickle (stack underflow)');
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw new PickleError('malformed pickle (no mark)');
    const items = stack.splice(at);
    items.shift();
    return items;
  };
  const text = (n: number): string => {
    need(n);
    const s = b.toString('utf8', pos, pos + n);
    pos += n;
    return s;
  };
  const raw = (n: number): Buffer => {
    need(n);
    const out = Buffer.from(b.subarray(pos, pos + n));
    pos += n;
    return out;
  };
  const callGlobal = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PickleGlobal) || !Array.isArray(args)) throw new PickleError('malformed pickle (REDUCE)');
    if (SCALAR_FUNCS.has(fn.name)) {
      const [dt, data] = args as [unknown, unknown];
      if (!(dt instanceof PickleDType) || !Buffer.isBuffer(data)) throw new PickleError('malformed numpy scalar pickle');
      return numpyScalarValue(dt, data);
    }
    if (fn.name === DTYPE_CLASS && typeof args[0] === 'string') return new PickleDType(args[0]);
    if (fn.name === CODECS_ENCODE && typeof args[0] === 'string' && args[1] === 'latin1') return Buffer.from(args[0], 'latin1');
    throw new PickleError(`pickle calls ${fn.name}, which this package does not run`);
  };
  while (pos < b.length) {
    const op = b[pos++]!;
    switch (op) {
      case 0x80: need(1); pos += 1; break; // PROTO
      case 0x95: need(8); pos += 8; break; // FRAME
      case 0x94: memo.set(memo.size, stack[stack.length - 1]); break; // MEMOIZE
      case 0x71: need(1); memo.set(b[pos++]!, stack[stack.length - 1]); break; // BINPUT
      case 0x72: need(4); memo.set(b.readUInt32LE(pos), stack[stack.length - 1]); pos += 4; break; // LONG_BINPUT
      case 0x68: { need(1); const i = b[pos++]!; if (!memo.has(i)) throw new PickleError('malformed pickle (memo)'); stack.push(memo.get(i)); break; } // BINGET
      case 0x6a: { need(4); const i = b.readUInt32LE(pos); pos += 4; if (!memo.has(i)) throw new PickleError('malformed pickle (memo)'); stack.push(memo.get(i)); break; } // LONG_BINGET
      case 0x8c: { need(1); const n = b[pos++]!; stack.push(text(n)); break; } // SHORT_BINUNICODE
      case 0x58: { need(4); const n = b.readUInt32LE(pos); pos += 4; stack.push(text(n)); break; } // BINUNICODE
      case 0x43: { need(1); const n = b[pos++]!; stack.push(raw(n)); break; } // SHORT_BINBYTES
      case 0x42: { need(4); const n = b.readUInt32LE(pos); pos += 4; stack.push(raw(n)); break; } // BINBYTES
      case 0x8e: { need(8); const n = Number(b.readBigUInt64LE(pos)); pos += 8; stack.push(raw(n)); break; } // BINBYTES8
      case 0x96: { need(8); const n = Number(b.readBigUInt64LE(pos)); pos += 8; stack.push(raw(n)); break; } // BYTEARRAY8
      case 0x4b: need(1); stack.push(b[pos++]!); break; // BININT1
      case 0x4d: need(2); stack.push(b.readUInt16LE(pos)); pos += 2; break; // BININT2
      case 0x4a: need(4); stack.push(b.readInt32LE(pos)); pos += 4; break; // BININT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x28: stack.push(MARK); break; // MARK
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const y = pop(); const x = pop(); stack.push([x, y]); break; } // TUPLE2
      case 0x87: { const z = pop(); const y = pop(); const x = pop(); stack.push([x, y, z]); break; } // TUPLE3
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const mod = pop();
        if (typeof name !== 'string' || typeof mod !== 'string') throw new PickleError('malformed pickle (STACK_GLOBAL)');
        stack.push(new PickleGlobal(`${mod}.${name}`));
        break;
      }
      case 0x63: { // GLOBAL
        const nl1 = b.indexOf(0x0a, pos);
        const nl2 = nl1 < 0 ? -1 : b.indexOf(0x0a, nl1 + 1);
        if (nl2 < 0) throw new PickleError('malformed pickle (GLOBAL)');
        stack.push(new PickleGlobal(`${b.toString('utf8', pos, nl1)}.${b.toString('utf8', nl1 + 1, nl2)}`));
        pos = nl2 + 1;
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(callGlobal(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: only numpy.dtype's state (version, byteorder, ...) is accepted
        const state = pop();
        const target = stack[stack.length - 1];
        if (!(target instanceof PickleDType) || !Array.isArray(state)) throw new PickleError('pickle builds an object this package does not make');
        if (typeof state[1] === 'string') target.byteorder = state[1];
        break;
      }
      case 0x2e: { // STOP
        const v = pop();
        if (v instanceof PickleGlobal) return { className: v.name };
        if (v instanceof PickleDType) throw new PickleError('the pickle holds a numpy dtype, not a value');
        return v;
      }
      default:
        throw new PickleError(`pickle opcode 0x${op.toString(16)} is not read by this package`);
    }
  }
  throw new PickleError('pickle has no STOP');
}

/** A pickle (protocol 4, as Python 3.8+ writes by default) of a Python `bytes` object. */
export function pickleBytes(data: Uint8Array): Buffer {
  const n = data.length;
  let head: Buffer;
  if (n < 256) head = Buffer.from([0x43, n]); // SHORT_BINBYTES
  else if (n < 2 ** 32) {
    head = Buffer.alloc(5);
    head[0] = 0x42; // BINBYTES
    head.writeUInt32LE(n, 1);
  } else {
    head = Buffer.alloc(9);
    head[0] = 0x8e; // BINBYTES8
    head.writeBigUInt64LE(BigInt(n), 1);
  }
  const bodyLength = head.length + n + 2;
  const frame = Buffer.alloc(11);
  frame[0] = 0x80; // PROTO 4
  frame[1] = 4;
  frame[2] = 0x95; // FRAME
  frame.writeBigUInt64LE(BigInt(bodyLength), 3);
  return Buffer.concat([frame, head, data, Buffer.from([0x94, 0x2e])]); // MEMOIZE, STOP
}

/** The bytes of McUtils' `pickle_data`: base64 text (JSON, HDF5 fixed strings) or a raw pickle (HDF5 variable-length bytes). */
export function pickleDataBytes(data: string | Uint8Array): Buffer {
  const bin = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bin[0] === 0x80) return bin; // a pickle starts with PROTO; base64 text never holds 0x80
  return Buffer.from(bin.toString('latin1'), 'base64');
}

/**
 * The value McUtils' `{pseudopickle_protocol, pickle_data}` holds (bytes, a numpy scalar), or
 * a CheckpointerError naming what is not read.
 */
export function decodePickleData(data: string | Uint8Array, where: string): unknown {
  try {
    const v = unpickleValue(pickleDataBytes(data));
    if (v !== null && typeof v === 'object' && 'className' in v && !(v instanceof NDArray) && !Buffer.isBuffer(v)) {
      throw new PickleError(`the pickle names the class ${(v as { className: string }).className}, not a value`);
    }
    return v;
  } catch (err) {
    if (!(err instanceof PickleError)) throw err;
    throw new CheckpointerError(`${where}: a pickled value this package does not read: ${err.message}`, { code: 'ERR_UNSUPPORTED_VALUE', cause: err });
  }
}

/**
 * Whether a pseudo-pickled object's class is a numpy scalar type (`numpy.bool_`, `numpy.float32`,
 * …): McUtils stores such a scalar as `{class: <numpy.bool_>, state: <pickle of the value>}`, and
 * its value is the state's.
 */
export function isNumpyScalarClass(className: string): boolean {
  return /^numpy\.(bool_|bool|u?int(8|16|32|64)|u?int[cp]?|u?byte|u?short|u?longlong|float(16|32|64)|half|single|double|complex(64|128)|csingle|cdouble|str_|bytes_|void)$/.test(className);
}

/** The pseudo-pickle dict McUtils writes for Python `bytes` (JSON: base64 text). */
export function encodeBytesPseudoPickleJson(data: Uint8Array): { pseudopickle_protocol: number; pickle_data: string } {
  return { pseudopickle_protocol: PSEUDOPICKLE_PROTOCOL, pickle_data: pickleBytes(data).toString('base64') };
}
