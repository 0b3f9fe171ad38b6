/**
 * Arrays read through dataset handles: numpy slice syntax for `show --slice`, the edges numpy
 * shows of a large array (read as corner blocks, never the whole array), and reading an array
 * piece by piece along its first axis for convert, verify and diff.
 */
import type { AxisSelection, Dataset, DatasetSelection } from '../dataset/types';
import { allocateForRead, DType, dtypeInfo, TypedArray } from '../values/dtype';
import { EDGE_ITEMS, ShownArray, summarisedAxes } from './format';
import { usage } from './errors';
import type { Checkpointer } from '../checkpointer';
import { CheckpointerError } from '../errors';
import { inflateRows, streamsRows } from './npz-members';
import { memberOf, Node } from './tree';

/** Parses numpy's slice syntax: `0:10,:,::2`, `-1`, `...` (the axes not given). */
export function parseSlice(text: string, rank: number): DatasetSelection {
  const parts = text.split(',').map((p) => p.trim());
  const ellipsis = parts.indexOf('...');
  if (parts.lastIndexOf('...') !== ellipsis) throw usage(`--slice ${text}: only one '...' is allowed`);
  const axes: AxisSelection[] = [];
  for (const p of parts) {
    if (p === '...') {
      const fill = rank - (parts.length - 1);
      if (fill < 0) throw usage(`--slice ${text}: more axes than the array's ${rank}`);
      for (let i = 0; i < fill; i++) axes.push(null);
      continue;
    }
    if (/^-?\d+$/.test(p)) {
      axes.push(Number(p));
      continue;
    }
    const m = /^(-?\d+)?:(-?\d+)?(?::(-?\d+)?)?$/.exec(p);
    if (!m) throw usage(`--slice ${text}: "${p}" is not an index or start:stop:step`);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    if (step < 1) throw usage(`--slice ${text}: the step must be a positive integer (got ${m[3]}); negative steps are not supported`);
    const start = m[1] === undefined ? null : Number(m[1]);
    const stop = m[2] === undefined ? null : Number(m[2]);
    axes.push(start === null && stop === null && step === 1 ? null : [start, stop, step]);
  }
  if (axes.length > rank) throw usage(`--slice ${text}: ${axes.length} axes for an array of ${rank}`);
  return axes;
}

/** One axis of a selection resolved against the array: what it picks, and whether it drops the axis. */
interface ResolvedAxis {
  start: number;
  step: number;
  count: number;
  drop: boolean;
}

/** numpy's meaning of each axis (negative indices count from the end; slices are clamped as numpy clamps them). */
function resolve(sel: DatasetSelection, shape: readonly number[]): ResolvedAxis[] {
  return shape.map((n, i) => {
    const a = sel[i] ?? null;
    if (a === null) return { start: 0, step: 1, count: n, drop: false };
    if (typeof a === 'number') {
      const k = a < 0 ? a + n : a;
      if (k < 0 || k >= n) throw usage(`--slice: index ${a} is out of range for axis ${i} of length ${n}`);
      return { start: k, step: 1, count: 1, drop: true };
    }
    const step = a[2] ?? 1;
    const clamp = (v: number | null, dflt: number): number => (v === null ? dflt : Math.min(n, Math.max(0, v < 0 ? v + n : v)));
    const start = clamp(a[0], 0);
    const stop = clamp(a[1], n);
    const count = stop > start ? Math.ceil((stop - start) / step) : 0;
    return { start, step, count, drop: false };
  });
}

/** The dataset selection of `count` items from `first` (in resolved units) of each axis. */
function toSelection(axes: readonly ResolvedAxis[], first: readonly number[], counts: readonly number[]): DatasetSelection {
  return axes.map((a, i) => {
    if (a.drop) return a.start;
    const start = a.start + first[i]! * a.step;
    // The stop just past the last picked element: never past the axis' end.
    return [start, start + (counts[i]! - 1) * a.step + 1, a.step] as const;
  });
}

/** The rows of the first axis that `readShown(ds, selection)` reads, for an array of `shape`. */
export function rowsShown(shape: readonly number[], selection: DatasetSelection = []): number[] {
  const axes = resolve(selection, shape);
  const a0 = axes[0]!;
  if (a0.drop) return [a0.start];
  const summarised = summarisedAxes(axes.filter((a) => !a.drop).map((a) => a.count));
  const ks = summarised[0] ? [0, 1, 2, a0.count - 3, a0.count - 2, a0.count - 1] : [...Array(a0.count).keys()];
  return ks.map((k) => a0.start + k * a0.step);
}

/**
 * The elements numpy would show of `ds[selection]`: when the selection is small, all of it; else
 * the first and last EDGE_ITEMS of each long axis, read as 2^k corner blocks.
 */
