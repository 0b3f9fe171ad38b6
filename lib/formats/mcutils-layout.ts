/**
 * McUtils' `.npz` layout (McUtils.Scaffolding.Serializers.NumPySerializer): a checkpoint is one
 * dict; nested dicts are flattened into member names joined with `::>|<::`, and each leaf is one
 * `.npy` member.
 *
 *   params::>|<::nested::>|<::grid.npy   ← {'params': {'nested': {'grid': array}}}
 *
 * Leaves, as McUtils writes them:
 *   - str / int / float / bool → a 0-d array (`np.array([x]).reshape(())`): `<U{n}`, `<i8`, `<f8`, `|b1`
 *   - ndarray → itself
 *   - a list numpy cannot make one array of → a dict `{_list_item_0: …, …, _list_numitems: n}`
 *
 * What this package adds on top (McUtils' NumPy serializer has no rule for these and raises), all
 * of it loadable by `numpy.load(..., allow_pickle=False)`:
 *   - every JS list is written as `_list_item_N` + `_list_numitems`, so it comes back a list
 *     (McUtils turns a homogeneous list into one array; such arrays load back as NDArrays);
 *   - a registered object is McUtils' pseudo-pickle dict, flattened like any dict:
 *     `k::>|<::pseudopickle_protocol` (1), `k::>|<::class::>|<::pseudopickle_protocol` (1),
 *     `k::>|<::class::>|<::pickle_data` (base64 pickle of the class reference, `<U`), `k::>|<::state…`;
 *   - null (None) → a 0-d `|V0` array (a void of no bytes; numpy has no None without pickling);
 *   - an empty dict, which flattening would lose → a 0-d record with no fields (descr `[]`);
 *   - a Buffer (Python `bytes`) → a 0-d `|S<n>` array (`|V<n>` when it ends in NUL, which `S`
 *     strips), which numpy loads as bytes (`a.item()`); `S` and `V` arrays read back as Buffers;
 *   - a RecordArray → a structured array (packed, field order), as numpy writes `np.zeros(n, dtype=[...])`.
 *
 * Read as McUtils writes them: pickled values (`k::>|<::pseudopickle_protocol` + `k::>|<::pickle_data`,
 * bytes and numpy scalars) load as their values; `''` and text with inner NULs are `<U` arrays.
 *
 * Not representable, refused before anything is written: names ../values/names refuses for .npz
 * (TypeError: the separator, NUL, McUtils' list names, ...), and (ERR_UNSUPPORTED_VALUE) text
 * ending in NUL (numpy strips trailing NULs), bigints outside the 64-bit ranges.
 */
import { CheckpointerError } from '../errors';
import { dtypeOfTypedArray } from '../values/dtype';
import { classify } from '../values/model';
import { checkName, NPZ_KEY_SEP } from '../values/names';
import { reviveObject } from '../values/registry';
import {
  EncodedNpy, encodeArray, encodeBytesScalar, encodeEmptyDict, encodeNull, encodeRecords, encodeStringScalar, stringSurvivesNpy,
} from './npy';
import {
  classNameFromPickleBase64, classPickleBase64, decodePickleData, displayClassName, isNumpyScalarClass, PSEUDOPICKLE_PROTOCOL,
} from './pseudo-pickle';

export const KEY_SEP = NPZ_KEY_SEP;
export const LIST_ITEM = '_list_item_';
export const LIST_COUNT = '_list_numitems';
export const PROTOCOL_KEY = 'pseudopickle_protocol';
export const NPY_SUFFIX = '.npy';

function unsupported(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_UNSUPPORTED_VALUE' });
}

function corrupt(message: string): CheckpointerError {
  return new CheckpointerError(message, { code: 'ERR_CHECKPOINT_CORRUPT' });
}

// ------------------------------------------------------------------------------------ names

/** The zip member name of a key path: names joined with the separator, plus `.npy` (as numpy.savez adds). */
export function memberName(path: readonly string[]): string {
  return path.join(KEY_SEP) + NPY_SUFFIX;
}

