/**
 * CheckpointManager: a series of step checkpoints in one directory, as orbax's CheckpointManager
 * gives Python users — one file per step (`step_00001200.h5`), atomic saves, pruning by recency,
 * by period and by a metric, and a restore that falls back past a damaged latest step.
 *
 * A step is committed by one rename: its file is written under a temporary name in the directory
 * through a Checkpointer, closed, fsynced, then linked (or renamed) into place and the directory
 * fsynced. So a step file is complete or absent, whatever the format and whenever the process dies.
 *
 * The step's metadata travels inside its file (the reserved key `__checkpoint_manager__`, a JSON
 * string), so the file alone is the truth; a sidecar `step_….h5.meta.json` caches it, checked
 * against the step file's size and mtime, so `steps()` and `metadata(step)` open no step file.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Checkpointer } from './checkpointer';
import { fromFile } from './factory';
import { CheckpointerError, CheckpointerKeyError, fromSystemError } from './errors';
import { acquireWriteLock, LockMode, WriteLock } from './io/lock';
import { fsyncDir, fsyncPath } from './io/atomic';

export type StepFormat = 'h5' | 'npz' | 'json';

/** JSON-able metadata of a step (metrics, a config digest, ...). */
export type StepMetadata = { [key: string]: JsonValue };
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface BestBy {
  /** The metadata field to rank by, or a function of the metadata (orbax's `best_fn`). */
  metric: string | ((metadata: StepMetadata) => number | null | undefined);
  /** 'min' keeps the lowest values (a loss), 'max' the highest (an accuracy). */
  mode: 'min' | 'max';
}

export interface CheckpointManagerOptions {
  /** The step files' format (default: that of the latest step already in the directory, else 'h5'). */
  format?: StepFormat;
  /** How many of the latest steps to keep (orbax's `max_to_keep`; default Infinity: keep all). */
  keep?: number;
  /** Steps that are multiples of this are kept forever (orbax's `keep_period`). */
  keepEvery?: number;
  /** Also keep the `keep` best steps by this metric of their metadata (orbax's `best_fn`/`best_mode`). */
  bestBy?: BestBy;
  /** Anything else is passed to the step files' Checkpointer (e.g. `{ durable: false }` for JSON/npz). */
  [checkpointerOption: string]: unknown;
}

export interface SaveOptions {
  /** JSON-able; kept with the step (`metadata(step)`) and used by `bestBy`. */
  metadata?: StepMetadata;
  /** Replace the step if it exists (default false: an existing step is ERR_EXISTS). */
  overwrite?: boolean;
}

export interface RestoredStep {
  step: number;
  /** The step's keys and their values, as the format reads them back. */
  state: Record<string, unknown>;
  metadata: StepMetadata | undefined;
}

export interface SkipEvent {
  step: number;
  file: string;
  error: CheckpointerError;
}

export interface PruneEvent {
  step: number;
  file: string;
}

export interface CheckpointManagerEvents {
  /** restore() passed over a step that does not read back; it falls back to the one before. */
  skip: [SkipEvent];
  /** A step removed by the keep policy, after a newer step was committed. */
  prune: [PruneEvent];
}

/** The key under which a step file holds the manager's record of it. */
export const MANAGER_RECORD_KEY = '__checkpoint_manager__';

const FORMATS: readonly StepFormat[] = ['h5', 'npz', 'json'];
const STEP_FILE = /^step_(\d+)\.(h5|npz|json)$/;
/** Our temporary step files and every file a backend derives from their names; group 1 is the writer's pid. */
const PARTIAL_FILE = /ckpt-partial\.step_\d+\.(\d+)\.[0-9a-f]+\./;
/** writeFileAtomic's temporary sidecars: `.step_….h5.meta.json.<pid>.<hex>.tmp`. */
const PARTIAL_SIDECAR = /^\.step_\d+\.(?:h5|npz|json)\.meta\.json\.(\d+)\.[0-9a-f]+\.tmp$/;
const SIDECAR = /^(step_\d+\.(?:h5|npz|json))\.meta\.json$/;

interface ManagerRecord {
  step: number;
  metadata?: StepMetadata;
}

/** The sidecar: the record, and which version of the step file it describes. */
interface Sidecar extends ManagerRecord {
  size: number;
  mtimeNs: string;
}

function stepFileName(step: number, format: StepFormat): string {
  return `step_${String(step).padStart(8, '0')}.${format}`;
}

