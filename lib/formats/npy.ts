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
import { allocateForRead, DType, dtypeInfo, float16Values, shapeSize, TypedArray } from '../values/dtype';
import { NDArray, nest } from '../values/ndarray';
import { FieldType, RecordArray, RecordField } from '../values/records';

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
  /** `|V<n>`, raw bytes (numpy void): Buffer(s), as Python sees `bytes` (`a.item()`). */
  | { kind: 'void'; descr: string; itemSize: number; swap: false }
  /** A structured dtype: a RecordArray (fields at their offsets; padding skipped). */
  | { kind: 'record'; descr: string; itemSize: number; swap: false; fields: NpyField[] }
  /** `[]`, a record with no fields: this package's empty dict (a flattened empty dict leaves no member). */
  | { kind: 'emptyRecord'; descr: string; itemSize: 0; swap: false };

/** The element type of one field of a structured dtype. */
export type NpyElement =
  | { kind: 'numeric'; dtype: DType; itemSize: number; swap: boolean }
  | { kind: 'string'; encoding: 'U' | 'S'; itemSize: number; swap: boolean }
  | { kind: 'void'; itemSize: number }
  | { kind: 'record'; itemSize: number; fields: NpyField[] };

/** One named field of a structured dtype: where it sits in a record, its own axes and its type. */
export interface NpyField {
  name: string;
  offset: number;
  shape: number[];
  elem: NpyElement;
  /** The RecordArray field type it reads as. */
  field: RecordField;
}

const NUMERIC_DESCR: Record<string, DType> = {
  b1: 'bool',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  f2: 'float16', f4: 'float32', f8: 'float64',
  c8: 'complex64', c16: 'complex128',
};

/** Element types beyond one descr string: how many nested records / fields a header may describe. */
const MAX_RECORD_DEPTH = 64;

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
  if (Array.isArray(descr) || descr instanceof Map) {
    const rec = parseRecord(descr, 0);
    return { kind: 'record', descr: pyRepr(descr), itemSize: rec.itemSize, swap: false, fields: rec.fields };
  }
  if (typeof descr !== 'string') throw unsupportedDtype(`unsupported dtype descr ${pyRepr(descr)}`);
  const elem = parseElement(descr);
  if (elem.kind === 'record') throw unsupportedDtype(`unsupported dtype ${JSON.stringify(descr)}`);
  if (elem.kind === 'void') return { kind: 'void', descr, itemSize: elem.itemSize, swap: false };
  if (elem.kind === 'string') return { kind: 'string', descr, encoding: elem.encoding, itemSize: elem.itemSize, swap: elem.swap };
  return { kind: 'numeric', descr, dtype: elem.dtype, itemSize: elem.itemSize, swap: elem.swap };
}

/** One scalar type string (`<f8`, `|S3`, `>U2`, `|V4`, `<f2`). */
function parseElement(descr: string): NpyElement {
  const m = /^([<>|=]?)([a-zA-Z?])(\d*)(\[\w+\])?$/.exec(descr);
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
  if (kind === 'M' || kind === 'm') {
    const what = kind === 'M' ? 'datetime64' : 'timedelta64';
    throw unsupportedDtype(`dtype ${JSON.stringify(descr)} (${what}${m[4] ?? ''}) is not read: this package has no ${what} values; save it as .astype('int64') (a count of ${m[4] ? m[4].slice(1, -1) : 'its unit'}) instead`);
  }
  if (m[4] !== undefined) throw unsupportedDtype(`unsupported dtype ${JSON.stringify(descr)}`);
  if (kind === 'U' || kind === 'S' || kind === 'a') {
    const chars = Number.isNaN(size) ? 0 : size;
    const encoding = kind === 'U' ? 'U' : 'S';
    return { kind: 'string', encoding, itemSize: encoding === 'U' ? 4 * chars : chars, swap: encoding === 'U' && bigEndian !== !HOST_LITTLE };
  }
  if (kind === 'V') return { kind: 'void', itemSize: Number.isNaN(size) ? 0 : size };
  if (kind === 'g' || kind === 'G' || ((kind === 'f' || kind === 'c') && size > (kind === 'f' ? 8 : 16))) {
    throw unsupportedDtype(`dtype ${JSON.stringify(descr)} is a long double (${kind === 'f' || kind === 'g' ? 'float' : 'complex'}${(Number.isNaN(size) ? 16 : size) * 8}), which this package does not read (JS numbers are float64; convert with .astype('${kind === 'f' || kind === 'g' ? 'f8' : 'c16'}') first)`);
  }
  const dtype = NUMERIC_DESCR[`${kind}${m[3]}`];
  if (!dtype) throw unsupportedDtype(`unsupported dtype ${JSON.stringify(descr)}`);
  const info = dtypeInfo(dtype);
  const laneSize = info.itemSize / info.lanes;
  return { kind: 'numeric', dtype, itemSize: info.itemSize, swap: laneSize > 1 && bigEndian !== !HOST_LITTLE };
}

