/**
 * A minimal zip reader and writer, enough for `.npz` files: what `numpy.savez` and
 * `numpy.savez_compressed` write, and what Python's `zipfile` (numpy.load) reads.
 *
 * Reading works on a file descriptor with positional reads: the central directory is read once
 * (end record, ZIP64 end record and locator, ZIP64 extra fields), and a member is found through
 * its local header without touching the others. Methods: stored (0) and deflate (8); CRC-32 is
 * verified.
 *
 * Writing reproduces `numpy.savez` (or, with `deflateLevel`, `numpy.savez_compressed`: deflated
 * members): stored members, a ZIP64 extra field in every local header
 * (numpy opens members with `force_zip64=True`), the fixed 1980-01-01 timestamp, mode 0600, and
 * ZIP64 central-directory fields and end records where sizes or offsets pass 2 GiB - 1 (Python's
 * ZIP64_LIMIT). A member is written from a sequence of pieces straight from their memory; a member
 * copied from another zip is moved as raw (possibly compressed) bytes without decoding.
 *
 * The I/O is written once as generators that yield operations (`IoOp`); `runSync` performs them
 * with the fs sync calls, `runAsync` with the libuv pool. In the async form a write or read can be
 * started and awaited later, so CRC-32 work on the main thread overlaps the disk transfer.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { CheckpointerError } from '../errors';

// ------------------------------------------------------------------------------------ I/O ops

export type IoOp =
  /** Reads up to buffer.length bytes at `position`; yields back the byte count (short only at EOF). */
  | { op: 'read'; fd: number; buffer: Uint8Array; position: number; defer?: false }
  /** Starts that read; yields back a handle for 'await' (in runSync it has already completed). */
  | { op: 'read'; fd: number; buffer: Uint8Array; position: number; defer: true }
  /** Writes the whole buffer at `position`; yields back undefined, or a handle with defer. */
  | { op: 'write'; fd: number; buffer: Uint8Array; position: number; defer?: boolean }
  /** Waits for a deferred op; yields back its result. */
  | { op: 'await'; handle: IoHandle }
  /** Raw-inflates `data`; yields back the output Buffer. */
  | { op: 'inflate'; data: Uint8Array; outputLength: number }
  /**
   * Starts a raw deflate of `data` at `level`; yields back a handle whose 'await' gives the output
   * Buffer. In runAsync it runs on libuv's pool, so several started in a row compress in parallel.
   */
  | { op: 'deflate'; data: Uint8Array; level: number }
  /** Sets the file's length (ftruncate): zeros when it grows. */
  | { op: 'truncate'; fd: number; length: number }
  /** fdatasync: the file's data (and its length) reach the disk. */
  | { op: 'sync'; fd: number }
  /** Lets the event loop turn (runAsync: one setImmediate) during long work on this thread; runSync ignores it. */
  | { op: 'pause' };

export interface IoHandle {
  readonly id: number;
}

export type IoGen<T> = Generator<IoOp, T, unknown>;

/** Largest count one read(2)/write(2) call is given (Node's own limit is 2 GiB - 1). */
const MAX_IO = 1 << 30;

function readFullySync(fd: number, buffer: Uint8Array, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = fs.readSync(fd, buffer, done, Math.min(buffer.length - done, MAX_IO), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writeFullySync(fd: number, buffer: Uint8Array, position: number): void {
  let done = 0;
  while (done < buffer.length) {
    done += fs.writeSync(fd, buffer, done, Math.min(buffer.length - done, MAX_IO), position + done);
  }
}

function readAsync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function writeAsync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

async function readFully(fd: number, buffer: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buffer.length) {
    const n = await readAsync(fd, buffer, done, Math.min(buffer.length - done, MAX_IO), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

async function writeFully(fd: number, buffer: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    done += await writeAsync(fd, buffer, done, Math.min(buffer.length - done, MAX_IO), position + done);
  }
}

function inflateOptions(outputLength: number): zlib.ZlibOptions {
  // One output chunk of the expected size: no concatenation, and a bound against zip bombs.
  return { chunkSize: Math.min(Math.max(outputLength, 64), 1 << 30), maxOutputLength: Math.max(outputLength, 1) };
}

/** Performs a generator's I/O synchronously. */
export function runSync<T>(gen: IoGen<T>): T {
  const results = new Map<number, unknown>();
  let nextId = 0;
  let step = gen.next();
  while (!step.done) {
    const op = step.value;
    let result: unknown;
    try {
      switch (op.op) {
        case 'read': {
          const n = readFullySync(op.fd, op.buffer, op.position);
          if (op.defer) {
            const handle = { id: nextId++ };
            results.set(handle.id, n);
            result = handle;
          } else {
            result = n;
          }
          break;
        }
        case 'write':
          writeFullySync(op.fd, op.buffer, op.position);
          if (op.defer) {
            const handle = { id: nextId++ };
            results.set(handle.id, undefined);
            result = handle;
          }
          break;
        case 'await':
          result = results.get(op.handle.id);
          results.delete(op.handle.id);
          break;
        case 'inflate':
          result = zlib.inflateRawSync(op.data, inflateOptions(op.outputLength));
          break;
        case 'deflate': {
          const handle = { id: nextId++ };
          results.set(handle.id, zlib.deflateRawSync(op.data, { level: op.level }));
          result = handle;
          break;
        }
        case 'truncate':
          fs.ftruncateSync(op.fd, op.length);
          break;
        case 'sync':
          fs.fdatasyncSync(op.fd);
          break;
        case 'pause':
          break;
      }
    } catch (err) {
      step = gen.throw(err);
      continue;
    }
    step = gen.next(result);
  }
  return step.value;
}

/** Performs a generator's I/O on libuv's pool; deferred ops run while the generator computes. */
export async function runAsync<T>(gen: IoGen<T>): Promise<T> {
  const pending = new Map<number, Promise<unknown>>();
  let nextId = 0;
  const defer = (p: Promise<unknown>): IoHandle => {
    const handle = { id: nextId++ };
    p.catch(() => undefined); // observed by 'await' (or drained below)
    pending.set(handle.id, p);
    return handle;
  };
  try {
    let step = gen.next();
    while (!step.done) {
      const op = step.value;
      let result: unknown;
      try {
        switch (op.op) {
          case 'read':
            result = op.defer ? defer(readFully(op.fd, op.buffer, op.position)) : await readFully(op.fd, op.buffer, op.position);
            break;
          case 'write':
            result = op.defer ? defer(writeFully(op.fd, op.buffer, op.position)) : await writeFully(op.fd, op.buffer, op.position);
            break;
          case 'await': {
            const p = pending.get(op.handle.id);
            pending.delete(op.handle.id);
            result = await p;
            break;
          }
          case 'inflate':
            result = await new Promise<Buffer>((resolve, reject) => {
              zlib.inflateRaw(op.data, inflateOptions(op.outputLength), (err, out) => (err ? reject(err) : resolve(out)));
            });
            break;
          case 'deflate':
            result = defer(new Promise<Buffer>((resolve, reject) => {
              zlib.deflateRaw(op.data, { level: op.level }, (err, out) => (err ? reject(err) : resolve(out)));
            }));
            break;
          case 'truncate':
            await new Promise<void>((resolve, reject) => fs.ftruncate(op.fd, op.length, (err) => (err ? reject(err) : resolve())));
            break;
          case 'sync':
            await new Promise<void>((resolve, reject) => fs.fdatasync(op.fd, (err) => (err ? reject(err) : resolve())));
            break;
          case 'pause':
            await new Promise<void>((resolve) => setImmediate(resolve));
            break;
        }
      } catch (err) {
        step = gen.throw(err);
        continue;
      }
      step = gen.next(result);
    }
    return step.value;
  } finally {
    // Never leave a transfer running on a descriptor the caller is about to close.
    await Promise.allSettled(pending.values());
  }
}

// ------------------------------------------------------------------------------------ CRC-32

type Crc32 = (data: Uint8Array, value?: number) => number;

let crcTable: Uint32Array | undefined;
/** Table-driven CRC-32 for Node versions before 20.15, which lack zlib.crc32. */
function crc32Fallback(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * CRC-32 (zlib's), continuing from `value`. Node 20's zlib.crc32 of an empty Uint8Array returns 0
 * whatever `value` is, so empty input returns `value` here.
 */
export const crc32: Crc32 = typeof (zlib as { crc32?: Crc32 }).crc32 === 'function'
  ? (data, value = 0) => (data.length === 0 ? value >>> 0 : (zlib as unknown as { crc32: Crc32 }).crc32(data, value))
  : crc32Fallback;

function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i]!;
  return sum >>> 0;
}

function gf2Square(square: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]!);
}

/**
 * zlib's crc32_combine: the CRC-32 of A followed by B from crc(A), crc(B) and B's length — so a
 * member's CRC can be computed over its body as it streams, and its header (known only at the end)
 * put in front afterwards.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320;
  for (let n = 1, row = 1; n < 32; n++, row = (row << 1) >>> 0) odd[n] = row;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let crc = crcA >>> 0;
  let len = lengthB;
  for (;;) {
    gf2Square(even, odd);
    if (len % 2 === 1) crc = gf2Times(even, crc);
    len = Math.floor(len / 2);
    if (len === 0) break;
    gf2Square(odd, even);
    if (len % 2 === 1) crc = gf2Times(odd, crc);
    len = Math.floor(len / 2);
    if (len === 0) break;
  }
  return (crc ^ crcB) >>> 0;
}

// ------------------------------------------------------------------------------------ reading

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const EOCD_SIZE = 22;
const EOCD64_SIZE = 56;
const LOCATOR64_SIZE = 20;
const LOCAL_SIZE = 30;
const CENTRAL_SIZE = 46;
const FLAG_ENCRYPTED = 0x1;
const FLAG_UTF8 = 0x800;

export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;

/** Python's zipfile.ZIP64_LIMIT: past it, sizes and offsets go to ZIP64 fields. */
export const ZIP64_LIMIT = 2 ** 31 - 1;
const ZIP_FILECOUNT_LIMIT = 0xffff;

export interface ZipEntry {
  name: string;
  /** The name's bytes in the central directory: its local header must repeat them (zipfile checks it too). */
  rawName?: Uint8Array;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Where the member's local header starts in the file (already corrected for prepended data). */
  localHeaderOffset: number;
}

function corrupt(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_CHECKPOINT_CORRUPT' });
}

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`zip field ${v} is too large`);
  return Number(v);
}

