/**
 * McUtils' HDF5 layout, as policy over the native low level: which groups and datasets a value
 * becomes, and how a tree of groups and datasets loads back. One walk serves the sync and async
 * APIs: metadata work is done during the walk, and the bulk array transfers are returned as jobs
 * that the caller runs with `writeSync`/`readSync` or awaits with `write`/`read`.
 *
 *   dict            → group, children in insertion order (link creation order tracked)
 *   list            → group of `_list_item_N` plus `_list_numitems` (int64 scalar)
 *   null            → dataset with a null dataspace (h5py.Empty)
 *   boolean/number/bigint/string → 0-d dataset (bool enum, int64 or float64; ASCII text as fixed-length
 *                     `S` like McUtils, other text as variable-length UTF-8 like h5py's `str`)
 *   TypedArray/NDArray (rank ≥ 1) → chunked dataset, first axis unlimited
 *   registered object → group { pseudopickle_protocol, class: { pseudopickle_protocol, pickle_data }, state }
 */
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import type { DatasetInfo, H5File } from '../native';
import { classPickleBase64, classNameFromPickleBase64, displayClassName, PSEUDOPICKLE_PROTOCOL } from '../formats/pseudo-pickle';
import { allocateForRead, arrayTypeOf, DType, dtypeInfo, dtypeOfTypedArray, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { classify } from '../values/model';
import { reviveObject } from '../values/registry';

export const LIST_ITEM = '_list_item_';
export const LIST_COUNT = '_list_numitems';

/** Target bytes per chunk: large enough for whole-chunk writes at file speed, small enough to slice. */
export const TARGET_CHUNK_BYTES = 4 * 1024 * 1024;

/** A bulk transfer left for the caller to run, sync or async. */
export interface TransferJob {
  path: string;
  data: TypedArray;
}

export function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

export function toH5Path(key: readonly string[]): string {
  for (const k of key) {
    if (k.includes('/') || k === '.') throw new TypeError(`HDF5 key names cannot contain '/' or be '.': ${JSON.stringify(k)}`);
  }
  return '/' + key.join('/');
}

/**
 * Chunk shape for an array: whole trailing dimensions where they fit in the target, as many rows
 * along the first axis as fill it. Axes whose trailing block alone exceeds the target get 1.
 */
export function chunkShapeFor(shape: readonly number[], itemSize: number, target = TARGET_CHUNK_BYTES): number[] {
  const chunks = shape.map((d) => Math.max(1, d));
  for (let axis = 0; axis < shape.length; axis++) {
    let trailing = itemSize;
    for (let a = axis + 1; a < shape.length; a++) trailing *= Math.max(1, shape[a]!);
    if (trailing >= target && axis < shape.length - 1) {
      chunks[axis] = 1;
      continue;
    }
    chunks[axis] = Math.max(1, Math.min(Math.max(1, shape[axis]!), Math.floor(target / trailing)));
    break;
  }
  return chunks;
}

// ------------------------------------------------------------------------------------------ write

interface ScalarSpec { dtype: DType; data: TypedArray }

function scalarSpec(value: boolean | number | bigint): ScalarSpec {
  if (typeof value === 'boolean') return { dtype: 'bool', data: Uint8Array.of(value ? 1 : 0) };
  if (typeof value === 'bigint') {
    if (value >= -(2n ** 63n) && value < 2n ** 63n) return { dtype: 'int64', data: BigInt64Array.of(value) };
    if (value >= 0n && value < 2n ** 64n) return { dtype: 'uint64', data: BigUint64Array.of(value) };
    throw new CheckpointerError(`bigint ${value} does not fit in 64 bits`, { code: 'ERR_UNSUPPORTED_VALUE' });
  }
  if (Number.isSafeInteger(value) && !Object.is(value, -0)) return { dtype: 'int64', data: BigInt64Array.of(BigInt(value)) };
  return { dtype: 'float64', data: Float64Array.of(value) };
}

export class LayoutWriter {
  readonly jobs: TransferJob[] = [];
  constructor(private readonly file: H5File) {}

  /** Writes `value` at `path`, reusing what is there when it can and replacing it when not. */
  write(path: string, value: unknown): void {
    const c = classify(value, path);
    switch (c.kind) {
      case 'null':
        this.#replaceWith(path, () => this.file.createNull(path));
        return;
      case 'boolean':
      case 'number':
      case 'bigint': {
        const s = scalarSpec(c.value);
        this.#array(path, s.dtype, [], s.data);
        return;
      }
      case 'string':
        this.#replaceWith(path, () => this.#string(path, c.value));
        return;
      case 'typed':
        this.#array(path, dtypeOfTypedArray(c.value), [c.value.length], c.value);
        return;
      case 'ndarray':
        this.#array(path, c.value.dtype, [...c.value.shape], c.value.data);
        return;
      case 'list': {
        const names = c.value.map((_, i) => `${LIST_ITEM}${i}`);
        this.#group(path, [...names, LIST_COUNT]);
        c.value.forEach((item, i) => this.write(joinPath(path, names[i]!), item));
        this.write(joinPath(path, LIST_COUNT), c.value.length);
        return;
      }
      case 'dict':
        this.#group(path, c.entries.map(([k]) => k));
        for (const [k, v] of c.entries) this.write(joinPath(path, toH5Path([k]).slice(1)), v);
        return;
      case 'object': {
        this.#group(path, ['pseudopickle_protocol', 'class', 'state']);
        this.write(joinPath(path, 'pseudopickle_protocol'), PSEUDOPICKLE_PROTOCOL);
        const cls = joinPath(path, 'class');
        this.#group(cls, ['pseudopickle_protocol', 'pickle_data']);
        this.write(joinPath(cls, 'pseudopickle_protocol'), PSEUDOPICKLE_PROTOCOL);
        // Fixed-length bytes: McUtils base64-decodes `S` data but hands variable-length bytes to pickle as is.
        this.#replaceWith(joinPath(cls, 'pickle_data'), () => this.#string(joinPath(cls, 'pickle_data'), classPickleBase64(c.className)));
        this.write(joinPath(path, 'state'), c.state);
      }
    }
  }

  /** Makes `path` a group holding only `keep` (children it has beyond them are removed). */
  #group(path: string, keep: readonly string[]): void {
    const kind = this.file.kind(path);
    if (kind === 'group') {
      const wanted = new Set(keep);
      for (const child of this.file.list(path)) if (!wanted.has(child)) this.file.delete(joinPath(path, child));
      return;
    }
    if (kind !== null) this.file.delete(path);
    this.file.createGroup(path);
  }

  /**
   * ASCII text as McUtils writes it (fixed-length NUL-padded `S`, which McUtils reads back as str);
   * other text (and '') as h5py writes `str`: variable-length UTF-8.
   */
  #string(path: string, text: string): void {
    if (text.length > 0 && /^[\x01-\x7f]*$/.test(text)) this.file.writeBytes(path, Buffer.from(text, 'latin1'), 'S');
    else this.file.writeStrings(path, [text], []);
  }

  #replaceWith(path: string, create: () => void): void {
    if (this.file.kind(path) !== null) this.file.delete(path);
    create();
  }

  /**
   * An array (or 0-d scalar). An existing dataset of the same dtype and rank whose maxshape admits
   * the new shape is resized and rewritten in place, so rewrites do not grow the file.
   */
  #array(path: string, dtype: DType, shape: number[], data: TypedArray): void {
    if (this.file.kind(path) === 'dataset') {
      const info = this.file.info(path);
      if (canReuse(info, dtype, shape)) {
        if (shape.length > 0 && !sameShape(info.shape, shape)) this.file.resize(path, shape);
        this.#queue(path, data);
        return;
      }
    }
    if (this.file.kind(path) !== null) this.file.delete(path);
    if (shape.length === 0) {
      this.file.createDataset(path, { dtype, shape });
    } else {
      this.file.createDataset(path, {
        dtype,
        shape,
        // A zero-length fixed axis cannot hold a chunk of 1: leave such axes unlimited.
        maxshape: [null, ...shape.slice(1).map((d) => (d === 0 ? null : d))],
        chunks: chunkShapeFor(shape, dtypeInfo(dtype).itemSize),
      });
    }
    this.#queue(path, data);
  }

  #queue(path: string, data: TypedArray): void {
    if (data.length > 0) this.jobs.push({ path, data });
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function canReuse(info: DatasetInfo, dtype: DType, shape: readonly number[]): boolean {
  if (info.isNull || info.dtype !== dtype || info.shape.length !== shape.length) return false;
  if (shape.length === 0) return true;
  if (sameShape(info.shape, shape)) return true;
  if (!info.chunks) return false;
  return shape.every((d, i) => info.maxshape[i] === null || d <= (info.maxshape[i] as number));
}

