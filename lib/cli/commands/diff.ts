/**
 * `checkpointer diff A B`: keys only in one, kind/dtype/shape changes, and for arrays of one shape
 * the largest absolute and relative difference — streamed piece by piece through dataset handles,
 * so two 4 GiB arrays are compared in bounded memory. Equal within --atol/--rtol means
 * |a - b| <= atol + rtol * |b| elementwise (numpy.isclose; NaN equals NaN).
 */
import { Checkpointer } from '../../checkpointer';
import { DType, dtypeInfo, isDType, FLOAT16_AS_BITS, float16ToNumber, TypedArray } from '../../values/dtype';
import { NDArray } from '../../values/ndarray';
import { RecordArray } from '../../values/records';
import { UnregisteredObject } from '../../values/registry';
import { pieces, rowsPerPiece } from '../arrays';
import { CliError, EXIT, usage } from '../errors';
import { formatValue, shapeText } from '../format';
import { openInput } from '../open';
import { inspectCheckpoint, keyText, leaves, Node } from '../tree';

export const DIFF_HELP = `Usage: checkpointer diff A B [--rtol R] [--atol A] [--json]

Compares two checkpoints of any formats: keys only in one, changes of kind, dtype or
shape, and for arrays of one shape how many elements differ and the largest
absolute and relative difference (|a - b| / |b|). Elements are equal when
|a - b| <= atol + rtol * |b| (numpy.isclose; NaN equals NaN). Defaults: rtol 0,
atol 0 — any difference counts. Arrays are compared piece by piece.

Exit code 0 when equal, 1 when they differ (for CI of numerical pipelines).

Options:
  --rtol R    relative tolerance (default 0)
  --atol A    absolute tolerance (default 0)
  --json      the differences as JSON: {equal, differences: [...]}
  -h, --help  this help`;

export interface Difference {
  key: string;
  what: 'only-in-a' | 'only-in-b' | 'kind' | 'dtype' | 'shape' | 'values' | 'value';
  a?: string;
  b?: string;
  /** For 'values': elements that differ, of how many; the largest differences and where. */
  count?: number;
  of?: number;
  maxAbs?: number;
  maxAbsAt?: number[];
  maxRel?: number;
}

interface Tolerance {
  rtol: number;
  atol: number;
}

function parseTolerance(text: string | undefined, name: string): number {
  if (text === undefined) return 0;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0) throw usage(`--${name} ${text}: a non-negative number`);
  return v;
}

/** Element accessor as numbers (complex: the lane pair is handled by the caller). */
function numberAt(data: TypedArray, dtype: string, i: number): number {
  if (dtype === 'float16' && FLOAT16_AS_BITS) return float16ToNumber(data[i] as number);
  return Number(data[i]);
}

class Stats {
  count = 0;
  of = 0;
  maxAbs = 0;
  maxAbsAt = -1;
  maxRel = 0;
  constructor(readonly tol: Tolerance) {}

  /** Compares elements [0, n) of two pieces; `base` is the flat index of their first element. */
  add(a: TypedArray, adt: string, b: TypedArray, bdt: string, n: number, lanes: number, base: number): void {
    const exact = this.tol.atol === 0 && this.tol.rtol === 0;
    for (let i = 0; i < n; i++) {
      let diff: number;
      let mag: number;
      let equal: boolean;
      if (lanes === 2) {
        const ar = Number(a[2 * i]); const ai = Number(a[2 * i + 1]);
        const br = Number(b[2 * i]); const bi = Number(b[2 * i + 1]);
        const nanA = Number.isNaN(ar) || Number.isNaN(ai);
        const nanB = Number.isNaN(br) || Number.isNaN(bi);
        if (nanA || nanB) {
          equal = nanA && nanB;
          diff = equal ? 0 : NaN;
          mag = 0;
        } else {
          diff = ar === br && ai === bi ? 0 : Math.hypot(ar - br, ai - bi);
          mag = Math.hypot(br, bi);
          equal = diff <= this.tol.atol + this.tol.rtol * mag;
        }
      } else if (typeof a[i] === 'bigint' && typeof b[i] === 'bigint') {
        // 64-bit integers exactly: their difference as a number only for the statistics.
        const d = (a[i] as bigint) - (b[i] as bigint);
        diff = Math.abs(Number(d));
        mag = Math.abs(Number(b[i]));
        equal = d === 0n || (!exact && diff <= this.tol.atol + this.tol.rtol * mag);
      } else {
        const x = numberAt(a, adt, i);
        const y = numberAt(b, bdt, i);
        if (Number.isNaN(x) || Number.isNaN(y)) {
          equal = Number.isNaN(x) && Number.isNaN(y);
          diff = equal ? 0 : NaN;
          mag = 0;
        } else if (x === y) {
          equal = true;
          diff = 0;
          mag = Math.abs(y);
        } else {
          diff = Math.abs(x - y);
          mag = Math.abs(y);
          equal = diff <= this.tol.atol + this.tol.rtol * mag;
        }
      }
      this.of++;
      if (equal) continue;
      this.count++;
      // A NaN against a number is the largest difference there is.
      if (Number.isNaN(diff) ? !Number.isNaN(this.maxAbs) : diff > this.maxAbs || this.maxAbsAt < 0) {
        this.maxAbs = diff;
        this.maxAbsAt = base + i;
      }
      const rel = mag === 0 ? (diff === 0 ? 0 : Infinity) : diff / mag;
      if (!(rel <= this.maxRel)) this.maxRel = rel;
    }
  }
}

