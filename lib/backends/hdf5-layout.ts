/**
 * McUtils' HDF5 layout, as policy over the native low level: which groups and datasets a value
 * becomes, and how a walked tree of groups and datasets loads back.
 *
 *   dict            → group, children in insertion order (link creation order tracked)
 *   list            → group of `_list_item_N` plus `_list_numitems` (int64 scalar)
 *   null            → dataset with a null dataspace (h5py.Empty)
 *   boolean/number/bigint/string → 0-d dataset (bool enum, int64 or float64; ASCII text as fixed-length
 *                     `S` like McUtils, other text as variable-length UTF-8 like h5py's `str`)
 *   TypedArray/NDArray (rank ≥ 1) → chunked dataset, first axis unlimited
 *   registered object → group { pseudopickle_protocol, class: { pseudopickle_protocol, pickle_data }, state }
 *
 * Writing is planned in full before the file changes (`planValue`: every name and value checked),
 * then becomes one batch of create ops (`createOps`). Reading interprets one walk of the tree
 * (`LayoutReader`): small datasets arrive with their data, large ones are read in one more batch.
 */
import { constants as bufferConstants } from 'node:buffer';
import * as os from 'node:os';
import { CheckpointerError, CheckpointerKeyError } from '../errors';
import type { BytesLayout, DatasetInfo, DatasetSpec, FileOp, H5File, H5Type, WalkNode } from '../native';
import {
  classPickleBase64, classNameFromPickleBase64, decodePickleData, displayClassName, isNumpyScalarClass, PSEUDOPICKLE_PROTOCOL,
} from '../formats/pseudo-pickle';
import { allocateForRead, DType, dtypeInfo, dtypeOfTypedArray, float16Values, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { classify } from '../values/model';
import { EnumArray, RecordArray } from '../values/records';
import { decodePacked, encodeRecords, enumH5Type, fromNativeArray, toNativeArray, wrapNumbers } from './hdf5-types';
import { checkName, RESERVED_PREFIX } from '../values/names';
import { reviveObject } from '../values/registry';
import { readFailure } from './hdf5-verify';

export const LIST_ITEM = '_list_item_';
export const LIST_COUNT = '_list_numitems';

/** Target bytes per chunk: large enough for whole-chunk writes at file speed, small enough to slice. */
export const TARGET_CHUNK_BYTES = 4 * 1024 * 1024;
/** Datasets up to this size come back with the walk (one call for a whole dict of small values). */
export const INLINE_BYTES = 64 * 1024;
const INLINE_TOTAL = 64 * 1024 * 1024;
/**
 * The largest array a get allocates: what this Node can allocate in one piece (4 GiB on Node 20,
 * far more on 22+), and never more than the machine's memory — past that the allocation succeeds
 * lazily and the kernel kills the process while the read fills it.
 */
const MAX_ARRAY_BYTES = Math.min(bufferConstants.MAX_LENGTH, os.totalmem());

export function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** The HDF5 path of a key path (its names checked by the caller). */
export function toH5Path(key: readonly string[]): string {
  return '/' + key.join('/');
}

/**
 * Chunk shape for an array: whole trailing dimensions where they fit in the target, as many rows
 * along the first axis as fill it. Axes whose trailing block alone exceeds the target get 1.
 */
export function chunkShapeFor(shape: readonly number[], itemSize: number, target = TARGET_CHUNK_BYTES): number[] {
  const chunks = shape.map((d) => Math.max(1, d));
  for (let axis = 0; axis < shape.length; axis++) {
    let trailing = itemSize;
    for (let a = axis + 1; a < shape.length; a++) trailing *= Math.max(1, shape[a]!);
    if (trailing >= target && axis < shape.length - 1) {
      chunks[axis] = 1;
      continue;
    }
    chunks[axis] = Math.max(1, Math.min(Math.max(1, shape[axis]!), Math.floor(target / trailing)));
    break;
  }
  return chunks;
}

// ------------------------------------------------------------------------------------------ write

/** A value's HDF5 form, checked in full. */
export type PlannedNode =
  | { kind: 'group'; children: [string, PlannedNode][] }
  /** strings: the variable-length strings of packed records, depth-first. */
  | { kind: 'array'; spec: DatasetSpec; data: TypedArray | null; strings?: string[] }
  | { kind: 'strings'; strings: string[]; shape: number[] }
  | { kind: 'bytes'; bytes: Uint8Array; layout: BytesLayout }
  | { kind: 'null' };

function unsupported(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_VALUE' });
}

function scalarNode(value: boolean | number | bigint, where: string): PlannedNode {
  let dtype: DType;
  let data: TypedArray;
  if (typeof value === 'boolean') {
    dtype = 'bool';
    data = Uint8Array.of(value ? 1 : 0);
  } else if (typeof value === 'bigint') {
    if (value >= -(2n ** 63n) && value < 2n ** 63n) {
      dtype = 'int64';
      data = BigInt64Array.of(value);
    } else if (value >= 0n && value < 2n ** 64n) {
      dtype = 'uint64';
      data = BigUint64Array.of(value);
    } else {
      throw unsupported(`${where}: the bigint ${value} does not fit in 64 bits`);
    }
  } else if (Number.isSafeInteger(value) && !Object.is(value, -0)) {
    dtype = 'int64';
    data = BigInt64Array.of(BigInt(value));
  } else {
    dtype = 'float64';
    data = Float64Array.of(value);
  }
  return { kind: 'array', spec: { dtype, shape: [] }, data };
}

/**
 * Text as McUtils writes it: ASCII, '' and text holding NUL as fixed-length NUL-padded `S` of its
 * UTF-8 bytes (McUtils reads `S` back as str; '' is `|S1` holding b''); other text as h5py
 * writes `str`, variable-length UTF-8. Text ending in NUL is refused: numpy strips trailing NULs.
 */
function stringNode(text: string, where: string): PlannedNode {
  if (text.length === 0 || text.includes('\0') || /^[\x00-\x7f]*$/.test(text)) {
    if (text.endsWith('\0')) throw unsupported(`${where}: text ending in NUL cannot be stored in HDF5 (numpy strips trailing NULs from S data)`);
    return { kind: 'bytes', bytes: Buffer.from(text, 'utf8'), layout: 'S' };
  }
  return { kind: 'strings', strings: [text], shape: [] };
}

/** A dataset of `shape` (chunked and growable along axis 0 when rank >= 1) of elements `itemSize` bytes each. */
function datasetSpec(dtype: DatasetSpec['dtype'], shape: readonly number[], itemSize: number, type?: DatasetSpec['type']): DatasetSpec {
  const spec: DatasetSpec = shape.length === 0
    ? { dtype, shape: [] }
    : {
      dtype,
      shape,
      // A zero-length fixed axis cannot hold a chunk of 1: leave such axes unlimited.
      maxshape: [null, ...shape.slice(1).map((d) => (d === 0 ? null : d))],
      chunks: chunkShapeFor(shape, Math.max(1, itemSize)),
    };
  if (type) spec.type = type;
  return spec;
}

function arrayNode(dtype: DType, shape: readonly number[], data: TypedArray, type?: DatasetSpec['type']): PlannedNode {
  return { kind: 'array', spec: datasetSpec(dtype, shape, dtypeInfo(dtype).itemSize, type), data: toNativeArray(dtype, data) };
}

/** A RecordArray as a compound dataset of its records (packed, field order kept). */
function recordsNode(r: RecordArray, where: string): PlannedNode {
  const { type, data, strings } = encodeRecords(r, where);
  const node: PlannedNode = { kind: 'array', spec: datasetSpec('packed', r.shape, type.size, type), data };
  if (strings.length > 0) node.strings = strings;
  return node;
}

/**
 * A Buffer (Python bytes): non-empty as a 0-d opaque (np.void; lossless, read back as a Buffer),
 * empty as `|S1` holding b'' (HDF5 has no empty opaque; it reads back as '').
 */
function bytesNode(b: Buffer): PlannedNode {
  return { kind: 'bytes', bytes: new Uint8Array(b.buffer, b.byteOffset, b.length), layout: b.length > 0 ? 'void' : 'S' };
}

/** Plans `value` (already checked storable): every name and value checked, nothing written. */
export function planValue(value: unknown, where: string): PlannedNode {
  const c = classify(value, where);
  switch (c.kind) {
    case 'null': return { kind: 'null' };
    case 'boolean':
    case 'number':
    case 'bigint': return scalarNode(c.value, where);
    case 'string': return stringNode(c.value, where);
    case 'records': return recordsNode(c.value, where);
    case 'bytes': return bytesNode(c.value);
    case 'typed': return arrayNode(dtypeOfTypedArray(c.value), [c.value.length], c.value);
    case 'ndarray':
      return arrayNode(c.value.dtype, c.value.shape, c.value.data, c.value instanceof EnumArray ? enumH5Type(c.value, where) : undefined);
    case 'list': {
      const children: [string, PlannedNode][] = c.value.map((item, i) => [`${LIST_ITEM}${i}`, planValue(item, `${where}[${i}]`)]);
      children.push([LIST_COUNT, scalarNode(c.value.length, where)]);
      return { kind: 'group', children };
    }
    case 'dict':
      return {
        kind: 'group',
        children: c.entries.map(([k, v]) => {
          checkName(k, 'hdf5', where);
          return [k, planValue(v, `${where}.${k}`)];
        }),
      };
    case 'object':
      return {
        kind: 'group',
        children: [
          ['pseudopickle_protocol', scalarNode(PSEUDOPICKLE_PROTOCOL, where)],
          ['class', {
            kind: 'group',
            children: [
              ['pseudopickle_protocol', scalarNode(PSEUDOPICKLE_PROTOCOL, where)],
              // Fixed-length bytes: McUtils base64-decodes `S` data but hands variable-length bytes to pickle as is.
              ['pickle_data', stringNode(classPickleBase64(c.className), where)],
            ],
          }],
          ['state', planValue(c.state, `${where}<${c.className}>`)],
        ],
      };
  }
}

/** The create ops that make `node` at `path` (its parent exists). */
export function createOps(path: string, node: PlannedNode, ops: FileOp[] = []): FileOp[] {
  switch (node.kind) {
    case 'group':
      ops.push({ op: 'createGroup', path });
      for (const [name, child] of node.children) createOps(joinPath(path, name), child, ops);
      break;
    case 'array':
      if (node.data && node.data.length > 0) {
        ops.push(node.strings ? { op: 'createDataset', path, spec: node.spec, data: node.data, strings: node.strings } : { op: 'createDataset', path, spec: node.spec, data: node.data });
      } else {
        ops.push({ op: 'createDataset', path, spec: node.spec });
      }
      break;
    case 'strings':
      ops.push({ op: 'createStrings', path, strings: node.strings, shape: node.shape });
      break;
    case 'bytes':
      ops.push({ op: 'createBytes', path, bytes: node.bytes, layout: node.layout });
      break;
    case 'null':
      ops.push({ op: 'createNull', path });
  }
  return ops;
}

// ------------------------------------------------------------------------------------------- read

/** Whether a child name is one of this package's temporary links (never shown as a key). */
export function isReserved(name: string): boolean {
  return name.startsWith(RESERVED_PREFIX);
}

/** A member of a group that a non-strict read left out, and why. */
export interface SkippedMember {
  /** Its path in `file`. */
  path: string;
  file: string;
  error: CheckpointerError;
}

/**
 * Loads a walked tree; arrays not in the walk are allocated and their reads collected in `reads`
 * (those of external files spliced into the tree in `otherReads`). Not `strict`: a dict's member
 * that cannot be read is left out and listed in `skipped`; `strict`: its error is thrown.
 */
export class LayoutReader {
  readonly reads: FileOp[] = [];
  readonly otherReads = new Map<H5File, FileOp[]>();
  readonly skipped: SkippedMember[] = [];
  #mounted: { file: H5File; fileName: string } | null = null;
  constructor(private readonly fileName: string, private readonly strict = true) {}

  /** The file the node being loaded is in. */
  get file(): string {
    return this.#mounted?.fileName ?? this.fileName;
  }

  /** The value of the node at `path` (placeholders stand for arrays still to be read). */
  load(node: WalkNode | null, path: string): unknown {
    if (node === null) throw new CheckpointerError(`${path} vanished while it was read`, { code: 'ERR_HDF5', file: this.file });
    switch (node.kind) {
      case 'group': return this.#group(node, path);
      case 'dataset': return this.#dataset(node.info, node, path);
      case 'error': throw readFailure(node.error, this.file);
      case 'mounted': {
        const outer = this.#mounted;
        this.#mounted = { file: node.file, fileName: node.fileName };
        try {
          return this.load(node.node, node.path);
        } finally {
          this.#mounted = outer;
        }
      }
      case 'link': throw linkError(node, path, this.file);
    }
  }

  /** After the reads ran: the value with its placeholders replaced. */
  finish(value: unknown): unknown {
    if (value instanceof PendingScalar) return value.value();
    if (value instanceof PendingPacked) return decodePacked(value.type, value.shape, value.data, [], value.where);
    if (value instanceof PendingObject) return reviveObject(value.className, this.finish(value.state));
    if (Array.isArray(value)) return value.map((x) => this.finish(x));
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      for (const k of Object.keys(value)) (value as Record<string, unknown>)[k] = this.finish((value as Record<string, unknown>)[k]);
    }
    return value;
  }

  #group(node: Extract<WalkNode, { kind: 'group' }>, path: string): unknown {
    const child = new Map<string, WalkNode | null>();
    node.names.forEach((name, i) => {
      if (!isReserved(name)) child.set(name, node.children[i] ?? null);
    });
    // McUtils' pickled values (bytes, numpy scalars): decoded in ../formats/pseudo-pickle.
    const pickled = child.get('pickle_data');
    if (child.size === 2 && child.has('pseudopickle_protocol') && pickled?.kind === 'dataset' && pickled.strings) {
      return decodePickleData(pickled.strings[0] ?? '', `${path} in ${this.file}`);
    }
    const pickle = child.get('class');
    const className = child.has('pseudopickle_protocol') && pickle?.kind === 'group' ? storedClassName(pickle, path, this.file) : undefined;
    if (className !== undefined && isNumpyScalarClass(className)) return child.has('state') ? this.load(child.get('state')!, joinPath(path, 'state')) : null;
    if (className !== undefined) {
      const state = child.has('state') ? this.load(child.get('state')!, joinPath(path, 'state')) : null;
      return new PendingObject(className, state);
    }
    const count = child.get(LIST_COUNT);
    if (count !== undefined) {
      const n = count?.kind === 'dataset' && count.data ? Number(count.data[0]) : NaN;
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new CheckpointerError(`${joinPath(path, LIST_COUNT)} in ${this.file} is not a list length`, { code: 'ERR_CHECKPOINT_CORRUPT', file: this.file });
      }
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const name = `${LIST_ITEM}${i}`;
        if (!child.has(name)) throw new CheckpointerError(`${joinPath(path, name)} is missing from the list at ${path} in ${this.file}`, { code: 'ERR_CHECKPOINT_CORRUPT', file: this.file });
        out.push(this.load(child.get(name)!, joinPath(path, name)));
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [name, n] of child) {
      if (n?.kind === 'link' && n.linkType === 'datatype') continue; // a committed datatype is no value
      let value: unknown;
      try {
        value = this.load(n, joinPath(path, name));
      } catch (err) {
        if (this.strict || !(err instanceof CheckpointerError)) throw err;
        this.skipped.push({ path: joinPath(path, name), file: this.file, error: err });
        continue;
      }
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  #dataset(info: DatasetInfo, node: Extract<WalkNode, { kind: 'dataset' }>, path: string): unknown {
    if (info.dtype === null) {
      throw new CheckpointerError(info.unsupported ?? `unsupported HDF5 datatype at ${path}`, { code: 'ERR_UNSUPPORTED_DTYPE', file: this.file });
    }
    if (info.isNull) return null;
    if (info.dtype === 'string') {
      const strings = node.strings ?? [];
      return info.shape.length === 0 ? strings[0] ?? '' : nest(strings, info.shape);
    }
    if (info.dtype === 'packed') return this.#packed(info, node, path);
    const dtype = info.dtype;
    const d = dtypeInfo(dtype);
    let data = node.data && fromNativeArray(dtype, node.data);
    if (!data) {
      const elements = shapeSize(info.shape);
      if (elements * d.itemSize > MAX_ARRAY_BYTES) {
        throw new CheckpointerError(
          `${path} in ${this.file} holds ${elements * d.itemSize} bytes (shape [${info.shape.join(', ')}]), more than one array here can hold `
          + `(${MAX_ARRAY_BYTES} bytes: this Node's limit or the machine's memory); read it in slices through a dataset handle (chk.dataset(key).read(...))`,
          { code: 'ERR_TOO_LARGE', file: this.file },
        );
      }
      try {
        data = allocateForRead(dtype, elements * d.lanes);
      } catch (err) {
        throw new CheckpointerError(`${path} in ${this.file}: cannot allocate ${elements * d.itemSize} bytes (${(err as Error).message})`, {
          code: 'ERR_TOO_LARGE', file: this.file, cause: err,
        });
      }
      if (data.length > 0) {
        const op: FileOp = { op: 'read', path, out: toNativeArray(dtype, data) };
        if (!this.#mounted) this.reads.push(op);
        else {
          const list = this.otherReads.get(this.#mounted.file) ?? [];
          list.push(op);
          this.otherReads.set(this.#mounted.file, list);
        }
      }
    }
    if (info.shape.length === 0 && d.kind !== 'c') return new PendingScalar(data, dtype);
    return wrapNumbers(info.type, data, info.shape, dtype);
  }

  /** Compound, array, opaque, variable-length and reference data: decoded from packed elements. */
  #packed(info: DatasetInfo, node: Extract<WalkNode, { kind: 'dataset' }>, path: string): unknown {
    const type = info.type!;
    if (node.data) return decodePacked(type, info.shape, node.data as Uint8Array, node.side ?? [], path);
    const bytes = shapeSize(info.shape) * shapeSize(type.dims) * type.size;
    if (bytes > MAX_ARRAY_BYTES) {
      throw new CheckpointerError(`${path} in ${this.file} holds ${bytes} bytes (shape [${info.shape.join(', ')}]), more than one array here can hold; read it in slices through a dataset handle`, {
        code: 'ERR_TOO_LARGE', file: this.file,
      });
    }
    const data = allocateForRead('uint8', bytes) as Uint8Array;
    if (bytes > 0) this.reads.push({ op: 'read', path, out: data });
    return new PendingPacked(type, info.shape, data, path);
  }
}

/** Why a link node is no value: a dangling link is a missing key (ERR_KEY naming the link and its target). */
export function linkError(node: Extract<WalkNode, { kind: 'link' }>, path: string, file: string): CheckpointerError {
  const at = node.link && node.link !== path ? ` (through the link ${node.link})` : '';
  switch (node.linkType) {
    case 'soft':
      return new CheckpointerKeyError(`${path} in ${file} is a soft link to ${node.target ?? '?'}${at}, which does not exist (a dangling link)`, path, file);
    case 'external':
      return new CheckpointerKeyError(`${path} in ${file} is an external link to ${node.file ?? '?'}:${node.target ?? '/'}${at}, which does not exist (a dangling link)`, path, file);
    case 'datatype':
      return new CheckpointerKeyError(`${path} in ${file} is a committed datatype, not a value`, path, file);
    case 'cycle':
      return new CheckpointerError(`${path} in ${file} is a soft link in a cycle of soft links${at}`, { code: 'ERR_UNSUPPORTED_VALUE', file });
    default:
      return new CheckpointerError(`${path} in ${file} is a user-defined link, neither a group nor a dataset`, { code: 'ERR_UNSUPPORTED_DTYPE', file });
  }
}

/** A 0-d dataset's JS value once its data is there: bool → boolean, 64-bit ints → number when safe else bigint. */
class PendingScalar {
  constructor(readonly data: TypedArray, readonly dtype: DType) {}
  value(): unknown {
    if (this.dtype === 'float16') return float16Values(this.data)[0]!;
    const v = this.data[0]!;
    if (this.dtype === 'bool') return v !== 0;
    if (typeof v === 'bigint') {
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : v;
    }
    return v;
  }
}

/** Fixed-size packed elements whose data a later read fills. */
class PendingPacked {
  constructor(readonly type: H5Type, readonly shape: readonly number[], readonly data: Uint8Array, readonly where: string) {}
}

class PendingObject {
  constructor(readonly className: string, readonly state: unknown) {}
}

function nest(flat: readonly unknown[], shape: readonly number[]): unknown {
  let index = 0;
  const build = (axis: number): unknown[] => {
    const out: unknown[] = [];
    for (let k = 0; k < shape[axis]!; k++) out.push(axis === shape.length - 1 ? flat[index++] : build(axis + 1));
    return out;
  };
  return build(0);
}

/** The walk op the reader expects. */
/** The class a pseudo-pickled object's `class` group names; a pickle that does not decode is a damaged object. */
function storedClassName(pickle: WalkNode & { kind: 'group' }, path: string, file: string): string {
  const data = pickle.names.indexOf('pickle_data');
  const pd = data >= 0 ? pickle.children[data] : null;
  const text = pd?.kind === 'dataset' ? pd.strings?.[0] ?? '' : '';
  try {
    return displayClassName(classNameFromPickleBase64(text));
  } catch (err) {
    throw new CheckpointerError(`${path} in ${file}: the object's class pickle does not decode (${(err as Error).message}): the file is damaged`, {
      code: 'ERR_CHECKPOINT_CORRUPT', file, cause: err,
    });
  }
}

export function walkOp(path: string): FileOp {
  return { op: 'walk', path, inlineBytes: INLINE_BYTES, inlineTotal: INLINE_TOTAL };
}
