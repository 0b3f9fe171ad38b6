/**
 * Files we write open in the other readers users have: h5wasm (HDF5 1.14 compiled to wasm, the
 * reader of browser tools such as myHDF5) and h5py 3.7 on Debian's HDF5 1.10.8, whichever libhdf5
 * the addon carries. The bundled 1.14.5 must write no structure newer than 1.10's formats, or 1.10
 * refuses the file.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HDF5Checkpointer, hdf5Info, ndarray } from '../lib/index';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';

const ROOT = path.resolve(__dirname, '..', '..');
const H5WASM = pathToFileURL(path.join(ROOT, 'node_modules', 'h5wasm', 'dist', 'node', 'hdf5_hl.js')).href;
const tmp = tempDir('checkpointer-h5wasm-');
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every dataset of the file as "path dtype shape values", values as strings (BigInts too). */
function h5wasmListing(file: string): string[] {
  const script = path.join(tmp, 'list.mjs');
  fs.writeFileSync(script, `
    import h5wasm from ${JSON.stringify(H5WASM)};
    await h5wasm.ready;
    const f = new h5wasm.File(process.argv[2], 'r');
    const lines = [];
    const str = (v) => ArrayBuffer.isView(v) ? '[' + Array.from(v, String).join(',') + ']' : String(v);
    const walk = (g, prefix) => {
      for (const k of g.keys()) {
        const o = g.get(k);
        if (o instanceof h5wasm.Group) walk(o, prefix + k + '/');
        else lines.push([prefix + k, o.dtype, JSON.stringify(o.shape), str(o.value)].join(' '));
      }
    };
    walk(f, '/');
    f.close();
    console.log(JSON.stringify(lines));`);
  const r = spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('a checkpoint and a grown gzip dataset we wrote open in h5wasm and in h5py on HDF5 1.10.8', async () => {
  const file = path.join(tmp, 'mixed.h5');
  const chk = new HDF5Checkpointer(file);
  await chk.with(async (c) => {
    await c.set('step', 42);
    await c.set('energy', -1.5);
    await c.set('done', true);
    await c.set('label', 'run-7');
    await c.set('note', 'ünïcode');
    await c.set('none', null);
    await c.set('positions', ndarray(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]));
    await c.set('seeds', ndarray(BigUint64Array.of(1n, 2n ** 63n), [2]));
    await c.set('params', { alpha: 0.1, tags: [1, 'two'] });
    await c.set('step', 43); // rewritten: the old link is swapped out, its space reused
  });
  const ds = await chk.dataset('frames', { dtype: 'float64', shape: [0, 4], compression: 'gzip', shuffle: true });
  for (let i = 0; i < 5; i++) await ds.append(ndarray(Float64Array.from({ length: 8 }, (_, j) => i * 8 + j), [2, 4]));
  await ds.close();
  await chk.close();

  const frames = `[${Array.from({ length: 40 }, (_, i) => i).join(',')}]`;
  assert.deepEqual(h5wasmListing(file).sort(), [
    '/done unknown [] 1', // h5py's bool enum; h5wasm shows enums by their integer
    '/energy <d [] -1.5',
    `/frames <d [10,4] ${frames}`,
    '/label A5 [] run-7', // ASCII as McUtils stores it: fixed-length S
    '/none <i null null',
    '/note S [] ünïcode', // other text as h5py stores str: variable-length UTF-8
    '/params/alpha <d [] 0.1',
    '/params/tags/_list_item_0 <q [] 1',
    '/params/tags/_list_item_1 A3 [] two',
    '/params/tags/_list_numitems <q [] 2',
    '/positions <f [2,3] [1,2,3,4,5,6]',
    '/seeds <Q [2] [1,9223372036854775808]',
    '/step <q [] 43',
  ]);

  // HDF5 1.10.8 refuses any object header, layout or superblock version newer than it knows.
  const py = h5py<{ hdf5: string; superblock: number; items: Record<string, unknown> }>(`
f = h5py.File(sys.argv[1], 'r')
items = {}
f.visititems(lambda n, o: items.__setitem__(n, jsonable(o[()]) if isinstance(o, h5py.Dataset) else 'group'))
out({'hdf5': h5py.version.hdf5_version, 'superblock': open(sys.argv[1], 'rb').read(9)[8], 'items': items})`, file);
  assert.equal(py.hdf5, '1.10.8');
  assert.ok(py.superblock <= 3, `superblock version ${py.superblock}: 1.10 knows 0–3`);
  assert.deepEqual(py.items.frames, Array.from({ length: 10 }, (_, r) => [0, 1, 2, 3].map((c) => r * 4 + c)));
  assert.equal(py.items.step, 43);
  assert.deepEqual(py.items.positions, [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(py.items.note, { bytes: [...Buffer.from('ünïcode')] }); // h5py 3 returns vlen str as bytes
  assert.equal(Object.keys(py.items).length, 15, JSON.stringify(Object.keys(py.items))); // 13 datasets, 2 groups
  assert.ok(hdf5Info().available);
});
