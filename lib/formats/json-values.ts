/**
 * Values ↔ JSON trees, McUtils' way: arrays (TypedArray, NDArray) become nested lists as numpy's
 * `tolist()` gives them (bool → true/false, complex → [re, im], 64-bit ints exact), dicts and Maps
 * become objects, registered class instances become pseudo-pickled objects.
 */
import { CheckpointerError } from '../errors';
import { dtypeOfTypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { classify } from '../values/model';
import { reviveObject } from '../values/registry';
import { JsonNode } from './json-text';
import { decodePseudoPickleJson, encodePseudoPickleJson } from './pseudo-pickle';

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
      throw new CheckpointerError('record arrays are not stored in JSON checkpoints yet', { code: 'ERR_UNSUPPORTED_VALUE' });
    case 'bytes':
    case 'typed': {
      const a = c.value;
      const dtype = dtypeOfTypedArray(a);
      return new NDArray(a, [a.length], dtype).toList() as JsonNode;
    }
    case 'ndarray':
      return c.value.toList() as JsonNode;
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
  // Recursion, like the writer's: refused before the stack overflows (a RangeError).
  if (depth >= MAX_DECODE_DEPTH) {
    throw new CheckpointerError(`the value is nested deeper than ${MAX_DECODE_DEPTH} lists or dicts, more than this reader follows`, { code: 'ERR_UNSUPPORTED_VALUE' });
  }
  if (Array.isArray(node)) return node.map((n) => decodeJsonValue(n, depth + 1));
  const obj = decodePseudoPickleJson(node);
  if (obj) return reviveObject(obj.className, decodeJsonValue(obj.state as JsonNode, depth + 1));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(node)) {
    Object.defineProperty(out, k, { value: decodeJsonValue(node[k]!, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const MAX_DECODE_DEPTH = 1000;
