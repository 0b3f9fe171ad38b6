/**
 * HDF5 element types beyond plain numbers and strings, between the addon's packed form and the
 * value model: compound → RecordArray, enum → EnumArray, H5T_ARRAY → extra trailing axes,
 * variable-length sequences → NDArrays, opaque → Buffers, object references → path strings.
 *
 * The addon reads such data as packed elements in native byte order (compound members packed in
 * field order, the offsets it reports in `H5Type`) plus a `side` list holding the variable-length
 * parts (strings, sequences, reference paths) in the order a depth-first walk of the elements
 * meets them. Writing is the mirror image: `encodeRecords` packs a RecordArray by the same rules
 * the addon uses to build the type (binding/convert.cpp toType), so h5py reads back the compound
 * type — field order, nesting, array fields, strings, bytes, enums — the records came with.
 */
import { CheckpointerError } from '../errors';
import type { AttrRead, AttrValue as NativeAttrValue, H5Type } from '../native';
import { DType, dtypeInfo, float16Bits, Float16ArrayType, FLOAT16_AS_BITS, float16Values, shapeSize, TypedArray } from '../values/dtype';
import { NDArray, nest } from '../values/ndarray';
import { Column, EnumArray, FieldType, IntDType, RecordArray, RecordField } from '../values/records';

function unsupportedDtype(message: string, file?: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_DTYPE', ...(file ? { file } : {}) });
}

function unsupportedValue(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_VALUE' });
}

/** Elements per item of a node (its H5T_ARRAY axes). */
function dimsSize(t: H5Type): number {
  return shapeSize(t.dims);
}

/** Variable-length slots in one element of `t` (its dims not counted). */
function sideSlots(t: H5Type): number {
  switch (t.class) {
    case 'string': return t.variable ? 1 : 0;
    case 'vlen':
    case 'reference': return 1;
    case 'compound': return t.fields.reduce((n, f) => n + sideSlots(f.type) * dimsSize(f.type), 0);
    default: return 0;
  }
}

/** A TypedArray of `dtype` over a copy of `count` elements gathered from `bytes` (item i at offs[i], `block` bytes each). */
function gatherNumbers(dtype: DType, bytes: Uint8Array, offs: Float64Array, block: number): TypedArray {
  const out = new Uint8Array(offs.length * block);
  const contiguous = offs.length > 0 && offs.every((o, i) => o === offs[0]! + i * block);
  if (contiguous) out.set(bytes.subarray(offs[0]!, offs[0]! + out.length));
  else for (let i = 0; i < offs.length; i++) out.set(bytes.subarray(offs[i]!, offs[i]! + block), i * block);
  return typedView(dtype, out);
}

/** `bytes` (own, aligned memory) seen as dtype's TypedArray (float16: Float16Array where Node has it, else its bits). */
function typedView(dtype: DType, bytes: Uint8Array): TypedArray {
  const Ctor = dtypeInfo(dtype).ArrayType; // float16: Float16Array, or Uint16Array of the bits
  const per = Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % per !== 0) bytes = bytes.slice();
  return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / per);
}

/** A TypedArray the addon returned for dtype (float16 arrives as Uint16Array bits). */
export function fromNativeArray(dtype: DType, data: TypedArray): TypedArray {
  if (dtype !== 'float16' || FLOAT16_AS_BITS || !(data instanceof Uint16Array)) return data;
  return new Float16ArrayType(data.buffer as ArrayBuffer, data.byteOffset, data.length);
}

/** What the addon takes for dtype's data (float16 as its Uint16Array bits, never a Float16Array). */
export function toNativeArray(dtype: DType, data: TypedArray): TypedArray {
  return dtype === 'float16' ? float16Bits(data) : data;
}

