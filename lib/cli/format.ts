/**
 * Values as numpy and Python print them: arrays as `repr(np.array(...))` does with numpy's default
 * print options (threshold 1000, edgeitems 3, linewidth 75, precision 8, floatmode 'maxprec'),
 * summarised with `...` past the threshold; everything else as Python's repr of what McUtils'
 * checkpointer would return (None, True, dicts, lists, 'strings', b'bytes').
 */
import { DType, dtypeInfo, FLOAT16_AS_BITS, float16ToNumber, numberToFloat16, TypedArray } from '../values/dtype';
import { NDArray } from '../values/ndarray';
import { EnumArray, RecordArray } from '../values/records';
import { UnregisteredObject } from '../values/registry';

export const THRESHOLD = 1000;
export const EDGE_ITEMS = 3;
const LINE_WIDTH = 75;
const PRECISION = 8;

/**
 * An array to print: the elements shown (all of them, or the edges of each summarised axis, as
 * `summarised` says) and the full shape they come from.
 */
export interface ShownArray {
  dtype: DType;
  /** The shape of `data`: per summarised axis 2 × EDGE_ITEMS, else the full length. */
  shape: readonly number[];
  data: TypedArray;
  summarised: readonly boolean[];
  fullShape: readonly number[];
}

/** Which axes numpy summarises for an array of this shape. */
export function summarisedAxes(shape: readonly number[]): boolean[] {
  const size = shape.reduce((a, b) => a * b, 1);
  return shape.map((n) => size > THRESHOLD && n > 2 * EDGE_ITEMS);
}

/** The elements numpy shows of an in-memory array (its edges when summarised). */
export function shownOf(a: NDArray): ShownArray {
  const summarised = summarisedAxes(a.shape);
  if (!summarised.some(Boolean)) return { dtype: a.dtype, shape: a.shape, data: a.data, summarised, fullShape: a.shape };
  const lanes = dtypeInfo(a.dtype).lanes;
  const shape = a.shape.map((n, i) => (summarised[i] ? 2 * EDGE_ITEMS : n));
  const pick = shape.map((n, i) => Array.from({ length: n }, (_, k) => (summarised[i] ? (k < EDGE_ITEMS ? k : a.shape[i]! - 2 * EDGE_ITEMS + k) : k)));
  const strides = a.shape.map((_, i) => a.shape.slice(i + 1).reduce((x, y) => x * y, 1));
  const count = shape.reduce((x, y) => x * y, 1);
  const data = new (a.data.constructor as new (n: number) => TypedArray)(count * lanes);
  const idx = new Array(shape.length).fill(0);
  for (let out = 0; out < count; out++) {
    let src = 0;
    for (let ax = 0; ax < shape.length; ax++) src += pick[ax]![idx[ax]]! * strides[ax]!;
    for (let l = 0; l < lanes; l++) (data as unknown as unknown[])[out * lanes + l] = (a.data as unknown as unknown[])[src * lanes + l];
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      if (++idx[ax] < shape[ax]!) break;
      idx[ax] = 0;
    }
  }
  return { dtype: a.dtype, shape, data, summarised, fullShape: a.shape };
}

// ------------------------------------------------------------------------------ element formats

/** The shortest decimal that reads back as the same value in the dtype's precision. */
function shortest(x: number, dtype: DType): string {
  if (dtype === 'float64' || dtype === 'complex128') return String(x);
  const same = dtype === 'float16' ? (y: number) => float16ToNumber(numberToFloat16(y)) === x : (y: number) => Math.fround(y) === x;
  for (let p = 1; p < 17; p++) {
    const s = x.toPrecision(p);
    if (same(Number(s))) return String(Number(s));
  }
  return String(x);
}

/** numpy's dragon4_positional(unique, precision 8, trim '.') without padding: "1.", "0.25", "-3.5". */
function positional(x: number, dtype: DType): string {
  let s = shortest(x, dtype);
  if (/e/i.test(s)) s = x.toFixed(20);
  let [int, frac = ''] = s.split('.');
  if (frac.length > PRECISION) {
    [int, frac = ''] = x.toFixed(PRECISION).split('.');
    frac = frac.replace(/0+$/, '');
  }
  return `${int}.${frac}`;
}