// IBM code page 437, bytes 0x80-0xff: how zipfile decodes names without the UTF-8 flag.
const CP437_HIGH = 'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

function decodeName(bytes: Uint8Array, flags: number): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (flags & FLAG_UTF8) return b.toString('utf8');
  if (isAscii(b)) return b.toString('latin1');
  let s = '';
  for (const c of b) s += c < 0x80 ? String.fromCharCode(c) : CP437_HIGH[c - 0x80];
  return s;
}

function fileSizeOf(fd: number): number {
  return fs.fstatSync(fd).size;
}

/**
 * A zip's central directory as bytes, located and checked but not parsed into entries: what an
 * open of a large archive keeps (see walkCentralDirectory), and what an append copies verbatim.
 */
export interface RawCentralDirectory {
  /** The directory's bytes, as in the file. */
  bytes: Uint8Array;
  /** Where the central directory starts in the file. */
  offset: number;
  /** Bytes prepended to the archive (a self-extractor stub): the stored offsets are this much short. */
  concat: number;
  /** How many entries the directory holds (counted, not the end record's possibly capped count). */
  entryCount: number;
}

export interface CentralDirectory {
  entries: ZipEntry[];
  /** Where the central directory starts in the file. */
  offset: number;
  /** The directory's bytes and layout (see RawCentralDirectory). */
  raw: RawCentralDirectory;
}

/** Reads the central directory of the zip open on `fd`: its entries (and its bytes). */
export function* readCentralDirectory(fd: number, fileSize = fileSizeOf(fd)): IoGen<CentralDirectory> {
  const raw = yield* readRawCentralDirectory(fd, fileSize);
  const entries = parseCentralDirectory(raw);
  // A damaged name in the central directory can move a member under another key, so reading one
  // key would miss it silently: every local header is checked against its name up front (one small
  // read each). Larger archives are checked member by member as they are read (memberDataOffset).
  if (entries.length <= LOCAL_NAMES_CHECKED_UP_TO) yield* checkLocalHeaders(fd, entries);
  return { entries, offset: raw.offset, raw };
}

/** The entries of a directory read by readRawCentralDirectory (names decoded; rawName views its bytes). */
export function parseCentralDirectory(raw: RawCentralDirectory): ZipEntry[] {
  const entries: ZipEntry[] = [];
  walkCentralDirectory(raw.bytes, raw.offset, raw.concat, entries);
  return entries;
}

/**
 * Finds the end records of the zip open on `fd`, reads its central directory's bytes in one read
 * and checks every entry (signature, lengths, ZIP64 fields, that its member lies before the
 * directory) without decoding names or building entries: an archive that opens this way parses.
 */
