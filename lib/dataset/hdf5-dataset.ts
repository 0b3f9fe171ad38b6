/**
 * HDF5 dataset handles (see ./types): a chunked dataset grown frame by frame and read and written in
 * slices through the native addon.
 *
 * Appends are copied into a buffer that spans whole chunk rows along axis 0 (a "band": one or more
 * chunks' worth of frames, about 1 MiB or more) and the band is written when it fills, so each chunk
 * is written once, whole — unfiltered ones with H5Dwrite_chunk — instead of once per frame. A batch
 * holding whole bands is written straight from the caller's array. `flush()` writes the buffered
 * frames but keeps them, so the band is still written whole when it fills.
 *
 * Every call does its bookkeeping (checks, shape, buffer) when it is made; its file I/O becomes
 * "steps" that run in the checkpointer's queue, in call order. Reads and stepped writes go through
 * blocks that touch only the chunks holding selected elements (./selection).
 */
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import type { AttrValue as NativeAttrValue, CreateDatasetOptions, DatasetInfo, H5File } from '../native';
import { chunkShapeFor, TARGET_CHUNK_BYTES, toH5Path } from '../backends/hdf5-layout';
import { allocateForRead, DType, DTypeInfo, dtypeInfo, isDType, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { AxisRange, Block, blocksFor, copyBlock, countsOf, isContiguous, normalizeSelection, rangeEnd } from './selection';
import type {
  AppendData, AttrValue, Dataset, DatasetAttrs, DatasetHost, DatasetLifecycle, DatasetOptions, DatasetSelection,
  WriteData, WriteOptions,
} from './types';
import { blockOf, framesOf } from './values';

/** Chunk bytes `chunks: true` aims at: whole-chunk writes at file speed; 1 MiB when compressed, so h5py's default chunk cache holds one. */
export const DATASET_CHUNK_BYTES = TARGET_CHUNK_BYTES;
export const COMPRESSED_CHUNK_BYTES = 1 << 20;
/** Least bytes buffered before a band of whole chunk rows is written. */
const BAND_BYTES = 1 << 20;
/** Transfers below this run on the event loop: a thread hop costs more than they do. */
const SMALL_IO = 1 << 16;

/** What the HDF5 backend gives a dataset handle: its open file, and how to make it writable. */
export interface HDF5DatasetIO {
  /** The checkpoint file (for messages). */
  readonly fileName: string;
  /** The open file, or null while it does not exist. */
  file(): H5File | null;
  /** The file opened read-write (reopened or created when needed); run inside the queue. */
  writable(): Promise<H5File>;
  writableSync(): H5File;
  /** Creates the key's missing parent groups (CheckpointerKeyError through a non-group). */
  parents(file: H5File, key: readonly string[]): void;
}

// ----------------------------------------------------------------------------------- creation

function shapeText(s: readonly (number | null)[]): string {
  return `[${s.map((d) => (d === null ? 'null' : d)).join(', ')}]`;
}

function checkDims(dims: unknown, what: string, allowNull: boolean): (number | null)[] {
  if (!Array.isArray(dims)) throw new TypeError(`${what} must be an array, got ${JSON.stringify(dims)}`);
  return dims.map((d) => {
    if (d === null && allowNull) return null;
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`${what} ${JSON.stringify(dims)}: dimensions are non-negative integers${allowNull ? ' or null (unlimited)' : ''}`);
    }
    return d;
  });
}

/**
 * The chunk shape `chunks: true` picks: whole trailing dimensions and as many rows along the first
 * axis as fill the target. Growable axes count as large (the first) or at least 1024 (others).
 */
export function datasetChunkShape(shape: readonly number[], maxshape: readonly (number | null)[], itemSize: number, target: number): number[] {
  const dims = shape.map((d, i) => {
    const m = maxshape[i];
    if (m === null || m === undefined) return i === 0 ? Number.MAX_SAFE_INTEGER : Math.max(d, 1024);
    return Math.max(1, m);
  });
  return chunkShapeFor(dims, itemSize, target);
}

