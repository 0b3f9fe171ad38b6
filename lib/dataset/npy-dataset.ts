/**
 * Dataset handles on NumPy files (see ./types, and docs/dataset.md, ".npy / .npz datasets").
 *
 * `RowDataset` is what they share: an array stored C-ordered at an offset in a file, read in slices
 * by positional reads (only the rows a selection touches; straight into the result when the rows
 * are whole), and appended to along axis 0 through a small buffer (about 1 MiB; larger batches are
 * written straight from the caller's array). Calls do their checks and bookkeeping when made, so a
 * wrong frame or selection throws before anything is written; their I/O runs in the checkpointer's
 * queue, in call order, from one generator for the sync and async forms.
 *
 * `NpyDataset` is a `.npy` file grown in place (a deliberate non-atomic mode): rows are written
 * after the data, then the header's shape is rewritten inside its padding (numpy ≥ 1.23 and this
 * package leave room for the first axis to reach 21 digits), so a crash at any point leaves a file
 * numpy loads (at worst without the last rows, which then sit past the end as ignored bytes).
 * Big-endian and Fortran-order files are read (converted), not changed.
 *
 * Record datasets (numpy structured dtypes): a row element is one record of `itemSize` bytes —
 * moved as raw bytes by the same machinery (a record is a uint8 element of `itemSize` lanes) and
 * turned into a RecordArray by `readRecords` (decodeRecords) or from one by append/write
 * (encodeRecords). Rows can be written only into the packed native layout this package writes;
 * other layouts (padding, offsets, big-endian fields) are read, not changed.
 */
