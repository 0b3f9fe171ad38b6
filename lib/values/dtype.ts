/**
 * Element types, named as numpy names them. Each dtype has one TypedArray class that holds its
 * values in C order: complex numbers interleave (re, im) in a float array, bool is one byte 0/1.
 */

export type DType =
  | 'bool'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'float16' | 'float32' | 'float64'
  | 'complex64' | 'complex128';

export type TypedArray =
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint8ClampedArray | Uint16Array | Uint32Array | BigUint64Array
  | Float32Array | Float64Array;

export type TypedArrayConstructor =
  | Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor | BigInt64ArrayConstructor
  | Uint8ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | BigUint64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

/**
 * The class that holds float16 values: `Float16Array` where this Node has it (Node 24+), else a
 * `Uint16Array` of the IEEE binary16 bit patterns — the documented stand-in; `float16ToNumber` and
 * `numberToFloat16` convert, and NDArray.toList() gives numbers either way.
 */
export const Float16ArrayType: TypedArrayConstructor =
  ((globalThis as { Float16Array?: unknown }).Float16Array as TypedArrayConstructor | undefined) ?? Uint16Array;
/** Whether float16 data is held as raw bits in a Uint16Array (no Float16Array in this Node). */
export const FLOAT16_AS_BITS = Float16ArrayType === Uint16Array;

export interface DTypeInfo {
  readonly name: DType;
  /** Bytes per element (a complex element counts both parts). */
  readonly itemSize: number;
  /** TypedArray elements per array element: 2 for complex, else 1. */
  readonly lanes: 1 | 2;
  readonly ArrayType: TypedArrayConstructor;
  /** numpy's kind character: b, i, u, f, c. */
  readonly kind: 'b' | 'i' | 'u' | 'f' | 'c';
}

const table: Record<DType, DTypeInfo> = {
  bool: { name: 'bool', itemSize: 1, lanes: 1, ArrayType: Uint8Array, kind: 'b' },
  int8: { name: 'int8', itemSize: 1, lanes: 1, ArrayType: Int8Array, kind: 'i' },
  int16: { name: 'int16', itemSize: 2, lanes: 1, ArrayType: Int16Array, kind: 'i' },
  int32: { name: 'int32', itemSize: 4, lanes: 1, ArrayType: Int32Array, kind: 'i' },
  int64: { name: 'int64', itemSize: 8, lanes: 1, ArrayType: BigInt64Array, kind: 'i' },
  uint8: { name: 'uint8', itemSize: 1, lanes: 1, ArrayType: Uint8Array, kind: 'u' },
  uint16: { name: 'uint16', itemSize: 2, lanes: 1, ArrayType: Uint16Array, kind: 'u' },
  uint32: { name: 'uint32', itemSize: 4, lanes: 1, ArrayType: Uint32Array, kind: 'u' },
  uint64: { name: 'uint64', itemSize: 8, lanes: 1, ArrayType: BigUint64Array, kind: 'u' },
  float16: { name: 'float16', itemSize: 2, lanes: 1, ArrayType: Float16ArrayType, kind: 'f' },
  float32: { name: 'float32', itemSize: 4, lanes: 1, ArrayType: Float32Array, kind: 'f' },
  float64: { name: 'float64', itemSize: 8, lanes: 1, ArrayType: Float64Array, kind: 'f' },
  complex64: { name: 'complex64', itemSize: 8, lanes: 2, ArrayType: Float32Array, kind: 'c' },
  complex128: { name: 'complex128', itemSize: 16, lanes: 2, ArrayType: Float64Array, kind: 'c' },
};

export const DTYPES: readonly DType[] = Object.keys(table) as DType[];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(table, x);
}

export function dtypeInfo(dtype: DType): DTypeInfo {
  const info = isDType(dtype) ? table[dtype] : undefined;
  if (!info) throw new TypeError(`unknown dtype ${JSON.stringify(dtype)}; expected one of ${DTYPES.join(', ')}`);
  return info;
}

export function isTypedArray(x: unknown): x is TypedArray {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

/** The dtype a bare TypedArray stands for (Uint8ClampedArray counts as uint8). */
export function dtypeOfTypedArray(a: TypedArray): DType {
  if (!FLOAT16_AS_BITS && a instanceof Float16ArrayType) return 'float16';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof BigUint64Array) return 'uint64';
  throw new TypeError(`unsupported TypedArray ${(a as object).constructor?.name}`);
}

/** The TypedArray class that holds a dtype's values. */
export function arrayTypeOf(dtype: DType): TypedArrayConstructor {
  return dtypeInfo(dtype).ArrayType;
}

/** Element count of a shape (1 for the empty shape of a 0-d array). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A TypedArray of `dtype` with `length` elements whose contents will be overwritten at once (by a
 * file read): large ones skip V8's zero-fill, which costs as much as the read itself.
 */
export function allocateForRead(dtype: DType, length: number): TypedArray {
  const Ctor = arrayTypeOf(dtype);
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  if (bytes < 64 * 1024) return new Ctor(length);
  return new Ctor(Buffer.allocUnsafeSlow(bytes).buffer, 0, length);
}

/**
 * Whether a view's memory may change size or content under an asynchronous call: a resizable or
 * growable buffer (it can shrink or grow), or a SharedArrayBuffer (other threads write it).
 */
export function isUnstableView(a: ArrayBufferView): boolean {
  const buf = a.buffer as ArrayBuffer & { resizable?: boolean; growable?: boolean };
  return buf.resizable === true || buf.growable === true || (typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer);
}

/** An IEEE binary16 bit pattern as a JS number (exact: every float16 is a float64). */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const HIGH_WORD = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 1 : 0;

/** Rounds a non-negative float64 to an integer, ties to even (exact: no double rounding). */
function roundHalfEven(t: number): number {
  const fl = Math.floor(t);
  const diff = t - fl;
  return diff > 0.5 || (diff === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
}

/** A JS number rounded to the nearest binary16 (ties to even, as numpy's astype(float16)), as its bit pattern. */
export function numberToFloat16(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (0x400 is the smallest normal)
  f64[0] = a;
  let e = ((f64Words[HIGH_WORD]! >>> 20) & 0x7ff) - 1023;
  let r = roundHalfEven((a / 2 ** e - 1) * 1024); // exact: scaling by powers of two
  if (r === 1024) {
    r = 0;
    e++;
  }
  if (e + 15 >= 0x1f) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | r;
}

/** A float16 array's elements as numbers, whichever class holds them. */
export function float16Values(data: TypedArray): Float64Array {
  const out = new Float64Array(data.length);
  if (FLOAT16_AS_BITS) for (let i = 0; i < data.length; i++) out[i] = float16ToNumber((data as Uint16Array)[i]!);
  else for (let i = 0; i < data.length; i++) out[i] = (data as Float64Array)[i]!;
  return out;
}

/** The raw 16-bit patterns of float16 data (a view, not a copy), for files and the addon. */
export function float16Bits(data: TypedArray): Uint16Array {
  return data instanceof Uint16Array ? data : new Uint16Array(data.buffer, data.byteOffset, data.length);
}