/** A member name's key path: `.npy` dropped (as numpy.load does), then split at the separator. */
export function memberPath(zipName: string): string[] {
  const flat = zipName.endsWith(NPY_SUFFIX) ? zipName.slice(0, -NPY_SUFFIX.length) : zipName;
  return flat.split(KEY_SEP);
}

// ------------------------------------------------------------------------------------ flatten

/** One `.npy` member of a flattened value: its path below the value's key, and its encoding. */
export interface FlatLeaf {
  path: string[];
  array: EncodedNpy;
  /** The leaf is an empty dict's marker. */
  emptyDict: boolean;
}

/** A scalar as McUtils writes it: a 0-d array. Integral numbers → int64 (Python int), others → float64. */
export function encodeScalar(value: boolean | number | bigint | string, where: string): EncodedNpy {
  switch (typeof value) {
    case 'boolean':
      return encodeArray('bool', [], Uint8Array.of(value ? 1 : 0));
    case 'number':
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) return encodeArray('int64', [], BigInt64Array.of(BigInt(value)));
      return encodeArray('float64', [], Float64Array.of(value));
    case 'bigint':
      if (value >= -(2n ** 63n) && value < 2n ** 63n) return encodeArray('int64', [], BigInt64Array.of(value));
      if (value >= 0n && value < 2n ** 64n) return encodeArray('uint64', [], BigUint64Array.of(value));
      throw unsupported(`${where}: the bigint ${value} does not fit in 64 bits (int64 or uint64)`);
    case 'string':
      if (!stringSurvivesNpy(value)) throw unsupported(`${where}: text ending in NUL cannot be stored (numpy strips trailing NULs)`);
      return encodeStringScalar(value);
  }
}

/**
 * The single `.npy` array a value is (null included), or undefined for a list, dict or object.
 * A bare TypedArray becomes a 1-D array of its dtype.
 */
export function encodeLeaf(value: unknown, where: string): EncodedNpy | undefined {
  const c = classify(value, where);
  switch (c.kind) {
    case 'boolean':
    case 'number':
    case 'bigint':
    case 'string':
      return encodeScalar(c.value, where);
    case 'records':
      return encodeRecords(c.value);
    case 'bytes':
      return encodeBytesScalar(c.value);
    case 'typed':
      return encodeArray(dtypeOfTypedArray(c.value), [c.value.length], c.value);
    case 'ndarray':
      return encodeArray(c.value.dtype, c.value.shape, c.value.data);
    case 'null':
      return encodeNull();
    default:
      return undefined;
  }
}

/**
 * Flattens a (storable) value into its `.npy` members, in McUtils' order: dict entries in
 * insertion order, list items then `_list_numitems`. Throws ERR_UNSUPPORTED_VALUE for what the
 * layout cannot hold, before the caller has changed anything.
 */
export function flattenValue(value: unknown, where: string): FlatLeaf[] {
  const out: FlatLeaf[] = [];
  const visit = (v: unknown, path: string[], at: string): void => {
    const leaf = encodeLeaf(v, at);
    if (leaf) {
      out.push({ path, array: leaf, emptyDict: false });
      return;
    }
    const c = classify(v, at);
    switch (c.kind) {
      case 'list':
        c.value.forEach((item, i) => visit(item, [...path, `${LIST_ITEM}${i}`], `${at}[${i}]`));
        out.push({ path: [...path, LIST_COUNT], array: encodeScalar(c.value.length, at), emptyDict: false });
        return;
      case 'dict':
        if (c.entries.length === 0) {
          out.push({ path, array: encodeEmptyDict(), emptyDict: true });
          return;
        }
        for (const [k, x] of c.entries) {
          checkName(k, 'npz', at);
          visit(x, [...path, k], `${at}.${k}`);
        }
        return;
      case 'object': {
        out.push({ path: [...path, PROTOCOL_KEY], array: encodeScalar(PSEUDOPICKLE_PROTOCOL, at), emptyDict: false });
        out.push({ path: [...path, 'class', PROTOCOL_KEY], array: encodeScalar(PSEUDOPICKLE_PROTOCOL, at), emptyDict: false });
        out.push({ path: [...path, 'class', 'pickle_data'], array: encodeScalar(classPickleBase64(c.className), at), emptyDict: false });
        visit(c.state, [...path, 'state'], `${at}<${c.className}>`);
        return;
      }
      default:
        throw unsupported(`${at}: a ${c.kind} cannot be stored in an .npz file`);
    }
  };
  visit(value, [], where);
  return out;
}