import * as fs from 'node:fs';
import { CheckpointerError, CheckpointerKeyError, fromSystemError } from '../errors';
import {
  decodeRecords, descrOf, encodeNpyHeader, encodeNpyHeaderFixed, encodeRecords, fortranToC, npyHeaderLength, NPY_PREFIX_BYTES,
  packedRecordLayout, parseNpyHeader, recordDescrRepr, recordLayoutOf, RecordLayout, swapInPlace,
} from '../formats/npy';
import { RecordArray, RecordField } from '../values/records';
import { IoGen, runAsync, runSync } from '../formats/zip';
import { stableArray } from '../native';
import { allocateForRead, DType, DTypeInfo, dtypeInfo, isDType, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { AxisRange, Block, copyBlock, countsOf, normalizeSelection, rangeEnd, resultShape } from './selection';
import { writeFileAtomicSync } from '../io/atomic';
import { AutoFlush, checkAutoFlush } from './types';
import { AutoFlushCounter } from './auto-flush';
import type {
  AppendData, AttrValue, Dataset, DatasetAttrs, DatasetHost, DatasetLifecycle, DatasetOptions, DatasetSelection,
  WriteData, WriteOptions,
} from './types';
import { blockOf, framesOf, targetOf } from './values';

/** A write's records: exactly the selection's shape. */
function recordBlock(x: unknown, layout: RecordLayout, counts: readonly number[]): Uint8Array {
  const data = recordBytes(x, layout, 'write');
  const shape = (x as RecordArray).shape;
  if (shape.length !== counts.length || shape.some((d, i) => d !== counts[i])) {
    throw new RangeError(`write: records of shape [${shape.join(', ')}] do not match the selection's shape [${counts.join(', ')}]`);
  }
  return data;
}

/** Appends smaller than this are gathered in a buffer of this size before they are written. */
export const APPEND_BUFFER_BYTES = 1 << 20;
/** Largest read or read-modify-write box, and the scratch memory a gathering read uses. */
const PIECE_BYTES = 4 << 20;
/** A stepped read reads the rows between selected ones when the gap is at most this (fewer calls). */
const GAP_BYTES = 4096;

export function unsupported(message: string, file?: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_VALUE', file });
}

function closedError(what: string, file: string): CheckpointerError {
  return new CheckpointerError(`${what} is closed`, { code: 'ERR_CLOSED', file });
}

function shapeText(s: readonly (number | null)[]): string {
  return `[${s.map((d) => (d === null ? 'null' : d)).join(', ')}]`;
}

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
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

/** What creating an .npy/.npz dataset asks for, checked. */
export interface RowSpec {
  /** 'records' for a record dataset (then `records` says its layout). */
  dtype: DType | 'records';
  records: RecordLayout | null;
  shape: number[];
  maxshape: (number | null)[];
  autoFlush: AutoFlush | null;
}

/**
 * Checks create options for a file that grows along axis 0 only: dtype required, rank ≥ 1, trailing
 * maxshape fixed, no compression or shuffle, a fill value of 0. `chunks` is accepted and ignored.
 */
export function rowSpec(o: DatasetOptions, format: string, file: string): RowSpec {
  if (o === null || typeof o !== 'object') throw new TypeError(`dataset options must be an object, got ${JSON.stringify(o)}`);
  let records: RecordLayout | null = null;
  if (o.fields !== undefined) {
    if (o.dtype !== undefined) throw new TypeError('a record dataset is described by its fields; give fields or dtype, not both');
    if (!Array.isArray(o.fields) || o.fields.length === 0) throw new TypeError('options.fields must be a non-empty array of record fields ({name, type, shape})');
    try {
      // The fields as a RecordArray checks them (names, types, shapes) — an empty table of them.
      records = packedRecordLayout(new RecordArray(new Map(o.fields.map((f) => [f.name, emptyColumn(f)])), { shape: [0], fields: o.fields }).fields);
    } catch (err) {
      if (err instanceof CheckpointerError) throw new CheckpointerError(`options.fields: ${err.message}`, { code: err.code, file });
      throw new TypeError(`options.fields: ${(err as Error).message}`);
    }
  } else {
    if (o.dtype === undefined) throw new TypeError('creating a dataset needs a dtype (options.dtype) or record fields (options.fields)');
    if (!isDType(o.dtype)) throw new TypeError(`unknown dtype ${JSON.stringify(o.dtype)}`);
  }
  const shape = checkDims(o.shape ?? [0], 'shape', false) as number[];
  if (shape.length === 0) throw new TypeError(`a ${format} dataset needs an axis to append along (shape [] is 0-d)`);
  const maxshape = o.maxshape === undefined ? [null, ...shape.slice(1)] : checkDims(o.maxshape, 'maxshape', true);
  if (maxshape.length !== shape.length) throw new RangeError(`maxshape ${shapeText(maxshape)} and shape ${shapeText(shape)} differ in length`);
  const m0 = maxshape[0];
  if (m0 !== null && m0 !== undefined && m0 < shape[0]!) throw new RangeError(`maxshape ${shapeText(maxshape)} is smaller than shape ${shapeText(shape)} on axis 0`);
  maxshape.forEach((m, i) => {
    if (i > 0 && m !== shape[i]) throw unsupported(`${format} datasets grow along axis 0 only: maxshape ${shapeText(maxshape)} must equal shape ${shapeText(shape)} after the first axis`, file);
  });
  if (o.compression !== undefined && o.compression !== null) throw unsupported(`${format} datasets are stored uncompressed: compression is not supported`, file);
  if (o.compressionLevel !== undefined && o.compressionLevel !== null) throw unsupported(`${format} datasets are stored uncompressed: compressionLevel is not supported`, file);
  if (o.shuffle === true) throw unsupported(`${format} datasets are stored uncompressed: shuffle is not supported`, file);
  const fv = o.fillValue;
  if (fv !== undefined && fv !== 0 && fv !== 0n && fv !== false) throw unsupported(`${format} datasets fill new elements with 0; fillValue ${String(fv)} is not supported`, file);
  if (o.chunks !== undefined && o.chunks !== null && typeof o.chunks !== 'boolean' && !Array.isArray(o.chunks)) {
    throw new TypeError(`chunks must be true, false or a chunk shape, got ${JSON.stringify(o.chunks)}`);
  }
  return { dtype: records ? 'records' : o.dtype!, records, shape, maxshape, autoFlush: checkAutoFlush(o.autoFlush) };
}

/** An empty column of a field (for checking fields through the RecordArray constructor). */
function emptyColumn(f: RecordField): NDArray | RecordArray | string[] | Uint8Array[] {
  const t = f?.type;
  if (t?.kind === 'number' || t?.kind === 'enum') return new NDArray(new (dtypeInfo(t.dtype).ArrayType)(0), [0, ...f.shape], t.dtype);
  if (t?.kind === 'record') return new RecordArray(new Map(t.fields.map((g) => [g.name, emptyColumn(g)])), { shape: [0, ...f.shape], fields: t.fields });
  if (t?.kind === 'string' || t?.kind === 'bytes') return [];
  throw new TypeError(`field ${JSON.stringify(f?.name)} has no type`);
}

/** Bytes of one element: a record's size for a record dataset. */
export function elementBytes(spec: { dtype: DType | 'records'; records: RecordLayout | null }): number {
  return spec.records ? spec.records.itemSize : dtypeInfo(spec.dtype as DType).itemSize;
}

/** A record is moved as a uint8 element of `itemSize` lanes. */
function recordInfo(itemSize: number): DTypeInfo {
  return { name: 'uint8', itemSize, lanes: itemSize as 1, ArrayType: Uint8Array, kind: 'u' };
}

/** Rows of RecordArray `x` for a record dataset with frames of `frame`: its packed bytes and how many frames. */
function recordFrames(x: unknown, layout: RecordLayout, frame: readonly number[], what: string): { data: Uint8Array; count: number } {
  const data = recordBytes(x, layout, what);
  const shape = (x as RecordArray).shape;
  if (shape.length === frame.length && shape.every((d, i) => d === frame[i])) return { data, count: 1 };
  if (shape.length === frame.length + 1 && shape.slice(1).every((d, i) => d === frame[i])) return { data, count: shape[0]! };
  throw new RangeError(`${what}: records of shape [${shape.join(', ')}] are neither a frame [${frame.join(', ')}] nor a batch [k, ${frame.join(', ')}]`);
}

function recordBytes(x: unknown, layout: RecordLayout, what: string): Uint8Array {
  if (!(x instanceof RecordArray)) throw new TypeError(`${what}: a record dataset takes a RecordArray, got ${x === null ? 'null' : typeof x === 'object' ? (x as object).constructor?.name : typeof x}`);
  let descr: string;
  try {
    descr = recordDescrRepr(x.fields);
  } catch (err) {
    throw new TypeError(`${what}: ${(err as Error).message}`);
  }
  if (descr !== recordDescrRepr(layout.fields)) {
    throw new TypeError(`${what}: the records' fields (${x.names.join(', ')}: ${descr}) are not the dataset's (${recordDescrRepr(layout.fields)})`);
  }
  return encodeRecords(x).data;
}

/** Checks an existing array against create options (opened when dtype and frames match, as HDF5 does). */
export function checkExisting(spec: RowSpec, dtype: DType | 'records', shape: readonly number[], where: string, records: RecordLayout | null = null): void {
  if (dtype !== spec.dtype) throw new TypeError(`${where} exists with dtype ${dtype}, not ${spec.dtype}`);
  if (records && spec.records && recordDescrRepr(records.fields) !== spec.records.descr) {
    throw new TypeError(`${where} exists with other record fields (${records.descr}) than asked for (${spec.records.descr})`);
  }
  if (shape.length !== spec.shape.length || shape.some((d, i) => i > 0 && d !== spec.shape[i])) {
    throw new RangeError(`${where} exists with shape ${shapeText(shape)}, whose frames differ from shape ${shapeText(spec.shape)}`);
  }
}

/** NumPy files keep no attributes: reads see none, setting one is ERR_UNSUPPORTED_VALUE; a closed handle's are ERR_CLOSED. */
class NoAttrs implements DatasetAttrs {
  constructor(private readonly owner: string, private readonly file: string, private readonly usable: () => void) {}
  get(): AttrValue | null | undefined {
    this.usable();
    return undefined;
  }
  set(): void {
    this.usable();
    throw unsupported(`${this.owner}: NumPy files have no attributes`, this.file);
  }
  has(): boolean {
    this.usable();
    return false;
  }
  delete(): boolean {
    this.usable();
    return false;
  }
  keys(): string[] {
    this.usable();
    return [];
  }
}

/** I/O a call plans, run in queue order. */
type Job =
  | { kind: 'rows'; start: number; rows: number; data: Uint8Array }
  | { kind: 'extent'; rows: number }
  | { kind: 'select'; ranges: AxisRange[]; data: TypedArray }
  | { kind: 'sync' };

/** One run of rows read (or written) at once: `span` rows from `first`, `selected` of them, going to result row `at`. */
interface Piece {
  first: number;
  span: number;
  selected: number;
  at: number;
}

export interface RowDatasetInit {
  key: readonly string[];
  dtype: DType | 'records';
  /** A record dataset's layout in the file (or in `memory`). */
  records?: RecordLayout | null;
  shape: readonly number[];
  maxshape: readonly (number | null)[];
  fileName: string;
  host: DatasetHost;
  /** Where the elements are: a descriptor and the offset of element 0 ... */
  fd: number;
  dataOffset: number;
  /** ... stored byte-swapped or in Fortran order (read-only then), */
  swap?: boolean;
  fortran?: boolean;
  /** ... or in memory (C order, native), for members that cannot be read by offset. */
  memory?: TypedArray | null;
  /** Flush by itself every so many frames / ms (DatasetOptions.autoFlush). */
  autoFlush?: AutoFlush | null;
}

const RESOLVED: Promise<void> = Promise.resolve();

export abstract class RowDataset implements Dataset, DatasetLifecycle {
  readonly key: readonly string[];
  readonly dtype: DType | 'records';
  /** A record dataset's fields (absent otherwise). */
  readonly fields?: readonly RecordField[];
  /** A record dataset's layout; null for numbers. */
  protected readonly records: RecordLayout | null;
  readonly chunks: readonly number[] | null = null;
  readonly compression: 'gzip' | null = null;
  readonly compressionLevel: number | null = null;
  readonly shuffle = false;
  readonly attrs: DatasetAttrs;

  protected readonly host: DatasetHost;
  protected readonly fileName: string;
  protected readonly info: DTypeInfo;
  protected fd: number;
  protected readonly dataOffset: number;
  protected readonly swap: boolean;
  protected readonly fortran: boolean;
  protected readonly memory: TypedArray | null;
  /** Rows whose data (and, for .npy, header) are in the file after the jobs run so far. */
  protected fileRows: number;

  #shape: number[];
  readonly #maxshape: (number | null)[];
  readonly #rowLen: number;
  readonly #rowBytes: number;
  readonly #bufCap: number;
  #buf: Uint8Array | null = null;
  #bufRows = 0;
  #closed = false;
  #detached = false;
  #broken: CheckpointerError | null = null;
  /** Flush by itself every so many frames / ms (DatasetOptions.autoFlush). */
  readonly #autoFlush: AutoFlushCounter;

  protected constructor(init: RowDatasetInit) {
    this.#autoFlush = new AutoFlushCounter(init.autoFlush, () => {
      if (!this.#closed && !this.#broken) this.flush().catch(() => undefined);
    });
    this.key = Object.freeze([...init.key]);
    this.dtype = init.dtype;
    this.records = init.records ?? null;
    if (this.records) this.fields = this.records.fields;
    this.info = this.records ? recordInfo(this.records.itemSize) : dtypeInfo(init.dtype as DType);
    this.#shape = [...init.shape];
    this.#maxshape = [...init.maxshape];
    this.fileName = init.fileName;
    this.host = init.host;
    this.fd = init.fd;
    this.dataOffset = init.dataOffset;
    this.swap = this.records ? false : init.swap ?? false; // a record's fields are swapped as they are decoded
    this.fortran = (init.fortran ?? false) && init.shape.length > 1;
    this.memory = init.memory ?? null;
    this.fileRows = init.shape[0] ?? 0;
    this.#rowLen = shapeSize(init.shape.slice(1)) * this.info.lanes;
    this.#rowBytes = shapeSize(init.shape.slice(1)) * this.info.itemSize;
    this.#bufCap = this.#rowBytes > 0 ? Math.max(1, Math.floor(APPEND_BUFFER_BYTES / this.#rowBytes)) : 1;
    this.attrs = new NoAttrs(String(this), init.fileName, () => this.#assertUsable());
  }

  // ------------------------------------------------------------------------------ subclass hooks

  protected abstract get label(): string;
  /** Why `op` is refused on this handle, or null when it is allowed. */
  protected abstract refusal(op: 'append' | 'write' | 'resize'): string | null;
  /** Throws before anything is written when the file cannot record `rows` rows. */
  protected checkRows(_rows: number): void {}
  /** After rows were written at the end or the extent changed: record the row count (the .npy header). */
  protected *commitRows(_rows: number, _extentChanged: boolean): IoGen<void> {}
  /** Bytes written at row `start` (a stream's CRC-32). */
  protected wrote(_start: number, _bytes: Uint8Array): void {}
  /** After the last rows were written at close. */
  protected *finish(): IoGen<void> {}
  /** Always last: gives back what the handle owns; `ok` false when the close failed or the handle broke. */
  protected abstract dispose(ok: boolean): void;
  /** After `flush()` wrote the rows: make them survive a crash (an .npz stream commits the file). */
  protected async persist(): Promise<void> {}
  protected persistSync(): void {}
  /** Whether `flush()` fsyncs the handle's own file (an .npz stream's spool is not what survives). */
  protected get syncsOnFlush(): boolean {
    return true;
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

  get size(): number {
    return shapeSize(this.#shape);
  }

  get ndim(): number {
    return this.#shape.length;
  }

  get nbytes(): number {
    return this.size * this.info.itemSize;
  }

  toString(): string {
    return `${this.label}('${this.fileName}', ${JSON.stringify(this.key.join('/'))})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `${this} ${this.dtype} ${shapeText(this.#shape)}`;
  }

  // ------------------------------------------------------------------------------ running jobs

  #assertUsable(): void {
    if (this.#closed) throw closedError(String(this), this.fileName);
    if (this.#broken) throw this.#broken;
  }

  #refuse(op: 'append' | 'write' | 'resize'): void {
    const why = this.refusal(op);
    if (why !== null) throw unsupported(`${this}: ${why}`, this.fileName);
  }

  #fail(err: unknown): never {
    if (!this.#broken) {
      const code = err instanceof CheckpointerError ? err.code : 'ERR_IO';
      const msg = err instanceof Error ? err.message : String(err);
      this.#broken = new CheckpointerError(`${this}: an earlier write failed, the handle is unusable (${msg})`, { code, file: this.fileName, cause: err });
    }
    throw err instanceof CheckpointerError ? err : fromSystemError(err, this.fileName, 'write');
  }

  *#runJobs(jobs: readonly Job[]): IoGen<void> {
    let grown = false;
    const rb = this.#rowBytes;
    for (const j of jobs) {
      switch (j.kind) {
        case 'rows':
          if (j.data.length > 0) yield { op: 'write', fd: this.fd, buffer: j.data, position: this.dataOffset + j.start * rb };
          this.wrote(j.start, j.data);
          if (j.start + j.rows > this.fileRows) {
            this.fileRows = j.start + j.rows;
            grown = true;
          }
          break;
        case 'extent': {
          if (grown) yield* this.commitRows(this.fileRows, false);
          grown = false;
          const length = this.dataOffset + j.rows * rb;
          // Growing: the zeros first, then the header; shrinking: the header first.
          if (j.rows >= this.fileRows) yield { op: 'truncate', fd: this.fd, length };
          const shrink = j.rows < this.fileRows;
          this.fileRows = j.rows;
          yield* this.commitRows(j.rows, true);
          if (shrink) yield { op: 'truncate', fd: this.fd, length };
          break;
        }
        case 'select':
          yield* this.#writeSelection(j.ranges, j.data);
          break;
        case 'sync':
          if (grown) yield* this.commitRows(this.fileRows, false);
          grown = false;
          yield { op: 'sync', fd: this.fd };
          break;
      }
    }
    if (grown) yield* this.commitRows(this.fileRows, false);
  }

  *#exec<T>(jobs: readonly Job[], after?: () => IoGen<T>): IoGen<T | undefined> {
    if (this.#detached) throw closedError(String(this), this.fileName);
    if (this.#broken) throw this.#broken;
    try {
      yield* this.#runJobs(jobs);
    } catch (err) {
      this.#fail(err);
    }
    return after ? yield* after() : undefined;
  }

  #submit<T>(jobs: readonly Job[], after?: () => IoGen<T>): Promise<T | undefined> {
    if (jobs.length === 0 && !after) return RESOLVED as Promise<undefined>;
    return this.host.enqueue(() => runAsync(this.#exec(jobs, after)));
  }

  /** Async writes: the write lock first (in the queue, so a 'wait' does not block the event loop). */
  #submitWrite(jobs: readonly Job[]): Promise<void> {
    if (jobs.length === 0) return RESOLVED;
    if (this.host.holdsWriteLock()) return this.#submit(jobs) as Promise<void>;
    return this.host.enqueue(async () => {
      try {
        await this.host.acquireWriteLock();
      } catch (err) {
        this.#fail(err);
      }
      await runAsync(this.#exec(jobs));
    });
  }

  /** Sync writes: the write lock before anything is planned (a refusal leaves the handle as it was). */
  #lockSync(op: 'append' | 'write' | 'resize'): void {
    if (this.refusal(op) === null && !this.#closed && !this.host.holdsWriteLock()) this.host.acquireWriteLockSync();
  }

  /** A scratch or result array of `len` TypedArray elements (bytes for records). */
  #alloc(len: number): TypedArray {
    return allocateForRead(this.records ? 'uint8' : this.dtype as DType, len);
  }

  #numbersOnly(what: string): DType {
    if (this.records) throw new TypeError(`${this} holds records: ${what} reads numbers; use readRecords`);
    return this.dtype as DType;
  }

  #frame(): number[] {
    if (this.#shape.length === 0) throw new TypeError(`${this}: a 0-d dataset has no axis to append along`);
    return this.#shape.slice(1);
  }

  /** Writes the buffered rows out (a job), leaving the buffer empty. */
  #planFlush(jobs: Job[]): void {
    if (this.#bufRows === 0 || !this.#buf) return;
    jobs.push({ kind: 'rows', start: this.#shape[0]! - this.#bufRows, rows: this.#bufRows, data: this.#buf.subarray(0, this.#bufRows * this.#rowBytes) });
    this.#buf = null;
    this.#bufRows = 0;
  }

  // ------------------------------------------------------------------------------ append

  #planAppend(frames: AppendData): Job[] {
    this.#assertUsable();
    this.#refuse('append');
    const { data, count } = this.records ? recordFrames(frames, this.records, this.#frame(), 'append') : framesOf(frames, this.dtype as DType, this.#frame());
    const max = this.#maxshape[0];
    if (max !== null && max !== undefined && this.#shape[0]! + count > max) {
      throw new RangeError(`${this}: appending ${count} frame(s) to ${this.#shape[0]} would pass maxshape ${shapeText(this.#maxshape)}`);
    }
    const jobs: Job[] = [];
    if (count === 0) return jobs;
    this.checkRows(this.#shape[0]! + count);
    const rb = this.#rowBytes;
    const bytes = bytesOf(data);
    if (rb === 0 || count >= this.#bufCap) {
      this.#planFlush(jobs);
      jobs.push({ kind: 'rows', start: this.#shape[0]!, rows: count, data: bytes.subarray(0, count * rb) });
      this.#shape[0]! += count;
      return jobs;
    }
    for (let from = 0; from < count;) {
      const buf = (this.#buf ??= new Uint8Array(this.#bufCap * rb));
      const n = Math.min(count - from, this.#bufCap - this.#bufRows);
      buf.set(bytes.subarray(from * rb, (from + n) * rb), this.#bufRows * rb);
      this.#bufRows += n;
      this.#shape[0]! += n;
      from += n;
      if (this.#bufRows === this.#bufCap) this.#planFlush(jobs);
    }
    return jobs;
  }

  append(frames: AppendData): Promise<void> {
    try {
      const before = this.#shape[0]!;
      const done = this.#submitWrite(this.#planAppend(frames));
      if (!this.#autoFlush.appended(this.#shape[0]! - before, true)) return done;
      return Promise.all([done, this.flush()]).then(() => undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  appendSync(frames: AppendData): void {
    this.host.assertIdle();
    this.#lockSync('append');
    const before = this.#shape[0]!;
    const jobs = this.#planAppend(frames);
    if (jobs.length > 0) runSync(this.#exec(jobs));
    if (this.#autoFlush.appended(this.#shape[0]! - before, false)) this.flushSync();
  }

  // ------------------------------------------------------------------------------ read

  #planRead(selection: DatasetSelection | undefined): { ranges: AxisRange[]; shape: number[]; elements: number; jobs: Job[] } {
    this.#assertUsable();
    const ranges = normalizeSelection(selection, this.#shape);
    const elements = shapeSize(countsOf(ranges));
    const jobs: Job[] = [];
    if (elements > 0 && ranges.length > 0 && rangeEnd(ranges[0]!) > this.#shape[0]! - this.#bufRows) this.#planFlush(jobs);
    return { ranges, shape: resultShape(ranges), elements, jobs };
  }

  read(selection?: DatasetSelection): Promise<NDArray> {
    try {
      const dtype = this.#numbersOnly('read');
      const { ranges, shape, elements, jobs } = this.#planRead(selection);
      const result = new NDArray(allocateForRead(dtype, elements * this.info.lanes), shape, dtype);
      if (elements === 0) return Promise.resolve(result);
      const extent = [...this.#shape];
      return this.#submit(jobs, () => this.#readOps(ranges, extent, result.data)).then(() => result);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readSync(selection?: DatasetSelection): NDArray {
    this.host.assertIdle();
    const dtype = this.#numbersOnly('readSync');
    const { ranges, shape, elements, jobs } = this.#planRead(selection);
    const result = new NDArray(allocateForRead(dtype, elements * this.info.lanes), shape, dtype);
    if (elements === 0) return result;
    runSync(this.#exec(jobs, () => this.#readOps(ranges, [...this.#shape], result.data)));
    return result;
  }

  /** A record dataset's selected records (the whole dataset without a selection). */
  readRecords(selection?: DatasetSelection): Promise<RecordArray> {
    try {
      const layout = this.#recordsOnly();
      const { ranges, shape, elements, jobs } = this.#planRead(selection);
      const bytes = new Uint8Array(elements * layout.itemSize);
      if (elements === 0) return Promise.resolve(decodeRecords(bytes, layout.itemSize, layout.npyFields, shape));
      const extent = [...this.#shape];
      return this.#submit(jobs, () => this.#readOps(ranges, extent, bytes))
        .then(() => decodeRecords(bytes, layout.itemSize, layout.npyFields, shape));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readRecordsSync(selection?: DatasetSelection): RecordArray {
    this.host.assertIdle();
    const layout = this.#recordsOnly();
    const { ranges, shape, elements, jobs } = this.#planRead(selection);
    const bytes = new Uint8Array(elements * layout.itemSize);
    if (elements > 0) runSync(this.#exec(jobs, () => this.#readOps(ranges, [...this.#shape], bytes)));
    return decodeRecords(bytes, layout.itemSize, layout.npyFields, shape);
  }

  #recordsOnly(): RecordLayout {
    if (!this.records) throw new TypeError(`${this} holds ${this.dtype} numbers, not records: use read`);
    return this.records;
  }

  readInto<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): Promise<T> {
    try {
      const { ranges, elements, jobs } = this.#planRead(selection);
      targetOf(target, this.#numbersOnly('readInto'), elements);
      if (elements === 0) return Promise.resolve(target);
      const extent = [...this.#shape];
      // A view of a resizable or shared buffer gets the rows through a private array.
      const scratch = stableArray(target);
      return this.#submit(jobs, () => this.#readOps(ranges, extent, scratch)).then(() => {
        if (scratch !== target) {
          if (target.length !== scratch.length) throw new RangeError(`${this}: the target was resized during the read`);
          target.set(scratch as never);
        }
        return target;
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readIntoSync<T extends TypedArray>(selection: DatasetSelection | undefined, target: T): T {
    this.host.assertIdle();
    const { ranges, elements, jobs } = this.#planRead(selection);
    targetOf(target, this.#numbersOnly('readIntoSync'), elements);
    if (elements === 0) return target;
    runSync(this.#exec(jobs, () => this.#readOps(ranges, [...this.#shape], target)));
    return target;
  }

  /** Pieces of axis-0 rows covering a selection, each at most PIECE_BYTES (or one row). */
  #pieces(r: AxisRange, gather: boolean): Piece[] {
    const rb = Math.max(1, this.#rowBytes);
    const maxRows = Math.max(1, Math.floor(PIECE_BYTES / rb));
    const out: Piece[] = [];
    if (r.step === 1 || r.count === 1) {
      for (let k = 0; k < r.count; k += maxRows) {
        const n = Math.min(maxRows, r.count - k);
        out.push({ first: r.start + k, span: n, selected: n, at: k });
      }
    } else if (gather && (r.step - 1) * rb <= GAP_BYTES) {
      const per = Math.max(1, Math.floor((maxRows - 1) / r.step) + 1);
      for (let k = 0; k < r.count; k += per) {
        const n = Math.min(per, r.count - k);
        out.push({ first: r.start + k * r.step, span: (n - 1) * r.step + 1, selected: n, at: k });
      }
    } else {
      for (let k = 0; k < r.count; k++) out.push({ first: r.start + k * r.step, span: 1, selected: 1, at: k });
    }
    return out;
  }

  /** The box of whole rows a piece reads, as copyBlock sees it. */
  #pieceBlock(p: Piece, ranges: readonly AxisRange[], shape: readonly number[]): Block {
    return {
      start: [p.first, ...shape.slice(1).map(() => 0)],
      count: [p.span, ...shape.slice(1)],
      local: [0, ...ranges.slice(1).map((r) => r.start)],
      selected: [p.selected, ...ranges.slice(1).map((r) => r.count)],
      offset: [p.at, ...shape.slice(1).map(() => 0)],
    };
  }

  *#readFully(buffer: Uint8Array, position: number): IoGen<void> {
    if (buffer.length === 0) return;
    const n = (yield { op: 'read', fd: this.fd, buffer, position }) as number;
    if (n !== buffer.length) {
      throw new CheckpointerError(`${this}: the file is truncated (${n} of ${buffer.length} bytes at ${position})`, { code: 'ERR_CHECKPOINT_CORRUPT', file: this.fileName });
    }
  }

  /** Whole-array reads (Fortran order, in memory): the array in C order, native byte order. */
  *#wholeArray(shape: readonly number[]): IoGen<TypedArray> {
    if (this.memory) return this.memory;
    const count = shapeSize(shape) * this.info.lanes;
    const arr = this.#alloc(count);
    const raw = allocateForRead('uint8', count * (this.info.itemSize / this.info.lanes)) as Uint8Array;
    yield* this.#readFully(raw, this.dataOffset);
    if (this.swap) swapInPlace(raw, this.info.itemSize / this.info.lanes);
    fortranToC(raw, bytesOf(arr), shape, this.info.itemSize);
    return arr;
  }

  *#readOps(ranges: AxisRange[], shape: readonly number[], out: TypedArray): IoGen<void> {
    const lanes = this.info.lanes;
    if (this.memory || this.fortran) {
      const all = yield* this.#wholeArray(shape);
      const block: Block = {
        start: shape.map(() => 0), count: [...shape], local: ranges.map((r) => r.start), selected: countsOf(ranges), offset: shape.map(() => 0),
      };
      copyBlock(block, all, ranges, out, lanes, true);
      return;
    }
    const outBytes = bytesOf(out);
    if (ranges.length === 0) {
      yield* this.#readFully(outBytes, this.dataOffset);
    } else {
      const rb = this.#rowBytes;
      const whole = ranges.slice(1).every((r, i) => r.start === 0 && r.step === 1 && r.count === shape[i + 1]);
      const pieces = this.#pieces(ranges[0]!, true);
      let scratch: TypedArray | null = null;
      for (const p of pieces) {
        if (whole && p.selected === p.span) {
          yield* this.#readFully(outBytes.subarray(p.at * rb, (p.at + p.selected) * rb), this.dataOffset + p.first * rb);
          continue;
        }
        const len = p.span * this.#rowLen;
        if (!scratch || scratch.length < len) scratch = this.#alloc(len);
        const box = scratch.subarray(0, len) as TypedArray;
        yield* this.#readFully(bytesOf(box), this.dataOffset + p.first * rb);
        copyBlock(this.#pieceBlock(p, ranges, shape), box, ranges, out, lanes, true);
      }
    }
    if (this.swap) swapInPlace(outBytes, this.info.itemSize / lanes);
  }

  // ------------------------------------------------------------------------------ write / resize

  *#writeSelection(ranges: AxisRange[], data: TypedArray): IoGen<void> {
    const bytes = bytesOf(data);
    if (ranges.length === 0) {
      yield { op: 'write', fd: this.fd, buffer: bytes, position: this.dataOffset };
      return;
    }
    const shape = [...this.#shape];
    shape[0] = Math.max(shape[0]!, this.fileRows);
    const rb = this.#rowBytes;
    const whole = ranges.slice(1).every((r, i) => r.start === 0 && r.count === shape[i + 1]);
    if (whole) {
      yield { op: 'write', fd: this.fd, buffer: bytes, position: this.dataOffset + ranges[0]!.start * rb };
      return;
    }
    // Part of each row: read the rows, patch them, write them back.
    let scratch: TypedArray | null = null;
    for (const p of this.#pieces(ranges[0]!, false)) {
      const len = p.span * this.#rowLen;
      if (!scratch || scratch.length < len) scratch = this.#alloc(len);
      const box = scratch.subarray(0, len) as TypedArray;
      const position = this.dataOffset + p.first * rb;
      yield* this.#readFully(bytesOf(box), position);
      copyBlock(this.#pieceBlock(p, ranges, shape), box, ranges, data, this.info.lanes, false);
      yield { op: 'write', fd: this.fd, buffer: bytesOf(box), position };
    }
  }

  #planWrite(selection: DatasetSelection, data: WriteData, options: WriteOptions | undefined): Job[] {
    this.#assertUsable();
    this.#refuse('write');
    if (!Array.isArray(selection)) throw new TypeError(`write needs a selection (an array with one entry per axis; [] for all), got ${JSON.stringify(selection)}`);
    const grow = options?.grow === true;
    const ranges = normalizeSelection(selection, this.#shape, grow ? this.#maxshape : undefined);
    if (ranges.some((r) => r.step > 1 && r.count > 1)) {
      throw unsupported(`${this}: stepped writes are not supported on ${this.label} datasets (write each run of rows, or use HDF5)`, this.fileName);
    }
    const block = this.records ? recordBlock(data, this.records, resultShape(ranges)) : blockOf(data, this.dtype as DType, resultShape(ranges));
    const jobs: Job[] = [];
    if (block.length === 0) return jobs;
    const end = ranges.length > 0 ? rangeEnd(ranges[0]!) : 0;
    if (end > this.#shape[0]!) this.checkRows(end);
    this.#planFlush(jobs);
    if (end > this.#shape[0]!) {
      jobs.push({ kind: 'extent', rows: end });
      this.#shape[0] = end;
    }
    jobs.push({ kind: 'select', ranges, data: block });
    return jobs;
  }

  write(selection: DatasetSelection, data: WriteData, options?: WriteOptions): Promise<void> {
    try {
      return this.#submitWrite(this.#planWrite(selection, data, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  writeSync(selection: DatasetSelection, data: WriteData, options?: WriteOptions): void {
    this.host.assertIdle();
    this.#lockSync('write');
    const jobs = this.#planWrite(selection, data, options);
    if (jobs.length > 0) runSync(this.#exec(jobs));
  }

  #planResize(shape: readonly number[]): Job[] {
    this.#assertUsable();
    this.#refuse('resize');
    const s = checkDims(shape, 'resize: shape', false) as number[];
    if (s.length !== this.#shape.length) throw new RangeError(`${this}: resize to ${shapeText(s)} changes the rank of shape ${shapeText(this.#shape)}`);
    if (s.some((d, i) => i > 0 && d !== this.#shape[i])) {
      throw unsupported(`${this}: ${this.label} datasets resize along axis 0 only (shape ${shapeText(this.#shape)} → ${shapeText(s)})`, this.fileName);
    }
    const max = this.#maxshape[0];
    if (max !== null && max !== undefined && s[0]! > max) throw new RangeError(`${this}: resize to ${shapeText(s)} passes maxshape ${shapeText(this.#maxshape)}`);
    this.checkRows(s[0]!);
    const jobs: Job[] = [];
    this.#planFlush(jobs);
    jobs.push({ kind: 'extent', rows: s[0]! });
    this.#shape[0] = s[0]!;
    return jobs;
  }

  resize(shape: readonly number[]): Promise<void> {
    try {
      return this.#submitWrite(this.#planResize(shape));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  resizeSync(shape: readonly number[]): void {
    this.host.assertIdle();
    this.#lockSync('resize');
    runSync(this.#exec(this.#planResize(shape)));
  }

  // ------------------------------------------------------------------------------ flush / close

  /**
   * Writes the buffered rows (from inside the checkpointer's queue), so a `get` of the key sees
   * every row appended so far; then the handle publishes its rows to the checkpoint (`published`).
   */
  *writeBuffered(): IoGen<void> {
    if (this.#closed || this.#detached || this.#broken) return;
    const jobs: Job[] = [];
    this.#planFlush(jobs);
    try {
      yield* this.#runJobs(jobs);
    } catch (err) {
      this.#fail(err);
    }
    this.published();
  }

  /** After buffered rows were written: the rows so far are what the checkpoint holds (an .npz stream's member). */
  protected published(): void {}

  #planSync(): Job[] {
    this.#assertUsable();
    const jobs: Job[] = [];
    this.#planFlush(jobs);
    if (this.refusal('append') === null && this.syncsOnFlush) jobs.push({ kind: 'sync' });
    this.#autoFlush.flushed();
    return jobs;
  }

  flush(): Promise<void> {
    try {
      const jobs = this.#planSync();
      return this.host.enqueue(async () => {
        await runAsync(this.#exec(jobs));
        if (!this.#detached) await this.persist();
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  flushSync(): void {
    this.host.assertIdle();
    const jobs = this.#planSync();
    if (jobs.length > 0) runSync(this.#exec(jobs));
    this.persistSync();
  }

  /** Marks the handle closed; what it buffered becomes the last jobs. */
  #planClose(): Job[] {
    const jobs: Job[] = [];
    if (!this.#broken) this.#planFlush(jobs);
    this.#closed = true;
    this.#buf = null;
    this.#autoFlush.flushed();
    return jobs;
  }

  *#closeOps(jobs: readonly Job[]): IoGen<void> {
    if (this.#broken) throw this.#broken;
    try {
      yield* this.#runJobs(jobs);
      yield* this.finish();
    } catch (err) {
      this.#fail(err);
    }
  }

  #end(ok: boolean): void {
    this.#detached = true;
    this.dispose(ok && !this.#broken);
  }

  close(): Promise<void> {
    if (this.#closed) return RESOLVED;
    const jobs = this.#planClose();
    return this.host.enqueue(async () => {
      if (this.#detached) return;
      let ok = false;
      try {
        await runAsync(this.#closeOps(jobs));
        ok = true;
      } finally {
        this.#end(ok);
        await this.host.release(this);
      }
    });
  }

  closeSync(): void {
    if (this.#closed) return;
    this.host.assertIdle();
    const jobs = this.#planClose();
    let ok = false;
    try {
      runSync(this.#closeOps(jobs));
      ok = true;
    } finally {
      this.#end(ok);
      this.host.releaseSync(this);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  async detach(): Promise<void> {
    if (this.#detached) return;
    const jobs = this.#planClose();
    let ok = false;
    try {
      if (!this.#broken) await runAsync(this.#closeOps(jobs));
      ok = true;
    } finally {
      this.#end(ok);
    }
  }

  detachSync(): void {
    if (this.#detached) return;
    const jobs = this.#planClose();
    let ok = false;
    try {
      if (!this.#broken) runSync(this.#closeOps(jobs));
      ok = true;
    } finally {
      this.#end(ok);
    }
  }
}

// ------------------------------------------------------------------------------------ .npy

/** What the NumPy backend gives an .npy dataset handle. */
export interface NpyDatasetIO {
  readonly fileName: string;
  /** fsync at close (the checkpointer's `durable`). */
  readonly durable: boolean;
  /** The file's header changed (created, grown): the checkpointer's own view of the .npy follows. */
  changed(header: Uint8Array, fileSize: number): void;
  /** The handle is closed (its descriptor too). */
  closed(ds: NpyDataset): void;
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '');
}

/** A `.npy` file as a dataset: slice reads by offset, appends and axis-0 resizes in place. */
export class NpyDataset extends RowDataset {
  readonly #io: NpyDatasetIO;
  readonly #descr: string;
  readonly #headerLength: number;
  readonly #major: number;
  readonly #why: string | null;

  private constructor(io: NpyDatasetIO, init: RowDatasetInit, descr: string, headerLength: number, major: number, why: string | null) {
    super(init);
    this.#io = io;
    this.#descr = descr;
    this.#headerLength = headerLength;
    this.#major = major;
    this.#why = why;
  }

  protected get label(): string {
    return 'NpyDataset';
  }

  protected refusal(_op: 'append' | 'write' | 'resize'): string | null {
    return this.#why;
  }

  #header(rows: number): Buffer | null {
    return encodeNpyHeaderFixed(this.#descr, [rows, ...this.shape.slice(1)], false, this.#headerLength, this.#major);
  }

  protected override checkRows(rows: number): void {
    if (!this.#header(rows)) {
      throw unsupported(`${this}: the .npy header has no room for ${rows} rows (written without growth padding); re-save it with numpy ≥ 1.23 or this package`, this.fileName);
    }
  }

  protected override *commitRows(rows: number): IoGen<void> {
    const header = this.#header(rows)!;
    yield { op: 'write', fd: this.fd, buffer: header, position: 0 };
    this.#io.changed(header, this.dataOffset + rows * shapeSize(this.shape.slice(1)) * this.info.itemSize);
  }

  protected override *finish(): IoGen<void> {
    if (this.#io.durable && this.#why === null) yield { op: 'sync', fd: this.fd };
  }

  protected dispose(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch { /* already closed */ }
      this.fd = -1;
    }
    this.#io.closed(this);
  }

  /** Opens the .npy file (any one-name key: the file holds one array), creating it from `options` when absent. */
  static openSync(io: NpyDatasetIO, key: readonly string[], options: DatasetOptions | null, host: DatasetHost): NpyDataset {
    const file = io.fileName;
    const shown = key.length === 1 ? key[0]! : key;
    if (key.length !== 1) throw unsupported(`${JSON.stringify(shown)}: a .npy file holds one array; nested keys need an .npz file`, file);
    const spec = options ? rowSpec(options, '.npy', file) : null;
    let fd = -1;
    let writable = true;
    try {
      try {
        fd = fs.openSync(file, 'r+');
      } catch (err) {
        if (isCode(err, 'EACCES', 'EPERM', 'EROFS') && !spec) {
          fd = fs.openSync(file, 'r');
          writable = false;
        } else if (!isCode(err, 'ENOENT')) {
          throw err;
        }
      }
      let size = fd >= 0 ? fs.fstatSync(fd).size : 0;
      if (size === 0) {
        if (!spec) throw new CheckpointerKeyError(`key ${JSON.stringify(shown)} is not in the checkpoint ${file} (the .npy file is missing or empty)`, shown, file);
        const descr = spec.records ? spec.records.descr : descrOf(spec.dtype as DType);
        const header = encodeNpyHeader(descr, spec.shape);
        const length = header.length + shapeSize(spec.shape) * elementBytes(spec);
        // Created whole (temp + rename): a crash leaves no file, or one numpy loads, never a header-less one.
        if (fd >= 0) fs.closeSync(fd);
        fd = -1;
        writeFileAtomicSync(file, (tmp) => {
          fs.writeSync(tmp, header, 0, header.length, 0);
          fs.ftruncateSync(tmp, length);
        }, { durable: io.durable });
        fd = fs.openSync(file, 'r+');
        io.changed(header, length);
        return new NpyDataset(io, {
          key, dtype: spec.dtype, records: spec.records, shape: spec.shape, maxshape: spec.maxshape, fileName: file, host, fd, dataOffset: header.length,
          autoFlush: spec.autoFlush,
        }, descr, header.length, header[6]!, null);
      }
      const probe = new Uint8Array(Math.min(size, 4096));
      fs.readSync(fd, probe, 0, probe.length, 0);
      if (probe.length < NPY_PREFIX_BYTES && probe.length < 10) throw new CheckpointerError('not a .npy array (too short)', { code: 'ERR_CHECKPOINT_CORRUPT' });
      const hlen = npyHeaderLength(probe);
      let headerBytes = probe;
      if (hlen > probe.length) {
        if (hlen > size) throw new CheckpointerError('the .npy header runs past the end of the file', { code: 'ERR_CHECKPOINT_CORRUPT' });
        headerBytes = new Uint8Array(hlen);
        fs.readSync(fd, headerBytes, 0, hlen, 0);
      }
      const h = parseNpyHeader(headerBytes);
      if (h.descr.kind !== 'numeric' && h.descr.kind !== 'record') {
        throw new CheckpointerError(`the .npy file holds ${h.descr.kind === 'string' ? 'strings' : `dtype ${h.descr.descr}`}; dataset handles hold numbers or records`, { code: 'ERR_UNSUPPORTED_DTYPE' });
      }
      // Rows appended in place are written before the header that counts them (see numpy.ts #index).
      if (h.headerLength + h.dataLength > size) size = fs.fstatSync(fd).size;
      if (h.headerLength + h.dataLength > size) {
        throw new CheckpointerError(`the data is truncated: ${size - h.headerLength} of ${h.dataLength} bytes`, { code: 'ERR_CHECKPOINT_CORRUPT' });
      }
      const records = h.descr.kind === 'record' ? recordLayoutOf(h.descr) : null;
      const dtype = h.descr.kind === 'record' ? 'records' : h.descr.dtype;
      if (spec) checkExisting(spec, dtype, h.shape, `the .npy array ${file}`, records);
      let maxshape: (number | null)[] = [null, ...h.shape.slice(1)];
      if (spec) {
        const m0 = spec.maxshape[0] ?? null;
        if (m0 !== null && m0 < h.shape[0]!) throw new RangeError(`maxshape ${shapeText(spec.maxshape)} is smaller than the stored shape ${shapeText(h.shape)}`);
        maxshape = [m0, ...h.shape.slice(1)];
      }
      if (h.shape.length === 0) maxshape = [];
      const why = !writable ? 'the file is read-only; it is opened for reading'
        : h.shape.length === 0 ? 'a 0-d array has no axis to grow'
          : h.descr.swap ? 'a byte-swapped (big-endian) .npy is read, not changed; re-save it in native order'
            : records && !records.native ? `records laid out as ${records.descr} (padding, offsets or byte order other than packed native) are read, not changed; re-save them with this package`
            : h.fortranOrder && h.shape.length > 1 ? 'a Fortran-order .npy is read, not changed; re-save it in C order' : null;
      return new NpyDataset(io, {
        key, dtype, records, shape: h.shape, maxshape, fileName: file, host, fd, dataOffset: h.headerLength,
        swap: h.descr.swap, fortran: h.fortranOrder, autoFlush: spec?.autoFlush ?? null,
      }, h.descr.descr, h.headerLength, h.version[0], why);
    } catch (err) {
      if (fd >= 0) fs.closeSync(fd);
      if (err instanceof CheckpointerError) {
        if (err.file !== undefined) throw err;
        throw new CheckpointerError(`${file}: ${err.message}`, { code: err.code, file, cause: err });
      }
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      throw fromSystemError(err, file, 'open');
    }
  }
}
