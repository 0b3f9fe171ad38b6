/**
 * The corpus comparison's two halves on the JS side: `canonical` makes of a value what
 * corpus_dump.py makes of h5py's/numpy's reading of the same key (see its docstring), and
 * `sameValue` compares the two forms.
 *
 * Run as a script (`node corpus.js DUMP.jsonl`), it is the reader child: for each file of the
 * Python dump it opens a checkpointer, lists its keys, gets every key Python read and prints one
 * JSON line per file. A child, so a crash or hang on one file is seen and the suite goes on.
 */
import { Checkpointer, CheckpointerError, NDArray, RecordArray } from '../../lib/index';
import { isTypedArray } from '../../lib/values/dtype';

export type Canon = null | boolean | number | string | Canon[] | { [k: string]: Canon };

function canonNumber(x: number): Canon {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return x;
}

function canonBytes(b: Uint8Array): Canon {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return { $bytes: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') };
  }
}

/** A list from toList() (or a row's field), element by element. */
function canonList(x: unknown): Canon {
  if (Array.isArray(x)) return x.map(canonList);
  return canonical(x);
}

export function canonical(x: unknown): Canon {
  if (x === null || x === undefined) return null;
  switch (typeof x) {
    case 'boolean': return x;
    case 'number': return canonNumber(x);
    case 'bigint': return x.toString();
    case 'string': return x;
    default: break;
  }
  if (Buffer.isBuffer(x)) return canonBytes(x);
  if (x instanceof RecordArray) {
    if (x.shape.length === 0) return { $rec: canonRow(x.row(0)) };
    const rows = x.toList() as unknown[];
    const walk = (r: unknown): Canon => (Array.isArray(r) ? r.map(walk) : { $rec: canonRow(r as Record<string, unknown>) });
    return { shape: [...x.shape], v: rows.map(walk) };
  }
  if (x instanceof NDArray) {
    const list = x.toList();
    if (x.shape.length === 0) return x.dtype.startsWith('complex') ? (list as number[]).map(canonNumber) : canonical(list);
    return { shape: [...x.shape], v: canonElements(list, x.dtype.startsWith('complex')) };
  }
  if (isTypedArray(x)) return { shape: [x.length], v: Array.from(x as ArrayLike<number | bigint>, (v) => canonical(v)) };
  if (Array.isArray(x)) return x.map(canonical);
  if (x instanceof Map) return Object.fromEntries([...x].map(([k, v]) => [k, canonical(v)]));
  if (typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, canonical(v)]));
  return { $js: String(x) };
}

function canonElements(list: unknown, complex: boolean): Canon {
  if (!Array.isArray(list)) return canonical(list);
  if (complex && list.length === 2 && typeof list[0] === 'number' && typeof list[1] === 'number') return list.map((v) => canonNumber(v as number));
  return list.map((v) => canonElements(v, complex));
}

function canonRow(row: Record<string, unknown>): { [k: string]: Canon } {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, canonList(v)]));
}

function isObject(x: Canon): x is { [k: string]: Canon } {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/**
 * Whether checkpointer's reading (`js`) is h5py's/numpy's (`py`). Lenient only where JS has no
 * way to say the same thing: an integer read as a JS number equals Python's decimal string, and a
 * shaped array equals a plain nested list with the same elements (rows, string arrays, vlen items).
 */
export function sameValue(py: Canon, js: Canon): boolean {
  if (typeof py === 'string' && typeof js === 'number') return /^-?\d+$/.test(py) && Number.isInteger(js) && BigInt(py) === BigInt(js);
  if (typeof py === 'number' && typeof js === 'string') return /^-?\d+$/.test(js) && Number.isInteger(py) && BigInt(js) === BigInt(py);
  if (typeof py === 'boolean' && typeof js === 'number') return Number(py) === js;
  if (typeof py === 'string' && typeof js === 'boolean') return py === String(Number(js));
  if (py === null || typeof py !== 'object') return py === js;
  if (isObject(py) && 'shape' in py && 'v' in py) {
    if (isObject(js) && 'shape' in js && 'v' in js) return sameValue(py.shape as Canon, js.shape as Canon) && sameValue(py.v as Canon, js.v as Canon);
    if (Array.isArray(js)) return sameValue(py.v as Canon, js);
    return false;
  }
  if (Array.isArray(py)) {
    if (isObject(js) && 'shape' in js && 'v' in js) return sameValue(py, js.v as Canon);
    return Array.isArray(js) && js.length === py.length && py.every((p, i) => sameValue(p, js[i]!));
  }
  if (!isObject(js)) return false;
  const pk = Object.keys(py);
  const jk = Object.keys(js);
  return pk.length === jk.length && pk.every((k) => k in js && sameValue(py[k]!, js[k]!));
}

// ------------------------------------------------------------------------------- the reader child

export interface PyFile {
  file: string;
  error: string | null;
  keys: Record<string, Canon>;
  dangling: string[];
  top: string[];
}

export interface KeyOutcome {
  value?: Canon;
  /** A CheckpointerError: its code and message. */
  error?: { code: string; message: string };
  /** Anything else thrown: what and where (a bug). */
  untyped?: string;
}

export interface FileOutcome {
  file: string;
  open?: KeyOutcome['error'];
  untypedOpen?: string;
  keys?: string[];
  /** What get of each top-level key (a group read whole) gave: ok or the error. */
  top: Record<string, KeyOutcome>;
  values: Record<string, KeyOutcome>;
  dangling: Record<string, KeyOutcome>;
}

function outcome(f: () => unknown): KeyOutcome {
  try {
    return { value: canonical(f()) };
  } catch (err) {
    if (err instanceof CheckpointerError) return { error: { code: err.code, message: err.message } };
    return { untyped: err instanceof Error ? `${err.constructor.name}: ${err.message}\n${err.stack ?? ''}` : String(err) };
  }
}

function keyPathOf(key: string, file: string): string[] {
  if (file.endsWith('.npy')) return ['arr_0'];
  return file.endsWith('.npz') ? [key] : key.split('/');
}

function readFile(py: PyFile): FileOutcome {
  const out: FileOutcome = { file: py.file, top: {}, values: {}, dangling: {} };
  let chk: Checkpointer;
  try {
    chk = Checkpointer.fromFile(py.file);
    out.keys = chk.keysSync();
  } catch (err) {
    if (err instanceof CheckpointerError) out.open = { code: err.code, message: err.message };
    else out.untypedOpen = err instanceof Error ? `${err.constructor.name}: ${err.message}\n${err.stack ?? ''}` : String(err);
    return out;
  }
  for (const k of out.keys) out.top[k] = outcome(() => { chk.getSync(k); return null; });
  for (const k of Object.keys(py.keys)) out.values[k] = outcome(() => chk.getSync(keyPathOf(k, py.file)));
  for (const k of py.dangling) out.dangling[k] = outcome(() => chk.getSync(keyPathOf(k, py.file)));
  return out;
}

if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require('node:fs') as typeof import('node:fs');
  const lines = fs.readFileSync(process.argv[2]!, 'utf8').split('\n').filter(Boolean);
  const skip = Number(process.argv[3] ?? 0);
  for (const line of lines.slice(skip)) {
    const py = JSON.parse(line) as PyFile;
    process.stdout.write(`${JSON.stringify({ start: py.file })}\n`);
    process.stdout.write(`${JSON.stringify(readFile(py))}\n`);
  }
}