/** Native create options from the user's, checked as h5py checks them (TypeError/RangeError). */
export function createOptions(o: DatasetOptions): CreateDatasetOptions {
  if (o === null || typeof o !== 'object') throw new TypeError(`dataset options must be an object, got ${JSON.stringify(o)}`);
  if (o.dtype === undefined) throw new TypeError('creating a dataset needs a dtype (options.dtype)');
  if (!isDType(o.dtype)) throw new TypeError(`unknown dtype ${JSON.stringify(o.dtype)}`);
  const info = dtypeInfo(o.dtype);
  const shape = checkDims(o.shape ?? [0], 'shape', false) as number[];
  const rank = shape.length;
  // Made for appending: the first axis is unlimited unless said otherwise (or the layout is contiguous).
  const maxshape = o.maxshape === undefined
    ? (rank === 0 || o.chunks === false ? [...shape] : [null, ...shape.slice(1)])
    : checkDims(o.maxshape, 'maxshape', true);
  if (maxshape.length !== rank) throw new RangeError(`maxshape ${shapeText(maxshape)} and shape ${shapeText(shape)} differ in length`);
  maxshape.forEach((m, i) => {
    if (m !== null && m < shape[i]!) throw new RangeError(`maxshape ${shapeText(maxshape)} is smaller than shape ${shapeText(shape)} on axis ${i}`);
  });
  const resizable = maxshape.some((m, i) => m !== shape[i]);

  let gzip = false;
  let level = 4;
  if (typeof o.compression === 'number') {
    if (!Number.isInteger(o.compression) || o.compression < 0 || o.compression > 9) throw new RangeError(`compression level ${o.compression} is not 0..9`);
    gzip = true;
    level = o.compression;
    if (o.compressionLevel !== undefined && o.compressionLevel !== level) throw new TypeError(`compression ${o.compression} and compressionLevel ${o.compressionLevel} disagree`);
  } else if (o.compression === 'gzip') {
    gzip = true;
  } else if (o.compression !== undefined && o.compression !== null) {
    throw new TypeError(`compression ${JSON.stringify(o.compression)} is not supported; use 'gzip' (or a gzip level 0..9)`);
  }
  if (o.compressionLevel !== undefined && o.compressionLevel !== null) {
    if (!gzip) throw new TypeError('compressionLevel needs compression: \'gzip\'');
    if (!Number.isInteger(o.compressionLevel) || o.compressionLevel < 0 || o.compressionLevel > 9) {
      throw new RangeError(`compressionLevel ${o.compressionLevel} is not 0..9`);
    }
    level = o.compressionLevel;
  }
  if (o.shuffle !== undefined && typeof o.shuffle !== 'boolean') throw new TypeError(`shuffle must be a boolean, got ${JSON.stringify(o.shuffle)}`);
  const shuffle = o.shuffle === true;
  const filtered = gzip || shuffle;

  let chunks: number[] | undefined;
  const c = o.chunks;
  if (c === false || ((c === undefined || c === null) && !resizable && !filtered) || rank === 0) {
    if (rank === 0 && (c === true || Array.isArray(c))) throw new TypeError('a 0-d dataset (shape []) cannot be chunked');
    if (rank === 0 && (resizable || filtered)) throw new TypeError('a 0-d dataset (shape []) cannot be resizable or compressed');
    if (filtered) throw new TypeError('compression and shuffle need a chunked dataset (chunks: true or a chunk shape), as in h5py');
    if (resizable) throw new TypeError(`a resizable dataset (maxshape ${shapeText(maxshape)}) needs chunks, as in h5py`);
  } else if (c === true || c === undefined || c === null) {
    chunks = datasetChunkShape(shape, maxshape, info.itemSize, filtered ? COMPRESSED_CHUNK_BYTES : DATASET_CHUNK_BYTES);
  } else if (Array.isArray(c)) {
    chunks = checkDims(c, 'chunks', false) as number[];
    if (chunks.length !== rank) throw new RangeError(`chunks ${shapeText(chunks)} and shape ${shapeText(shape)} differ in length`);
    chunks.forEach((d, i) => {
      if (d === 0) throw new RangeError(`chunks ${shapeText(chunks!)}: dimensions must be positive`);
      const m = maxshape[i];
      if (m !== null && m !== undefined && d > m) throw new RangeError(`chunks ${shapeText(chunks!)} exceed maxshape ${shapeText(maxshape)} on axis ${i}`);
    });
  } else {
    throw new TypeError(`chunks must be true, false or a chunk shape, got ${JSON.stringify(c)}`);
  }
  const out: CreateDatasetOptions = { dtype: o.dtype, shape, maxshape, compression: gzip ? 'gzip' : null, shuffle };
  if (chunks) out.chunks = chunks;
  if (gzip) out.compressionLevel = level;
  if (o.fillValue !== undefined) out.fillValue = o.fillValue;
  return out;
}

// ------------------------------------------------------------------------------------- steps

/** File I/O planned by a call, run in queue order. */
type Step =
  | { kind: 'rows'; start: number; rows: number; data: TypedArray; trailing: readonly number[]; done?: boolean }
  | { kind: 'extent'; shape: readonly number[]; done?: boolean }
  | { kind: 'select'; ranges: AxisRange[]; data: TypedArray; done?: boolean }
  | { kind: 'flushFile'; done?: boolean }
  | { kind: 'release'; buf: TypedArray; rowLen: number; done?: boolean };

function closedError(what: string, file: string): CheckpointerError {
  return new CheckpointerError(`${what} is closed`, { code: 'ERR_CLOSED', file });
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * For loops of small transfers run inline: resolves at once, except every few milliseconds, when
 * it lets the event loop run (a selection of many small boxes must not stall it).
 */
function pauser(sliceMs = 4): () => Promise<void> | void {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < sliceMs) return;
    return new Promise<void>((resolve) => setImmediate(() => {
      last = performance.now();
      resolve();
    }));
  };
}

