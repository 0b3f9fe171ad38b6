/**
 * NumPyCheckpointer: `.npz` checkpoints in McUtils' layout (see ../formats/mcutils-layout), and
 * single-array `.npy` files. The extension picks the format: `.npy` → one array, anything else → `.npz`.
 *
 * `.npz`
 *   - Opening reads only the zip's central directory (an archive of more than 20,000 members: read
 *     and checked as bytes, indexed when first needed; see Stream). A `get` reads just the members
 *     under its key, each array straight into the TypedArray it returns (one copy, CRC-32 verified).
 *   - `set`/`delete` change the in-memory member list; the last close, if anything changed, writes
 *     the file atomically (temp file + fsync + rename + fsync of the directory). A session that only
 *     added keys appends: the temp file is a kernel copy of the old file (a reflink where the
 *     filesystem has one) written over from its central directory on: the new members, the old
 *     directory's bytes verbatim, the new entries and end records — the old members are not read
 *     or rewritten.
 *     Otherwise it is rewritten: new arrays straight from their TypedArray memory, unchanged
 *     members copied as raw bytes from the old file without being decoded (a `savez_compressed`
 *     member stays compressed).
 *   - Arrays given to `set` are referenced, not copied, until that close writes them (as McUtils
 *     keeps references in its dict): changing one in between changes what is written.
 *   - The file is what `numpy.savez` writes (byte for byte for the same arrays); numpy reads it with
 *     `allow_pickle=False`. With `compression: 'deflate'` new members are deflated, as
 *     `numpy.savez_compressed` writes them.
 *   - Adding keys is a copy + append into a new file, not an append in place: see README
 *     "Durability and locking" for why an in-place append is not crash-safe for numpy's readers.
 *
 * `.npy` (what `numpy.save`/`numpy.load` read and write: one unnamed array)
 *   - Its one value is listed under the key `'arr_0'` — the name numpy gives an unnamed array
 *     (`numpy.savez(f, a)`), so the same key works when the file is later an `.npz`.
 *   - `set(key, value)` under any one-name key replaces the file's array (a `.npy` has room for one
 *     value and no names): afterwards `keys()` is `['arr_0']` and `get('arr_0')` returns it.
 *     The value must be one array or scalar (number, bigint, boolean, string, TypedArray,
 *     NDArray); lists, dicts, objects and nested key paths are ERR_UNSUPPORTED_VALUE.
 *   - Deleting `'arr_0'` leaves nothing a `.npy` can hold, so the last close removes the file.
 *
 * Both: reading never changes the file and a missing (or empty) file reads as an empty checkpoint
 * that reads do not create. A file that cannot be parsed is ERR_CHECKPOINT_CORRUPT, naming the file,
 * and is never overwritten (the open fails, so nothing is written).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Checkpointer, CheckpointerOptions } from '../checkpointer';
import { CheckpointerError, CheckpointerKeyError, fromSystemError } from '../errors';
import { fileStampSync, stampOf, writeFileAtomic, writeFileAtomicSync } from '../io/atomic';
import { describeKey } from '../values/model';
import { checkKeyNames } from '../values/names';
import {
  encodeLeaf, flattenValue, KEY_SEP, memberName, memberPath, NPY_SUFFIX, shapeOf, unflattenValue,
} from '../formats/mcutils-layout';
import {
  decodeData, EncodedNpy, encodeEmptyDict, encodeRecords, npyHeaderLength, NPY_PREFIX_BYTES, packedRecordLayout, parseNpyHeader, planDecode,
  recordLayoutOf, RecordLayout,
} from '../formats/npy';
import {
  checkLocalHeaders, crc32, crc32Combine, IoGen, LOCAL_NAMES_CHECKED_UP_TO, MemberReader, memberDataOffset, METHOD_STORED, NewMember,
  parseCentralDirectory, RawCentralDirectory, readMember, readMemberBytes, readRawCentralDirectory, ReadWindow, runAsync, runSync, someRawName, WriteMember,
  writeZip, ZipEntry,
} from '../formats/zip';
import type { Dataset, DatasetHost, DatasetLifecycle, DatasetOptions } from '../dataset/types';
import { checkExisting, elementBytes, NpyDataset, RowDataset, rowSpec, unsupported } from '../dataset/npy-dataset';
import {
  copyIntoSpool, createSpool, NpzMemberDataset, NpzStreamDataset, removeSpool, Spool, zeroSpool,
} from '../dataset/npz-dataset';
import { DType, dtypeInfo, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { RecordArray } from '../values/records';

export interface NumPyCheckpointerOptions extends CheckpointerOptions {
  /** fsync the new file and its directory before the atomic rename completes (default true). */
  durable?: boolean;
  /**
   * Sizes and offsets above this many bytes are written as ZIP64 fields (default Python's
   * zipfile.ZIP64_LIMIT, 2 GiB - 1). Lower it only to exercise the ZIP64 path with small data.
   */
  zip64Limit?: number;
  /**
   * `.npz` only: 'deflate' writes new members deflated (zip method 8), as `numpy.savez_compressed`
   * does (numpy.load reads them); the deflates run on libuv's thread pool, several at once, in
   * async closes. Members copied unchanged from the old file keep their method; members streamed
   * by a dataset handle are stored. Default 'none': stored, as `numpy.savez`.
   */
  compression?: 'none' | 'deflate';
  /** zlib level for `compression: 'deflate'`, 0-9 (default 6, zlib's and savez_compressed's). */
  compressionLevel?: number;
}

/** The key a `.npy` file's one array is listed under (numpy's name for an unnamed array). */
export const NPY_KEY = 'arr_0';

