/**
 * JSON text as Python's `json` module reads and writes it: the bare tokens `NaN`, `Infinity` and
 * `-Infinity` are numbers, and integers keep full precision (outside the safe range they parse as
 * bigint and bigints print as integer literals). Output uses Python's default separators.
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

/**
 * Lists read from text whose numbers were all float tokens (`[1.0, 2.0]`): written back with float
 * tokens, so an untouched key keeps the types Python wrote.
 */
const floatLists = new WeakSet<JsonNode[]>();

/** Parses JSON text (with Python's extensions) into a JsonNode tree; objects keep key order. */
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
  // What the last number token was: a float token with a whole value (`1.0`), or an integer (`1`).
  let wholeFloat = false;
  let intToken = false;
  const parseValue = (depth: number): JsonNode => {
    if (depth > 10000) fail('nesting too deep');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: { [key: string]: JsonNode } = {};
      ws();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail('expected a string key');
        const key = parseString();
        ws();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        let v = parseValue(depth + 1);
        if (wholeFloat && typeof v === 'number') v = new JsonFloat(v);
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const arr: JsonNode[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      // Whole-number float tokens: a list of nothing but float tokens is marked as one (cheap:
      // no box per element); in a list that mixes them with integers each is boxed.
      let wholeAt: number[] | undefined;
      let ints = false;
      for (;;) {
        const v = parseValue(depth + 1);
        if (typeof v === 'number') {
          if (wholeFloat) (wholeAt ??= []).push(arr.length);
          else if (intToken) ints = true;
        }
        arr.push(v);
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          if (wholeAt) {
            if (!ints) floatLists.add(arr);
            else for (const i of wholeAt) arr[i] = new JsonFloat(arr[i] as number);
          }
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (literal('true')) return true;
    if (literal('false')) return false;
    if (literal('null')) return null;
    wholeFloat = false;
    intToken = false;
    if (literal('NaN')) return NaN;
    if (literal('Infinity')) return Infinity;
    if (literal('-Infinity')) return -Infinity;
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
  const value = parseValue(0);
  ws();
  if (pos !== text.length) fail('unexpected text after the JSON value');
  return value;
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

/** Writes a JsonNode tree as text, with Python's default `, ` and `: ` separators. */
export function stringifyJson(node: JsonNode): string {
  const parts: string[] = [];
  const emit = (n: JsonNode): void => {
    if (n === null) parts.push('null');
    else if (typeof n === 'boolean') parts.push(n ? 'true' : 'false');
    else if (typeof n === 'number') parts.push(formatNumber(n));
    else if (typeof n === 'bigint') parts.push(n.toString());
    else if (typeof n === 'string') parts.push(JSON.stringify(n));
    else if (n instanceof JsonFloat) parts.push(formatFloat(n.value));
    else if (n instanceof JsonFloatArray) emitFloatArray(n.array, parts);
    else if (Array.isArray(n)) {
      parts.push('[');
      const floats = floatLists.has(n);
      for (let i = 0; i < n.length; i++) {
        if (i > 0) parts.push(', ');
        const x = n[i]!;
        if (floats && typeof x === 'number') parts.push(formatFloat(x));
        else emit(x);
      }
      parts.push(']');
    } else {
      parts.push('{');
      let first = true;
      for (const k of Object.keys(n)) {
        if (!first) parts.push(', ');
        first = false;
        parts.push(JSON.stringify(k), ': ');
        emit(n[k]!);
      }
      parts.push('}');
    }
  };
  emit(node);
  return parts.join('');
}
