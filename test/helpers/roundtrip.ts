/**
 * Round-trip checking shared by the backends' tests: the fidelity rules (what a written value reads
 * back as, per backend), a comparison that checks dtype, shape and bytes of arrays, and fast-check
 * arbitraries over the whole value model.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { FLOAT16_AS_BITS, float16ToNumber, NDArray, ndarray, registerClass, UnregisteredObject } from '../../lib/index';
import { DType, DTYPES, dtypeInfo, dtypeOfTypedArray } from '../../lib/values/dtype';
import { classify } from '../../lib/values/model';

export class DataHolderClass {
  constructor(readonly data: Record<string, unknown>) {}
  toState(): Record<string, unknown> {
    return this.data;
  }
  static fromState(state: Record<string, unknown>): DataHolderClass {
    return new DataHolderClass(state);
  }
}
registerClass('DataHolderClass', DataHolderClass);

export type FileBackend = 'json' | 'npz' | 'hdf5';

const safeInt = (x: bigint): number | bigint => (Number.isSafeInteger(Number(x)) ? Number(x) : x);

function setOwn(out: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** What a written value reads back as from `backend`, by the README's fidelity table. */
export function expectedBack(v: unknown, backend: FileBackend): unknown {
  const c = classify(v);
  switch (c.kind) {
    case 'null':
      return null;
    case 'boolean':
    case 'number':
    case 'string':
      return c.value;
    case 'bigint':
      return safeInt(c.value);
    case 'typed': {
      if (backend === 'json') return Array.from(c.value as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? safeInt(x) : x));
      const data = c.value instanceof Uint8ClampedArray ? new Uint8Array(c.value) : c.value;
      return ndarray(data, [c.value.length], dtypeOfTypedArray(c.value));
    }
    case 'ndarray': {
      const a = c.value;
      if (backend === 'json') {
        const norm = (x: unknown): unknown => (Array.isArray(x) ? x.map(norm) : typeof x === 'bigint' ? safeInt(x) : x);
        return norm(a.toList());
      }
      if (a.shape.length === 0 && dtypeInfo(a.dtype).lanes === 1) {
        const x = a.data[0]!;
        if (a.dtype === 'bool') return x !== 0;
        // Without Float16Array the data holds binary16 bit patterns; the scalar read back is the number.
        if (a.dtype === 'float16' && FLOAT16_AS_BITS) return float16ToNumber(x as number);
        return typeof x === 'bigint' ? safeInt(x) : x;
      }
      return a;
    }
    case 'list':
      return c.value.map((x) => expectedBack(x, backend));
    case 'dict': {
      const out: Record<string, unknown> = {};
      for (const [k, x] of c.entries) setOwn(out, k, expectedBack(x, backend));
      return out;
    }
    case 'object':
      return { $class: c.className, state: expectedBack(c.state, backend) };
  }
}

function bytesOf(a: NDArray): Buffer {
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

/** Deep comparison with `expectedBack`'s conventions: NDArrays by dtype, shape and bytes; `{$class, state}` for objects. */
export function assertSame(actual: unknown, expected: unknown, where = 'value'): void {
  if (expected instanceof NDArray) {
    assert.ok(actual instanceof NDArray, `${where}: expected an NDArray, got ${Object.prototype.toString.call(actual)}`);
    assert.equal(actual.dtype, expected.dtype, `${where}: dtype`);
    assert.deepEqual([...actual.shape], [...expected.shape], `${where}: shape`);
    assert.ok(bytesOf(actual).equals(bytesOf(expected)), `${where}: data`);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected a list`);
    assert.equal(actual.length, expected.length, `${where}: length`);
    expected.forEach((e, i) => assertSame(actual[i], e, `${where}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    const e = expected as Record<string, unknown>;
    if ('$class' in e && Object.keys(e).length === 2) {
      assert.ok(actual instanceof DataHolderClass || actual instanceof UnregisteredObject, `${where}: expected an object`);
      const state = actual instanceof DataHolderClass ? actual.toState() : (actual as UnregisteredObject).state;
      assertSame(state, e.state, `${where}.state`);
      return;
    }
    assert.ok(actual !== null && typeof actual === 'object' && Object.getPrototypeOf(actual) === Object.prototype, `${where}: expected a plain object`);
    assert.deepEqual(Object.keys(actual as object), Object.keys(e), `${where}: keys`);
    for (const k of Object.keys(e)) assertSame((actual as Record<string, unknown>)[k], e[k], `${where}.${k}`);
    return;
  }
  assert.ok(Object.is(actual, expected), `${where}: ${String(actual)} (${typeof actual}) is not ${String(expected)} (${typeof expected})`);
}

function elementArb(dt: DType): fc.Arbitrary<number | bigint> {
  switch (dt) {
    case 'bool': return fc.integer({ min: 0, max: 1 });
    case 'int8': return fc.integer({ min: -128, max: 127 });
    case 'uint8': return fc.integer({ min: 0, max: 255 });
    case 'int16': return fc.integer({ min: -32768, max: 32767 });
    case 'uint16': return fc.integer({ min: 0, max: 65535 });
    case 'int32': return fc.integer();
    case 'uint32': return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'int64': return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'uint64': return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    // Every binary16 bit pattern (NaNs, subnormals, infinities) where the array holds bits.
    case 'float16': return FLOAT16_AS_BITS ? fc.integer({ min: 0, max: 65535 }) : fc.double();
    case 'float32':
    case 'complex64': return fc.float();
    default: return fc.double();
  }
}

export const ndarrayArb: fc.Arbitrary<NDArray> = fc.constantFrom(...DTYPES).chain((dt) => fc
  .array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 })
  .chain((shape) => {
    const count = shape.reduce((a, b) => a * b, 1) * dtypeInfo(dt).lanes;
    return fc.array(elementArb(dt), { minLength: count, maxLength: count }).map((values) => {
      const data = new (dtypeInfo(dt).ArrayType)(count);
      values.forEach((v, i) => { (data as unknown as (number | bigint)[])[i] = v; });
      return ndarray(data, shape, dt);
    });
  }));

export const typedArb = fc.oneof(
  fc.float64Array({ maxLength: 5 }), fc.float32Array({ maxLength: 5 }), fc.int32Array({ maxLength: 5 }),
  fc.uint8Array({ maxLength: 5 }), fc.int16Array({ maxLength: 5 }), fc.bigInt64Array({ maxLength: 5 }), fc.bigUint64Array({ maxLength: 5 }),
  fc.uint8ClampedArray({ maxLength: 5 }),
);

export interface ValueArbOptions {
  /** Which dict keys the backend can store. */
  name: (k: string) => boolean;
  /** Which strings the backend can store. */
  text: (s: string) => boolean;
}

/** Any storable value, nested a few levels: leaves, lists, dicts, Maps and registered objects. */
export function valueArb(opts: ValueArbOptions): fc.Arbitrary<unknown> {
  const nameArb = fc.string({ maxLength: 5 }).filter(opts.name);
  const leafArb = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.string({ unit: 'binary', maxLength: 6 }).filter(opts.text),
    typedArb,
    ndarrayArb,
  );
  return fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leafArb,
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(nameArb, tie('value'), { maxKeys: 3 }),
      fc.dictionary(nameArb, tie('value'), { maxKeys: 2 }).map((state) => new DataHolderClass(state)),
      fc.array(fc.tuple(nameArb, tie('value')), { maxLength: 2 }).map((entries) => new Map(entries)),
    ),
  })).value;
}