export function* readRawCentralDirectory(fd: number, fileSize = fileSizeOf(fd)): IoGen<RawCentralDirectory> {
  if (fileSize < EOCD_SIZE) throw corrupt(`not a zip file: ${fileSize} bytes is too short for an end record`);
  const tailLen = Math.min(fileSize, EOCD_SIZE + 0xffff + LOCATOR64_SIZE + EOCD64_SIZE);
  const tail = new Uint8Array(tailLen);
  const tailStart = fileSize - tailLen;
  if ((yield { op: 'read', fd, buffer: tail, position: tailStart }) as number !== tailLen) throw corrupt('zip file shrank while being read');
  const tv = new DataView(tail.buffer);

  // The end record: the last signature whose comment reaches exactly to the end of the file
  // (zipfile accepts a comment that stops short too, so that is a fallback).
  let eocd = -1;
  for (let p = tailLen - EOCD_SIZE; p >= 0; p--) {
    if (tv.getUint32(p, true) !== SIG_EOCD) continue;
    const commentLen = tv.getUint16(p + 20, true);
    if (p + EOCD_SIZE + commentLen === tailLen) { eocd = p; break; }
    if (eocd < 0 && p + EOCD_SIZE + commentLen <= tailLen) eocd = p;
  }
  if (eocd < 0) throw corrupt('not a zip file: no end of central directory record');
  const disk = tv.getUint16(eocd + 4, true);
  const cdDisk = tv.getUint16(eocd + 6, true);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  const eocdPos = tailStart + eocd;
  let cdEnd = eocdPos;

  // ZIP64: the locator sits right before the end record, the ZIP64 end record right before it.
  if (eocd >= LOCATOR64_SIZE && tv.getUint32(eocd - LOCATOR64_SIZE, true) === SIG_LOCATOR64) {
    const loc = eocd - LOCATOR64_SIZE;
    if (tv.getUint32(loc + 16, true) > 1) throw corrupt('multi-disk zip files are not supported');
    let rec: DataView;
    let recPos: number;
    if (loc >= EOCD64_SIZE && tv.getUint32(loc - EOCD64_SIZE, true) === SIG_EOCD64) {
      rec = new DataView(tail.buffer, loc - EOCD64_SIZE, EOCD64_SIZE);
      recPos = tailStart + loc - EOCD64_SIZE;
    } else {
      recPos = u64(tv, loc + 8);
      const buf = new Uint8Array(EOCD64_SIZE);
      if (recPos + EOCD64_SIZE > fileSize || (yield { op: 'read', fd, buffer: buf, position: recPos }) as number !== EOCD64_SIZE) {
        throw corrupt('ZIP64 end of central directory record is out of the file');
      }
      rec = new DataView(buf.buffer);
      if (rec.getUint32(0, true) !== SIG_EOCD64) throw corrupt('ZIP64 end of central directory record has a bad signature');
    }
    if (rec.getUint32(16, true) !== 0 || rec.getUint32(20, true) !== 0) throw corrupt('multi-disk zip files are not supported');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
    cdEnd = recPos;
  } else if (disk !== 0 || cdDisk !== 0) {
    throw corrupt('multi-disk zip files are not supported');
  }

  // Data prepended to the archive (a self-extractor stub) shifts every offset; zipfile allows it.
  const concat = cdEnd - cdSize - cdOffset;
  if (concat < 0) throw corrupt('central directory does not fit before its end record (truncated file?)');
  const cdStart = cdOffset + concat;
  const cd = new Uint8Array(cdSize);
  if ((yield { op: 'read', fd, buffer: cd, position: cdStart }) as number !== cdSize) throw corrupt('central directory is truncated');
  const entryCount = walkCentralDirectory(cd, cdStart, concat, null);
  if (count !== entryCount && count !== ZIP_FILECOUNT_LIMIT) {
    throw corrupt(`central directory holds ${entryCount} entries, its end record says ${count}`);
  }
  return { bytes: cd, offset: cdStart, concat, entryCount };
}

/**
 * Walks the directory `cd` (at `cdStart` in the file), checking each entry; with `into`, pushes
 * each as a ZipEntry. Returns the number of entries.
 */
function walkCentralDirectory(cd: Uint8Array, cdStart: number, concat: number, into: ZipEntry[] | null): number {
  const cdSize = cd.length;
  const v = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  let n = 0;
  let p = 0;
  while (p + CENTRAL_SIZE <= cdSize) {
    if (v.getUint32(p, true) !== SIG_CENTRAL) throw corrupt(`bad central directory entry signature at ${cdStart + p}`);
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let csize = v.getUint32(p + 20, true);
    let usize = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let offset = v.getUint32(p + 42, true);
    const end = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (end > cdSize) throw corrupt('central directory entry runs past the directory');
    const nameAt = p + CENTRAL_SIZE;
    const nameOf = (): string => decodeName(cd.subarray(nameAt, nameAt + nameLen), flags);
    // ZIP64 extra field (id 1): only the fields whose 32-bit slot is 0xFFFFFFFF, in this order.
    let x = p + CENTRAL_SIZE + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = v.getUint16(x, true);
      const len = v.getUint16(x + 2, true);
      if (x + 4 + len > xEnd) throw corrupt(`corrupt extra field of ${nameOf()}`);
      if (id === 1) {
        let q = x + 4;
        const take = (): number => {
          if (q + 8 > x + 4 + len) throw corrupt(`ZIP64 extra field of ${nameOf()} is too short`);
          const r = u64(v, q);
          q += 8;
          return r;
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (offset === 0xffffffff) offset = take();
      }
      x += 4 + len;
    }
    const localHeaderOffset = offset + concat;
    if (localHeaderOffset + LOCAL_SIZE + nameLen + csize > cdStart) {
      throw corrupt(`member ${JSON.stringify(nameOf())} runs past the start of the central directory (truncated file?)`);
    }
    if (into) {
      const rawName = cd.subarray(nameAt, nameAt + nameLen); // a view: the index keeps the directory's bytes
      into.push({ name: decodeName(rawName, flags), rawName, flags, method, crc32: crc, compressedSize: csize, uncompressedSize: usize, localHeaderOffset });
    }
    n++;
    p = end;
  }
  return n;
}

/**
 * Whether an entry's name starts with `prefix` and `accept(bytes, rest, end)` says yes to the
 * rest of it, [rest, end) of `bytes` (the directory's bytes): a scan of the raw directory, with no
 * string made per entry.
 */
export function someRawName(raw: RawCentralDirectory, prefix: Uint8Array, accept: (bytes: Uint8Array, rest: number, end: number) => boolean): boolean {
  const cd = raw.bytes;
  const v = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const q = prefix.length;
  const first = q > 0 ? prefix[0]! : -1;
  for (let p = 0; p + CENTRAL_SIZE <= cd.length;) {
    const nameLen = v.getUint16(p + 28, true);
    const start = p + CENTRAL_SIZE;
    if (nameLen >= q && (first < 0 || cd[start] === first)) {
      let k = 1;
      while (k < q && cd[start + k] === prefix[k]) k++;
      if (k >= q && accept(cd, start + q, start + nameLen)) return true;
    }
    p = start + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return false;
}

/** Up to this many members, opening an archive checks every local header's name (see readCentralDirectory). */
export const LOCAL_NAMES_CHECKED_UP_TO = 20_000;
/** Local headers this close together are checked from one read (a run of small members). */
const HEADER_RUN_SPAN = 256 * 1024;

/** Checks each entry's local header names it (memberDataOffset), reading runs of nearby headers at once. */
export function* checkLocalHeaders(fd: number, entries: readonly ZipEntry[]): IoGen<void> {
  const byOffset = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 0; i < byOffset.length;) {
    const first = byOffset[i]!.localHeaderOffset;
    let j = i;
    let end = first;
    while (j < byOffset.length && byOffset[j]!.localHeaderOffset - first <= HEADER_RUN_SPAN) {
      const e = byOffset[j]!;
      end = Math.max(end, e.localHeaderOffset + LOCAL_SIZE + (e.rawName?.length ?? 0));
      j++;
    }
    const run = new Uint8Array(end - first);
    const n = (yield { op: 'read', fd, buffer: run, position: first }) as number;
    for (let k = i; k < j; k++) {
      const e = byOffset[k]!;
      const at = e.localHeaderOffset - first;
      const want = LOCAL_SIZE + (e.rawName?.length ?? 0);
      if (at + want > n) throw corrupt(`local header of ${JSON.stringify(e.name)} is truncated`);
      localDataOffset(run.subarray(at, at + want), e);
    }
    i = j;
  }
}

