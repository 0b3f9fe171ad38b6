/**
 * The `.npy` format (numpy's `numpy.lib.format`): a magic string, a version, a header that is a
 * Python dict literal, then the raw element data.
 *
 *   \x93NUMPY <major> <minor> <header length: uint16 (1.0) | uint32 (2.0, 3.0)>
 *   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   + spaces + '\n'
 *
 * The header is padded so the data starts at a multiple of 64 bytes. Version 3.0 only changes the
 * header's text encoding (UTF-8 instead of latin-1).
 *
 * Decoding never copies the element data more than once: `planDecode` allocates the destination
 * TypedArray (aligned, as every fresh TypedArray is) and hands out a byte view of it for the
 * caller to read the file into; `finish()` then fixes byte order in place (big-endian files) or
 * transposes (Fortran order, the one case that needs a second buffer) and builds the value.
 *
 * Values: rank ≥ 1 numeric → NDArray (exact dtype and shape); rank 0 → number / boolean / bigint
 * (64-bit ints beyond ±2^53) — complex stays a 0-d NDArray; `U`/`S` strings → string or nested
 * string arrays. Two conventions of this package, both loadable with allow_pickle=False: a 0-d
 * `|V0` array is null (Python's None) and a 0-d record with no fields (descr `[]`) is `{}`.
 */
