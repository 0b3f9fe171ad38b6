/**
 * The README's fidelity table, cell by cell: each value kind is written through each backend, the
 * file reopened by a fresh checkpointer, and what comes back compared with the table's entry.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  Checkpointer, DictCheckpointer, HDF5Checkpointer, JSONCheckpointer, NDArray, ndarray, NumPyCheckpointer, RecordArray, recordArray, registerClass,
} from '../lib/index';
import { tempDir } from './helpers/python';
import { FLOAT16_AS_BITS, Float16ArrayType } from '../lib/values/dtype';

class Point {
  constructor(readonly x: number, readonly y: number) {}
  toState(): unknown {
    return { x: this.x, y: this.y };
  }
  static fromState(s: { x: number; y: number }): Point {
    return new Point(s.x, s.y);
  }
}
registerClass('fidelity.Point', Point);

type Backend = 'json' | 'npz' | 'hdf5' | 'dict';
const SAME = Symbol('same');
type Cell = unknown | typeof SAME;

interface Row {
  kind: string;
  value: () => unknown;
  expect: Record<Backend, Cell>;
}

const f64 = (...v: number[]): Float64Array => Float64Array.from(v);
const rows: Row[] = [
  { kind: 'null', value: () => null, expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'boolean', value: () => true, expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'number (float, NaN, -0)', value: () => [1.5, NaN, -0], expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'number (integer)', value: () => 42, expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'bigint (safe range)', value: () => 5n, expect: { json: 5, npz: 5, hdf5: 5, dict: SAME } },
  { kind: 'bigint (beyond 2^53)', value: () => 2n ** 62n + 1n, expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'string', value: () => 'héllo ☃', expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  {
    kind: 'Float64Array', value: () => f64(1, 2, 3),
    expect: { json: [1, 2, 3], npz: ndarray(f64(1, 2, 3)), hdf5: ndarray(f64(1, 2, 3)), dict: SAME },
  },
  {
    kind: 'BigInt64Array', value: () => BigInt64Array.of(1n, -(2n ** 60n)),
    expect: { json: [1, -(2n ** 60n)], npz: ndarray(BigInt64Array.of(1n, -(2n ** 60n))), hdf5: ndarray(BigInt64Array.of(1n, -(2n ** 60n))), dict: SAME },
  },
  {
    kind: 'NDArray float32 [2, 2]', value: () => ndarray(Float32Array.of(1, 2, 3, 4), [2, 2]),
    expect: { json: [[1, 2], [3, 4]], npz: SAME, hdf5: SAME, dict: SAME },
  },
  {
    kind: 'NDArray uint64', value: () => ndarray(BigUint64Array.of(2n ** 64n - 1n, 3n)),
    expect: { json: [2n ** 64n - 1n, 3], npz: SAME, hdf5: SAME, dict: SAME },
  },
  {
    kind: 'NDArray bool', value: () => ndarray(Uint8Array.of(1, 0), [2], 'bool'),
    expect: { json: [true, false], npz: SAME, hdf5: SAME, dict: SAME },
  },
  {
    kind: 'NDArray complex128', value: () => ndarray(f64(1, 2, 3, -4), [2], 'complex128'),
    expect: { json: [[1, 2], [3, -4]], npz: SAME, hdf5: SAME, dict: SAME },
  },
  {
    kind: 'NDArray 0-d float64', value: () => ndarray(f64(2.5), []),
    expect: { json: 2.5, npz: 2.5, hdf5: 2.5, dict: SAME },
  },
  {
    kind: 'NDArray with 0 rows [0, 3]', value: () => ndarray(new Float64Array(0), [0, 3]),
    expect: { json: [], npz: SAME, hdf5: SAME, dict: SAME },
  },
  {
    kind: 'array of mixed values', value: () => [1, 'a', null, [2, 3]],
    expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME },
  },
  { kind: 'empty array', value: () => [], expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  {
    kind: 'plain object (nested)', value: () => ({ b: 1, a: { c: 'x' } }),
    expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME },
  },
  { kind: 'empty object', value: () => ({}), expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'Map', value: () => new Map([['k', 1]]), expect: { json: { k: 1 }, npz: { k: 1 }, hdf5: { k: 1 }, dict: SAME } },
  { kind: 'registered class instance', value: () => new Point(1, 2), expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  { kind: 'Buffer (Python bytes)', value: () => Buffer.from('ab\0c'), expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
  {
    kind: 'Buffer ending in NUL, empty Buffer', value: () => [Buffer.from('x\0'), Buffer.alloc(0)],
    // HDF5 stores empty bytes as McUtils does (|S1 b''), which reads back as text
    expect: { json: SAME, npz: SAME, hdf5: [Buffer.from('x\0'), ''], dict: SAME },
  },
  {
    kind: 'RecordArray', value: () => recordArray({ id: Int32Array.of(1, 2), x: ndarray(f64(1, 2, 3, 4), [2, 2]), name: ['a', 'bc'] }),
    expect: {
      json: [[1, [1, 2], 'a'], [2, [3, 4], 'bc']], npz: SAME, hdf5: SAME,
      dict: recordArray({ id: Int32Array.of(1, 2), x: ndarray(f64(1, 2, 3, 4), [2, 2]), name: ['a', 'bc'] }), // an equal table
    },
  },
  {
    kind: 'NDArray float16', value: () => ndarray(FLOAT16_AS_BITS ? Uint16Array.of(0x3800, 0xc000) : new (Float16ArrayType as Float64ArrayConstructor)([0.5, -2]), [2], 'float16'),
    expect: { json: [0.5, -2], npz: SAME, hdf5: SAME, dict: SAME },
  },
  { kind: 'string "" and with NUL inside', value: () => ['', 'a\0b'], expect: { json: SAME, npz: SAME, hdf5: SAME, dict: SAME } },
];

const dir = tempDir();
let n = 0;
function make(backend: Backend): () => Checkpointer {
  switch (backend) {
    case 'json': { const f = path.join(dir, `f${n++}.json`); return () => new JSONCheckpointer(f); }
    case 'npz': { const f = path.join(dir, `f${n++}.npz`); return () => new NumPyCheckpointer(f); }
    case 'hdf5': { const f = path.join(dir, `f${n++}.h5`); return () => new HDF5Checkpointer(f); }
    case 'dict': { const d = new Map<string, unknown>(); return () => new DictCheckpointer(d); }
  }
}

describe('fidelity table', () => {
  for (const backend of ['json', 'npz', 'hdf5', 'dict'] as const) {
    describe(backend, () => {
      for (const row of rows) {
        it(row.kind, async () => {
          const open = make(backend);
          const written = row.value();
          await open().set('v', written);
          const back = await open().get('v');
          const cell = row.expect[backend];
          const expected = cell === SAME ? row.value() : cell;
          if (backend === 'dict' && cell === SAME) assert.equal(back, written, 'DictCheckpointer keeps the object itself');
          else assert.deepStrictEqual(back, expected);
          if (expected instanceof NDArray) assert.ok(back instanceof NDArray);
          if (expected instanceof RecordArray) assert.deepStrictEqual((back as RecordArray).toList(), expected.toList());
        });
      }
    });
  }
});
