/**
 * HDF5Checkpointer: `.hdf5`/`.h5` checkpoints through the native addon, in McUtils' layout
 * (see ./hdf5-layout). The file is opened read-only on open and reopened read-write on the first
 * write, so reading never changes it and a missing file is not created by reads. Large arrays move
 * between TypedArrays and the file off the event loop in the async API.
 */
import * as fs from 'node:fs';
import { Checkpointer, CheckpointerOptions } from '../checkpointer';
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import { loadNative } from '../native';
import type { H5File } from '../native';
import { LayoutReader, LayoutWriter, toH5Path } from './hdf5-layout';
import { HDF5Dataset, HDF5DatasetIO } from '../dataset/hdf5-dataset';
import type { DatasetHost, DatasetOptions } from '../dataset/types';

/** Transfers below this many bytes run on the calling thread: a thread hop costs more than they do. */
const SMALL_TRANSFER = 64 * 1024;

/** The open checkpoint: the file handle (null while the file does not exist) and its mode. */
export interface HDF5Stream {
  file: H5File | null;
  writable: boolean;
}

export class HDF5Checkpointer extends Checkpointer<HDF5Stream> {
  static override readonly defaultExtension: string = '.hdf5';

  constructor(file: string, opts: CheckpointerOptions = {}) {
    super(file, opts);
  }