import { endianness } from 'node:os';
import { CheckpointerError } from '../errors';
import { allocateForRead, DType, dtypeInfo, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';

export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // \x93NUMPY
/** numpy aligns the start of the data to this many bytes (numpy.lib.format.ARRAY_ALIGN). */
export const NPY_ALIGN = 64;
/** numpy ≥ 1.23 leaves room in the header for the growth axis to reach this many digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Bytes needed to know a header's full length: magic, version and a uint32 length. */
export const NPY_PREFIX_BYTES = 12;

const HOST_LITTLE = endianness() === 'LE';
const HOST_ORDER = HOST_LITTLE ? '<' : '>';

function corrupt(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_CHECKPOINT_CORRUPT' });
}

function unsupportedDtype(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_DTYPE' });
}

// ------------------------------------------------------------------------------------ dtypes

/** What an npy `descr` holds, as far as this package reads it. */
export type NpyDescr =
  | {
    kind: 'numeric';
    descr: string;
    dtype: DType;
    itemSize: number;
    /** The file's byte order differs from the host's (only for multi-byte elements). */
    swap: boolean;
  }
  | {
    kind: 'string';
    descr: string;
    /** U: UTF-32 code units; S: bytes. */
    encoding: 'U' | 'S';
    itemSize: number;
    swap: boolean;
  }
  /** `|V0`, a void of no bytes: this package's None (numpy has no None without pickling). */
  | { kind: 'none'; descr: string; itemSize: 0; swap: false }
  /** `[]`, a record with no fields: this package's empty dict (a flattened empty dict leaves no member). */
  | { kind: 'emptyRecord'; descr: string; itemSize: 0; swap: false };

const NUMERIC_DESCR: Record<string, DType> = {
  b1: 'bool',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  f4: 'float32', f8: 'float64',
  c8: 'complex64', c16: 'complex128',
};

/** numpy's `descr` for one of our dtypes, in the host's byte order: `<f8`, `|b1`, `<c16`, ... */
export function descrOf(dtype: DType): string {
  const info = dtypeInfo(dtype);
  const order = info.itemSize / info.lanes === 1 ? '|' : HOST_ORDER;
  return `${order}${info.kind}${info.itemSize}`;
}

/** Parses a `descr` value from a header; anything this package does not read is ERR_UNSUPPORTED_DTYPE. */
export function parseDescr(descr: unknown): NpyDescr {
  if (Array.isArray(descr) && descr.length === 0) return { kind: 'emptyRecord', descr: '[]', itemSize: 0, swap: false };
  if (typeof descr === 'string' && /^[<>|=]?V0$/.test(descr)) return { kind: 'none', descr, itemSize: 0, swap: false };
  if (typeof descr !== 'string') {
    throw unsupportedDtype(`structured (record) dtypes are not supported: descr ${pyRepr(descr)}`);
  }
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (!m) throw unsupportedDtype(`unsupported dtype ${JSON.stringify(descr)}`);
  const order = m[1]!;
  const kind = m[2]!;
  const size = m[3] === '' ? NaN : Number(m[3]);
  const bigEndian = order === '>' || (order === '=' && !HOST_LITTLE);
  if (kind === 'O') {
    throw unsupportedDtype(
      'object arrays (dtype |O) hold pickled Python objects; they are not read (numpy.load(..., allow_pickle=False) refuses them too)',
    );
  }
  if (kind === 'U' || kind === 'S' || kind === 'a') {
    const chars = Number.isNaN(size) ? 0 : size;
    const encoding = kind === 'U' ? 'U' : 'S';
    return {
      kind: 'string', descr, encoding, itemSize: encoding === 'U' ? 4 * chars : chars,
      swap: encoding === 'U' && bigEndian !== !HOST_LITTLE,
    };
  }
  const dtype = NUMERIC_DESCR[`${kind}${m[3]}`];
  if (!dtype) {
    const why = kind === 'f' && size === 2 ? ' (float16 is not supported)'
      : (kind === 'f' || kind === 'c') && size > 8 ? ' (long double is not supported)'
        : kind === 'M' || kind === 'm' ? ' (datetime/timedelta is not supported)'
          : kind === 'V' ? ' (void/record dtypes are not supported)' : '';
    throw unsupportedDtype(`unsupported dtype ${JSON.stringify(descr)}${why}`);
  }
  const info = dtypeInfo(dtype);
  const laneSize = info.itemSize / info.lanes;
  return { kind: 'numeric', descr, dtype, itemSize: info.itemSize, swap: laneSize > 1 && bigEndian !== !HOST_LITTLE };
}

// ------------------------------------------------------------------------------------ header

export interface NpyHeader {
  version: readonly [number, number];
  /** Bytes from the start of the .npy to the first data byte. */
  headerLength: number;
  descr: NpyDescr;
  fortranOrder: boolean;
  shape: number[];
  /** Bytes of element data: product(shape) × itemsize. */
  dataLength: number;
}

/**
 * The full header length (offset of the data) from the first `NPY_PREFIX_BYTES` bytes (fewer are
 * fine when the file is shorter: a version 1.0 header needs 10).
 */
export function npyHeaderLength(prefix: Uint8Array): number {
  if (prefix.length < 10 || !NPY_MAGIC.every((b, i) => prefix[i] === b)) {
    throw corrupt('not a .npy array (no \\x93NUMPY magic)');
  }
  const major = prefix[6]!;
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  if (major === 1) return 10 + view.getUint16(8, true);
  if (major === 2 || major === 3) {
    if (prefix.length < 12) throw corrupt('truncated .npy header');
    return 12 + view.getUint32(8, true);
  }
  throw corrupt(`unsupported .npy format version ${major}.${prefix[7]}`);
}

/** Parses a complete header (`bytes` holds at least `npyHeaderLength(bytes)` bytes). */
export function parseNpyHeader(bytes: Uint8Array): NpyHeader {
  const headerLength = npyHeaderLength(bytes);
  if (bytes.length < headerLength) throw corrupt('truncated .npy header');
  const major = bytes[6]!;
  const minor = bytes[7]!;
  const start = major === 1 ? 10 : 12;
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset + start, headerLength - start);
  const text = major === 3 ? raw.toString('utf8') : raw.toString('latin1');
  let dict: unknown;
  try {
    dict = parsePyLiteral(text);
  } catch (err) {
    throw corrupt(`.npy header is not a Python literal: ${(err as Error).message}`);
  }
  if (!(dict instanceof Map)) throw corrupt(`.npy header is not a dict: ${JSON.stringify(text.trim())}`);
  const keys = [...dict.keys()].sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    throw corrupt(`.npy header has keys ${keys.join(', ')}; expected descr, fortran_order, shape`);
  }
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw corrupt('.npy header: fortran_order is not a bool');
  const shapeValue = dict.get('shape');
  if (!(shapeValue instanceof PyTuple) || !shapeValue.items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw corrupt(`.npy header: shape ${pyRepr(shapeValue)} is not a tuple of non-negative integers`);
  }
  const shape = shapeValue.items as number[];
  const descr = parseDescr(dict.get('descr'));
  const dataLength = shapeSize(shape) * descr.itemSize;
  if (!Number.isSafeInteger(dataLength)) throw corrupt(`.npy header: shape (${shape.join(', ')}) is too large`);
  return { version: [major, minor], headerLength, descr, fortranOrder: fortran, shape, dataLength };
}