function fieldTypeOf(elem: NpyElement): FieldType {
  switch (elem.kind) {
    case 'numeric': return { kind: 'number', dtype: elem.dtype };
    case 'string': return elem.encoding === 'U'
      ? { kind: 'string', length: elem.itemSize / 4, encoding: 'utf32' }
      : { kind: 'string', length: elem.itemSize, encoding: 'ascii' };
    case 'void': return { kind: 'bytes', length: elem.itemSize };
    case 'record': return { kind: 'record', fields: elem.fields.map((f) => f.field) };
  }
}

function parseShape(v: unknown, where: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : [v];
  if (!items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) throw corrupt(`.npy header: field ${where} has shape ${pyRepr(v)}`);
  return items as number[];
}

/** A field format: a type string (optionally with a `(2, 3)` shape prefix), a nested descr list, or a (format, shape) tuple. */
function parseFormat(fmt: unknown, depth: number, where: string): { elem: NpyElement; shape: number[] } {
  if (typeof fmt === 'string') {
    const m = /^\(([\d,\s]*)\)(.*)$/.exec(fmt) ?? /^(\d+)([<>|=].*)$/.exec(fmt);
    if (m) {
      const shape = m[1]!.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
      return { elem: parseFormat(m[2]!, depth, where).elem, shape };
    }
    return { elem: parseElement(fmt), shape: [] };
  }
  if (Array.isArray(fmt) || fmt instanceof Map) return { elem: parseRecord(fmt, depth + 1), shape: [] };
  if (fmt instanceof PyTuple && fmt.items.length === 2) {
    const inner = parseFormat(fmt.items[0], depth, where);
    return { elem: inner.elem, shape: [...parseShape(fmt.items[1], where), ...inner.shape] };
  }
  throw unsupportedDtype(`unsupported format ${pyRepr(fmt)} for field ${where}`);
}

function elementSize(elem: NpyElement, shape: readonly number[]): number {
  return elem.itemSize * shapeSize(shape);
}

/**
 * A structured dtype: numpy's list form `[('a', '<i4'), ('pos', '<f8', (3,)), ('', '|V4'), …]`
 * (unnamed `V` entries are padding) or the dict form `{'names': …, 'formats': …, 'offsets': …,
 * 'itemsize': …}`. Titles (`(('title', 'name'), '<f8')`) have no place in a RecordArray: refused.
 */