/** Where a member's (possibly compressed) data starts: after its local header. */
export function* memberDataOffset(fd: number, entry: ZipEntry): IoGen<number> {
  const want = LOCAL_SIZE + (entry.rawName?.length ?? 0);
  const head = new Uint8Array(want);
  if ((yield { op: 'read', fd, buffer: head, position: entry.localHeaderOffset }) as number !== want) {
    throw corrupt(`local header of ${JSON.stringify(entry.name)} is truncated`);
  }
  return localDataOffset(head, entry);
}

/** `head`: the local header and (at least) as many bytes as the central directory's name has. */
function localDataOffset(head: Uint8Array, entry: ZipEntry): number {
  const v = new DataView(head.buffer, head.byteOffset, LOCAL_SIZE);
  if (v.getUint32(0, true) !== SIG_LOCAL) throw corrupt(`bad local header signature for ${JSON.stringify(entry.name)}`);
  const nameLen = v.getUint16(26, true);
  // A member whose local header names another file is read as a different member by other
  // readers (numpy's zipfile refuses it): a damaged or spliced archive.
  const raw = entry.rawName;
  if (raw && (nameLen !== raw.length || head.length < LOCAL_SIZE + nameLen || !Buffer.from(raw).equals(head.subarray(LOCAL_SIZE, LOCAL_SIZE + nameLen)))) {
    const local = head.length >= LOCAL_SIZE + nameLen ? decodeName(head.subarray(LOCAL_SIZE, LOCAL_SIZE + nameLen), entry.flags) : `${nameLen} bytes`;
    throw corrupt(`member ${JSON.stringify(entry.name)}: its local header names ${JSON.stringify(local)} (the central directory and the local header disagree)`);
  }
  return entry.localHeaderOffset + LOCAL_SIZE + nameLen + v.getUint16(28, true);
}

function checkReadable(entry: ZipEntry): void {
  if (entry.flags & FLAG_ENCRYPTED) throw corrupt(`member ${JSON.stringify(entry.name)} is encrypted`);
  if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
    throw new CheckpointerError(`member ${JSON.stringify(entry.name)} uses compression method ${entry.method}; only stored and deflate are read`, {
      code: 'ERR_UNSUPPORTED_DTYPE',
    });
  }
}

/** An inflated member, checked against the central directory: its size, then its CRC-32. */
function checkedInflated(entry: ZipEntry, out: Buffer, usize: number): Buffer {
  if (out.length !== usize) throw corrupt(`${JSON.stringify(entry.name)} inflates to ${out.length} bytes, not ${usize}`);
  const c = crc32(out);
  if (c !== entry.crc32) throw crcMismatch(entry, c);
  return out;
}

function crcMismatch(entry: ZipEntry, got: number): CheckpointerError {
  return corrupt(`CRC-32 mismatch in ${JSON.stringify(entry.name)}: stored ${hex(entry.crc32)}, data ${hex(got)}`);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Reads bytes into `target` in chunks, CRC-ing each chunk while the next one is read (async). */
const READ_CHUNK = 8 * 1024 * 1024;
function* readAndCrc(fd: number, target: Uint8Array, position: number, crc: number): IoGen<number> {
  const total = target.length;
  if (total === 0) return crc;
  const chunk = (i: number): Uint8Array => target.subarray(i, Math.min(total, i + READ_CHUNK));
  let at = 0;
  let current = chunk(0);
  let handle = (yield { op: 'read', fd, buffer: current, position, defer: true }) as IoHandle;
  for (;;) {
    const n = (yield { op: 'await', handle }) as number;
    if (n !== current.length) throw corrupt('member data is truncated');
    const next = at + current.length;
    let nextChunk: Uint8Array | undefined;
    if (next < total) {
      nextChunk = chunk(next);
      handle = (yield { op: 'read', fd, buffer: nextChunk, position: position + next, defer: true }) as IoHandle;
    }
    crc = crc32(current, crc);
    if (!nextChunk) return crc;
    at = next;
    current = nextChunk;
  }
}

/**
 * How to read a member made of a header and a body (an .npy), so the body lands directly in
 * memory the caller allocates.
 */
export interface MemberReader<T> {
  /** The header's byte length, given the member's first min(size, 256) bytes or more (may ask for more). */
  headerLength(prefix: Uint8Array): number;
  /** Given the complete header: the buffer the body is read into (as long as the body, or shorter). */
  target(header: Uint8Array): Uint8Array;
  /** After the target was filled and the CRC checked: the value. */
  finish(): T;
  /** Compressed members instead: the whole inflated member (the reader owns it). */
  fromInflated(bytes: Buffer): T;
}

const PROBE = 256;
/**
 * Members up to this size are deflated and inflated on the calling thread: the pool's per-call
 * cost (a zlib stream object, two thread hops) is larger than the work. Larger ones go to the pool.
 */
const INLINE_ZLIB = 64 * 1024;
/** Inline zlib work between two 'pause' ops in a write (keeps the event loop turning in async writes). */
const INLINE_SLICE_NS = 4_000_000n;

/** Reads one member through a MemberReader, verifying its CRC-32. */
/**
 * A window of a zip file kept between reads of small members (one per open file): reading many
 * small keys costs one read per 256 KiB instead of two per member. Only for files that do not
 * change under the descriptor (ours are replaced by rename, never written in place).
 */
export interface ReadWindow {
  w: SourceWindow | null;
}

const READ_WINDOW = 256 * 1024;
/** Members up to this size (compressed, with their local header) are read through the window. */
const WINDOWED_MEMBER = 64 * 1024;

/** A small member read from the window: its local header checked, the data inflated if deflated, the CRC verified. */
function* readSmallMember<T>(fd: number, entry: ZipEntry, reader: MemberReader<T>, window: ReadWindow): IoGen<T> {
  const { compressedSize: csize, uncompressedSize: usize } = entry;
  const nameLen = entry.rawName?.length ?? 0;
  let src = yield* sourceBytes(window, fd, entry.localHeaderOffset, LOCAL_SIZE + nameLen + 1024 + csize, READ_WINDOW);
  if (src.length < LOCAL_SIZE + nameLen) throw corrupt(`local header of ${JSON.stringify(entry.name)} is truncated`);
  const dataStart = localDataOffset(src, entry) - entry.localHeaderOffset;
  if (dataStart + csize > src.length) {
    src = yield* sourceBytes(window, fd, entry.localHeaderOffset, dataStart + csize, READ_WINDOW);
    if (dataStart + csize > src.length) throw corrupt(`${JSON.stringify(entry.name)} is truncated`);
  }
  const data = src.subarray(dataStart, dataStart + csize);
  if (entry.method === METHOD_DEFLATE) {
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(data, inflateOptions(usize));
    } catch (err) {
      throw corrupt(`${JSON.stringify(entry.name)} does not inflate: ${(err as Error).message}`);
    }
    return reader.fromInflated(checkedInflated(entry, out, usize));
  }
  if (csize !== usize) throw corrupt(`stored member ${JSON.stringify(entry.name)} has different compressed and uncompressed sizes`);
  const c = crc32(data);
  if (c !== entry.crc32) throw crcMismatch(entry, c);
  const hlen = reader.headerLength(data);
  if (hlen > usize) throw corrupt(`${JSON.stringify(entry.name)}: its header runs past the member`);
  const target = reader.target(data.subarray(0, hlen));
  if (hlen + target.length > usize) throw corrupt(`${JSON.stringify(entry.name)}: its data is shorter than its header says`);
  target.set(data.subarray(hlen, hlen + target.length));
  return reader.finish();
}

