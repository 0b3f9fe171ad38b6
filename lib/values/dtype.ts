/**
 * Element types, named as numpy names them. Each dtype has one TypedArray class that holds its
 * values in C order: complex numbers interleave (re, im) in a float array, bool is one byte 0/1.
 */

export type DType =
  | 'bool'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'float32' | 'float64'
  | 'complex64' | 'complex128';

export type TypedArray =
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint8ClampedArray | Uint16Array | Uint32Array | BigUint64Array
  | Float32Array | Float64Array;

export type TypedArrayConstructor =
  | Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor | BigInt64ArrayConstructor
  | Uint8ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | BigUint64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

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