/** A handle's dtype when it holds numbers (record datasets are read whole, as values). */
function numericDtype(ds: Dataset): DType {
  if (ds.dtype === 'records') throw new CheckpointerError(`${ds.key.join('/')} is a record dataset, read as a value, not in pieces`, { code: 'ERR_UNSUPPORTED_DTYPE' });
  return ds.dtype;
}

export function readShown(ds: Dataset, selection: DatasetSelection = []): ShownArray {
  const dtype = numericDtype(ds);
  const axes = resolve(selection, ds.shape);
  const kept = axes.filter((a) => !a.drop);
  const fullShape = kept.map((a) => a.count);
  const summarised = summarisedAxes(fullShape);
  const shape = fullShape.map((n, i) => (summarised[i] ? 2 * EDGE_ITEMS : n));
  const lanes = dtypeInfo(dtype).lanes;
  const total = shape.reduce((x, y) => x * y, 1);
  const data = allocateForRead(dtype, total * lanes);
  if (total === 0) return { dtype: dtype, shape, data, summarised, fullShape };
  // Per kept axis: the blocks to read (head and tail when summarised, else the whole axis).
  const blocks = fullShape.map((n, i) => (summarised[i] ? [[0, 0], [n - EDGE_ITEMS, EDGE_ITEMS]] : [[0, 0]]));
  const keptIndex = axes.map((a, i) => (a.drop ? -1 : axes.slice(0, i).filter((b) => !b.drop).length));
  const outStrides = shape.map((_, i) => shape.slice(i + 1).reduce((x, y) => x * y, 1));
  const combos = blocks.reduce<number[][]>((acc, b) => acc.flatMap((c) => b.map((_, j) => [...c, j])), [[]]);
  for (const combo of combos) {
    const firstKept = combo.map((j, i) => blocks[i]![j]![0]!);
    const countKept = combo.map((j, i) => (summarised[i] ? EDGE_ITEMS : fullShape[i]!));
    const outStart = combo.map((j, i) => blocks[i]![j]![1]!);
    const first = axes.map((a, i) => (a.drop ? 0 : firstKept[keptIndex[i]!]!));
    const counts = axes.map((a, i) => (a.drop ? 1 : countKept[keptIndex[i]!]!));
    const block = ds.readSync(toSelection(axes, first, counts));
    // Scatter the block into its corner of the shown array.
    const n = countKept.reduce((x, y) => x * y, 1);
    const idx = new Array(countKept.length).fill(0);
    for (let k = 0; k < n; k++) {
      let dst = 0;
      for (let ax = 0; ax < idx.length; ax++) dst += (outStart[ax]! + idx[ax]) * outStrides[ax]!;
      for (let l = 0; l < lanes; l++) (data as unknown as unknown[])[dst * lanes + l] = (block.data as unknown as unknown[])[k * lanes + l];
      for (let ax = idx.length - 1; ax >= 0; ax--) {
        if (++idx[ax] < countKept[ax]!) break;
        idx[ax] = 0;
      }
    }
  }
  return { dtype: dtype, shape, data, summarised, fullShape };
}

/** Bytes per piece when an array is streamed: large enough for disk speed, small against the RSS budget. */
export const PIECE_BYTES = 8 * 1024 * 1024;

/** Rows of the first axis per piece: about PIECE_BYTES, a multiple of `alignRows` (the output's chunk rows) where that fits. */
export function rowsPerPiece(shape: readonly number[], dtype: DType, alignRows = 1): number {
  const rowBytes = shape.slice(1).reduce((x, y) => x * y, 1) * dtypeInfo(dtype).itemSize;
  let rows = Math.max(1, Math.floor(PIECE_BYTES / Math.max(1, rowBytes)));
  if (alignRows > 1 && rows >= alignRows) rows -= rows % alignRows;
  return rows;
}

/**
 * The rows of an array leaf, `rows` at a time, in one reused buffer (the caller is done with a
 * piece when it asks for the next): a deflated .npz member inflated as a stream (CRC-32 checked),
 * anything else through its dataset handle (`ds`, or one opened here and closed at the end).
 */
export async function* pieces(chk: Checkpointer, node: Node, rows: number, ds?: Dataset): AsyncGenerator<{ data: TypedArray; first: number; count: number }> {
  const member = memberOf(node);
  if (!ds && streamsRows(member)) {
    yield* inflateRows(member, rows);
    return;
  }
  const handle = ds ?? await chk.dataset(node.path);
  try {
    const n = handle.shape[0] ?? 0;
    const dtype = numericDtype(handle);
    const rowElems = handle.shape.slice(1).reduce((x, y) => x * y, 1) * dtypeInfo(dtype).lanes;
    const buffer = allocateForRead(dtype, Math.min(rows, n) * rowElems);
    for (let r = 0; r < n; r += rows) {
      const count = Math.min(rows, n - r);
      const piece = count === rows ? buffer : buffer.subarray(0, count * rowElems);
      await handle.readInto([[r, r + count]], piece);
      yield { data: piece, first: r, count };
    }
  } finally {
    if (!ds) await handle.close();
  }
}
