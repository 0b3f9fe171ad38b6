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
import { assertStorable, describeKey, Key, keyPath, stableValue } from './values/model';
import type { Dataset, DatasetHost, DatasetLifecycle, DatasetOptions } from './dataset/types';
import type { TypedArray } from './values/dtype';
import type { NDArray } from './values/ndarray';
import type { RecordArray } from './values/records';

/**
 * What an attribute can be set to: number (float64), bigint (int64/uint64), boolean, string,
 * string[], a TypedArray, an NDArray of any dtype and shape (EnumArray → an HDF5 enum), a
 * RecordArray (a compound) or a Buffer (bytes, a 0-d opaque).
 */
export type AttributeValue = number | bigint | boolean | string | readonly string[] | TypedArray | NDArray | RecordArray | Buffer;
/**
 * An attribute as read: the value with h5py's types (numbers, bigints for 64-bit integers beyond
 * 2^53, booleans, strings, string arrays, TypedArrays/NDArrays, RecordArrays, EnumArrays,
 * Buffers); null for an empty attribute; `{ unsupported }` saying what a type not read is.
 */
export type AttributeRead = unknown;
import * as fs from 'node:fs';
import { acquireWriteLock, acquireWriteLockSync, LockMode, LockOptions, removeStaleSideFiles, WriteLock } from './io/lock';

export interface CheckpointerOptions {
  /** Only these top-level keys may be read or written. */
  allowedKeys?: Iterable<string> | null;
  /** These top-level keys may not be read or written. */
  omittedKeys?: Iterable<string> | null;
  /**
   * What a write does when another writer (another process, or another Checkpointer in this one)
   * holds the file: 'fail' (default) throws ERR_LOCKED naming the holder's pid; 'wait' waits for it.
   */
  lock?: LockMode;
  /** With `lock: 'wait'`: ERR_LOCKED after waiting this many ms (default: no limit). */
  timeoutMs?: number;
  /**
   * What a read of a dict (a group) does with a member that cannot be read (a type not read, a
   * damaged object, a dangling link): false (default) leaves it out, lists it in `chk.skipped` and
   * emits a CHECKPOINTER_SKIPPED warning; true throws its error.
   */
  strict?: boolean;
}

/** A member a non-strict `get` left out of the dict it read, and why (`chk.skipped`). */
export interface SkippedMember {
  /** The key of the `get` that left it out. */
  key: string[];
  /** Where it is: its path in `file` (an external link's file when one led there). */
  path: string;
  file: string;
  error: CheckpointerError;
}

/** Members reported by a CHECKPOINTER_SKIPPED warning already (each is reported once per process). */
const warnedSkipped = new Set<string>();

/** Attribute names: non-empty strings without NUL (HDF5 names are C strings). */
function checkAttrName(name: unknown, where: string): asserts name is string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new TypeError(`${where}: attribute names are non-empty strings without NUL, got ${JSON.stringify(name)}`);
  }
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

