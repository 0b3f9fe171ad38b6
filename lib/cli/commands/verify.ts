/**
 * `checkpointer verify FILE|DIR`: opens and reads every key. Whole reads check what the format
 * checks (npz members' CRC-32; HDF5's checksums where the file has them, its metadata checksums
 * and the package's damaged-file verifier); arrays too large to read at once are read in pieces
 * through their dataset handle, and a large .npz member's CRC-32 is computed over its raw bytes.
 * A CheckpointManager directory: every step file, and the manager's record inside each.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { Checkpointer } from '../../checkpointer';
import { CheckpointerError } from '../../errors';
import { MANAGER_RECORD_KEY } from '../../manager';
import { crc32, memberDataOffset, runSync as runZipSync, ZipEntry } from '../../formats/zip';
import { pieces, rowsPerPiece } from '../arrays';
import { streamsRows } from '../npz-members';
import { codeOf, CliError, EXIT } from '../errors';
import { formatBytes } from '../format';
import { openInput, withHint } from '../open';
import { inspectCheckpoint, keyText, leaves, memberOf } from '../tree';
import type { DType } from '../../values/dtype';

export const VERIFY_HELP = `Usage: checkpointer verify FILE|DIR [--quiet]

Opens FILE and reads every key in full: a damaged or truncated file, an npz member
whose CRC-32 does not match, an HDF5 dataset whose checksum (fletcher32) fails or
whose chunks do not decompress is reported. Large arrays are read piece by piece.
DIR: a CheckpointManager directory — every step file is verified and the manager's
record in it must name its step.

Exit code 0 when intact, 1 when a problem was found (each problem on its own line
on stderr, the first one first), 4 when FILE does not exist.

Options:
  --quiet     print nothing when intact
  -h, --help  this help`;

/** Arrays larger than this are read in pieces (and their npz CRC-32 computed from the raw member). */
const WHOLE_READ_BYTES = 64 * 1024 * 1024;

export interface Problem {
  file: string;
  key?: string;
  code: string;
  message: string;
}

export interface FileReport {
  file: string;
  keys: number;
  bytes: number;
  problems: Problem[];
}

function problemOf(err: unknown, file: string, key?: string): Problem {
  withHint(err, file);
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
  return { file, key, code: codeOf(err), message };
}

interface NpzMember { path: string[]; source: { kind: string; entry?: ZipEntry } }

/** The npz member entries under a key path (for the raw CRC check of large members). */
function npzEntries(chk: Checkpointer, keyPath: readonly string[]): ZipEntry[] {
  const groups = (chk.stream as { groups?: Map<string, NpzMember[]> } | undefined)?.groups;
  const members = groups instanceof Map ? groups.get(keyPath[0]!) ?? [] : [];
  return members.filter((m) => m.source.kind === 'zip' && m.source.entry && m.path.length === keyPath.length && m.path.every((p, i) => p === keyPath[i])).map((m) => m.source.entry!);
}

/** CRC-32 of a zip member's uncompressed bytes, read (and inflated) in pieces; throws when it is not the recorded one. */
async function checkMemberCrc(file: string, entry: ZipEntry): Promise<void> {
  const fd = fs.openSync(file, 'r');
  let offset: number;
  try {
    offset = runZipSync(memberDataOffset(fd, entry));
  } finally {
    fs.closeSync(fd);
  }
  let crc = 0;
  let length = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      crc = crc32(chunk, crc);
      length += chunk.length;
      done();
    },
  });
  const raw = fs.createReadStream(file, { start: offset, end: offset + entry.compressedSize - 1, highWaterMark: 4 << 20 });
  try {
    if (entry.method === 8) await pipeline(raw, zlib.createInflateRaw(), sink);
    else await pipeline(raw, sink);
  } catch (err) {
    throw new CheckpointerError(`member ${entry.name}: ${(err as Error).message}`, { code: 'ERR_CHECKPOINT_CORRUPT', file });
  }
  if (length !== entry.uncompressedSize) throw new CheckpointerError(`member ${entry.name} holds ${length} bytes, its header says ${entry.uncompressedSize}`, { code: 'ERR_CHECKPOINT_CORRUPT', file });
  if ((crc >>> 0) !== (entry.crc32 >>> 0)) throw new CheckpointerError(`member ${entry.name}: CRC-32 mismatch (computed ${(crc >>> 0).toString(16)}, recorded ${(entry.crc32 >>> 0).toString(16)})`, { code: 'ERR_CHECKPOINT_CORRUPT', file });
}

