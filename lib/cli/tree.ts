/**
 * What is inside a checkpoint, without reading its arrays: the tree of keys with each value's
 * kind, dtype, shape, bytes and — where the format says — bytes on disk, chunks and compression.
 *
 * The structure comes from the format (an HDF5 group listing, the .npz member names), so a group
 * holding a 4 GiB array is listed without reading it. Each leaf is then described through the
 * public API: a dataset handle for an array (shape and storage, no data read), else `get` and a
 * description of the value by its kind, so value kinds the package gains later (records, enums,
 * bytes, classes) are shown by what they are without this file knowing them in advance.
 */
import * as fs from 'node:fs';
import { Checkpointer } from '../checkpointer';
import { CheckpointerError } from '../errors';
import type { Dataset } from '../dataset/types';
import type { DatasetInfo, H5File, WalkNode } from '../native';
import type { ZipEntry } from '../formats/zip';
import { NpzMember, readMemberHeader } from './npz-members';
import { dtypeOfTypedArray, isDType, isTypedArray } from '../values/dtype';
import { isNDArrayLike, NDArray, toNDArray } from '../values/ndarray';
import { EnumArray, RecordArray, RecordField, FieldType } from '../values/records';
import { UnregisteredObject } from '../values/registry';

/** McUtils' layout names (lists and pseudo-pickled objects): the same in HDF5 and .npz. */
const LIST_COUNT = '_list_numitems';
const PICKLE_PROTOCOL = 'pseudopickle_protocol';
/** The package's temporary links in HDF5 files: never keys. */
const RESERVED = '.checkpointer-';

export interface FieldInfo {
  name: string;
  /** numpy-style: a dtype name, `S8`/`U4`/`V16`, `enum(int8)`, or `record`. */
  dtype: string;
  shape: number[];
  fields?: FieldInfo[];
}

export interface Node {
  /** The key path (list items are addressed through their list and have `index`). */
  path: string[];
  name: string;
  /**
   * group (a dict), list, object (a registered class's instance), array, scalar, string, bytes,
   * null, records, enum — or, for a value kind this tool does not know, its constructor's name.
   */
  kind: string;
  dtype?: string;
  /** The dtype is what a JS number/bigint would be stored as (a JSON number), not one the file names. */
  dtypeInferred?: boolean;
  shape?: number[];
  /** Bytes of the value's elements (arrays, records, bytes, strings' UTF-8). */
  nbytes?: number;
  /** Bytes the value takes in the file, where the format says (npz members, .npy; not HDF5). */
  stored?: number;
  chunks?: number[] | null;
  /** e.g. `gzip:4+shuffle`, `deflate` (npz), or null when stored as is. */
  compression?: string | null;
  /** A short rendering of scalars and short strings. */
  value?: string;
  className?: string;
  fields?: FieldInfo[];
  members?: Record<string, string>;
  /** An array that a dataset handle reads in pieces (convert, verify and diff stream it). */
  streamable?: boolean;
  children?: Node[];
  /** Why the value could not be described (its siblings were). */
  error?: { code: string; message: string };
}

/** A key path as the CLI prints it and parses it: names joined with '/'. */
export function keyText(path: readonly string[]): string {
  return path.join('/');
}

// -------------------------------------------------------------------------------- the skeleton

/** A node of the structure, before its leaves are described: children, or a leaf to describe. */
interface Skeleton {
  name: string;
  path: string[];
  children: Skeleton[] | null;
  /** The format's own facts about a leaf (HDF5 dataset info, npz member sizes). */
  h5?: DatasetInfo;
  stored?: number;
  method?: number;
  /** The one npz member of a leaf, its .npy header read (no data). */
  member?: NpzMember;
}

/** Leaves' npz members (kept off the Node objects, which `ls --json` prints). */
const members = new WeakMap<Node, NpzMember>();

/** The npz member a leaf is, when it is one whose header was read. */
export function memberOf(n: Node): NpzMember | undefined {
  return members.get(n);
}

