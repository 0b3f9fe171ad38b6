/**
 * The Checkpointer base class: scoping (reference-counted open/close), key filters, the public
 * get/set/has/delete/keys API in async and sync forms, and the seed's hooks that each backend
 * implements (`openCheckpointFile`, `closeCheckpointFile`, `saveParameter`, `loadParameter`, ...).
 *
 * A backend implements the `...Sync` hooks; the async hooks default to them and a backend whose I/O
 * can leave the event loop (file reads/writes, the HDF5 addon) overrides them.
 */
import { inspect } from 'node:util';
import { CheckpointerError, CheckpointerKeyError } from './errors';
import { assertStorable, describeKey, Key, keyPath } from './values/model';
import type { Dataset, DatasetHost, DatasetLifecycle, DatasetOptions } from './dataset/types';

export interface CheckpointerOptions {
  /** Only these top-level keys may be read or written. */
  allowedKeys?: Iterable<string> | null;
  /** These top-level keys may not be read or written. */
  omittedKeys?: Iterable<string> | null;
}

/** What `Checkpointer.buildCanonical` accepts for a file with key filters. */
export interface CanonicalSpec {
  file: string;
  keys?: readonly string[] | { allowed_keys?: readonly string[] | null; omitted_keys?: readonly string[] | null } | null;
  opts?: Record<string, unknown>;
}

/** A concrete checkpointer class, as `fromFile` and `registerExtension` see it. */
export interface CheckpointerClass {
  new (file: string, opts?: CheckpointerOptions & Record<string, unknown>): Checkpointer;
  readonly defaultExtension: string;
  readonly name: string;
}

const NO_DEFAULT: unique symbol = Symbol('no default');

/**
 * Flushes of checkpointers that have dataset handles open: run if the process exits without
 * closing them, so frames still buffered reach the file (h5py writes each frame at once; a user
 * coming from it expects them there). Work still queued asynchronously at exit cannot finish and
 * is skipped.
 */
const flushesAtExit = new Set<() => void>();
let exitHookInstalled = false;

function trackExitFlush(flush: () => void, active: boolean): void {
  if (!active) {
    flushesAtExit.delete(flush);
    return;
  }
  flushesAtExit.add(flush);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const f of flushesAtExit) f();
    });
  }
}

export abstract class Checkpointer<Stream = unknown> {
  /** The extension this class writes by default (McUtils' `default_extension`). */
  static readonly defaultExtension: string = '';

  // Factory statics, attached by ./factory (kept there so this module imports no backend).
  declare static fromFile: (file: string, opts?: CheckpointerOptions & Record<string, unknown>) => Checkpointer;
  declare static buildCanonical: (spec: unknown) => Checkpointer;
  declare static extensionMap: () => Record<string, CheckpointerClass>;
  declare static registerExtension: (ext: string, cls: CheckpointerClass) => void;

  readonly checkpointFile: string | null;
  readonly allowedKeys: ReadonlySet<string> | null;
  readonly omittedKeys: ReadonlySet<string> | null;