function parseRecord(descr: unknown[] | Map<unknown, unknown>, depth: number): NpyElement & { kind: 'record' } {
  if (depth > MAX_RECORD_DEPTH) throw unsupportedDtype(`structured dtype nested deeper than ${MAX_RECORD_DEPTH} levels`);
  const fields: NpyField[] = [];
  const names = new Set<string>();
  const add = (name: string, fmt: unknown, extraShape: unknown, offset: number): number => {
    const { elem, shape } = parseFormat(fmt, depth, JSON.stringify(name));
    const fullShape = extraShape === undefined ? shape : [...parseShape(extraShape, JSON.stringify(name)), ...shape];
    const size = elementSize(elem, fullShape);
    if (name === '' && elem.kind === 'void') return size; // padding
    if (name === '') throw unsupportedDtype('structured dtype has a field with no name');
    if (names.has(name)) throw corrupt(`.npy header: structured dtype names field ${JSON.stringify(name)} twice`);
    names.add(name);
    if (elem.kind === 'void' && elem.itemSize === 0) throw unsupportedDtype(`field ${JSON.stringify(name)} is a void of no bytes`);
    fields.push({ name, offset, shape: fullShape, elem, field: { name, type: fieldTypeOf(elem), shape: fullShape } });
    return size;
  };
  if (Array.isArray(descr)) {
    let offset = 0;
    for (const entry of descr) {
      if (!(entry instanceof PyTuple) || entry.items.length < 2 || entry.items.length > 3) throw corrupt(`.npy header: structured dtype entry ${pyRepr(entry)} is not (name, format[, shape])`);
      const [name, fmt, shape] = entry.items;
      if (name instanceof PyTuple) throw unsupportedDtype(`field ${pyRepr(name)} has a title (numpy's (title, name) alias): titled fields are not supported; drop the titles`);
      if (typeof name !== 'string') throw corrupt(`.npy header: structured dtype field name ${pyRepr(name)} is not a string`);
      offset += add(name, fmt, shape, offset);
    }
    return { kind: 'record', itemSize: offset, fields };
  }
  const get = (k: string): unknown => descr.get(k);
  const fieldNames = get('names');
  const formats = get('formats');
  if (!Array.isArray(fieldNames) || !Array.isArray(formats) || fieldNames.length !== formats.length) {
    throw corrupt(`.npy header: dict dtype ${pyRepr(descr)} needs 'names' and 'formats' lists of one length`);
  }
  const titles = get('titles');
  if (titles !== undefined && titles !== null && !(Array.isArray(titles) && titles.every((t) => t === null))) {
    throw unsupportedDtype('structured dtype has titles (numpy field aliases): titled fields are not supported; drop the titles');
  }
  const offsets = get('offsets');
  if (offsets !== undefined && !(Array.isArray(offsets) && offsets.length === fieldNames.length && offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0))) {
    throw corrupt(`.npy header: dict dtype offsets ${pyRepr(offsets)} do not fit its names`);
  }
  let end = 0;
  let packed = 0;
  fieldNames.forEach((name, i) => {
    if (typeof name !== 'string') throw corrupt(`.npy header: structured dtype field name ${pyRepr(name)} is not a string`);
    const offset = offsets ? (offsets as number[])[i]! : packed;
    const size = add(name, formats[i], undefined, offset);
    packed = offset + size;
    end = Math.max(end, offset + size);
  });
  const itemsize = get('itemsize');
  if (itemsize !== undefined && (typeof itemsize !== 'number' || !Number.isSafeInteger(itemsize) || itemsize < end)) {
    throw corrupt(`.npy header: dict dtype itemsize ${pyRepr(itemsize)} is smaller than its fields (${end} bytes)`);
  }
  return { kind: 'record', itemSize: (itemsize as number | undefined) ?? end, fields };
}

/** numpy's descr (a Python literal) for RecordArray fields, packed in field order, host byte order. */
export function recordDescrRepr(fields: readonly RecordField[]): string {
  const entry = (f: RecordField): string => {
    const fmt = f.type.kind === 'record' ? recordDescrRepr(f.type.fields) : `'${fieldFormat(f.type)}'`;
    return f.shape.length === 0 ? `('${pyStr(f.name)}', ${fmt})` : `('${pyStr(f.name)}', ${fmt}, ${shapeRepr(f.shape)})`;
  };
  return `[${fields.map(entry).join(', ')}]`;
}

