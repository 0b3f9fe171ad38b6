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
import { nameProblem } from '../lib/values/names';
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
    // Names by the HDF5 name rule; strings are NUL-free UTF-8; a dict that looks like McUtils'
    // pseudo-pickle (pseudopickle_protocol + class) is left out.
    const values = valueArb({
      name: (k) => nameProblem(k, 'hdf5') === null && k !== 'pseudopickle_protocol' && k !== 'class',
      text: (s) => !s.includes('\0') && Buffer.from(s, 'utf8').toString('utf8') === s,
    });
    const file = path.join(dir, `p${n++}.h5`);
    fc.assert(fc.property(values, (value) => {
      // One file for the whole run: each value replaces the last (new data swapped in for the old).
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