function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 0) return '()';
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/**
 * The header numpy 1.24 writes for an array — byte for byte: sorted keys, spare room for the
 * growth axis, space padding and a newline so the data starts at a multiple of 64, version 1.0
 * unless the header length needs 2.0's uint32.
 */
export function encodeNpyHeader(descr: string, shape: readonly number[], fortranOrder = false): Buffer {
  return encodeHeaderWithDescrRepr(`'${descr}'`, shape, fortranOrder);
}

function encodeHeaderWithDescrRepr(descrRepr: string, shape: readonly number[], fortranOrder: boolean): Buffer {
  let dict = `{'descr': ${descrRepr}, 'fortran_order': ${fortranOrder ? 'True' : 'False'}, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) {
    const growth = shape[fortranOrder ? shape.length - 1 : 0]!;
    dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(growth).length));
  }
  const text = Buffer.from(dict, 'latin1');
  const wrap = (prefixLen: number): { total: number; pad: number } => {
    const hlen = text.length + 1;
    const pad = NPY_ALIGN - ((prefixLen + hlen) % NPY_ALIGN);
    return { total: prefixLen + hlen + pad, pad };
  };
  let prefixLen = 10;
  let { total, pad } = wrap(prefixLen);
  if (total - prefixLen > 0xffff) {
    prefixLen = 12;
    ({ total, pad } = wrap(prefixLen));
  }
  const out = Buffer.alloc(total, 0x20);
  out.set(NPY_MAGIC, 0);
  out[6] = prefixLen === 10 ? 1 : 2;
  out[7] = 0;
  if (prefixLen === 10) out.writeUInt16LE(total - 10, 8);
  else out.writeUInt32LE(total - 12, 8);
  out.set(text, prefixLen);
  // spaces are already there (alloc fill); the final byte is the newline
  void pad;
  out[total - 1] = 0x0a;
  return out;
}

/**
 * A header of exactly `total` bytes (format version `major`, as the file has it) for a new shape —
 * how a dataset handle grows an .npy in place: the data does not move, only the shape's digits
 * change inside the padding numpy leaves for that (GROWTH_AXIS_MAX_DIGITS). Null when the text
 * does not fit (a header written without room to grow).
 */
export function encodeNpyHeaderFixed(descr: string, shape: readonly number[], fortranOrder: boolean, total: number, major: number): Buffer | null {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortranOrder ? 'True' : 'False'}, 'shape': ${shapeRepr(shape)}, }`;
  const text = Buffer.from(dict, 'latin1');
  const prefixLen = major === 1 ? 10 : 12;
  if (text.length + 1 > total - prefixLen || (major === 1 && total - 10 > 0xffff)) return null;
  const out = Buffer.alloc(total, 0x20);
  out.set(NPY_MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) out.writeUInt16LE(total - 10, 8);
  else out.writeUInt32LE(total - 12, 8);
  out.set(text, prefixLen);
  out[total - 1] = 0x0a;
  return out;
}

// ------------------------------------------------------------------------------------ encoding

/** An array ready to be written as a .npy: its header and its element bytes (a view, not a copy). */
export interface EncodedNpy {
  header: Buffer;
  data: Uint8Array;
}

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** An n-d array (shape [] for a 0-d array). The element bytes are a view of `data`, not a copy. */
export function encodeArray(dtype: DType, shape: readonly number[], data: TypedArray): EncodedNpy {
  const info = dtypeInfo(dtype);
  const expected = shapeSize(shape) * info.lanes;
  if (data.length !== expected) {
    throw new RangeError(`shape [${shape.join(', ')}] of ${dtype} needs ${expected} elements, got ${data.length}`);
  }
  return { header: encodeNpyHeader(descrOf(dtype), shape), data: bytesOf(data) };
}