function hdf5File(chk: Checkpointer): H5File | null {
  const f = (chk.stream as { file?: H5File | null } | undefined)?.file;
  return f && typeof f.execSync === 'function' ? f : null;
}

/** Whether a group's child names are McUtils' list or pseudo-pickled object: described whole, as a value. */
function isValueGroup(names: readonly string[]): boolean {
  return names.includes(LIST_COUNT) || names.includes(PICKLE_PROTOCOL);
}

function hdf5Skeleton(file: H5File, keys: readonly string[]): Skeleton[] {
  // One walk of the tree without data (inlineBytes 0): names, shapes and storage of everything.
  const [root] = file.execSync([{ op: 'walk', path: '/', inlineBytes: 0, inlineTotal: 0, storageSizes: true }]) as [WalkNode | null];
  const build = (node: WalkNode | null, name: string, path: string[]): Skeleton => {
    if (node?.kind === 'group' && !isValueGroup(node.names)) {
      const children: Skeleton[] = [];
      node.names.forEach((n, i) => {
        if (!n.startsWith(RESERVED)) children.push(build(node.children[i] ?? null, n, [...path, n]));
      });
      return { name, path, children };
    }
    const h5 = node?.kind === 'dataset' ? node.info : undefined;
    const skeleton: Skeleton = { name, path, children: null, h5 };
    if (h5 && typeof h5.storageBytes === 'number') skeleton.stored = h5.storageBytes;
    return skeleton;
  };
  if (root?.kind !== 'group') return keys.map((k) => ({ name: k, path: [k], children: null }));
  const top = build(root, '', []);
  // keys() is the truth about what is a key (filters, reserved names); the walk says the rest.
  const byName = new Map(top.children!.map((c) => [c.name, c]));
  return keys.map((k) => byName.get(k) ?? { name: k, path: [k], children: null });
}

interface NpzMemberRef { path: string[]; zipName: string; source: { kind: string; entry?: ZipEntry; header?: Uint8Array; fileSize?: number } }

function npzSkeleton(chk: Checkpointer, keys: readonly string[]): Skeleton[] | null {
  const stream = chk.stream as { groups?: Map<string, NpzMemberRef[]>; fd?: number | null } | undefined;
  const groups = stream?.groups;
  if (!(groups instanceof Map)) return null;
  const fd = typeof stream?.fd === 'number' ? stream.fd : null;
  const file = chk.checkpointFile ?? '';
  const memberOfEntry = (m: NpzMemberRef): NpzMember | undefined => {
    if (fd === null || m.source.kind !== 'zip' || !m.source.entry) return undefined;
    try {
      return readMemberHeader(file, fd, m.source.entry);
    } catch {
      return undefined; // described through get(), which reports what is wrong with it
    }
  };
  const out: Skeleton[] = [];
  for (const key of keys) {
    const members = groups.get(key);
    if (!members) return null;
    // Build the trie of member paths; lists and objects stay whole leaves.
    const root: Skeleton = { name: key, path: [key], children: [] };
    const stored = new Map<Skeleton, number>();
    for (const m of members) {
      let node = root;
      for (let i = 1; i < m.path.length; i++) {
        if (node.children === null) break;
        let next = node.children.find((c) => c.name === m.path[i]);
        if (!next) {
          next = { name: m.path[i]!, path: m.path.slice(0, i + 1), children: i === m.path.length - 1 ? null : [] };
          node.children.push(next);
        }
        stored.set(node, (stored.get(node) ?? 0) + memberStored(m));
        node = next;
      }
      stored.set(node, (stored.get(node) ?? 0) + memberStored(m));
      if (m.path.length === 1) {
        root.children = null; // the key is one member: an array or a scalar
        root.method = m.source.entry?.method;
        root.member = memberOfEntry(m);
      } else if (node.children === null) {
        node.method = m.source.entry?.method;
        node.member = memberOfEntry(m);
      }
    }
    // A group whose children spell a list or an object is one value.
    const collapse = (s: Skeleton): void => {
      if (s.children === null) return;
      if (isValueGroup(s.children.map((c) => c.name))) s.children = null;
      else s.children.forEach(collapse);
    };
    collapse(root);
    const setStored = (s: Skeleton): void => {
      s.stored = stored.get(s);
      s.children?.forEach(setStored);
    };
    setStored(root);
    out.push(root);
  }
  return out;
}

