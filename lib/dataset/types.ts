/**
 * Dataset handles: arrays in a checkpoint that grow frame by frame and are read and written in
 * slices, without holding the whole array in memory — h5py's `Dataset` for Node. The HDF5 backend
 * (./hdf5-dataset) and the NumPy one (./npy-dataset, ./npz-dataset) implement them; any backend
 * can, by implementing `Dataset` and the checkpointer's `openDataset`/`openDatasetSync` hook.
 */
import type { DType, TypedArray } from '../values/dtype';
import type { NDArray, NDArrayLike } from '../values/ndarray';
import type { RecordArray, RecordField } from '../values/records';

/**
 * How to create a dataset. Names and meanings follow h5py's `create_dataset` where they overlap;
 * the differences are `maxshape`'s default (first axis unlimited) and that `dtype` is required.
 */

/** The compressing HDF5 filters a dataset can be written with (h5py's names; zstd/lz4 hdf5plugin's). */
export type Compression = 'gzip' | 'zstd' | 'lz4';
export interface DatasetOptions {
  /** numpy's name of the element type (required to create, unless `fields` is given). */
  dtype?: DType;
  /**
   * A record (compound) dataset: its fields, as a RecordArray has them (`records.fields` of a
   * first batch). Frames are then RecordArrays; `readRecords` reads them back. HDF5 only; fields
   * of a fixed size (no variable-length strings).
   */
  fields?: readonly RecordField[];
  /** Initial shape; default `[0]` for rank 1. Frames are `shape.slice(1)`. */
  shape?: readonly number[];
  /**
   * Largest shape the dataset may grow to; `null` = unlimited along that axis. Default:
   * `[null, ...shape.slice(1)]` (append along the first axis); `shape` with `chunks: false` or 0-d.
   */
  maxshape?: readonly (number | null)[];
  /**
   * `true` (the default when the dataset is resizable or filtered) picks a chunk shape for
   * throughput; an array sets it; `false` stores the dataset contiguously (fixed size, no filters).
   */
  chunks?: boolean | readonly number[] | null;
  /**
   * HDF5 only. `'gzip'` (deflate, filter 1), `'zstd'` (filter 32015) or `'lz4'` (filter 32004) —
   * the last two as hdf5plugin registers them, so `import hdf5plugin, h5py` reads them —, or a
   * gzip level 0–9 as h5py accepts; null/undefined = none.
   */
  compression?: Compression | number | null;
  /** gzip 0–9 (h5py's compression_opts; default 4), zstd 1–22 (default 3); lz4 has none. */
  compressionLevel?: number;
  /** Byte-shuffle before compressing (h5py's `shuffle`). */
  shuffle?: boolean;
  /** Value of elements never written (h5py's `fillvalue`). */
  fillValue?: number | bigint | boolean;
  /**
   * Flush by itself (as `flush()` does) every `frames` appended frames and/or once `ms` ms have
   * passed since the last flush: a bound on what a crash can cost. `ms` is checked at each append,
   * and by a timer for handles used through the async API. On `.npz` each flush commits the
   * file atomically: a copy + append when the session only added keys, else a rewrite.
   */
  autoFlush?: AutoFlush | null;
}

/** See `DatasetOptions.autoFlush`: at least one of the two, each a positive number. */
export interface AutoFlush {
  frames?: number;
  ms?: number;
}

