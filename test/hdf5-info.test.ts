/**
 * hdf5Info(): asking whether HDF5 works before using it. What it reports must be what happens:
 * a filter it calls readable reads a file h5py wrote with it, gzip writes when it says so, and
 * when the addon is unavailable its reason is the error the first .h5 call throws.
 */
import { test, describe } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, HDF5Checkpointer, hdf5Info, ndarray } from '../lib/index';
import type { HDF5FilterName } from '../lib/index';
import { loadNative } from '../lib/native';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';

const ROOT = path.resolve(__dirname, '..', '..');
const INDEX_JS = path.join(ROOT, 'dist-test', 'lib', 'index.js');
const tmp = tempDir('checkpointer-info-');
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

describe('hdf5Info', () => {
  test('reports the loaded libhdf5: version, build, filters; the object is frozen', () => {
    const info = hdf5Info();
    assert.equal(info.available, true);
    assert.equal(info.reason, null);
    assert.equal(info.version, loadNative().hdf5Version);
    // The build is what the binary links: a shared libhdf5 for "system", none for "bundled".
    const addon = require('node-gyp-build').path(ROOT) as string;
    const linked = /libhdf5/.test(spawnSync('ldd', [addon], { encoding: 'utf8' }).stdout ?? '');
    assert.equal(info.build, linked ? 'system' : 'bundled');
    if (info.build === 'bundled') {
      assert.equal(info.version, '1.14.5');
      assert.equal(info.plugins, false, 'the bundled HDF5 must not load plugins built for another HDF5');
    }
    assert.deepEqual(Object.keys(info.filters).sort(), ['fletcher32', 'gzip', 'lz4', 'nbit', 'scaleoffset', 'shuffle', 'szip', 'zstd']);
    for (const f of ['gzip', 'shuffle', 'fletcher32', 'scaleoffset', 'nbit', 'zstd', 'lz4'] as const) {
      assert.deepEqual(info.filters[f], { read: true, write: true }, `${f}: built into every HDF5 we build against`);
    }
    assert.ok(Object.isFrozen(info.filters) && Object.isFrozen(info.filters.gzip));
  });

  test('gzip writes when filters.gzip.write says so, and h5py reads what it wrote', async () => {
    const file = path.join(tmp, 'gzip.h5');
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 4], compression: 'gzip', shuffle: true });
    await ds.append(ndarray(Float64Array.from({ length: 400 }, (_, i) => i % 7), [100, 4]));
    await ds.close();
    const back = h5py<{ filters: string[]; sum: number }>(`
d = h5py.File(sys.argv[1], 'r')['x']
out({'filters': [k for k in ('gzip', 'shuffle') if (d.compression == k or (k == 'shuffle' and d.shuffle))], 'sum': float(d[()].sum())})`, file);
    assert.deepEqual(back.filters, ['gzip', 'shuffle']);
    assert.equal(back.sum, Array.from({ length: 400 }, (_, i) => i % 7).reduce((a, b) => a + b, 0));
  });

  test('every filter it calls readable reads a dataset h5py wrote with it; the others fail cleanly', async () => {
    const info = hdf5Info();
    // What h5py itself can write here (Debian's libhdf5 has szip through libaec; nbit has no h5py knob).
    const written = h5py<string[]>(`
f = h5py.File(sys.argv[1], 'w')
a = (np.arange(600, dtype='<i4') % 97).reshape(100, 6)
done = []
for name, kw in [('gzip', dict(compression='gzip')), ('szip', dict(compression='szip')),
                 ('shuffle', dict(shuffle=True)), ('fletcher32', dict(fletcher32=True)),
                 ('scaleoffset', dict(scaleoffset=0))]:
    try:
        f.create_dataset(name, data=a, chunks=(10, 6), **kw)
        done.append(name)
    except Exception:
        pass
f.close()
out(done)`, path.join(tmp, 'filters.h5'));
    assert.ok(written.includes('gzip') && written.includes('fletcher32'), `h5py wrote ${written.join(', ')}`);
    const expected = Array.from({ length: 600 }, (_, i) => i % 97);
    const chk = new HDF5Checkpointer(path.join(tmp, 'filters.h5'));
    for (const name of written as HDF5FilterName[]) {
      if (info.filters[name].read) {
        const v = (await chk.get(name)) as { data: Int32Array; shape: number[] };
        assert.deepEqual([...v.shape], [100, 6], name);
        assert.deepEqual(Array.from(v.data), expected, name);
      } else {
        await assert.rejects(chk.get(name), (e: unknown) => e instanceof CheckpointerError, name);
      }
    }
  });

  test('unavailable: available false, no throw, and its reason is the error a .h5 call throws; JSON still works', () => {
    const script = path.join(tmp, 'unavailable.js');
    fs.writeFileSync(script, `
      const c = require(${JSON.stringify(INDEX_JS)});
      const info = c.hdf5Info();
      (async () => {
        let error = null;
        try { await new c.HDF5Checkpointer(process.argv[2] + '/x.h5').set('a', 1); } catch (e) { error = { code: e.code, message: e.message }; }
        const j = new c.JSONCheckpointer(process.argv[2] + '/x.json');
        await j.set('a', [1, 2]);
        console.log(JSON.stringify({ info, error, json: await j.get('a') }));
      })();`);
    const r = spawnSync(process.execPath, [script, tmp], { encoding: 'utf8', env: { ...process.env, CHECKPOINTER_NO_NATIVE: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.info.available, false);
    assert.equal(out.info.version, null);
    assert.equal(out.info.build, null);
    assert.equal(out.info.plugins, false);
    assert.ok(Object.values(out.info.filters).every((f: any) => f.read === false && f.write === false));
    assert.equal(out.error.code, 'ERR_HDF5_UNAVAILABLE');
    assert.equal(out.info.reason, out.error.message);
    assert.deepEqual(out.json, [1, 2]);
  });
});
