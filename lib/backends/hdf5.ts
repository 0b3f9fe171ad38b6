/**
 * HDF5Checkpointer: `.hdf5`/`.h5` checkpoints through the native addon, in McUtils' layout
 * (./hdf5-layout). The file is opened read-only on open and reopened read-write on the first
 * write, so reading never changes it and a missing file is not created by reads.
 *
 * Validate, then mutate: a `set` checks every name and value first (../values/names, planValue),
 * then writes the new value under a temporary link beside the key and swaps it in with H5Lmove, all
 * in one batch (a key new to the session's shadow is created under its own name: nobody reads the
 * shadow before it commits); if anything fails the batch is undone, so the key keeps its previous value
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
import * as nodePath from 'node:path';
import { AttributeRead, AttributeValue, Checkpointer, CheckpointerOptions } from '../checkpointer';
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import type { AttrRead, AttrValue, FileOp, H5File, LinkEntry, LinkNode, LookupKind, OpResult, ResolveResult, WalkNode } from '../native';
import { describeKey } from '../values/model';
import { checkKeyNames, RESERVED_PREFIX } from '../values/names';
import { closeFile, exec, flushFile, H5Gen, openFile, runAsync, runSync, writeFailure } from './hdf5-calls';
import { beginShadow, commitShadow, discardShadow } from './hdf5-shadow';
import { fileStampSync } from '../io/atomic';
import { createOps, isReserved, joinPath, LayoutReader, linkError, PlannedNode, planValue, toH5Path, walkOp } from './hdf5-layout';
import { damagedBelow } from './hdf5-verify';
import { attrValueOf, nativeAttrValue } from './hdf5-types';
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
  /** Files external links led to, by real path: opened read-only when first followed, closed with the checkpoint. */
  externals: Map<string, H5File>;
  /** The checkpoint's absolute path when the session opened it (the working directory may change since). */
  absPath: string;
}

/** A file a key's resolution is in: the checkpoint itself, or one an external link led to. */
interface Mount {
  file: H5File;
  fileName: string;
  /** The file's folder (absolute): where its external links' relative names are looked for. */
  dir: string;
  /** Its real path (symlinks resolved): how a cycle of external links is recognised. */
  real: string;
}

/** Where a key leads. */
interface Location {
  /** The kind of each component of the key reached (external links followed into their files). */
  kinds: LookupKind[];
  /** The file and path of the last component reached (null when an external link there leads nowhere). */
  at: Mount | null;
  path: string;
  /** The link where resolution stopped: a dangling soft or external link, a cycle. */
  link: LinkNode | null;
}

/**
 * Errors of following an external link: its file cannot be read (has() and keys() still show the
 * key: get says why) or the links form a cycle (no key: it leads nowhere).
 */
const linkFailures = new WeakSet<object>();

function linkFailure(err: CheckpointerError): CheckpointerError {
  linkFailures.add(err);
  return err;
}

/** More external links than this in a row for one name is a cycle (HDF5 stops at 16 links too). */
const MAX_EXTERNAL_HOPS = 16;

/**
 * The files HDF5 tries for an external link's file name, in its order (H5F_prefix_open_file,
 * HDF5 1.10–1.14): an absolute name as stored; then, with an absolute name reduced to its last
 * component, each prefix of HDF5_EXT_PREFIX (colon-separated; `${ORIGIN}` is the linking file's
 * folder); the linking file's folder; the name relative to the working directory; the linking
 * file's folder with symlinks resolved. (No link-access prefix: the package sets none.)
 */