  #depth = 0;
  #stream: Stream | undefined;
  /** Async operations queued or running: they run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();
  #inFlight = 0;
  /** Open dataset handles; each holds one open scope, and the last close detaches those left. */
  readonly #datasets = new Set<Dataset & DatasetLifecycle>();
  readonly #datasetHost: DatasetHost = {
    enqueue: (task) => this.#enqueue(task),
    assertIdle: () => this.#assertIdle(),
    release: async (ds) => {
      if (this.#forgetDataset(ds as Dataset & DatasetLifecycle)) await this.#exit();
    },
    releaseSync: (ds) => {
      if (this.#forgetDataset(ds as Dataset & DatasetLifecycle)) this.closeSync();
    },
  };
  readonly #flushAtExit = (): void => {
    if (this.#inFlight > 0) return;
    for (const ds of this.#datasets) {
      try {
        ds.flushSync();
      } catch {
        // Exiting: nothing is left to report the failure to.
      }
    }
  };

  constructor(checkpointFile: string | null, opts: CheckpointerOptions = {}) {
    this.checkpointFile = checkpointFile;
    this.allowedKeys = opts.allowedKeys == null ? null : new Set(opts.allowedKeys);
    this.omittedKeys = opts.omittedKeys == null ? null : new Set(opts.omittedKeys);
  }

  get isOpen(): boolean {
    return this.#depth > 0;
  }

  /** The backend's open handle or document (McUtils' `stream`); undefined while closed. */
  get stream(): Stream | undefined {
    return this.#stream;
  }

  // ---------------------------------------------------------------- the seed's hooks (backends)

  /** Opens the checkpoint file and returns the stream the other hooks work on. */
  abstract openCheckpointFileSync(file: string | null): Stream;
  /** Writes out (if needed) and closes what `openCheckpointFile` returned. */
  abstract closeCheckpointFileSync(stream: Stream): void;
  /** Stores `value` (already checked storable) under `key` in the open stream. */
  abstract saveParameterSync(key: string[], value: unknown): void;
  /** Loads `key` from the open stream; throws CheckpointerKeyError when it is absent. */
  abstract loadParameterSync(key: string[]): unknown;
  abstract hasParameterSync(key: string[]): boolean;
  /** Removes `key`; returns whether it was there. */
  abstract deleteParameterSync(key: string[]): boolean;
  /** Top-level keys of the open stream, in stored order. */
  abstract listKeysSync(): string[];

  async openCheckpointFile(file: string | null): Promise<Stream> {
    return this.openCheckpointFileSync(file);
  }
  async closeCheckpointFile(stream: Stream): Promise<void> {
    this.closeCheckpointFileSync(stream);
  }
  async saveParameter(key: string[], value: unknown): Promise<void> {
    this.saveParameterSync(key, value);
  }
  async loadParameter(key: string[]): Promise<unknown> {
    return this.loadParameterSync(key);
  }
  async hasParameter(key: string[]): Promise<boolean> {
    return this.hasParameterSync(key);
  }
  async deleteParameter(key: string[]): Promise<boolean> {
    return this.deleteParameterSync(key);
  }
  async listKeys(): Promise<string[]> {
    return this.listKeysSync();
  }

  /** Opens the dataset at `key`, or creates it from `options` (a backend with dataset handles overrides this). */
  openDatasetSync(_key: string[], _options: DatasetOptions | null, _host: DatasetHost): Dataset & DatasetLifecycle {
    throw new CheckpointerError(`${this}: this backend has no dataset handles`, {
      code: 'ERR_UNSUPPORTED_VALUE', file: this.checkpointFile ?? undefined,
    });
  }
  async openDataset(key: string[], options: DatasetOptions | null, host: DatasetHost): Promise<Dataset & DatasetLifecycle> {
    return this.openDatasetSync(key, options, host);
  }

  /** Throws CheckpointerKeyError when the key's top-level name is filtered out. */
  checkAllowedKey(key: Key): void {
    const top = keyPath(key)[0]!;
    if (!this.#allows(top)) {
      throw new CheckpointerKeyError(
        `key ${describeKey(key)} is not allowed by ${this} (allowedKeys/omittedKeys)`, key, this.checkpointFile ?? undefined,
      );
    }
  }

  #allows(top: string): boolean {
    if (this.allowedKeys && !this.allowedKeys.has(top)) return false;
    if (this.omittedKeys && this.omittedKeys.has(top)) return false;
    return true;
  }

  // ---------------------------------------------------------------- scoping