function checkStep(step: unknown, where: string): asserts step is number {
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(`${where}: a step is a non-negative integer, got ${typeof step === 'number' ? step : typeof step}`);
  }
}

/** Throws TypeError unless `value` is plain JSON (finite numbers, plain objects and arrays). */
function checkJson(value: unknown, where: string): void {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${where}: ${value} is not JSON (only finite numbers are)`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${where}[${i}]`));
    return;
  }
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) checkJson(v, `${where}.${k}`);
    return;
  }
  throw new TypeError(`${where}: metadata must be JSON-able (null, booleans, finite numbers, strings, arrays, plain objects)`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether process `pid` is alive (EPERM: it is, under another user). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A failure to read a step, as the CheckpointerError the 'skip' event and restore(step) report. */
function asStepError(err: unknown, file: string): CheckpointerError {
  if (err instanceof CheckpointerError) return err;
  return new CheckpointerError(`${file} does not read back: ${(err as Error)?.message ?? String(err)}`, {
    code: 'ERR_CHECKPOINT_CORRUPT', file, cause: err,
  });
}

/** The name the directory's write lock is taken on (its claim files are `.manager.<pid>.<hex>.lock`). */
const DIRECTORY_LOCK = 'manager';

export class CheckpointManager extends EventEmitter<CheckpointManagerEvents> {
  /** The directory of the step files. */
  readonly directory: string;
  readonly format: StepFormat;
  readonly keep: number;
  readonly keepEvery: number | undefined;
  readonly bestBy: BestBy | undefined;
  /** Temporary files of killed saves (and orphaned sidecars) this manager removed when it was created. */
  readonly removedStaleFiles: readonly string[];

  readonly #checkpointerOptions: Record<string, unknown>;
  /** Saves and restores run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The directory's write lock (one saving manager per directory), taken at the first save, given back at close. */
  #dirLock: WriteLock | null = null;

  constructor(directory: string, options: CheckpointManagerOptions = {}) {
    super();
    if (typeof directory !== 'string' || directory.length === 0) {
      throw new TypeError('CheckpointManager: directory must be a non-empty path string');
    }
    const { format, keep = Infinity, keepEvery, bestBy, ...checkpointerOptions } = options;
    if (format !== undefined && !FORMATS.includes(format)) {
      throw new TypeError(`CheckpointManager: format is one of ${FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    }
    if (!(keep === Infinity || (Number.isSafeInteger(keep) && keep >= 1))) {
      throw new RangeError(`CheckpointManager: keep is a positive integer or Infinity, got ${keep}`);
    }
    if (keepEvery !== undefined && !(Number.isSafeInteger(keepEvery) && keepEvery >= 1)) {
      throw new RangeError(`CheckpointManager: keepEvery is a positive integer, got ${keepEvery}`);
    }
    if (bestBy !== undefined) {
      const metricOk = typeof bestBy.metric === 'function' || (typeof bestBy.metric === 'string' && bestBy.metric.length > 0);
      if (!metricOk || (bestBy.mode !== 'min' && bestBy.mode !== 'max')) {
        throw new TypeError("CheckpointManager: bestBy is { metric: a metadata field or a function, mode: 'min' | 'max' }");
      }
    }
    if ('allowedKeys' in checkpointerOptions || 'omittedKeys' in checkpointerOptions) {
      throw new TypeError('CheckpointManager: key filters do not apply to step checkpoints (a step holds the whole state)');
    }
    this.directory = path.resolve(directory);
    this.format = format ?? this.#detectFormat() ?? 'h5';
    this.keep = keep;
    this.keepEvery = keepEvery;
    this.bestBy = bestBy;
    this.#checkpointerOptions = checkpointerOptions;
    this.removedStaleFiles = this.#removeStaleFiles();
  }

  // ---------------------------------------------------------------- listing

  /** The committed steps, ascending (a listing of the directory; no step file is opened). */
  steps(): number[] {
    const steps: number[] = [];
    for (const name of this.#listDirectory()) {
      const m = STEP_FILE.exec(name);
      if (!m || m[2] !== this.format) continue;
      const step = Number(m[1]);
      // Only the canonical name: `step_1.h5` beside `step_00000001.h5` would be a second step 1.
      if (Number.isSafeInteger(step) && name === stepFileName(step, this.format)) steps.push(step);
    }
    return steps.sort((a, b) => a - b);
  }

  /** The highest committed step, or null when there is none (it may still be damaged: restore() checks). */
  latestStep(): number | null {
    return this.steps().at(-1) ?? null;
  }

  /** The path of a step's file (whether or not it exists). */
  stepFile(step: number): string {
    checkStep(step, 'stepFile');
    return path.join(this.directory, stepFileName(step, this.format));
  }

  /**
   * The metadata `save` was given for `step` (undefined when none was). Read from the sidecar when
   * it describes the step file as it is; otherwise from the step file itself (and the sidecar is
   * rewritten). A missing step is ERR_KEY.
   */
  metadata(step: number): StepMetadata | undefined {
    checkStep(step, 'metadata');
    const file = this.stepFile(step);
    const stat = this.#statStep(file, step);
    const cached = this.#readSidecar(file, stat);
    if (cached) return cached.metadata;
    let record: ManagerRecord | undefined;
    try {
      record = fromFile(file, this.#checkpointerOptions).withSync((c) => {
        if (!c.hasSync(MANAGER_RECORD_KEY)) return undefined;
        return JSON.parse(String(c.getSync(MANAGER_RECORD_KEY))) as ManagerRecord;
      });
    } catch (err) {
      throw asStepError(err, file);
    }
    this.#writeSidecarSync(file, stat, { step, ...(record?.metadata !== undefined ? { metadata: record.metadata } : {}) });
    return record?.metadata;
  }

  // ---------------------------------------------------------------- save

  /**
   * Saves `state` (a plain object: key → value, as `Checkpointer.set` takes them) as `step`. The
   * step's file appears complete or not at all; then the keep policy prunes older steps. An
   * existing step is ERR_EXISTS unless `{ overwrite: true }`. Do not change the state's arrays
   * until the returned promise settles.
   */
  save(step: number, state: Record<string, unknown>, options: SaveOptions = {}): Promise<void> {
    checkStep(step, 'save');
    if (!isPlainObject(state)) throw new TypeError('save: state is a plain object of keys and their values');
    if (Object.hasOwn(state, MANAGER_RECORD_KEY)) {
      throw new TypeError(`save: the key ${JSON.stringify(MANAGER_RECORD_KEY)} is the manager's own`);
    }
    if (options.metadata !== undefined) {
      if (!isPlainObject(options.metadata)) throw new TypeError('save: metadata is a plain object');
      checkJson(options.metadata, 'metadata');
    }
    this.#assertOpen('save');
    const record: ManagerRecord = { step, ...(options.metadata !== undefined ? { metadata: structuredClone(options.metadata) } : {}) };
    const overwrite = options.overwrite === true;
    // Fail before writing anything when the step is plainly there; the commit checks again.
    if (!overwrite && fs.existsSync(this.stepFile(step))) return Promise.reject(this.#existsError(step));
    return this.#enqueue(async () => {
      await this.#commit(step, state, record, overwrite);
      await this.#prune();
    });
  }

  async #commit(step: number, state: Record<string, unknown>, record: ManagerRecord, overwrite: boolean): Promise<void> {
    const final = this.stepFile(step);
    await fs.promises.mkdir(this.directory, { recursive: true }).catch((err: unknown) => {
      throw fromSystemError(err, final, 'write');
    });
    // Two managers saving and pruning one directory would undo each other's steps: one at a time.
    const { lock, timeoutMs } = this.#checkpointerOptions as { lock?: LockMode; timeoutMs?: number };
    this.#dirLock ??= await acquireWriteLock(path.join(this.directory, DIRECTORY_LOCK), this, { mode: lock, timeoutMs });
    const tmp = path.join(this.directory, `.ckpt-partial.${path.basename(final, `.${this.format}`)}.${process.pid}.${randomBytes(4).toString('hex')}.${this.format}`);
    try {
      await fromFile(tmp, this.#checkpointerOptions).with(async (c) => {
        for (const [key, value] of Object.entries(state)) await c.set(key, value);
        await c.set(MANAGER_RECORD_KEY, JSON.stringify(record));
      });
      await fsyncPath(tmp);
      await this.#moveIntoPlace(tmp, final, step, overwrite);
    } catch (err) {
      await fs.promises.unlink(tmp).catch(() => undefined);
      throw fromSystemError(err, final, 'write');
    }
    await fsyncDir(this.directory);
    // The step is committed; the sidecar is a cache, rebuilt from the file if this fails.
    try {
      const stat = fs.statSync(final, { bigint: true });
      this.#writeSidecarSync(final, stat, record);
    } catch { /* metadata(step) reads the record from the step file instead */ }
  }

  /** Links `tmp` to `final` (atomic no-clobber) or, to overwrite or where links are refused, renames it. */
  async #moveIntoPlace(tmp: string, final: string, step: number, overwrite: boolean): Promise<void> {
    if (!overwrite) {
      try {
        await fs.promises.link(tmp, final);
        await fs.promises.unlink(tmp);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw this.#existsError(step);
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw err;
      }
      if (fs.existsSync(final)) throw this.#existsError(step);
    }
    await fs.promises.rename(tmp, final);
  }

  #existsError(step: number): CheckpointerError {
    const file = this.stepFile(step);
    return new CheckpointerError(`step ${step} is already saved (${file}); pass { overwrite: true } to replace it`, {
      code: 'ERR_EXISTS', file,
    });
  }

  /** Removes the steps the keep policy no longer keeps, oldest first. */
  async #prune(): Promise<void> {
    if (this.keep === Infinity) return;
    const steps = this.steps();
    const kept = new Set(steps.slice(-this.keep));
    if (this.keepEvery !== undefined) for (const s of steps) if (s % this.keepEvery === 0) kept.add(s);
    if (this.bestBy !== undefined) {
      const scored = steps
        .map((s) => [s, this.#score(s)] as const)
        .filter((e): e is readonly [number, number] => e[1] !== null);
      scored.sort((a, b) => (this.bestBy!.mode === 'min' ? a[1] - b[1] : b[1] - a[1]) || b[0] - a[0]);
      for (const [s] of scored.slice(0, this.keep)) kept.add(s);
    }
    let removed = false;
    for (const step of steps) {
      if (kept.has(step)) continue;
      const file = this.stepFile(step);
      try {
        await fs.promises.unlink(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, file, 'remove');
      }
      await fs.promises.unlink(`${file}.meta.json`).catch(() => undefined);
      removed = true;
      this.emit('prune', { step, file });
    }
    if (removed) await fsyncDir(this.directory);
  }

  /** The step's bestBy value, or null when its metadata has none (or does not read). */
  #score(step: number): number | null {
    let metadata: StepMetadata | undefined;
    try {
      metadata = this.metadata(step);
    } catch {
      return null;
    }
    if (metadata === undefined) return null;
    const metric = this.bestBy!.metric;
    const value = typeof metric === 'function' ? metric(metadata) : metadata[metric];
    return typeof value === 'number' && Number.isFinite(value) ? value : null;
  }

  // ---------------------------------------------------------------- restore

  /**
   * The state of `step`, or without one of the latest step that reads back whole (every key);
   * a damaged step is passed over with a 'skip' event. No steps at all: ERR_KEY; none reads:
   * ERR_CHECKPOINT_CORRUPT. `restore(step)` of a damaged step throws its error.
   */
  async restore(step?: number): Promise<Record<string, unknown>> {
    return (await this.restoreStep(step)).state;
  }

  /** As restore(), also saying which step was restored and its metadata. */
  restoreStep(step?: number): Promise<RestoredStep> {
    if (step !== undefined) checkStep(step, 'restore');
    this.#assertOpen('restore');
    return this.#enqueue(async () => {
      if (step !== undefined) {
        this.#statStep(this.stepFile(step), step);
        return this.#read(step);
      }
      const steps = this.steps();
      if (steps.length === 0) {
        throw new CheckpointerKeyError(`no step checkpoints (step_*.${this.format}) in ${this.directory}`, 'latest', this.directory);
      }
      let latestError: CheckpointerError | undefined;
      for (const s of steps.reverse()) {
        try {
          return await this.#read(s);
        } catch (err) {
          const error = err as CheckpointerError;
          // Not damage: the whole manager cannot read this format here.
          if (error.code === 'ERR_HDF5_UNAVAILABLE') throw error;
          latestError ??= error;
          this.emit('skip', { step: s, file: this.stepFile(s), error });
        }
      }
      throw new CheckpointerError(
        `none of the ${steps.length} steps in ${this.directory} reads back; the latest failed with: ${latestError!.message}`,
        { code: 'ERR_CHECKPOINT_CORRUPT', file: this.stepFile(steps[0]!), cause: latestError },
      );
    });
  }

  async #read(step: number): Promise<RestoredStep> {
    const file = this.stepFile(step);
    try {
      // Strict: a step restores whole or counts as damaged (a member left out would pass unnoticed).
      return await fromFile(file, { ...this.#checkpointerOptions, strict: true }).with(async (c) => {
        const keys = await c.keys();
        if (keys.length === 0) {
          throw new CheckpointerError(`${file} holds no keys: not a step checkpoint, or damaged`, { code: 'ERR_CHECKPOINT_CORRUPT', file });
        }
        const state: Record<string, unknown> = {};
        let record: ManagerRecord | undefined;
        for (const key of keys) {
          const value = await c.get(key);
          if (key === MANAGER_RECORD_KEY) record = JSON.parse(String(value)) as ManagerRecord;
          else Object.defineProperty(state, key, { value, enumerable: true, writable: true, configurable: true });
        }
        return { step, state, metadata: record?.metadata };
      });
    } catch (err) {
      throw asStepError(err, file);
    }
  }

  // ---------------------------------------------------------------- lifetime

  /** Waits for the saves and restores in flight; later saves and restores are ERR_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    this.#dirLock?.release();
    this.#dirLock = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  override toString(): string {
    return `CheckpointManager('${this.directory}', ${this.format})`;
  }

  // ---------------------------------------------------------------- internals

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new CheckpointerError(`${what}: ${this} is closed`, { code: 'ERR_CLOSED', file: this.directory });
    }
  }

  #listDirectory(): string[] {
    try {
      return fs.readdirSync(this.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromSystemError(err, this.directory, 'list');
    }
  }

  /** The format of the latest step already in the directory, if any. */
  #detectFormat(): StepFormat | undefined {
    let best: { step: number; format: StepFormat } | undefined;
    for (const name of this.#listDirectory()) {
      const m = STEP_FILE.exec(name);
      if (m && (best === undefined || Number(m[1]) > best.step)) best = { step: Number(m[1]), format: m[2] as StepFormat };
    }
    return best?.format;
  }

  /**
   * Removes what a killed save left: temporary step files and sidecars of processes no longer
   * alive (a live writer's are left alone), and sidecars whose step file is gone.
   */
  #removeStaleFiles(): string[] {
    const removed: string[] = [];
    let names: string[];
    try {
      names = this.#listDirectory();
    } catch {
      return removed;
    }
    const present = new Set(names);
    for (const name of names) {
      const partial = PARTIAL_FILE.exec(name) ?? PARTIAL_SIDECAR.exec(name);
      const orphan = SIDECAR.exec(name);
      const stale = partial ? !processAlive(Number(partial[1])) : orphan ? !present.has(orphan[1]!) : false;
      if (!stale) continue;
      try {
        fs.rmSync(path.join(this.directory, name), { force: true, recursive: true });
        removed.push(name);
      } catch { /* read-only directory: the files stay, and are ignored */ }
    }
    return removed;
  }

  #statStep(file: string, step: number): fs.BigIntStats {
    try {
      return fs.statSync(file, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CheckpointerKeyError(`step ${step} is not saved in ${this.directory}`, String(step), file);
      }
      throw fromSystemError(err, file, 'read');
    }
  }

  #readSidecar(file: string, stat: fs.BigIntStats): Sidecar | undefined {
    try {
      const sidecar = JSON.parse(fs.readFileSync(`${file}.meta.json`, 'utf8')) as Sidecar;
      if (sidecar.size === Number(stat.size) && sidecar.mtimeNs === String(stat.mtimeNs)) return sidecar;
    } catch { /* missing or unreadable: read the step file */ }
    return undefined;
  }

  /** Best effort: the sidecar only saves opening the step file. */
  #writeSidecarSync(file: string, stat: fs.BigIntStats, record: ManagerRecord): void {
    const sidecar: Sidecar = { ...record, size: Number(stat.size), mtimeNs: String(stat.mtimeNs) };
    const target = `${file}.meta.json`;
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      fs.writeFileSync(tmp, `${JSON.stringify(sidecar)}\n`, { flag: 'wx' });
      fs.renameSync(tmp, target);
    } catch {
      try { fs.unlinkSync(tmp); } catch { /* never written */ }
    }
  }
}