function memberStored(m: NpzMemberRef): number {
  if (m.source.kind === 'zip' && m.source.entry) return m.source.entry.compressedSize;
  if (m.source.kind === 'npy' && m.source.header && m.source.fileSize !== undefined) return m.source.fileSize - m.source.header.length;
  return 0;
}

// ------------------------------------------------------------------------------- descriptions

function errorInfo(err: unknown): { code: string; message: string } {
  if (err instanceof CheckpointerError) return { code: err.code, message: err.message };
  return { code: err instanceof TypeError || err instanceof RangeError ? 'ERR_UNSUPPORTED_VALUE' : 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err) };
}

function compressionText(info: DatasetInfo | undefined, ds: Dataset | null): string | null {
  const f = info?.filters;
  const gzip = f ? f.compression === 'gzip' : ds?.compression === 'gzip';
  const level = f ? f.level : ds?.compressionLevel ?? null;
  const shuffle = f ? f.shuffle : ds?.shuffle ?? false;
  const parts: string[] = [];
  if (gzip) parts.push(level === null ? 'gzip' : `gzip:${level}`);
  if (shuffle) parts.push('shuffle');
  if (f && f.other > 0) parts.push(`${f.other} other filter${f.other > 1 ? 's' : ''}`);
  return parts.length ? parts.join('+') : null;
}

/** numpy's name of a record field's type. */
function fieldTypeText(t: FieldType): string {
  switch (t.kind) {
    case 'number': return t.dtype;
    case 'enum': return `enum(${t.dtype})`;
    case 'string': return t.variable || t.length === 0 ? 'str' : t.encoding === 'utf32' ? `U${t.length}` : `S${t.length}`;
    case 'bytes': return `V${t.length}`;
    case 'record': return 'record';
    default: return (t as { kind: string }).kind;
  }
}

function fieldInfo(f: RecordField): FieldInfo {
  const out: FieldInfo = { name: f.name, dtype: fieldTypeText(f.type), shape: [...f.shape] };
  if (f.type.kind === 'record') out.fields = f.type.fields.map(fieldInfo);
  return out;
}