export async function verifyFile(file: string): Promise<FileReport> {
  const report: FileReport = { file, keys: 0, bytes: 0, problems: [] };
  let chk: Checkpointer;
  try {
    chk = openInput(file);
  } catch (err) {
    if (err instanceof CliError && err.exitCode === EXIT.NOT_FOUND) throw err;
    report.problems.push(problemOf(err, file));
    return report;
  }
  let nodes;
  try {
    nodes = leaves(inspectCheckpoint(chk, file).nodes);
  } catch (err) {
    report.problems.push(problemOf(err, file));
    return report;
  }
  report.keys = nodes.length;
  try {
    await chk.open();
  } catch (err) {
    report.problems.push(problemOf(err, file));
    return report;
  }
  try {
    for (const node of nodes) {
      const key = keyText(node.path);
      if (node.error) {
        report.problems.push({ file, key, code: node.error.code, message: node.error.message });
        continue;
      }
      try {
        if (node.streamable && (node.nbytes ?? 0) > WHOLE_READ_BYTES) {
          // Deflated npz members inflate as a stream that checks their CRC-32; other arrays are read through their handle.
          for await (const piece of pieces(chk, node, rowsPerPiece(node.shape!, node.dtype as DType))) void piece;
          // Slice reads of stored npz members skip the CRC: check it over the raw member.
          if (!streamsRows(memberOf(node))) for (const entry of npzEntries(chk, node.path)) await checkMemberCrc(file, entry);
        } else {
          await chk.get(node.path);
        }
        report.bytes += node.nbytes ?? 0;
      } catch (err) {
        report.problems.push(problemOf(err, file, key));
      }
    }
  } finally {
    try {
      await chk.close();
    } catch (err) {
      report.problems.push(problemOf(err, file));
    }
  }
  return report;
}

const STEP_FILE = /^step_(\d+)\.(h5|npz|json)$/;
const PARTIAL = /ckpt-partial\.step_\d+\./;

/** A CheckpointManager directory: each step file verified, its record naming its step. */
export async function verifyDir(dir: string): Promise<{ reports: FileReport[]; notes: string[] }> {
  const names = fs.readdirSync(dir).sort();
  const steps = names.filter((n) => STEP_FILE.test(n));
  const notes: string[] = [];
  const reports: FileReport[] = [];
  const partial = names.filter((n) => PARTIAL.test(n));
  if (partial.length) notes.push(`${partial.length} temporary file${partial.length > 1 ? 's' : ''} of unfinished saves (the next CheckpointManager on ${dir} removes them)`);
  if (steps.length === 0) {
    reports.push({ file: dir, keys: 0, bytes: 0, problems: [{ file: dir, code: 'ERR_KEY', message: 'no step files (step_NNNNNNNN.h5|npz|json): not a CheckpointManager directory' }] });
    return { reports, notes };
  }
  for (const name of steps) {
    const file = path.join(dir, name);
    const report = await verifyFile(file);
    reports.push(report);
    if (report.problems.length) continue;
    const step = Number(STEP_FILE.exec(name)![1]);
    try {
      const chk = openInput(file);
      const record = chk.withSync((c) => (c.hasSync(MANAGER_RECORD_KEY) ? c.getSync(MANAGER_RECORD_KEY) : undefined));
      if (record === undefined) {
        report.problems.push({ file, code: 'ERR_CHECKPOINT_CORRUPT', message: `no manager record (${MANAGER_RECORD_KEY}): not saved by a CheckpointManager` });
        continue;
      }
      const parsed = JSON.parse(String(record)) as { step?: unknown };
      if (parsed.step !== step) report.problems.push({ file, code: 'ERR_CHECKPOINT_CORRUPT', message: `the manager record names step ${String(parsed.step)}, the file name step ${step}` });
    } catch (err) {
      report.problems.push(problemOf(err, file, MANAGER_RECORD_KEY));
    }
    // The sidecar is a cache of the record: a stale or unreadable one is re-derived, so it is a note only.
    const sidecar = `${file}.meta.json`;
    if (fs.existsSync(sidecar)) {
      try {
        JSON.parse(fs.readFileSync(sidecar, 'utf8'));
      } catch {
        notes.push(`${sidecar} does not parse (a cache: the manager re-reads the step file)`);
      }
    }
  }
  return { reports, notes };
}

export async function runVerify(target: string, quiet: boolean, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let isDir = false;
  try {
    isDir = fs.statSync(target).isDirectory();
  } catch {
    throw new CliError('no such file or directory', 'ENOENT', EXIT.NOT_FOUND, target);
  }
  const { reports, notes } = isDir ? await verifyDir(target) : { reports: [await verifyFile(target)], notes: [] as string[] };
  const problems = reports.flatMap((r) => r.problems);
  for (const p of problems) err(`checkpointer: ${p.code}: ${p.file}: ${p.key !== undefined ? `key ${JSON.stringify(p.key)}: ` : ''}${p.message}\n`);
  if (!quiet) {
    for (const note of notes) out(`note: ${note}\n`);
    for (const r of reports) if (!r.problems.length) out(`${r.file}: OK (${r.keys} value${r.keys === 1 ? '' : 's'}, ${formatBytes(r.bytes)} read)\n`);
    if (isDir) out(`${target}: ${reports.length - reports.filter((r) => r.problems.length).length} of ${reports.length} step file${reports.length === 1 ? '' : 's'} intact\n`);
  }
  return problems.length ? EXIT.FOUND : EXIT.OK;
}
