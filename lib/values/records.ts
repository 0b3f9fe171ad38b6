/**
 * Records and enums: the value kinds for HDF5 compound datatypes and numpy structured dtypes
 * (PyTables tables, numpy record arrays), and for HDF5 enums other than h5py's bool.
 *
 * A RecordArray is a table held by column: one column per field, each shaped
 * [...recordShape, ...fieldShape] (a field may be an array field, `('pos', '<f8', (3,))`):
 *
 *   number / enum field → NDArray (EnumArray for enums)
 *   string field        → string[] (flat, C order over the column's shape)
 *   bytes field         → Uint8Array[] (flat, C order; numpy `V<n>`, HDF5 opaque)
 *   record field        → RecordArray (nested compound)
 *
 * The field types are what the file held, so a table read from a file writes back as the same
 * compound type / structured dtype (in a packed layout: the offsets of the source are not kept).
 * Columns are the data; rows are made on demand (`row(i)`, `toList()`).
 */
import { DType, dtypeInfo, isTypedArray, shapeSize, TypedArray } from './dtype';
import { ndarray, NDArray, nest } from './ndarray';

export type IntDType = 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64';

export type FieldType =
  | { readonly kind: 'number'; readonly dtype: DType }
  | { readonly kind: 'enum'; readonly dtype: IntDType; readonly members: Readonly<Record<string, number | bigint>> }
  /**
   * Text of a fixed size: `length` bytes (ascii: numpy `S`, HDF5 fixed ASCII; utf8: HDF5 fixed
   * UTF-8) or `length` characters (utf32: numpy `U`); 0 for an HDF5 variable-length string.
   */
  | { readonly kind: 'string'; readonly length: number; readonly encoding: 'ascii' | 'utf8' | 'utf32'; readonly variable?: boolean }
  | { readonly kind: 'bytes'; readonly length: number }
  | { readonly kind: 'record'; readonly fields: readonly RecordField[] };

export interface RecordField {
  readonly name: string;
  readonly type: FieldType;
  /** The field's own axes (an array field); [] for a scalar field. */
  readonly shape: readonly number[];
}

export type Column = NDArray | RecordArray | readonly string[] | readonly Uint8Array[];

const INT_DTYPES: readonly string[] = ['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64'];

/**
 * An integer array whose values name the members of an enum (HDF5 enum types): the values are the
 * integers, `members` the mapping. Written back to HDF5 as the same enum; elsewhere as its integers.
 */
export class EnumArray<D extends IntDType = IntDType> extends NDArray<D> {
  readonly members: Readonly<Record<string, number | bigint>>;

  constructor(data: TypedArray, shape: readonly number[], dtype: D, members: Readonly<Record<string, number | bigint>>) {
    super(data, shape, dtype);
    if (!INT_DTYPES.includes(dtype)) throw new TypeError(`an enum is stored in an integer dtype, got ${dtype}`);
    this.members = Object.freeze({ ...members });
  }

  /** The member name of a value, or undefined when no member has it. */
  nameOf(value: number | bigint): string | undefined {
    for (const [name, v] of Object.entries(this.members)) if (v == value) return name; // eslint-disable-line eqeqeq
    return undefined;
  }

  /** Nested arrays of member names (the value itself where no member has it). */
  toNames(): unknown {
    const map = (x: unknown): unknown => (Array.isArray(x) ? x.map(map) : this.nameOf(x as number | bigint) ?? x);
    return map(this.toList());
  }

  override get [Symbol.toStringTag](): string {
    return 'EnumArray';
  }
}

function columnLength(c: Column): number {
  if (c instanceof NDArray) return c.size;
  if (c instanceof RecordArray) return c.size;
  return c.length;
}

/** One element (flat index `i` of the column's element blocks of `block` items) of a column. */
function columnItem(c: Column, i: number, field: RecordField): unknown {
  const block = shapeSize(field.shape);
  if (c instanceof RecordArray) {
    if (field.shape.length === 0) return c.row(i);
    return c.slice(i * block, (i + 1) * block, field.shape).toList();
  }
  if (c instanceof NDArray) {
    const lanes = dtypeInfo(c.dtype).lanes;
    const part = new NDArray(c.data.subarray(i * block * lanes, (i + 1) * block * lanes), field.shape, c.dtype);
    return part.toList();
  }
  if (field.shape.length === 0) return c[i];
  return nest(c.slice(i * block, (i + 1) * block) as unknown[], field.shape);
}


/** The field type a column stands for, when a RecordArray is made from columns alone. */
function inferField(name: string, c: Column, recordShape: readonly number[]): RecordField {
  if (c instanceof EnumArray) return { name, type: { kind: 'enum', dtype: c.dtype, members: c.members }, shape: c.shape.slice(recordShape.length) };
  if (c instanceof NDArray) return { name, type: { kind: 'number', dtype: c.dtype }, shape: c.shape.slice(recordShape.length) };
  if (c instanceof RecordArray) return { name, type: { kind: 'record', fields: c.fields }, shape: c.shape.slice(recordShape.length) };
  if (c.every((x) => typeof x === 'string')) {
    let longest = 1; // numpy's smallest string dtype is S1/U1
    for (const s of c as readonly string[]) longest = Math.max(longest, Buffer.byteLength(s, 'utf8'));
    const ascii = (c as readonly string[]).every((s) => /^[\x00-\x7f]*$/.test(s));
    return { name, type: { kind: 'string', length: longest, encoding: ascii ? 'ascii' : 'utf8' }, shape: [] };
  }
  if (c.every((x) => x instanceof Uint8Array)) {
    const lengths = new Set((c as readonly Uint8Array[]).map((b) => b.length));
    if (lengths.size > 1) throw new TypeError(`record field ${JSON.stringify(name)}: bytes of one field must all have the same length`);
    return { name, type: { kind: 'bytes', length: c.length ? (c[0] as Uint8Array).length : 1 }, shape: [] };
  }
  throw new TypeError(`record field ${JSON.stringify(name)}: a column is an NDArray, a TypedArray, a RecordArray, or an array of strings or of Uint8Arrays`);
}