/** numpy's dragon4_scientific(unique, precision 8): [mantissa int, mantissa fraction, exponent sign+digits]. */
function scientific(x: number, dtype: DType): [string, string, string] {
  let s = Number(shortest(x, dtype)).toExponential();
  let [mant, exp] = s.split('e') as [string, string];
  let [int, frac = ''] = mant.split('.');
  if (frac.length > PRECISION) {
    s = x.toExponential(PRECISION);
    [mant, exp] = s.split('e') as [string, string];
    [int, frac = ''] = mant.split('.');
    frac = frac.replace(/0+$/, '');
  }
  return [int!, frac, exp];
}

type Fmt = (x: number) => string;

/** numpy's FloatingFormat (floatmode 'maxprec', sign '-' or '+') over the values shown. */
function floatFormat(values: readonly number[], dtype: DType, sign: '-' | '+' = '-'): Fmt {
  const finite = values.filter(Number.isFinite);
  const nonZero = finite.filter((v) => v !== 0).map(Math.abs);
  let exp = false;
  if (nonZero.length) {
    const max = Math.max(...nonZero);
    const min = Math.min(...nonZero);
    exp = max >= 1e8 || min < 0.0001 || max / min > 1000;
  }
  const plus = (v: number, s: string): string => (sign === '+' && !(v < 0 || Object.is(v, -0)) ? `+${s}` : s);
  let padLeft = 0;
  let padRight = 0;
  let fmt: Fmt;
  if (finite.length === 0) {
    fmt = () => '';
  } else if (exp) {
    const parts = finite.map((v) => scientific(v, dtype));
    const precision = Math.max(...parts.map((p) => p[1].length));
    const expDigits = Math.max(2, ...parts.map((p) => p[2].length - 1));
    padLeft = Math.max(...finite.map((v, i) => plus(v, parts[i]![0]).length));
    padRight = expDigits + 2 + precision;
    fmt = (v) => {
      const [int, frac, e] = scientific(v, dtype);
      const digits = e.replace(/^[+-]/, '').padStart(expDigits, '0');
      return `${plus(v, int).padStart(padLeft)}.${frac.padEnd(precision, '0')}e${e.startsWith('-') ? '-' : '+'}${digits}`;
    };
  } else {
    const strs = finite.map((v) => plus(v, positional(v, dtype)));
    padLeft = Math.max(...strs.map((s) => s.split('.')[0]!.length));
    padRight = Math.max(...strs.map((s) => s.split('.')[1]!.length));
    fmt = (v) => {
      const [int, frac] = plus(v, positional(v, dtype)).split('.') as [string, string];
      return `${int.padStart(padLeft)}.${frac.padEnd(padRight)}`;
    };
  }
  if (finite.length !== values.length) {
    const negInf = sign === '+' || values.some((v) => v === -Infinity);
    const offset = padRight + 1;
    padLeft = Math.max(padLeft, 3 - offset, 3 + (negInf ? 1 : 0) - offset);
  }
  return (v) => {
    if (Number.isNaN(v)) return `${sign === '+' ? '+' : ''}nan`.padStart(padLeft + padRight + 1);
    if (!Number.isFinite(v)) return `${v < 0 ? '-' : sign === '+' ? '+' : ''}inf`.padStart(padLeft + padRight + 1);
    return fmt(v);
  };
}