function enumMembers(t: Extract<H5Type, { class: 'enum' }>): Record<string, number | bigint> {
  const m: Record<string, number | bigint> = {};
  for (const [name, v] of t.members) Object.defineProperty(m, name, { value: v, enumerable: true, writable: true, configurable: true });
  return m;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');

/** Fixed-length string bytes as numpy reads them: SPACEPAD strips spaces then NULs; NULLTERM stops at the first NUL. */
function trimFixed(b: Uint8Array, pad: 'nullterm' | 'nullpad' | 'spacepad'): Uint8Array {
  let n = b.length;
  if (pad === 'nullterm') {
    const z = b.indexOf(0);
    if (z >= 0) n = z;
  } else {
    if (pad === 'spacepad') while (n > 0 && b[n - 1] === 0x20) n--;
    while (n > 0 && b[n - 1] === 0) n--;
  }
  return b.subarray(0, n);
}

function textOrBuffer(b: Uint8Array): string | Buffer {
  try {
    return utf8.decode(b);
  } catch {
    return Buffer.from(b);
  }
}

/** The items of node `t` (each item one element, dims included in offs) as a flat list. */
function flatItems(t: H5Type, bytes: Uint8Array, offs: Float64Array, sides: Float64Array, side: readonly unknown[], where: string, inRecord: boolean): unknown[] {
  const out: unknown[] = new Array(offs.length);
  for (let i = 0; i < offs.length; i++) {
    switch (t.class) {
      case 'string': {
        if (t.variable) {
          const v = side[sides[i]!];
          out[i] = inRecord && Buffer.isBuffer(v) ? utf8Lossy.decode(v) : v ?? '';
        } else {
          const b = trimFixed(bytes.subarray(offs[i]!, offs[i]! + t.size), t.pad);
          out[i] = inRecord ? utf8Lossy.decode(b) : textOrBuffer(b);
        }
        break;
      }
      case 'opaque':
        out[i] = Buffer.from(bytes.subarray(offs[i]!, offs[i]! + t.size));
        break;
      case 'reference':
        out[i] = side[sides[i]!] ?? null;
        break;
      case 'vlen': {
        const base = t.base;
        const raw = side[sides[i]!] as TypedArray;
        if (base.class === 'reference') {
          // A sequence of object references (dimension scales' DIMENSION_LIST): paths, null for null ones.
          out[i] = raw as unknown as (string | null)[];
          break;
        }
        if (base.class === 'string' || base.class === 'opaque') {
          // A sequence of fixed-length strings (PyTables' VLStringAtom arrays) or opaque items: its bytes, split.
          const bytes = raw as Uint8Array;
          const count = bytes.length / base.size;
          const offsets = Float64Array.from({ length: count * dimsSize(base) }, (_, k) => k * base.size);
          const items = flatItems({ ...base, dims: [] } as H5Type, bytes, offsets, new Float64Array(offsets.length), [], where, inRecord);
          out[i] = base.dims.length === 0 ? items : nest(items, [count, ...base.dims]);
          break;
        }
        const dtype = (base as { dtype: DType }).dtype;
        const data = fromNativeArray(dtype, raw);
        const len = data.length / dtypeInfo(dtype).lanes / dimsSize(base);
        const shape = [len, ...base.dims];
        out[i] = base.class === 'enum' ? new EnumArray(data, shape, base.dtype as IntDType, enumMembers(base)) : new NDArray(data, shape, dtype);
        break;
      }
      default:
        throw unsupportedDtype(`${where}: cannot list ${t.class} items`);
    }
  }
  return out;
}

/** Byte offsets (and side slot bases) of each element of `t` inside items at `offs`/`sides`. */
function expand(t: H5Type, offs: Float64Array, sides: Float64Array, fieldOffset: number, fieldSides: number): [Float64Array, Float64Array] {
  const per = dimsSize(t);
  const slots = sideSlots(t);
  const o = new Float64Array(offs.length * per);
  const s = new Float64Array(offs.length * per);
  for (let i = 0, j = 0; i < offs.length; i++) {
    for (let k = 0; k < per; k++, j++) {
      o[j] = offs[i]! + fieldOffset + k * t.size;
      s[j] = sides[i]! + fieldSides + k * slots;
    }
  }
  return [o, s];
}

function fieldTypeOf(t: H5Type, where: string): FieldType {
  switch (t.class) {
    case 'number': return { kind: 'number', dtype: t.dtype };
    case 'enum': return { kind: 'enum', dtype: t.dtype, members: enumMembers(t) };
    case 'string':
      return t.variable
        ? { kind: 'string', length: 0, encoding: t.utf8 ? 'utf8' : 'ascii', variable: true }
        : { kind: 'string', length: t.length, encoding: t.utf8 ? 'utf8' : 'ascii' };
    case 'opaque': return { kind: 'bytes', length: t.size };
    case 'compound': return { kind: 'record', fields: t.fields.map((f) => ({ name: f.name, type: fieldTypeOf(f.type, `${where}.${f.name}`), shape: f.type.dims })) };
    // Object references are paths (null for a null reference): a text column; written back as text.
    case 'reference': return { kind: 'string', length: 0, encoding: 'utf8', variable: true };
    default:
      throw unsupportedDtype(`${where} holds variable-length sequences inside a compound type, which is not read`);
  }
}

/** A column of node `t` for elements at `offs` (element-major), shaped [...recordShape, ...t.dims]. */
function column(t: H5Type, bytes: Uint8Array, offs: Float64Array, sides: Float64Array, side: readonly unknown[], recordShape: readonly number[], where: string): Column {
  const shape = [...recordShape, ...t.dims];
  switch (t.class) {
    case 'number':
    case 'enum': {
      const data = gatherNumbers(t.dtype, bytes, offs, t.size);
      return t.class === 'enum' ? new EnumArray(data, shape, t.dtype, enumMembers(t)) : new NDArray(data, shape, t.dtype);
    }
    case 'compound': return records(t, bytes, offs, sides, side, shape, where);
    case 'string':
    case 'opaque':
    case 'reference': {
      const items = flatItems(t, bytes, offs, sides, side, where, true);
      return items as string[] | Buffer[];
    }
    default:
      fieldTypeOf(t, where); // throws: what a RecordArray column cannot hold
      throw unsupportedDtype(`${where}: not a record column`);
  }
}

/** A RecordArray of compound elements at `offs` (one per record, C order over `shape`). */
function records(t: Extract<H5Type, { class: 'compound' }>, bytes: Uint8Array, offs: Float64Array, sides: Float64Array, side: readonly unknown[], shape: readonly number[], where: string): RecordArray {
  const columns = new Map<string, Column>();
  const fields: RecordField[] = [];
  let sideBase = 0;
  for (const f of t.fields) {
    const at = `${where}.${f.name}`;
    const [o, s] = expand(f.type, offs, sides, f.offset, sideBase);
    sideBase += sideSlots(f.type) * dimsSize(f.type);
    const elementType = { ...f.type, dims: [] } as H5Type;
    columns.set(f.name, column(elementType, bytes, o, s, side, [...shape, ...f.type.dims], at));
    fields.push({ name: f.name, type: fieldTypeOf(f.type, at), shape: f.type.dims });
  }
  return new RecordArray(columns, { shape, fields });
}


/**
 * The value of packed elements of `type` over `shape` (a dataset's or attribute's extent; [] for
 * 0-d): numbers with array axes → NDArray [...shape, ...dims]; compound → RecordArray; strings,
 * opaque (Buffer), sequences (NDArray each) and references (path or null) → nested arrays by
 * shape, one item for 0-d.
 */
export function decodePacked(type: H5Type, shape: readonly number[], data: Uint8Array, side: readonly unknown[] = [], where = 'value'): unknown {
  const n = shapeSize(shape);
  const full = [...shape, ...type.dims];
  const items = n * dimsSize(type);
  const offs = new Float64Array(items);
  const sides = new Float64Array(items);
  const slots = sideSlots(type);
  for (let i = 0; i < items; i++) {
    offs[i] = i * type.size;
    sides[i] = i * slots;
  }
  switch (type.class) {
    case 'number':
    case 'enum': {
      if (data.length !== items * type.size) throw new CheckpointerError(`${where}: the addon returned ${data.length} bytes for ${items} elements`, { code: 'ERR_HDF5' });
      const typed = typedView(type.dtype, data);
      return type.class === 'enum' ? new EnumArray(typed, full, type.dtype, enumMembers(type)) : new NDArray(typed, full, type.dtype);
    }
    case 'compound': return records(type, data, offs, sides, side, full, where);
    default: {
      const list = flatItems({ ...type, dims: [] } as H5Type, data, offs, sides, side, where, false);
      return full.length === 0 ? list[0] : nest(list, full);
    }
  }
}

/** Whether a plain-number dataset's type carries more than its dtype (an enum's members). */
export function wrapNumbers(type: H5Type | undefined, data: TypedArray, shape: readonly number[], dtype: DType): NDArray {
  if (type?.class === 'enum') return new EnumArray(data, shape, type.dtype, enumMembers(type));
  return new NDArray(data, shape, dtype);
}

// ------------------------------------------------------------------------------------------ write

/** The HDF5 type a record field is written as (what h5py reads back as the same numpy dtype). */
export function fieldH5Type(t: FieldType, shape: readonly number[], where: string): H5Type {
  const dims = [...shape];
  for (const d of dims) if (!Number.isSafeInteger(d) || d <= 0) throw unsupportedValue(`${where}: array fields need positive dimensions, got [${dims.join(', ')}]`);
  switch (t.kind) {
    case 'number': return { class: 'number', dtype: t.dtype, size: dtypeInfo(t.dtype).itemSize, dims };
    case 'enum': return { class: 'enum', dtype: t.dtype, size: dtypeInfo(t.dtype).itemSize, dims, members: checkedMembers(t.dtype, t.members, where) };
    case 'string':
      // numpy U has no HDF5 form: stored as h5py stores str (variable-length UTF-8).
      if (t.variable || t.encoding === 'utf32' || t.length === 0) return { class: 'string', variable: true, utf8: true, length: 0, pad: 'nullterm', size: 8, dims };
      return { class: 'string', variable: false, utf8: t.encoding === 'utf8', length: t.length, pad: 'nullpad', size: t.length, dims };
    case 'bytes':
      if (t.length < 1) throw unsupportedValue(`${where}: a bytes field holds at least one byte (HDF5 opaque)`);
      return { class: 'opaque', size: t.length, tag: '', dims };
    case 'record': {
      let offset = 0;
      const fields = t.fields.map((f) => {
        const type = fieldH5Type(f.type, f.shape, `${where}.${f.name}`);
        const field = { name: f.name, offset, type };
        offset += type.size * shapeSize(type.dims);
        return field;
      });
      if (fields.length === 0) throw unsupportedValue(`${where}: a record needs at least one field`);
      return { class: 'compound', size: offset, dims, fields };
    }
  }
}

/** The compound type of a RecordArray's records. */
export function recordH5Type(r: RecordArray, where: string): Extract<H5Type, { class: 'compound' }> {
  return fieldH5Type({ kind: 'record', fields: r.fields }, [], where) as Extract<H5Type, { class: 'compound' }>;
}

const encoder = new TextEncoder();

/** Writes a column's items into `out` at `offs` (and its variable-length strings into `strings` at `sides`). */
function packColumn(c: Column, t: H5Type, out: Uint8Array, offs: Float64Array, sides: Float64Array, strings: string[], where: string): void {
  switch (t.class) {
    case 'number':
    case 'enum': {
      const nd = c as NDArray;
      if (!(nd instanceof NDArray)) throw unsupportedValue(`${where}: a ${t.class} field needs an NDArray column`);
      if (nd.dtype !== t.dtype) throw unsupportedValue(`${where}: the column's dtype ${nd.dtype} is not the field's ${t.dtype}`);
      const data = toNativeArray(nd.dtype, nd.data);
      const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < offs.length; i++) out.set(src.subarray(i * t.size, (i + 1) * t.size), offs[i]!);
      return;
    }
    case 'string': {
      const list = c as readonly string[];
      for (let i = 0; i < offs.length; i++) {
        const s = list[i];
        if (typeof s !== 'string') throw unsupportedValue(`${where}: a string field holds strings, got ${typeof s}`);
        if (t.variable) {
          if (s.includes('\0')) throw unsupportedValue(`${where}: HDF5 variable-length strings cannot hold NUL characters`);
          strings[sides[i]!] = s;
          continue;
        }
        const b = encoder.encode(s);
        if (b.length > t.size) throw unsupportedValue(`${where}: ${JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s)} takes ${b.length} bytes; the field holds ${t.size}`);
        if (b.length > 0 && b[b.length - 1] === 0) throw unsupportedValue(`${where}: text ending in NUL cannot be stored in a fixed-length string (numpy strips trailing NULs)`);
        out.set(b, offs[i]!);
      }
      return;
    }
    case 'opaque': {
      const list = c as readonly Uint8Array[];
      for (let i = 0; i < offs.length; i++) {
        const b = list[i];
        if (!(b instanceof Uint8Array) || b.length !== t.size) throw unsupportedValue(`${where}: a bytes field of ${t.size} bytes needs Uint8Arrays of that length`);
        out.set(b, offs[i]!);
      }
      return;
    }
    case 'compound': {
      const r = c as RecordArray;
      if (!(r instanceof RecordArray)) throw unsupportedValue(`${where}: a record field needs a RecordArray column`);
      let sideBase = 0;
      for (const f of t.fields) {
        const [o, s] = expand(f.type, offs, sides, f.offset, sideBase);
        sideBase += sideSlots(f.type) * dimsSize(f.type);
        packColumn(r.column(f.name), { ...f.type, dims: [] } as H5Type, out, o, s, strings, `${where}.${f.name}`);
      }
      return;
    }
    default:
      throw unsupportedValue(`${where}: ${t.class} fields are not written`);
  }
}

