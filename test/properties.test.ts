/**
 * Property-based round trips (fast-check) over the value model for the JSON, HDF5 and Dict
 * backends (the npz backend's are in numpy-backend.test.ts): any storable value, written and read
 * back by a fresh checkpointer, comes back as the README's fidelity table says.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { DictCheckpointer, HDF5Checkpointer, JSONCheckpointer } from '../lib/index';
import { assertSame, expectedBack, valueArb } from './helpers/roundtrip';
import { tempDir } from './helpers/python';

const dir = tempDir('props-');
let n = 0;

describe('property-based round trips', () => {
  it('JSON: any storable value comes back by the fidelity rules', () => {
    const values = valueArb({ name: () => true, text: () => true });
    fc.assert(fc.property(values, (value) => {
      const file = path.join(dir, `p${n++}.json`);
      new JSONCheckpointer(file, { durable: false }).setSync('v', value);
      assertSame(new JSONCheckpointer(file).getSync('v'), expectedBack(value, 'json'));
      fs.rmSync(file);
    }), { numRuns: 200 });
  });

  it('HDF5: any storable value comes back by the fidelity rules, also when rewritten', () => {
    // HDF5 link names cannot be empty, contain '/' or be '.'; strings are NUL-free UTF-8; names
    // McUtils' layout reserves for lists and pseudo-pickles are left out.
    const reserved = new Set(['.', '_list_numitems', 'pseudopickle_protocol', 'class']);
    const values = valueArb({
      name: (k) => k.length > 0 && !k.includes('/') && !k.includes('\0') && !reserved.has(k),
      text: (s) => !s.includes('\0') && Buffer.from(s, 'utf8').toString('utf8') === s,
    });
    const file = path.join(dir, `p${n++}.h5`);
    fc.assert(fc.property(values, (value) => {
      // One file for the whole run: each value replaces the last, exercising in-place rewrites.
      new HDF5Checkpointer(file).setSync('v', value);
      assertSame(new HDF5Checkpointer(file).getSync('v'), expectedBack(value, 'hdf5'));
    }), { numRuns: 200 });
  });

  it('Dict: the stored object itself comes back', () => {
    fc.assert(fc.property(valueArb({ name: () => true, text: () => true }), (value) => {
      const chk = new DictCheckpointer(new Map());
      chk.setSync('v', value);
      assert.equal(chk.getSync('v'), value);
    }), { numRuns: 100 });
  });
});