function pyStr(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

/** The numpy format of a non-record field type, and its size in bytes. */
function fieldFormat(t: FieldType): string {
  switch (t.kind) {
    case 'number': return descrOf(t.dtype);
    case 'enum': return descrOf(t.dtype);
    case 'string':
      if (t.variable || t.length === 0) throw new CheckpointerError('a variable-length string field has no numpy structured-dtype equivalent (numpy strings have a fixed size)', { code: 'ERR_UNSUPPORTED_VALUE' });
      return t.encoding === 'utf32' ? `${HOST_ORDER}U${t.length}` : `|S${t.length}`;
    case 'bytes': return `|V${t.length}`;
    case 'record': throw new Error('unreachable');
  }
}

/**
 * How records sit in a file, for dataset handles: their fields, where each is (`npyFields`), the
 * record size, the header's descr literal, and whether that layout is the packed native one this
 * package writes (only then can RecordArray rows be written into it).
 */
export interface RecordLayout {
  readonly fields: readonly RecordField[];
  readonly npyFields: readonly NpyField[];
  readonly itemSize: number;
  readonly descr: string;
  readonly native: boolean;
}

/** The layout of a structured dtype read from a header. */
export function recordLayoutOf(d: NpyDescr & { kind: 'record' }): RecordLayout {
  const fields = d.fields.map((f) => f.field);
  return { fields, npyFields: d.fields, itemSize: d.itemSize, descr: d.descr, native: fields.length > 0 && recordDescrRepr(fields) === d.descr };
}

/** The packed native layout of RecordArray fields (what encodeRecords writes). */
export function packedRecordLayout(fields: readonly RecordField[]): RecordLayout {
  const descr = recordDescrRepr(fields);
  const parsed = parseDescr(parsePyLiteral(descr));
  if (parsed.kind !== 'record') throw new Error('unreachable');
  return { fields, npyFields: parsed.fields, itemSize: parsed.itemSize, descr, native: true };
}

/** Bytes one record of these fields takes, packed. */
export function recordItemSize(fields: readonly RecordField[]): number {
  let n = 0;
  for (const f of fields) n += fieldTypeSize(f.type) * shapeSize(f.shape);
  return n;
}

function fieldTypeSize(t: FieldType): number {
  switch (t.kind) {
    case 'number':
    case 'enum': return dtypeInfo(t.dtype).itemSize;
    case 'string': return t.encoding === 'utf32' ? 4 * t.length : t.length;
    case 'bytes': return t.length;
    case 'record': return recordItemSize(t.fields);
  }
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
  return encodeHeaderWithDescrRepr(descrLiteral(descr), shape, fortranOrder);
}

/** A descr as the header's Python literal: a type string is quoted; a structured descr (`[...]`, `{...}`) is already a literal. */
function descrLiteral(descr: string): string {
  return descr.startsWith('[') || descr.startsWith('{') ? descr : `'${descr}'`;
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
  const dict = `{'descr': ${descrLiteral(descr)}, 'fortran_order': ${fortranOrder ? 'True' : 'False'}, 'shape': ${shapeRepr(shape)}, }`;
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
      const count = shapeSize(h.shape);
      if (d.itemSize === 0 && count > MAX_EMPTY_ELEMENTS) throw tooManyEmpty(count);
      if (d.kind === 'record') return decodeRecords(bytes, d.itemSize, d.fields, h.shape);
      let items: (string | Buffer)[];
      if (d.kind === 'void') items = splitBytes(bytes, d.itemSize, count, false);
      else if (d.encoding === 'S') items = splitBytes(bytes, d.itemSize, count, true);
      else items = decodeStrings(bytes, d.encoding, d.itemSize, d.swap, count);
      return h.shape.length === 0 ? items[0] : nest(items, h.shape);
    },
  };
}

/**
 * numpy `S` (Python bytes, trailing NULs stripped as numpy does) and `V` (raw bytes, kept whole)
 * elements as Buffers — what Python sees (`a.item()` is `bytes`). Each Buffer owns its memory.
 */
function splitBytes(bytes: Uint8Array, itemSize: number, count: number, stripNul: boolean): Buffer[] {
  const out = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) {
    const start = i * itemSize;
    let end = start + itemSize;
    if (stripNul) while (end > start && bytes[end - 1] === 0) end--;
    out[i] = Buffer.from(bytes.subarray(start, end));
  }
  return out;
}

/** Copies `size` bytes from each of `positions` in `src` into `out`, one after another. */
function gather(src: Uint8Array, positions: Float64Array, size: number, out: Uint8Array): void {
  if (size >= 64) {
    for (let j = 0; j < positions.length; j++) out.set(src.subarray(positions[j]!, positions[j]! + size), j * size);
    return;
  }
  // Whole 32- or 16-bit words when every position allows (integer views: no float canonicalising NaNs).
  const unit = wordUnit(size, src.byteOffset, out.byteOffset, positions);
  const s = unitView(src, unit, true);
  const d = unitView(out, unit, true);
  const words = size / unit;
  let o = 0;
  for (let j = 0; j < positions.length; j++) {
    const p = positions[j]! / unit;
    for (let b = 0; b < words; b++) d[o++] = s[p + b]!;
  }
}