export function* readMember<T>(fd: number, entry: ZipEntry, reader: MemberReader<T>, window?: ReadWindow): IoGen<T> {
  checkReadable(entry);
  const { compressedSize: csize, uncompressedSize: usize } = entry;
  if (window && usize <= WINDOWED_MEMBER && csize <= WINDOWED_MEMBER) return yield* readSmallMember(fd, entry, reader, window);
  // The local header, the name and extra field, and the start of the data in one read.
  const first = new Uint8Array(LOCAL_SIZE + Math.max(entry.rawName?.length ?? 0, Buffer.byteLength(entry.name, 'utf8')) + 64 + PROBE);
  const got = (yield { op: 'read', fd, buffer: first, position: entry.localHeaderOffset }) as number;
  if (got < LOCAL_SIZE) throw corrupt(`local header of ${JSON.stringify(entry.name)} is truncated`);
  const dataStart = localDataOffset(first, entry);
  if (entry.method === METHOD_DEFLATE) {
    const packed = Buffer.allocUnsafe(csize);
    if ((yield { op: 'read', fd, buffer: packed, position: dataStart }) as number !== csize) throw corrupt(`${JSON.stringify(entry.name)} is truncated`);
    let out: Buffer;
    try {
      // Small members inline: a trip to the pool costs more than inflating a few KiB here.
      out = usize <= INLINE_ZLIB ? zlib.inflateRawSync(packed, inflateOptions(usize))
        : (yield { op: 'inflate', data: packed, outputLength: usize }) as Buffer;
    } catch (err) {
      throw corrupt(`${JSON.stringify(entry.name)} does not inflate: ${(err as Error).message}`);
    }
    return reader.fromInflated(checkedInflated(entry, out, usize));
  }
  if (csize !== usize) throw corrupt(`stored member ${JSON.stringify(entry.name)} has different compressed and uncompressed sizes`);
  // Stored: the header from that first read (or a second small one), the body straight into place.
  const skip = dataStart - entry.localHeaderOffset;
  const want = Math.min(usize, PROBE);
  let prefix = first.subarray(Math.min(skip, got), Math.min(got, skip + usize));
  if (prefix.length < want) {
    prefix = new Uint8Array(want);
    if ((yield { op: 'read', fd, buffer: prefix, position: dataStart }) as number !== want) throw corrupt(`${JSON.stringify(entry.name)} is truncated`);
  }
  let hlen = reader.headerLength(prefix);
  if (hlen > usize) throw corrupt(`${JSON.stringify(entry.name)}: its header runs past the member`);
  if (hlen > prefix.length) {
    prefix = new Uint8Array(hlen);
    if ((yield { op: 'read', fd, buffer: prefix, position: dataStart }) as number !== hlen) throw corrupt(`${JSON.stringify(entry.name)} is truncated`);
    hlen = reader.headerLength(prefix);
  }
  const header = prefix.subarray(0, hlen);
  const target = reader.target(header);
  if (hlen + target.length > usize) throw corrupt(`${JSON.stringify(entry.name)}: its data is shorter than its header says`);
  let crc = crc32(header);
  crc = yield* readAndCrc(fd, target, dataStart + hlen, crc);
  const rest = usize - hlen - target.length;
  if (rest > 0) {
    // Trailing bytes the header does not describe: read them only for the CRC.
    const scratch = new Uint8Array(Math.min(rest, READ_CHUNK));
    for (let done = 0; done < rest;) {
      const part = scratch.subarray(0, Math.min(scratch.length, rest - done));
      if ((yield { op: 'read', fd, buffer: part, position: dataStart + hlen + target.length + done }) as number !== part.length) {
        throw corrupt(`${JSON.stringify(entry.name)} is truncated`);
      }
      crc = crc32(part, crc);
      done += part.length;
    }
  }
  if (crc !== entry.crc32) throw crcMismatch(entry, crc);
  return reader.finish();
}

/** A member's whole content, inflated and verified. */
export function* readMemberBytes(fd: number, entry: ZipEntry): IoGen<Buffer> {
  let out: Buffer | undefined;
  return yield* readMember<Buffer>(fd, entry, {
    headerLength: () => 0,
    target: () => (out = Buffer.allocUnsafe(entry.uncompressedSize)),
    finish: () => out as Buffer,
    fromInflated: (bytes) => bytes,
  });
}

// ------------------------------------------------------------------------------------ writing

/** A member written from memory, stored (uncompressed); its CRC-32 is computed while writing. */
export interface NewMember {
  name: string;
  pieces: readonly Uint8Array[];
}

/** A member moved from another zip as raw bytes (compressed or not), keeping its method and CRC. */
export interface CopiedMember {
  name: string;
  from: { fd: number; entry: ZipEntry };
}

/**
 * A member made of a header from memory and a body already on disk (a spool file a dataset stream
 * wrote), stored; `crc32` covers header and body (see crc32Combine). The body is copied, not read
 * into memory whole.
 */
export interface StreamedMember {
  name: string;
  head: Uint8Array;
  body: { fd: number; position: number; length: number };
  crc32: number;
}

export type WriteMember = NewMember | CopiedMember | StreamedMember;

export interface ZipWriteOptions {
  /** Sizes and offsets above this go to ZIP64 fields (default: Python's ZIP64_LIMIT, 2 GiB - 1). */
  zip64Limit?: number;
  /**
   * Deflate new members (`NewMember`s) at this zlib level (0-9), as `numpy.savez_compressed` does;
   * copied members keep their method, streamed ones are stored. Default: stored, as `numpy.savez`.
   */
  deflateLevel?: number;
  /**
   * Append to an archive instead of writing a whole one: `fd` already holds the old archive's
   * bytes up to `start` (where its central directory began). The members are written from
   * `start`, then `centralDirectory` (the old directory's bytes, verbatim: its offsets stay right,
   * as nothing before `start` moves) with the new members' entries after it, then the end records
   * for `count` + the new members. The archive must have no prepended bytes (concat 0).
   */
  append?: { start: number; centralDirectory: Uint8Array; count: number };
}

interface Written {
  name: Buffer;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  offset: number;
}

const DOS_DATE_1980_01_01 = 0x21;
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
const CREATE_SYSTEM_UNIX = 3;
const EXTERNAL_ATTR_0600 = (0o600 << 16) >>> 0;
const WRITE_CHUNK = 8 * 1024 * 1024;

function encodeMemberName(name: string): { bytes: Buffer; flags: number } {
  // zipfile: ASCII names as they are, others UTF-8 with general purpose bit 11.
  const ascii = /^[\x00-\x7f]*$/.test(name);
  return { bytes: Buffer.from(name, ascii ? 'latin1' : 'utf8'), flags: ascii ? 0 : FLAG_UTF8 };
}