  /** Opens (or re-enters) the checkpoint; the file is opened on the first open only. */
  open(): Promise<this> {
    return this.#enqueue(async () => {
      await this.#enter();
      return this;
    });
  }

  /** Leaves one open scope; the last close writes and closes the file. */
  close(): Promise<void> {
    return this.#enqueue(() => this.#exit());
  }

  openSync(): this {
    this.#assertIdle();
    if (this.#depth === 0) this.#stream = this.openCheckpointFileSync(this.checkpointFile);
    this.#depth++;
    return this;
  }

  closeSync(): void {
    this.#assertIdle();
    if (this.#depth === 0) return;
    if (this.#depth === 1) {
      const failure = this.#detachDatasetsSync();
      this.closeCheckpointFileSync(this.#stream as Stream);
      this.#stream = undefined;
      this.#depth--;
      if (failure) throw failure.err;
      return;
    }
    this.#depth--;
  }

  /** Opens, runs `fn`, and closes — also when `fn` throws. */
  async with<T>(fn: (chk: this) => T | Promise<T>): Promise<T> {
    await this.open();
    try {
      return await fn(this);
    } finally {
      await this.close();
    }
  }

  /** Sync twin of `with`. */
  withSync<T>(fn: (chk: this) => T): T {
    this.openSync();
    try {
      return fn(this);
    } finally {
      this.closeSync();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  async #enter(): Promise<void> {
    if (this.#depth === 0) this.#stream = await this.openCheckpointFile(this.checkpointFile);
    this.#depth++;
  }

  async #exit(): Promise<void> {
    if (this.#depth === 0) return;
    if (this.#depth === 1) {
      const failure = await this.#detachDatasets();
      // If writing out fails the checkpoint stays open with its data, so the caller can retry.
      await this.closeCheckpointFile(this.#stream as Stream);
      this.#stream = undefined;
      this.#depth--;
      if (failure) throw failure.err;
      return;
    }
    this.#depth--;
  }

  #rememberDataset(ds: Dataset & DatasetLifecycle): void {
    this.#datasets.add(ds);
    trackExitFlush(this.#flushAtExit, true);
  }

  #forgetDataset(ds: Dataset & DatasetLifecycle): boolean {
    const had = this.#datasets.delete(ds);
    trackExitFlush(this.#flushAtExit, this.#datasets.size > 0);
    return had;
  }

  /** The last close: dataset handles still open write what they buffered and are closed. */
  async #detachDatasets(): Promise<{ err: unknown } | null> {
    let failure: { err: unknown } | null = null;
    for (const ds of [...this.#datasets]) {
      try {
        await ds.detach();
      } catch (err) {
        failure ??= { err };
      }
    }
    this.#datasets.clear();
    trackExitFlush(this.#flushAtExit, false);
    return failure;
  }

  #detachDatasetsSync(): { err: unknown } | null {
    let failure: { err: unknown } | null = null;
    for (const ds of [...this.#datasets]) {
      try {
        ds.detachSync();
      } catch (err) {
        failure ??= { err };
      }
    }
    this.#datasets.clear();
    trackExitFlush(this.#flushAtExit, false);
    return failure;
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    const run = this.#queue.then(task).finally(() => {
      this.#inFlight--;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Runs `task` inside an open scope, opening and closing around it when none is open. */
  #scoped<T>(task: () => Promise<T>): Promise<T> {
    return this.#enqueue(async () => {
      if (this.#depth > 0) return task();
      await this.#enter();
      try {
        return await task();
      } finally {
        await this.#exit();
      }
    });
  }

  #scopedSync<T>(task: () => T): T {
    this.#assertIdle();
    if (this.#depth > 0) return task();
    return this.withSync(task);
  }

  #assertIdle(): void {
    if (this.#inFlight > 0) {
      throw new CheckpointerError(
        `${this}: a synchronous call was made while an asynchronous operation is in flight; await it first`,
        { code: 'ERR_BUSY', file: this.checkpointFile ?? undefined },
      );
    }
  }

  // ---------------------------------------------------------------- dict-like API

  /** Loads `key`; with a default, a missing (not a filtered) key gives the default instead of throwing. */
  async get<T = unknown>(key: Key, ...fallback: [T?]): Promise<T> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    const dflt = fallback.length > 0 ? fallback[0] : NO_DEFAULT;
    return this.#scoped(async () => {
      if (dflt !== NO_DEFAULT && !(await this.hasParameter(path))) return dflt as T;
      return (await this.loadParameter(path)) as T;
    });
  }

  getSync<T = unknown>(key: Key, ...fallback: [T?]): T {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    const dflt = fallback.length > 0 ? fallback[0] : NO_DEFAULT;
    return this.#scopedSync(() => {
      if (dflt !== NO_DEFAULT && !this.hasParameterSync(path)) return dflt as T;
      return this.loadParameterSync(path) as T;
    });
  }

  async set(key: Key, value: unknown): Promise<void> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    assertStorable(value, describeKey(key));
    return this.#scoped(() => this.saveParameter(path, value));
  }

  setSync(key: Key, value: unknown): void {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    assertStorable(value, describeKey(key));
    this.#scopedSync(() => this.saveParameterSync(path, value));
  }

  /** Whether `key` is stored and allowed by the filters. */
  async has(key: Key): Promise<boolean> {
    const path = keyPath(key);
    if (!this.#allows(path[0]!)) return false;
    return this.#scoped(() => this.hasParameter(path));
  }

  hasSync(key: Key): boolean {
    const path = keyPath(key);
    if (!this.#allows(path[0]!)) return false;
    return this.#scopedSync(() => this.hasParameterSync(path));
  }

  /** Removes `key`; resolves to whether it was there. */
  async delete(key: Key): Promise<boolean> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    return this.#scoped(() => this.deleteParameter(path));
  }

  deleteSync(key: Key): boolean {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    return this.#scopedSync(() => this.deleteParameterSync(path));
  }

  /** Top-level keys in stored order, without the ones the filters hide. */
  keys(): Promise<string[]> {
    return this.#scoped(async () => (await this.listKeys()).filter((k) => this.#allows(k)));
  }

  keysSync(): string[] {
    return this.#scopedSync(() => this.listKeysSync().filter((k) => this.#allows(k)));
  }

  /** The stored value of `key`, or else `compute()`'s result, stored and returned. */
  async cachedEval<T>(key: Key, compute: () => T | Promise<T>): Promise<T> {
    if (await this.has(key)) return this.get<T>(key);
    const value = await compute();
    await this.set(key, value);
    return value;
  }

  cachedEvalSync<T>(key: Key, compute: () => T): T {
    if (this.hasSync(key)) return this.getSync<T>(key);
    const value = compute();
    this.setSync(key, value);
    return value;
  }

  // ---------------------------------------------------------------- dataset handles

  /**
   * A handle on the array dataset at `key`, for appending frames and reading and writing slices
   * (see docs/dataset.md). With `options` it is created when absent (an existing one is opened when
   * its dtype and frame shape match); with the key alone the existing one is opened. The handle holds
   * an open scope until `ds.close()`; the checkpointer's last close flushes and closes it.
   */
  async dataset(key: Key, options?: DatasetOptions): Promise<Dataset> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    return this.#enqueue(async () => {
      await this.#enter();
      try {
        const ds = await this.openDataset(path, options ?? null, this.#datasetHost);
        this.#rememberDataset(ds);
        return ds;
      } catch (err) {
        await this.#exit();
        throw err;
      }
    });
  }

  datasetSync(key: Key, options?: DatasetOptions): Dataset {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    this.openSync();
    try {
      const ds = this.openDatasetSync(path, options ?? null, this.#datasetHost);
      this.#rememberDataset(ds);
      return ds;
    } catch (err) {
      this.closeSync();
      throw err;
    }
  }

  // ---------------------------------------------------------------- display

  toString(): string {
    const file = this.checkpointFile === null ? '' : `'${this.checkpointFile}'`;
    return `${this.constructor.name}(${file})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
