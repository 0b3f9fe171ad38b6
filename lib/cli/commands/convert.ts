/**
 * `checkpointer convert IN OUT`: any format to any format through the value model. Arrays that a
 * dataset handle reads are streamed piece by piece (about 8 MiB, whole output chunks) from the
 * input's handle into the output's, so a 4 GiB array never sits in memory; other values go
 * through `get` and `set`. The output is written as a temporary file beside OUT in one session of
 * the output's Checkpointer (whose own commit is atomic), then renamed over OUT: a failure or an
 * interrupt leaves OUT as it was and removes the temporary file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Checkpointer } from '../../checkpointer';
import { extensionMap } from '../../factory';
import { HDF5Checkpointer } from '../../backends/hdf5';
import { NumPyCheckpointer } from '../../backends/numpy';
import { fsyncDirSync } from '../../io/atomic';
import { hdf5Info } from '../../native';
import type { DatasetOptions } from '../../dataset/types';
import { DType, dtypeInfo, isDType } from '../../values/dtype';
import { NDArray } from '../../values/ndarray';
import { pieces, rowsPerPiece } from '../arrays';
import { streamsRows } from '../npz-members';

/** Bytes per chunk of a new HDF5 dataset when the input has no chunk shape to keep (the package's own target). */
const TARGET_CHUNK_BYTES = 4 * 1024 * 1024;
import { CliError, EXIT, exitCodeOf, usage } from '../errors';
import { CheckpointerError } from '../../errors';
import type { Compression as CodecName } from '../../dataset/types';
import { openInput } from '../open';
import { progressBar } from '../progress';
import { inspectCheckpoint, keyText, leaves, memberOf, Node } from '../tree';

export const CONVERT_HELP = `Usage: checkpointer convert IN OUT [--compression C] [--force] [--progress|--no-progress]

Converts a checkpoint between formats (.h5/.hdf5, .npz, .npy, .json; the extension
of OUT picks its format). Arrays are streamed through dataset handles in pieces of
about 8 MiB, so memory stays bounded whatever their size (except into .json, which
holds text, and from compressed .npz members, which numpy's format inflates whole).
OUT is written under a temporary name beside it and renamed into place when
complete: on failure or Ctrl-C it is left as it was.

Options:
  --compression C  for .h5 output: keep (the default: each array's own codec, level
                   and shuffle when the input is HDF5, else none), none, gzip
                   (level 4), gzip:0..9, zstd (level 3), zstd:1..22, lz4; +shuffle
                   after any of them adds the shuffle filter (as ls prints it:
                   zstd:3+shuffle). A codec this build lacks is ERR_UNSUPPORTED_CODEC.
  --force          replace OUT if it exists (otherwise ERR_EXISTS)
  --progress       draw the progress bar on stderr even when it is not a terminal
  --no-progress    never draw it (the default draws it when stderr is a terminal)
  -h, --help       this help`;

/** What --compression asks for. */
type Compression = { kind: 'keep' } | { kind: 'none' } | { kind: 'codec'; codec: CodecName; level: number | null; shuffle: boolean };

/** Codecs the package's dataset API writes (DatasetOptions.compression), when the HDF5 build has them; their levels. */
const WRITABLE_CODECS: Readonly<Record<CodecName, { min: number; max: number; default: number } | null>> = {
  gzip: { min: 0, max: 9, default: 4 },
  zstd: { min: 1, max: 22, default: 3 },
  lz4: null,
};