/** One hyperslab transfer of a selection: straight to/from `data`, or through a box gathered per `block`. */
interface Transfer {
  data: TypedArray | null;
  sel: { start: number[]; count: number[] } | undefined;
  block: Block | null;
  readFirst: boolean;
}

// ---------------------------------------------------------------------------------- the handle

export class HDF5Dataset implements Dataset, DatasetLifecycle {
  readonly key: readonly string[];
  readonly dtype: DType;
  readonly chunks: readonly number[] | null;
  readonly compression: 'gzip' | null;
  readonly compressionLevel: number | null;
  readonly shuffle: boolean;
  readonly attrs: DatasetAttrs;
  /** The dataset's path inside the file. */
  readonly path: string;

  readonly #io: HDF5DatasetIO;
  readonly #host: DatasetHost;
  readonly #info: DTypeInfo;
  #shape: number[];
  #maxshape: (number | null)[];
  /** The file's extent after the steps run so far. */
  #fileShape: number[];

  // The append buffer: rows [#bufStart, #bufStart + #bufRows) of the dataset, the first #bufFlushed
  // of them already in the file; it is written whole when it reaches #bandEnd.
  #buf: TypedArray | null = null;
  #bufStart = 0;
  #bufRows = 0;
  #bufFlushed = 0;
  #bandEnd = 0;
  #bandRows = 1;
  #rowLen = 0;
  /** shape.slice(1), kept with the layout. */
  #frameShape: readonly number[] = [];
  #pool: TypedArray[] = [];

  #pending: Step[] = [];
  #closed = false;
  #detached = false;
  #broken: CheckpointerError | null = null;
  #writableOk: boolean;
  #upgrade: Promise<void> | null = null;
  /** Bumped when a failed reopen undid the calls queued behind it; #undone says why. */
  #epoch = 0;
  #undone: unknown = null;

