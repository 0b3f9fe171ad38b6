/**
 * Values ↔ JSON trees, McUtils' way: arrays (TypedArray, NDArray) become nested lists as numpy's
 * `tolist()` gives them (bool → true/false, complex → [re, im], 64-bit ints exact), dicts and Maps
 * become objects, registered class instances become pseudo-pickled objects.
 *
 * Types Python keeps: float and complex arrays are written with float tokens (`[1.0, 2.0]`, as
 * McUtils writes them), so Python's json loads floats; a JS number is written as an integer when
 * it is one (`1`), as a float otherwise (`1.5`, `-0.0`, NaN). A Buffer is Python `bytes`, stored
 * the way McUtils stores bytes: `{pseudopickle_protocol: 1, pickle_data: <base64 pickle>}`.
 * A RecordArray is written as numpy's `tolist()` of a structured array is: a list of rows, each a
 * list of its field values (JSON has no tuples); it reads back as those lists.
 *
 * Reading: float tokens are JS numbers (a float array reads back as a list of numbers, as Python's
 * json gives a list of floats); McUtils' pickled bytes → Buffer; McUtils' pickled numpy scalars
 * (`np.bool_`, `np.complex128`, …) → their value (boolean, number / bigint, 0-d complex NDArray).
 */
import { CheckpointerError } from '../errors';
import { dtypeInfo, dtypeOfTypedArray, DType, shapeSize, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { classify } from '../values/model';
import { RecordArray } from '../values/records';
import { reviveObject } from '../values/registry';
import { JsonFloat, JsonFloatArray, JsonNode } from './json-text';
import {
  classNameFromPickleBase64, decodePickleData, decodePseudoPickleJson, displayClassName, encodeBytesPseudoPickleJson,
  encodePseudoPickleJson, isNumpyScalarClass,
} from './pseudo-pickle';

const isFloatDType = (dtype: DType): boolean => {
  const kind = dtypeInfo(dtype).kind;
  return kind === 'f' || kind === 'c';
};

/** An array's JSON node: float/complex → float tokens (a private copy of the data), others → tolist(). */
function arrayNode(data: TypedArray, shape: readonly number[], dtype: DType): JsonNode {
  if (isFloatDType(dtype)) return new JsonFloatArray(new NDArray(data.slice(), shape, dtype));
  return new NDArray(data, shape, dtype).toList() as JsonNode;
}

function nestNodes(flat: readonly JsonNode[], shape: readonly number[]): JsonNode {
  if (shape.length === 0) return flat[0]!;
  let index = 0;
  const build = (axis: number): JsonNode[] => {
    const out: JsonNode[] = new Array(shape[axis]);
    for (let k = 0; k < shape[axis]!; k++) out[k] = axis === shape.length - 1 ? flat[index++]! : build(axis + 1);
    return out;
  };
  return build(0);
}

/** Record `i` of a RecordArray as numpy's tolist() gives it (a tuple → a JSON list of field values). */
function recordRowNode(r: RecordArray, i: number): JsonNode[] {
  return r.fields.map((f): JsonNode => {
    const c = r.column(f.name);
    const block = shapeSize(f.shape);
    if (c instanceof RecordArray) {
      const rows: JsonNode[] = [];
      for (let k = 0; k < block; k++) rows.push(recordRowNode(c, i * block + k));
      return nestNodes(rows, f.shape);
    }
    if (c instanceof NDArray) {
      const lanes = dtypeInfo(c.dtype).lanes;
      return arrayNode(c.data.subarray(i * block * lanes, (i + 1) * block * lanes), f.shape, c.dtype);
    }
    const items = (c as readonly (string | Uint8Array)[]).slice(i * block, (i + 1) * block)
      .map((x): JsonNode => (typeof x === 'string' ? x : encodeBytesPseudoPickleJson(x)));
    return nestNodes(items, f.shape);
  });
}

function recordsNode(r: RecordArray): JsonNode {
  const rows: JsonNode[] = [];
  for (let i = 0; i < r.size; i++) rows.push(recordRowNode(r, i));
  return nestNodes(rows, r.shape);
}

function setOwn(obj: { [k: string]: JsonNode }, k: string, v: JsonNode): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Encodes a storable value (checked by assertStorable) into the JSON tree written to the file. */
export function encodeJsonValue(value: unknown): JsonNode {
  const c = classify(value);
  switch (c.kind) {
    case 'null': return null;
    case 'boolean':
    case 'number':
    case 'bigint':
    case 'string':
      return c.value;
    case 'records':
      return recordsNode(c.value);
    case 'bytes':
      return encodeBytesPseudoPickleJson(c.value);
    case 'typed':
      return arrayNode(c.value, [c.value.length], dtypeOfTypedArray(c.value));
    case 'ndarray':
      return arrayNode(c.value.data, c.value.shape, c.value.dtype);
    case 'list':
      return c.value.map((v) => encodeJsonValue(v));
    case 'dict': {
      const out: { [k: string]: JsonNode } = {};
      for (const [k, v] of c.entries) setOwn(out, k, encodeJsonValue(v));
      return out;
    }
    case 'object':
      return encodePseudoPickleJson(c.className, encodeJsonValue(c.state));
  }
}

/** Decodes a JSON tree into fresh JS values (a copy: callers may mutate what they get). */
export function decodeJsonValue(node: JsonNode, depth = 0): unknown {
  if (node === null || typeof node !== 'object') return node;
  if (node instanceof JsonFloat) return node.value;
  if (node instanceof JsonFloatArray) return node.array.toList();
  // Recursion, like the writer's: refused before the stack overflows (a RangeError).
  if (depth >= MAX_DECODE_DEPTH) {
    throw new CheckpointerError(`the value is nested deeper than ${MAX_DECODE_DEPTH} lists or dicts, more than this reader follows`, { code: 'ERR_UNSUPPORTED_VALUE' });
  }
  if (Array.isArray(node)) return node.map((n) => decodeJsonValue(n, depth + 1));
  const pickled = pickledValue(node, depth);
  if (pickled !== NOT_PICKLED) return pickled;
  const obj = decodePseudoPickleJson(node);
  if (obj) return reviveObject(obj.className, decodeJsonValue(obj.state as JsonNode, depth + 1));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(node)) {
    Object.defineProperty(out, k, { value: decodeJsonValue(node[k]!, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const MAX_DECODE_DEPTH = 1000;
const NOT_PICKLED = Symbol('not pickled');

/**
 * McUtils' pickled values: `{pseudopickle_protocol, pickle_data}` (bytes, numpy scalars), and a
 * numpy scalar it pseudo-pickled as `{class: <pickle of numpy.bool_>, state: …}` (with or without
 * `pseudopickle_protocol`), whose value is its state's.
 */
function pickledValue(node: { [k: string]: JsonNode }, depth: number): unknown {
  if (node.pickle_data === undefined && node.class === undefined) return NOT_PICKLED;
  const keys = Object.keys(node);
  if (keys.length === 2 && typeof node.pickle_data === 'string' && node.pseudopickle_protocol !== undefined) {
    return decodePickleData(node.pickle_data, 'pickle_data');
  }
  const cls = node.class;
  if ((keys.length === 2 || (keys.length === 3 && node.pseudopickle_protocol !== undefined)) && 'state' in node
    && cls !== null && typeof cls === 'object' && !Array.isArray(cls) && !(cls instanceof JsonFloat) && !(cls instanceof JsonFloatArray)
    && typeof (cls as { [k: string]: JsonNode }).pickle_data === 'string') {
    let className: string;
    try {
      className = displayClassName(classNameFromPickleBase64((cls as { [k: string]: JsonNode }).pickle_data as string));
    } catch {
      return NOT_PICKLED;
    }
    if (isNumpyScalarClass(className)) return decodeJsonValue(node.state!, depth + 1);
  }
  return NOT_PICKLED;
}