/**
 * A Python `str` as numpy stores it: a 0-d `<U{n}` array of UTF-32 code units (n ≥ 1, as numpy
 * gives `''` the dtype `<U1`). Text whose last character is NUL does not survive numpy, which
 * strips trailing NULs; callers check with `stringSurvivesNpy` first.
 */
export function encodeStringScalar(text: string): EncodedNpy {
  const codes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.codePointAt(i)!;
    codes.push(c);
    if (c > 0xffff) i++;
  }
  const chars = Math.max(1, codes.length);
  const units = new Uint32Array(chars);
  units.set(codes);
  return { header: encodeNpyHeader(`${HOST_ORDER}U${chars}`, []), data: bytesOf(units) };
}

/**
 * None, as this package stores it: a 0-d array of `|V0` (a void of no bytes). numpy loads it with
 * allow_pickle=False as `array(b'', dtype='|V0')`.
 */
export function encodeNull(): EncodedNpy {
  return { header: encodeNpyHeader('|V0', []), data: new Uint8Array(0) };
}

/**
 * An empty dict, as this package stores it: a 0-d record with no fields (descr `[]`). numpy loads
 * it with allow_pickle=False as `array((), dtype=[])`.
 */
export function encodeEmptyDict(): EncodedNpy {
  return { header: encodeHeaderWithDescrRepr('[]', [], false), data: new Uint8Array(0) };
}

/** numpy strips trailing NULs from string elements, so such text cannot round-trip. */
export function stringSurvivesNpy(text: string): boolean {
  return !text.endsWith('\0');
}

// ------------------------------------------------------------------------------------ decoding

/** A decode in progress: fill `target` with the element bytes (exactly `target.length`), then `finish()`. */
export interface DecodePlan {
  readonly target: Uint8Array;
  finish(): unknown;
}

/**
 * Allocates the destination for a header's data. For numeric C-order arrays `target` is a byte
 * view of the result's own TypedArray, so reading the file into it is the only copy.
 */
export function planDecode(h: NpyHeader): DecodePlan {
  const d = h.descr;
  if (d.kind === 'numeric') {
    const info = dtypeInfo(d.dtype);
    const count = shapeSize(h.shape) * info.lanes;
    // Every byte is overwritten by the read before the array is returned: skip the zero-fill.
    const arr = allocateForRead(d.dtype, count);
    const reorder = h.fortranOrder && h.shape.length > 1;
    const target = reorder ? allocateForRead('uint8', h.dataLength) as Uint8Array : bytesOf(arr);
    return {
      target,
      finish: () => {
        if (d.swap) swapInPlace(target, info.itemSize / info.lanes);
        if (reorder) fortranToC(target, bytesOf(arr), h.shape, info.itemSize);
        return numericValue(arr, d.dtype, h.shape);
      },
    };
  }
  if (d.kind === 'none' || d.kind === 'emptyRecord') {
    if (h.shape.length !== 0) throw unsupportedDtype(`arrays of dtype ${d.descr} with shape (${h.shape.join(', ')}) are not supported (only 0-d)`);
    return { target: new Uint8Array(0), finish: () => (d.kind === 'none' ? null : {}) };
  }
  const target = new Uint8Array(h.dataLength);
  return {
    target,
    finish: () => {
      let bytes = target;
      if (h.fortranOrder && h.shape.length > 1 && d.itemSize > 0) {
        bytes = new Uint8Array(h.dataLength);
        fortranToC(target, bytes, h.shape, d.itemSize);
      }
      const strings = decodeStrings(bytes, d.encoding, d.itemSize, d.swap, shapeSize(h.shape));
      return h.shape.length === 0 ? strings[0] : nestList(strings, h.shape);
    },
  };
}

/**
 * Decodes element bytes that are already in memory (an inflated zip member). When the bytes are
 * suitably aligned and need no reordering the result views them directly; otherwise they are
 * copied once into a fresh array. `owned` says the caller gives the bytes away (they may be
 * swapped in place and kept).
 */