  get #path(): string {
    return this.checkpointFile as string;
  }

  #s(): HDF5Stream {
    return this.stream as HDF5Stream;
  }

  // ------------------------------------------------------------------ open / close

  openCheckpointFileSync(): HDF5Stream {
    const native = loadNative();
    if (!fs.existsSync(this.#path)) return { file: null, writable: false };
    return { file: native.H5File.openSync(this.#path, 'r'), writable: false };
  }

  override async openCheckpointFile(): Promise<HDF5Stream> {
    const native = loadNative();
    if (!fs.existsSync(this.#path)) return { file: null, writable: false };
    return { file: await native.H5File.open(this.#path, 'r'), writable: false };
  }

  closeCheckpointFileSync(s: HDF5Stream): void {
    s.file?.closeSync();
    s.file = null;
  }

  override async closeCheckpointFile(s: HDF5Stream): Promise<void> {
    await s.file?.close();
    s.file = null;
  }

  /** Refuses to write a file without write bits (root could, but the user marked it read-only). */
  #assertWritable(): void {
    let mode: number;
    try {
      mode = fs.statSync(this.#path).mode;
    } catch {
      return;
    }
    if ((mode & 0o222) === 0) {
      throw new CheckpointerError(`cannot write ${this.#path}: the file is read-only`, { code: 'ERR_NOT_WRITABLE', file: this.#path });
    }
  }

  /** The file, reopened (or created) read-write for a write. */
  #writableSync(): H5File {
    const s = this.#s();
    if (s.file && s.writable) return s.file;
    this.#assertWritable();
    const native = loadNative();
    if (s.file) {
      s.file.closeSync();
      s.file = null;
    }
    const exists = fs.existsSync(this.#path);
    try {
      s.file = native.H5File.openSync(this.#path, exists ? 'r+' : 'x');
    } catch (err) {
      // Keep reading what is there (e.g. the file is locked for writing by someone else).
      if (exists) {
        try {
          s.file = native.H5File.openSync(this.#path, 'r');
        } catch { /* the first error says why */ }
      }
      throw err;
    }
    s.writable = true;
    return s.file;
  }

  async #writable(): Promise<H5File> {
    const s = this.#s();
    if (s.file && s.writable) return s.file;
    this.#assertWritable();
    const native = loadNative();
    if (s.file) {
      await s.file.close();
      s.file = null;
    }
    const exists = fs.existsSync(this.#path);
    try {
      s.file = await native.H5File.open(this.#path, exists ? 'r+' : 'x');
    } catch (err) {
      if (exists) s.file = await native.H5File.open(this.#path, 'r').catch(() => null);
      throw err;
    }
    s.writable = true;
    return s.file;
  }

  // ------------------------------------------------------------------ parameters

  /** Creates missing parent groups of a key path. */
  #parents(file: H5File, key: readonly string[]): void {
    for (let i = 1; i < key.length; i++) {
      const p = toH5Path(key.slice(0, i));
      const kind = file.kind(p);
      if (kind === null) file.createGroup(p);
      else if (kind !== 'group') {
        throw new CheckpointerKeyError(
          `key ${JSON.stringify(key)}: ${JSON.stringify(key.slice(0, i))} holds a value that is not a dict`, key, this.#path,
        );
      }
    }
  }

  saveParameterSync(key: string[], value: unknown): void {
    const path = toH5Path(key);
    const file = this.#writableSync();
    this.#parents(file, key);
    const writer = new LayoutWriter(file);
    writer.write(path, value);
    for (const job of writer.jobs) file.writeSync(job.path, job.data);
  }

  override async saveParameter(key: string[], value: unknown): Promise<void> {
    const path = toH5Path(key);
    const file = await this.#writable();
    this.#parents(file, key);
    const writer = new LayoutWriter(file);
    writer.write(path, value);
    for (const job of writer.jobs) {
      if (job.data.byteLength < SMALL_TRANSFER) file.writeSync(job.path, job.data);
      else await file.write(job.path, job.data);
    }
  }

  #reader(key: string[]): { reader: LayoutReader; value: unknown } | null {
    const file = this.#s().file;
    if (!file) return null;
    const reader = new LayoutReader(file);
    return { reader, value: reader.load(key) };
  }

  loadParameterSync(key: string[]): unknown {
    const r = this.#reader(key) ?? this.#missing(key);
    for (const job of r.reader.jobs) this.#s().file!.readSync(job.path, job.data);
    r.reader.settleScalars();
    return r.reader.finish(r.value);
  }

  override async loadParameter(key: string[]): Promise<unknown> {
    const r = this.#reader(key) ?? this.#missing(key);
    for (const job of r.reader.jobs) {
      if (job.data.byteLength < SMALL_TRANSFER) this.#s().file!.readSync(job.path, job.data);
      else await this.#s().file!.read(job.path, job.data);
    }
    r.reader.settleScalars();
    return r.reader.finish(r.value);
  }

  #missing(key: string[]): never {
    throw CheckpointerKeyError.missing(key, this.#path);
  }

  hasParameterSync(key: string[]): boolean {
    const file = this.#s().file;
    if (!file) return false;
    // Walk down so a missing parent is "absent", not an HDF5 error.
    for (let i = 1; i <= key.length; i++) {
      const kind = file.kind(toH5Path(key.slice(0, i)));
      if (kind === null || (i < key.length && kind !== 'group')) return false;
    }
    return true;
  }

  deleteParameterSync(key: string[]): boolean {
    if (!this.hasParameterSync(key)) return false;
    this.#writableSync().delete(toH5Path(key));
    return true;
  }

  override async deleteParameter(key: string[]): Promise<boolean> {
    if (!this.hasParameterSync(key)) return false;
    (await this.#writable()).delete(toH5Path(key));
    return true;
  }

  listKeysSync(): string[] {
    return this.#s().file?.list('/') ?? [];
  }

  // ------------------------------------------------------------------ dataset handles

  #datasetIO(): HDF5DatasetIO {
    return {
      fileName: this.#path,
      file: () => (this.stream as HDF5Stream | undefined)?.file ?? null,
      writable: () => this.#writable(),
      writableSync: () => this.#writableSync(),
      parents: (file, key) => this.#parents(file, key),
    };
  }

  override openDatasetSync(key: string[], options: DatasetOptions | null, host: DatasetHost): HDF5Dataset {
    return HDF5Dataset.openSync(this.#datasetIO(), key, options, host);
  }

  override openDataset(key: string[], options: DatasetOptions | null, host: DatasetHost): Promise<HDF5Dataset> {
    return HDF5Dataset.open(this.#datasetIO(), key, options, host);
  }
}