/** The widest word (4, 2 or 1 bytes) that divides `size`, both views' offsets and every position. */
function wordUnit(size: number, srcOffset: number, outOffset: number, positions: Float64Array): 1 | 2 | 4 {
  let unit: 1 | 2 | 4 = size % 4 === 0 ? 4 : size % 2 === 0 ? 2 : 1;
  while (unit > 1) {
    let ok = srcOffset % unit === 0 && outOffset % unit === 0;
    for (let j = 0; ok && j < positions.length; j++) if (positions[j]! % unit !== 0) ok = false;
    if (ok) break;
    unit = unit === 4 ? 2 : 1;
  }
  return unit;
}

/** The byte positions of each element of a field: `block` elements of `size` bytes per record. */
function fieldPositions(starts: Float64Array, offset: number, block: number, size: number): Float64Array {
  const pos = new Float64Array(starts.length * block);
  let j = 0;
  for (let i = 0; i < starts.length; i++) {
    const base = starts[i]! + offset;
    for (let k = 0; k < block; k++) pos[j++] = base + k * size;
  }
  return pos;
}

function recordStarts(count: number, stride: number): Float64Array {
  const starts = new Float64Array(count);
  for (let i = 0; i < count; i++) starts[i] = i * stride;
  return starts;
}

/** Structured-dtype data → a RecordArray of `shape` (one column per field, padding skipped). */
export function decodeRecords(bytes: Uint8Array, itemSize: number, fields: readonly NpyField[], shape: readonly number[]): RecordArray {
  return gatherRecords(bytes, recordStarts(shapeSize(shape), itemSize), fields, shape);
}

function gatherRecords(bytes: Uint8Array, starts: Float64Array, fields: readonly NpyField[], shape: readonly number[]): RecordArray {
  const columns = new Map<string, RecordColumn>();
  for (const f of fields) {
    const e = f.elem;
    if (e.itemSize === 0 && starts.length * shapeSize(f.shape) > MAX_EMPTY_ELEMENTS) throw tooManyEmpty(starts.length * shapeSize(f.shape));
    const pos = fieldPositions(starts, f.offset, shapeSize(f.shape), e.itemSize);
    const n = pos.length;
    const colShape = [...shape, ...f.shape];
    if (e.kind === 'numeric') {
      const info = dtypeInfo(e.dtype);
      const arr = new info.ArrayType(n * info.lanes) as TypedArray;
      const out = bytesOf(arr);
      gather(bytes, pos, e.itemSize, out);
      if (e.swap) swapInPlace(out, info.itemSize / info.lanes);
      columns.set(f.name, new NDArray(arr, colShape, e.dtype));
    } else if (e.kind === 'record') {
      columns.set(f.name, gatherRecords(bytes, pos, e.fields, colShape));
    } else {
      const flat = new Uint8Array(n * e.itemSize);
      gather(bytes, pos, e.itemSize, flat);
      if (e.kind === 'string') columns.set(f.name, decodeStrings(flat, e.encoding, e.itemSize, e.swap, n));
      else columns.set(f.name, splitBytes(flat, e.itemSize, n, false).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.length)));
    }
  }
  return new RecordArray(columns, { shape, fields: fields.map((f) => f.field) });
}

type RecordColumn = NDArray | RecordArray | string[] | Uint8Array[];

// ------------------------------------------------------------------------------------ record encoding

function recordError(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_VALUE' });
}

/**
 * A RecordArray as a structured .npy array: descr in field order, packed, host byte order (what
 * numpy writes for `np.zeros(n, dtype=[...])`); strings and bytes padded with NULs to their size.
 */
export function encodeRecords(r: RecordArray): EncodedNpy {
  const descr = recordDescrRepr(r.fields);
  const itemSize = recordItemSize(r.fields);
  const data = new Uint8Array(r.size * itemSize);
  scatterRecords(data, recordStarts(r.size, itemSize), r);
  return { header: encodeHeaderWithDescrRepr(descr, r.shape, false), data };
}