/** Checks an `autoFlush` option; null when none was given. */
export function checkAutoFlush(a: AutoFlush | null | undefined): AutoFlush | null {
  if (a === undefined || a === null) return null;
  if (typeof a !== 'object') throw new TypeError(`autoFlush must be { frames?, ms? }, got ${JSON.stringify(a)}`);
  for (const k of ['frames', 'ms'] as const) {
    const v = a[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new RangeError(`autoFlush.${k} must be a positive number, got ${JSON.stringify(v)}`);
  }
  if (a.frames === undefined && a.ms === undefined) throw new TypeError('autoFlush needs frames, ms or both');
  return { frames: a.frames, ms: a.ms };
}

/**
 * One axis of a selection, in numpy's semantics: an integer index (negative counts from the end;
 * the axis is dropped from the result, as `a[5]` drops it), `[start, stop]` or
 * `[start, stop, step]` (`start`/`stop` may be negative, counting from the end, or null for the
 * axis' start/end; `step >= 1`), or `null` for the whole axis.
 */
export type AxisSelection =
  | number
  | readonly [number | null, number | null]
  | readonly [number | null, number | null, number]
  | null;

/** Per axis, from the first; missing trailing axes are taken whole. */
export type DatasetSelection = readonly AxisSelection[];

/** What `append` accepts: one frame (shape[1:]) or a batch (k, ...shape[1:]). */
export type AppendData = NDArray | NDArrayLike | TypedArray | number | bigint | boolean | RecordArray;

/** What `write` accepts: exactly the selection's elements (an NDArray must have its shape). */
export type WriteData = NDArray | NDArrayLike | TypedArray | RecordArray;

export interface WriteOptions {
  /** Let the selection reach past the current shape (within maxshape): the dataset grows to cover it. */
  grow?: boolean;
}

/** Small attributes on the dataset (h5py's `ds.attrs`). */
/**
 * An attribute value. On HDF5 also NDArrays (any dtype and shape), RecordArrays (compound),
 * EnumArrays and Buffers (opaque bytes); reading gives back what the file holds (a Buffer for text
 * that is not UTF-8, nested arrays of strings/Buffers/paths for arrays of those types).
 */
export type AttrValue = number | bigint | boolean | string | string[] | TypedArray | NDArray | RecordArray | Buffer | readonly unknown[];

export interface DatasetAttrs {
  get(name: string): AttrValue | null | undefined;
  set(name: string, value: AttrValue): void;
  has(name: string): boolean;
  delete(name: string): boolean;
  keys(): string[];
}

/**
 * A dataset handle. Opened inside a scope of its checkpointer, it is flushed and closed when that
 * scope closes; opened outside every scope, it keeps the file open until its own `close()`.
 * Handles on one dataset share its state (shape, buffered frames). Async calls queue behind the
 * checkpointer's other async work and keep call order; sync calls throw ERR_BUSY while async work
 * is in flight. `shape` is updated when a call is made, not when it settles.
 */
export interface Dataset extends AsyncDisposable, Disposable {
  readonly key: readonly string[];
  /** 'records' for a record (compound) dataset, whose `fields` say what it holds. */
  readonly dtype: DType | 'records';
  /** A record dataset's fields (absent otherwise). */
  readonly fields?: readonly RecordField[];
  /** Current shape, counting every append made so far (buffered or written). */
  readonly shape: readonly number[];
  readonly maxshape: readonly (number | null)[];
  /** null when the dataset is not chunked. */
  readonly chunks: readonly number[] | null;
  readonly compression: Compression | null;
  readonly compressionLevel: number | null;
  readonly shuffle: boolean;
  readonly attrs: DatasetAttrs;
  readonly isOpen: boolean;
  /** Elements in the dataset (the product of `shape`; a complex number counts once). */
  readonly size: number;
  readonly ndim: number;
  /** Bytes of element data (`size` times the dtype's item size). */
  readonly nbytes: number;

  /** Appends one frame or a batch along axis 0 (buffered into whole chunks). */
  append(frames: AppendData): Promise<void>;
  appendSync(frames: AppendData): void;
  /** The selected elements as an NDArray (the whole dataset without a selection). */
  read(selection?: DatasetSelection): Promise<NDArray>;
  readSync(selection?: DatasetSelection): NDArray;
  /** A record dataset's selected records (HDF5 record datasets; the whole dataset without a selection). */
  readRecords?(selection?: DatasetSelection): Promise<RecordArray>;
  readRecordsSync?(selection?: DatasetSelection): RecordArray;
  /**
   * Reads the selection into `target` (h5py's `read_direct`): the dtype's TypedArray with exactly
   * the selection's element count (C order); resolves to `target`.
   */
  readInto<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): Promise<T>;
  readIntoSync<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): T;
  write(selection: DatasetSelection, data: WriteData, options?: WriteOptions): Promise<void>;
  writeSync(selection: DatasetSelection, data: WriteData, options?: WriteOptions): void;
  /** New shape within maxshape; new elements hold the fill value. */
  resize(shape: readonly number[]): Promise<void>;
  resizeSync(shape: readonly number[]): void;
  /** Writes buffered frames and flushes the file's caches. */
  flush(): Promise<void>;
  flushSync(): void;
  /** Writes buffered frames and gives back the checkpointer scope. Later calls throw ERR_CLOSED. */
  close(): Promise<void>;
  closeSync(): void;
}

/** What the checkpointer calls on the handles it handed out (not part of the public API). */
export interface DatasetLifecycle {
  /** Its scope closed: writes what is buffered and marks the handle closed, from inside the checkpointer's queue. */
  detach(): Promise<void>;
  detachSync(): void;
}

/** How a dataset handle runs its work in its checkpointer's order (given to the backend hook). */
export interface DatasetHost {
  /** Runs `task` after all async work queued on the checkpointer so far. */
  enqueue<T>(task: () => Promise<T>): Promise<T>;
  /** Throws CheckpointerError ERR_BUSY while async work is in flight on the checkpointer. */
  assertIdle(): void;
  /** The handle closed itself (inside a queued task): the checkpointer forgets it, and closes the file if it held it open alone. */
  release(ds: Dataset): Promise<void>;
  /** Sync twin of `release`, called from a sync call. */
  releaseSync(ds: Dataset): void;
  /**
   * Takes the checkpointer's write lock (idempotent in a session; ERR_LOCKED, ERR_CONFLICT,
   * ERR_NOT_WRITABLE): a handle calls it, from inside a queued task, before it first writes.
   */
  acquireWriteLock(): Promise<void>;
  /** Sync twin of `acquireWriteLock`, called from a sync call before it plans its writes. */
  acquireWriteLockSync(): void;
  /** Whether the session holds the write lock already (or the checkpointer has no file to lock). */
  holdsWriteLock(): boolean;
}