/** Where a member's data is: in the opened file (zip member or whole .npy), or in memory (set, not yet written). */
type Source =
  | { kind: 'zip'; entry: ZipEntry }
  | { kind: 'npy'; header: Uint8Array; fileSize: number }
  | { kind: 'fresh'; array: EncodedNpy; byteLength: number; emptyDict: boolean }
  /** Streamed by a dataset handle: the .npy header in memory, the element bytes in a spool file. */
  | { kind: 'spool'; header: Buffer; spool: Spool };

interface Member {
  /** The key path the member stands for (`.npy` dropped, split at the separator). */
  path: string[];
  /** Its zip member name. */
  zipName: string;
  source: Source;
}

/** The open checkpoint (`stream`): the old file's descriptor and the member list. */
export interface NumPyStream {
  format: 'npz' | 'npy';
  /** The file as opened (read-only); null when it did not exist or was empty. */
  fd: number | null;
  /** Top-level key → its members, in file order (indexes a lazily opened .npz on first use). */
  groups: Map<string, Member[]>;
  /** The opened .npz's central directory as bytes (what an append commit copies verbatim); else null. */
  cd: RawCentralDirectory | null;
  /** Members the index made from the file: an append commit needs them all still there, unchanged. */
  fromFile: number;
  /** Something was set or deleted: the last close writes the file (appends or rewrites). */
  dirty: boolean;
  /** Spool files of streamed members (also replaced ones), removed after the last close writes. */
  spools: Set<Spool>;
  /** The file's version as opened ('absent' when it did not exist), to notice another writer's commit. */
  stamp: string;
  /** Bytes of `fd` kept between reads of small members (see ReadWindow). */
  window: ReadWindow;
}

/**
 * A stream whose `.npz` members may not be indexed yet. An archive of more than
 * LOCAL_NAMES_CHECKED_UP_TO members opens with its central directory read and checked but not
 * parsed (building 100,000 entries and members costs ~0.2 s; the check, a few ms); `groups` then
 * holds only the keys set since, each checked absent from the file by a scan of the directory's
 * bytes for it (`lookup`, ~1 ms per 100,000 entries), and the file's members are indexed when
 * something needs them (a read of an old key, keys(), a delete, a dataset handle, a rewrite, or
 * more than LAZY_LOOKUPS lookups).
 */
class Stream implements NumPyStream {
  format: 'npz' | 'npy';
  fd: number | null;
  #groups: Map<string, Member[]>;
  cd: RawCentralDirectory | null;
  fromFile = 0;
  dirty = false;
  spools = new Set<Spool>();
  stamp: string;
  window: ReadWindow = { w: null };
  /** The file's members are not in #groups yet (see the class comment). */
  lazy: boolean;
  /**
   * The file as this session's last append commit left it (a dataset handle's flush commits while
   * the session goes on): up to `cd.offset` it is still the opened file's bytes, so the next commit
   * can cut there again and append every key added since the open once more.
   */
  appendedStamp: string | null = null;
  /** The commit in progress appended (it did not fall back to writing the whole archive). */
  appending = false;
  #lookups = 0;

  constructor(format: 'npz' | 'npy', fd: number | null, stamp: string, groups = new Map<string, Member[]>(), cd: RawCentralDirectory | null = null, lazy = false) {
    this.format = format;
    this.fd = fd;
    this.stamp = stamp;
    this.#groups = groups;
    this.cd = cd;
    this.lazy = lazy;
    if (!lazy) this.fromFile = countFromFile(groups);
  }

  /** Every key's members (indexing the file's first, if they are not yet). */
  get groups(): Map<string, Member[]> {
    if (this.lazy) this.#materialize();
    return this.#groups;
  }

  set groups(g: Map<string, Member[]>) {
    this.#groups = g;
    this.lazy = false;
  }

