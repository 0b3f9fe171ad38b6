/**
 * Checking what a dataset handle is given: frames to append and blocks to write, as TypedArrays of
 * the dataset's dtype — wrong dtype → TypeError, wrong shape → RangeError, before anything is
 * written. Shared by every backend's dataset handles.
 */
import { DType, dtypeInfo, isTypedArray, shapeSize, TypedArray } from '../values/dtype';
import { isNDArrayLike, NDArray, toNDArray } from '../values/ndarray';

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], int16: [-32768, 32767], int32: [-(2 ** 31), 2 ** 31 - 1],
  uint8: [0, 255], uint16: [0, 65535], uint32: [0, 2 ** 32 - 1],
};

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** The elements of `x` when it holds `dtype` values; its shape when it has one (null for a bare TypedArray). */
export function elementsOf(x: unknown, dtype: DType, what: string): { data: TypedArray; shape: readonly number[] | null } {
  const info = dtypeInfo(dtype);
  if (isTypedArray(x)) {
    const ok = x instanceof info.ArrayType || (info.ArrayType === Uint8Array && x instanceof Uint8ClampedArray);
    if (!ok) throw new TypeError(`${what}: a ${x.constructor.name} cannot hold ${dtype} values (expected a ${info.ArrayType.name})`);
    return { data: x, shape: null };
  }
  if (x instanceof NDArray || isNDArrayLike(x)) {
    const nd = toNDArray(x as NDArray);
    if (nd.dtype !== dtype) throw new TypeError(`${what}: an array of dtype ${nd.dtype} cannot be stored in a ${dtype} dataset`);
    return { data: nd.data, shape: nd.shape };
  }
  throw new TypeError(`${what}: expected a TypedArray or an NDArray of ${dtype}, got ${x === null ? 'null' : typeof x === 'object' ? (x as object).constructor?.name ?? 'object' : typeof x}`);
}

/** A scalar as a one-element array of `dtype` (for rank-1 datasets, whose frames are scalars). */
export function scalarElements(x: number | bigint | boolean, dtype: DType, what: string): TypedArray {
  const info = dtypeInfo(dtype);
  if (info.lanes === 2) throw new TypeError(`${what}: a ${dtype} frame is [re, im]; pass a ${info.ArrayType.name} of 2`);
  if (info.ArrayType === BigInt64Array || info.ArrayType === BigUint64Array) {
    if (typeof x === 'number' && !Number.isSafeInteger(x)) throw new TypeError(`${what}: ${x} is not an exact ${dtype} integer; pass a bigint`);
    const v = BigInt(x as number | bigint | boolean);
    const lo = dtype === 'int64' ? -(2n ** 63n) : 0n;
    const hi = dtype === 'int64' ? 2n ** 63n - 1n : 2n ** 64n - 1n;
    if (v < lo || v > hi) throw new RangeError(`${what}: ${v} does not fit ${dtype}`);
    return (info.ArrayType as BigInt64ArrayConstructor).of(v);
  }
  if (typeof x === 'bigint') {
    if (info.kind === 'f') return (info.ArrayType as Float64ArrayConstructor).of(Number(x));
    x = Number(x);
  }
  const v = typeof x === 'boolean' ? Number(x) : x;
  if (info.kind === 'b' && v !== 0 && v !== 1) throw new RangeError(`${what}: a bool is 0/1 or a boolean, got ${v}`);
  const range = INT_RANGE[dtype];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) throw new RangeError(`${what}: ${v} does not fit ${dtype}`);
  return (info.ArrayType as Float64ArrayConstructor).of(v);
}

/**
 * Frames for an append: one frame (shape `frame`) or a batch (k, ...frame). A bare TypedArray is
 * k whole frames laid end to end; a scalar is one frame of a rank-1 dataset.
 */
export function framesOf(x: unknown, dtype: DType, frame: readonly number[], what = 'append'): { data: TypedArray; count: number } {
  const lanes = dtypeInfo(dtype).lanes;
  const frameLen = shapeSize(frame) * lanes;
  if (typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean') {
    if (frame.length !== 0) throw new RangeError(`${what}: a frame has shape ${shapeText(frame)}; got a scalar`);
    return { data: scalarElements(x, dtype, what), count: 1 };
  }
  const { data, shape } = elementsOf(x, dtype, what);
  if (shape === null) {
    if (frameLen === 0) {
      if (data.length !== 0) throw new RangeError(`${what}: frames of shape ${shapeText(frame)} hold no elements; got ${data.length}`);
      return { data, count: 1 };
    }
    if (data.length % frameLen !== 0) {
      throw new RangeError(`${what}: ${data.length} elements are not whole frames of shape ${shapeText(frame)} (${frameLen} elements each)`);
    }
    return { data, count: data.length / frameLen };
  }
  if (same(shape, frame)) return { data, count: 1 };
  if (shape.length === frame.length + 1 && same(shape.slice(1), frame)) return { data, count: shape[0]! };
  throw new RangeError(`${what}: shape ${shapeText(shape)} is neither a frame ${shapeText(frame)} nor a batch [k, ${frame.join(', ')}]`);
}

/** Data for a write of a selection with `counts` elements per axis. */
export function blockOf(x: unknown, dtype: DType, counts: readonly number[], what = 'write'): TypedArray {
  const lanes = dtypeInfo(dtype).lanes;
  const { data, shape } = elementsOf(x, dtype, what);
  if (shape !== null && !same(shape, counts)) {
    throw new RangeError(`${what}: data of shape ${shapeText(shape)} does not match the selection's shape ${shapeText(counts)}`);
  }
  const n = shapeSize(counts) * lanes;
  if (data.length !== n) throw new RangeError(`${what}: the selection holds ${n / lanes} elements (shape ${shapeText(counts)}); data has ${data.length / lanes}`);
  return data;
}

/** The caller's array a `readInto` fills: the dtype's TypedArray holding exactly `elements` elements. */
export function targetOf<T extends TypedArray>(x: T, dtype: DType, elements: number, what = 'readInto'): T {
  if (!isTypedArray(x)) throw new TypeError(`${what}: the target must be a TypedArray, got ${x === null ? 'null' : typeof x}`);
  const { data } = elementsOf(x, dtype, what);
  const n = elements * dtypeInfo(dtype).lanes;
  if (data.length !== n) throw new RangeError(`${what}: the selection holds ${n} values; the target has ${data.length}`);
  return x;
}
