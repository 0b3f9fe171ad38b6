/**
 * HDF5 dataset handles (see ./types): a chunked dataset grown frame by frame and read and written in
 * slices through the native addon.
 *
 * One dataset, one state: every handle a checkpointer hands out for a dataset is a view of one
 * `HDF5DatasetCore`, which holds the native dataset object (its id, type and chunk cache stay open
 * between calls), the shape, and the append buffer. So two handles appending to one dataset append
 * to one sequence, and a `get` of the key first writes what the buffer holds.
 *
 * Appends are copied into a buffer that spans whole chunk rows along axis 0 (a "band": one or more
 * chunks' worth of frames, about 1 MiB or more) and the band is written when it fills, so each chunk
 * is written once, whole — unfiltered ones with H5Dwrite_chunk — instead of once per frame. A batch
 * holding whole bands is written straight from the caller's array. `flush()` writes the buffered
 * frames but keeps them, so the band is still written whole when it fills.
 *
 * Every call does its bookkeeping (checks, shape, buffer) when it is made; its file I/O becomes
 * "steps" that run in the checkpointer's queue, in call order, as generators of native calls that
 * the sync twin runs on this thread and the async twin on the addon's HDF5 thread. A selection goes
 * to HDF5 as one strided hyperslab (h5py's selector), read or written in one call.
 */
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import { guardDatasetRead } from '../backends/hdf5-verify';
import type { AttrRead, DatasetInfo, DatasetSpec, H5Dataset, H5File, Hyperslab, LookupKind } from '../native';
import { hdf5Info, hyperslab } from '../native';
import {
  closeDataset, datasetAttrs, deleteDatasetAttr, H5Gen, openDataset, readInto, resizeDataset, runAsync, runSync,
  setDatasetAttr, writeFrom,
} from '../backends/hdf5-calls';
import { chunkShapeFor, TARGET_CHUNK_BYTES, toH5Path } from '../backends/hdf5-layout';
import { allocateForRead, DType, DTypeInfo, dtypeInfo, isDType, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { RecordArray, RecordField } from '../values/records';
import { attrValueOf, decodePacked, encodeRecords, fieldH5Type, hasVariableParts, nativeAttrValue, toNativeArray, wrapNumbers } from '../backends/hdf5-types';
import type { H5Type } from '../native';
import { AxisRange, countsOf, normalizeSelection, rangeEnd, resultShape } from './selection';
import type {
  AppendData, AttrValue, Compression, Dataset, DatasetAttrs, DatasetHost, DatasetLifecycle, DatasetOptions, DatasetSelection,
  WriteData, WriteOptions,
} from './types';
import { AutoFlushCounter } from './auto-flush';
import { blockOf, framesOf, targetOf } from './values';

/** Chunk bytes `chunks: true` aims at: whole-chunk writes at file speed; 1 MiB when compressed. */
export const DATASET_CHUNK_BYTES = TARGET_CHUNK_BYTES;
export const COMPRESSED_CHUNK_BYTES = 1 << 20;
/** Least bytes buffered before a band of whole chunk rows is written. */
const BAND_BYTES = 1 << 20;
/**
 * Least chunk rows in a band of a filtered dataset: the addon compresses the chunks of one write on
 * its worker threads (binding/h5chunks.h), so a band of several chunks keeps them all busy.
 */
const FILTERED_BAND_CHUNKS = 8;
/** HDF5's limit on one chunk. */
const MAX_CHUNK_BYTES = 2 ** 32 - 1;

/** What the HDF5 backend gives the dataset code: its open file, and how to change it. */
export interface HDF5DatasetIO {
  /** The checkpoint file (for messages). */
  readonly fileName: string;
  /** The open file, or null while it does not exist. */
  file(): H5File | null;
  /** The file opened read-write (reopened or created when needed). */
  writable(): H5Gen<H5File>;
  /** Makes what was written durable: a commit of the checkpoint (a flush when writing in place). */
  commit(): H5Gen<void>;
  /** What `key` names, walking down: null when absent; CheckpointerKeyError through a non-group. */
  lookup(key: readonly string[]): H5Gen<LookupKind | null>;
  /** Creates the dataset of a checked spec, and its missing parent groups, at `key` (absent). */
  create(key: readonly string[], spec: DatasetSpec): H5Gen<void>;
  /** The core's last handle closed: the backend forgets it. */
  forget(core: HDF5DatasetCore): void;
}

// ----------------------------------------------------------------------------------- creation

function shapeText(s: readonly (number | null)[]): string {
  return `[${s.map((d) => (d === null ? 'null' : d)).join(', ')}]`;
}

function checkDims(dims: unknown, what: string, allowNull: boolean): (number | null)[] {
  if (!Array.isArray(dims)) throw new TypeError(`${what} must be an array, got ${JSON.stringify(dims)}`);
  if (dims.length > 32) throw new RangeError(`${what} ${JSON.stringify(dims)}: HDF5 datasets have at most 32 dimensions`);
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

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], int16: [-32768, 32767], int32: [-(2 ** 31), 2 ** 31 - 1], int64: [-(2 ** 63), 2 ** 63],
  uint8: [0, 255], uint16: [0, 65535], uint32: [0, 2 ** 32 - 1], uint64: [0, 2 ** 64],
};