export function externalCandidates(name: string, linkingFile: string): string[] {
  const dir = nodePath.dirname(nodePath.resolve(linkingFile));
  const out: string[] = [];
  let rel = name;
  if (nodePath.isAbsolute(name)) {
    out.push(name);
    rel = nodePath.basename(name);
  }
  for (const prefix of (process.env.HDF5_EXT_PREFIX ?? '').split(':')) {
    if (prefix) out.push(nodePath.resolve(prefix.replace(/^\$\{ORIGIN\}/, dir), rel));
  }
  out.push(nodePath.join(dir, rel), nodePath.resolve(rel));
  try {
    out.push(nodePath.join(nodePath.dirname(fs.realpathSync(linkingFile)), rel));
  } catch { /* gone: the other candidates stand */ }
  return out;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function pathParts(p: string): string[] {
  return p.split('/').filter((x) => x !== '' && x !== '.');
}

function describeLink(link: LinkNode): string {
  if (link.linkType === 'external') return `the external link ${link.link ?? '?'} → ${link.file ?? '?'}:${link.target ?? '/'}`;
  if (link.linkType === 'soft') return `the soft link ${link.link ?? '?'} → ${link.target ?? '?'}`;
  return `the link ${link.link ?? '?'}`;
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
    const s: HDF5Stream = { file: null, writable: false, shadow: null, stamp: fileStampSync(this.#path), datasets: new Map(), externals: new Map(), absPath: nodePath.resolve(this.#path) };
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
    yield* this.#closeExternals(s);
    yield* this.#commit(s, false);
  }

  /** The files external links led to close with the checkpoint (read-only: nothing of them to lose). */
  *#closeExternals(s: HDF5Stream): H5Gen<void> {
    const files = [...s.externals.values()];
    s.externals.clear();
    for (const f of files) {
      try {
        yield* closeFile(f);
      } catch { /* read-only */ }
    }
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

  /**
   * The kind of each prefix of `key` that exists in the checkpoint's own file, down to the first
   * missing one or non-group (soft links followed, external links not), and the link that stopped it.
   */
  *#lookup(key: readonly string[]): H5Gen<ResolveResult> {
    const file = this.#s().file;
    if (!file || key.some(isReserved)) return { kinds: [], link: null };
    const [res] = yield* exec(file, [{ op: 'resolve', path: toH5Path(key) }]);
    return res as ResolveResult;
  }

  /** What `key` names in this file (null when absent), for a dataset handle; CheckpointerKeyError when a parent holds a non-dict. */
  *#kindOf(key: readonly string[]): H5Gen<LookupKind | null> {
    const { kinds, link } = yield* this.#lookup(key);
    this.#checkParents(key, kinds, link);
    if (kinds.length < key.length) return null;
    const kind = kinds[key.length - 1]!;
    if (kind === 'external') {
      throw new CheckpointerError(`key ${describeKey(key.length === 1 ? key[0] : key)} of ${this.#path} is ${describeLink(link!)}: dataset handles open datasets of the checkpoint's own file (get reads it)`, {
        code: 'ERR_UNSUPPORTED_VALUE', file: this.#path,
      });
    }
    if (kind === 'dangling' || kind === 'datatype') {
      throw this.#notAValue(key, { kinds, at: null, path: toH5Path(key), link })!;
    }
    return kind;
  }

  // ------------------------------------------------------------------ links

  /** The checkpoint itself as a Mount (the session's shadow while it writes). */
  #main(): Mount | null {
    const s = this.#s();
    if (!s.file) return null;
    const abs = s.absPath;
    let real: string | undefined;
    // Resolved when asked (external links only): a realpath per get was a fifth of a small get's time.
    return {
      file: s.file,
      fileName: this.#path,
      dir: nodePath.dirname(abs),
      get real(): string {
        if (real === undefined) {
          try {
            real = fs.realpathSync(abs);
          } catch {
            real = abs; // not committed yet
          }
        }
        return real;
      },
    };
  }

  /**
   * The file an external link leads to, opened read-only (verified first, as every file this
   * process did not write) and kept with the checkpoint; null when no candidate file exists (the
   * link dangles). A link back into the checkpoint reads the checkpoint's own (open) file.
   */
  *#openExternal(from: Mount, link: LinkNode): H5Gen<Mount | null> {
    const found = externalCandidates(link.file ?? '', nodePath.join(from.dir, nodePath.basename(from.fileName))).find(isFile);
    if (found === undefined) return null;
    const real = fs.realpathSync(found);
    const main = this.#main()!;
    if (real === main.real) return main;
    const s = this.#s();
    let file = s.externals.get(real);
    if (!file) {
      try {
        file = yield* openFile(found, 'r');
      } catch (err) {
        if (!(err instanceof CheckpointerError)) throw err;
        throw linkFailure(new CheckpointerError(`${describeLink(link)} in ${from.fileName} leads to ${found}, which cannot be read: ${err.message}`, {
          code: err.code, file: found, cause: err,
        }));
      }
      s.externals.set(real, file);
    }
    return { file, fileName: found, dir: nodePath.dirname(nodePath.resolve(found)), real };
  }

  /**
   * Where `key` leads, soft links followed (by the addon) and external links followed into their
   * files (here: each file opened, then the rest of the key resolved there).
   */
  *#locate(key: readonly string[]): H5Gen<Location> {
    const main = this.#main();
    const kinds: LookupKind[] = [];
    if (!main || key.some(isReserved)) return { kinds, at: null, path: toH5Path(key), link: null };
    let cur: Mount = main;
    let parts = [...key];
    let keyStart = 0; // key[keyStart..] are the last parts of `parts`
    let lead = 0; // parts[0..lead) stand for key[keyStart - 1], an external link's target
    let via: LinkNode | null = null;
    let hops = 0;
    const seen = new Set<string>();
    for (;;) {
      const [res] = (yield* exec(cur.file, [{ op: 'resolve', path: '/' + parts.join('/') }])) as [ResolveResult];
      const k = res.kinds;
      const link = res.link;
      if (link?.linkType === 'external') {
        const stop = k.length - 1;
        if (!(via && stop < lead)) {
          // The link is key[keyStart + stop - lead]: what comes before it is resolved.
          if (via) kinds.push(lead === 0 ? 'group' : k[lead - 1]!);
          for (let c = lead; c < stop; c++) kinds.push(k[c]!);
          keyStart += stop - lead + 1;
          seen.clear();
          hops = 0;
        } // else the target of the link followed goes on through another external link
        const next: Mount | null = yield* this.#openExternal(cur, link);
        if (next === null) {
          kinds.push('dangling');
          return { kinds, at: null, path: '', link };
        }
        const here = `${next.real}:${link.target ?? '/'}`;
        if (seen.has(here) || ++hops > MAX_EXTERNAL_HOPS) {
          throw linkFailure(new CheckpointerError(`key ${describeKey(key)} of ${this.#path}: ${describeLink(link)} is part of a cycle of external links`, {
            code: 'ERR_UNSUPPORTED_VALUE', file: this.#path,
          }));
        }
        seen.add(here);
        parts = pathParts(link.target ?? '/');
        lead = parts.length - (key.length - keyStart);
        via = link;
        cur = next;
        continue;
      }
      if (via) {
        const target = lead === 0 ? 'group' : k[lead - 1];
        if (k.length < lead || target === 'dangling' || target === 'link') {
          kinds.push('dangling'); // the external link's object is not there
          return { kinds, at: null, path: '', link: via };
        }
        kinds.push(target!);
      }
      for (let c = lead; c < k.length; c++) kinds.push(k[c]!);
      return { kinds, at: cur, path: '/' + parts.join('/'), link };
    }
  }

  /** The error for a key that names a link, not a value (null when it names a group or dataset). */
  #notAValue(key: readonly string[], loc: Location): CheckpointerError | null {
    const kind = loc.kinds[key.length - 1];
    if (kind === 'group' || kind === 'dataset') return null;
    const shown = describeKey(key.length === 1 ? key[0] : key);
    if (kind === 'dangling') {
      return new CheckpointerKeyError(`key ${shown} is not in ${this.#path}: ${loc.link ? describeLink(loc.link) : 'its link'} leads to nothing (a dangling link)`, key.length === 1 ? key[0]! : key, this.#path);
    }
    if (kind === 'datatype') return new CheckpointerKeyError(`key ${shown} of ${this.#path} is a committed datatype, not a value`, key.length === 1 ? key[0]! : key, this.#path);
    return loc.link ? linkError(loc.link, toH5Path(key), loc.at?.fileName ?? this.#path) : CheckpointerKeyError.missing(key, this.#path);
  }

  /** Walks `path` of `mount` and splices in what its external links lead to. */
  *#walk(mount: Mount, path: string): H5Gen<WalkNode | null> {
    const skip = damagedBelow(mount.file, path);
    const [node] = (yield* exec(mount.file, [{ ...walkOp(path), ...(skip.length > 0 ? { skip } : {}) }])) as [WalkNode | null];
    // The chain (for cycles) only when an external link is met: it needs the file's realpath.
    return yield* this.#splice(node, mount, () => [`${mount.real}:${path}`]);
  }

  /**
   * Replaces each external link of a walked tree by the tree of its target (a 'mounted' node), or
   * by an error node when its file cannot be read or the links form a cycle; a link to nothing
   * stays a link node (the reader calls it dangling).
   */
  *#splice(node: WalkNode | null, mount: Mount, chain: () => readonly string[]): H5Gen<WalkNode | null> {
    if (node === null) return null;
    if (node.kind === 'group') {
      for (let i = 0; i < node.children.length; i++) {
        if (!isReserved(node.names[i] ?? '')) node.children[i] = yield* this.#splice(node.children[i] ?? null, mount, chain);
      }
      return node;
    }
    if (node.kind !== 'link' || node.linkType !== 'external') return node;
    try {
      let from = mount;
      let link = node;
      const seen = [...chain()];
      for (;;) {
        const next: Mount | null = yield* this.#openExternal(from, link);
        if (next === null) return node;
        const here = `${next.real}:${link.target ?? '/'}`;
        if (seen.includes(here) || seen.length > 64) {
          throw new CheckpointerError(`${describeLink(node)} in ${mount.fileName} is part of a cycle of external links`, { code: 'ERR_UNSUPPORTED_VALUE', file: mount.fileName });
        }
        seen.push(here);
        const target = link.target ?? '/';
        const skip = damagedBelow(next.file, target);
        const [sub] = (yield* exec(next.file, [{ ...walkOp(target), ...(skip.length > 0 ? { skip } : {}) }])) as [WalkNode | null];
        if (sub === null || (sub.kind === 'link' && sub.linkType !== 'external')) return node; // its object is not there
        if (sub.kind === 'link') {
          from = next;
          link = sub;
          continue;
        }
        return { kind: 'mounted', file: next.file, fileName: next.fileName, path: target, node: yield* this.#splice(sub, next, () => seen) };
      }
    } catch (err) {
      if (err instanceof CheckpointerError) return { kind: 'error', error: err as never };
      throw err;
    }
  }

  /**
   * A key below a non-dict is CheckpointerKeyError; below an external link (kinds of this file,
   * as #lookup gives them: a write's) ERR_NOT_WRITABLE: writes do not go into other files.
   */
  #checkParents(key: readonly string[], kinds: readonly LookupKind[], link: LinkNode | null = null): void {
    for (let i = 0; i < Math.min(kinds.length, key.length - 1); i++) {
      if (kinds[i] === 'external') {
        throw new CheckpointerError(
          `cannot write key ${describeKey(key.length === 1 ? key[0] : key)} in ${this.#path}: it lies behind ${link ? describeLink(link) : 'an external link'}, and writes do not go into other files `
          + '(set or delete the link\'s own key to replace or remove the link itself)',
          { code: 'ERR_NOT_WRITABLE', file: this.#path },
        );
      }
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
   * one batch; in a shadow, a key that does not exist yet is created in place. A failure undoes
   * what the batch did, so the key keeps its previous value.
   */
  *#place(key: readonly string[], node: PlannedNode): H5Gen<void> {
    const file = yield* this.#writable();
    let found: ResolveResult;
    if (key.length === 1 && !this.inPlace && !isReserved(key[0]!)) {
      // A top-level key in a shadow, in one call: looked up, and created in place when it is new
      // (the batch stops after the lookup when anything is there; then the general path below).
      // Nobody sees the shadow before it commits, and a failed batch is undone, so a new key needs
      // no temporary link and move (a removal and an insertion in the root's link index).
      const target = toH5Path(key);
      const ops: FileOp[] = [{ op: 'resolve', path: target, stopIfFound: true }, { op: 'reserve', path: '/', bytes: 0 }];
      createOps(target, node, ops);
      (ops[1] as { bytes: number }).bytes = dataBytes(ops) + RESERVE_METADATA;
      let res: OpResult[];
      try {
        res = yield* exec(file, ops);
      } catch (err) {
        const failed = (err as { opIndex?: unknown }).opIndex;
        if (failed === 0) throw err; // the lookup failed, as #lookup's would
        // Op 1 reserves and op 2 creating cleans up after itself: later failures leave a value to remove.
        if (typeof failed === 'number' && failed > 2) yield* this.#undoDirect(file, target);
        throw writeFailure(err, this.#path, `write key ${describeKey(key[0])}`);
      }
      if (res.length === ops.length) return;
      found = res[0] as ResolveResult;
    } else {
      found = yield* this.#lookup(key);
    }
    const { kinds, link } = found;
    this.#checkParents(key, kinds, link);
    const base = Math.min(kinds.length, key.length - 1);
    let tree = node;
    for (let i = key.length - 1; i > base; i--) tree = { kind: 'group', children: [[key[i]!, tree]] };
    const target = toH5Path(key.slice(0, base + 1));
    const parent = base === 0 ? '/' : toH5Path(key.slice(0, base));
    const replacing = kinds.length > base;
    // A new key in a shadow is created in place: nobody sees the shadow before it commits, and a
    // failed batch is undone below, so the temporary link and its move (a lookup, a removal and an
    // insertion in the parent's link index: a fifth of a small set's time) buy nothing there.
    // Writing the file itself, a crash mid-batch must not leave a torn value under the key.
    if (!replacing && !this.inPlace) {
      const ops = createOps(target, tree, [{ op: 'reserve', path: '/', bytes: 0 }]);
      (ops[0] as { bytes: number }).bytes = dataBytes(ops) + RESERVE_METADATA;
      try {
        yield* exec(file, ops);
      } catch (err) {
        const failed = (err as { opIndex?: unknown }).opIndex;
        // Op 0 reserves and op 1 creating cleans up after itself: later failures leave a value to remove.
        if (typeof failed === 'number' && failed > 1) yield* this.#undoDirect(file, target);
        throw writeFailure(err, this.#path, `write key ${describeKey(key.length === 1 ? key[0] : key)}`);
      }
      return;
    }
    const n = pendingCounter++;
    const fresh = joinPath(parent, `${RESERVED_PREFIX}new-${process.pid}-${n}`);
    const old = joinPath(parent, `${RESERVED_PREFIX}old-${process.pid}-${n}`);
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

  /** Undoes a failed direct create (#place, a new key in a shadow): what the batch made at `target` goes. */
  *#undoDirect(file: H5File, target: string): H5Gen<void> {
    try {
      yield* exec(file, [{ op: 'delete', path: target }]);
    } catch { /* keep the first error */ }
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

  /** Where `key` leads, links followed: ERR_KEY when it is missing, a typed error when it is not a value. */
  *#locateValue(key: string[]): H5Gen<Location> {
    const loc = yield* this.#locate(key);
    if (loc.kinds.length < key.length) {
      this.#checkParents(key, loc.kinds);
      throw CheckpointerKeyError.missing(key, this.#path);
    }
    const notAValue = this.#notAValue(key, loc);
    if (notAValue) throw notAValue;
    return loc;
  }

  *#load(key: string[]): H5Gen<unknown> {
    const file = this.#s().file;
    if (!file || key.some(isReserved)) throw CheckpointerKeyError.missing(key, this.#path);
    yield* this.#writeBuffered(key);
    // The common case in one call: a key of this file that leads to a group or a dataset.
    let at = this.#main()!;
    let path = toH5Path(key);
    let node = yield* this.#walk(at, path);
    if (node === null || node.kind === 'link') {
      // Missing, a link to nothing or not a value — or an external link, followed here.
      const loc = yield* this.#locateValue(key);
      at = loc.at!;
      path = loc.path;
      node = yield* this.#walk(at, path);
      if (node === null) throw CheckpointerKeyError.missing(key, this.#path);
    }
    const reader = new LayoutReader(at.fileName, this.strict);
    const value = reader.load(node, path);
    if (reader.reads.length > 0) yield* exec(at.file, reader.reads);
    for (const [other, reads] of reader.otherReads) yield* exec(other, reads);
    this.noteSkipped(key, reader.skipped);
    return reader.finish(value);
  }

  loadParameterSync(key: string[]): unknown {
    return runSync(this.#load(key));
  }

  override loadParameter(key: string[]): Promise<unknown> {
    return runAsync(this.#load(key));
  }

  /**
   * A key is there when it leads to a group or a dataset (links followed; a dangling link, a cycle
   * or a committed datatype is no key), or through an external link to a file that cannot be read
   * (get says why, as for a damaged key of the checkpoint itself).
   */
  *#has(key: string[]): H5Gen<boolean> {
    let loc: Location;
    try {
      loc = yield* this.#locate(key);
    } catch (err) {
      if (linkFailures.has(err as object)) return (err as CheckpointerError).code !== 'ERR_UNSUPPORTED_VALUE'; // false for a cycle
      throw err;
    }
    const kind = loc.kinds.length === key.length ? loc.kinds[key.length - 1] : undefined;
    return kind === 'group' || kind === 'dataset';
  }

  hasParameterSync(key: string[]): boolean {
    return runSync(this.#has(key));
  }

  override hasParameter(key: string[]): Promise<boolean> {
    return runAsync(this.#has(key));
  }

  /** Removes the link at `key` (a dangling or external one too: the link, never what it leads to). */
  *#delete(key: string[]): H5Gen<boolean> {
    const { kinds, link } = yield* this.#lookup(key);
    this.#checkParents(key, kinds, link);
    if (kinds.length < key.length) return false;
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

  /**
   * The root's links that lead to a group or a dataset, external ones followed — and those whose
   * object or file is damaged (`get` reports the damage; a step restore must see it). Dangling
   * links, cycles and committed datatypes are left out.
   */
  *#keys(): H5Gen<string[]> {
    const file = this.#s().file;
    if (!file) return [];
    const skip = damagedBelow(file, '/');
    const [entries] = (yield* exec(file, [{ op: 'entries', path: '/', ...(skip.length > 0 ? { skip } : {}) }])) as [LinkEntry[]];
    // HDF5 never creates an empty link name: the root's link table is damaged.
    if (entries.some((e) => e.name === '')) {
      throw new CheckpointerError(`${this.#path} is damaged: a link of its root group has an empty name`, { code: 'ERR_CHECKPOINT_CORRUPT', file: this.#path });
    }
    const out: string[] = [];
    for (const e of entries) {
      if (isReserved(e.name)) continue;
      if (e.kind === 'group' || e.kind === 'dataset' || e.kind === 'error' || (e.kind === 'external' && (yield* this.#has([e.name])))) out.push(e.name);
    }
    return out;
  }

  listKeysSync(): string[] {
    return runSync(this.#keys());
  }

  override listKeys(): Promise<string[]> {
    return runAsync(this.#keys());
  }

  // ------------------------------------------------------------------ attributes

  /** The group or dataset whose attributes `key` names (null: the root group), links followed. */
  *#attrTarget(key: string[] | null, writing: boolean): H5Gen<{ file: H5File; path: string }> {
    if (key === null) return { file: this.#s().file!, path: '/' };
    if (writing) {
      const { kinds, link } = yield* this.#lookup(key);
      this.#checkParents(key, kinds, link);
      if (kinds.length === key.length && kinds[key.length - 1] === 'external') {
        throw new CheckpointerError(`cannot change the attributes of key ${describeKey(key.length === 1 ? key[0] : key)} in ${this.#path}: it is ${describeLink(link!)}, and writes do not go into other files`, {
          code: 'ERR_NOT_WRITABLE', file: this.#path,
        });
      }
    }
    const loc = yield* this.#locateValue(key);
    return { file: loc.at!.file, path: loc.path };
  }

  *#readAttrs(key: string[] | null): H5Gen<[string, AttributeRead][]> {
    if (!this.#s().file) {
      if (key === null) return [];
      throw CheckpointerKeyError.missing(key, this.#path);
    }
    const { file, path } = yield* this.#attrTarget(key, false);
    const [entries] = yield* exec(file, [{ op: 'attrs', path }]);
    const where = key === null ? 'the root group' : `key ${describeKey(key.length === 1 ? key[0] : key)}`;
    // Decoded one by one: an attribute of a type not read is `{ unsupported }`, its siblings still read.
    return (entries as [string, AttrRead][]).map(([name, read]): [string, AttributeRead] => {
      try {
        return [name, attrValueOf(read, `attribute ${JSON.stringify(name)} of ${where} in ${this.#path}`)];
      } catch (err) {
        if (err instanceof CheckpointerError && err.code === 'ERR_UNSUPPORTED_DTYPE') return [name, { unsupported: err.message }];
        throw err;
      }
    });
  }

  override readAttrsSync(key: string[] | null): [string, AttributeRead][] {
    return runSync(this.#readAttrs(key));
  }

  override readAttrs(key: string[] | null): Promise<[string, AttributeRead][]> {
    return runAsync(this.#readAttrs(key));
  }

  *#writeAttrs(key: string[] | null, values: [string, AttributeValue][], remove: string[]): H5Gen<void> {
    const what = key === null ? 'the root group' : `key ${describeKey(key.length === 1 ? key[0] : key)}`;
    // Every value converted (and refused) before the file is opened for writing.
    const set = values.map(([name, v]): [string, AttrValue] => [name, nativeAttrValue(v, `attribute ${JSON.stringify(name)} of ${what}`)]);
    // The key is checked before the session's first write opens (or creates) the file for writing.
    if (key !== null && !this.#s().file) throw CheckpointerKeyError.missing(key, this.#path);
    if (key !== null && !this.#s().writable) yield* this.#attrTarget(key, true);
    const file = yield* this.#writable();
    const target = yield* this.#attrTarget(key, true);
    try {
      yield* exec(file, [{ op: 'updateAttrs', path: target.path, set, delete: remove }]);
    } catch (err) {
      if (err instanceof CheckpointerError && err.code === 'ERR_KEY') throw new CheckpointerKeyError(`${what} of ${this.#path}: ${err.message}`, key ?? [], this.#path);
      // A value the addon cannot store is refused before anything is written.
      if (err instanceof TypeError || err instanceof RangeError) {
        const Cls = err instanceof TypeError ? TypeError : RangeError;
        throw new Cls(`cannot set the attributes of ${what} in ${this.#path}: ${err.message}`);
      }
      throw writeFailure(err, this.#path, `change the attributes of ${what}`);
    }
  }

  override writeAttrsSync(key: string[] | null, set: [string, AttributeValue][], remove: string[]): void {
    runSync(this.#writeAttrs(key, set, remove));
  }

  override writeAttrs(key: string[] | null, set: [string, AttributeValue][], remove: string[]): Promise<void> {
    return runAsync(this.#writeAttrs(key, set, remove));
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