export function parseCompression(text: string | undefined, outIsH5: boolean): Compression {
  if (text === undefined || text === 'keep') return { kind: 'keep' };
  if (text === 'none') return { kind: 'none' };
  const m = /^([a-z0-9]+)(?:[:=](\d+))?(\+shuffle)?$/i.exec(text);
  if (!m) throw usage(`--compression ${text}: expected keep, none, gzip[:LEVEL], zstd[:LEVEL] or lz4, each with an optional +shuffle`);
  const name = m[1]!.toLowerCase();
  const available = hdf5Info().filters as Readonly<Record<string, { write: boolean }>>;
  const codecs = (Object.keys(WRITABLE_CODECS) as CodecName[]).filter((c) => available[c]?.write);
  if (!(codecs as readonly string[]).includes(name)) {
    const why = name in WRITABLE_CODECS ? `no ${name} codec in this build` : name in available ? `the package writes no ${name} datasets` : `unknown codec ${name}`;
    const list = codecs.flatMap((c) => (WRITABLE_CODECS[c] ? [c, `${c}:${WRITABLE_CODECS[c]!.min}-${WRITABLE_CODECS[c]!.max}`] : [c]));
    throw new CliError(`--compression ${text}: ${why} (available: ${[...list, 'none', 'keep'].join(', ')})`, 'ERR_UNSUPPORTED_CODEC', EXIT.UNSUPPORTED);
  }
  const codec = name as CodecName;
  const range = WRITABLE_CODECS[codec];
  if (range === null && m[2] !== undefined) throw usage(`--compression ${text}: ${codec} has no level`);
  const level = range === null ? null : m[2] === undefined ? range.default : Number(m[2]);
  if (range !== null && !(level! >= range.min && level! <= range.max)) throw usage(`--compression ${text}: a ${codec} level is ${range.min} to ${range.max}`);
  if (!outIsH5) throw new CliError(`--compression ${text}: only .h5/.hdf5 output is compressed (.npz members are written stored, .json is text)`, 'ERR_UNSUPPORTED_CODEC', EXIT.UNSUPPORTED);
  return { kind: 'codec', codec, level, shuffle: m[3] !== undefined };
}

export interface ConvertOptions {
  compression?: string;
  force: boolean;
  progress: boolean | undefined;
}