export function decodeData(h: NpyHeader, bytes: Uint8Array, owned: boolean): unknown {
  if (bytes.length < h.dataLength) throw corrupt(`.npy data is truncated: ${bytes.length} of ${h.dataLength} bytes`);
  const data = bytes.subarray(0, h.dataLength);
  const d = h.descr;
  if (owned && d.kind === 'numeric' && !(h.fortranOrder && h.shape.length > 1)) {
    const info = dtypeInfo(d.dtype);
    const laneSize = info.itemSize / info.lanes;
    if (data.byteOffset % laneSize === 0) {
      if (d.swap) swapInPlace(data, laneSize);
      const arr = new info.ArrayType(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength / laneSize) as TypedArray;
      return numericValue(arr, d.dtype, h.shape);
    }
  }
  const plan = planDecode(h);
  plan.target.set(data);
  return plan.finish();
}

/** Decodes a whole .npy held in memory. */
export function decodeNpy(bytes: Uint8Array, owned = false): unknown {
  const h = parseNpyHeader(bytes);
  return decodeData(h, bytes.subarray(h.headerLength), owned);
}

/** The JS value of decoded numeric data: rank 0 → a scalar (complex stays a 0-d NDArray), else an NDArray. */
function numericValue(arr: TypedArray, dtype: DType, shape: readonly number[]): unknown {
  if (shape.length === 0) {
    const v = arr[0]!;
    if (dtype === 'bool') return v !== 0;
    if (typeof v === 'bigint') {
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : v;
    }
    if (dtypeInfo(dtype).lanes === 1) return v;
  }
  return new NDArray(arr, shape, dtype);
}

/** Reverses the byte order of each `laneSize`-byte lane, in place. */
export function swapInPlace(bytes: Uint8Array, laneSize: number): void {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (laneSize === 2) b.swap16();
  else if (laneSize === 4) b.swap32();
  else if (laneSize === 8) b.swap64();
}

/** A typed view of `bytes` whose elements are `unit` bytes wide (the largest of 4, 2, 1 dividing itemSize and the offset). */
function unitView(bytes: Uint8Array, unit: number): Uint8Array | Uint16Array | Uint32Array {
  if (unit === 4) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (unit === 2) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return bytes;
}