  /**
   * Groups where `top`'s is right: without indexing the file when `top` was set in this session
   * or is known to be absent from the file (only keys so placed go into a lazy stream's groups).
   */
  lookup(top: string): Map<string, Member[]> {
    if (!this.lazy || this.#groups.has(top) || this.#absentFromFile(top)) return this.#groups;
    return this.groups;
  }

  /** The groups as they are: while lazy, only the keys set since the open (none of the file's members). */
  unindexedOrAll(): Map<string, Member[]> {
    return this.#groups;
  }

  #absentFromFile(top: string): boolean {
    // Names are compared as bytes: an ASCII key is the same bytes in every name encoding zipfile
    // reads (UTF-8, cp437); other keys index the file. Many lookups index it too (amortized).
    if (!/^[\x00-\x7f]*$/.test(top) || top.includes(KEY_SEP) || ++this.#lookups > LAZY_LOOKUPS) return false;
    return !someRawName(this.cd!, Buffer.from(top, 'latin1'), namesTop);
  }

  #materialize(): void {
    const groups = groupsOfEntries(parseCentralDirectory(this.cd!));
    this.fromFile = countFromFile(groups);
    for (const [k, g] of this.#groups) groups.set(k, g); // set since the open: absent from the file, so after its keys
    this.#groups = groups;
    this.lazy = false;
  }
}

/** Lookups a lazy stream answers by a scan of the directory's bytes before it indexes the file (amortized). */
const LAZY_LOOKUPS = 16;
const SEP_BYTES = Buffer.from(KEY_SEP, 'latin1');
const SUFFIX_BYTES = Buffer.from(NPY_SUFFIX, 'latin1');

function countFromFile(groups: Map<string, Member[]>): number {
  let n = 0;
  for (const g of groups.values()) for (const m of g) if (m.source.kind === 'zip') n++;
  return n;
}

/**
 * Whether a member name that starts with a top-level key (without the separator) has it as its
 * top-level key, as memberPath reads it, given the rest of the name, [rest, end) of `b`: nothing,
 * `.npy`, or the separator next.
 */
function namesTop(b: Uint8Array, rest: number, end: number): boolean {
  const follows = (tail: Buffer): boolean => {
    if (end - rest < tail.length) return false;
    for (let k = 0; k < tail.length; k++) if (b[rest + k] !== tail[k]) return false;
    return true;
  };
  return rest === end || (end - rest === SUFFIX_BYTES.length && follows(SUFFIX_BYTES)) || follows(SEP_BYTES);
}

/** The index of a parsed directory: members by top-level key, in file order. */
function groupsOfEntries(entries: readonly ZipEntry[]): Map<string, Member[]> {
  const groups = new Map<string, Member[]>();
  const byName = new Map<string, Member>();
  for (const entry of entries) {
    if (entry.name.endsWith('/') && entry.uncompressedSize === 0) continue; // a directory entry
    const existing = byName.get(entry.name);
    if (existing) {
      existing.source = { kind: 'zip', entry }; // zipfile: the last of duplicate names wins
      continue;
    }
    const member: Member = { path: memberPath(entry.name), zipName: entry.name, source: { kind: 'zip', entry } };
    byName.set(entry.name, member);
    const top = member.path[0]!;
    let group = groups.get(top);
    if (!group) groups.set(top, (group = []));
    group.push(member);
  }
  return groups;
}

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  if (path.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) return false;
  return true;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Reads an .npz member holding an .npy: the data goes straight into the array `planDecode` allocates. */
function npyMemberReader(): MemberReader<unknown> {
  let finish: (() => unknown) | undefined;
  return {
    headerLength: (prefix) => npyHeaderLength(prefix),
    target: (header) => {
      const plan = planDecode(parseNpyHeader(header));
      finish = plan.finish;
      return plan.target;
    },
    finish: () => finish!(),
    fromInflated: (bytes) => {
      const h = parseNpyHeader(bytes);
      // Keep the inflated memory as the array only when it is a dedicated allocation (small
      // Buffers share Node's pool, which must not leak into a returned TypedArray).
      const dedicated = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length;
      return decodeData(h, bytes.subarray(h.headerLength), dedicated);
    },
  };
}

export class NumPyCheckpointer extends Checkpointer<NumPyStream> {
  static override readonly defaultExtension: string = '.npz';
  readonly durable: boolean;
  /** 'npy' for a `.npy` file name, else 'npz'. */
  readonly format: 'npz' | 'npy';
  readonly #zip64Limit: number | undefined;
  /** How new `.npz` members are written: stored, or deflated (see NumPyCheckpointerOptions.compression). */
  readonly compression: 'none' | 'deflate';
  readonly #deflateLevel: number | undefined;
  /** Open dataset handles on this file, by member name ('' for the .npy). */
  readonly #handles = new Map<RowDataset, string>();

  constructor(file: string, opts: NumPyCheckpointerOptions = {}) {
    super(file, opts);
    this.durable = opts.durable ?? true;
    this.#zip64Limit = opts.zip64Limit;
    this.format = nodePath.extname(file).toLowerCase() === '.npy' ? 'npy' : 'npz';
    const compression = opts.compression ?? 'none';
    if (compression !== 'none' && compression !== 'deflate') {
      throw new TypeError(`compression must be 'none' or 'deflate', got ${JSON.stringify(opts.compression)}`);
    }
    const level = opts.compressionLevel;
    if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
      throw new RangeError(`compressionLevel must be an integer from 0 to 9, got ${JSON.stringify(level)}`);
    }
    if (level !== undefined && compression !== 'deflate') throw new TypeError("compressionLevel needs compression: 'deflate'");
    if (compression === 'deflate' && this.format === 'npy') {
      throw new TypeError(`${file}: a .npy file has no compression (numpy.save writes it plain); use an .npz file for compression: 'deflate'`);
    }
    this.compression = compression;
    this.#deflateLevel = compression === 'deflate' ? level ?? 6 : undefined;
  }

