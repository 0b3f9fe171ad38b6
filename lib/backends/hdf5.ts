/**
 * HDF5Checkpointer: `.hdf5`/`.h5` checkpoints through the native addon, in McUtils' layout
 * (./hdf5-layout). The file is opened read-only on open and reopened read-write on the first
 * write, so reading never changes it and a missing file is not created by reads.
 *
 * Validate, then mutate: a `set` checks every name and value first (../values/names, planValue),
 * then writes the new value under a temporary link beside the key and swaps it in with H5Lmove, all
 * in one batch; if anything fails the batch is undone, so the key keeps its previous value
 * bit-identical. (A rewritten key therefore moves to the end of the file's creation order, and the
 * space its old value held is reused by later writes: files track free space across sessions.)
 *
 * Commits (./hdf5-shadow): by default a session's writes go into a shadow copy of the file, which
 * replaces the file when the session commits — at the last close, or when a dataset handle is
 * flushed — so a crash at any moment leaves the last commit intact. `inPlace: true` writes the
 * file itself (no copy; a crash inside a write can damage it).
 *
 * Every HDF5 call runs through ./hdf5-calls: the sync API on the calling thread, the async API on
 * the addon's HDF5 thread, from one generator per operation.
 */
import * as fs from 'node:fs';
import { Checkpointer, CheckpointerOptions } from '../checkpointer';
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import type { FileOp, H5File, LookupKind, WalkNode } from '../native';
import { describeKey } from '../values/model';
import { checkKeyNames, RESERVED_PREFIX } from '../values/names';
import { closeFile, exec, flushFile, H5Gen, openFile, runAsync, runSync, writeFailure } from './hdf5-calls';
import { beginShadow, commitShadow, discardShadow } from './hdf5-shadow';
import { fileStampSync } from '../io/atomic';
import { createOps, isReserved, joinPath, LayoutReader, PlannedNode, planValue, toH5Path, walkOp } from './hdf5-layout';
import { HDF5Dataset, HDF5DatasetCore, HDF5DatasetIO } from '../dataset/hdf5-dataset';
import type { DatasetHost, DatasetOptions } from '../dataset/types';

export interface HDF5CheckpointerOptions extends CheckpointerOptions {
  /**
   * Write the file itself instead of a shadow copy that replaces it at commit (default false).
   * Faster for a session that changes a large file (no copy of it) and for frequent dataset
   * flushes, but a process killed inside a write or a close can leave keys torn or the file
   * unreadable, as h5py writing in place does.
   */
  inPlace?: boolean;
  /** fsync the file and its directory at each commit, so a power cut keeps it too (default true). */
  durable?: boolean;
  /**
   * Open a file whose writer died with it open (HDF5's status flags still set, as `h5clear -s`
   * clears them): the flags are cleared in the session's shadow, which replaces the file at the
   * commit. Without it such a file is ERR_CHECKPOINT_CORRUPT, saying so.
   */
  recover?: boolean;
}

/** The open checkpoint: the file handle (null while the file does not exist), and its open datasets. */
export interface HDF5Stream {
  file: H5File | null;
  writable: boolean;
  /** The shadow file the session writes (null: nothing written yet, or writing in place). */
  shadow: string | null;
  /** The file's version when the session opened it (fileStampSync), to notice another writer's commit. */
  stamp: string | null;
  /** Dataset cores by path: one per dataset, shared by its handles. */
  datasets: Map<string, HDF5DatasetCore>;
}

/** Distinguishes the temporary links of one process's writes. */
let pendingCounter = 0;
/** What a set's metadata may need beyond its data (groups, headers, free-space records). */
const RESERVE_METADATA = 1 << 20;

/** Whether `file` exists with content (an empty file is no checkpoint: treated as absent). */
function hasContent(file: string): boolean {
  try {
    return fs.statSync(file).size > 0;
  } catch {
    return false;
  }
}

/** The open failed because the file's writer died with it open (HDF5's status flags). */
function isWriterDied(err: unknown): boolean {
  return err instanceof CheckpointerError && err.code === 'ERR_CHECKPOINT_CORRUPT' && /died without closing/.test(err.message);
}

function dataBytes(ops: readonly FileOp[]): number {
  let n = 0;
  for (const op of ops) {
    if (op.op === 'createDataset' && op.data) n += op.data.byteLength;
    else if (op.op === 'createBytes') n += op.bytes.byteLength;
    else if (op.op === 'createStrings') for (const s of op.strings) n += s.length * 3 + 16;
  }
  return n;
}

export class HDF5Checkpointer extends Checkpointer<HDF5Stream> {
  static override readonly defaultExtension: string = '.hdf5';

  readonly inPlace: boolean;
  readonly durable: boolean;
  readonly recover: boolean;

