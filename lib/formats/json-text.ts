/**
 * JSON text as Python's `json` module reads and writes it: the bare tokens `NaN`, `Infinity` and
 * `-Infinity` are numbers, and integers keep full precision (outside the safe range they parse as
 * bigint and bigints print as integer literals). Output uses Python's default separators.
 */

export type JsonNode =
  | null | boolean | number | bigint | string
  | JsonNode[]
  | { [key: string]: JsonNode };

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`);
  }
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

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
        const v = parseValue(depth + 1);
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
      for (;;) {
        arr.push(parseValue(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (literal('true')) return true;
    if (literal('false')) return false;
    if (literal('null')) return null;
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
      return n;
    }
    return Number(s);
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

/** Writes a JsonNode tree as text, with Python's default `, ` and `: ` separators. */
export function stringifyJson(node: JsonNode): string {
  const parts: string[] = [];
  const emit = (n: JsonNode): void => {
    if (n === null) parts.push('null');
    else if (typeof n === 'boolean') parts.push(n ? 'true' : 'false');
    else if (typeof n === 'number') parts.push(formatNumber(n));
    else if (typeof n === 'bigint') parts.push(n.toString());
    else if (typeof n === 'string') parts.push(JSON.stringify(n));
    else if (Array.isArray(n)) {
      parts.push('[');
      for (let i = 0; i < n.length; i++) {
        if (i > 0) parts.push(', ');
        emit(n[i]!);
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
