/**
 * Selections for dataset handles: normalising numpy-style selections — `[start, stop, step]`
 * slices, integer indices, `null` for a whole axis — against a shape, and copying between a box of
 * rows and the selection's C-ordered result (the NumPy handles; HDF5 takes a selection as one
 * strided hyperslab).
 *
 * Semantics are numpy's (and h5py's) for in-bounds slices — negative start/stop count from the end,
 * `start >= stop` selects nothing, `step >= 1` — with one difference: a start or stop outside
 * `[-n, n]` is a RangeError here, where numpy would clamp it. An integer index selects one element
 * of its axis and drops the axis from the result (`ds.read([5])` is frame 5); out of range it is a
 * RangeError, as numpy's IndexError.
 */
import type { TypedArray } from '../values/dtype';
import type { AxisSelection, DatasetSelection } from './types';

/** A normalised axis range: indices `start, start + step, ...`, `count` of them. */
export interface AxisRange {
  start: number;
  step: number;
  count: number;
  /** An integer index: one element, and no axis in the result. */
  drop?: boolean;
}

function isInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x);
}

function describe(sel: unknown): string {
  try {
    return JSON.stringify(sel);
  } catch {
    return String(sel);
  }
}

/**
 * Normalises `selection` against `shape`. With `limit` (the maxshape, null = unlimited) a start or
 * stop may reach past `shape` up to the limit (a write that grows the dataset); negative values
 * still count from the end of `shape`.
 */
export function normalizeSelection(
  selection: DatasetSelection | undefined | null,
  shape: readonly number[],
  limit?: readonly (number | null)[],
): AxisRange[] {
  if (selection !== undefined && selection !== null && !Array.isArray(selection)) {
    throw new TypeError(`a selection is an array with one entry per axis (an index, [start, stop], [start, stop, step] or null), got ${describe(selection)}`);
  }
  const sel = selection ?? [];
  if (sel.length > shape.length) {
    throw new RangeError(`selection ${describe(sel)} has ${sel.length} axes; the dataset has ${shape.length} (shape [${shape.join(', ')}])`);
  }
  return shape.map((n, axis) => normalizeAxis(sel[axis] ?? null, n, limit ? limit[axis] ?? null : n, axis));
}

function normalizeAxis(s: AxisSelection | undefined, n: number, max: number | null, axis: number): AxisRange {
  if (s === null || s === undefined) return { start: 0, step: 1, count: n };
  if (typeof s === 'number') {
    if (!isInt(s)) throw new TypeError(`axis ${axis}: an index must be an integer, got ${describe(s)}`);
    const hi = max === null ? Infinity : Math.max(max, n);
    const i = s < 0 ? s + n : s;
    if (i < 0 || i >= hi) throw new RangeError(`axis ${axis}: index ${s} is out of bounds for size ${n}${hi > n ? ` (limit ${hi})` : ''}`);
    return { start: i, step: 1, count: 1, drop: true };
  }
  if (!Array.isArray(s) || (s.length !== 2 && s.length !== 3)) {
    throw new TypeError(`axis ${axis}: a selection is an index, [start, stop], [start, stop, step] or null, got ${describe(s)}`);
  }
  const [a, b, c] = s as readonly unknown[];
  for (const v of [a, b]) {
    if (v !== null && v !== undefined && !isInt(v)) throw new TypeError(`axis ${axis}: start and stop must be integers or null, got ${describe(s)}`);
  }
  if (c !== undefined && c !== null && !isInt(c)) throw new TypeError(`axis ${axis}: step must be an integer, got ${describe(s)}`);
  const step = (c as number | null | undefined) ?? 1;
  if (step < 1) throw new RangeError(`axis ${axis}: step must be >= 1 (as in h5py), got ${step}`);
  const hi = max === null ? Infinity : Math.max(max, n);
  const bound = (v: unknown, dflt: number, what: string): number => {
    if (v === null || v === undefined) return dflt;
    let x = v as number;
    if (x < 0) x += n;
    if (x < 0 || x > hi) {
      throw new RangeError(`axis ${axis}: ${what} ${v as number} is out of bounds for size ${n}${hi > n ? ` (limit ${hi})` : ''}`);
    }
    return x;
  };
  const start = bound(a, 0, 'start');
  const stop = bound(b, n, 'stop');
  const count = stop > start ? Math.ceil((stop - start) / step) : 0;
  return { start, step, count };
}

