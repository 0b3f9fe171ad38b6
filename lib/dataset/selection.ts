/**
 * Selections for dataset handles: normalising numpy-style `[start, stop, step]` slices against a
 * shape, splitting a selection into blocks that touch only the chunks holding selected elements,
 * and copying between a block and the selection's C-ordered result.
 *
 * Semantics are numpy's (and h5py's) for in-bounds slices — negative start/stop count from the end,
 * `start >= stop` selects nothing, `step >= 1` — with one difference: a start or stop outside
 * `[-n, n]` is a RangeError here, where numpy would clamp it.
 */
import type { TypedArray } from '../values/dtype';
import type { AxisSelection, DatasetSelection } from './types';

/** A normalised axis range: indices `start, start + step, ...`, `count` of them. */
export interface AxisRange {
  start: number;
  step: number;
  count: number;
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
    throw new TypeError(`a selection is an array with one entry per axis ([start, stop], [start, stop, step] or null), got ${describe(selection)}`);
  }
  const sel = selection ?? [];
  if (sel.length > shape.length) {
    throw new RangeError(`selection ${describe(sel)} has ${sel.length} axes; the dataset has ${shape.length} (shape [${shape.join(', ')}])`);
  }
  return shape.map((n, axis) => normalizeAxis(sel[axis] ?? null, n, limit ? limit[axis] ?? null : n, axis));
}

function normalizeAxis(s: AxisSelection | undefined, n: number, max: number | null, axis: number): AxisRange {
  if (s === null || s === undefined) return { start: 0, step: 1, count: n };
  if (!Array.isArray(s) || (s.length !== 2 && s.length !== 3)) {
    throw new TypeError(`axis ${axis}: a selection is [start, stop], [start, stop, step] or null, got ${describe(s)}`);
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

export function countsOf(ranges: readonly AxisRange[]): number[] {
  return ranges.map((r) => r.count);
}

/** Whether every axis is a plain (step 1) range: one hyperslab. */
export function isContiguous(ranges: readonly AxisRange[]): boolean {
  return ranges.every((r) => r.step === 1 || r.count <= 1);
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

export interface BlockOptions {
  /** Chunks are compressed: a chunk is decoded whole, so read it in one box rather than index by index. */
  filtered?: boolean;
  /** Bytes of unselected elements worth skipping with an extra transfer instead of reading them (default 64 KiB). */
  skipBytes?: number;
}

/**
 * Splits the selection into boxes that together hold every selected element and touch only chunks
 * holding some. Per axis: step 1 → one range; step > chunk → one box per index; otherwise one box
 * per chunk, from its first selected index to its last (every chunk in between holds one) — or, for
 * unfiltered data whose gaps between selected indices are large (>= skipBytes), one box per index,
 * so the gaps are not read. A contiguous (unchunked) dataset counts as one chunk.
 */
export function blocksFor(
  ranges: readonly AxisRange[],
  shape: readonly number[],
  chunks: readonly number[] | null,
  itemSize: number,
  options: BlockOptions = {},
): Block[] {
  if (ranges.some((r) => r.count === 0)) return [];
  const skip = options.skipBytes ?? 1 << 16;
  const perAxis = ranges.map((r, axis) => {
    let inner = itemSize;
    for (let a = axis + 1; a < shape.length; a++) inner *= Math.max(1, shape[a]!);
    const c = chunks ? chunks[axis]! : Number.MAX_SAFE_INTEGER;
    const byIndex = r.step > c || (!options.filtered && (r.step - 1) * inner >= skip);
    return axisPieces(r, byIndex ? 0 : c);
  });
  const blocks: Block[] = [];
  const rank = ranges.length;
  const idx = new Array<number>(rank).fill(0);
  for (;;) {
    const b: Block = { start: [], count: [], local: [], selected: [], offset: [] };
    for (let a = 0; a < rank; a++) {
      const p = perAxis[a]![idx[a]!]!;
      b.start.push(p.start);
      b.count.push(p.count);
      b.local.push(p.local);
      b.selected.push(p.selected);
      b.offset.push(p.offset);
    }
    blocks.push(b);
    let a = rank - 1;
    for (; a >= 0; a--) {
      if (++idx[a]! < perAxis[a]!.length) break;
      idx[a] = 0;
    }
    if (a < 0) break;
  }
  return blocks;
}

interface Piece {
  start: number;
  count: number;
  local: number;
  selected: number;
  offset: number;
}

/** The pieces of one axis: chunk 0 = one per selected index. */
function axisPieces(r: AxisRange, chunk: number): Piece[] {
  const last = r.start + (r.count - 1) * r.step;
  if (r.step === 1 || r.count === 1) return [{ start: r.start, count: last + 1 - r.start, local: 0, selected: r.count, offset: 0 }];
  const pieces: Piece[] = [];
  if (chunk === 0) {
    for (let k = 0; k < r.count; k++) pieces.push({ start: r.start + k * r.step, count: 1, local: 0, selected: 1, offset: k });
    return pieces;
  }
  // One piece per chunk: from the first selected index in the chunk to the last.
  let k = 0;
  while (k < r.count) {
    const first = r.start + k * r.step;
    const chunkEnd = (Math.floor(first / chunk) + 1) * chunk;
    const n = Math.min(r.count - k, Math.ceil((chunkEnd - first) / r.step));
    const end = first + (n - 1) * r.step + 1;
    pieces.push({ start: first, count: end - first, local: 0, selected: n, offset: k });
    k += n;
  }
  return pieces;
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