/** Attributes as a plain object in stored order (any name, `__proto__` included, is an own property). */
function attrObject(entries: readonly [string, AttributeRead][]): Record<string, AttributeRead> {
  const out: Record<string, AttributeRead> = {};
  for (const [name, value] of entries) Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

function attrEntries(attrs: unknown, where: string): [string, AttributeValue][] {
  let entries: [unknown, unknown][];
  if (attrs instanceof Map) entries = [...attrs.entries()];
  else if (attrs !== null && typeof attrs === 'object' && !Array.isArray(attrs)) entries = Object.entries(attrs);
  else throw new TypeError(`${where}: attributes must be an object or a Map of name → value`);
  for (const [name, value] of entries) {
    checkAttrName(name, where);
    if (value === null || value === undefined) throw new TypeError(`${where}: attribute ${name} has no value (${value}); delete it with deleteAttrs`);
  }
  return entries as [string, AttributeValue][];
}

function attrNames(names: unknown, where: string): string[] {
  const list = typeof names === 'string' ? [names] : Array.isArray(names) ? [...names] : null;
  if (list === null) throw new TypeError(`${where}: names must be a string or an array of strings`);
  for (const n of list) checkAttrName(n, where);
  return list as string[];
}

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
    // First of the exit listeners: the frames are written before ./io/lock gives the locks back.
    process.prependListener('exit', () => {
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
  /** Reads of dicts throw on a member that cannot be read instead of leaving it out (see CheckpointerOptions.strict). */
  strict: boolean;
  #skipped: readonly SkippedMember[] = [];

  /** The scopes open()/with opened, innermost last, each with the dataset handles opened inside it. */
  readonly #scopes: Set<Dataset & DatasetLifecycle>[] = [];
  /** Handles opened outside any scope: each keeps the file open until its own close(). */
  readonly #own = new Set<Dataset & DatasetLifecycle>();
  #stream: Stream | undefined;
  /** Async operations queued or running: they run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();
  #inFlight = 0;
  readonly #datasetHost: DatasetHost = {
    enqueue: (task) => this.#enqueue(task),
    assertIdle: () => this.#assertIdle(),
    release: async (ds) => {
      if (this.#forgetDataset(ds as Dataset & DatasetLifecycle)) await this.#closeIfUnused();
    },
    releaseSync: (ds) => {
      if (this.#forgetDataset(ds as Dataset & DatasetLifecycle)) this.#closeIfUnusedSync();
    },
    acquireWriteLock: () => this.acquireWriteLock(),
    acquireWriteLockSync: () => this.acquireWriteLockSync(),
    holdsWriteLock: () => this.#writeLock !== null || this.checkpointFile === null,
  };
  readonly #lockOptions: LockOptions;
  /** The write lock of this session (taken before its first write, given back after its last close). */
  #writeLock: WriteLock | null = null;
  /** Something was read in this session before the lock was taken (a reload would make it stale). */
  #readUnlocked = false;
  readonly #flushAtExit = (): void => {
    if (this.#inFlight > 0) return;
    for (const ds of this.#handles()) {
      try {
        ds.flushSync();
      } catch {
        // Exiting: nothing is left to report the failure to.
      }
    }
    if (this.#stream === undefined) return;
    try {
      this.commitAtExitSync(this.#stream);
    } catch {
      // As above.
    }
  };

  constructor(checkpointFile: string | null, opts: CheckpointerOptions = {}) {
    this.checkpointFile = checkpointFile;
    this.allowedKeys = opts.allowedKeys == null ? null : new Set(opts.allowedKeys);
    this.omittedKeys = opts.omittedKeys == null ? null : new Set(opts.omittedKeys);
    if (opts.strict !== undefined && typeof opts.strict !== 'boolean') throw new TypeError(`strict must be a boolean, got ${JSON.stringify(opts.strict)}`);
    this.strict = opts.strict ?? false;
    if (opts.lock !== undefined && opts.lock !== 'fail' && opts.lock !== 'wait') {
      throw new TypeError(`lock must be 'fail' or 'wait', got ${JSON.stringify(opts.lock)}`);
    }
    if (opts.timeoutMs !== undefined && !(typeof opts.timeoutMs === 'number' && opts.timeoutMs >= 0)) {
      throw new TypeError(`timeoutMs must be a number of ms >= 0, got ${JSON.stringify(opts.timeoutMs)}`);
    }
    this.#lockOptions = { mode: opts.lock ?? 'fail', timeoutMs: opts.timeoutMs };
  }

  /** Whether the file is open: a scope (open()/with) or a dataset handle opened outside one holds it. */
  get isOpen(): boolean {
    return this.#scopes.length > 0 || this.#own.size > 0;
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

  /**
   * The process exits with the checkpoint open (`process.exit`, the end of the script): a backend
   * that holds uncommitted writes commits them, as closing would (h5py closes files at exit).
   */
  protected commitAtExitSync(_stream: Stream): void {}

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

  /** The attributes of the group or dataset at `key` (null: the root group), in stored order. */
  readAttrsSync(_key: string[] | null): [string, AttributeRead][] {
    throw this.#noAttributes();
  }
  async readAttrs(key: string[] | null): Promise<[string, AttributeRead][]> {
    return this.readAttrsSync(key);
  }
  /** Sets and deletes attributes of `key` (null: the root group) as one change. */
  writeAttrsSync(_key: string[] | null, _set: [string, AttributeValue][], _remove: string[]): void {
    throw this.#noAttributes();
  }
  async writeAttrs(key: string[] | null, set: [string, AttributeValue][], remove: string[]): Promise<void> {
    this.writeAttrsSync(key, set, remove);
  }

  #noAttributes(): CheckpointerError {
    return new CheckpointerError(`${this}: this format has no attributes (only HDF5 checkpoints do)`, {
      code: 'ERR_UNSUPPORTED_VALUE', file: this.checkpointFile ?? undefined,
    });
  }

  /**
   * Whether the file on disk differs from what `stream` was read from (another writer committed
   * since this session opened it). Called once the write lock is taken; backends that load a
   * document implement it. Default: never (the backend reads the file afresh for each write).
   */
  fileChangedSince(_stream: Stream): boolean {
    return false;
  }

  // ---------------------------------------------------------------- the write lock

  /**
   * Takes this session's write lock (idempotent in a session; see ./io/lock), from inside the
   * checkpointer's queue: set/delete, creating a dataset and the dataset handles' writes call it
   * before they write; a backend may call it too. Once taken: a file still read-only is refused
   * (ERR_NOT_WRITABLE); a file another writer changed since this session opened it is reloaded, so
   * the write lands on top of it — or, when this session already read from the old version, the
   * write is refused (ERR_CONFLICT) instead of silently undoing the other writer's update;
   * temp and spool files that killed writers left beside it are removed.
   */
  protected async acquireWriteLock(): Promise<void> {
    if (this.#writeLock || this.checkpointFile === null) return;
    const lock = await acquireWriteLock(this.checkpointFile, this, this.#lockOptions);
    try {
      if (this.#mustReload(lock)) {
        await this.closeCheckpointFile(this.#stream as Stream);
        this.#stream = await this.openCheckpointFile(this.checkpointFile);
      }
    } catch (err) {
      lock.release();
      throw err;
    }
    this.#locked(lock);
  }

  protected acquireWriteLockSync(): void {
    if (this.#writeLock || this.checkpointFile === null) return;
    const lock = acquireWriteLockSync(this.checkpointFile, this, this.#lockOptions);
    try {
      if (this.#mustReload(lock)) {
        this.closeCheckpointFileSync(this.#stream as Stream);
        this.#stream = this.openCheckpointFileSync(this.checkpointFile);
      }
    } catch (err) {
      lock.release();
      throw err;
    }
    this.#locked(lock);
  }

  /**
   * Takes the write lock now, in an open scope, before anything is read: the reads that follow see
   * the file as it stays until the last close, so a read-modify-write cannot interleave with
   * another writer's (without it, that is ERR_CONFLICT at the write).
   */
  lockForWriting(): Promise<void> {
    return this.#enqueue(async () => {
      this.#assertOpenForLock();
      await this.acquireWriteLock();
    });
  }

  lockForWritingSync(): void {
    this.#assertIdle();
    this.#assertOpenForLock();
    this.acquireWriteLockSync();
  }

  /** Whether this session holds the write lock. */
  get holdsWriteLock(): boolean {
    return this.#writeLock !== null;
  }

  #assertOpenForLock(): void {
    if (!this.isOpen) {
      throw new CheckpointerError(`${this}: lockForWriting needs an open scope (open() or with)`, {
        code: 'ERR_CLOSED', file: this.checkpointFile ?? undefined,
      });
    }
  }

  /** Checks a just-taken lock's file: whether the session's view must be reloaded (throws when it may not be). */
  #mustReload(lock: WriteLock): boolean {
    const file = this.checkpointFile as string;
    let mode: number | null = null;
    try {
      mode = fs.statSync(lock.target).mode;
    } catch { /* absent: it is created */ }
    if (mode !== null && (mode & 0o222) === 0) {
      throw new CheckpointerError(`cannot write ${file}: the file is read-only`, { code: 'ERR_NOT_WRITABLE', file });
    }
    if (this.#stream === undefined || !this.fileChangedSince(this.#stream)) return false;
    const handles = [...this.#handles()].length;
    if (this.#readUnlocked || handles > 0) {
      throw new CheckpointerError(
        `cannot write ${file}: another writer changed it after this session ${handles > 0 ? 'opened a dataset handle on' : 'read'} it; ` +
          'the write is refused so that no update is lost (close and retry, or call lockForWriting() before reading)',
        { code: 'ERR_CONFLICT', file },
      );
    }
    return true;
  }

  #locked(lock: WriteLock): void {
    this.#writeLock = lock;
    try {
      removeStaleSideFiles(this.checkpointFile as string);
    } catch { /* best effort: leftovers do not stop a write */ }
  }

  /** The session is over (its last close wrote the file): the next one reads and locks afresh. */
  #endSession(): void {
    this.#readUnlocked = false;
    const lock = this.#writeLock;
    this.#writeLock = null;
    lock?.release();
  }

  /** A read before the lock: a reload at the lock would make what it saw stale. */
  #noteRead(): void {
    if (this.#writeLock === null) this.#readUnlocked = true;
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
  //
  // A scope is what one open() (or with) opens; the file is opened by the first and closed when the
  // last scope and the last handle held outside any scope are gone. A dataset handle opened inside
  // a scope belongs to the innermost one and is flushed and closed when it closes; a handle opened
  // outside every scope keeps the file open until its own close(). Scopes nest by depth, as McUtils'
  // do: close() closes the innermost one.

  /** Opens (or re-enters) the checkpoint; the file is opened on the first open only. */
  open(): Promise<this> {
    return this.#enqueue(async () => {
      await this.#enter();
      return this;
    });
  }

  /**
   * Closes the innermost scope, and the handles opened in it; the last close writes and closes the
   * file. With no scope open, closes the handles opened outside any scope (and so the file).
   */
  close(): Promise<void> {
    return this.#enqueue(() => this.#exit());
  }

  openSync(): this {
    this.#assertIdle();
    if (!this.isOpen) {
      this.#stream = this.openCheckpointFileSync(this.checkpointFile);
      trackExitFlush(this.#flushAtExit, true);
    }
    this.#scopes.push(new Set());
    return this;
  }

  closeSync(): void {
    this.#assertIdle();
    const handles = this.#leaveScope();
    if (handles === null) return;
    const failure = this.#detachAllSync(handles);
    this.#closeIfUnusedSync();
    if (failure) throw failure.err;
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
    if (!this.isOpen) {
      this.#stream = await this.openCheckpointFile(this.checkpointFile);
      trackExitFlush(this.#flushAtExit, true);
    }
    this.#scopes.push(new Set());
  }

  async #exit(): Promise<void> {
    const handles = this.#leaveScope();
    if (handles === null) return;
    const failure = await this.#detachAll(handles);
    await this.#closeIfUnused();
    if (failure) throw failure.err;
  }

  /** Takes the innermost scope off the stack (or, with none, the handles held outside any); null when nothing is open. */
  #leaveScope(): (Dataset & DatasetLifecycle)[] | null {
    const scope = this.#scopes.pop();
    if (scope) return [...scope];
    if (this.#own.size === 0) return null;
    const handles = [...this.#own];
    this.#own.clear();
    return handles;
  }

  /** Closes the file when no scope and no handle holds it. If writing out fails, it stays open with its data (retry by closing again). */
  async #closeIfUnused(): Promise<void> {
    if (this.isOpen || this.#stream === undefined) return;
    trackExitFlush(this.#flushAtExit, false);
    try {
      await this.closeCheckpointFile(this.#stream);
    } catch (err) {
      this.#scopes.push(new Set());
      throw err;
    }
    this.#stream = undefined;
    this.#endSession();
  }

  #closeIfUnusedSync(): void {
    if (this.isOpen || this.#stream === undefined) return;
    trackExitFlush(this.#flushAtExit, false);
    try {
      this.closeCheckpointFileSync(this.#stream);
    } catch (err) {
      this.#scopes.push(new Set());
      throw err;
    }
    this.#stream = undefined;
    this.#endSession();
  }

  *#handles(): Iterable<Dataset & DatasetLifecycle> {
    yield* this.#own;
    for (const scope of this.#scopes) yield* scope;
  }

  #rememberDataset(ds: Dataset & DatasetLifecycle, scoped: boolean): void {
    (scoped ? this.#scopes[this.#scopes.length - 1]! : this.#own).add(ds);
    trackExitFlush(this.#flushAtExit, true);
  }

  /** Forgets a handle that closed itself; true when it held the file open by itself. */
  #forgetDataset(ds: Dataset & DatasetLifecycle): boolean {
    for (const scope of this.#scopes) scope.delete(ds);
    return this.#own.delete(ds);
  }

  /** Flushes and closes the handles of a scope that closed. */
  async #detachAll(handles: (Dataset & DatasetLifecycle)[]): Promise<{ err: unknown } | null> {
    let failure: { err: unknown } | null = null;
    for (const ds of handles) {
      try {
        await ds.detach();
      } catch (err) {
        failure ??= { err };
      }
    }
    return failure;
  }

  #detachAllSync(handles: (Dataset & DatasetLifecycle)[]): { err: unknown } | null {
    let failure: { err: unknown } | null = null;
    for (const ds of handles) {
      try {
        ds.detachSync();
      } catch (err) {
        failure ??= { err };
      }
    }
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
      if (this.isOpen) return task();
      await this.#enter();
      let result: T;
      try {
        result = await task();
      } catch (err) {
        // The task's failure is what the caller asked about; a failing close after it does not hide it.
        await this.#exit().catch(() => undefined);
        throw err;
      }
      await this.#exit();
      return result;
    });
  }

  #scopedSync<T>(task: () => T): T {
    this.#assertIdle();
    if (this.isOpen) return task();
    this.openSync();
    let result: T;
    try {
      result = task();
    } catch (err) {
      try {
        this.closeSync();
      } catch { /* the task's error is the one to report */ }
      throw err;
    }
    this.closeSync();
    return result;
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
      this.#noteRead();
      this.#skipped = [];
      if (dflt !== NO_DEFAULT && !(await this.hasParameter(path))) return dflt as T;
      return (await this.loadParameter(path)) as T;
    });
  }

  getSync<T = unknown>(key: Key, ...fallback: [T?]): T {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    const dflt = fallback.length > 0 ? fallback[0] : NO_DEFAULT;
    return this.#scopedSync(() => {
      this.#noteRead();
      this.#skipped = [];
      if (dflt !== NO_DEFAULT && !this.hasParameterSync(path)) return dflt as T;
      return this.loadParameterSync(path) as T;
    });
  }

  /**
   * The members the last `get` left out of the dicts it read because they cannot be read (empty
   * when it left out nothing; with `strict` the first one's error is thrown instead).
   */
  get skipped(): readonly SkippedMember[] {
    return this.#skipped;
  }

  /**
   * A backend's non-strict read left members out: kept for `skipped`, and reported by a
   * CHECKPOINTER_SKIPPED warning (once per member and process, so a loop of reads warns once).
   */
  protected noteSkipped(key: string[], members: readonly { path: string; file: string; error: CheckpointerError }[]): void {
    if (members.length === 0) return;
    this.#skipped = members.map((m) => ({ key: [...key], path: m.path, file: m.file, error: m.error }));
    const fresh = members.filter((m) => {
      const id = `${m.file}\0${m.path}`;
      if (warnedSkipped.has(id)) return false;
      warnedSkipped.add(id);
      return true;
    });
    if (fresh.length === 0) return;
    const list = fresh.slice(0, 5).map((m) => `${m.path} (${m.error.code}: ${m.error.message})`).join('; ');
    process.emitWarning(
      `${this}: get(${describeKey(key.length === 1 ? key[0]! : key)}) left out ${members.length} member(s) that cannot be read: ${list}`
      + `${fresh.length > 5 ? `; and ${fresh.length - 5} more` : ''}. chk.skipped lists them; { strict: true } throws instead`,
      { code: 'CHECKPOINTER_SKIPPED' },
    );
  }

  // ---------------------------------------------------------------- attributes

  /**
   * The attributes of the group or dataset at `key` — the root group without a key — as a plain
   * object in stored order, with h5py's types (AttributeRead: numbers, bigints for 64-bit integers,
   * booleans, strings, string arrays, TypedArrays/NDArrays, RecordArrays, EnumArrays, Buffers;
   * null for an empty attribute, `{ unsupported }` for a type not read). A snapshot: change attributes with setAttrs/deleteAttrs. HDF5 checkpoints only.
   */
  async attrs(key?: Key | null): Promise<Record<string, AttributeRead>> {
    const path = this.#attrKey(key);
    return this.#scoped(async () => {
      this.#noteRead();
      return attrObject(await this.readAttrs(path));
    });
  }

  attrsSync(key?: Key | null): Record<string, AttributeRead> {
    const path = this.#attrKey(key);
    return this.#scopedSync(() => {
      this.#noteRead();
      return attrObject(this.readAttrsSync(path));
    });
  }

  /**
   * Sets attributes of `key` (null or undefined: the root group) from an object or Map of name →
   * value (AttributeValue: number → float64, bigint → int64/uint64, boolean, string, string[],
   * TypedArray, NDArray, EnumArray, RecordArray, Buffer), adding
   * or replacing each. Every name and value is checked before anything is written, and all of
   * them are written as one change: a failure leaves the old attributes.
   */
  async setAttrs(key: Key | null | undefined, attrs: Record<string, AttributeValue> | Map<string, AttributeValue>): Promise<void> {
    const path = this.#attrKey(key);
    const set = attrEntries(attrs, 'setAttrs');
    return this.#scoped(async () => {
      await this.acquireWriteLock();
      await this.writeAttrs(path, set, []);
    });
  }

  setAttrsSync(key: Key | null | undefined, attrs: Record<string, AttributeValue> | Map<string, AttributeValue>): void {
    const path = this.#attrKey(key);
    const set = attrEntries(attrs, 'setAttrsSync');
    this.#scopedSync(() => {
      this.acquireWriteLockSync();
      this.writeAttrsSync(path, set, []);
    });
  }

  /** Deletes attributes of `key` (null or undefined: the root group); a name that is not there is CheckpointerKeyError and nothing is deleted. */
  async deleteAttrs(key: Key | null | undefined, names: string | readonly string[]): Promise<void> {
    const path = this.#attrKey(key);
    const list = attrNames(names, 'deleteAttrs');
    return this.#scoped(async () => {
      await this.acquireWriteLock();
      await this.writeAttrs(path, [], list);
    });
  }

  deleteAttrsSync(key: Key | null | undefined, names: string | readonly string[]): void {
    const path = this.#attrKey(key);
    const list = attrNames(names, 'deleteAttrsSync');
    this.#scopedSync(() => {
      this.acquireWriteLockSync();
      this.writeAttrsSync(path, [], list);
    });
  }

  #attrKey(key: Key | null | undefined): string[] | null {
    if (key === null || key === undefined) return null;
    this.checkAllowedKey(key);
    return keyPath(key);
  }

  async set(key: Key, value: unknown): Promise<void> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    assertStorable(value, describeKey(key));
    // It runs later (queued): what is stored is the value as it is at this call.
    const stable = stableValue(value);
    return this.#scoped(async () => {
      // Held already after a session's first write: no await (each costs microtask turns per set).
      if (!this.#writeLock) await this.acquireWriteLock();
      await this.saveParameter(path, stable);
    });
  }

  setSync(key: Key, value: unknown): void {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    assertStorable(value, describeKey(key));
    this.#scopedSync(() => {
      this.acquireWriteLockSync();
      this.saveParameterSync(path, value);
    });
  }

  /** Whether `key` is stored and allowed by the filters. */
  async has(key: Key): Promise<boolean> {
    const path = keyPath(key);
    if (!this.#allows(path[0]!)) return false;
    return this.#scoped(() => {
      this.#noteRead();
      return this.hasParameter(path);
    });
  }

  hasSync(key: Key): boolean {
    const path = keyPath(key);
    if (!this.#allows(path[0]!)) return false;
    return this.#scopedSync(() => {
      this.#noteRead();
      return this.hasParameterSync(path);
    });
  }

  /** Removes `key`; resolves to whether it was there. */
  async delete(key: Key): Promise<boolean> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    return this.#scoped(async () => {
      await this.acquireWriteLock();
      return this.deleteParameter(path);
    });
  }

  deleteSync(key: Key): boolean {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    return this.#scopedSync(() => {
      this.acquireWriteLockSync();
      return this.deleteParameterSync(path);
    });
  }

  /** Top-level keys in stored order, without the ones the filters hide. */
  keys(): Promise<string[]> {
    return this.#scoped(async () => {
      this.#noteRead();
      return (await this.listKeys()).filter((k) => this.#allows(k));
    });
  }

  keysSync(): string[] {
    return this.#scopedSync(() => {
      this.#noteRead();
      return this.listKeysSync().filter((k) => this.#allows(k));
    });
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
   * its dtype and frame shape match); with the key alone the existing one is opened. Opened inside
   * a scope, the handle is flushed and closed when that scope closes; opened outside any, it keeps
   * the file open until `ds.close()`. Handles on one dataset share its state.
   */
  async dataset(key: Key, options?: DatasetOptions): Promise<Dataset> {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    return this.#enqueue(async () => {
      const scoped = this.#scopes.length > 0;
      const opened = !this.isOpen;
      if (opened) this.#stream = await this.openCheckpointFile(this.checkpointFile);
      try {
        // Options may create the dataset: a write, so the lock comes first.
        if (options) await this.acquireWriteLock();
        else this.#noteRead();
        const ds = await this.openDataset(path, options ?? null, this.#datasetHost);
        this.#rememberDataset(ds, scoped);
        return ds;
      } catch (err) {
        if (opened) await this.#closeIfUnused();
        throw err;
      }
    });
  }

  datasetSync(key: Key, options?: DatasetOptions): Dataset {
    const path = keyPath(key);
    this.checkAllowedKey(key);
    this.#assertIdle();
    const scoped = this.#scopes.length > 0;
    const opened = !this.isOpen;
    if (opened) this.#stream = this.openCheckpointFileSync(this.checkpointFile);
    try {
      if (options) this.acquireWriteLockSync();
      else this.#noteRead();
      const ds = this.openDatasetSync(path, options ?? null, this.#datasetHost);
      this.#rememberDataset(ds, scoped);
      return ds;
    } catch (err) {
      if (opened) this.#closeIfUnusedSync();
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