function unravel(flat: number, shape: readonly number[]): number[] {
  const out = new Array(shape.length).fill(0);
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = flat % shape[i]!;
    flat = Math.floor(flat / shape[i]!);
  }
  return out;
}

/** Compares two array leaves of one shape piece by piece (the same rows of both at a time). */
async function compareArrays(a: Checkpointer, na: Node, b: Checkpointer, nb: Node, tol: Tolerance): Promise<Stats> {
  const stats = new Stats(tol);
  const dtA = na.dtype as DType;
  const dtB = nb.dtype as DType;
  const lanes = dtypeInfo(dtA).lanes;
  const shape = na.shape!;
  const rowElems = shape.slice(1).reduce((p, q) => p * q, 1);
  const rows = Math.min(rowsPerPiece(shape, dtA), rowsPerPiece(shape, dtB));
  const ga = pieces(a, na, rows);
  const gb = pieces(b, nb, rows);
  try {
    for (;;) {
      const [pa, pb] = await Promise.all([ga.next(), gb.next()]);
      if (pa.done || pb.done) {
        if (pa.done !== pb.done) throw new CliError(`key ${JSON.stringify(keyText(na.path))}: one file holds fewer rows than its shape says`, 'ERR_CHECKPOINT_CORRUPT', EXIT.CORRUPT);
        break;
      }
      stats.add(pa.value.data, dtA, pb.value.data, dtB, pa.value.count * rowElems, lanes, pa.value.first * rowElems);
    }
  } finally {
    await Promise.all([ga.return(undefined), gb.return(undefined)]);
  }
  return stats;
}

/** A value in a form where equal values compare equal across formats (arrays by their elements). */
function normalise(v: unknown): unknown {
  // Arrays by their elements (dtype and shape are compared from the listing).
  if (v instanceof NDArray) return v.toList();
  if (v instanceof RecordArray) return { records: v.toList() };
  if (Buffer.isBuffer(v)) return { bytes: v.toString('base64') };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('base64') };
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>);
  if (v instanceof UnregisteredObject) return { object: v.className, state: normalise(v.state) };
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, normalise(x)]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)]));
  return v;
}

function deepEqual(a: unknown, b: unknown, tol: Tolerance): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
    return a === b || Math.abs(a - b) <= tol.atol + tol.rtol * Math.abs(b);
  }
  if (typeof a === 'bigint' || typeof b === 'bigint') return (typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number') && BigInt(a as never) === BigInt(b as never);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i], tol));
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tol));
  }
  return Object.is(a, b);
}