/** Temporary outputs of this tool: `.<base>.<pid>.<hex>.convert<ext>`; group 1 is the writer's pid. */
function tempOutput(out: string): string {
  const ext = path.extname(out);
  return path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.convert${ext}`);
}

/** Removes what killed converts to `out` left behind (their process is gone). */
function removeStaleTemps(out: string): void {
  const dir = path.dirname(out);
  const prefix = `.${path.basename(out)}.`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^\.(?:.*)\.(\d+)\.[0-9a-f]{8}\.convert/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
}

function datasetOptions(src: { dtype: DatasetOptions['dtype']; shape: readonly number[]; chunks: readonly number[] | null; compression: CodecName | null; compressionLevel: number | null; shuffle: boolean }, compression: Compression, outIsH5: boolean): DatasetOptions {
  const opts: DatasetOptions = { dtype: src.dtype, shape: [0, ...src.shape.slice(1)] };
  if (!outIsH5) return opts;
  // The input's chunk shape where it fits the output (same rank, within the shape); else about
  // 4 MiB of whole rows, never more rows than the array has (an appended dataset cannot know its
  // final length, and a chunk far larger than the data wastes the difference on disk).
  if (src.chunks && src.chunks.length === src.shape.length && src.chunks.every((c, i) => c >= 1 && c <= Math.max(1, src.shape[i]!))) {
    opts.chunks = [...src.chunks];
  } else {
    const rowBytes = src.shape.slice(1).reduce((x, y) => x * Math.max(1, y), 1) * dtypeInfo(src.dtype!).itemSize;
    const rows = Math.max(1, Math.min(src.shape[0]!, Math.floor(TARGET_CHUNK_BYTES / rowBytes)));
    opts.chunks = [rows, ...src.shape.slice(1).map((d) => Math.max(1, d))];
  }
  if (compression.kind === 'codec') {
    opts.compression = compression.codec;
    if (compression.level !== null) opts.compressionLevel = compression.level;
    if (compression.shuffle) opts.shuffle = true;
  } else if (compression.kind === 'keep' && src.compression !== null) {
    opts.compression = src.compression;
    if (src.compressionLevel !== null && src.compression !== 'lz4') opts.compressionLevel = src.compressionLevel;
    opts.shuffle = src.shuffle;
  }
  return opts;
}

export async function runConvert(input: string, output: string, options: ConvertOptions): Promise<number> {
  const ext = path.extname(output).toLowerCase();
  const Cls = extensionMap()[ext];
  if (!Cls) throw new CliError(`no checkpoint format has the extension ${JSON.stringify(ext || path.basename(output))} (known: ${Object.keys(extensionMap()).join(', ')})`, 'ERR_UNKNOWN_EXTENSION', EXIT.UNSUPPORTED, output);
  const outIsH5 = Cls === HDF5Checkpointer || Cls.prototype instanceof HDF5Checkpointer;
  const outStreams = outIsH5 || Cls === NumPyCheckpointer || Cls.prototype instanceof NumPyCheckpointer;
  const outIsNpy = ext === '.npy';
  const compression = parseCompression(options.compression, outIsH5);
  const src = openInput(input);
  if (sameFile(input, output)) throw usage(`convert: IN and OUT are the same file (${output})`);
  if (fs.existsSync(output) && !options.force) throw new CliError('exists; --force replaces it', 'ERR_EXISTS', EXIT.CANNOT_WRITE, output);
  // Said about OUT here, before the temporary file beside it would be the one named.
  try {
    fs.accessSync(path.dirname(output), fs.constants.W_OK);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CliError(missing ? 'its directory does not exist' : 'its directory is not writable', 'ERR_NOT_WRITABLE', EXIT.CANNOT_WRITE, output);
  }

  const inspection = inspectCheckpoint(src, input);
  const items = leaves(inspection.nodes);
  const broken = items.find((n) => n.error);
  if (broken) throw new CliError(`key ${JSON.stringify(keyText(broken.path))}: ${broken.error!.message}`, broken.error!.code, broken.error!.code === 'ERR_CHECKPOINT_CORRUPT' ? EXIT.CORRUPT : EXIT.UNSUPPORTED, input);
  if (outIsNpy && (items.length !== 1 || !(items[0]!.kind === 'array' || items[0]!.kind === 'scalar'))) {
    throw new CliError(`a .npy file holds one array; ${input} holds ${items.length} value${items.length === 1 ? '' : 's'}${items.length === 1 ? ` (a ${items[0]!.kind})` : ''}`, 'ERR_UNSUPPORTED_VALUE', EXIT.UNSUPPORTED, output);
  }

  removeStaleTemps(output);
  const temp = tempOutput(output);
  const total = items.reduce((n, x) => n + (x.nbytes ?? 0), 0);
  const progress = progressBar(total, process.stderr, options.progress ?? process.stderr.isTTY === true, path.basename(output));
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const check = (): void => {
    if (interrupted) throw new CliError('interrupted; the partial output was removed', 'ERR_INTERRUPTED', EXIT.INTERRUPTED, output);
  };
  const dst: Checkpointer = new Cls(temp);
  let committed = false;
  try {
    await src.open();
    await dst.open();
    try {
      for (const node of items) {
        check();
        const outKey = outIsNpy ? ['arr_0'] : node.path;
        if (node.kind === 'group') {
          await dst.set(outKey, {}); // an empty dict (groups with children are their leaves)
        } else if (node.streamable && outStreams) {
          await streamArray(src, dst, node, outKey, compression, outIsH5, progress.add, check);
        } else if (node.kind === 'scalar' && node.dtype && isDType(node.dtype) && !node.dtypeInferred) {
          // A 0-d array keeps its dtype (get() gives a JS number, which would be stored as int64/float64).
          await dst.set(outKey, await readScalar(src, node));
          progress.add(node.nbytes ?? 0);
        } else {
          await dst.set(outKey, await src.get(node.path));
          progress.add(node.nbytes ?? 0);
        }
      }
      check();
    } finally {
      await src.close();
    }
    // The output's own commit (shadow rename for HDF5, atomic rewrite for npz/json) into the temp file.
    progress.phase('writing');
    await dst.close();
    check();
    fs.renameSync(temp, output);
    committed = true;
    try {
      fsyncDirSync(path.dirname(output));
    } catch { /* the rename is done; a directory that cannot be fsynced (some filesystems) keeps it anyway */ }
  } catch (err) {
    if (dst.isOpen) {
      try {
        await dst.close();
      } catch { /* the temporary file is removed below */ }
    }
    // A failure of the output's writer names the temporary file, which is about to go: say OUT.
    if (err instanceof CheckpointerError && (err.file === temp || err.message.includes(temp))) {
      throw new CliError(err.message.split(temp).join(output), err.code, exitCodeOf(err), output);
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!committed) fs.rmSync(temp, { force: true });
    progress.done();
  }
  return EXIT.OK;
}

/** A 0-d value as an NDArray of its stored dtype (through a dataset handle when one opens it). */
async function readScalar(src: Checkpointer, node: Node): Promise<unknown> {
  let ds;
  try {
    ds = await src.dataset(node.path);
  } catch {
    // No handle for 0-d values (npz): the value get() gives, in the dtype the listing read from the file.
    return asDtype(await src.get(node.path), node.dtype);
  }
  try {
    const a = await ds.read();
    return a instanceof NDArray ? a : src.get(node.path);
  } finally {
    await ds.close();
  }
}

function asDtype(value: unknown, dtype: string | undefined): unknown {
  if (!dtype || !isDType(dtype) || dtype === 'float16' || dtypeInfo(dtype).lanes !== 1) return value;
  const Type = dtypeInfo(dtype).ArrayType;
  if (typeof value === 'boolean' && dtype === 'bool') return new NDArray(Uint8Array.of(value ? 1 : 0), [], 'bool');
  if (typeof value === 'number' && dtype !== 'bool') {
    if (dtype === 'int64' || dtype === 'uint64') return Number.isSafeInteger(value) ? new NDArray((Type as BigInt64ArrayConstructor).of(BigInt(value)), [], dtype) : value;
    return new NDArray((Type as Float64ArrayConstructor).of(value), [], dtype);
  }
  if (typeof value === 'bigint' && (dtype === 'int64' || dtype === 'uint64')) return new NDArray((Type as BigInt64ArrayConstructor).of(value), [], dtype);
  return value;
}

async function streamArray(
  src: Checkpointer, dst: Checkpointer, node: Node, outKey: string[], compression: Compression, outIsH5: boolean,
  add: (n: number) => void, check: () => void,
): Promise<void> {
  // A deflated npz member is inflated as a stream (no handle: it would inflate the member whole).
  const member = memberOf(node);
  const from = streamsRows(member) ? null : await src.dataset(node.path);
  try {
    const m = from ?? { dtype: node.dtype as DType, shape: node.shape!, chunks: null, compression: null, compressionLevel: null, shuffle: false };
    // Only numeric leaves are streamed (tree.ts marks record datasets not streamable: they convert as values).
    if (m.dtype === 'records') throw new CheckpointerError(`${node.path.join('/')}: a record dataset is converted as a value`, { code: 'ERR_UNSUPPORTED_DTYPE' });
    const meta = { ...m, dtype: m.dtype, shape: m.shape, chunks: m.chunks, compression: m.compression, compressionLevel: m.compressionLevel, shuffle: m.shuffle };
    const to = await dst.dataset(outKey, datasetOptions(meta, compression, outIsH5));
    try {
      const rowBytes = meta.shape.slice(1).reduce((x, y) => x * y, 1) * dtypeInfo(meta.dtype).itemSize;
      for await (const piece of pieces(src, node, rowsPerPiece(meta.shape, meta.dtype, to.chunks?.[0] ?? 1), from ?? undefined)) {
        check();
        // Awaited before the buffer is refilled: a whole-chunk append is written straight from it.
        await to.append(piece.data);
        add(piece.count * rowBytes);
      }
    } finally {
      await to.close();
    }
  } finally {
    await from?.close();
  }
}