function checkFill(fill: number | bigint | boolean, dtype: DType): void {
  const info = dtypeInfo(dtype);
  if (typeof fill === 'bigint') {
    if (dtype !== 'int64' && dtype !== 'uint64') throw new RangeError(`fillValue ${fill}n: a bigint fill value needs an int64 or uint64 dataset`);
    const [lo, hi] = dtype === 'int64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    if (fill < lo || fill > hi) throw new RangeError(`fillValue ${fill}n does not fit ${dtype}`);
    return;
  }
  if (typeof fill === 'boolean') return;
  if (typeof fill !== 'number') throw new TypeError(`fillValue must be a number, bigint or boolean, got ${typeof fill}`);
  if (info.kind === 'b' && fill !== 0 && fill !== 1) throw new RangeError(`fillValue ${fill} is not a bool (0/1)`);
  const range = INT_RANGE[dtype];
  if (range && (!Number.isInteger(fill) || fill < range[0] || fill >= range[1] + (dtype.endsWith('64') ? 0 : 1))) {
    throw new RangeError(`fillValue ${fill} does not fit ${dtype}`);
  }
}

/** Native create options from the user's, checked as h5py checks them (TypeError/RangeError). */
export function createOptions(o: DatasetOptions): DatasetSpec {
  if (o === null || typeof o !== 'object') throw new TypeError(`dataset options must be an object, got ${JSON.stringify(o)}`);
  let recordType: CompoundType | null = null;
  if (o.fields !== undefined) {
    if (o.dtype !== undefined) throw new TypeError('a record dataset is described by its fields; give fields or dtype, not both');
    recordType = recordTypeOf(o.fields);
  } else {
    if (o.dtype === undefined) throw new TypeError('creating a dataset needs a dtype (options.dtype) or record fields (options.fields)');
    if (!isDType(o.dtype)) throw new TypeError(`unknown dtype ${JSON.stringify(o.dtype)}`);
  }
  const info = recordType ? recordInfo(recordType) : dtypeInfo(o.dtype!);
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
  // Sizes beyond what one array can index are refused here, before any product could wrap.
  const frameElements = shape.slice(1).reduce((a, d) => a * d, 1);
  if (!Number.isSafeInteger(frameElements * info.lanes) || !Number.isSafeInteger(shapeSize(shape) * info.itemSize)) {
    throw new RangeError(`shape ${shapeText(shape)} holds more elements than one array can index (2^53)`);
  }
  const resizable = maxshape.some((m, i) => m !== shape[i]);

  let codec: Compression | null = null;
  let level: number | undefined;
  if (typeof o.compression === 'number') {
    if (!Number.isInteger(o.compression) || o.compression < 0 || o.compression > 9) throw new RangeError(`compression level ${o.compression} is not 0..9`);
    codec = 'gzip';
    level = o.compression;
    if (o.compressionLevel !== undefined && o.compressionLevel !== level) throw new TypeError(`compression ${o.compression} and compressionLevel ${o.compressionLevel} disagree`);
  } else if (o.compression === 'gzip' || o.compression === 'zstd' || o.compression === 'lz4') {
    codec = o.compression;
  } else if (o.compression !== undefined && o.compression !== null) {
    throw new TypeError(`compression ${JSON.stringify(o.compression)} is not supported; use 'gzip' (or a gzip level 0..9), 'zstd' or 'lz4'`);
  }
  if (codec !== null) {
    // Without an addon at all, opening the file says so (ERR_HDF5_UNAVAILABLE); this is for an
    // addon built without zstd/lz4.
    const info = hdf5Info();
    const f = info.filters[codec];
    if (info.available && !f.write) throw new CheckpointerError(`${codec} compression is not available in this libhdf5 (hdf5Info().filters.${codec})`, { code: 'ERR_HDF5' });
  }
  if (o.compressionLevel !== undefined && o.compressionLevel !== null) {
    if (codec === null) throw new TypeError('compressionLevel needs compression: \'gzip\' or \'zstd\'');
    if (codec === 'lz4') throw new TypeError('lz4 has no compression levels');
    const [lo, hi] = codec === 'gzip' ? [0, 9] : [1, 22];
    if (!Number.isInteger(o.compressionLevel) || o.compressionLevel < lo || o.compressionLevel > hi) {
      throw new RangeError(`compressionLevel ${o.compressionLevel} is not ${lo}..${hi} (${codec})`);
    }
    level = o.compressionLevel;
  }
  if (codec === 'gzip' && level === undefined) level = 4;
  if (codec === 'zstd' && level === undefined) level = 3;
  if (o.shuffle !== undefined && typeof o.shuffle !== 'boolean') throw new TypeError(`shuffle must be a boolean, got ${JSON.stringify(o.shuffle)}`);
  const shuffle = o.shuffle === true;
  const filtered = codec !== null || shuffle;

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
  if (chunks && shapeSize(chunks) * info.itemSize > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunks ${shapeText(chunks)} hold ${shapeSize(chunks) * info.itemSize} bytes; HDF5 chunks hold less than 4 GiB`);
  }
  if (o.fillValue !== undefined) {
    if (recordType) throw new TypeError('a record dataset has no fillValue (unwritten records are zeros)');
    checkFill(o.fillValue, o.dtype!);
  }
  const out: DatasetSpec = recordType
    ? { dtype: 'packed', type: recordType, shape, maxshape, compression: codec, shuffle }
    : { dtype: o.dtype!, shape, maxshape, compression: codec, shuffle };
  if (chunks) out.chunks = chunks;
  if (level !== undefined) out.compressionLevel = level;
  if (o.fillValue !== undefined) out.fillValue = o.fillValue;
  return out;
}

type CompoundType = Extract<H5Type, { class: 'compound' }>;

/** The compound type of record fields a dataset handle can move as fixed-size rows. */
function recordTypeOf(fields: readonly RecordField[]): CompoundType {
  if (!Array.isArray(fields) || fields.length === 0) throw new TypeError('options.fields must be a non-empty array of record fields ({name, type, shape})');
  const type = fieldH5Type({ kind: 'record', fields }, [], 'options.fields') as CompoundType;
  if (hasVariableParts(type)) {
    throw new CheckpointerError('dataset handles move fixed-size records: a field holds variable-length strings (give it a length, or store the table with set)', { code: 'ERR_UNSUPPORTED_VALUE' });
  }
  return type;
}

/**
 * A record dataset's element, for the buffer and size arithmetic: one uint8 "lane" per byte of a
 * packed record, so rows are whole records of bytes.
 */
function recordInfo(type: CompoundType): DTypeInfo {
  return { name: 'uint8', itemSize: type.size, lanes: type.size as 1, ArrayType: Uint8Array, kind: 'u' };
}

/**
 * Whether two types hold the same packed records: the same fields, types, sizes and enum members
 * (key order aside, and labels that do not change the bytes: string padding and character set,
 * opaque tags — a PyTables table's NUL-terminated strings take the records a RecordArray packs).
 */
function sameType(a: H5Type, b: H5Type): boolean {
  const ignored = new Set(['pad', 'utf8', 'tag']);
  const canon = (x: unknown): unknown => {
    if (typeof x === 'bigint') return `${x}n`;
    if (Array.isArray(x)) return x.map(canon);
    if (x !== null && typeof x === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) if (!ignored.has(k)) out[k] = canon((x as Record<string, unknown>)[k]);
      return out;
    }
    return x;
  };
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
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

// --------------------------------------------------------------------------------- the core

/** The state of one open dataset, shared by every handle on it. */
export class HDF5DatasetCore {
  readonly key: readonly string[];
  /** The dataset's path inside the file. */
  readonly path: string;
  /** 'uint8' for a record dataset, whose rows are packed records (recordType). */
  readonly dtype: DType;
  /** A record dataset's compound type (packed, native order), and its fields. */
  readonly recordType: CompoundType | null;
  readonly fields: readonly RecordField[] | null;
  /** An enum dataset's type (reads give EnumArrays). */
  readonly #numberType: H5Type | undefined;
  readonly chunks: readonly number[] | null;
  readonly compression: Compression | null;
  readonly compressionLevel: number | null;
  readonly shuffle: boolean;
  /** The handles open on it. */
  readonly handles = new Set<HDF5Dataset>();

  readonly #io: HDF5DatasetIO;
  readonly #host: DatasetHost;
  readonly #info: DTypeInfo;
  #native: H5Dataset;
  /** The file #native was opened from. */
  #nativeFile: H5File | null;
  #slabScratch = new Float64Array(0);
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
  /** Flush by itself every so many frames / ms (DatasetOptions.autoFlush): on .h5 a flush commits. */
  readonly #autoFlush = new AutoFlushCounter(null, () => {
    if (!this.#closed && !this.#broken) this.flush().catch(() => undefined);
  });
  #closed = false;
  #broken: CheckpointerError | null = null;
  #writableOk: boolean;
  #upgrade: Promise<void> | null = null;
  /** Bumped when a failed reopen undid the calls queued behind it; #undone says why. */
  #epoch = 0;
  #undone: unknown = null;

  private constructor(io: HDF5DatasetIO, host: DatasetHost, key: readonly string[], path: string, native: H5Dataset, writable: boolean) {
    const info = native.info;
    this.#io = io;
    this.#host = host;
    this.key = Object.freeze([...key]);
    this.path = path;
    if (info.dtype === 'packed') {
      this.recordType = info.type as CompoundType;
      this.fields = (decodePacked(info.type!, [0], new Uint8Array(0)) as RecordArray).fields;
      this.dtype = 'uint8';
      this.#info = recordInfo(this.recordType);
    } else {
      this.recordType = null;
      this.fields = null;
      this.dtype = info.dtype as DType;
      this.#info = dtypeInfo(this.dtype);
    }
    this.#numberType = info.type;
    this.#native = native;
    this.#nativeFile = io.file();
    this.#shape = [...info.shape];
    this.#fileShape = [...info.shape];
    this.#maxshape = [...info.maxshape];
    this.chunks = info.chunks ? Object.freeze([...info.chunks]) : null;
    this.compression = info.filters.compression;
    this.compressionLevel = info.filters.level;
    this.shuffle = info.filters.shuffle;
    this.#writableOk = writable;
    this.#layout();
    this.#resetBuffer(this.#shape[0] ?? 0);
  }

  /** Opens the dataset at `key`, creating it from `options` when it is absent. */
  static *open(io: HDF5DatasetIO, host: DatasetHost, key: readonly string[], options: DatasetOptions | null): H5Gen<HDF5DatasetCore> {
    const path = toH5Path(key);
    const spec = options ? createOptions(options) : null;
    let kind = yield* io.lookup(key);
    if (kind === null && spec) {
      yield* io.create(key, spec);
      kind = 'dataset';
    }
    if (kind === null) throw CheckpointerKeyError.missing(key, io.fileName);
    const shown = JSON.stringify(key.length === 1 ? key[0]! : key);
    if (kind !== 'dataset') {
      throw new CheckpointerError(`key ${shown} holds ${kind === 'group' ? 'a group (a dict, list or object)' : `a ${kind}`}, not an array dataset`, { code: 'ERR_UNSUPPORTED_VALUE', file: io.fileName });
    }
    const file = io.file()!;
    const native = yield* openDataset(file, path);
    try {
      checkOpenable(native.info, shown, io.fileName);
      if (spec) checkMatches(native.info, spec, shown);
    } catch (err) {
      yield* closeDataset(native);
      throw err;
    }
    const core = new HDF5DatasetCore(io, host, key, path, native, file.writable);
    core.#autoFlush.set(options?.autoFlush);
    return core;
  }

  /** Whether `options` fit this dataset (a second handle opened with options). */
  checkOptions(options: DatasetOptions | null): void {
    if (options) {
      const info = this.recordType ? { dtype: 'packed', type: this.recordType, shape: this.#shape } : { dtype: this.dtype, shape: this.#shape };
      checkMatches(info as DatasetInfo, createOptions(options), JSON.stringify(this.key.length === 1 ? this.key[0]! : this.key));
    }
    // Handles share the dataset's state: the latest autoFlush asked for applies to all of them.
    if (options?.autoFlush != null) this.#autoFlush.set(options.autoFlush);
  }

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

  // ------------------------------------------------------------------------------ buffer layout

  /** Band size and row length for the current frame shape. */
  #layout(): void {
    const frame = this.#shape.slice(1);
    this.#frameShape = Object.freeze(frame);
    this.#rowLen = shapeSize(frame) * this.#info.lanes;
    const c0 = this.chunks?.[0] ?? 1;
    const chunkRowBytes = c0 * shapeSize(frame) * this.#info.itemSize;
    const least = this.compression !== null || this.shuffle ? FILTERED_BAND_CHUNKS : 1;
    const m = chunkRowBytes > 0 ? Math.max(least, Math.floor(BAND_BYTES / chunkRowBytes)) : 1;
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
      const buf = (this.#buf ??= this.#pool.pop() ?? allocateForRead(this.dtype, this.#bandRows * rowLen)); // records: bytes
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

  assertUsable(): void {
    if (this.#closed) throw closedError(String(this), this.#io.fileName);
    if (this.#broken) throw this.#broken;
  }

  /** Marks the dataset unusable after a failed write (buffered frames may be lost). */
  #fail(err: unknown): never {
    this.#pending = [];
    if (!this.#broken) {
      const code = err instanceof CheckpointerError ? err.code : 'ERR_IO';
      const msg = err instanceof Error ? err.message : String(err);
      this.#broken = new CheckpointerError(`${this}: an earlier write failed, the handle is unusable (${msg})`, { code, file: this.#io.fileName, cause: err });
    }
    throw err;
  }

  /** The native dataset, when it belongs to the file open now (a reopened file needs it opened again). */
  #current(): H5Dataset | null {
    return this.#nativeFile === this.#io.file() && !this.#closed ? this.#native : null;
  }

  /** The native dataset of the file open now (it is reopened after the file was). */
  *#dataset(): H5Gen<H5Dataset> {
    const current = this.#current();
    if (current) return current;
    const file = this.#io.file();
    if (!file || !file.isOpen || this.#closed) throw closedError(String(this), this.#io.fileName);
    this.#native = yield* openDataset(file, this.path);
    this.#nativeFile = file;
    return this.#native;
  }

  /**
   * The hyperslab of a selection, in one reused array: the addon copies it when the call is made
   * (also for async calls), so a loop of frame reads allocates none.
   */
  #slab(ranges: readonly AxisRange[]): Hyperslab | undefined {
    const rank = ranges.length;
    if (rank === 0) return undefined;
    const slab = this.#slabScratch.length === 3 * rank ? this.#slabScratch : (this.#slabScratch = new Float64Array(3 * rank));
    for (let i = 0; i < rank; i++) {
      const r = ranges[i]!;
      slab[i] = r.start;
      slab[rank + i] = r.count > 1 ? r.step : 1;
      slab[2 * rank + i] = r.count;
    }
    return slab;
  }

  *#ensureExtent(ds: H5Dataset, end: number, trailing: readonly number[]): H5Gen<void> {
    if (this.#fileShape[0]! >= end) return;
    const shape = [end, ...trailing];
    yield* resizeDataset(ds, shape);
    this.#fileShape = shape;
  }

  *#runStep(s: Step): H5Gen<void> {
    if (s.kind === 'release') {
      if (s.rowLen === this.#rowLen && this.#pool.length < 2) this.#pool.push(s.buf);
      return;
    }
    if (s.kind === 'flushFile') {
      yield* this.#io.commit();
      return;
    }
    yield* this.#io.writable();
    const ds = yield* this.#dataset();
    switch (s.kind) {
      case 'rows':
        if (s.rows === 0) return;
        yield* this.#ensureExtent(ds, s.start + s.rows, s.trailing);
        yield* writeFrom(ds, toNativeArray(this.dtype, s.data), hyperslab([s.start, ...s.trailing.map(() => 0)], [1, ...s.trailing.map(() => 1)], [s.rows, ...s.trailing]));
        return;
      case 'extent':
        yield* resizeDataset(ds, s.shape);
        this.#fileShape = [...s.shape];
        return;
      case 'select':
        yield* writeFrom(ds, toNativeArray(this.dtype, s.data), this.#slab(s.ranges));
    }
  }

  /** Runs pending steps up to and including `last` (all when undefined). */
  *#drain(last?: Step): H5Gen<void> {
    if (last?.done) return;
    if (this.#broken) throw this.#broken;
    try {
      while (this.#pending.length > 0) {
        const s = this.#pending.shift()!;
        yield* this.#runStep(s);
        s.done = true;
        if (s === last) return;
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Queues `steps` (and then `after`) in the checkpointer's queue; resolves when they ran. */
  #submit<T>(steps: Step[], after?: () => H5Gen<T>): Promise<T | void> {
    if (steps.length === 0 && !after) return this.#upgrade ?? RESOLVED;
    this.#pending.push(...steps);
    const last = steps[steps.length - 1];
    const epoch = this.#epoch;
    return this.#host.enqueue(() => runAsync(this.#queued(epoch, last, after)));
  }

  *#queued<T>(epoch: number, last: Step | undefined, after?: () => H5Gen<T>): H5Gen<T | void> {
    if (epoch !== this.#epoch) throw this.#undone;
    if (last) yield* this.#drain(last);
    else if (this.#closed) throw closedError(String(this), this.#io.fileName);
    return after ? yield* after() : undefined;
  }

  #runSync<T>(steps: Step[], after?: () => H5Gen<T>): T | void {
    this.#pending.push(...steps);
    return runSync(this.#queued(this.#epoch, steps[steps.length - 1], after));
  }

  /**
   * Before the first change to a dataset opened from a read-only file: reopen the file read-write,
   * queued. If that fails, the calls made meanwhile are undone (their promises reject).
   */
  #checkWritable(): void {
    if (this.#writableOk || this.#upgrade) return;
    if (this.#io.file()?.writable && this.#host.holdsWriteLock()) {
      this.#writableOk = true;
      return;
    }
    this.#upgrade = this.#host.enqueue(async () => {
      try {
        await this.#host.acquireWriteLock(); // one writer per file (see lib/io/lock)
        await runAsync(this.#io.writable());
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
    this.#host.acquireWriteLockSync();
    runSync(this.#io.writable());
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

  /** Records as packed rows: the RecordArray's fields must be the dataset's. */
  #packRecords(x: unknown, what: string): { data: Uint8Array; shape: readonly number[] } {
    if (!(x instanceof RecordArray)) throw new TypeError(`${this}: ${what} of a record dataset takes a RecordArray`);
    const packed = encodeRecords(x, `${this} ${what}`);
    if (!sameType(packed.type, this.recordType!)) {
      throw new TypeError(`${this}: the records' fields (${x.names.join(', ')}) are not the dataset's (${this.fields!.map((f) => f.name).join(', ')}) with the same types and shapes`);
    }
    return { data: packed.data, shape: x.shape };
  }

  #framesOf(frames: AppendData): { data: TypedArray; count: number } {
    if (this.recordType === null) return framesOf(frames, this.dtype, this.#frame());
    const frame = this.#frame();
    const { data, shape } = this.#packRecords(frames, 'append');
    const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
    if (same(shape, frame)) return { data, count: 1 };
    if (shape.length === frame.length + 1 && same(shape.slice(1), frame)) return { data, count: shape[0]! };
    throw new RangeError(`append: records of shape ${shapeText(shape)} are neither a frame ${shapeText(frame)} nor a batch [k, ${frame.join(', ')}]`);
  }

  append(frames: AppendData): Promise<void> {
    // The common case first: one frame of the dataset's own TypedArray that does not fill the band.
    const buf = this.#buf;
    if (buf !== null && this.recordType === null && frames instanceof this.#info.ArrayType && frames.length === this.#rowLen && this.#writableOk
      && this.#bandEnd - this.#bufStart - this.#bufRows > 1 && this.#broken === null && this.#shape.length > 0) {
      buf.set(frames as never, this.#bufRows * this.#rowLen);
      this.#bufRows++;
      this.#shape[0]!++;
      return this.#autoFlush.enabled && this.#autoFlush.appended(1, true) ? this.flush() : RESOLVED;
    }
    try {
      this.assertUsable();
      const { data, count } = this.#framesOf(frames);
      this.#checkRoom(count);
      if (count === 0) return this.#upgrade ?? RESOLVED;
      this.#checkWritable();
      const steps: Step[] = [];
      this.#planAppend(steps, data, count);
      const done = this.#submit(steps) as Promise<void>;
      return this.#autoFlush.appended(count, true) ? Promise.all([done, this.flush()]).then(() => undefined) : done;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  appendSync(frames: AppendData): void {
    this.#host.assertIdle();
    const { data, count } = this.#framesOf(frames);
    this.#checkRoom(count);
    if (count === 0) return;
    this.#checkWritableSync();
    const steps: Step[] = [];
    this.#planAppend(steps, data, count);
    this.#runSync(steps);
    if (this.#autoFlush.appended(count, false)) this.flushSync();
  }


  // ------------------------------------------------------------------------------ read

  /** The normalised selection, its result shape, and the steps that put buffered rows it reads in the file. */
  #planRead(selection: DatasetSelection | undefined): { ranges: AxisRange[]; shape: number[]; elements: number; steps: Step[] } {
    const ranges = normalizeSelection(selection, this.#shape);
    const elements = shapeSize(countsOf(ranges));
    const steps: Step[] = [];
    if (elements > 0 && ranges.length > 0) this.#planFlush(steps, rangeEnd(ranges[0]!));
    return { ranges, shape: resultShape(ranges), elements, steps };
  }

  *#readSelection(ranges: AxisRange[], out: TypedArray): H5Gen<void> {
    if (out.length === 0) return;
    const ds = yield* this.#dataset();
    yield* readInto(ds, toNativeArray(this.dtype, out), this.#slab(ranges));
  }

  /** The sync twin's read: straight to the native call when nothing else has to run first. */
  #readSync<R extends NDArray | TypedArray>(steps: Step[], ranges: AxisRange[], result: R): R {
    const ds = steps.length === 0 ? this.#current() : null;
    if (ds) {
      const slab = this.#slab(ranges);
      guardDatasetRead(ds, slab); // a WeakMap miss unless the file is a verified one with sparse datasets
      ds.readSync(toNativeArray(this.dtype, result instanceof NDArray ? result.data : result), slab);
      return result;
    }
    return this.#runSync(steps, () => this.#readAndReturn(ranges, result)) as R;
  }

  #allocate(elements: number): TypedArray {
    try {
      return allocateForRead(this.dtype, elements * this.#info.lanes);
    } catch (err) {
      // A stored extent (damaged or sparse) can claim more than one array holds.
      throw new CheckpointerError(`${this}: cannot allocate ${elements * this.#info.itemSize} bytes for the read (${(err as Error).message}); read it in slices`, {
        code: 'ERR_TOO_LARGE', cause: err,
      });
    }
  }

  #numbersOnly(what: string): void {
    if (this.recordType) throw new TypeError(`${this} holds records: ${what} reads numbers; use readRecords`);
  }

  readRecords(selection?: DatasetSelection): Promise<RecordArray> {
    try {
      const { ranges, shape, elements, steps, bytes } = this.#planRecordRead(selection);
      if (elements === 0) return Promise.resolve(decodePacked(this.recordType!, shape, bytes) as RecordArray);
      return this.#submit(steps, () => this.#readRecordsAndReturn(ranges, shape, bytes)) as Promise<RecordArray>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readRecordsSync(selection?: DatasetSelection): RecordArray {
    this.#host.assertIdle();
    const { ranges, shape, elements, steps, bytes } = this.#planRecordRead(selection);
    if (elements > 0) this.#readSync(steps, ranges, bytes);
    return decodePacked(this.recordType!, shape, bytes) as RecordArray;
  }

  #planRecordRead(selection: DatasetSelection | undefined): { ranges: AxisRange[]; shape: number[]; elements: number; steps: Step[]; bytes: Uint8Array } {
    if (!this.recordType) throw new TypeError(`${this} holds numbers, not records: use read`);
    const plan = this.#planRead(selection);
    return { ...plan, bytes: this.#allocate(plan.elements) as Uint8Array };
  }

  *#readRecordsAndReturn(ranges: AxisRange[], shape: number[], bytes: Uint8Array): H5Gen<RecordArray> {
    yield* this.#readSelection(ranges, bytes);
    return decodePacked(this.recordType!, shape, bytes, [], String(this)) as RecordArray;
  }

  read(selection?: DatasetSelection): Promise<NDArray> {
    try {
      this.#numbersOnly('read');
      const { ranges, shape, elements, steps } = this.#planRead(selection);
      const result = wrapNumbers(this.#numberType, this.#allocate(elements), shape, this.dtype);
      if (elements === 0) return Promise.resolve(result);
      return this.#submit(steps, () => this.#readAndReturn(ranges, result)) as Promise<NDArray>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readSync(selection?: DatasetSelection): NDArray {
    this.#host.assertIdle();
    this.#numbersOnly('readSync');
    const { ranges, shape, elements, steps } = this.#planRead(selection);
    const result = wrapNumbers(this.#numberType, this.#allocate(elements), shape, this.dtype);
    if (elements === 0) return result;
    return this.#readSync(steps, ranges, result);
  }

  readInto<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): Promise<T> {
    try {
      this.#numbersOnly('readInto');
      const { ranges, elements, steps } = this.#planRead(selection);
      targetOf(target, this.dtype, elements);
      if (elements === 0) return Promise.resolve(target);
      return this.#submit(steps, () => this.#readAndReturn(ranges, target)) as Promise<T>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readIntoSync<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): T {
    this.#host.assertIdle();
    this.#numbersOnly('readIntoSync');
    const { ranges, elements, steps } = this.#planRead(selection);
    targetOf(target, this.dtype, elements);
    if (elements === 0) return target;
    return this.#readSync(steps, ranges, target);
  }

  *#readAndReturn<R extends NDArray | TypedArray>(ranges: AxisRange[], result: R): H5Gen<R> {
    yield* this.#readSelection(ranges, result instanceof NDArray ? result.data : result);
    return result;
  }

  // ------------------------------------------------------------------------------ write / resize

  #planWrite(selection: DatasetSelection, data: WriteData, options: WriteOptions | undefined): Step[] {
    if (!Array.isArray(selection)) throw new TypeError(`write needs a selection (an array with one entry per axis; [] for all), got ${JSON.stringify(selection)}`);
    const grow = options?.grow === true;
    const ranges = normalizeSelection(selection, this.#shape, grow ? this.#maxshape : undefined);
    const block = this.recordType ? this.#recordBlock(data, resultShape(ranges)) : blockOf(data, this.dtype, resultShape(ranges));
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

  #recordBlock(data: unknown, counts: readonly number[]): Uint8Array {
    const { data: bytes, shape } = this.#packRecords(data, 'write');
    if (shape.length !== counts.length || shape.some((d, i) => d !== counts[i])) {
      throw new RangeError(`write: records of shape ${shapeText(shape)} do not match the selection's shape ${shapeText(counts)}`);
    }
    return bytes;
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
    if (!Number.isSafeInteger(shapeSize(s) * this.#info.itemSize)) throw new RangeError(`${this}: resize to ${shapeText(s)} holds more elements than one array can index`);
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
    const s = this.#checkShape(shape);
    this.#checkWritableSync();
    const steps: Step[] = [];
    this.#planResize(steps, s);
    this.#runSync(steps);
  }

  // ------------------------------------------------------------------------------ flush / close

  #planFlushFile(): Step[] {
    const steps: Step[] = [];
    this.#planFlush(steps);
    if (this.#writableOk || steps.length > 0) steps.push({ kind: 'flushFile' });
    return steps;
  }

  flush(): Promise<void> {
    this.#autoFlush.flushed();
    return this.#submit(this.#planFlushFile()) as Promise<void>;
  }

  flushSync(): void {
    this.#host.assertIdle();
    this.#autoFlush.flushed();
    this.#runSync(this.#planFlushFile());
  }

  /** Writes the buffered frames, from inside the checkpointer's queue (before a get reads them). */
  *writeBuffered(): H5Gen<void> {
    if (this.#closed || this.#broken) return;
    const steps: Step[] = [];
    this.#planFlush(steps);
    this.#pending.push(...steps);
    if (steps.length > 0) yield* this.#drain(steps[steps.length - 1]);
  }

  /**
   * A handle let go (inside the queue): what is buffered is written; after the last handle the
   * native dataset is closed and the backend forgets the core.
   */
  *releaseHandle(handle: HDF5Dataset): H5Gen<void> {
    this.handles.delete(handle);
    try {
      if (!this.#broken && !this.#closed) {
        const steps: Step[] = [];
        this.#planFlush(steps);
        this.#pending.push(...steps);
        yield* this.#drain();
      }
    } finally {
      if (this.handles.size === 0) yield* this.#close();
    }
  }

  *#close(): H5Gen<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#autoFlush.flushed();
    this.#buf = null;
    this.#pool = [];
    this.#io.forget(this);
    if (this.#native.isOpen) yield* closeDataset(this.#native);
  }

  // ------------------------------------------------------------------------------ attributes

  /** Attributes are small: read and written whole, synchronously (h5py's `ds.attrs`). */
  attrsEntries(): [string, AttrRead][] {
    this.#host.assertIdle();
    return runSync(this.#attrs());
  }

  *#attrs(): H5Gen<[string, AttrRead][]> {
    return yield* datasetAttrs(yield* this.#dataset());
  }

  setAttr(name: string, value: AttrValue): void {
    this.#host.assertIdle();
    this.#checkWritableSync();
    runSync(this.#setAttr(name, value));
  }

  *#setAttr(name: string, value: AttrValue): H5Gen<void> {
    yield* this.#io.writable();
    yield* setDatasetAttr(yield* this.#dataset(), name, nativeAttrValue(value, `attribute ${JSON.stringify(name)} of ${this}`));
  }

  deleteAttr(name: string): void {
    this.#host.assertIdle();
    this.#checkWritableSync();
    runSync(this.#deleteAttr(name));
  }

  *#deleteAttr(name: string): H5Gen<void> {
    yield* this.#io.writable();
    yield* deleteDatasetAttr(yield* this.#dataset(), name);
  }
}

function checkOpenable(info: DatasetInfo, shown: string, file: string): void {
  if (info.dtype === null) throw new CheckpointerError(`key ${shown}: ${info.unsupported ?? 'an unsupported datatype'}`, { code: 'ERR_UNSUPPORTED_DTYPE', file });
  if (info.dtype === 'string') throw new CheckpointerError(`key ${shown} holds strings; dataset handles hold numbers`, { code: 'ERR_UNSUPPORTED_DTYPE', file });
  if (info.isNull) throw new CheckpointerError(`key ${shown} holds None (a null dataspace)`, { code: 'ERR_UNSUPPORTED_VALUE', file });
  if (info.dtype === 'packed') {
    const t = info.type!;
    if (t.class !== 'compound' || t.dims.length > 0 || hasVariableParts(t)) {
      const what = t.class === 'compound' ? 'records with variable-length parts or array axes' : t.class === 'number' || t.class === 'enum' ? 'an HDF5 array datatype' : `${t.class} data`;
      throw new CheckpointerError(`key ${shown} holds ${what}; dataset handles hold numbers and fixed-size records (read it whole with get)`, { code: 'ERR_UNSUPPORTED_DTYPE', file });
    }
    decodePacked(t, [0], new Uint8Array(0), [], `key ${shown}`); // refuses field types a RecordArray cannot hold
  }
}

/**
 * An existing dataset is opened when it can hold what was asked for (h5py's require_dataset, but
 * only the first axis may differ, so a resumed run keeps appending).
 */
function checkMatches(info: Pick<DatasetInfo, 'dtype' | 'shape' | 'type'>, spec: DatasetSpec, shown: string): void {
  if (info.dtype !== spec.dtype) throw new TypeError(`key ${shown} exists with dtype ${info.dtype === 'packed' ? 'records' : info.dtype}, not ${spec.dtype === 'packed' ? 'records' : spec.dtype}`);
  if (spec.type && info.type && !sameType(info.type, spec.type)) throw new TypeError(`key ${shown} exists with other record fields than asked for`);
  if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => i > 0 && d !== spec.shape[i])) {
    throw new RangeError(`key ${shown} exists with shape ${shapeText(info.shape)}, whose frames differ from shape ${shapeText(spec.shape)}`);
  }
}

// ---------------------------------------------------------------------------------- the handle

/** A handle on an HDF5 dataset: a view of its core, with a lifetime of its own. */
export class HDF5Dataset implements Dataset, DatasetLifecycle {
  readonly attrs: DatasetAttrs;
  readonly #core: HDF5DatasetCore;
  readonly #host: DatasetHost;
  #closed = false;

  constructor(core: HDF5DatasetCore, host: DatasetHost) {
    this.#core = core;
    this.#host = host;
    this.attrs = new HDF5DatasetAttrs(this, core);
    core.handles.add(this);
  }

  get key(): readonly string[] { return this.#core.key; }
  /** The dataset's path inside the file. */
  get path(): string { return this.#core.path; }
  get dtype(): DType | 'records' { return this.#core.recordType ? 'records' : this.#core.dtype; }
  get fields(): readonly RecordField[] | undefined { return this.#core.fields ?? undefined; }
  get chunks(): readonly number[] | null { return this.#core.chunks; }
  get compression(): Compression | null { return this.#core.compression; }
  get compressionLevel(): number | null { return this.#core.compressionLevel; }
  get shuffle(): boolean { return this.#core.shuffle; }
  get shape(): readonly number[] { return this.#core.shape; }
  get maxshape(): readonly (number | null)[] { return this.#core.maxshape; }
  get size(): number { return shapeSize(this.#core.shape); }
  get ndim(): number { return this.#core.shape.length; }
  get nbytes(): number { return this.size * (this.#core.recordType ? this.#core.recordType.size : dtypeInfo(this.#core.dtype).itemSize); }
  get isOpen(): boolean { return !this.#closed && this.#core.isOpen; }

  toString(): string {
    return String(this.#core);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `${this} ${this.dtype} ${shapeText(this.shape)}`;
  }

  /** Throws ERR_CLOSED (or the error that broke the dataset) before anything is planned. */
  assertUsable(): void {
    if (this.#closed) throw closedError(String(this), this.#core.toString());
    this.#core.assertUsable();
  }

  #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      this.assertUsable();
    } catch (err) {
      return Promise.reject(err);
    }
    return fn();
  }

  append(frames: AppendData): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(String(this), this.#core.toString()));
    return this.#core.append(frames);
  }

  appendSync(frames: AppendData): void {
    this.assertUsable();
    this.#core.appendSync(frames);
  }

  read(selection?: DatasetSelection): Promise<NDArray> {
    return this.#guard(() => this.#core.read(selection));
  }

  readSync(selection?: DatasetSelection): NDArray {
    this.assertUsable();
    return this.#core.readSync(selection);
  }

  readInto<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): Promise<T> {
    return this.#guard(() => this.#core.readInto(selection, target));
  }

  readRecords(selection?: DatasetSelection): Promise<RecordArray> {
    return this.#guard(() => this.#core.readRecords(selection));
  }

  readRecordsSync(selection?: DatasetSelection): RecordArray {
    this.assertUsable();
    return this.#core.readRecordsSync(selection);
  }

  readIntoSync<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): T {
    this.assertUsable();
    return this.#core.readIntoSync(selection, target);
  }

  write(selection: DatasetSelection, data: WriteData, options?: WriteOptions): Promise<void> {
    return this.#guard(() => this.#core.write(selection, data, options));
  }

  writeSync(selection: DatasetSelection, data: WriteData, options?: WriteOptions): void {
    this.assertUsable();
    this.#core.writeSync(selection, data, options);
  }

  resize(shape: readonly number[]): Promise<void> {
    return this.#guard(() => this.#core.resize(shape));
  }

  resizeSync(shape: readonly number[]): void {
    this.assertUsable();
    this.#core.resizeSync(shape);
  }

  flush(): Promise<void> {
    return this.#guard(() => this.#core.flush());
  }

  flushSync(): void {
    this.assertUsable();
    this.#core.flushSync();
  }

  close(): Promise<void> {
    if (this.#closed) return RESOLVED;
    this.#closed = true;
    return this.#host.enqueue(async () => {
      try {
        await runAsync(this.#core.releaseHandle(this));
      } finally {
        await this.#host.release(this);
      }
    });
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#host.assertIdle();
    this.#closed = true;
    try {
      runSync(this.#core.releaseHandle(this));
    } finally {
      this.#host.releaseSync(this);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  /** Its scope closed (inside the checkpointer's queue): write what is buffered, then closed. */
  async detach(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await runAsync(this.#core.releaseHandle(this));
  }

  detachSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    runSync(this.#core.releaseHandle(this));
  }
}

class HDF5DatasetAttrs implements DatasetAttrs {
  readonly #handle: HDF5Dataset;
  readonly #core: HDF5DatasetCore;

  constructor(handle: HDF5Dataset, core: HDF5DatasetCore) {
    this.#handle = handle;
    this.#core = core;
  }

  #entries(): [string, AttrRead][] {
    this.#handle.assertUsable();
    return this.#core.attrsEntries();
  }

  keys(): string[] {
    return this.#entries().map(([k]) => k);
  }

  has(name: string): boolean {
    return this.keys().includes(name);
  }

  /** The attribute's value; undefined when absent (null for an empty attribute). */
  get(name: string): AttrValue | null | undefined {
    const hit = this.#entries().find(([k]) => k === name);
    if (!hit) return undefined;
    const v = hit[1];
    return attrValueOf(v, `attribute ${JSON.stringify(name)} of ${this.#handle}`) as AttrValue | null;
  }

  set(name: string, value: AttrValue): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError(`an attribute name is a non-empty string, got ${JSON.stringify(name)}`);
    if (name.includes('\0')) throw new TypeError(`an attribute name cannot contain NUL: ${JSON.stringify(name)}`);
    this.#handle.assertUsable();
    this.#core.setAttr(name, value);
  }

  delete(name: string): boolean {
    if (!this.has(name)) return false;
    this.#core.deleteAttr(name);
    return true;
  }
}
