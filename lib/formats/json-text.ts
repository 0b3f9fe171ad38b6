/**
 * JSON text as Python's `json` module reads and writes it: the bare tokens `NaN`, `Infinity` and
 * `-Infinity` are numbers, and integers keep full precision (outside the safe range they parse as
 * bigint and bigints print as integer literals). Output uses Python's default separators.
 *
 * Float tokens stay floats: Python's json loads `1` as int and `1.0` as float, so a whole-number
 * float read from a file (a `JsonFloat`, or a list marked as all-float) is written back as `1.0`,
 * and float arrays to be written (`JsonFloatArray`) print every element as a float.
 */
import { dtypeInfo, float16Values } from '../values/dtype';
import { NDArray } from '../values/ndarray';

export type JsonNode =
  | null | boolean | number | bigint | string
  | JsonFloat | JsonFloatArray
  | JsonNode[]
  | { [key: string]: JsonNode };

/**
 * A float token whose value is a whole number (`1.0`, `-0.0`, `1e3`): kept apart from the integer
 * `1` so that a document read and written again still says float where Python wrote one (Python's
 * json loads `1` as int, `1.0` as float). Other floats (`1.5`) are plain numbers: they print as floats.
 */
export class JsonFloat {
  constructor(readonly value: number) {}
}

/**
 * A float or complex array (float16/32/64, complex64/128) to be written as nested lists of float
 * tokens — `[1.0, 2.0]`, complex as `[re, im]` — as McUtils' `tolist()` + json write them. Held as
 * the array itself (a private copy), so large arrays are printed straight from their TypedArray.
 */