/** Formats each shown element of an array (as strings of one width where numpy aligns them). */
function elementStrings(a: ShownArray): string[] {
  const info = dtypeInfo(a.dtype);
  const n = a.shape.reduce((x, y) => x * y, 1);
  const raw = a.data;
  if (info.kind === 'b') {
    const vals = Array.from({ length: n }, (_, i) => raw[i] !== 0);
    // numpy pads True to False's width in every array (not in a 0-d one).
    const t = a.fullShape.length > 0 ? ' True' : 'True';
    return vals.map((v) => (v ? t : 'False'));
  }
  if (info.kind === 'i' || info.kind === 'u') {
    const strs = Array.from({ length: n }, (_, i) => String(raw[i]));
    const w = Math.max(0, ...strs.map((s) => s.length));
    return strs.map((s) => s.padStart(w));
  }
  const num = (i: number): number => (a.dtype === 'float16' && FLOAT16_AS_BITS ? float16ToNumber(raw[i] as number) : Number(raw[i]));
  if (info.kind === 'f') {
    const vals = Array.from({ length: n }, (_, i) => num(i));
    const f = floatFormat(vals, a.dtype);
    return vals.map(f);
  }
  const re = Array.from({ length: n }, (_, i) => Number(raw[2 * i]));
  const im = Array.from({ length: n }, (_, i) => Number(raw[2 * i + 1]));
  const fr = floatFormat(re, a.dtype);
  const fi = floatFormat(im, a.dtype, '+');
  return re.map((r, i) => {
    const imag = fi(im[i]!);
    const trimmed = imag.trimEnd();
    return `${fr(r)}${trimmed}j${' '.repeat(imag.length - trimmed.length)}`;
  });
}

// ------------------------------------------------------------------------------------- layout

/** numpy's _formatArray: nested brackets, wrapped at the line width, `...` where summarised. */
function layout(a: ShownArray, words: string[], prefix: string, lineWidth: number): string {
  const sep = ', ';
  const strides = a.shape.map((_, i) => a.shape.slice(i + 1).reduce((x, y) => x * y, 1));
  const extend = (s: string, line: string, word: string, width: number, hanging: string): [string, string] => {
    let wrap = line.length + word.length > width;
    if (line.length <= hanging.length) wrap = false;
    if (wrap) {
      s += `${line.trimEnd()}\n`;
      line = hanging;
    }
    return [s, line + word];
  };
  const recur = (axis: number, offset: number, hanging: string, width: number): string => {
    const left = a.shape.length - axis;
    if (left === 0) return words[offset]!;
    const nextHanging = `${hanging} `;
    const nextWidth = width - 1;
    const len = a.shape[axis]!;
    const summary = a.summarised[axis]!;
    const lead = summary ? EDGE_ITEMS : 0;
    const trail = summary ? EDGE_ITEMS : len;
    const at = (k: number): number => offset + k * strides[axis]!;
    const shownLen = summary ? 2 * EDGE_ITEMS : len;
    let s = '';
    if (left === 1) {
      const elemWidth = width - Math.max(sep.trimEnd().length, 1);
      let line = hanging;
      for (let i = 0; i < lead; i++) {
        [s, line] = extend(s, line, recur(axis + 1, at(i), nextHanging, nextWidth), elemWidth, hanging);
        line += sep;
      }
      if (summary) {
        [s, line] = extend(s, line, '...', elemWidth, hanging);
        line += sep;
      }
      for (let i = trail; i > 1; i--) {
        [s, line] = extend(s, line, recur(axis + 1, at(shownLen - i), nextHanging, nextWidth), elemWidth, hanging);
        line += sep;
      }
      [s, line] = extend(s, line, recur(axis + 1, at(shownLen - 1), nextHanging, nextWidth), elemWidth, hanging);
      s += line;
    } else {
      const lineSep = `${sep.trimEnd()}${'\n'.repeat(left - 1)}`;
      for (let i = 0; i < lead; i++) s += hanging + recur(axis + 1, at(i), nextHanging, nextWidth) + lineSep;
      if (summary) s += `${hanging}...${lineSep}`;
      for (let i = trail; i > 1; i--) s += hanging + recur(axis + 1, at(shownLen - i), nextHanging, nextWidth) + lineSep;
      s += hanging + recur(axis + 1, at(shownLen - 1), nextHanging, nextWidth);
    }
    return `[${s.slice(hanging.length)}]`;
  };
  return recur(0, 0, prefix, lineWidth);
}

/** The dtypes numpy's repr leaves out (the defaults of Python floats, ints, bools, complex). */
const IMPLIED_DTYPES = new Set<DType>(['float64', 'int64', 'bool', 'complex128']);