  private constructor(io: HDF5DatasetIO, host: DatasetHost, key: readonly string[], path: string, info: DatasetInfo, writable: boolean) {
    this.#io = io;
    this.#host = host;
    this.key = Object.freeze([...key]);
    this.path = path;
    this.dtype = info.dtype as DType;
    this.#info = dtypeInfo(this.dtype);
    this.#shape = [...info.shape];
    this.#fileShape = [...info.shape];
    this.#maxshape = [...info.maxshape];
    this.chunks = info.chunks ? Object.freeze([...info.chunks]) : null;
    this.compression = info.filters.compression;
    this.compressionLevel = info.filters.level;
    this.shuffle = info.filters.shuffle;
    this.#writableOk = writable;
    this.attrs = new HDF5DatasetAttrs(this, () => this.#attrFile(false), () => this.#attrFile(true));
    this.#layout();
    this.#resetBuffer(this.#shape[0] ?? 0);
  }

  // ------------------------------------------------------------------------------ opening

  /** Opens the dataset at `key`, creating it from `options` when it is absent. */
  static openSync(io: HDF5DatasetIO, key: readonly string[], options: DatasetOptions | null, host: DatasetHost): HDF5Dataset {
    const path = toH5Path(key);
    const spec = options ? createOptions(options) : null;
    let file = io.file();
    if (spec && !exists(file, key)) {
      file = io.writableSync();
      io.parents(file, key);
      file.createDataset(path, spec);
    }
    return HDF5Dataset.#attach(io, host, key, path, file, spec);
  }

  static async open(io: HDF5DatasetIO, key: readonly string[], options: DatasetOptions | null, host: DatasetHost): Promise<HDF5Dataset> {
    const path = toH5Path(key);
    const spec = options ? createOptions(options) : null;
    let file = io.file();
    if (spec && !exists(file, key)) {
      file = await io.writable();
      io.parents(file, key);
      file.createDataset(path, spec);
    }
    return HDF5Dataset.#attach(io, host, key, path, file, spec);
  }

  static #attach(io: HDF5DatasetIO, host: DatasetHost, key: readonly string[], path: string, file: H5File | null, spec: CreateDatasetOptions | null): HDF5Dataset {
    if (!file || !exists(file, key)) throw CheckpointerKeyError.missing(key, io.fileName);
    const shown = key.length === 1 ? key[0]! : key;
    if (file.kind(path) !== 'dataset') {
      throw new CheckpointerError(`key ${JSON.stringify(shown)} holds a group (a dict, list or object), not an array dataset`, { code: 'ERR_UNSUPPORTED_VALUE', file: io.fileName });
    }
    const info = file.info(path);
    if (info.dtype === 'string') throw new CheckpointerError(`key ${JSON.stringify(shown)} holds strings; dataset handles hold numbers`, { code: 'ERR_UNSUPPORTED_DTYPE', file: io.fileName });
    if (info.isNull) throw new CheckpointerError(`key ${JSON.stringify(shown)} holds None (a null dataspace)`, { code: 'ERR_UNSUPPORTED_VALUE', file: io.fileName });
    if (spec) {
      // An existing dataset is opened when it can hold what was asked for (h5py's require_dataset, but
      // only the first axis may differ, so a resumed run keeps appending).
      if (info.dtype !== spec.dtype) throw new TypeError(`key ${JSON.stringify(shown)} exists with dtype ${info.dtype}, not ${spec.dtype}`);
      if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => i > 0 && d !== spec.shape[i])) {
        throw new RangeError(`key ${JSON.stringify(shown)} exists with shape ${shapeText(info.shape)}, whose frames differ from shape ${shapeText(spec.shape)}`);
      }
    }
    return new HDF5Dataset(io, host, key, path, info, file.writable);
  }

  // ------------------------------------------------------------------------------ properties

  get shape(): readonly number[] {
    return Object.freeze([...this.#shape]);
  }

  get maxshape(): readonly (number | null)[] {
    return Object.freeze([...this.#maxshape]);
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  toString(): string {
    return `HDF5Dataset('${this.#io.fileName}', '${this.path}')`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `${this} ${this.dtype} ${shapeText(this.#shape)}`;
  }

  // ------------------------------------------------------------------------------ buffer layout

  /** Band size and row length for the current frame shape. */
  #layout(): void {
    const frame = this.#shape.slice(1);
    this.#frameShape = Object.freeze(frame);
    this.#rowLen = shapeSize(frame) * this.#info.lanes;
    const c0 = this.chunks?.[0] ?? 1;
    const chunkRowBytes = c0 * shapeSize(frame) * this.#info.itemSize;
    const m = chunkRowBytes > 0 ? Math.max(1, Math.floor(BAND_BYTES / chunkRowBytes)) : 1;
    this.#bandRows = c0 * m;
    this.#pool = [];
  }

  /** An empty buffer starting at row `at`, ending at the next band boundary (or maxshape). */
  #resetBuffer(at: number): void {
    this.#buf = null;
    this.#bufStart = at;
    this.#bufRows = 0;
    this.#bufFlushed = 0;
    const boundary = (Math.floor(at / this.#bandRows) + 1) * this.#bandRows;
    const max = this.#maxshape[0];
    this.#bandEnd = max === null || max === undefined ? boundary : Math.min(boundary, Math.max(max, at));
  }

  /** Steps writing the buffered rows below `end` that are not in the file yet (the buffer keeps them). */
  #planFlush(steps: Step[], end = Infinity): void {
    const hi = Math.min(end, this.#bufStart + this.#bufRows) - this.#bufStart;
    if (hi <= this.#bufFlushed || !this.#buf) return;
    steps.push({
      kind: 'rows', start: this.#bufStart + this.#bufFlushed, rows: hi - this.#bufFlushed, trailing: this.#frameShape,
      data: this.#buf.subarray(this.#bufFlushed * this.#rowLen, hi * this.#rowLen),
    });
    this.#bufFlushed = hi;
  }

  /** Steps writing what the buffer holds below `end`, then a fresh buffer at `at`. */
  #planDrop(steps: Step[], at: number, end = Infinity): void {
    this.#planFlush(steps, end);
    if (this.#buf) steps.push({ kind: 'release', buf: this.#buf, rowLen: this.#rowLen });
    this.#resetBuffer(at);
  }

  /** Copies `count` frames from `data` into the buffer (or straight to steps when whole bands), planning band writes. */
  #planAppend(steps: Step[], data: TypedArray, count: number): void {
    const rowLen = this.#rowLen;
    const trailing = this.#frameShape;
    let from = 0;
    let left = count;
    while (left > 0) {
      const room = this.#bandEnd - this.#bufStart - this.#bufRows;
      if (room <= 0) throw new RangeError(`${this}: no room to append at row ${this.#bufStart + this.#bufRows}`);
      if (this.#bufRows === 0 && left >= room) {
        // Whole bands: written from the caller's array, no copy.
        const rows = room + Math.floor((left - room) / this.#bandRows) * this.#bandRows;
        steps.push({ kind: 'rows', start: this.#bufStart, rows, trailing, data: data.subarray(from * rowLen, (from + rows) * rowLen) });
        from += rows;
        left -= rows;
        this.#resetBuffer(this.#bufStart + rows);
        continue;
      }
      const n = Math.min(left, room);
      const buf = (this.#buf ??= this.#pool.pop() ?? allocateForRead(this.dtype, this.#bandRows * rowLen));
      if (from === 0 && n * rowLen === data.length) buf.set(data as never, this.#bufRows * rowLen);
      else buf.set(data.subarray(from * rowLen, (from + n) * rowLen) as never, this.#bufRows * rowLen);
      this.#bufRows += n;
      from += n;
      left -= n;
      if (this.#bufStart + this.#bufRows === this.#bandEnd) {
        // The band is full: write it whole (also the rows a flush already wrote).
        steps.push({ kind: 'rows', start: this.#bufStart, rows: this.#bufRows, trailing, data: buf.subarray(0, this.#bufRows * rowLen) });
        steps.push({ kind: 'release', buf, rowLen });
        this.#resetBuffer(this.#bandEnd);
      }
    }
    this.#shape[0]! += count;
  }

  // ------------------------------------------------------------------------------ running steps

  #assertUsable(): void {
    if (this.#closed) throw closedError(String(this), this.#io.fileName);
    if (this.#broken) throw this.#broken;
  }

  /** Marks the handle unusable after a failed write (buffered frames may be lost). */
  #fail(err: unknown): never {
    this.#pending = [];
    if (!this.#broken) {
      const code = err instanceof CheckpointerError ? err.code : 'ERR_IO';
      const msg = err instanceof Error ? err.message : String(err);
      this.#broken = new CheckpointerError(`${this}: an earlier write failed, the handle is unusable (${msg})`, { code, file: this.#io.fileName, cause: err });
    }
    throw err;
  }

  #ensureExtent(file: H5File, end: number, trailing: readonly number[]): void {
    if (this.#fileShape[0]! >= end) return;
    const shape = [end, ...trailing];
    file.resize(this.path, shape);
    this.#fileShape = shape;
  }

  async #runStep(s: Step): Promise<void> {
    if (s.kind === 'release') {
      if (s.rowLen === this.#rowLen && this.#pool.length < 2) this.#pool.push(s.buf);
      return;
    }
    const file = await this.#io.writable();
    switch (s.kind) {
      case 'rows': {
        const rows = s.rows;
        if (rows === 0) return;
        this.#ensureExtent(file, s.start + rows, s.trailing);
        const sel = { start: [s.start, ...s.trailing.map(() => 0)], count: [rows, ...s.trailing] };
        if (s.data.byteLength < SMALL_IO) file.writeSync(this.path, s.data, sel);
        else await file.write(this.path, s.data, sel);
        return;
      }
      case 'extent':
        file.resize(this.path, s.shape);
        this.#fileShape = [...s.shape];
        return;
      case 'flushFile':
        file.flushSync();
        return;
      case 'select':
        await this.#writeSelection(file, s.ranges, s.data);
    }
  }

  #runStepSync(s: Step): void {
    if (s.kind === 'release') {
      if (s.rowLen === this.#rowLen && this.#pool.length < 2) this.#pool.push(s.buf);
      return;
    }
    const file = this.#io.writableSync();
    switch (s.kind) {
      case 'rows': {
        const rows = s.rows;
        if (rows === 0) return;
        this.#ensureExtent(file, s.start + rows, s.trailing);
        file.writeSync(this.path, s.data, { start: [s.start, ...s.trailing.map(() => 0)], count: [rows, ...s.trailing] });
        return;
      }
      case 'extent':
        file.resize(this.path, s.shape);
        this.#fileShape = [...s.shape];
        return;
      case 'flushFile':
        file.flushSync();
        return;
      case 'select':
        this.#writeSelectionSync(file, s.ranges, s.data);
    }
  }

  /** Runs pending steps up to and including `last` (all when undefined); steps a detach ran are skipped. */
  async #drain(last?: Step): Promise<void> {
    if (last?.done) return;
    if (this.#detached) throw closedError(String(this), this.#io.fileName);
    if (this.#broken) throw this.#broken;
    try {
      while (this.#pending.length > 0) {
        const s = this.#pending.shift()!;
        await this.#runStep(s);
        s.done = true;
        if (s === last) return;
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  #drainSync(last?: Step): void {
    if (last?.done) return;
    if (this.#detached) throw closedError(String(this), this.#io.fileName);
    if (this.#broken) throw this.#broken;
    try {
      while (this.#pending.length > 0) {
        const s = this.#pending.shift()!;
        this.#runStepSync(s);
        s.done = true;
        if (s === last) return;
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Queues `steps` (and then `after`) in the checkpointer's queue; resolves when they ran. */
  #submit<T>(steps: Step[], after?: () => Promise<T>): Promise<T | void> {
    if (steps.length === 0 && !after) return this.#upgrade ?? RESOLVED;
    this.#pending.push(...steps);
    const last = steps[steps.length - 1];
    const epoch = this.#epoch;
    return this.#host.enqueue(async () => {
      if (epoch !== this.#epoch) throw this.#undone;
      if (last) await this.#drain(last);
      else if (this.#detached) throw closedError(String(this), this.#io.fileName);
      return after ? after() : undefined;
    });
  }

  #runSync(steps: Step[]): void {
    this.#pending.push(...steps);
    if (steps.length > 0) this.#drainSync(steps[steps.length - 1]);
  }

  /**
   * Before the first change to a dataset opened from a read-only file: reopen the file read-write,
   * queued. If that fails, the calls made meanwhile are undone (their promises reject).
   */
  #checkWritable(): void {
    if (this.#writableOk || this.#upgrade) return;
    if (this.#io.file()?.writable) {
      this.#writableOk = true;
      return;
    }
    this.#upgrade = this.#host.enqueue(async () => {
      try {
        await this.#io.writable();
        this.#writableOk = true;
      } catch (err) {
        this.#pending = [];
        this.#epoch++;
        this.#undone = err;
        this.#shape = [...this.#fileShape];
        this.#layout();
        this.#resetBuffer(this.#shape[0] ?? 0);
        throw err;
      } finally {
        this.#upgrade = null;
      }
    });
  }

  #checkWritableSync(): void {
    if (this.#writableOk) return;
    this.#io.writableSync();
    this.#writableOk = true;
  }

  #frame(): readonly number[] {
    if (this.#shape.length === 0) throw new TypeError(`${this}: a 0-d dataset has no axis to append along`);
    return this.#frameShape;
  }

  #checkRoom(count: number): void {
    const max = this.#maxshape[0];
    if (max !== null && max !== undefined && this.#shape[0]! + count > max) {
      throw new RangeError(`${this}: appending ${count} frame(s) to ${this.#shape[0]} would pass maxshape ${shapeText(this.#maxshape)}`);
    }
  }

  // ------------------------------------------------------------------------------ append

  append(frames: AppendData): Promise<void> {
    // The common case first: one frame of the dataset's own TypedArray that does not fill the band.
    const buf = this.#buf;
    if (buf !== null && frames instanceof this.#info.ArrayType && frames.length === this.#rowLen && this.#writableOk
      && this.#bandEnd - this.#bufStart - this.#bufRows > 1 && !this.#closed && this.#broken === null && this.#shape.length > 0) {
      buf.set(frames as never, this.#bufRows * this.#rowLen);
      this.#bufRows++;
      this.#shape[0]!++;
      return RESOLVED;
    }
    try {
      this.#assertUsable();
      const { data, count } = framesOf(frames, this.dtype, this.#frame());
      this.#checkRoom(count);
      if (count === 0) return this.#upgrade ?? RESOLVED;
      this.#checkWritable();
      const steps: Step[] = [];
      this.#planAppend(steps, data, count);
      return this.#submit(steps) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  appendSync(frames: AppendData): void {
    this.#host.assertIdle();
    this.#assertUsable();
    const { data, count } = framesOf(frames, this.dtype, this.#frame());
    this.#checkRoom(count);
    if (count === 0) return;
    this.#checkWritableSync();
    const steps: Step[] = [];
    this.#planAppend(steps, data, count);
    this.#runSync(steps);
  }

  // ------------------------------------------------------------------------------ read

  #planRead(selection: DatasetSelection | undefined): { ranges: AxisRange[]; result: NDArray; steps: Step[] } {
    this.#assertUsable();
    const ranges = normalizeSelection(selection, this.#shape);
    const counts = countsOf(ranges);
    const result = new NDArray(allocateForRead(this.dtype, shapeSize(counts) * this.#info.lanes), counts, this.dtype);
    const steps: Step[] = [];
    if (result.data.length > 0 && ranges.length > 0) this.#planFlush(steps, rangeEnd(ranges[0]!));
    return { ranges, result, steps };
  }

  read(selection?: DatasetSelection): Promise<NDArray> {
    try {
      const { ranges, result, steps } = this.#planRead(selection);
      if (result.data.length === 0) return Promise.resolve(result);
      return this.#submit(steps, async () => {
        await this.#readSelection(this.#readFile(), ranges, result.data);
        return result;
      }) as Promise<NDArray>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readSync(selection?: DatasetSelection): NDArray {
    this.#host.assertIdle();
    const { ranges, result, steps } = this.#planRead(selection);
    if (result.data.length === 0) return result;
    this.#runSync(steps);
    this.#readSelectionSync(this.#readFile(), ranges, result.data);
    return result;
  }

  #readFile(): H5File {
    const file = this.#io.file();
    if (!file || this.#detached) throw closedError(String(this), this.#io.fileName);
    return file;
  }

  /**
   * The transfers that read (or write) a selection: one straight into (from) the caller's array
   * when it is a single hyperslab, else one box per block, gathered (scattered) with copyBlock.
   */
  #transfers(ranges: AxisRange[], data: TypedArray, write: boolean): Transfer[] {
    if (ranges.length === 0) return [{ data, sel: undefined, block: null, readFirst: false }];
    const blocks = blocksFor(ranges, this.#shape, this.chunks, this.#info.itemSize, { filtered: this.compression !== null || this.shuffle });
    if (blocks.length === 1 && isContiguous(ranges)) {
      return [{ data, sel: { start: blocks[0]!.start, count: blocks[0]!.count }, block: null, readFirst: false }];
    }
    return blocks.map((b) => ({
      data: null,
      sel: { start: b.start, count: b.count },
      block: b,
      // A stepped box holds elements that are not written: read it first, patch it, write it back.
      readFirst: write && !b.selected.every((n, a) => n === b.count[a]),
    }));
  }

  #box(t: Transfer): TypedArray {
    // Every element of a box is read from the file or copied in before it is used.
    return t.data ?? allocateForRead(this.dtype, shapeSize(t.block!.count) * this.#info.lanes);
  }

  async #readSelection(file: H5File, ranges: AxisRange[], out: TypedArray): Promise<void> {
    const pause = pauser();
    for (const t of this.#transfers(ranges, out, false)) {
      const box = this.#box(t);
      if (box.byteLength < SMALL_IO) {
        file.readSync(this.path, box, t.sel);
        await pause();
      } else await file.read(this.path, box, t.sel);
      if (t.block) copyBlock(t.block, box, ranges, out, this.#info.lanes, true);
    }
  }

  #readSelectionSync(file: H5File, ranges: AxisRange[], out: TypedArray): void {
    for (const t of this.#transfers(ranges, out, false)) {
      const box = this.#box(t);
      file.readSync(this.path, box, t.sel);
      if (t.block) copyBlock(t.block, box, ranges, out, this.#info.lanes, true);
    }
  }

  async #writeSelection(file: H5File, ranges: AxisRange[], data: TypedArray): Promise<void> {
    const pause = pauser();
    for (const t of this.#transfers(ranges, data, true)) {
      const box = this.#box(t);
      const small = box.byteLength < SMALL_IO;
      if (small) await pause();
      if (t.readFirst) {
        if (small) file.readSync(this.path, box, t.sel);
        else await file.read(this.path, box, t.sel);
      }
      if (t.block) copyBlock(t.block, box, ranges, data, this.#info.lanes, false);
      if (small) file.writeSync(this.path, box, t.sel);
      else await file.write(this.path, box, t.sel);
    }
  }

  #writeSelectionSync(file: H5File, ranges: AxisRange[], data: TypedArray): void {
    for (const t of this.#transfers(ranges, data, true)) {
      const box = this.#box(t);
      if (t.readFirst) file.readSync(this.path, box, t.sel);
      if (t.block) copyBlock(t.block, box, ranges, data, this.#info.lanes, false);
      file.writeSync(this.path, box, t.sel);
    }
  }

  // ------------------------------------------------------------------------------ write / resize

  #planWrite(selection: DatasetSelection, data: WriteData, options: WriteOptions | undefined): Step[] {
    this.#assertUsable();
    if (!Array.isArray(selection)) throw new TypeError(`write needs a selection (an array with one entry per axis; [] for all), got ${JSON.stringify(selection)}`);
    const grow = options?.grow === true;
    const ranges = normalizeSelection(selection, this.#shape, grow ? this.#maxshape : undefined);
    const counts = countsOf(ranges);
    const block = blockOf(data, this.dtype, counts);
    const steps: Step[] = [];
    if (block.length === 0) return steps;
    const target = this.#shape.map((n, i) => Math.max(n, rangeEnd(ranges[i]!)));
    if (target.some((n, i) => n !== this.#shape[i])) this.#planResize(steps, target);
    else if (ranges.length > 0 && ranges[0]!.start < this.#bufStart + this.#bufRows && rangeEnd(ranges[0]!) > this.#bufStart) {
      // The write reaches buffered rows: write them out and start a new buffer after them.
      this.#planDrop(steps, this.#shape[0]!);
    }
    steps.push({ kind: 'select', ranges, data: block });
    return steps;
  }

  write(selection: DatasetSelection, data: WriteData, options?: WriteOptions): Promise<void> {
    try {
      const steps = this.#planWrite(selection, data, options);
      if (steps.length > 0) this.#checkWritable();
      return this.#submit(steps) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  writeSync(selection: DatasetSelection, data: WriteData, options?: WriteOptions): void {
    this.#host.assertIdle();
    this.#assertUsable();
    this.#checkWritableSync();
    this.#runSync(this.#planWrite(selection, data, options));
  }

  #checkShape(shape: readonly number[]): number[] {
    const s = checkDims(shape, 'resize: shape', false) as number[];
    if (s.length !== this.#shape.length) throw new RangeError(`${this}: resize to ${shapeText(s)} changes the rank of shape ${shapeText(this.#shape)}`);
    s.forEach((d, i) => {
      const m = this.#maxshape[i];
      if (m !== null && m !== undefined && d > m) throw new RangeError(`${this}: resize to ${shapeText(s)} passes maxshape ${shapeText(this.#maxshape)}`);
    });
    return s;
  }

  #planResize(steps: Step[], shape: number[]): void {
    this.#planDrop(steps, shape[0] ?? 0, shape[0] ?? 0);
    steps.push({ kind: 'extent', shape: [...shape] });
    const trailingChanged = shape.some((d, i) => i > 0 && d !== this.#shape[i]);
    this.#shape = [...shape];
    if (trailingChanged) this.#layout();
    this.#resetBuffer(shape[0] ?? 0);
  }

  resize(shape: readonly number[]): Promise<void> {
    try {
      this.#assertUsable();
      const s = this.#checkShape(shape);
      this.#checkWritable();
      const steps: Step[] = [];
      this.#planResize(steps, s);
      return this.#submit(steps) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  resizeSync(shape: readonly number[]): void {
    this.#host.assertIdle();
    this.#assertUsable();
    const s = this.#checkShape(shape);
    this.#checkWritableSync();
    const steps: Step[] = [];
    this.#planResize(steps, s);
    this.#runSync(steps);
  }

  // ------------------------------------------------------------------------------ flush / close

  flush(): Promise<void> {
    try {
      this.#assertUsable();
      const steps: Step[] = [];
      this.#planFlush(steps);
      if (this.#writableOk || steps.length > 0) steps.push({ kind: 'flushFile' });
      return this.#submit(steps) as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  flushSync(): void {
    this.#host.assertIdle();
    this.#assertUsable();
    const steps: Step[] = [];
    this.#planFlush(steps);
    if (this.#writableOk || steps.length > 0) steps.push({ kind: 'flushFile' });
    this.#runSync(steps);
  }

  close(): Promise<void> {
    if (this.#closed) return RESOLVED;
    const steps: Step[] = [];
    if (!this.#broken) this.#planFlush(steps);
    this.#closed = true;
    this.#pending.push(...steps);
    const last = steps[steps.length - 1];
    return this.#host.enqueue(async () => {
      try {
        if (last && !this.#detached) await this.#drain(last);
      } finally {
        this.#buf = null;
        this.#pool = [];
        await this.#host.release(this);
      }
    });
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#host.assertIdle();
    const steps: Step[] = [];
    if (!this.#broken) this.#planFlush(steps);
    this.#closed = true;
    try {
      this.#runSync(steps);
    } finally {
      this.#buf = null;
      this.#pool = [];
      this.#host.releaseSync(this);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  /** The checkpointer's last close: run every pending step, write what is buffered, close. */
  async detach(): Promise<void> {
    if (this.#detached) return;
    const steps: Step[] = [];
    if (!this.#broken) this.#planFlush(steps);
    this.#pending.push(...steps);
    this.#closed = true;
    try {
      if (!this.#broken) await this.#drain();
    } finally {
      this.#detached = true;
      this.#buf = null;
      this.#pool = [];
    }
  }

  detachSync(): void {
    if (this.#detached) return;
    const steps: Step[] = [];
    if (!this.#broken) this.#planFlush(steps);
    this.#pending.push(...steps);
    this.#closed = true;
    try {
      if (!this.#broken) this.#drainSync();
    } finally {
      this.#detached = true;
      this.#buf = null;
      this.#pool = [];
    }
  }

  // ------------------------------------------------------------------------------ attributes

  #attrFile(write: boolean): H5File {
    this.#host.assertIdle();
    this.#assertUsable();
    if (write) {
      this.#checkWritableSync();
      return this.#io.writableSync();
    }
    return this.#readFile();
  }
}

class HDF5DatasetAttrs implements DatasetAttrs {
  readonly #ds: HDF5Dataset;
  readonly #read: () => H5File;
  readonly #write: () => H5File;

  constructor(ds: HDF5Dataset, read: () => H5File, write: () => H5File) {
    this.#ds = ds;
    this.#read = read;
    this.#write = write;
  }

  keys(): string[] {
    return this.#read().attrNames(this.#ds.path);
  }

  has(name: string): boolean {
    return this.keys().includes(name);
  }

  /** The attribute's value; undefined when absent (null for an empty attribute). */
  get(name: string): AttrValue | null | undefined {
    const file = this.#read();
    if (!file.attrNames(this.#ds.path).includes(name)) return undefined;
    return file.getAttr(this.#ds.path, name) as AttrValue | null;
  }

  set(name: string, value: AttrValue): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError(`an attribute name is a non-empty string, got ${JSON.stringify(name)}`);
    this.#write().setAttr(this.#ds.path, name, value as NativeAttrValue);
  }

  delete(name: string): boolean {
    if (!this.has(name)) return false;
    this.#write().deleteAttr(this.#ds.path, name);
    return true;
  }
}

/** Whether `key` names something in the file (walking down, so a missing parent is "absent"). */
function exists(file: H5File | null, key: readonly string[]): boolean {
  if (!file) return false;
  for (let i = 1; i <= key.length; i++) {
    const kind = file.kind(toH5Path(key.slice(0, i)));
    if (kind === null || (i < key.length && kind !== 'group')) return false;
  }
  return true;
}