export class JsonFloatArray {
  constructor(readonly array: NDArray) {}
}

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`);
  }
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
/** A character no flat list of numbers has (after its opening bracket). */
const NOT_NUMBER_LIST_RE = /[^-+0-9.eE,\s\]]/g;
/** A float token's mark. */
const FLOAT_MARK_RE = /[.eE]/;
/** An integer token: digits not part of a float token. */
const INT_TOKEN_RE = /(?<![\d.eE+-])-?\d+(?![\d.eE])/;

/**
 * Lists read from text whose numbers were all float tokens (`[1.0, 2.0]`): written back with float
 * tokens, so an untouched key keeps the types Python wrote.
 */
const floatLists = new WeakSet<JsonNode[]>();

/** A container being parsed: a list, or an object and the key its next value goes under (one shape for both: monomorphic). */
class Open {
  wholeAt: number[] | undefined = undefined;
  ints = false;
  constructor(readonly list: JsonNode[] | null, readonly obj: { [key: string]: JsonNode } | null, public key: string) {}
}

/** How deep lists and objects may nest (the writer and the value decoder refuse deeper values). */
const MAX_PARSE_DEPTH = 10000;

/**
 * Parses JSON text (with Python's extensions) into a JsonNode tree; objects keep key order.
 * Iterative (an explicit stack of open containers), so nesting is bounded by MAX_PARSE_DEPTH, not
 * by the JS call stack.
 */
export function parseJson(text: string): JsonNode {
  let pos = 0;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(pos >= text.length ? 'unexpected end of JSON' : `${what} (found ${JSON.stringify(text[pos])})`, pos);
  };
  const ws = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const literal = (word: string): boolean => {
    if (text.startsWith(word, pos)) {
      pos += word.length;
      return true;
    }
    return false;
  };
  const parseString = (): string => {
    // Find the closing quote, then let JSON.parse handle escapes exactly as the standard says.
    const start = pos;
    pos++;
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (c === 0x5c) pos++;
      else if (c < 0x20) fail('control character in string');
      pos++;
    }
    if (pos >= text.length) fail('unterminated string');
    pos++;
    return JSON.parse(text.slice(start, pos)) as string;
  };
  /** An object key and its colon. */
  const parseKey = (): string => {
    ws();
    if (text[pos] !== '"') fail('expected a string key');
    const key = parseString();
    ws();
    if (text[pos] !== ':') fail("expected ':'");
    pos++;
    return key;
  };
  // What the last number token was: a float token with a whole value (`1.0`), or an integer (`1`).
  let wholeFloat = false;
  let intToken = false;
  const parseScalar = (): JsonNode => {
    wholeFloat = false;
    intToken = false;
    const c = text.charCodeAt(pos);
    if (c === 0x22) return parseString();
    // digits (and '-' not before Infinity) go straight to the number
    if ((c >= 0x30 && c <= 0x39) || (c === 0x2d && text.charCodeAt(pos + 1) !== 0x49)) return parseNumber();
    if (literal('true')) return true;
    if (literal('false')) return false;
    if (literal('null')) return null;
    if (literal('NaN')) return NaN;
    if (literal('Infinity')) return Infinity;
    if (literal('-Infinity')) return -Infinity;
    return parseNumber();
  };
  const parseNumber = (): JsonNode => {
    NUMBER_RE.lastIndex = pos;
    const m = NUMBER_RE.exec(text);
    if (!m) return fail('expected a value');
    pos += m[0].length;
    const s = m[0];
    if (!/[.eE]/.test(s)) {
      const n = Number(s);
      if (!Number.isSafeInteger(n)) return BigInt(s);
      intToken = true;
      return n;
    }
    const f = Number(s);
    wholeFloat = Number.isInteger(f);
    return f;
  };

  /**
   * A flat list of numbers that are all float tokens or all integer tokens (what arrays become),
   * parsed by the engine's JSON.parse from its slice: several times faster than token by token.
   * Returns undefined (pos unchanged) for anything else — NaN/Infinity, integers past 15 digits
   * (bigints), mixed tokens, nested values, bad syntax — which the general parser handles.
   */
  const numberList = (): JsonNode[] | undefined => {
    const first = text.charCodeAt(pos + 1);
    if (!((first >= 0x30 && first <= 0x39) || first === 0x2d || first === 0x20 || first === 0x0a || first === 0x0d || first === 0x09)) return undefined;
    const end = text.indexOf(']', pos);
    if (end < 0) return undefined;
    const slice = text.slice(pos, end + 1);
    // Native scans of the slice, not a loop over its characters here.
    NOT_NUMBER_LIST_RE.lastIndex = 1;
    if (NOT_NUMBER_LIST_RE.test(slice)) return undefined;
    let list: JsonNode[];
    try {
      list = JSON.parse(slice) as JsonNode[];
    } catch {
      return undefined; // a malformed token: the general parser reports where
    }
    // Only whole values can be either token kind (1 or 1.0); a list without them needs no look
    // at its tokens. With them: all integer tokens (safe ones) stay as they are, all float tokens
    // mark the list; a mix (or a bigint) is the general parser's.
    let whole = false;
    for (let i = 0; i < list.length; i++) {
      if (Number.isInteger(list[i])) {
        whole = true;
        break;
      }
    }
    if (whole) {
      if (!FLOAT_MARK_RE.test(slice)) {
        for (let i = 0; i < list.length; i++) if (!Number.isSafeInteger(list[i])) return undefined;
      } else if (INT_TOKEN_RE.test(slice)) {
        return undefined;
      } else {
        floatLists.add(list);
      }
    }
    pos = end + 1;
    return list;
  };

  const stack: Open[] = [];
  for (;;) {
    // One value: a scalar, an empty container, or the opening of a container (then its first value).
    ws();
    const c = text[pos];
    let value: JsonNode;
    const fast = c === '[' ? numberList() : undefined;
    if (fast !== undefined) {
      value = fast;
      wholeFloat = false;
      intToken = false;
    } else if (c === '{' || c === '[') {
      if (stack.length >= MAX_PARSE_DEPTH) fail('nesting too deep');
      pos++;
      ws();
      if (c === '{') {
        if (text[pos] === '}') {
          pos++;
          value = {};
        } else {
          stack.push(new Open(null, {}, parseKey()));
          continue;
        }
      } else if (text[pos] === ']') {
        pos++;
        value = [];
      } else {
        stack.push(new Open([], null, ''));
        continue;
      }
    } else {
      value = parseScalar();
    }
    // Hand the finished value to its container; close the containers it finishes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        ws();
        if (pos !== text.length) fail('unexpected text after the JSON value');
        return value;
      }
      const isNumber = typeof value === 'number';
      const list = top.list;
      if (list !== null) {
        // Whole-number float tokens: a list of nothing but float tokens is marked as one (cheap:
        // no box per element); in a list that mixes them with integers each is boxed.
        if (isNumber) {
          if (wholeFloat) (top.wholeAt ??= []).push(list.length);
          else if (intToken) top.ints = true;
        }
        list.push(value);
        ws();
        if (text[pos] === ',') {
          pos++;
          break;
        }
        if (text[pos] !== ']') fail("expected ',' or ']'");
        pos++;
        stack.pop();
        if (top.wholeAt) {
          if (!top.ints) floatLists.add(list);
          else for (const i of top.wholeAt) list[i] = new JsonFloat(list[i] as number);
        }
        value = list;
      } else {
        const obj = top.obj!;
        const v = isNumber && wholeFloat ? new JsonFloat(value as number) : value;
        Object.defineProperty(obj, top.key, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[pos] === ',') {
          pos++;
          top.key = parseKey();
          break;
        }
        if (text[pos] !== '}') fail("expected ',' or '}'");
        pos++;
        stack.pop();
        value = obj;
      }
      // a container just closed: not a number token
      wholeFloat = false;
      intToken = false;
    }
  }
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (Object.is(v, -0)) return '-0.0';
  const text = String(v);
  // An integral float past 2^53 prints as digits only; mark it a float (as Python does) so it is
  // not read back as an exact integer (a bigint).
  if (!Number.isSafeInteger(v) && /^-?\d+$/.test(text)) return `${text}.0`;
  return text;
}

/** A float as Python's `repr(float)` reads it back: always with a `.` or an exponent (`1.0`, `-0.0`, `1e+21`). */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (Object.is(v, -0)) return '-0.0';
  const text = String(v);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function emitFloatArray(a: NDArray, parts: string[]): void {
  const { data, shape } = a;
  const info = dtypeInfo(a.dtype);
  const values = a.dtype === 'float16' ? float16Values(data) : data as Float32Array | Float64Array;
  const complex = info.lanes === 2;
  if (shape.length === 0) {
    parts.push(complex ? `[${formatFloat(values[0]!)}, ${formatFloat(values[1]!)}]` : formatFloat(values[0]!));
    return;
  }
  let index = 0;
  const build = (axis: number): void => {
    parts.push('[');
    const n = shape[axis]!;
    const last = axis === shape.length - 1;
    for (let k = 0; k < n; k++) {
      if (k > 0) parts.push(', ');
      if (!last) build(axis + 1);
      else if (complex) {
        parts.push(`[${formatFloat(values[2 * index]!)}, ${formatFloat(values[2 * index + 1]!)}]`);
        index++;
      } else parts.push(formatFloat(values[index++]!));
    }
    parts.push(']');
  };
  build(0);
}

/** Writes a JsonNode tree as text, with Python's default `, ` and `: ` separators (iterative: any depth the parser accepts). */
export function stringifyJson(node: JsonNode): string {
  const parts: string[] = [];
  type Open = { list: JsonNode[]; i: number; floats: boolean } | { obj: { [key: string]: JsonNode }; keys: string[]; i: number };
  const stack: Open[] = [];
  let cur: JsonNode = node;
  for (;;) {
    const n = cur;
    if (n === null) parts.push('null');
    else if (typeof n === 'boolean') parts.push(n ? 'true' : 'false');
    else if (typeof n === 'number') parts.push(formatNumber(n));
    else if (typeof n === 'bigint') parts.push(n.toString());
    else if (typeof n === 'string') parts.push(JSON.stringify(n));
    else if (n instanceof JsonFloat) parts.push(formatFloat(n.value));
    else if (n instanceof JsonFloatArray) emitFloatArray(n.array, parts);
    else if (Array.isArray(n)) {
      parts.push('[');
      stack.push({ list: n, i: 0, floats: floatLists.has(n) });
    } else {
      parts.push('{');
      stack.push({ obj: n, keys: Object.keys(n), i: 0 });
    }
    // The next value to write, closing the containers that are done.
    let next = false;
    while (!next) {
      const top = stack[stack.length - 1];
      if (top === undefined) return parts.join('');
      if ('list' in top) {
        if (top.i < top.list.length) {
          if (top.i > 0) parts.push(', ');
          const x = top.list[top.i++]!;
          if (top.floats && typeof x === 'number') parts.push(formatFloat(x));
          else {
            cur = x;
            next = true;
          }
        } else {
          parts.push(']');
          stack.pop();
        }
      } else if (top.i < top.keys.length) {
        if (top.i > 0) parts.push(', ');
        const k = top.keys[top.i++]!;
        parts.push(JSON.stringify(k), ': ');
        cur = top.obj[k]!;
        next = true;
      } else {
        parts.push('}');
        stack.pop();
      }
    }
  }
}