function short(v: unknown): string {
  const s = formatValue(v).replace(/\s*\n\s*/g, ' ');
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Kinds whose values compare across formats element by element (an array and the list JSON makes of it). */
const VALUE_KINDS = new Set(['array', 'list', 'scalar']);

export async function diffCheckpoints(fileA: string, fileB: string, tol: Tolerance): Promise<Difference[]> {
  const a = openInput(fileA);
  const b = openInput(fileB);
  const la = new Map(leaves(inspectCheckpoint(a, fileA).nodes).map((n) => [keyText(n.path), n]));
  const lb = new Map(leaves(inspectCheckpoint(b, fileB).nodes).map((n) => [keyText(n.path), n]));
  const out: Difference[] = [];
  for (const k of la.keys()) if (!lb.has(k)) out.push({ key: k, what: 'only-in-a' });
  for (const k of lb.keys()) if (!la.has(k)) out.push({ key: k, what: 'only-in-b' });
  await a.open();
  await b.open();
  try {
    for (const [key, na] of la) {
      const nb = lb.get(key);
      if (!nb) continue;
      for (const [n, file] of [[na, fileA], [nb, fileB]] as const) {
        if (n.error) throw new CliError(`key ${JSON.stringify(key)}: ${n.error.message}`, n.error.code, n.error.code === 'ERR_CHECKPOINT_CORRUPT' ? EXIT.CORRUPT : EXIT.UNSUPPORTED, file);
      }
      if (na.kind !== nb.kind) {
        // An array against a list (JSON holds arrays as lists) or a scalar: compared by value below.
        if (!(VALUE_KINDS.has(na.kind) && VALUE_KINDS.has(nb.kind))) {
          out.push({ key, what: 'kind', a: na.kind, b: nb.kind });
          continue;
        }
      }
      // A JSON number has no dtype of its own: only dtypes both files name are compared.
      if (na.dtype !== nb.dtype && na.dtype && nb.dtype && !na.dtypeInferred && !nb.dtypeInferred) out.push({ key, what: 'dtype', a: na.dtype, b: nb.dtype });
      if (na.kind === nb.kind && na.shape && nb.shape && shapeText(na.shape) !== shapeText(nb.shape)) {
        out.push({ key, what: 'shape', a: shapeText(na.shape), b: shapeText(nb.shape) });
        continue;
      }
      const numeric = isDType(na.dtype) && isDType(nb.dtype);
      if (na.streamable && nb.streamable && numeric && dtypeInfo(na.dtype as never).lanes === dtypeInfo(nb.dtype as never).lanes) {
        const s = await compareArrays(a, na, b, nb, tol);
        if (s.count > 0) out.push({ key, what: 'values', count: s.count, of: s.of, maxAbs: s.maxAbs, maxAbsAt: unravel(s.maxAbsAt, na.shape!), maxRel: s.maxRel });
        continue;
      }
      const [va, vb] = await Promise.all([a.get(na.path), b.get(nb.path)]);
      if (va instanceof NDArray && vb instanceof NDArray && va.size === vb.size && va.size > 0 && dtypeInfo(va.dtype).lanes === dtypeInfo(vb.dtype).lanes) {
        const s = new Stats(tol);
        s.add(va.data, va.dtype, vb.data, vb.dtype, va.size, dtypeInfo(va.dtype).lanes, 0);
        if (s.count > 0) out.push({ key, what: 'values', count: s.count, of: s.of, maxAbs: s.maxAbs, maxAbsAt: unravel(s.maxAbsAt, va.shape), maxRel: s.maxRel });
      } else if (!deepEqual(normalise(va), normalise(vb), tol)) {
        out.push({ key, what: 'value', a: short(va), b: short(vb) });
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return out;
}

function numberText(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return 'inf';
  const v = Number(x.toPrecision(6));
  // 6 significant digits; exponent form for very small and very large ones (as numpy prints them).
  return v !== 0 && (Math.abs(v) < 1e-4 || Math.abs(v) >= 1e6) ? v.toExponential() : String(v);
}

export function differenceText(d: Difference, fileA: string, fileB: string): string {
  const key = `/${d.key}`;
  switch (d.what) {
    case 'only-in-a': return `${key}: only in ${fileA}`;
    case 'only-in-b': return `${key}: only in ${fileB}`;
    case 'kind': return `${key}: kind ${d.a} -> ${d.b}`;
    case 'dtype': return `${key}: dtype ${d.a} -> ${d.b}`;
    case 'shape': return `${key}: shape ${d.a} -> ${d.b}`;
    case 'value': return `${key}: value ${d.a} -> ${d.b}`;
    case 'values':
      return `${key}: ${d.count} of ${d.of} elements differ; max abs diff ${numberText(d.maxAbs!)} at [${d.maxAbsAt!.join(', ')}], max rel diff ${numberText(d.maxRel!)}`;
  }
}

export async function runDiff(fileA: string, fileB: string, opts: { rtol?: string; atol?: string; json: boolean }, write: (s: string) => void): Promise<number> {
  const tol = { rtol: parseTolerance(opts.rtol, 'rtol'), atol: parseTolerance(opts.atol, 'atol') };
  const diffs = await diffCheckpoints(fileA, fileB, tol);
  if (opts.json) write(`${JSON.stringify({ equal: diffs.length === 0, differences: diffs }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`);
  else for (const d of diffs) write(`${differenceText(d, fileA, fileB)}\n`);
  return diffs.length ? EXIT.FOUND : EXIT.OK;
}

