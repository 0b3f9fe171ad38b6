/**
 * Deflated .npz members (numpy.savez_compressed) read as a stream. The package's dataset handle on
 * such a member inflates it whole when it opens; the CLI instead reads the .npy header from the
 * first inflated bytes (for `ls`) and inflates the data piece by piece (for convert, diff and
 * verify), checking the member's CRC-32 and length as it goes — so a 4 GiB compressed member is
 * never held in memory.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { CheckpointerError } from '../errors';
import { crc32, memberDataOffset, runSync as runZipSync, ZipEntry } from '../formats/zip';
import { NpyHeader, parseNpyHeader } from '../formats/npy';
import { DType, dtypeInfo, TypedArray } from '../values/dtype';

export interface NpzMember {
  file: string;
  entry: ZipEntry;
  /** Where the member's (compressed) bytes start in the file. */
  dataOffset: number;
  header: NpyHeader;
}

/** Enough compressed bytes to inflate any .npy header (numpy's are 128 bytes, at most 64 KiB in version 2+). */
const HEADER_PROBE = 256 * 1024;

/** The member's .npy header, read without reading (or inflating) its data. */
export function readMemberHeader(file: string, fd: number, entry: ZipEntry): NpzMember {
  const dataOffset = runZipSync(memberDataOffset(fd, entry));
  const probe = Buffer.alloc(Math.min(entry.compressedSize, HEADER_PROBE));
  const n = fs.readSync(fd, probe, 0, probe.length, dataOffset);
  let bytes: Buffer = probe.subarray(0, n);
  // A partial deflate stream: Z_SYNC_FLUSH gives what it holds so far instead of failing.
  if (entry.method === 8) bytes = zlib.inflateRawSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return { file, entry, dataOffset, header: parseNpyHeader(bytes) };
}

/** Whether `m`'s data can be streamed as rows: deflated (a stored member has a slicing handle), C order, numeric. */
export function streamsRows(m: NpzMember | undefined): m is NpzMember {
  return m !== undefined && m.entry.method === 8 && !m.header.fortranOrder && m.header.descr.kind === 'numeric'
    && m.header.shape.length > 0 && m.header.shape.every((d) => d > 0);
}

function corrupt(m: NpzMember, message: string): CheckpointerError {
  return new CheckpointerError(`member ${m.entry.name}: ${message}`, { code: 'ERR_CHECKPOINT_CORRUPT', file: m.file });
}

/**
 * The member's rows, `rows` at a time, each piece in one reused TypedArray of the member's dtype
 * (the caller is done with it when it asks for the next). Throws ERR_CHECKPOINT_CORRUPT when the
 * stream does not inflate, is short, or its CRC-32 is not the recorded one.
 */
export async function* inflateRows(m: NpzMember, rows: number): AsyncGenerator<{ data: TypedArray; first: number; count: number }> {
  const descr = m.header.descr as Extract<NpyHeader['descr'], { kind: 'numeric' }>;
  const dtype: DType = descr.dtype;
  const info = dtypeInfo(dtype);
  const n = m.header.shape[0]!;
  const rowBytes = m.header.shape.slice(1).reduce((x, y) => x * y, 1) * info.itemSize;
  const pieceRows = Math.max(1, Math.min(rows, n));
  const buffer = new ArrayBuffer(pieceRows * rowBytes);
  const bytes = new Uint8Array(buffer);
  const view = (count: number): TypedArray => new info.ArrayType(buffer, 0, (count * rowBytes) / (info.itemSize / info.lanes)) as TypedArray;
  const swap = (count: number): void => {
    if (!descr.swap) return;
    const b = Buffer.from(buffer, 0, count * rowBytes);
    const lane = info.itemSize / info.lanes;
    if (lane === 2) b.swap16();
    else if (lane === 4) b.swap32();
    else if (lane === 8) b.swap64();
  };
  const raw = fs.createReadStream(m.file, { start: m.dataOffset, end: m.dataOffset + m.entry.compressedSize - 1, highWaterMark: 1 << 20 });
  const inflate = zlib.createInflateRaw({ chunkSize: 1 << 20 });
  raw.on('error', (err) => inflate.destroy(err));
  raw.pipe(inflate);
  let crc = 0;
  let total = 0;
  let skip = m.header.headerLength;
  let filled = 0;
  let row = 0;
  try {
    for await (const chunk of inflate as AsyncIterable<Buffer>) {
      crc = crc32(chunk, crc);
      total += chunk.length;
      let at = 0;
      if (skip > 0) {
        at = Math.min(skip, chunk.length);
        skip -= at;
      }
      while (at < chunk.length) {
        const take = Math.min(chunk.length - at, bytes.length - filled);
        if (row * rowBytes + filled + take > n * rowBytes) throw corrupt(m, 'more data than its header\'s shape holds');
        bytes.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === bytes.length) {
          swap(pieceRows);
          yield { data: view(pieceRows), first: row, count: pieceRows };
          row += pieceRows;
          filled = 0;
        }
      }
    }
  } catch (err) {
    if (err instanceof CheckpointerError) throw err;
    throw corrupt(m, `does not inflate (${(err as Error).message})`);
  } finally {
    raw.destroy();
    inflate.destroy();
  }
  // The zip's own record first: a damaged stream is named as such, not by the rows it lacks.
  if (total !== m.entry.uncompressedSize) throw corrupt(m, `inflates to ${total} bytes, its zip header says ${m.entry.uncompressedSize}`);
  if ((crc >>> 0) !== (m.entry.crc32 >>> 0)) throw corrupt(m, `CRC-32 mismatch (computed ${(crc >>> 0).toString(16)}, recorded ${(m.entry.crc32 >>> 0).toString(16)})`);
  if (filled > 0) {
    if (filled % rowBytes !== 0) throw corrupt(m, 'its data ends inside a row');
    const count = filled / rowBytes;
    swap(count);
    yield { data: view(count), first: row, count };
    row += count;
  }
  if (row !== n) throw corrupt(m, `holds ${row} rows, its .npy header says ${n}`);
}