export class RecordArray {
  /** The record axes (a table of n rows: [n]). */
  readonly shape: readonly number[];
  readonly fields: readonly RecordField[];
  readonly #columns: ReadonlyMap<string, Column>;

  /**
   * `columns` by field name, in field order; `fields` gives their types (inferred from the columns
   * when omitted: TypedArray/NDArray → its dtype, strings → fixed-length text as long as the
   * longest, Uint8Arrays → bytes). `shape` defaults to [rows] from the first column.
   */
  constructor(
    columns: Readonly<Record<string, Column | TypedArray>> | ReadonlyMap<string, Column | TypedArray>,
    options: { shape?: readonly number[]; fields?: readonly RecordField[] } = {},
  ) {
    const entries = columns instanceof Map ? [...columns.entries()] : Object.entries(columns);
    const normalized = entries.map(([name, c]): [string, Column] => [name, isTypedArray(c) ? ndarray(c) : c as Column]);
    const first = normalized[0]?.[1];
    const shape = options.shape ?? [first === undefined ? 0 : first instanceof NDArray || first instanceof RecordArray ? first.shape[0] ?? 1 : first.length];
    for (const d of shape) if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid record shape [${shape.join(', ')}]`);
    const fields = options.fields ?? normalized.map(([name, c]) => inferField(name, c, shape));
    if (fields.length !== normalized.length) throw new TypeError(`a RecordArray of ${fields.length} fields was given ${normalized.length} columns`);
    const n = shapeSize(shape);
    const names = new Set<string>();
    fields.forEach((f, i) => {
      if (typeof f.name !== 'string' || f.name.length === 0) throw new TypeError('record field names are non-empty strings');
      if (names.has(f.name)) throw new TypeError(`record field ${JSON.stringify(f.name)} appears twice`);
      names.add(f.name);
      const [name, c] = normalized[i]!;
      if (name !== f.name) throw new TypeError(`column ${JSON.stringify(name)} does not match field ${JSON.stringify(f.name)}`);
      const expected = n * shapeSize(f.shape);
      if (columnLength(c) !== expected) {
        throw new RangeError(`record field ${JSON.stringify(f.name)} needs ${expected} elements for shape [${[...shape, ...f.shape].join(', ')}], got ${columnLength(c)}`);
      }
    });
    this.shape = Object.freeze([...shape]);
    this.fields = Object.freeze(fields.map((f) => Object.freeze({ ...f, shape: Object.freeze([...f.shape]) })));
    this.#columns = new Map(normalized);
  }

  /** Field names, in order. */
  get names(): string[] {
    return this.fields.map((f) => f.name);
  }

  /** Number of records (a 0-d record counts once). */
  get size(): number {
    return shapeSize(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Rows along the first axis (1 for a 0-d record). */
  get length(): number {
    return this.shape.length === 0 ? 1 : this.shape[0]!;
  }

  column(name: string): Column {
    const c = this.#columns.get(name);
    if (c === undefined) throw new RangeError(`no field ${JSON.stringify(name)}; fields: ${this.names.join(', ')}`);
    return c;
  }

  /** Columns in field order. */
  columns(): [string, Column][] {
    return [...this.#columns.entries()];
  }

  /** Record `i` (flat C-order index over `shape`) as { field: value }, values as toList() gives them. */
  row(i: number): Record<string, unknown> {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.size) throw new RangeError(`record ${i} is out of range for ${this.size} records`);
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      Object.defineProperty(out, f.name, { value: columnItem(this.#columns.get(f.name)!, i, f), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  /** Records `start` to `end` (flat indices) as a RecordArray of `shape` (default [end - start]). */
  slice(start: number, end: number, shape: readonly number[] = [end - start]): RecordArray {
    const columns = new Map<string, Column>();
    for (const f of this.fields) {
      const c = this.#columns.get(f.name)!;
      const block = shapeSize(f.shape);
      const [a, b] = [start * block, end * block];
      if (c instanceof RecordArray) columns.set(f.name, c.slice(a, b, [...shape, ...f.shape]));
      else if (c instanceof NDArray) {
        const lanes = dtypeInfo(c.dtype).lanes;
        const data = c.data.subarray(a * lanes, b * lanes);
        const sub = [...shape, ...f.shape];
        columns.set(f.name, c instanceof EnumArray ? new EnumArray(data, sub, c.dtype, c.members) : new NDArray(data, sub, c.dtype));
      } else columns.set(f.name, c.slice(a, b));
    }
    return new RecordArray(columns, { shape, fields: this.fields });
  }

  /** Nested arrays of row objects (a 0-d record gives its one row), like numpy's tolist() with names. */
  toList(): unknown {
    const rows = Array.from({ length: this.size }, (_, i) => this.row(i));
    return this.shape.length === 0 ? rows[0] : nest(rows, this.shape);
  }

  get [Symbol.toStringTag](): string {
    return 'RecordArray';
  }
}

/** Shorthand: `recordArray({ x: Float64Array.of(1, 2), name: ['a', 'b'] })`. */
export function recordArray(
  columns: Readonly<Record<string, Column | TypedArray>> | ReadonlyMap<string, Column | TypedArray>,
  options?: { shape?: readonly number[]; fields?: readonly RecordField[] },
): RecordArray {
  return new RecordArray(columns, options);
}