/** Writes the records of `r` at `starts` (one byte position per record) into `out`, packed. */
export function scatterRecords(out: Uint8Array, starts: Float64Array, r: RecordArray): void {
  const outBuf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  let offset = 0;
  for (const f of r.fields) {
    const c = r.column(f.name);
    const t = f.type;
    const size = fieldTypeSize(t);
    const pos = fieldPositions(starts, offset, shapeSize(f.shape), size);
    offset += size * shapeSize(f.shape);
    if (t.kind === 'record') {
      scatterRecords(out, pos, c as RecordArray);
    } else if (t.kind === 'number' || t.kind === 'enum') {
      const src = bytesOf((c as NDArray).data);
      if (size >= 64) for (let j = 0; j < pos.length; j++) out.set(src.subarray(j * size, (j + 1) * size), pos[j]!);
      else {
        let o = 0;
        for (let j = 0; j < pos.length; j++) {
          const p = pos[j]!;
          for (let k = 0; k < size; k++) out[p + k] = src[o++]!;
        }
      }
    } else if (t.kind === 'string') {
      const items = c as readonly string[];
      fieldFormat(t); // refuses variable-length strings
      for (let j = 0; j < pos.length; j++) {
        const text = items[j]!;
        if (typeof text !== 'string') throw recordError(`record field ${JSON.stringify(f.name)} holds a ${typeof text}, not a string`);
        if (t.encoding === 'utf32') {
          const codes = [...text].map((ch) => ch.codePointAt(0)!);
          if (codes.length > t.length) throw recordError(`record field ${JSON.stringify(f.name)}: ${JSON.stringify(text)} is longer than the field's ${t.length} characters`);
          const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
          codes.forEach((code, k) => dv.setUint32(pos[j]! + 4 * k, code, HOST_LITTLE));
        } else {
          const length = Buffer.byteLength(text, 'utf8');
          if (length > t.length) throw recordError(`record field ${JSON.stringify(f.name)}: ${JSON.stringify(text)} takes ${length} bytes, more than the field's ${t.length}`);
          outBuf.write(text, pos[j]!, length, 'utf8');
        }
      }
    } else {
      const items = c as readonly Uint8Array[];
      for (let j = 0; j < pos.length; j++) {
        const b = items[j]!;
        if (!(b instanceof Uint8Array)) throw recordError(`record field ${JSON.stringify(f.name)} holds a ${typeof b}, not bytes`);
        if (b.length > t.length) throw recordError(`record field ${JSON.stringify(f.name)}: ${b.length} bytes do not fit the field's ${t.length}`);
        out.set(b, pos[j]!);
      }
    }
  }
}

/**
 * Elements of no bytes (`S0`, `U0`, empty records) take no room in the file, so their count is not
 * bounded by its size: past this many the header is refused rather than made into that many JS values.
 */
const MAX_EMPTY_ELEMENTS = 1 << 24;

function tooManyEmpty(count: number): CheckpointerError {
  return unsupportedDtype(`the array holds ${count} elements of zero bytes each, more than this reader makes values for (${MAX_EMPTY_ELEMENTS})`);
}

/**
 * A Node Buffer (Python `bytes`) as a 0-d array numpy loads as bytes: `|S<n>` (what `np.save` of a
 * bytes object writes; `a.item()` is the bytes), or `|V<n>` when the bytes end in NUL, which `S`
 * would strip (numpy void: `a.item()` gives the bytes whole). Empty bytes are `|S1` holding b''.
 */
export function encodeBytesScalar(b: Uint8Array): EncodedNpy {
  if (b.length > 0 && b[b.length - 1] === 0) return { header: encodeNpyHeader(`|V${b.length}`, []), data: new Uint8Array(b.buffer, b.byteOffset, b.length) };
  if (b.length === 0) return { header: encodeNpyHeader('|S1', []), data: new Uint8Array(1) };
  return { header: encodeNpyHeader(`|S${b.length}`, []), data: new Uint8Array(b.buffer, b.byteOffset, b.length) };
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
    if (dtype === 'float16') return float16Values(arr)[0]!;
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
function unitView(bytes: Uint8Array, unit: number, floor = false): Uint8Array | Uint16Array | Uint32Array {
  const len = (n: number): number => (floor ? Math.floor(bytes.byteLength / n) : bytes.byteLength / n);
  if (unit === 4) return new Uint32Array(bytes.buffer, bytes.byteOffset, len(4));
  if (unit === 2) return new Uint16Array(bytes.buffer, bytes.byteOffset, len(2));
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
      let ascii = true;
      for (let k = start; k < end; k++) if (b[k]! >= 0x80) { ascii = false; break; }
      if (ascii) {
        out[i] = b.toString('latin1', start, end); // ASCII: no decoder needed (the common case, and much faster)
        continue;
      }
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