function shortText(s: string): string {
  return s.length <= 40 ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, 37))}...`;
}

function numberDType(v: number): string {
  return Number.isSafeInteger(v) && !Object.is(v, -0) ? 'int64' : 'float64';
}

/** Describes a value held in memory (a JSON checkpoint's, or one `get` returned). */
export function describeValue(value: unknown, name: string, path: string[]): Node {
  const node: Node = { path, name, kind: 'unknown' };
  if (value === null || value === undefined) return { ...node, kind: 'null' };
  switch (typeof value) {
    case 'boolean': return { ...node, kind: 'scalar', dtype: 'bool', shape: [], value: value ? 'True' : 'False' };
    case 'number': return { ...node, kind: 'scalar', dtype: numberDType(value), dtypeInferred: true, shape: [], value: String(value) };
    case 'bigint': return { ...node, kind: 'scalar', dtype: value < 2n ** 63n ? 'int64' : 'uint64', dtypeInferred: true, shape: [], value: String(value) };
    case 'string': return { ...node, kind: 'string', nbytes: Buffer.byteLength(value), value: shortText(value) };
    default: break;
  }
  if (Buffer.isBuffer(value)) return { ...node, kind: 'bytes', nbytes: value.length, shape: [value.length] };
  if (value instanceof EnumArray) {
    const members: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.members)) members[k] = String(v);
    return { ...node, kind: 'enum', dtype: value.dtype, shape: [...value.shape], nbytes: value.nbytes, members };
  }
  if (value instanceof NDArray) return { ...node, kind: value.shape.length === 0 ? 'scalar' : 'array', dtype: value.dtype, shape: [...value.shape], nbytes: value.nbytes };
  if (value instanceof RecordArray) {
    return { ...node, kind: 'records', shape: [...value.shape], fields: value.fields.map(fieldInfo), nbytes: recordBytes(value) };
  }
  if (isTypedArray(value)) {
    const dtype = dtypeOfTypedArray(value);
    return { ...node, kind: 'array', dtype, shape: [value.length], nbytes: value.byteLength };
  }
  // A list is one value (McUtils' _list_item_N layout is not addressable by key): its length, not its items.
  if (Array.isArray(value)) return { ...node, kind: 'list', shape: [value.length] };
  if (value instanceof Map) {
    return { ...node, kind: 'group', children: [...value].map(([k, v]) => describeValue(v, String(k), [...path, String(k)])) };
  }
  if (value instanceof UnregisteredObject) return { ...node, kind: 'object', className: value.className };
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      if (isNDArrayLike(value)) return describeValue(toNDArray(value), name, path);
      return { ...node, kind: 'group', children: Object.entries(value).map(([k, v]) => describeValue(v, k, [...path, k])) };
    }
    // A registered class's instance, or a kind this tool does not know: shown by its class.
    const cls = (value as object).constructor?.name ?? 'Object';
    return { ...node, kind: typeof (value as { toState?: unknown }).toState === 'function' ? 'object' : cls, className: cls };
  }
  return { ...node, kind: typeof value };
}

function recordBytes(r: RecordArray): number {
  let n = 0;
  for (const [, c] of r.columns()) {
    if (c instanceof NDArray) n += c.nbytes;
    else if (c instanceof RecordArray) n += recordBytes(c);
    else for (const x of c as readonly unknown[]) n += typeof x === 'string' ? Buffer.byteLength(x) : (x as Uint8Array).length;
  }
  return n;
}

function fromDataset(s: Skeleton, ds: Dataset): Node {
  if (ds.dtype === 'records') {
    // A record dataset is described (and diffed, converted) as the RecordArray a get gives.
    const node: Node = {
      path: s.path, name: s.name, kind: 'records', shape: [...ds.shape], fields: (ds.fields ?? []).map(fieldInfo), nbytes: ds.nbytes,
      chunks: s.h5 ? s.h5.chunks : ds.chunks ? [...ds.chunks] : null, compression: compressionText(s.h5, ds),
    };
    if (s.stored !== undefined) node.stored = s.stored;
    return node;
  }
  const node: Node = {
    path: s.path, name: s.name, kind: ds.shape.length === 0 ? 'scalar' : 'array', dtype: ds.dtype, shape: [...ds.shape], nbytes: ds.nbytes,
    chunks: s.h5 ? s.h5.chunks : ds.chunks ? [...ds.chunks] : null, compression: compressionText(s.h5, ds), streamable: ds.shape.length > 0,
  };
  if (s.stored !== undefined) node.stored = s.stored;
  if (s.method !== undefined) node.compression = s.method === 8 ? 'deflate' : s.method === 0 ? null : `zip method ${s.method}`;
  return node;
}

/** Whether an HDF5 dataset is numeric, so a handle opens it (strings, compounds, nulls are values). */
function h5Numeric(info: DatasetInfo | undefined): boolean {
  return info === undefined || (info.dtype !== null && info.dtype !== 'string' && !info.isNull && isDType(info.dtype));
}

function describeLeaf(chk: Checkpointer, s: Skeleton): Node {
  const h = s.member?.header;
  if (h && h.descr.kind === 'numeric' && h.shape.length > 0) {
    // An npz array described from its .npy header: no handle (which would inflate a deflated member whole).
    const node: Node = {
      path: s.path, name: s.name, kind: 'array', dtype: h.descr.dtype, shape: [...h.shape], nbytes: h.dataLength, stored: s.stored,
      chunks: null, compression: s.method === 8 ? 'deflate' : null, streamable: true,
    };
    members.set(node, s.member!);
    return node;
  }
  if (h5Numeric(s.h5)) {
    let ds: Dataset | null = null;
    try {
      ds = chk.datasetSync(s.path);
    } catch (err) {
      // Not an array dataset (a string, a list, an object, a 0-d npz member…): described as a value below.
      if (!(err instanceof CheckpointerError) || !['ERR_UNSUPPORTED_VALUE', 'ERR_UNSUPPORTED_DTYPE'].includes(err.code)) {
        return { path: s.path, name: s.name, kind: 'unknown', error: errorInfo(err) };
      }
    }
    if (ds) {
      try {
        const node = fromDataset(s, ds);
        if (node.kind === 'scalar') addScalarValue(chk, node);
        return node;
      } finally {
        ds.closeSync();
      }
    }
  }
  let value: unknown;
  try {
    value = chk.getSync(s.path);
  } catch (err) {
    return { path: s.path, name: s.name, kind: s.h5 && s.h5.dtype === null ? 'unsupported' : 'unknown', error: errorInfo(err) };
  }
  const node = describeValue(value, s.name, s.path);
  // get() gives a 0-d npz array as a JS number: its stored dtype is in the member's .npy header.
  const descr = s.member?.header.descr;
  if (node.kind === 'scalar' && descr?.kind === 'numeric') {
    node.dtype = descr.dtype;
    delete node.dtypeInferred;
  }
  if (s.stored !== undefined) node.stored = s.stored;
  if (s.h5) {
    node.chunks = s.h5.chunks;
    node.compression = compressionText(s.h5, null);
  } else if (s.method !== undefined) node.compression = s.method === 8 ? 'deflate' : null;
  return node;
}

function addScalarValue(chk: Checkpointer, node: Node): void {
  try {
    const v = chk.getSync(node.path);
    const d = describeValue(v, node.name, node.path);
    if (d.value !== undefined) node.value = d.value;
  } catch { /* the listing still shows its type */ }
}

function describe(chk: Checkpointer, s: Skeleton): Node {
  if (s.children === null) return describeLeaf(chk, s);
  const node: Node = { path: s.path, name: s.name, kind: 'group', children: s.children.map((c) => describe(chk, c)) };
  if (s.stored !== undefined) node.stored = s.stored;
  return node;
}

export interface Inspection {
  file: string;
  /** The checkpointer's class (JSONCheckpointer, NumPyCheckpointer, HDF5Checkpointer, …). */
  format: string;
  /** The file's size in bytes (null when it does not exist). */
  size: number | null;
  nodes: Node[];
}

/** Lists the checkpoint `chk` (opened here, closed before returning). */
export function inspectCheckpoint(chk: Checkpointer, file: string): Inspection {
  return chk.withSync((c) => {
    const keys = c.keysSync();
    const h5 = hdf5File(c);
    let skeleton: Skeleton[] | null = null;
    if (h5) skeleton = hdf5Skeleton(h5, keys);
    else skeleton = npzSkeleton(c, keys);
    // JSON, dict and future formats: each key's value read and described.
    skeleton ??= keys.map((k) => ({ name: k, path: [k], children: null }));
    const nodes = skeleton.map((s) => describe(c, s));
    let size: number | null = null;
    try {
      size = fs.statSync(file).size;
    } catch { /* absent */ }
    return { file, format: c.constructor.name, size, nodes };
  });
}

/** The node at `path` (a key path into groups), or undefined. */
export function findNode(nodes: readonly Node[], path: readonly string[]): Node | undefined {
  let level: readonly Node[] | undefined = nodes;
  let found: Node | undefined;
  for (const name of path) {
    found = level?.find((n) => n.name === name);
    if (!found) return undefined;
    level = found.kind === 'group' ? found.children : undefined;
  }
  return found;
}

/** Every leaf (non-group node) under `nodes`, depth first. */
export function leaves(nodes: readonly Node[]): Node[] {
  const out: Node[] = [];
  const visit = (n: Node): void => {
    if (n.kind === 'group' && n.children && n.children.length > 0) n.children.forEach(visit);
    else out.push(n);
  };
  nodes.forEach(visit);
  return out;
}