/** One past the last selected index (the start when nothing is selected). */
export function rangeEnd(r: AxisRange): number {
  return r.count === 0 ? r.start : r.start + (r.count - 1) * r.step + 1;
}

/** Elements selected along each axis (1 for an integer index). */
export function countsOf(ranges: readonly AxisRange[]): number[] {
  return ranges.map((r) => r.count);
}

/** The shape of the selection's result: integer-indexed axes dropped. */
export function resultShape(ranges: readonly AxisRange[]): number[] {
  const out: number[] = [];
  for (const r of ranges) if (!r.drop) out.push(r.count);
  return out;
}

/** A box of the dataset to read or write, and where its selected elements sit in it and in the result. */
export interface Block {
  /** The box in dataset coordinates. */
  start: number[];
  count: number[];
  /** Per axis: first selected index inside the box (box-relative), and how many. */
  local: number[];
  selected: number[];
  /** Per axis: position of the first selected element in the selection's result. */
  offset: number[];
}

/**
 * Copies between a block's buffer (its box in C order) and the selection's result (the counts in C
 * order): `toResult` gathers the block's selected elements into the result; otherwise it scatters
 * the result's elements into the block. `lanes`: TypedArray elements per array element (complex: 2).
 */
export function copyBlock(
  block: Block,
  blockData: TypedArray,
  ranges: readonly AxisRange[],
  result: TypedArray,
  lanes: number,
  toResult: boolean,
): void {
  const src = (toResult ? blockData : result) as Float64Array;
  const dst = (toResult ? result : blockData) as Float64Array;
  const copy = (bPos: number, rPos: number, n: number): void => {
    const from = toResult ? bPos : rPos;
    const to = toResult ? rPos : bPos;
    if (n >= 16) dst.set(src.subarray(from, from + n), to);
    else for (let j = 0; j < n; j++) dst[to + j] = src[from + j]!;
  };
  const rank = ranges.length;
  if (rank === 0) {
    copy(0, 0, lanes);
    return;
  }
  const bStride = new Array<number>(rank);
  const rStride = new Array<number>(rank);
  bStride[rank - 1] = lanes;
  rStride[rank - 1] = lanes;
  for (let a = rank - 2; a >= 0; a--) {
    bStride[a] = bStride[a + 1]! * block.count[a + 1]!;
    rStride[a] = rStride[a + 1]! * ranges[a + 1]!.count;
  }
  const last = rank - 1;
  const n = block.selected[last]!;
  const lastStep = n === 1 ? 1 : ranges[last]!.step;
  const outer = last;
  let total = 1;
  for (let a = 0; a < outer; a++) total *= block.selected[a]!;
  const idx = new Array<number>(outer).fill(0);
  for (let t = 0; t < total; t++) {
    let bPos = block.local[last]! * bStride[last]!;
    let rPos = block.offset[last]! * rStride[last]!;
    for (let a = 0; a < outer; a++) {
      bPos += (block.local[a]! + idx[a]! * ranges[a]!.step) * bStride[a]!;
      rPos += (block.offset[a]! + idx[a]!) * rStride[a]!;
    }
    if (lastStep === 1) copy(bPos, rPos, n * lanes);
    else for (let k = 0; k < n; k++) copy(bPos + k * lastStep * lanes, rPos + k * lanes, lanes);
    for (let a = outer - 1; a >= 0; a--) {
      if (++idx[a]! < block.selected[a]!) break;
      idx[a] = 0;
    }
  }
}