  get #file(): string {
    return this.checkpointFile as string;
  }

  #s(): Stream {
    return this.stream as Stream;
  }

  /** Format errors from the readers name the file here; system errors become CheckpointerErrors. */
  #wrap(err: unknown, action: string, what = ''): Error {
    // A refused name or value is the caller's mistake, reported as it is.
    if (err instanceof TypeError || err instanceof RangeError) return err;
    if (err instanceof CheckpointerError) {
      if (err.file !== undefined) return err;
      const prefix = err.code === 'ERR_CHECKPOINT_CORRUPT' ? `${this.#file} is not a readable ${this.format === 'npy' ? '.npy' : '.npz'} file`
        : `${this.#file}`;
      return new CheckpointerError(`${prefix}${what}: ${err.message}`, { code: err.code, file: this.#file, cause: err });
    }
    return fromSystemError(err, this.#file, action);
  }

  // ------------------------------------------------------------------ open / close

  /** Indexes an opened file: the central directory of an .npz, the header of an .npy. */
  *#index(fd: number, size: number, stamp: string): IoGen<Stream> {
    if (this.format === 'npy') {
      const groups = new Map<string, Member[]>();
      const probe = new Uint8Array(Math.min(size, Math.max(256, NPY_PREFIX_BYTES)));
      yield { op: 'read', fd, buffer: probe, position: 0 };
      const hlen = npyHeaderLength(probe);
      let header = probe;
      if (hlen > size) throw new CheckpointerError('the .npy header runs past the end of the file', { code: 'ERR_CHECKPOINT_CORRUPT' });
      if (hlen > probe.length) {
        header = new Uint8Array(hlen);
        yield { op: 'read', fd, buffer: header, position: 0 };
      }
      header = header.subarray(0, hlen);
      try {
        const h = parseNpyHeader(header);
        // A writer appending in place writes the rows before the header that counts them: a
        // header read after the size was taken may count rows written since. Look again.
        if (h.headerLength + h.dataLength > size) size = fs.fstatSync(fd).size;
        if (h.headerLength + h.dataLength > size) {
          throw new CheckpointerError(`the data is truncated: ${size - h.headerLength} of ${h.dataLength} bytes`, { code: 'ERR_CHECKPOINT_CORRUPT' });
        }
      } catch (err) {
        // A dtype this package does not read is reported by get, not by open.
        if (!(err instanceof CheckpointerError && err.code === 'ERR_UNSUPPORTED_DTYPE')) throw err;
      }
      groups.set(NPY_KEY, [{ path: [NPY_KEY], zipName: '', source: { kind: 'npy', header, fileSize: size } }]);
      return new Stream(this.format, fd, stamp, groups);
    }
    const cd = yield* readRawCentralDirectory(fd, size);
    // Large archives open lazily (see Stream); smaller ones are indexed now, every local header checked.
    if (cd.entryCount > LOCAL_NAMES_CHECKED_UP_TO) return new Stream(this.format, fd, stamp, new Map(), cd, true);
    const entries = parseCentralDirectory(cd);
    yield* checkLocalHeaders(fd, entries);
    return new Stream(this.format, fd, stamp, groupsOfEntries(entries), cd);
  }

  openCheckpointFileSync(): NumPyStream {
    let fd: number;
    try {
      fd = fs.openSync(this.#file, 'r');
    } catch (err) {
      if (isMissing(err)) return new Stream(this.format, null, 'absent');
      throw this.#wrap(err, 'read');
    }
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      const size = Number(st.size);
      if (size === 0) {
        fs.closeSync(fd);
        return new Stream(this.format, null, stampOf(st));
      }
      return runSync(this.#index(fd, size, stampOf(st)));
    } catch (err) {
      fs.closeSync(fd);
      throw this.#wrap(err, 'read');
    }
  }

  override async openCheckpointFile(): Promise<NumPyStream> {
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) => fs.open(this.#file, 'r', (err, n) => (err ? reject(err) : resolve(n))));
    } catch (err) {
      if (isMissing(err)) return new Stream(this.format, null, 'absent');
      throw this.#wrap(err, 'read');
    }
    try {
      const st = await new Promise<fs.BigIntStats>((resolve, reject) => fs.fstat(fd, { bigint: true }, (err, stats) => (err ? reject(err) : resolve(stats))));
      const size = Number(st.size);
      if (size === 0) {
        await closeFd(fd);
        return new Stream(this.format, null, stampOf(st));
      }
      return await runAsync(this.#index(fd, size, stampOf(st)));
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw this.#wrap(err, 'read');
    }
  }

  override fileChangedSince(s: NumPyStream): boolean {
    return fileStampSync(this.#file) !== s.stamp;
  }

  /**
   * The members to write, in order, after checking the arrays given to `set` are still whole;
   * `added`: only those not in the file (what an append commit writes).
   */
  #plan(s: Stream, added = false): WriteMember[] {
    const out: WriteMember[] = [];
    // A lazy stream's groups are the keys set since the open: they are all it appends.
    for (const group of (added ? s.unindexedOrAll() : s.groups).values()) {
      for (const m of group) {
        const src = m.source;
        if (src.kind === 'fresh') {
          if (src.array.data.byteLength !== src.byteLength) {
            throw new CheckpointerError(
              `${this.#file}: the array set under ${describeKey(m.path)} changed size before it was written (its buffer was detached or resized)`,
              { code: 'ERR_UNSUPPORTED_VALUE', file: this.#file },
            );
          }
          out.push({ name: m.zipName, pieces: [src.array.header, src.array.data] });
        } else if (src.kind === 'spool') {
          const sp = src.spool;
          out.push({
            name: m.zipName, head: src.header, body: { fd: sp.fd, position: 0, length: sp.length },
            crc32: crc32Combine(crc32(src.header), sp.crc, sp.length),
          });
        } else if (src.kind === 'zip' && !added) {
          out.push({ name: m.zipName, from: { fd: s.fd as number, entry: src.entry } });
        }
      }
    }
    return out;
  }

  /** What the last close does: 'write' the members, 'remove' the file (.npy emptied), or nothing. */
  #closeAction(s: NumPyStream): 'write' | 'remove' | 'none' {
    if (!s.dirty) return 'none';
    if (s.format === 'npy' && s.groups.size === 0) return s.fd === null && !fs.existsSync(this.#file) ? 'none' : 'remove';
    return 'write';
  }

  *#writeOps(s: Stream, fd: number): IoGen<void> {
    const members = this.#plan(s);
    if (s.format === 'npz') {
      yield* writeZip(fd, members, { zip64Limit: this.#zip64Limit, deflateLevel: this.#deflateLevel });
      return;
    }
    const m = members[0] as NewMember;
    let at = 0;
    for (const piece of m.pieces) {
      yield { op: 'write', fd, buffer: piece, position: at };
      at += piece.length;
    }
  }

  /**
   * Whether the commit can append: an .npz opened from a file whose members are all still there,
   * unchanged (keys were only added). Then the new file is the old one's bytes up to its central
   * directory (a kernel copy, see writeFileAtomic's startFrom), the new members, the old directory
   * verbatim, the new entries and end records: no old member or entry is read, parsed or rewritten.
   */
  #appends(s: Stream): boolean {
    if (s.format !== 'npz' || s.fd === null || s.cd === null || s.cd.concat !== 0) return false;
    return s.lazy || countFromFile(s.groups) === s.fromFile;
  }

  /** Writes into the temp file that starts as a copy of the file (see #appends). */
  *#appendOps(s: Stream, fd: number): IoGen<void> {
    const cd = s.cd!;
    // The copy is of the path: when it is no longer the file this session opened (a writer that
    // ignores the lock replaced it), the commit writes the whole archive from the opened file instead.
    const now = fileStampSync(this.#file);
    if (now !== s.stamp && now !== s.appendedStamp) {
      s.appending = false;
      yield { op: 'truncate', fd, length: 0 };
      yield* this.#writeOps(s, fd);
      return;
    }
    // Written over the copy from its directory on, and cut to length only when shorter (the old
    // archive ended in a comment): the new archive is never shorter otherwise, and on XFS a file
    // that was truncated costs a flush (on close, or in the truncate itself: 2.2-2.6 ms per add).
    const copied = fs.fstatSync(fd).size;
    const end = yield* writeZip(fd, this.#plan(s, true), {
      zip64Limit: this.#zip64Limit, deflateLevel: this.#deflateLevel,
      append: { start: cd.offset, centralDirectory: cd.bytes, count: cd.entryCount },
    });
    if (end < copied) yield { op: 'truncate', fd, length: end };
  }

  /** Writes the file atomically (temp file + fsync + rename + fsync of the directory): by appending, or whole. */
  #commitSync(s: Stream): void {
    const append = this.#appends(s);
    this.#plan(s, append); // fail before the temp file is even created
    s.appending = append;
    try {
      writeFileAtomicSync(this.#file, (fd) => runSync(append ? this.#appendOps(s, fd) : this.#writeOps(s, fd)), {
        durable: this.durable, startFrom: append ? this.#file : undefined,
      });
    } catch (err) {
      throw this.#wrap(err, 'write');
    }
    this.#committed(s);
  }

  #committed(s: Stream): void {
    s.appendedStamp = s.appending ? fileStampSync(this.#file) : null;
    s.appending = false;
  }

  async #commit(s: Stream): Promise<void> {
    const append = this.#appends(s);
    this.#plan(s, append);
    s.appending = append;
    try {
      await writeFileAtomic(this.#file, async (fh) => runAsync(append ? this.#appendOps(s, fh.fd) : this.#writeOps(s, fh.fd)), {
        durable: this.durable, startFrom: append ? this.#file : undefined,
      });
    } catch (err) {
      throw this.#wrap(err, 'write');
    }
    this.#committed(s);
  }

  closeCheckpointFileSync(s: Stream): void {
    const action = this.#closeAction(s);
    if (action === 'write') {
      this.#commitSync(s);
    } else if (action === 'remove') {
      try {
        fs.unlinkSync(this.#file);
      } catch (err) {
        if (!isMissing(err)) throw this.#wrap(err, 'remove');
      }
    }
    s.dirty = false;
    this.#dropSpools(s);
    if (s.fd !== null) {
      fs.closeSync(s.fd);
      s.fd = null;
      s.window.w = null;
    }
  }

  /** After the last close wrote (or had nothing to write): the spools are in the file, or unused. */
  #dropSpools(s: NumPyStream): void {
    for (const sp of s.spools) removeSpool(sp);
    s.spools.clear();
  }

  override async closeCheckpointFile(s: Stream): Promise<void> {
    const action = this.#closeAction(s);
    if (action === 'write') {
      await this.#commit(s);
    } else if (action === 'remove') {
      try {
        await fs.promises.unlink(this.#file);
      } catch (err) {
        if (!isMissing(err)) throw this.#wrap(err, 'remove');
      }
    }
    s.dirty = false;
    this.#dropSpools(s);
    if (s.fd !== null) {
      const fd = s.fd;
      s.fd = null;
      s.window.w = null;
      await closeFd(fd);
    }
  }

  // ------------------------------------------------------------------ parameters

  /**
   * The members under `key`, or undefined when it is absent. Every proper prefix of the key must
   * be a dict: a path does not lead into a list, an object or an array.
   */
  #select(key: readonly string[]): Member[] | undefined {
    const group = this.#s().lookup(key[0]!).get(key[0]!);
    if (!group) return undefined;
    for (let i = 1; i < key.length; i++) {
      const prefix = key.slice(0, i);
      const shape = shapeOf(group.filter((m) => startsWith(m.path, prefix)).map((m) => m.path.slice(i)));
      if (shape !== 'dict') return undefined;
    }
    const members = group.filter((m) => startsWith(m.path, key));
    return members.length > 0 ? members : undefined;
  }

  #missing(key: readonly string[]): CheckpointerKeyError {
    const k = key.length === 1 ? key[0]! : key;
    const hint = this.format === 'npy' && !(key.length === 1 && key[0] === NPY_KEY)
      ? ` (a .npy file holds one array, listed as ${JSON.stringify(NPY_KEY)})` : '';
    return new CheckpointerKeyError(`key ${describeKey(k)} is not in the checkpoint ${this.#file}${hint}`, k, this.#file);
  }

  saveParameterSync(key: string[], value: unknown): void {
    const s = this.#s();
    const where = describeKey(key.length === 1 ? key[0] : key);
    this.#guardNpy('set');
    if (s.format === 'npy') {
      if (key.length !== 1) {
        throw new CheckpointerError(`${where}: a .npy file holds one array; nested keys need an .npz file`, { code: 'ERR_UNSUPPORTED_VALUE', file: this.#file });
      }
      let leaf: EncodedNpy | undefined;
      try {
        leaf = encodeLeaf(value, where);
      } catch (err) {
        throw this.#wrap(err, 'write');
      }
      if (!leaf) {
        throw new CheckpointerError(
          `${where}: a .npy file holds one array or scalar, not a ${Array.isArray(value) ? 'list' : 'dict or object'}; use an .npz file`,
          { code: 'ERR_UNSUPPORTED_VALUE', file: this.#file },
        );
      }
      s.groups = new Map([[NPY_KEY, [{ path: [NPY_KEY], zipName: '', source: freshSource(leaf, false) }]]]);
      s.dirty = true;
      return;
    }
    checkKeyNames(key, 'npz');
    let leaves;
    try {
      leaves = flattenValue(value, where);
    } catch (err) {
      throw this.#wrap(err, 'write');
    }
    this.#place(key, leaves.map((l) => {
      const path = [...key, ...l.path];
      return { path, zipName: memberName(path), source: freshSource(l.array, l.emptyDict) };
    }));
  }

  /** Where members under `key` go: checks every parent is a dict (or absent); returns the group without an emptied {} marker. */
  #parentGroup(key: readonly string[]): Member[] {
    const s = this.#s();
    const where = describeKey(key.length === 1 ? key[0] : key);
    let group = s.lookup(key[0]!).get(key[0]!) ?? [];
    for (let i = 1; i < key.length; i++) {
      const prefix = key.slice(0, i);
      const under = group.filter((m) => startsWith(m.path, prefix));
      const shape = shapeOf(under.map((m) => m.path.slice(i)));
      if (shape === 'leaf' && under.length === 1 && this.#isEmptyDict(under[0]!)) {
        // {} becomes the dict that holds the new entry: its marker goes.
        group = group.filter((m) => m !== under[0]);
        continue;
      }
      if (shape !== 'absent' && shape !== 'dict') {
        throw new CheckpointerKeyError(
          `key ${where}: ${describeKey(prefix)} holds a ${shape === 'leaf' ? 'value' : shape} that is not a dict`, key, this.#file,
        );
      }
    }
    return group;
  }

  /** Puts `fresh` in place of what is under `key` (keeping its position), or at the end of its group. */
  #place(key: string[], fresh: Member[]): void {
    const s = this.#s();
    const group = this.#parentGroup(key);
    // Replace in place (a rewritten key keeps its position, as in McUtils' dict), else append.
    const first = group.findIndex((m) => startsWith(m.path, key));
    const kept = group.filter((m) => !startsWith(m.path, key));
    const at = first < 0 ? kept.length : group.slice(0, first).filter((m) => !startsWith(m.path, key)).length;
    s.lookup(key[0]!).set(key[0]!, [...kept.slice(0, at), ...fresh, ...kept.slice(at)]);
    s.dirty = true;
  }

  /** Whether a member is an empty dict's marker (a 0-d record with no fields). */
  #isEmptyDict(m: Member): boolean {
    const src = m.source;
    if (src.kind === 'fresh') return src.emptyDict;
    if (src.kind !== 'zip' || src.entry.uncompressedSize > 4096) return false;
    try {
      const bytes = runSync(readMemberBytes(this.#s().fd as number, src.entry));
      const h = parseNpyHeader(bytes);
      return h.descr.kind === 'emptyRecord' && h.shape.length === 0;
    } catch {
      return false;
    }
  }

  *#loadOps(key: readonly string[], members: readonly Member[]): IoGen<unknown> {
    const fd = this.#s().fd;
    const values: { path: string[]; value: unknown }[] = [];
    for (const m of members) {
      const src = m.source;
      let value: unknown;
      try {
        if (src.kind === 'fresh') {
          value = decodeData(parseNpyHeader(src.array.header), src.array.data, false);
        } else if (src.kind === 'zip') {
          value = yield* readMember(fd as number, src.entry, npyMemberReader(), this.#s().window);
        } else if (src.kind === 'spool') {
          const plan = planDecode(parseNpyHeader(src.header));
          const n = (yield { op: 'read', fd: src.spool.fd, buffer: plan.target, position: 0 }) as number;
          if (n !== plan.target.length) throw new CheckpointerError('the streamed data is truncated', { code: 'ERR_CHECKPOINT_CORRUPT' });
          value = plan.finish();
        } else {
          const h = parseNpyHeader(src.header);
          if (h.headerLength + h.dataLength > src.fileSize) throw new CheckpointerError('the data is truncated', { code: 'ERR_CHECKPOINT_CORRUPT' });
          const plan = planDecode(h);
          const n = (yield { op: 'read', fd: fd as number, buffer: plan.target, position: h.headerLength }) as number;
          if (n !== plan.target.length) throw new CheckpointerError('the data is truncated', { code: 'ERR_CHECKPOINT_CORRUPT' });
          value = plan.finish();
        }
      } catch (err) {
        throw this.#wrap(err, 'read', src.kind === 'zip' ? ` (member ${JSON.stringify(m.zipName)})` : '');
      }
      values.push({ path: m.path.slice(key.length), value });
    }
    try {
      return unflattenValue(values, describeKey(key.length === 1 ? key[0] : key));
    } catch (err) {
      throw this.#wrap(err, 'read');
    }
  }

  *#load(key: string[]): IoGen<unknown> {
    yield* this.#writeBuffered(key);
    const members = this.#select(key);
    if (!members) throw this.#missing(key);
    return yield* this.#loadOps(key, members);
  }

  loadParameterSync(key: string[]): unknown {
    return runSync(this.#load(key));
  }

  override async loadParameter(key: string[]): Promise<unknown> {
    return runAsync(this.#load(key));
  }

  hasParameterSync(key: string[]): boolean {
    return this.#select(key) !== undefined;
  }

  deleteParameterSync(key: string[]): boolean {
    const s = this.#s();
    this.#guardNpy('delete');
    const members = this.#select(key);
    if (!members) return false;
    const top = key[0]!;
    const group = s.lookup(top).get(top)!;
    const at = group.indexOf(members[0]!);
    const rest = group.filter((m) => !members.includes(m));
    const parent = key.slice(0, -1);
    if (parent.length > 0 && !rest.some((m) => startsWith(m.path, parent))) {
      // Its dict is left empty, and stays: {} has a marker of its own.
      rest.splice(at, 0, { path: parent, zipName: memberName(parent), source: freshSource(encodeEmptyDict(), true) });
    }
    if (rest.length > 0) s.lookup(top).set(top, rest);
    else s.lookup(top).delete(top);
    s.dirty = true;
    return true;
  }

  listKeysSync(): string[] {
    const keys = [...this.#s().groups.keys()];
    // numpy.savez(**{'': a}) writes a member ".npy": a key no call here can name, so not one to list.
    if (keys.includes('')) {
      throw new CheckpointerError(`${this.checkpointFile}: a member has an empty key name (".npy"), which no key here can address; read the file with numpy`, {
        code: 'ERR_UNSUPPORTED_VALUE', file: this.checkpointFile ?? undefined,
      });
    }
    return keys;
  }

  // ------------------------------------------------------------------ dataset handles

  /** A .npy with an open dataset handle is changed in place by it: set/delete would undo that. */
  #guardNpy(what: string): void {
    if (this.format === 'npy' && this.#handles.size > 0) {
      throw unsupported(`${this.#file}: cannot ${what} while a dataset handle is open on the .npy file; close it first`, this.#file);
    }
  }

  /**
   * `.npy`: the file itself (see NpyDataset; any one-name key). `.npz`: an existing member opened
   * read-only, or with options a stream that writes the member (continuing an existing one).
   */
  override openDatasetSync(key: string[], options: DatasetOptions | null, host: DatasetHost): Dataset & DatasetLifecycle {
    const s = this.#s();
    if (s.format === 'npy') {
      if (s.dirty) throw unsupported(`${this.#file}: a value set or deleted is written at the last close; close the checkpoint before opening the .npy as a dataset`, this.#file);
      if (this.#handles.size > 0) throw unsupported(`${this.#file}: the .npy file already has an open dataset handle`, this.#file);
      const ds = NpyDataset.openSync({
        fileName: this.#file,
        durable: this.durable,
        changed: (header, fileSize) => this.#npyChanged(header, fileSize),
        closed: (d) => this.#handles.delete(d),
      }, key, options, host);
      this.#handles.set(ds, '');
      return ds;
    }
    return this.#openNpzDataset(key, options, host);
  }

  override async openDataset(key: string[], options: DatasetOptions | null, host: DatasetHost): Promise<Dataset & DatasetLifecycle> {
    return this.openDatasetSync(key, options, host);
  }

  #npyChanged(header: Uint8Array, fileSize: number): void {
    const s = this.#s();
    if (s.fd === null) s.fd = fs.openSync(this.#file, 'r');
    s.groups = new Map([[NPY_KEY, [{ path: [NPY_KEY], zipName: '', source: { kind: 'npy', header, fileSize } }]]]);
  }

  /** `before`: the members the key held when the stream began (what a failed stream gives back). */
  #npzIO(before: readonly Member[] | undefined) {
    return {
      fileName: this.#file,
      commit: (key: readonly string[], header: Buffer, spool: Spool) => {
        const s = this.#s();
        s.spools.add(spool);
        this.#place([...key], [{ path: [...key], zipName: memberName(key), source: { kind: 'spool', header, spool } }]);
        s.dirty = true;
      },
      withdraw: (key: readonly string[]) => {
        const s = this.stream as Stream | undefined;
        if (!s) return;
        if (before) {
          this.#place([...key], [...before]);
          return;
        }
        const rest = (s.lookup(key[0]!).get(key[0]!) ?? []).filter((m) => !startsWith(m.path, key));
        if (rest.length > 0) s.lookup(key[0]!).set(key[0]!, rest);
        else s.lookup(key[0]!).delete(key[0]!);
      },
      closed: (d: RowDataset) => this.#handles.delete(d),
      persist: () => this.#commit(this.#s()),
      persistSync: () => this.#commitSync(this.#s()),
    };
  }

  /** Handles on `key` (or under it) write what they buffered, so a read of it sees every row. */
  *#writeBuffered(key: readonly string[]): IoGen<void> {
    for (const [d] of this.#handles) {
      if (startsWith([...d.key], key) || startsWith(key, [...d.key])) yield* d.writeBuffered();
    }
  }

  #openNpzDataset(key: string[], options: DatasetOptions | null, host: DatasetHost): Dataset & DatasetLifecycle {
    const file = this.#file;
    const where = describeKey(key.length === 1 ? key[0] : key);
    const name = memberName(key);
    for (const [d, n] of this.#handles) {
      if (n === name && d instanceof NpzStreamDataset) throw unsupported(`${where} is already open for appending`, file);
    }
    const spec = options ? rowSpec(options, '.npz', file) : null;
    const members = this.#select(key);
    const io = this.#npzIO(members);
    let ds: RowDataset;
    if (!members) {
      if (!spec) throw this.#missing(key);
      checkKeyNames(key, 'npz');
      this.#parentGroup(key); // a parent that is not a dict fails now, not at the close
      const spool = zeroSpool(file, shapeSize(spec.shape) * elementBytes(spec));
      ds = new NpzStreamDataset(io, host, key, spec.dtype, spec.shape, spec.maxshape, spool, spec.autoFlush, spec.records);
    } else {
      if (members.length !== 1 || members[0]!.zipName !== name) {
        throw unsupported(`${where} holds a dict, list or object, not one array; dataset handles open arrays`, file);
      }
      const at = this.#locate(members[0]!, where);
      if (!spec) {
        ds = new NpzMemberDataset(io, host, { key, ...at });
      } else {
        checkExisting(spec, at.dtype, at.shape, where, at.records);
        if (at.records && !at.records.native) {
          throw unsupported(`${where}: records laid out as ${at.records.descr} (padding, offsets or byte order other than packed native) are read, not appended to; re-save them with this package`, file);
        }
        const m0 = spec.maxshape[0] ?? null;
        if (m0 !== null && m0 < at.shape[0]!) throw new RangeError(`${where}: maxshape [${m0}, ...] is smaller than the stored shape [${at.shape.join(', ')}]`);
        // Continue the member: its rows are copied into the stream's spool first.
        const spool = createSpool(file);
        try {
          const bytes = shapeSize(at.shape) * elementBytes(at);
          if (at.memory === null && !at.swap && !at.fortran) {
            runSync(copyIntoSpool(spool, at.fd, at.dataOffset, bytes));
          } else {
            const value = this.loadParameterSync(key) as NDArray | RecordArray;
            const data = value instanceof RecordArray ? encodeRecords(value).data
              : new Uint8Array(value.data.buffer, value.data.byteOffset, value.data.byteLength);
            spool.crc = crc32(data);
            fs.writeSync(spool.fd, data, 0, data.length, 0);
            spool.length = data.length;
          }
        } catch (err) {
          removeSpool(spool);
          throw this.#wrap(err, 'read', ` (member ${JSON.stringify(name)})`);
        }
        ds = new NpzStreamDataset(io, host, key, at.dtype, at.shape, [m0, ...at.shape.slice(1)], spool, spec.autoFlush, at.records);
      }
    }
    this.#handles.set(ds, name);
    return ds as Dataset & DatasetLifecycle;
  }

  /** Where a member's elements are, for a handle: by offset in a file, or decoded in memory. */
  #locate(m: Member, where: string): {
    dtype: DType | 'records'; records: RecordLayout | null; shape: number[]; fd: number; dataOffset: number; swap: boolean; fortran: boolean; memory: TypedArray | null;
  } {
    const src = m.source;
    const fromHeader = (header: Uint8Array, fd: number, dataStart: number) => {
      const h = parseNpyHeader(header);
      const dtype = numericOf(h, where, this.#file);
      const records = h.descr.kind === 'record' ? recordLayoutOf(h.descr) : null;
      return { dtype, records, shape: h.shape, fd, dataOffset: dataStart + h.headerLength, swap: h.descr.swap, fortran: h.fortranOrder, memory: null };
    };
    const inMemory = (value: unknown) => {
      // Records in memory (a compressed member) are held as their packed native rows.
      if (value instanceof RecordArray && value.shape.length > 0) {
        const records = packedRecordLayout(value.fields);
        return { dtype: 'records' as const, records, shape: [...value.shape], fd: -1, dataOffset: 0, swap: false, fortran: false, memory: encodeRecords(value).data as TypedArray };
      }
      if (!(value instanceof NDArray)) throw unsupported(`${where} holds a scalar or strings, not an array of numbers or records`, this.#file);
      return { dtype: value.dtype, records: null, shape: [...value.shape], fd: -1, dataOffset: 0, swap: false, fortran: false, memory: value.data as TypedArray };
    };
    try {
      if (src.kind === 'spool') return fromHeader(src.header, src.spool.fd, -parseNpyHeader(src.header).headerLength) // the spool holds the data alone;
      if (src.kind === 'fresh') return inMemory(decodeData(parseNpyHeader(src.array.header), src.array.data, false));
      if (src.kind === 'zip' && src.entry.method === METHOD_STORED) {
        const fd = this.#s().fd as number;
        const dataStart = runSync(memberDataOffset(fd, src.entry));
        const probe = new Uint8Array(Math.min(src.entry.uncompressedSize, 4096));
        fs.readSync(fd, probe, 0, probe.length, dataStart);
        let header = probe;
        const hlen = npyHeaderLength(probe);
        if (hlen > probe.length) {
          header = new Uint8Array(hlen);
          fs.readSync(fd, header, 0, hlen, dataStart);
        }
        const at = fromHeader(header, fd, dataStart);
        if (at.dataOffset - dataStart + shapeSize(at.shape) * elementBytes(at) > src.entry.uncompressedSize) {
          throw new CheckpointerError('its data is shorter than its header says', { code: 'ERR_CHECKPOINT_CORRUPT' });
        }
        return at;
      }
      return inMemory(this.loadParameterSync(m.path));
    } catch (err) {
      throw this.#wrap(err, 'read', src.kind === 'zip' ? ` (member ${JSON.stringify(m.zipName)})` : '');
    }
  }
}

function numericOf(h: ReturnType<typeof parseNpyHeader>, where: string, file: string): DType | 'records' {
  if (h.descr.kind !== 'numeric' && h.descr.kind !== 'record') {
    throw new CheckpointerError(`${where} holds ${h.descr.kind === 'string' ? 'strings' : `dtype ${h.descr.descr}`}; dataset handles hold numbers or records`, { code: 'ERR_UNSUPPORTED_DTYPE', file });
  }
  if (h.shape.length === 0) throw unsupported(`${where} holds a scalar (0-d); dataset handles open arrays`, file);
  return h.descr.kind === 'record' ? 'records' : h.descr.dtype;
}

function freshSource(array: EncodedNpy, emptyDict: boolean): Source {
  return { kind: 'fresh', array, byteLength: array.data.byteLength, emptyDict };
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}