/** A RecordArray as packed elements of its compound type (and the variable-length strings, depth-first). */
export function encodeRecords(r: RecordArray, where: string): { type: Extract<H5Type, { class: 'compound' }>; data: Uint8Array; strings: string[] } {
  const type = recordH5Type(r, where);
  const n = r.size;
  const data = new Uint8Array(n * type.size);
  const slots = sideSlots(type);
  const strings: string[] = new Array(n * slots);
  const offs = new Float64Array(n);
  const sides = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    offs[i] = i * type.size;
    sides[i] = i * slots;
  }
  packColumn(r, type, data, offs, sides, strings, where);
  return { type, data, strings };
}

const INT_BITS: Record<IntDType, [bigint, bigint]> = {
  int8: [-(2n ** 7n), 2n ** 7n - 1n], int16: [-(2n ** 15n), 2n ** 15n - 1n], int32: [-(2n ** 31n), 2n ** 31n - 1n], int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint8: [0n, 2n ** 8n - 1n], uint16: [0n, 2n ** 16n - 1n], uint32: [0n, 2n ** 32n - 1n], uint64: [0n, 2n ** 64n - 1n],
};

/** Enum members HDF5 can hold: integer values that fit the dtype, each value once. */
function checkedMembers(dtype: IntDType, members: Readonly<Record<string, number | bigint>>, where: string): [string, number | bigint][] {
  const entries = Object.entries(members);
  if (entries.length === 0) throw unsupportedValue(`${where}: an HDF5 enum needs at least one member`);
  const [lo, hi] = INT_BITS[dtype];
  const seen = new Map<bigint, string>();
  for (const [name, v] of entries) {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw unsupportedValue(`${where}: enum member ${JSON.stringify(name)} = ${v} is not an exact integer`);
    const b = BigInt(v);
    if (b < lo || b > hi) throw unsupportedValue(`${where}: enum member ${JSON.stringify(name)} = ${v} does not fit ${dtype}`);
    if (seen.has(b)) throw unsupportedValue(`${where}: enum members ${JSON.stringify(seen.get(b))} and ${JSON.stringify(name)} have the same value ${v} (HDF5 enums map each value once)`);
    seen.set(b, name);
  }
  return entries;
}