/** Reorders elements from Fortran (column-major) to C (row-major) order. */
export function fortranToC(src: Uint8Array, dst: Uint8Array, shape: readonly number[], itemSize: number): void {
  const n = shapeSize(shape);
  if (n === 0 || itemSize === 0) return;
  let unit = itemSize % 4 === 0 ? 4 : itemSize % 2 === 0 ? 2 : 1;
  while (unit > 1 && (src.byteOffset % unit !== 0 || dst.byteOffset % unit !== 0)) unit >>= 1;
  const lanes = itemSize / unit;
  const s = unitView(src, unit);
  const d = unitView(dst, unit);
  const rank = shape.length;
  // Fortran strides (in elements) of each axis.
  const fstride = new Array<number>(rank);
  let acc = 1;
  for (let a = 0; a < rank; a++) {
    fstride[a] = acc;
    acc *= shape[a]!;
  }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const lastLen = shape[last]!;
  const lastStride = fstride[last]! * lanes;
  let out = 0;
  let base = 0; // Fortran element offset of idx with idx[last] = 0
  for (let done = 0; done < n; done += lastLen) {
    let pos = base * lanes;
    for (let k = 0; k < lastLen; k++) {
      for (let l = 0; l < lanes; l++) d[out++] = s[pos + l]!;
      pos += lastStride;
    }
    // advance the odometer over the leading axes
    for (let a = last - 1; a >= 0; a--) {
      idx[a]!++;
      base += fstride[a]!;
      if (idx[a]! < shape[a]!) break;
      base -= fstride[a]! * shape[a]!;
      idx[a] = 0;
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Fixed-width strings → JS strings, trailing NULs stripped as numpy does. `U` is UTF-32; `S` is
 * bytes, decoded as UTF-8 when valid, else byte for byte (latin-1) so nothing is lost.
 */
function decodeStrings(bytes: Uint8Array, encoding: 'U' | 'S', itemSize: number, swap: boolean, count: number): string[] {
  const out = new Array<string>(count);
  if (itemSize === 0) return out.fill('');
  if (encoding === 'S') {
    const b = Buffer.from(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) {
      const start = i * itemSize;
      let end = start + itemSize;
      while (end > start && b[end - 1] === 0) end--;
      const slice = b.subarray(start, end);
      let text: string;
      try {
        text = utf8.decode(slice);
      } catch {
        text = slice.toString('latin1');
      }
      out[i] = text;
    }
    return out;
  }
  const chars = itemSize / 4;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = HOST_LITTLE !== swap;
  const codes: number[] = [];
  for (let i = 0; i < count; i++) {
    codes.length = 0;
    let end = chars;
    while (end > 0 && dv.getUint32((i * chars + end - 1) * 4, little) === 0) end--;
    for (let k = 0; k < end; k++) {
      const c = dv.getUint32((i * chars + k) * 4, little);
      if (c > 0x10ffff) throw corrupt(`<U string holds an invalid code point 0x${c.toString(16)}`);
      codes.push(c);
    }
    let s = '';
    for (let k = 0; k < codes.length; k += 4096) s += String.fromCodePoint(...codes.slice(k, k + 4096));
    out[i] = s;
  }
  return out;
}

function nestList<T>(flat: readonly T[], shape: readonly number[]): unknown {
  let index = 0;
  const build = (axis: number): unknown[] => {
    const out: unknown[] = new Array(shape[axis]);
    for (let k = 0; k < shape[axis]!; k++) out[k] = axis === shape.length - 1 ? flat[index++] : build(axis + 1);
    return out;
  };
  return build(0);
}

// ------------------------------------------------------------------------------------ Python literals

/** A Python tuple from a header (kept apart from lists: `shape` must be a tuple). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

function pyRepr(v: unknown): string {
  if (v instanceof PyTuple) return `(${v.items.map(pyRepr).join(', ')}${v.items.length === 1 ? ',' : ''})`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v === null) return 'None';
  return String(v);
}

/**
 * Parses the Python literals an npy header uses: dicts, tuples, lists, strings, ints (an old `L`
 * suffix allowed), True/False/None. Dicts come back as Maps, tuples as PyTuple.
 */
export function parsePyLiteral(text: string): unknown {
  let pos = 0;
  const ws = (): void => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${pos}`);
  };
  const value = (): unknown => {
    ws();
    const c = text[pos];
    if (c === undefined) return fail('unexpected end');
    if (c === '{') {
      pos++;
      const map = new Map<unknown, unknown>();
      for (;;) {
        ws();
        if (text[pos] === '}') { pos++; return map; }
        const k = value();
        ws();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        map.set(k, value());
        ws();
        if (text[pos] === ',') pos++;
        else if (text[pos] !== '}') fail("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      pos++;
      const items: unknown[] = [];
      let sawComma = false;
      for (;;) {
        ws();
        if (text[pos] === close) { pos++; break; }
        items.push(value());
        ws();
        if (text[pos] === ',') { pos++; sawComma = true; } else if (text[pos] !== close) fail(`expected ',' or '${close}'`);
      }
      if (c === '(' && items.length === 1 && !sawComma) return items[0];
      return c === '(' ? new PyTuple(items) : items;
    }
    if (c === "'" || c === '"') {
      pos++;
      let s = '';
      while (pos < text.length && text[pos] !== c) {
        if (text[pos] === '\\') {
          pos++;
          const e = text[pos++];
          if (e === 'x') { s += String.fromCharCode(parseInt(text.slice(pos, pos + 2), 16)); pos += 2; } else if (e === 'u') { s += String.fromCharCode(parseInt(text.slice(pos, pos + 4), 16)); pos += 4; } else if (e === 'n') s += '\n';
          else if (e === 't') s += '\t';
          else if (e === 'r') s += '\r';
          else if (e === '0') s += '\0';
          else s += e ?? '';
        } else {
          s += text[pos++];
        }
      }
      if (text[pos] !== c) fail('unterminated string');
      pos++;
      return s;
    }
    const m = /^(?:[-+]?\d+L?|True|False|None)/.exec(text.slice(pos, pos + 40));
    if (!m) return fail('unexpected token');
    pos += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace(/L$/, ''));
  };
  const v = value();
  ws();
  if (pos !== text.length) fail('trailing characters');
  return v;
}