// ------------------------------------------------------------------------------------------- read

/** Reads the node at `path` into JS values; arrays are allocated and their reads queued in `jobs`. */
export class LayoutReader {
  readonly jobs: TransferJob[] = [];
  /** Scalars whose value is known only after their read job ran. */
  readonly #scalars: { slot: { value: unknown }; data: TypedArray; dtype: DType }[] = [];
  constructor(private readonly file: H5File) {}

  /** Loads the value at `key`, or throws CheckpointerKeyError when it does not exist. */
  load(key: readonly string[]): unknown {
    const path = toH5Path(key);
    const kind = this.file.kind(path);
    if (kind === null) throw CheckpointerKeyError.missing(key, this.file.path);
    return this.#node(path);
  }

  /** After the jobs ran: replaces scalar placeholders with their values. */
  finish(value: unknown): unknown {
    return this.#resolve(value);
  }

  #node(path: string): unknown {
    const kind = this.file.kind(path);
    if (kind === 'group') return this.#group(path);
    if (kind === 'dataset') return this.#dataset(path);
    throw new CheckpointerError(`${path} in ${this.file.path} is neither a group nor a dataset`, {
      code: 'ERR_UNSUPPORTED_DTYPE', file: this.file.path,
    });
  }

  #group(path: string): unknown {
    const names = this.file.list(path);
    const has = new Set(names);
    if (has.has('pseudopickle_protocol') && has.has('class') && this.file.kind(joinPath(path, 'class')) === 'group') {
      const pickle = this.file.readStrings(joinPath(path, 'class/pickle_data'))[0] ?? '';
      const className = displayClassName(classNameFromPickleBase64(pickle));
      const state = has.has('state') ? this.#node(joinPath(path, 'state')) : null;
      return new PendingObject(className, state);
    }
    if (has.has(LIST_COUNT)) {
      const count = Number(this.#readScalarNow(joinPath(path, LIST_COUNT)));
      const out: unknown[] = [];
      for (let i = 0; i < count; i++) out.push(this.#node(joinPath(path, `${LIST_ITEM}${i}`)));
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const name of names) {
      Object.defineProperty(out, name, { value: this.#node(joinPath(path, name)), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  #readScalarNow(path: string): unknown {
    const info = this.file.info(path);
    const data = new (arrayTypeOf(info.dtype as DType))(dtypeInfo(info.dtype as DType).lanes);
    this.file.readSync(path, data);
    return scalarValue(data, info.dtype as DType);
  }

  #dataset(path: string): unknown {
    const info = this.file.info(path);
    if (info.isNull) return null;
    if (info.dtype === 'string') {
      const strings = this.file.readStrings(path);
      return info.shape.length === 0 ? strings[0] : nest(strings, info.shape);
    }
    const dtype = info.dtype as DType;
    const data = allocateForRead(dtype, shapeSize(info.shape) * dtypeInfo(dtype).lanes);
    if (data.length > 0) this.jobs.push({ path, data });
    if (info.shape.length === 0 && dtypeInfo(dtype).kind !== 'c') {
      const slot = { value: undefined as unknown };
      this.#scalars.push({ slot, data, dtype });
      return new PendingScalar(slot);
    }
    return new NDArray(data, info.shape, dtype);
  }

  #resolve(v: unknown): unknown {
    if (v instanceof PendingScalar) return v.slot.value;
    if (v instanceof PendingObject) return reviveObject(v.className, this.#resolve(v.state));
    if (Array.isArray(v)) return v.map((x) => this.#resolve(x));
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      for (const k of Object.keys(v)) (v as Record<string, unknown>)[k] = this.#resolve((v as Record<string, unknown>)[k]);
    }
    return v;
  }

  /** Call after the read jobs ran, before `finish`. */
  settleScalars(): void {
    for (const s of this.#scalars) s.slot.value = scalarValue(s.data, s.dtype);
  }
}

class PendingScalar {
  constructor(readonly slot: { value: unknown }) {}
}

class PendingObject {
  constructor(readonly className: string, readonly state: unknown) {}
}

/** A 0-d dataset's JS value: bool → boolean, 64-bit ints → number when safe else bigint. */
function scalarValue(data: TypedArray, dtype: DType): unknown {
  const v = data[0]!;
  if (dtype === 'bool') return v !== 0;
  if (typeof v === 'bigint') {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v;
}

function nest(flat: readonly string[], shape: readonly number[]): unknown {
  let index = 0;
  const build = (axis: number): unknown[] => {
    const out: unknown[] = [];
    for (let k = 0; k < shape[axis]!; k++) out.push(axis === shape.length - 1 ? flat[index++] : build(axis + 1));
    return out;
  };
  return build(0);
}
