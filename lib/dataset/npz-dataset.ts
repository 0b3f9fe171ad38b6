/**
 * Dataset handles on `.npz` members (see ./npy-dataset for the shared machinery).
 *
 * - `NpzMemberDataset`: an existing member opened with its key alone — read-only slice reads. A
 *   stored member (numpy.savez, this package) is read by offset inside the zip, only the rows a
 *   selection touches (no CRC-32 check: the whole member is not read). A compressed member
 *   (savez_compressed) is inflated whole when the handle opens and read from memory.
 * - `NpzStreamDataset`: `dataset(key, {dtype, shape})` — an append-only stream. Rows go to a spool
 *   file beside the checkpoint (never held in memory beyond a 1 MiB buffer) with their CRC-32
 *   computed as they are written; at the handle's close the member joins the checkpoint (get/keys
 *   see it) and the checkpointer's last close copies the spool into the new zip as a stored member
 *   (ZIP64 fields past 2 GiB - 1, as Python's zipfile) and removes it.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointerError, fromSystemError } from '../errors';
import { encodeNpyHeader, descrOf, RecordLayout } from '../formats/npy';
import { crc32, IoGen, runSync } from '../formats/zip';
import type { DType, TypedArray } from '../values/dtype';
import type { AutoFlush, DatasetHost } from './types';
import { RowDataset } from './npy-dataset';

// ------------------------------------------------------------------------------------ spools

/** A stream's rows on disk: `length` bytes, CRC-32 `crc`. Owned by the handle, then by the checkpoint. */
export interface Spool {
  readonly path: string;
  fd: number;
  length: number;
  crc: number;
}

const live = new Set<Spool>();
let exitHook = false;

/** A new spool file beside `file` (mode 0600, removed at exit if still there). */
export function createSpool(file: string): Spool {
  const path = nodePath.join(nodePath.dirname(file), `.${nodePath.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.spool`);
  let fd: number;
  try {
    fd = fs.openSync(path, 'wx+', 0o600);
  } catch (err) {
    throw fromSystemError(err, file, 'write');
  }
  const spool: Spool = { path, fd, length: 0, crc: 0 };
  live.add(spool);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const s of [...live]) removeSpool(s);
    });
  }
  return spool;
}

/** Closes and deletes a spool (idempotent). */
export function removeSpool(spool: Spool): void {
  if (spool.fd >= 0) {
    try {
      fs.closeSync(spool.fd);
    } catch { /* already closed */ }
    spool.fd = -1;
  }
  if (live.delete(spool)) {
    try {
      fs.unlinkSync(spool.path);
    } catch { /* already gone */ }
  }
}

/** Copies `length` bytes from `fd` at `position` to the end of the spool, CRC-ing them. */
export function* copyIntoSpool(spool: Spool, fd: number, position: number, length: number): IoGen<void> {
  const chunk = new Uint8Array(Math.min(length, 8 << 20));
  for (let done = 0; done < length;) {
    const part = chunk.subarray(0, Math.min(chunk.length, length - done));
    const n = (yield { op: 'read', fd, buffer: part, position: position + done }) as number;
    if (n !== part.length) throw new CheckpointerError('member data is truncated', { code: 'ERR_CHECKPOINT_CORRUPT' });
    yield { op: 'write', fd: spool.fd, buffer: part, position: spool.length };
    spool.crc = crc32(part, spool.crc);
    spool.length += part.length;
    done += part.length;
  }
}

// ------------------------------------------------------------------------------------ handles

/** What the NumPy backend gives an .npz dataset handle. */
export interface NpzDatasetIO {
  readonly fileName: string;
  /**
   * A stream's rows so far (header + spool) are the key's member: at its start, before a `get` of
   * it, and at its close; the member is written out at the checkpoint's last close.
   */
  commit(key: readonly string[], header: Buffer, spool: Spool): void;
  /** A stream that failed: the key gets back what it held before the stream began. */
  withdraw(key: readonly string[]): void;
  /** `flush()`: writes the checkpoint out now (atomically, every member), so the rows so far survive a crash. */
  persist(): Promise<void>;
  persistSync(): void;
  /** The handle is closed. */
  closed(ds: RowDataset): void;
}

