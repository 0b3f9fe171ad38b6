/** `checkpointer show FILE [KEY] [--slice 0:10,:,::2]`: a value as numpy/Python print it. */
import { Checkpointer } from '../../checkpointer';
import { CheckpointerError } from '../../errors';
import type { Dataset } from '../../dataset/types';
import { NDArray } from '../../values/ndarray';
import type { DatasetSelection } from '../../dataset/types';
import { allocateForRead, DType, dtypeInfo, TypedArray } from '../../values/dtype';
import { parseSlice, pieces, readShown, rowsPerPiece, rowsShown } from '../arrays';
import { streamsRows } from '../npz-members';
import { CliError, EXIT, usage } from '../errors';
import { formatArrayRepr, formatValue } from '../format';
import { openInput, parseKey } from '../open';
import { findNode, inspectCheckpoint, keyText, memberOf, Node } from '../tree';

export const SHOW_HELP = `Usage: checkpointer show FILE [KEY] [--slice SEL]

Prints the value of KEY (the whole checkpoint without one) as Python would
print what McUtils' Checkpointer returns: arrays as numpy prints them, abbreviated
with '...' past 1000 elements (only the elements shown are read from the file),
dicts, lists, None, True, 'strings', b'bytes'.

Options:
  --slice SEL  numpy's slice syntax for an array: 0:10,:,::2  -1  5:  ...,0
               (steps must be positive); read from the file, not the whole array
  -h, --help   this help`;

/** An array dataset at `path`, or null when the key holds something else. */
function tryDataset(chk: Checkpointer, path: string[]): Dataset | null {
  try {
    return chk.datasetSync(path);
  } catch (err) {
    if (err instanceof CheckpointerError && (err.code === 'ERR_UNSUPPORTED_VALUE' || err.code === 'ERR_UNSUPPORTED_DTYPE')) return null;
    throw err;
  }
}

/**
 * A dataset's slice reads over rows held in memory: all of an array a format holds in memory
 * (JSON), or just the rows `show` needs of a deflated npz member, gathered in one streamed pass.
 */
function rowsDataset(shape: readonly number[], dtype: DType, rowOf: (row: number) => TypedArray): Dataset {
  return {
    shape, dtype,
    readSync(sel: readonly unknown[]) {
      // Resolve each axis to its picked indices, then gather (small: only what is shown is asked for).
      const picks = shape.map((n, i) => {
        const s = sel[i] ?? null;
        if (s === null) return { idx: [...Array(n).keys()], drop: false };
        if (typeof s === 'number') return { idx: [s < 0 ? s + n : s], drop: true };
        const [start, stop, step = 1] = s as [number, number, number?];
        const idx: number[] = [];
        for (let k = start; k < stop; k += step) idx.push(k);
        return { idx, drop: false };
      });
      const lanes = dtypeInfo(dtype).lanes;
      const strides = shape.map((_, i) => shape.slice(i + 1).reduce((x, y) => x * y, 1));
      const count = picks.reduce((x, p) => x * p.idx.length, 1);
      const out = allocateForRead(dtype, count * lanes);
      const pos = new Array(picks.length).fill(0);
      for (let o = 0; o < count; o++) {
        const row = rowOf(picks[0]!.idx[pos[0]]!);
        let src = 0;
        for (let ax = 1; ax < picks.length; ax++) src += picks[ax]!.idx[pos[ax]]! * strides[ax]!;
        for (let l = 0; l < lanes; l++) (out as unknown as unknown[])[o * lanes + l] = (row as unknown as unknown[])[src * lanes + l];
        for (let ax = picks.length - 1; ax >= 0; ax--) {
          if (++pos[ax] < picks[ax]!.idx.length) break;
          pos[ax] = 0;
        }
      }
      return new NDArray(out, picks.filter((p) => !p.drop).map((p) => p.idx.length), dtype);
    },
  } as unknown as Dataset;
}

function memoryDataset(a: NDArray): Dataset {
  const rowLanes = (a.data.length / Math.max(1, a.shape[0]!)) | 0;
  return rowsDataset(a.shape, a.dtype, (r) => a.data.subarray(r * rowLanes, (r + 1) * rowLanes));
}