/** A copied member's name bytes: its stored ones when they are what encodeMemberName gives (ASCII, unchanged). */
function copiedName(m: CopiedMember): { bytes: Buffer; flags: number } {
  const raw = m.from.entry.rawName;
  if (raw && m.name === m.from.entry.name && !(m.from.entry.flags & FLAG_UTF8) && isAscii(raw)) {
    return { bytes: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), flags: 0 };
  }
  return encodeMemberName(m.name);
}

/** The local header numpy.savez writes: the ZIP64 extra field is always there (force_zip64). */
function localHeader(w: Omit<Written, 'offset'>, limit: number): Buffer {
  const h = Buffer.alloc(LOCAL_SIZE + w.name.length + 20);
  localHeaderInto(h, 0, w, limit);
  return h;
}

function localHeaderInto(out: Buffer, at: number, w: Omit<Written, 'offset'>, limit: number): void {
  const big = w.uncompressedSize > limit || w.compressedSize > limit;
  const h = at === 0 ? out : out.subarray(at, at + LOCAL_SIZE + w.name.length + 20);
  h.writeUInt32LE(SIG_LOCAL, 0);
  h.writeUInt16LE(big ? VERSION_ZIP64 : VERSION_DEFAULT, 4);
  h.writeUInt16LE(w.flags, 6);
  h.writeUInt16LE(w.method, 8);
  h.writeUInt16LE(0, 10); // time 00:00:00
  h.writeUInt16LE(DOS_DATE_1980_01_01, 12);
  h.writeUInt32LE(w.crc32, 14);
  h.writeUInt32LE(big ? 0xffffffff : w.compressedSize, 18);
  h.writeUInt32LE(big ? 0xffffffff : w.uncompressedSize, 22);
  h.writeUInt16LE(w.name.length, 26);
  h.writeUInt16LE(20, 28);
  w.name.copy(h, LOCAL_SIZE);
  const x = LOCAL_SIZE + w.name.length;
  h.writeUInt16LE(1, x);
  h.writeUInt16LE(16, x + 2);
  writeU64(h, w.uncompressedSize, x + 4);
  writeU64(h, w.compressedSize, x + 12);
}

/** A non-negative safe integer as 64-bit little-endian (without a BigInt per field). */
function writeU64(b: Buffer, n: number, at: number): void {
  b.writeUInt32LE(n % 0x100000000, at);
  b.writeUInt32LE(Math.floor(n / 0x100000000), at + 4);
}

function centralEntry(w: Written, limit: number, into?: { buffer: Buffer; at: number }): Buffer {
  const extra: number[] = [];
  let usize = w.uncompressedSize;
  let csize = w.compressedSize;
  let offset = w.offset;
  if (usize > limit || csize > limit) {
    extra.push(usize, csize);
    usize = 0xffffffff;
    csize = 0xffffffff;
  }
  if (offset > limit) {
    extra.push(offset);
    offset = 0xffffffff;
  }
  const extraLen = extra.length ? 4 + 8 * extra.length : 0;
  const version = extra.length ? VERSION_ZIP64 : VERSION_DEFAULT;
  const length = CENTRAL_SIZE + w.name.length + extraLen;
  const e = into ? into.buffer.subarray(into.at, into.at + length) : Buffer.alloc(length);
  e.writeUInt32LE(SIG_CENTRAL, 0);
  e.writeUInt8(version, 4);
  e.writeUInt8(CREATE_SYSTEM_UNIX, 5);
  e.writeUInt16LE(version, 6);
  e.writeUInt16LE(w.flags, 8);
  e.writeUInt16LE(w.method, 10);
  e.writeUInt16LE(0, 12);
  e.writeUInt16LE(DOS_DATE_1980_01_01, 14);
  e.writeUInt32LE(w.crc32, 16);
  e.writeUInt32LE(csize, 20);
  e.writeUInt32LE(usize, 24);
  e.writeUInt16LE(w.name.length, 28);
  e.writeUInt16LE(extraLen, 30);
  e.writeUInt16LE(0, 32); // comment
  e.writeUInt16LE(0, 34); // disk
  e.writeUInt16LE(0, 36); // internal attributes
  e.writeUInt32LE(EXTERNAL_ATTR_0600, 38);
  e.writeUInt32LE(offset, 42);
  w.name.copy(e, CENTRAL_SIZE);
  if (extra.length) {
    const x = CENTRAL_SIZE + w.name.length;
    e.writeUInt16LE(1, x);
    e.writeUInt16LE(8 * extra.length, x + 2);
    extra.forEach((n, i) => writeU64(e, n, x + 4 + 8 * i));
  }
  if (into) into.at += length;
  return e;
}

function endRecords(count: number, cdSize: number, cdOffset: number, limit: number): Buffer {
  const zip64 = count > ZIP_FILECOUNT_LIMIT || cdOffset > limit || cdSize > limit;
  const out = Buffer.alloc((zip64 ? EOCD64_SIZE + LOCATOR64_SIZE : 0) + EOCD_SIZE);
  let p = 0;
  if (zip64) {
    out.writeUInt32LE(SIG_EOCD64, 0);
    out.writeBigUInt64LE(44n, 4); // size of the rest of this record
    out.writeUInt16LE(VERSION_ZIP64, 12);
    out.writeUInt16LE(VERSION_ZIP64, 14);
    out.writeUInt32LE(0, 16);
    out.writeUInt32LE(0, 20);
    out.writeBigUInt64LE(BigInt(count), 24);
    out.writeBigUInt64LE(BigInt(count), 32);
    out.writeBigUInt64LE(BigInt(cdSize), 40);
    out.writeBigUInt64LE(BigInt(cdOffset), 48);
    out.writeUInt32LE(SIG_LOCATOR64, 56);
    out.writeUInt32LE(0, 60);
    out.writeBigUInt64LE(BigInt(cdOffset + cdSize), 64);
    out.writeUInt32LE(1, 72);
    p = EOCD64_SIZE + LOCATOR64_SIZE;
  }
  out.writeUInt32LE(SIG_EOCD, p);
  out.writeUInt16LE(Math.min(count, ZIP_FILECOUNT_LIMIT), p + 8);
  out.writeUInt16LE(Math.min(count, ZIP_FILECOUNT_LIMIT), p + 10);
  out.writeUInt32LE(Math.min(cdSize, 0xffffffff), p + 12);
  out.writeUInt32LE(Math.min(cdOffset, 0xffffffff), p + 16);
  out.writeUInt16LE(0, p + 20);
  return out;
}

/** Writes `data` in chunks; each chunk's CRC-32 is computed while it is being written. */
function* writeAndCrc(fd: number, data: Uint8Array, position: number, crc: number): IoGen<number> {
  for (let i = 0; i < data.length; i += WRITE_CHUNK) {
    const chunk = data.subarray(i, Math.min(data.length, i + WRITE_CHUNK));
    const handle = (yield { op: 'write', fd, buffer: chunk, position: position + i, defer: true }) as IoHandle;
    crc = crc32(chunk, crc);
    yield { op: 'await', handle };
  }
  return crc;
}