export interface NpzMemberInit {
  key: readonly string[];
  dtype: DType | 'records';
  records: RecordLayout | null;
  shape: readonly number[];
  fd: number;
  dataOffset: number;
  swap: boolean;
  fortran: boolean;
  memory: TypedArray | null;
}

/** An existing member: slice reads only. */
export class NpzMemberDataset extends RowDataset {
  readonly #io: NpzDatasetIO;

  constructor(io: NpzDatasetIO, host: DatasetHost, init: NpzMemberInit) {
    super({ ...init, maxshape: [...init.shape], fileName: io.fileName, host });
    this.#io = io;
  }

  protected get label(): string {
    return 'NpzMemberDataset';
  }

  protected refusal(op: 'append' | 'write' | 'resize'): string | null {
    return `${op} is not supported on an existing .npz member (it is read-only; open it with dtype and shape to append a new version of it)`;
  }

  protected dispose(): void {
    this.#io.closed(this);
  }
}

/** A member being written from a stream of appended rows. */
export class NpzStreamDataset extends RowDataset {
  readonly #io: NpzDatasetIO;
  readonly #spool: Spool;

  /** `spool` already holds the first `shape[0]` rows (zeros, or the member it continues). */
  constructor(
    io: NpzDatasetIO, host: DatasetHost, key: readonly string[], dtype: DType | 'records', shape: readonly number[], maxshape: readonly (number | null)[], spool: Spool,
    autoFlush: AutoFlush | null = null, records: RecordLayout | null = null,
  ) {
    super({ key, dtype, records, shape, maxshape, fileName: io.fileName, host, fd: spool.fd, dataOffset: 0, autoFlush });
    this.#io = io;
    this.#spool = spool;
    this.published(); // has/keys see the key from the start
  }

  protected get label(): string {
    return 'NpzStreamDataset';
  }

  protected refusal(op: 'append' | 'write' | 'resize'): string | null {
    return op === 'append' ? null : `${op} is not supported on an .npz stream (it is append-only; use a .npy file or HDF5 to change written rows)`;
  }

  /** Appends arrive in order at the end of the spool: the CRC-32 continues over them. */
  protected override wrote(_start: number, bytes: Uint8Array): void {
    const s = this.#spool;
    s.crc = crc32(bytes, s.crc);
    s.length += bytes.length;
  }

  /** The rows in the spool (all appended rows once the buffer is written) are the key's member. */
  protected override published(): void {
    const descr = this.records ? this.records.descr : descrOf(this.dtype as DType);
    this.#io.commit(this.key, encodeNpyHeader(descr, [this.fileRows, ...this.shape.slice(1)]), this.#spool);
  }

  protected override *finish(): IoGen<void> {
    this.published();
  }

  // A zip cannot grow in place safely (its directory is at the end): a flush commits a new file
  // through the atomic writer — a kernel copy of the old one + the session's new members (the
  // spool copied) when it only added keys, else a rewrite copying the other members' bytes. O(file size).
  protected override get syncsOnFlush(): boolean {
    return false;
  }

  protected override async persist(): Promise<void> {
    this.published();
    await this.#io.persist();
  }

  protected override persistSync(): void {
    this.published();
    this.#io.persistSync();
  }

  protected dispose(ok: boolean): void {
    if (!ok) {
      this.#io.withdraw(this.key);
      removeSpool(this.#spool);
    }
    this.#io.closed(this);
  }
}

/** A spool holding `rows` zero rows (a stream created with shape[0] > 0). */
export function zeroSpool(file: string, bytes: number): Spool {
  const spool = createSpool(file);
  if (bytes > 0) {
    const zeros = new Uint8Array(Math.min(bytes, 8 << 20));
    try {
      for (let done = 0; done < bytes;) {
        const part = zeros.subarray(0, Math.min(zeros.length, bytes - done));
        runSync((function* (): IoGen<void> {
          yield { op: 'write', fd: spool.fd, buffer: part, position: done };
        })());
        spool.crc = crc32(part, spool.crc);
        done += part.length;
      }
    } catch (err) {
      removeSpool(spool);
      throw fromSystemError(err, file, 'write');
    }
    spool.length = bytes;
  }
  return spool;
}