/** The rows of a deflated npz member that showing `selection` needs, inflated in one pass (the member is never held whole). */
async function streamedRows(chk: Checkpointer, n: Node, selection: DatasetSelection): Promise<Dataset> {
  const shape = n.shape!;
  const dtype = n.dtype as DType;
  const wanted = new Set(rowsShown(shape, selection));
  const rows = new Map<number, TypedArray>();
  const rowLanes = shape.slice(1).reduce((x, y) => x * y, 1) * dtypeInfo(dtype).lanes;
  for await (const piece of pieces(chk, n, rowsPerPiece(shape, dtype))) {
    for (let r = 0; r < piece.count; r++) {
      if (wanted.has(piece.first + r)) rows.set(piece.first + r, piece.data.slice(r * rowLanes, (r + 1) * rowLanes));
    }
  }
  return rowsDataset(shape, dtype, (r) => rows.get(r)!);
}

function showArray(ds: Dataset, slice: string | undefined): string {
  return formatArrayRepr(readShown(ds, slice === undefined ? [] : parseSlice(slice, ds.shape.length)));
}

/** A group as a Python dict, each array read only as far as it is shown. */
async function showGroup(chk: Checkpointer, nodes: readonly Node[], indent: string): Promise<string> {
  const inner = `${indent} `;
  const items: string[] = [];
  for (const n of nodes) {
    const name = formatValue(n.name);
    const pad = `${inner}${' '.repeat(name.length + 2)}`;
    items.push(`${name}: ${await showNode(chk, n, pad)}`);
  }
  const flat = `{${items.join(', ')}}`;
  return !flat.includes('\n') && flat.length + indent.length <= 75 ? flat : `{${items.join(`,\n${inner}`)}}`;
}

async function showNode(chk: Checkpointer, n: Node, indent: string): Promise<string> {
  if (n.error) return `<unreadable: ${n.error.code}>`;
  if (n.kind === 'group' && n.children) return showGroup(chk, n.children, indent);
  if (n.streamable && n.kind === 'array' && streamsRows(memberOf(n))) {
    return showArray(await streamedRows(chk, n, []), undefined).replace(/\n(?=[^\n])/g, `\n${indent}`);
  }
  if (n.streamable && n.kind === 'array') {
    const ds = chk.datasetSync(n.path);
    try {
      return showArray(ds, undefined).replace(/\n(?=[^\n])/g, `\n${indent}`);
    } finally {
      ds.closeSync();
    }
  }
  return formatValue(chk.getSync(n.path), indent);
}

export async function runShow(file: string, key: string | undefined, slice: string | undefined, write: (s: string) => void): Promise<number> {
  const chk = openInput(file);
  const nodes = inspectCheckpoint(chk, file).nodes;
  const text = await chk.with(async (c) => {
    if (key === undefined) {
      if (slice !== undefined) throw usage('--slice needs a KEY');
      return showGroup(c, nodes, '');
    }
    const path = parseKey(key);
    const node = findNode(nodes, path);
    if (node && node.kind === 'array' && streamsRows(memberOf(node))) {
      const selection = slice === undefined ? [] : parseSlice(slice, node.shape!.length);
      return formatArrayRepr(readShown(await streamedRows(c, node, selection), selection));
    }
    const found = tryDataset(c, path);
    // A 0-d array shows as the scalar McUtils returns for it (True, 1.5), as Python prints it.
    const ds = found && found.shape.length === 0 && slice === undefined ? (found.closeSync(), null) : found;
    if (ds) {
      try {
        return showArray(ds, slice);
      } finally {
        ds.closeSync();
      }
    }
    // A group is shown key by key, so its arrays are read only as far as they are shown.
    if (slice === undefined && node?.kind === 'group') return showNode(c, node, '');
    const value = c.getSync(path);
    if (slice !== undefined) {
      const array = value instanceof NDArray ? value : null;
      if (!array) throw new CliError(`--slice: key ${JSON.stringify(keyText(path))} holds no array`, 'ERR_USAGE', EXIT.USAGE, file);
      return formatArrayRepr(readShown(memoryDataset(array), parseSlice(slice, array.shape.length)));
    }
    // A top-level string prints as text, as Python's print() does; nested ones are quoted.
    return typeof value === 'string' ? value : formatValue(value);
  });
  write(`${text}\n`);
  return EXIT.OK;
}