/** The HDF5 enum type of an EnumArray's elements. */
export function enumH5Type(e: EnumArray, where = 'value'): H5Type {
  return { class: 'enum', dtype: e.dtype, size: dtypeInfo(e.dtype).itemSize, dims: [], members: checkedMembers(e.dtype, e.members, where) };
}

/** Whether a record type has variable-length strings (not written through dataset handles, which move fixed-size rows). */
export function hasVariableParts(t: H5Type): boolean {
  return sideSlots(t) > 0;
}

// ------------------------------------------------------------------------------------ attributes

/** An attribute as the addon read it, as a value: packed types decoded (compound → RecordArray, enum → EnumArray, ...). */
export function attrValueOf(read: AttrRead, where: string): unknown {
  if (read !== null && typeof read === 'object' && !ArrayBuffer.isView(read) && !Array.isArray(read)) {
    if ('unsupported' in read) throw unsupportedDtype(`${where}: ${read.unsupported}`);
    const v = decodePacked(read.type, read.shape, read.data, read.side, where);
    // A 0-d number or enum is a scalar, as plain attributes are.
    if (read.shape.length === 0 && read.type.dims.length === 0 && v instanceof NDArray && v.dtype !== 'complex64' && v.dtype !== 'complex128') {
      const x = v.dtype === 'float16' ? float16Values(v.data)[0]! : v.data[0]!;
      return typeof x === 'bigint' && Number.isSafeInteger(Number(x)) ? Number(x) : x;
    }
    return v;
  }
  return read;
}