  constructor(file: string, opts: HDF5CheckpointerOptions = {}) {
    super(file, opts);
    this.inPlace = opts.inPlace ?? false;
    this.durable = opts.durable ?? true;
    this.recover = opts.recover ?? false;
  }

  get #path(): string {
    return this.checkpointFile as string;
  }

  #s(): HDF5Stream {
    return this.stream as HDF5Stream;
  }

  // ------------------------------------------------------------------ open / close

  *#open(): H5Gen<HDF5Stream> {
    // The stamp is taken before the open: a commit in between looks like a change (a harmless reload), never the reverse.
    const s: HDF5Stream = { file: null, writable: false, shadow: null, stamp: fileStampSync(this.#path), datasets: new Map() };
    if (!hasContent(this.#path)) return s;
    try {
      s.file = yield* openFile(this.#path, 'r');
    } catch (err) {
      if (!this.recover || !isWriterDied(err)) throw err;
      yield* this.#recoverInto(s);
    }
    return s;
  }

  /** The file's writer died with it open: the session continues in a shadow with the flags cleared. */
  *#recoverInto(s: HDF5Stream): H5Gen<void> {
    // Recovering writes the file: one writer at a time (an explicit, rare call: the sync lock is
    // fine here); the lock also refuses a read-only file.
    this.acquireWriteLockSync();
    yield* this.#openShadow(s, true);
  }

  openCheckpointFileSync(): HDF5Stream {
    return runSync(this.#open());
  }

  override openCheckpointFile(): Promise<HDF5Stream> {
    return runAsync(this.#open());
  }

  *#close(s: HDF5Stream): H5Gen<void> {
    s.datasets.clear();
    yield* this.#commit(s, false);
  }

  /**
   * Commits what the session wrote: the file is closed (HDF5 writes out all it holds) and, with a
   * shadow, the shadow replaces the checkpoint. `reopen` opens the committed file again for
   * reading (a dataset flush: the session goes on; its next write starts a new shadow). A failed
   * commit loses the session's changes, never the last commit: the shadow is removed.
   */
  *#commit(s: HDF5Stream, reopen: boolean): H5Gen<void> {
    const file = s.file;
    const shadow = s.shadow;
    s.file = null;
    s.shadow = null;
    s.writable = false;
    if (!file) return;
    if (!shadow && reopen) {
      // Reading, or writing in place: nothing to swap.
      s.file = file;
      s.writable = file.writable;
      if (file.writable) yield* flushFile(file);
      return;
    }
    try {
      yield* closeFile(file);
      if (shadow) yield* commitShadow(shadow, this.#path, this.durable);
    } catch (err) {
      if (shadow) discardShadow(shadow);
      throw writeFailure(err, this.#path, shadow ? 'commit (the changes since the last commit are lost; the file keeps its last commit)' : 'close');
    }
    if (reopen) s.file = yield* openFile(this.#path, 'r');
  }

  override fileChangedSince(s: HDF5Stream): boolean {
    return fileStampSync(this.#path) !== s.stamp;
  }

  protected override commitAtExitSync(s: HDF5Stream): void {
    if (s.shadow) runSync(this.#commit(s, false));
  }

  closeCheckpointFileSync(s: HDF5Stream): void {
    runSync(this.#close(s));
  }

  override closeCheckpointFile(s: HDF5Stream): Promise<void> {
    return runAsync(this.#close(s));
  }

  /**
   * The file, reopened (or created) read-write for a write: the session's shadow, unless writing in
   * place. Every write takes the session's write lock first, which refuses a read-only file.
   */
  *#writable(): H5Gen<H5File> {
    const s = this.#s();
    if (s.file && s.writable) return s.file;
    if (!this.inPlace) return yield* this.#openShadow(s);
    if (s.file) {
      yield* closeFile(s.file);
      s.file = null;
    }
    const exists = fs.existsSync(this.#path);
    try {
      s.file = yield* openFile(this.#path, exists ? 'r+' : 'x');
    } catch (err) {
      // Keep reading what is there (e.g. the file is locked for writing by someone else).
      if (exists) {
        try {
          s.file = yield* openFile(this.#path, 'r');
        } catch { /* the first error says why */ }
      }
      throw err;
    }
    s.writable = true;
    return s.file;
  }

  /**
   * The session's first write: a shadow copy of the file (or a new file) is opened read-write —
   * with `recover`, clearing the status flags a writer that died left in it.
   */
  *#openShadow(s: HDF5Stream, recover = false): H5Gen<H5File> {
    const { shadow, copied } = yield* beginShadow(this.#path);
    let file: H5File;
    try {
      file = yield* openFile(shadow, recover ? 'recover' : copied ? 'r+' : 'x');
    } catch (err) {
      discardShadow(shadow);
      throw err;
    }
    if (s.file) {
      try {
        yield* closeFile(s.file);
      } catch { /* a read-only handle: nothing of it to lose */ }
    }
    s.file = file;
    s.shadow = shadow;
    s.writable = true;
    return file;
  }

  // ------------------------------------------------------------------ lookups

  /** The kind of each prefix of `key` that exists, down to the first missing one or non-group. */
  *#lookup(key: readonly string[]): H5Gen<LookupKind[]> {
    const file = this.#s().file;
    if (!file || key.some(isReserved)) return [];
    const [kinds] = yield* exec(file, [{ op: 'lookup', path: toH5Path(key) }]);
    return kinds as LookupKind[];
  }

  /** What `key` names (null when absent); CheckpointerKeyError when a parent holds a non-dict. */
  *#kindOf(key: readonly string[]): H5Gen<LookupKind | null> {
    const kinds = yield* this.#lookup(key);
    this.#checkParents(key, kinds);
    return kinds.length === key.length ? kinds[key.length - 1]! : null;
  }

  #checkParents(key: readonly string[], kinds: readonly LookupKind[]): void {
    for (let i = 0; i < Math.min(kinds.length, key.length - 1); i++) {
      if (kinds[i] !== 'group') {
        throw new CheckpointerKeyError(`key ${describeKey(key)}: ${describeKey(key.slice(0, i + 1))} holds a value that is not a dict`, key, this.#path);
      }
    }
  }

  /** set/delete would replace a dataset that handles are open on: refused, the handles keep working. */
  #assertNoHandles(key: readonly string[], what: string): void {
    const p = toH5Path(key);
    for (const core of this.#s().datasets.values()) {
      if (core.path === p || core.path.startsWith(`${p}/`)) {
        throw new CheckpointerError(`cannot ${what} key ${describeKey(key)} of ${this.#path}: a dataset handle is open on ${core.path}; close it first`, {
          code: 'ERR_BUSY', file: this.#path,
        });
      }
    }
  }

  /** Buffered frames of datasets at or under `key` are written before it is read. */
  *#writeBuffered(key: readonly string[]): H5Gen<void> {
    const p = toH5Path(key);
    for (const core of this.#s().datasets.values()) {
      if (core.path === p || core.path.startsWith(`${p}/`)) yield* core.writeBuffered();
    }
  }

  // ------------------------------------------------------------------ parameters

  /**
   * Puts `node` at `key`: created under a temporary link next to the highest level that does not
   * exist yet (or next to the key itself), then moved into place — replacing what was there — in
   * one batch. A failure undoes what the batch did, so the key keeps its previous value.
   */
  *#place(key: readonly string[], node: PlannedNode): H5Gen<void> {
    const file = yield* this.#writable();
    const kinds = yield* this.#lookup(key);
    this.#checkParents(key, kinds);
    const base = Math.min(kinds.length, key.length - 1);
    let tree = node;
    for (let i = key.length - 1; i > base; i--) tree = { kind: 'group', children: [[key[i]!, tree]] };
    const target = toH5Path(key.slice(0, base + 1));
    const parent = base === 0 ? '/' : toH5Path(key.slice(0, base));
    const n = pendingCounter++;
    const fresh = joinPath(parent, `${RESERVED_PREFIX}new-${process.pid}-${n}`);
    const old = joinPath(parent, `${RESERVED_PREFIX}old-${process.pid}-${n}`);
    const replacing = kinds.length > base;
    const ops = createOps(fresh, tree);
    // A value that does not fit on the disk is refused before anything changes (op 0 creates nothing).
    ops.unshift({ op: 'reserve', path: '/', bytes: dataBytes(ops) + RESERVE_METADATA });
    const swap = ops.length;
    if (replacing) ops.push({ op: 'move', path: target, to: old });
    ops.push({ op: 'move', path: fresh, to: target });
    if (replacing) ops.push({ op: 'delete', path: old });
    try {
      yield* exec(file, ops);
    } catch (err) {
      yield* this.#undo(file, err, { swap, replacing, fresh, old, target });
      throw writeFailure(err, this.#path, `write key ${describeKey(key.length === 1 ? key[0] : key)}`);
    }
  }

  /** Undoes a failed #place batch, as far as it got (best effort: the first error is what the caller sees). */
  *#undo(file: H5File, err: unknown, at: { swap: number; replacing: boolean; fresh: string; old: string; target: string }): H5Gen<void> {
    const failed = (err as { opIndex?: unknown }).opIndex;
    if (typeof failed !== 'number') return;
    const undo: FileOp[] = [];
    const moveIn = at.replacing ? at.swap + 1 : at.swap;
    if (failed > moveIn) {
      undo.push({ op: 'delete', path: at.old }); // the new value is in place; the old one goes
    } else {
      if (failed === moveIn && at.replacing) undo.push({ op: 'move', path: at.old, to: at.target });
      if (failed > 1) undo.push({ op: 'delete', path: at.fresh }); // op 0 reserves, op 1 created it
    }
    for (const op of undo) {
      try {
        yield* exec(file, [op]);
      } catch { /* keep the first error */ }
    }
  }

  *#save(key: string[], value: unknown): H5Gen<void> {
    checkKeyNames(key, 'hdf5');
    const node = planValue(value, `key ${describeKey(key.length === 1 ? key[0] : key)}`);
    this.#assertNoHandles(key, 'set');
    yield* this.#place(key, node);
  }

  saveParameterSync(key: string[], value: unknown): void {
    runSync(this.#save(key, value));
  }

  override saveParameter(key: string[], value: unknown): Promise<void> {
    return runAsync(this.#save(key, value));
  }

  *#load(key: string[]): H5Gen<unknown> {
    const file = this.#s().file;
    if (!file || key.some(isReserved)) throw CheckpointerKeyError.missing(key, this.#path);
    yield* this.#writeBuffered(key);
    const path = toH5Path(key);
    const [node] = (yield* exec(this.#s().file!, [walkOp(path)])) as [WalkNode | null];
    if (node === null) {
      this.#checkParents(key, yield* this.#lookup(key));
      throw CheckpointerKeyError.missing(key, this.#path);
    }
    const reader = new LayoutReader(this.#path);
    const value = reader.load(node, path);
    if (reader.reads.length > 0) yield* exec(this.#s().file!, reader.reads);
    return reader.finish(value);
  }

  loadParameterSync(key: string[]): unknown {
    return runSync(this.#load(key));
  }

  override loadParameter(key: string[]): Promise<unknown> {
    return runAsync(this.#load(key));
  }

  *#has(key: string[]): H5Gen<boolean> {
    return (yield* this.#lookup(key)).length === key.length;
  }

  hasParameterSync(key: string[]): boolean {
    return runSync(this.#has(key));
  }

  override hasParameter(key: string[]): Promise<boolean> {
    return runAsync(this.#has(key));
  }

  *#delete(key: string[]): H5Gen<boolean> {
    if (!(yield* this.#has(key))) return false;
    this.#assertNoHandles(key, 'delete');
    const file = yield* this.#writable();
    yield* exec(file, [{ op: 'delete', path: toH5Path(key) }]);
    return true;
  }

  deleteParameterSync(key: string[]): boolean {
    return runSync(this.#delete(key));
  }

  override deleteParameter(key: string[]): Promise<boolean> {
    return runAsync(this.#delete(key));
  }

  *#keys(): H5Gen<string[]> {
    const file = this.#s().file;
    if (!file) return [];
    const [names] = yield* exec(file, [{ op: 'list', path: '/' }]);
    // HDF5 never creates an empty link name: the root's link table is damaged.
    if ((names as string[]).includes('')) {
      throw new CheckpointerError(`${this.#path} is damaged: a link of its root group has an empty name`, { code: 'ERR_CHECKPOINT_CORRUPT', file: this.#path });
    }
    return (names as string[]).filter((n) => !isReserved(n));
  }

  listKeysSync(): string[] {
    return runSync(this.#keys());
  }

  override listKeys(): Promise<string[]> {
    return runAsync(this.#keys());
  }

  // ------------------------------------------------------------------ dataset handles

  #datasetIO(): HDF5DatasetIO {
    return {
      fileName: this.#path,
      file: () => (this.stream as HDF5Stream | undefined)?.file ?? null,
      writable: () => this.#writable(),
      commit: () => this.#commit(this.#s(), true),
      lookup: (key) => this.#kindOf(key),
      create: (key, spec) => {
        checkKeyNames(key, 'hdf5');
        return this.#place(key, { kind: 'array', spec, data: null });
      },
      forget: (core) => {
        const s = this.stream as HDF5Stream | undefined;
        if (s?.datasets.get(core.path) === core) s.datasets.delete(core.path);
      },
    };
  }

  /** The dataset's core (one per dataset, shared by its handles), opened or created. */
  *#core(key: string[], options: DatasetOptions | null, host: DatasetHost): H5Gen<HDF5Dataset> {
    const s = this.#s();
    const path = toH5Path(key);
    let core = s.datasets.get(path);
    if (core?.isOpen) {
      core.checkOptions(options);
    } else {
      core = yield* HDF5DatasetCore.open(this.#datasetIO(), host, key, options);
      s.datasets.set(path, core);
    }
    return new HDF5Dataset(core, host);
  }

  override openDatasetSync(key: string[], options: DatasetOptions | null, host: DatasetHost): HDF5Dataset {
    return runSync(this.#core(key, options, host));
  }

  override openDataset(key: string[], options: DatasetOptions | null, host: DatasetHost): Promise<HDF5Dataset> {
    return runAsync(this.#core(key, options, host));
  }
}