/** Copies `length` bytes between descriptors, reading the next chunk while the current one is written. */
function* copyRange(fromFd: number, from: number, toFd: number, to: number, length: number): IoGen<void> {
  if (length === 0) return;
  const size = Math.min(length, WRITE_CHUNK);
  let a = new Uint8Array(size);
  let b = new Uint8Array(size);
  let n = Math.min(size, length);
  if ((yield { op: 'read', fd: fromFd, buffer: a.subarray(0, n), position: from }) as number !== n) throw corrupt('member data is truncated');
  for (let done = 0; done < length;) {
    const w = (yield { op: 'write', fd: toFd, buffer: a.subarray(0, n), position: to + done, defer: true }) as IoHandle;
    const next = done + n;
    const m = Math.min(size, length - next);
    let r: IoHandle | undefined;
    if (m > 0) r = (yield { op: 'read', fd: fromFd, buffer: b.subarray(0, m), position: from + next, defer: true }) as IoHandle;
    yield { op: 'await', handle: w };
    if (r && (yield { op: 'await', handle: r }) as number !== m) throw corrupt('member data is truncated');
    done = next;
    n = m;
    [a, b] = [b, a];
  }
}

/** Members up to this size (header included) are gathered into the staging buffer, not written one by one. */
const SMALL_MEMBER = 256 * 1024;
/** The staging buffer: small members (new, copied, deflated) are written this many bytes at a time. */
const STAGE_SIZE = 4 * 1024 * 1024;
/** How far ahead deflates are started (they run on libuv's pool in parallel): members and input bytes. */
const DEFLATE_AHEAD_MEMBERS = 64;
const DEFLATE_AHEAD_BYTES = 64 * 1024 * 1024;

/**
 * Small members' bytes gathered in memory and written in large pieces (one write per 4 MiB instead
 * of three per member): two buffers, one filling while the other's write is in flight.
 */
class Stage {
  buffers = [Buffer.allocUnsafe(STAGE_SIZE), Buffer.allocUnsafe(STAGE_SIZE)];
  current = 0;
  length = 0;
  /** File position of the current buffer's first byte. */
  start: number;
  inFlight: (IoHandle | null)[] = [null, null];
  constructor(readonly fd: number, start: number) {
    this.start = start;
  }
  get buffer(): Buffer {
    return this.buffers[this.current]!;
  }
  /** Room for `n` more bytes (n <= STAGE_SIZE), flushing first when they do not fit. */
  *reserve(n: number): IoGen<void> {
    if (this.length + n > STAGE_SIZE) yield* this.flush(false);
  }
  /** Starts the write of what is gathered, switches buffers; `wait`: also waits for every write. */
  *flush(wait: boolean): IoGen<void> {
    if (this.length > 0) {
      const i = this.current;
      this.inFlight[i] = (yield { op: 'write', fd: this.fd, buffer: this.buffer.subarray(0, this.length), position: this.start, defer: true }) as IoHandle;
      this.start += this.length;
      this.length = 0;
      this.current = 1 - i;
      const other = this.inFlight[this.current];
      if (other) {
        this.inFlight[this.current] = null;
        yield { op: 'await', handle: other };
      }
    }
    if (wait) {
      for (let k = 0; k < 2; k++) {
        const h = this.inFlight[k];
        if (h) {
          this.inFlight[k] = null;
          yield { op: 'await', handle: h };
        }
      }
    }
  }
  /** The file position of the next byte gathered. */
  get position(): number {
    return this.start + this.length;
  }
}

/** A window of the source zip read into memory, from which small copied members are taken. */
export interface SourceWindow {
  fd: number;
  start: number;
  bytes: Uint8Array;
}

/**
 * The bytes of [position, position + length) of `fd`, from the window or a fresh read of one
 * (a large one, for the members that follow); shorter only where the file ends.
 */
function* sourceBytes(win: { w: SourceWindow | null }, fd: number, position: number, length: number, windowSize = STAGE_SIZE): IoGen<Uint8Array> {
  const w = win.w;
  if (w && w.fd === fd && position >= w.start && position + length <= w.start + w.bytes.length) {
    return w.bytes.subarray(position - w.start, position - w.start + length);
  }
  const bytes = new Uint8Array(Math.max(length, windowSize));
  const n = (yield { op: 'read', fd, buffer: bytes, position }) as number;
  win.w = { fd, start: position, bytes: bytes.subarray(0, n) };
  return bytes.subarray(0, Math.min(n, length));
}

