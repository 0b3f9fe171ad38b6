/**
 * The value model: what a checkpoint can hold, and one classification every backend switches on,
 * so the rules for "what is storable" live in one place.
 */
import { isTypedArray, isUnstableView, TypedArray } from './dtype';
import { isNDArrayLike, NDArray, NDArrayLike, toNDArray } from './ndarray';
import { Column, EnumArray, RecordArray } from './records';
import { registeredNameOf, StatefulInstance, UnregisteredObject } from './registry';

export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | TypedArray
  | NDArray
  | NDArrayLike
  | RecordArray
  | readonly Value[]
  | { readonly [key: string]: Value }
  | ReadonlyMap<string, Value>
  | StatefulInstance
  | UnregisteredObject;

/** A key: one name, or a path of names into nested dicts/groups (McUtils' tuple keys). */
export type Key = string | readonly string[];

export type Classified =
  | { kind: 'null' }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'number'; value: number }
  | { kind: 'bigint'; value: bigint }
  | { kind: 'string'; value: string }
  /** A Node Buffer: Python `bytes` (a plain Uint8Array is a uint8 array). */
  | { kind: 'bytes'; value: Buffer }
  /** A bare TypedArray (1-D). */
  | { kind: 'typed'; value: TypedArray }
  /** A table of records (HDF5 compound, numpy structured dtype). */
  | { kind: 'records'; value: RecordArray }
  /** An NDArray, or an NDArray-like normalised to one. */
  | { kind: 'ndarray'; value: NDArray }
  | { kind: 'list'; value: readonly unknown[] }
  /** A plain object or Map: entries in insertion order. */
  | { kind: 'dict'; entries: [string, unknown][] }
  /** An instance of a registered class (or an UnregisteredObject read from a file). */
  | { kind: 'object'; className: string; state: unknown };

function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Classifies one value (not its children). Throws TypeError for what cannot be stored. */
export function classify(value: unknown, where = 'value'): Classified {
  switch (typeof value) {
    case 'boolean': return { kind: 'boolean', value };
    case 'number': return { kind: 'number', value };
    case 'bigint': return { kind: 'bigint', value };
    case 'string': return { kind: 'string', value };
    case 'object': break;
    default:
      throw new TypeError(`${where}: a ${typeof value} cannot be stored in a checkpoint`);
  }
  if (value === null) return { kind: 'null' };
  if (value instanceof NDArray) return { kind: 'ndarray', value };
  if (Buffer.isBuffer(value)) return { kind: 'bytes', value };
  if (value instanceof RecordArray) return { kind: 'records', value };
  if (isTypedArray(value)) return { kind: 'typed', value };
  if (Array.isArray(value)) return { kind: 'list', value };
  if (value instanceof Map) {
    const entries: [string, unknown][] = [];
    for (const [k, v] of value) {
      if (typeof k !== 'string') throw new TypeError(`${where}: Map keys must be strings, got a ${typeof k}`);
      entries.push([k, v]);
    }
    return { kind: 'dict', entries };
  }
  if (value instanceof UnregisteredObject) return { kind: 'object', className: value.className, state: value.state };
  const className = registeredNameOf(value);
  if (className !== undefined) return { kind: 'object', className, state: (value as StatefulInstance).toState() };
  if (isPlainObject(value)) {
    if (isNDArrayLike(value)) return { kind: 'ndarray', value: toNDArray(value) };
    return { kind: 'dict', entries: Object.entries(value) };
  }
  const name = (value as object).constructor?.name ?? 'object';
  throw new TypeError(
    `${where}: an instance of ${name} cannot be stored; register its class with registerClass(name, cls) `
    + '(it needs toState() and static fromState(state))',
  );
}

/**
 * Checks a whole value tree before anything is written: every node storable, no cycles.
 * Registered objects are checked through their state.
 */
export function assertStorable(value: unknown, where = 'value'): void {
  const stack = new Set<object>();
  const visit = (v: unknown, path: string): void => {
    const c = classify(v, path);
    let children: [string, unknown][] = [];
    if (c.kind === 'list') children = c.value.map((x, i) => [`${path}[${i}]`, x]);
    else if (c.kind === 'dict') children = c.entries.map(([k, x]) => [`${path}.${k}`, x]);
    else if (c.kind === 'object') children = [[`${path}<${c.className}>`, c.state]];
    if (children.length === 0) return;
    const self = v as object;
    if (stack.has(self)) throw new TypeError(`${path}: a cycle cannot be stored in a checkpoint`);
    stack.add(self);
    for (const [p, x] of children) visit(x, p);
    stack.delete(self);
  };
  visit(value, where);
}

/**
 * The value as it is now, for an asynchronous `set` that runs later: views of resizable, growable
 * or shared buffers are copied (so resizing one after the call changes nothing), with the
 * containers holding them; everything else is the value itself. Call after assertStorable.
 */
export function stableValue(value: unknown): unknown {
  const c = classify(value);
  switch (c.kind) {
    case 'typed':
      return isUnstableView(c.value) ? c.value.slice() : value;
    case 'bytes':
      return isUnstableView(c.value) ? Buffer.from(c.value) : value;
    case 'records':
      return stableRecords(c.value);
    case 'ndarray':
      if (!isUnstableView(c.value.data)) return value;
      return c.value instanceof EnumArray
        ? new EnumArray(c.value.data.slice(), c.value.shape, c.value.dtype, c.value.members)
        : new NDArray(c.value.data.slice(), c.value.shape, c.value.dtype);
    case 'list': {
      const items = c.value.map(stableValue);
      return items.some((x, i) => !Object.is(x, c.value[i])) ? items : value;
    }
    case 'dict': {
      const entries = c.entries.map(([k, v]) => [k, stableValue(v)] as [string, unknown]);
      if (entries.every(([, v], i) => Object.is(v, c.entries[i]![1]))) return value;
      if (value instanceof Map) return new Map(entries);
      const out: Record<string, unknown> = {};
      for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      return out;
    }
    case 'object': {
      const state = stableValue(c.state);
      return state === c.state ? value : new UnregisteredObject(c.className, state);
    }
    default:
      return value;
  }
}

function stableRecords(r: RecordArray): RecordArray {
  const columns = r.columns().map(([name, c]): [string, Column] => {
    if (c instanceof NDArray) return [name, stableValue(c) as NDArray];
    if (c instanceof RecordArray) return [name, stableRecords(c)];
    return [name, (c as readonly unknown[]).map((x) => (x instanceof Uint8Array && isUnstableView(x) ? x.slice() : x)) as Column];
  });
  return columns.every(([, c], i) => c === r.columns()[i]![1]) ? r : new RecordArray(new Map(columns), { shape: r.shape, fields: r.fields });
}

/** Normalises a key to its path of names; rejects empty names and non-strings. */
export function keyPath(key: Key): string[] {
  const path = typeof key === 'string' ? [key] : Array.isArray(key) ? [...key] : null;
  if (!path || path.length === 0 || path.some((k) => typeof k !== 'string' || k.length === 0)) {
    throw new TypeError(`a key is a non-empty string or a non-empty array of non-empty strings, got ${describeKey(key)}`);
  }
  return path;
}

export function describeKey(key: unknown): string {
  try {
    return Array.isArray(key) ? `[${key.map((k) => JSON.stringify(k)).join(', ')}]` : JSON.stringify(key) ?? String(key);
  } catch {
    return String(key);
  }
}