/** `repr(array)` as numpy prints it. */
export function formatArrayRepr(a: ShownArray): string {
  const size = a.fullShape.reduce((x, y) => x * y, 1);
  const skipDtype = IMPLIED_DTYPES.has(a.dtype) && size > 0;
  const prefix = 'array(';
  const suffix = skipDtype ? ')' : ',';
  let body: string;
  if (size === 0) {
    body = '[]';
    if (a.fullShape.length > 1 || a.fullShape.length === 0) body += `, shape=(${a.fullShape.join(', ')}${a.fullShape.length === 1 ? ',' : ''})`;
  } else if (a.fullShape.length === 0) {
    body = elementStrings(a)[0]!.trim();
  } else {
    body = layout(a, elementStrings(a), ' '.repeat(prefix.length + 1), LINE_WIDTH - suffix.length);
  }
  const text = prefix + body + suffix;
  if (skipDtype) return text;
  const dtype = `dtype=${a.dtype})`;
  const lastLine = text.length - (text.lastIndexOf('\n') + 1);
  const spacer = lastLine + dtype.length + 1 > LINE_WIDTH ? `\n${' '.repeat(prefix.length)}` : ' ';
  return text + spacer + dtype;
}

// -------------------------------------------------------------------------------- any value

function pyString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return quote + out + quote;
}

function pyBytes(b: Uint8Array): string {
  let out = '';
  for (const c of b) {
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x27) out += "\\'";
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c >= 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(c);
  }
  return `b'${out}'`;
}

function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  const s = String(x);
  if (/[e.]/.test(s)) return s.replace(/e([+-])(\d)$/, 'e$10$2');
  return `${s}.0`;
}

/** A value as Python's repr of it would read (arrays as numpy prints them), indented by `indent`. */
export function formatValue(value: unknown, indent = ''): string {
  if (value === null || value === undefined) return 'None';
  switch (typeof value) {
    case 'boolean': return value ? 'True' : 'False';
    case 'number': return Number.isSafeInteger(value) && !Object.is(value, -0) ? String(value) : pyFloat(value);
    case 'bigint': return String(value);
    case 'string': return pyString(value);
    default: break;
  }
  if (Buffer.isBuffer(value)) return pyBytes(value);
  if (value instanceof EnumArray) {
    const members = Object.entries(value.members).map(([k, v]) => `${k}=${v}`).join(', ');
    return `${reindent(formatArrayRepr(shownOf(value)), indent)}  # enum {${members}}`;
  }
  if (value instanceof NDArray) return reindent(formatArrayRepr(shownOf(value)), indent);
  if (value instanceof RecordArray) return reindent(formatRecords(value), indent);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const a = value as unknown as TypedArray;
    return formatValue(new NDArray(a, [a.length], dtypeOfView(a)), indent);
  }
  const inner = `${indent} `;
  if (Array.isArray(value)) {
    const items = value.map((v) => formatValue(v, inner));
    return joinItems('[', items, ']', indent);
  }
  if (value instanceof UnregisteredObject) return `<${value.className} ${formatValue(value.state, indent)}>`;
  if (value instanceof Map || (typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value)))) {
    const entries = value instanceof Map ? [...value] : Object.entries(value as object);
    const items = entries.map(([k, v]) => `${pyString(String(k))}: ${formatValue(v, `${inner}${' '.repeat(pyString(String(k)).length + 2)}`)}`);
    return joinItems('{', items, '}', indent);
  }
  const cls = (value as object).constructor?.name ?? 'object';
  const state = typeof (value as { toState?: unknown }).toState === 'function' ? ` ${formatValue((value as { toState(): unknown }).toState(), indent)}` : '';
  return `<${cls}${state}>`;
}

function joinItems(open: string, items: string[], close: string, indent: string): string {
  const flat = `${open}${items.join(', ')}${close}`;
  if (!flat.includes('\n') && flat.length + indent.length <= LINE_WIDTH) return flat;
  return `${open}${items.join(`,\n${indent} `)}${close}`;
}

function reindent(text: string, indent: string): string {
  // Blank lines (between the blocks of a 3-d array) stay blank, as numpy prints them.
  return text.replace(/\n(?=[^\n])/g, `\n${indent}`);
}