/** A value for an attribute: RecordArray, EnumArray, NDArray (any dtype and shape, float16 too) and Buffer as packed elements; the rest as they are. */
export function nativeAttrValue(value: unknown, where: string): NativeAttrValue {
  if (value instanceof RecordArray) {
    const { type, data, strings } = encodeRecords(value, where);
    return strings.length > 0 ? { type, shape: [...value.shape], data, strings } : { type, shape: [...value.shape], data };
  }
  if (value instanceof NDArray) {
    const type: H5Type = value instanceof EnumArray ? enumH5Type(value, where) : { class: 'number', dtype: value.dtype, size: dtypeInfo(value.dtype).itemSize, dims: [] };
    const bits = toNativeArray(value.dtype, value.data);
    return { type, shape: [...value.shape], data: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength).slice() };
  }
  if (Buffer.isBuffer(value)) {
    // As datasets store bytes: a 0-d opaque (np.void); '' as |S1 holding b''.
    if (value.length === 0) return { type: { class: 'string', variable: false, utf8: false, length: 1, pad: 'nullpad', size: 1, dims: [] }, shape: [], data: new Uint8Array(1) };
    return { type: { class: 'opaque', size: value.length, tag: '', dims: [] }, shape: [], data: new Uint8Array(value) };
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value as string[];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const t = value as TypedArray;
    return FLOAT16_AS_BITS || !(t instanceof Float16ArrayType) ? t : nativeAttrValue(new NDArray(t, [t.length], 'float16'), where);
  }
  throw new TypeError(`${where}: an attribute value is a number, bigint, boolean, string, string[], TypedArray, NDArray, RecordArray or Buffer`);
}
