/**
 * NDArray: a typed, shaped block of numbers in C order — what a numpy array is in this package.
 * It is a plain holder (no arithmetic): `data` is the TypedArray, `shape` the dimensions, `dtype`
 * numpy's name for the element type.
 */
import {
  arrayTypeOf, DType, dtypeInfo, dtypeOfTypedArray, FLOAT16_AS_BITS, float16ToNumber, isDType, isTypedArray,
  numberToFloat16, shapeSize, TypedArray,
} from './dtype';

export class NDArray<D extends DType = DType> {
  readonly data: TypedArray;
  readonly shape: readonly number[];
  readonly dtype: D;

  constructor(data: TypedArray, shape: readonly number[], dtype: D) {
    const info = dtypeInfo(dtype);
    if (!(data instanceof info.ArrayType) && !(dtype === 'uint8' && data instanceof Uint8ClampedArray)) {
      throw new TypeError(`dtype ${dtype} needs a ${info.ArrayType.name}, got ${data.constructor.name}`);
    }
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid shape [${shape.join(', ')}]`);
    }
    const expected = shapeSize(shape) * info.lanes;
    if (data.length !== expected) {
      throw new RangeError(
        `shape [${shape.join(', ')}] of ${dtype} needs ${expected} elements in data, got ${data.length}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
  }

  /** Number of array elements (a complex number counts once). */
  get size(): number {
    return shapeSize(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Bytes of element data. */
  get nbytes(): number {
    return this.size * dtypeInfo(this.dtype).itemSize;
  }

  /**
   * Nested JS arrays of the values (like numpy's `tolist()`): bool → boolean, complex → [re, im],
   * int64/uint64 → bigint. A 0-d array gives its scalar.
   */
  toList(): unknown {
    const { data, shape } = this;
    const info = dtypeInfo(this.dtype);
    const elem = (i: number): unknown => {
      if (info.lanes === 2) return [data[2 * i], data[2 * i + 1]];
      if (info.kind === 'b') return data[i] !== 0;
      if (this.dtype === 'float16' && FLOAT16_AS_BITS) return float16ToNumber(data[i] as number);
      return data[i];
    };
    if (shape.length === 0) return elem(0);
    let index = 0;
    const build = (axis: number): unknown[] => {
      const out: unknown[] = new Array(shape[axis]);
      for (let k = 0; k < shape[axis]!; k++) out[k] = axis === shape.length - 1 ? elem(index++) : build(axis + 1);
      return out;
    };
    return build(0);
  }

  get [Symbol.toStringTag](): string {
    return 'NDArray';
  }
}

/** A flat C-order list as nested arrays of `shape` (its one element for the empty shape). */
export function nest(flat: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  let index = 0;
  const build = (axis: number): unknown[] => {
    const out: unknown[] = new Array(shape[axis]);
    for (let k = 0; k < shape[axis]!; k++) out[k] = axis === shape.length - 1 ? flat[index++] : build(axis + 1);
    return out;
  };
  return build(0);
}

/** Anything with `data` and `shape` that looks like an n-d array (scijs ndarray, another NDArray copy). */
export interface NDArrayLike {
  data: ArrayLike<number | bigint> | TypedArray;
  shape: readonly number[];
  dtype?: string;
  stride?: readonly number[];
  offset?: number;
}

export function isNDArrayLike(x: unknown): x is NDArrayLike {
  if (x === null || typeof x !== 'object' || x instanceof NDArray) return x instanceof NDArray;
  const o = x as Record<string, unknown>;
  return (isTypedArray(o.data) || Array.isArray(o.data)) && Array.isArray(o.shape)
    && (o.shape as unknown[]).every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
}

/**
 * Makes an NDArray. `data` is a TypedArray (kept, not copied, when its class fits the dtype) or a
 * flat array of numbers/bigints/booleans (converted). `shape` defaults to 1-D; `dtype` defaults to
 * the TypedArray's own (float64 for plain arrays).
 */
export function ndarray(
  data: TypedArray | ArrayLike<number | bigint | boolean>,
  shape?: readonly number[],
  dtype?: DType,
): NDArray {
  const dt: DType = dtype ?? (isTypedArray(data) ? dtypeOfTypedArray(data) : 'float64');
  if (!isDType(dt)) throw new TypeError(`unknown dtype ${JSON.stringify(dt)}`);
  const info = dtypeInfo(dt);
  let typed: TypedArray;
  if (isTypedArray(data) && (data instanceof info.ArrayType || (dt === 'uint8' && data instanceof Uint8ClampedArray))) {
    typed = data;
  } else {
    typed = convertElements(data, dt);
  }
  const sh = shape ?? [typed.length / info.lanes];
  return new NDArray(typed, sh, dt);
}

/** Copies values into a fresh TypedArray of `dtype`, converting numbers and bigints as needed. */
function convertElements(data: ArrayLike<number | bigint | boolean>, dtype: DType): TypedArray {
  const Ctor = arrayTypeOf(dtype);
  const n = data.length;
  const isBig = Ctor === BigInt64Array || Ctor === BigUint64Array;
  const out = new Ctor(n);
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (isBig) {
      if (typeof v === 'number' && !Number.isInteger(v)) throw new TypeError(`${dtype} value ${v} is not an integer`);
      (out as BigInt64Array)[i] = BigInt(v as number | bigint | boolean);
    } else if (dtype === 'float16' && FLOAT16_AS_BITS) {
      (out as Uint16Array)[i] = numberToFloat16(Number(v));
    } else {
      (out as Float64Array)[i] = typeof v === 'boolean' ? Number(v) : Number(v);
    }
  }
  return out;
}

/** Normalises an NDArray-like (scijs ndarray with strides and offset, or a plain {data, shape}) to an NDArray in C order. */
export function toNDArray(x: NDArrayLike | NDArray): NDArray {
  if (x instanceof NDArray) return x;
  const shape = [...x.shape];
  const declared = typeof x.dtype === 'string' && isDType(x.dtype) ? x.dtype : undefined;
  const dtype: DType = declared ?? (isTypedArray(x.data) ? dtypeOfTypedArray(x.data) : 'float64');
  const size = shapeSize(shape);
  const { stride, offset = 0 } = x;
  if (!stride || isCContiguous(shape, stride)) {
    const lanes = dtypeInfo(dtype).lanes;
    const src = x.data;
    const start = offset * lanes;
    const end = start + size * lanes;
    if (isTypedArray(src) && start === 0 && end === src.length) return ndarray(src, shape, dtype);
    const slice = isTypedArray(src) ? src.subarray(start, end) : Array.prototype.slice.call(src, start, end);
    return ndarray(slice as TypedArray, shape, dtype);
  }
  // Strided view: gather into C order.
  const flat: (number | bigint)[] = new Array(size);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < size; k++) {
    let pos = offset;
    for (let a = 0; a < shape.length; a++) pos += idx[a]! * stride[a]!;
    flat[k] = x.data[pos] as number | bigint;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return ndarray(flat, shape, dtype);
}

function isCContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let a = shape.length - 1; a >= 0; a--) {
    if (shape[a]! > 1 && stride[a] !== expected) return false;
    expected *= shape[a]!;
  }
  return true;
}