function dtypeOfView(a: TypedArray): DType {
  const names: Record<string, DType> = {
    Int8Array: 'int8', Int16Array: 'int16', Int32Array: 'int32', BigInt64Array: 'int64', Uint8Array: 'uint8', Uint8ClampedArray: 'uint8',
    Uint16Array: 'uint16', Uint32Array: 'uint32', BigUint64Array: 'uint64', Float32Array: 'float32', Float64Array: 'float64',
  };
  return names[a.constructor.name] ?? 'float64';
}

/** numpy's descr of a dtype ('<f8', '|b1', ...): how a structured dtype's repr names its fields' types. */
const DESCR: Record<DType, string> = {
  bool: '?', int8: 'i1', int16: '<i2', int32: '<i4', int64: '<i8', uint8: 'u1', uint16: '<u2', uint32: '<u4', uint64: '<u8',
  float16: '<f2', float32: '<f4', float64: '<f8', complex64: '<c8', complex128: '<c16',
};

type Field = RecordArray['fields'][number];

function fieldDescr(f: Field): string {
  const t = f.type;
  let d: string;
  switch (t.kind) {
    case 'number': d = pyString(DESCR[t.dtype]); break;
    case 'enum': d = pyString(DESCR[t.dtype]); break;
    case 'string': d = pyString(t.variable || t.length === 0 ? 'O' : t.encoding === 'utf32' ? `<U${t.length}` : `S${t.length}`); break;
    case 'bytes': d = pyString(`V${t.length}`); break;
    case 'record': d = `[${t.fields.map(fieldEntry).join(', ')}]`; break;
    default: d = "'?'";
  }
  return d;
}

function fieldEntry(f: Field): string {
  return `(${pyString(f.name)}, ${fieldDescr(f)}${f.shape.length ? `, (${f.shape.join(', ')}${f.shape.length === 1 ? ',' : ''})` : ''})`;
}

/** One field's value in a record tuple, as numpy prints it (floats as `1.`, fixed-length S text as b'...'). */
function fieldValue(v: unknown, f: Field): string {
  const t = f.type;
  if (f.shape.length > 0 && Array.isArray(v)) {
    const inner = { ...f, shape: f.shape.slice(1) };
    return `[${(v as unknown[]).map((x) => fieldValue(x, inner)).join(', ')}]`;
  }
  if (t.kind === 'record' && v !== null && typeof v === 'object') return tupleText(v as Record<string, unknown>, t.fields);
  if (t.kind === 'number' && typeof v === 'number' && dtypeInfo(t.dtype).kind === 'f') return Number.isFinite(v) ? positional(v, t.dtype) : pyFloat(v);
  if (t.kind === 'number' && Array.isArray(v) && dtypeInfo(t.dtype).kind === 'c') {
    const [re, im] = v as [number, number];
    return `(${positional(re, t.dtype)}${im < 0 || Object.is(im, -0) ? '' : '+'}${positional(im, t.dtype)}j)`;
  }
  if (t.kind === 'string' && typeof v === 'string' && t.encoding !== 'utf32' && !t.variable && t.length > 0) return pyBytes(Buffer.from(v, 'utf8'));
  if (v instanceof Uint8Array) return pyBytes(v);
  return formatValue(v);
}

function tupleText(row: Record<string, unknown>, fields: readonly Field[]): string {
  const items = fields.map((f) => fieldValue(row[f.name], f));
  return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
}

/** A record table as numpy prints a structured array: rows as tuples, then the fields' dtypes. */
function formatRecords(r: RecordArray): string {
  const n = r.size;
  const summarise = n > THRESHOLD;
  const idx = summarise ? [...Array(EDGE_ITEMS).keys(), -1, ...Array.from({ length: EDGE_ITEMS }, (_, k) => n - EDGE_ITEMS + k)] : [...Array(n).keys()];
  const rows = idx.map((i) => (i < 0 ? '...' : tupleText(r.row(i), r.fields)));
  const dtype = `dtype=[${r.fields.map(fieldEntry).join(', ')}]`;
  const body = r.shape.length === 0 ? rows[0]! : joinItems('[', rows, ']', '      ');
  return `array(${body},\n      ${dtype})`;
}

// ---------------------------------------------------------------------------------- sizes, shapes

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function shapeText(shape: readonly number[] | undefined): string {
  if (!shape) return '';
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}