// ------------------------------------------------------------------------------------ unflatten

interface TreeNode {
  leaf?: { value: unknown };
  children: Map<string, TreeNode>;
}

function newNode(): TreeNode {
  return { children: new Map() };
}

function buildTree(entries: readonly { path: readonly string[]; value: unknown }[]): TreeNode {
  const root = newNode();
  for (const { path, value } of entries) {
    let node = root;
    for (const name of path) {
      let next = node.children.get(name);
      if (!next) {
        next = newNode();
        node.children.set(name, next);
      }
      node = next;
    }
    node.leaf = { value };
  }
  return root;
}

/** What a set of member paths (relative to a key) makes: used to check key paths before reading. */
export type NodeShape = 'absent' | 'leaf' | 'list' | 'object' | 'dict';

export function shapeOf(paths: readonly (readonly string[])[]): NodeShape {
  if (paths.length === 0) return 'absent';
  const top = new Set<string>();
  let leaf = false;
  for (const p of paths) {
    if (p.length === 0) leaf = true;
    else top.add(p[0]!);
  }
  if (leaf) return 'leaf';
  if (top.has(LIST_COUNT) && paths.some((p) => p.length === 1 && p[0] === LIST_COUNT)) return 'list';
  if (top.has(PROTOCOL_KEY) && paths.some((p) => p[0] === 'class' && p[1] === 'pickle_data' && p.length === 2)) return 'object';
  return 'dict';
}

function setOwn(obj: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function interpret(node: TreeNode, where: string): unknown {
  if (node.leaf) {
    if (node.children.size > 0) throw corrupt(`${where} is both an array and a dict in the file`);
    return node.leaf.value;
  }
  const kids = node.children;
  const count = kids.get(LIST_COUNT);
  if (count?.leaf && count.children.size === 0) {
    const n = count.leaf.value;
    const len = typeof n === 'bigint' ? Number(n) : n;
    if (typeof len !== 'number' || !Number.isSafeInteger(len) || len < 0) {
      throw corrupt(`${where}: ${LIST_COUNT} is ${String(n)}, not a list length`);
    }
    const out: unknown[] = new Array(len);
    for (let i = 0; i < len; i++) {
      const item = kids.get(`${LIST_ITEM}${i}`);
      if (!item) throw corrupt(`${where}: list item ${i} of ${len} is missing`);
      out[i] = interpret(item, `${where}[${i}]`);
    }
    return out;
  }
  const pickled = kids.get('pickle_data')?.leaf?.value;
  if (kids.size === 2 && kids.has(PROTOCOL_KEY) && typeof pickled === 'string') return decodePickleData(pickled, where);
  const cls = kids.get('class');
  const pickle = cls?.children.get('pickle_data')?.leaf?.value;
  if (kids.has(PROTOCOL_KEY) && typeof pickle === 'string') {
    let className: string | undefined;
    try {
      className = displayClassName(classNameFromPickleBase64(pickle));
    } catch {
      className = undefined; // not a class pickle: an ordinary dict
    }
    if (className !== undefined && isNumpyScalarClass(className) && kids.has('state')) return interpret(kids.get('state')!, where);
    if (className !== undefined) {
      const state = kids.get('state');
      return reviveObject(className, state ? interpret(state, `${where}<${className}>`) : null);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, child] of kids) setOwn(out, k, interpret(child, `${where}.${k}`));
  return out;
}

/**
 * Rebuilds a value from its loaded members (paths relative to its key, values already decoded):
 * nested dicts, `_list_item_N` lists and pseudo-pickled objects (revived through the registry).
 */
export function unflattenValue(entries: readonly { path: readonly string[]; value: unknown }[], where: string): unknown {
  return interpret(buildTree(entries), where);
}