function concatPieces(pieces: readonly Uint8Array[], size: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Writes a whole zip to `fd` (from offset 0): members in order, central directory, end records.
 * With `opts.append`, adds the members to an archive whose bytes `fd` holds (see ZipWriteOptions).
 * Returns where the archive ends (the file may be longer: what was there before is not cut off).
 *
 * Small members go through a staging buffer (a few large writes instead of three small ones per
 * member, which dominated files of many small keys); small copied members are cut out of large
 * reads of the old file. With `deflateLevel`, new members are deflated (method 8, as
 * `numpy.savez_compressed` writes them), the deflates started ahead so they run in parallel.
 */
export function* writeZip(fd: number, members: readonly WriteMember[], opts: ZipWriteOptions = {}): IoGen<number> {
  const limit = opts.zip64Limit ?? ZIP64_LIMIT;
  const level = opts.deflateLevel;
  const written: Written[] = [];
  const append = opts.append;
  const stage = new Stage(fd, append?.start ?? 0);
  const win: { w: SourceWindow | null } = { w: null };
  let sliceStart = process.hrtime.bigint();

  // Deflates started ahead of the member being written, in member order.
  const deflates = new Map<number, { handle: IoHandle; size: number; crc: number }>();
  let nextDeflate = 0;
  let aheadBytes = 0;
  function* startDeflates(upTo: number): IoGen<void> {
    if (level === undefined) return;
    while (nextDeflate < members.length && (nextDeflate <= upTo || (deflates.size < DEFLATE_AHEAD_MEMBERS && aheadBytes < DEFLATE_AHEAD_BYTES))) {
      const m = members[nextDeflate]!;
      if ('pieces' in m) {
        let size = 0;
        for (const p of m.pieces) size += p.length;
        if (size > INLINE_ZLIB) {
          const data = concatPieces(m.pieces, size);
          // The CRC-32 of the uncompressed bytes, on this thread while the pool deflates the members before.
          const crc = crc32(data);
          const handle = (yield { op: 'deflate', data, level }) as IoHandle;
          deflates.set(nextDeflate, { handle, size, crc });
          aheadBytes += size;
        }
      }
      nextDeflate++;
    }
  }

  for (let index = 0; index < members.length; index++) {
    const m = members[index]!;
    const { bytes: name, flags } = 'from' in m ? copiedName(m) : encodeMemberName(m.name);
    if ('pieces' in m && level !== undefined) {
      yield* startDeflates(index);
      let packed: Buffer;
      let size: number;
      let crc: number;
      const d = deflates.get(index);
      if (d) {
        deflates.delete(index);
        aheadBytes -= d.size;
        packed = (yield { op: 'await', handle: d.handle }) as Buffer;
        size = d.size;
        crc = d.crc;
      } else {
        // A small member: deflated here while the pool works on the large ones started ahead.
        size = 0;
        for (const p of m.pieces) size += p.length;
        const data = concatPieces(m.pieces, size);
        crc = crc32(data);
        packed = zlib.deflateRawSync(data, { level });
        if (process.hrtime.bigint() - sliceStart > INLINE_SLICE_NS) {
          yield { op: 'pause' };
          sliceStart = process.hrtime.bigint();
        }
      }
      const w: Written = { name, flags, method: METHOD_DEFLATE, crc32: crc, compressedSize: packed.length, uncompressedSize: size, offset: stage.position };
      const head = localHeader(w, limit);
      if (head.length + packed.length <= SMALL_MEMBER) {
        yield* stage.reserve(head.length + packed.length);
        head.copy(stage.buffer, stage.length);
        stage.buffer.set(packed, stage.length + head.length);
        stage.length += head.length + packed.length;
      } else {
        yield* stage.flush(true);
        yield { op: 'write', fd, buffer: head, position: stage.start };
        yield { op: 'write', fd, buffer: packed, position: stage.start + head.length };
        stage.start += head.length + packed.length;
      }
      written.push(w);
      yield* startDeflates(index);
    } else if ('pieces' in m) {
      let size = 0;
      for (const p of m.pieces) size += p.length;
      const headLen = LOCAL_SIZE + name.length + 20;
      if (headLen + size <= SMALL_MEMBER) {
        let crc = 0;
        for (const piece of m.pieces) crc = crc32(piece, crc);
        const w: Written = { name, flags, method: METHOD_STORED, crc32: crc, compressedSize: size, uncompressedSize: size, offset: stage.position };
        yield* stage.reserve(headLen + size);
        w.offset = stage.position;
        localHeaderInto(stage.buffer, stage.length, w, limit);
        let at = stage.length + headLen;
        for (const piece of m.pieces) {
          stage.buffer.set(piece, at);
          at += piece.length;
        }
        stage.length = at;
        written.push(w);
        continue;
      }
      // A large member: straight from its memory, its CRC computed while each chunk is written.
      yield* stage.flush(true);
      const pos = stage.start;
      const w: Written = { name, flags, method: METHOD_STORED, crc32: 0, compressedSize: size, uncompressedSize: size, offset: pos };
      const head = localHeader(w, limit);
      yield { op: 'write', fd, buffer: head, position: pos };
      let at = pos + head.length;
      let crc = 0;
      for (const piece of m.pieces) {
        crc = yield* writeAndCrc(fd, piece, at, crc);
        at += piece.length;
      }
      w.crc32 = crc;
      const crcBytes = Buffer.alloc(4);
      crcBytes.writeUInt32LE(crc, 0);
      yield { op: 'write', fd, buffer: crcBytes, position: pos + 14 };
      written.push(w);
      stage.start = at;
    } else if ('body' in m) {
      yield* stage.flush(true);
      const pos = stage.start;
      const size = m.head.length + m.body.length;
      const w: Written = { name, flags, method: METHOD_STORED, crc32: m.crc32 >>> 0, compressedSize: size, uncompressedSize: size, offset: pos };
      const head = localHeader(w, limit);
      yield { op: 'write', fd, buffer: head, position: pos };
      yield { op: 'write', fd, buffer: m.head, position: pos + head.length };
      yield* copyRange(m.body.fd, m.body.position, fd, pos + head.length + m.head.length, m.body.length);
      written.push(w);
      stage.start = pos + head.length + size;
    } else {
      const { fd: fromFd, entry } = m.from;
      if (entry.flags & FLAG_ENCRYPTED) throw corrupt(`member ${JSON.stringify(entry.name)} is encrypted`);
      const w: Written = {
        name, flags, method: entry.method, crc32: entry.crc32,
        compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize, offset: 0,
      };
      const headLen = LOCAL_SIZE + name.length + 20;
      const localMax = LOCAL_SIZE + (entry.rawName?.length ?? name.length) + 1024;
      if (headLen + entry.compressedSize <= SMALL_MEMBER) {
        // Cut out of a large read of the old file: its local header (checked against the name) and data.
        let src = yield* sourceBytes(win, fromFd, entry.localHeaderOffset, localMax + entry.compressedSize);
        if (src.length < LOCAL_SIZE + (entry.rawName?.length ?? 0)) throw corrupt(`local header of ${JSON.stringify(entry.name)} is truncated`);
        const dataStart = localDataOffset(src, entry) - entry.localHeaderOffset;
        if (dataStart + entry.compressedSize > src.length) {
          src = yield* sourceBytes(win, fromFd, entry.localHeaderOffset, dataStart + entry.compressedSize);
          if (dataStart + entry.compressedSize > src.length) throw corrupt(`${JSON.stringify(entry.name)} is truncated`);
        }
        yield* stage.reserve(headLen + entry.compressedSize);
        w.offset = stage.position;
        localHeaderInto(stage.buffer, stage.length, w, limit);
        stage.buffer.set(src.subarray(dataStart, dataStart + entry.compressedSize), stage.length + headLen);
        stage.length += headLen + entry.compressedSize;
        written.push(w);
        continue;
      }
      yield* stage.flush(true);
      const pos = stage.start;
      w.offset = pos;
      const dataStart = yield* memberDataOffset(fromFd, entry);
      const head = localHeader(w, limit);
      yield { op: 'write', fd, buffer: head, position: pos };
      yield* copyRange(fromFd, dataStart, fd, pos + head.length, entry.compressedSize);
      written.push(w);
      stage.start = pos + head.length + entry.compressedSize;
    }
  }
  const cdOffset = stage.position;
  const cd = centralDirectory(written, limit);
  const oldCd = append?.centralDirectory;
  const end = endRecords((append?.count ?? 0) + written.length, (oldCd?.length ?? 0) + cd.length, cdOffset, limit);
  if (oldCd && oldCd.length > 0) {
    // The old directory as it was read: one write, no entry parsed or rebuilt.
    yield* stage.flush(true);
    yield { op: 'write', fd, buffer: oldCd, position: stage.start };
    stage.start += oldCd.length;
  }
  if (cd.length + end.length <= STAGE_SIZE) {
    yield* stage.reserve(cd.length + end.length);
    cd.copy(stage.buffer, stage.length);
    end.copy(stage.buffer, stage.length + cd.length);
    stage.length += cd.length + end.length;
    yield* stage.flush(true);
    return stage.start;
  }
  yield* stage.flush(true);
  yield { op: 'write', fd, buffer: cd, position: stage.start };
  yield { op: 'write', fd, buffer: end, position: stage.start + cd.length };
  return stage.start + cd.length + end.length;
}

/** The central directory of `written`, in one buffer. */
function centralDirectory(written: readonly Written[], limit: number): Buffer {
  let size = 0;
  for (const w of written) {
    const big = w.uncompressedSize > limit || w.compressedSize > limit;
    size += CENTRAL_SIZE + w.name.length + (big || w.offset > limit ? 4 + 8 * ((big ? 2 : 0) + (w.offset > limit ? 1 : 0)) : 0);
  }
  // Zero-filled: the comment, disk and attribute fields a central entry leaves 0 are not written.
  const into = { buffer: Buffer.alloc(size), at: 0 };
  for (const w of written) centralEntry(w, limit, into);
  return into.buffer;
}
