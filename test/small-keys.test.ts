/**
 * Many small keys (issue 11): `.npz` files of thousands of members written through the staging
 * buffer and read through the read window, stored and deflated (`compression: 'deflate'`), are what
 * numpy and zipfile read, and numpy's own (savez, savez_compressed) read back here; adding a key to
 * a many-key file survives SIGKILL at any moment (the file is the old or the new checkpoint, for
 * zipfile and for us); JSON's fast path for lists of numbers keeps Python's float tokens. HDF5:
 * 11,000 keys written one set at a time (new top-level keys are created in one call, in place in
 * the shadow; small fixed-size values compact) are what h5py reads, key by key and value by value.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer, HDF5Checkpointer, hdf5Info, NumPyCheckpointer, ndarray, NDArray } from '../lib/index';
import { parseJson, stringifyJson } from '../lib/formats/json-text';
import { h5py } from './helpers/h5py';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('small-keys-');
let n = 0;
const fresh = (ext = '.npz'): string => path.join(dir, `f${n++}${ext}`);
const entry = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));

/** 2,000 scalars, 200 [16, 16] float64 arrays, a few strings and nested dicts. */
function manyValues(): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i < 2000; i++) out.push([`s${i}`, i % 3 === 0 ? i : i + 0.25]);
  for (let i = 0; i < 200; i++) {
    const a = new Float64Array(256);
    for (let j = 0; j < 256; j++) a[j] = Math.sin(i * 256 + j);
    out.push([`a${i}`, ndarray(a, [16, 16])]);
  }
  for (let i = 0; i < 50; i++) out.push([`t${i}`, `text ${i} ✓`]);
  out.push(['nested', { x: 1, y: { z: Int32Array.of(1, 2, 3) } }]);
  return out;
}

/** Python: every member's name and a digest of its value, as numpy.load reads them. */
const PY_DIGEST = `
import sys, json, zipfile, numpy as np
f = sys.argv[1]
assert zipfile.ZipFile(f).testzip() is None
methods = sorted({i.compress_type for i in zipfile.ZipFile(f).infolist()})
z = np.load(f, allow_pickle=False)
out = {}
for k in z.files:
    a = z[k]
    out[k] = float(a.astype('f8').sum()) if a.dtype.kind in 'fiub' else str(a)
print(json.dumps({'methods': methods, 'values': out}))
`;

function digestOf(values: [string, unknown][]): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  const put = (name: string, v: unknown): void => {
    if (typeof v === 'number') out[name] = v;
    else if (typeof v === 'string') out[name] = v;
    else if (v instanceof NDArray) out[name] = Array.from(v.data as Float64Array).reduce((s, x) => s + Number(x), 0);
    else if (ArrayBuffer.isView(v)) out[name] = Array.from(v as Int32Array).reduce((s, x) => s + x, 0);
    else for (const [k, x] of Object.entries(v as object)) put(`${name}::>|<::${k}`, x);
  };
  for (const [k, v] of values) put(k, v);
  return out;
}

function assertDigestsEqual(got: Record<string, number | string>, want: Record<string, number | string>): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const k of Object.keys(want)) {
    const a = got[k]!;
    const b = want[k]!;
    if (typeof b === 'number') assert.ok(Math.abs((a as number) - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${k}: ${a} vs ${b}`);
    else assert.equal(a, b, k);
  }
}

describe('many small keys in .npz', () => {
  for (const compression of ['none', 'deflate'] as const) {
    for (const mode of ['async', 'sync'] as const) {
      it(`${mode} writes of 2,251 keys (${compression}) are what numpy.load reads; they read back here`, async () => {
        const file = fresh();
        const values = manyValues();
        const chk = new NumPyCheckpointer(file, { compression, durable: false });
        if (mode === 'async') await chk.with(async (c) => { for (const [k, v] of values) await c.set(k, v); });
        else chk.withSync((c) => { for (const [k, v] of values) c.setSync(k, v); });
        const py = runPython<{ methods: number[]; values: Record<string, number | string> }>(PY_DIGEST, file);
        assert.deepEqual(py.methods, compression === 'deflate' ? [8] : [0]);
        const want = digestOf(values);
        assertDigestsEqual(py.values, want);
        const back: [string, unknown][] = [];
        if (mode === 'async') await new NumPyCheckpointer(file).with(async (c) => { for (const k of await c.keys()) back.push([k, await c.get(k)]); });
        else new NumPyCheckpointer(file).withSync((c) => { for (const k of c.keysSync()) back.push([k, c.getSync(k)]); });
        assertDigestsEqual(digestOf(back), want);
      });
    }
  }

  it("reads numpy.savez and numpy.savez_compressed files of 3,000 members, every key", async () => {
    for (const fn of ['savez', 'savez_compressed']) {
      const file = fresh();
      runPython(`
import sys, numpy as np
vals = {}
for i in range(2500): vals['s%d' % i] = np.array(i * 0.5)
for i in range(500): vals['a%d' % i] = np.arange(i, i + 64, dtype='<i4').reshape(8, 8)
np.${fn}(sys.argv[1], **vals)
print('null')`, file);
      await Checkpointer.fromFile(file).with(async (c) => {
        const keys = await c.keys();
        assert.equal(keys.length, 3000);
        for (let i = 0; i < 2500; i += 97) assert.equal(await c.get(`s${i}`), i * 0.5);
        for (let i = 0; i < 500; i += 31) {
          const a = await c.get(`a${i}`) as NDArray;
          assert.deepEqual(a.shape, [8, 8]);
          assert.equal(a.dtype, 'int32');
          assert.equal((a.data as Int32Array)[63], i + 63);
        }
      });
      // The sync path reads through the same window.
      const c = Checkpointer.fromFile(file);
      c.withSync(() => {
        for (const k of c.keysSync()) c.getSync(k);
      });
    }
  });

  it('a copied member stays as it was (stored or deflated) when a compressed checkpoint adds a key', async () => {
    const file = fresh();
    await new NumPyCheckpointer(file, { durable: false }).with(async (c) => { await c.set('plain', Float64Array.of(1, 2, 3)); });
    await new NumPyCheckpointer(file, { compression: 'deflate', compressionLevel: 9, durable: false }).with(async (c) => {
      await c.set('packed', new Float64Array(100_000)); // > 64 KiB: deflated on the pool
    });
    const methods = runPython<Record<string, number>>(`
import sys, json, zipfile
print(json.dumps({i.filename: i.compress_type for i in zipfile.ZipFile(sys.argv[1]).infolist()}))`, file);
    assert.deepEqual(methods, { 'plain.npy': 0, 'packed.npy': 8 });
    const back = await Checkpointer.fromFile(file).get('packed') as NDArray;
    assert.equal(back.data.length, 100_000);
    assert.ok(fs.statSync(file).size < 10_000);
  });

  it('refuses bad compression options with TypeError / RangeError', () => {
    assert.throws(() => new NumPyCheckpointer(fresh(), { compression: 'gzip' as 'deflate' }), TypeError);
    assert.throws(() => new NumPyCheckpointer(fresh(), { compression: 'deflate', compressionLevel: 10 }), RangeError);
    assert.throws(() => new NumPyCheckpointer(fresh(), { compressionLevel: 3 }), TypeError);
    assert.throws(() => new NumPyCheckpointer(fresh('.npy'), { compression: 'deflate' }), TypeError);
  });

  it('a damaged small member is ERR_CHECKPOINT_CORRUPT, naming it; other keys still read', async () => {
    const file = fresh();
    new NumPyCheckpointer(file, { durable: false }).withSync((c) => { for (let i = 0; i < 100; i++) c.setSync(`k${i}`, i); });
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from('k50.npy')) + 'k50.npy'.length + 20 + 120; // inside k50's data
    bytes[at] ^= 0xff;
    fs.writeFileSync(file, bytes);
    await Checkpointer.fromFile(file).with(async (c) => {
      await assert.rejects(c.get('k50'), (err: { code?: string; message: string }) => err.code === 'ERR_CHECKPOINT_CORRUPT' && err.message.includes('k50.npy'));
      assert.equal(await c.get('k51'), 51);
      assert.equal(await c.get('k49'), 49);
    });
  });
});

describe('adding a key to a many-key .npz survives SIGKILL', () => {
  it('killed at random moments of the commit: the file is the old or the new checkpoint, for zipfile and for us', async () => {
    const file = fresh();
    new NumPyCheckpointer(file, { durable: false }).withSync((c) => { for (let i = 0; i < 20_000; i++) c.setSync(`k${i}`, i); });
    const kills = Number(process.env.CHECKPOINTER_KILLS ?? 6);
    let sawNew = 0;
    let sawOld = 0;
    for (let round = 0; round < kills; round++) {
      const script = `
const fs = require('fs');
const { Checkpointer } = require(${entry});
const c = Checkpointer.fromFile(${JSON.stringify(file)}, { compression: ${round % 2 ? "'deflate'" : "'none'"} });
fs.writeSync(1, 'ready\\n');
(async () => { for (let r = 0; ; r++) await c.with(async (c) => { await c.set('extra', r); await c.set('big' + (r % 3), new Float64Array(50000).fill(r)); }); })();`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          if (!out.includes('ready') && (out + d).includes('ready')) setTimeout(() => child.kill('SIGKILL'), 30 + Math.floor(Math.random() * 400));
          out += d;
        });
        child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`not killed: ${signal}`))));
      });
      const py = runPython<{ n: number; k7: number; extra: number | null }>(`
import sys, json, zipfile, numpy as np
assert zipfile.ZipFile(sys.argv[1]).testzip() is None
z = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({'n': len(z.files), 'k7': int(z['k7']), 'extra': int(z['extra']) if 'extra' in z.files else None}))`, file);
      assert.equal(py.k7, 7);
      const keys = await Checkpointer.fromFile(file).keys();
      assert.equal(keys.length, py.n);
      if (py.extra === null) sawOld++;
      else sawNew++;
      const c = Checkpointer.fromFile(file);
      c.withSync(() => { for (const k of c.keysSync()) c.getSync(k); });
    }
    assert.equal(sawOld + sawNew, kills);
  });
});

describe('JSON: the fast path for lists of numbers keeps what the general parser keeps', () => {
  it('float tokens, integer tokens, mixes, bigints, NaN/Infinity and layout round-trip as Python wrote them', () => {
    for (const text of [
      '{"a": [1.0, 2.0, 3.5], "b": [1, 2, 3], "c": [1, 2.0], "d": [0.5, 3], "e": [9007199254740993, 1]}',
      '{"f": [NaN, 1.0], "g": [-Infinity, 2], "h": [1e+300, 2.5], "i": [-0.0, 1.5], "j": [[1.0, 2.0], [3.0, 4.5]], "k": []}',
      '{"l": [1.5e-07, 0.25], "m": [12345678901234567890], "n": [-3, -0, 7], "o": [1E5, 2.5]}',
    ]) {
      // Tokens are kept by kind, not by spelling (as before the fast path): 1E5 is written 100000.0,
      // 1.5e-07 as JS prints it, the integer token -0 (which Python never writes) as -0.0.
      assert.equal(stringifyJson(parseJson(text)), text.replace('1E5', '100000.0').replace('1.5e-07', '1.5e-7').replace(' -0, ', ' -0.0, '), text);
    }
    // Layout other than ours parses to the same values.
    const spaced = parseJson('{"a": [\n  1.0,\n  2.0\n], "b": [ 1 , 2 ]}');
    assert.equal(stringifyJson(spaced), '{"a": [1.0, 2.0], "b": [1, 2]}');
  });

  it('malformed numbers in a list are still reported with their position', () => {
    for (const bad of ['{"a": [01, 2]}', '{"a": [1., 2]}', '{"a": [1, 2,]}', '{"a": [1 2]}', '{"a": [--1]}']) {
      assert.throws(() => parseJson(bad), /position/, bad);
    }
  });

  it("Python's json reads what a rewrite keeps, float tokens included", () => {
    const file = fresh('.json');
    runPython(`
import sys, json
d = {'x%d' % i: [float(i), 1.5, 2.0] for i in range(500)}
d['ints'] = list(range(20))
json.dump(d, open(sys.argv[1], 'w'))
print('null')`, file);
    Checkpointer.fromFile(file, { durable: false }).withSync((c) => c.setSync('added', 1));
    const types = runPython<string[]>(`
import sys, json
d = json.load(open(sys.argv[1]))
print(json.dumps(sorted({type(v).__name__ for k in d if k.startswith('x') for v in d[k]} | {'ints:' + type(d['ints'][3]).__name__})))`, file);
    assert.deepEqual(types, ['float', 'ints:int']);
  });
});

/** Python: every key of an HDF5 file with a digest of its value and its storage layout, as h5py reads them. */
const PY_H5_DIGEST = `
import h5py
f = h5py.File(sys.argv[1], 'r')
values, layouts = {}, {}
def visit(name, obj):
    if not isinstance(obj, h5py.Dataset): return
    a = obj[()]
    key = name.replace('/', '::>|<::')
    if isinstance(a, bytes): values[key] = a.decode()
    elif isinstance(a, str): values[key] = a
    elif obj.dtype.kind == 'O': values[key] = a.decode() if isinstance(a, bytes) else str(a)
    else: values[key] = float(np.asarray(a).astype('f8').sum())
    lay = obj.id.get_create_plist().get_layout()
    layouts[key] = {h5py.h5d.COMPACT: 'compact', h5py.h5d.CONTIGUOUS: 'contiguous', h5py.h5d.CHUNKED: 'chunked'}[lay] + (str(list(obj.maxshape)) if obj.chunks else '')
f.visititems(visit)
out({'values': values, 'layouts': layouts})
`;

describe('many small keys in HDF5', { skip: hdf5Info().available ? false : 'the HDF5 addon is not available' }, () => {
  /** 10,000 scalars, 1,000 [16, 16] float64 arrays, text (ASCII: compact S; other: variable-length) and a dict. */
  function h5Values(): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (let i = 0; i < 10_000; i++) out.push([`s${i}`, i % 3 === 0 ? i : i + 0.25]);
    for (let i = 0; i < 1000; i++) {
      const a = new Float64Array(256);
      for (let j = 0; j < 256; j++) a[j] = Math.sin(i * 256 + j);
      out.push([`a${i}`, ndarray(a, [16, 16])]);
    }
    for (let i = 0; i < 50; i++) out.push([`t${i}`, i % 2 ? `text ${i}` : `text ${i} ✓`]);
    out.push(['nested', { x: 1, y: { z: Int32Array.of(1, 2, 3) } }]);
    return out;
  }

  for (const mode of ['async', 'sync'] as const) {
    it(`${mode} writes of 11,051 keys are what h5py reads, every key and value; scalars and short text compact, arrays chunked and growable`, async () => {
      const file = fresh('.h5');
      const values = h5Values();
      // Some keys written twice in the session (the replacing path), the second value kept.
      const again: [string, unknown][] = [['s7', -7.5], ['a3', ndarray(new Float64Array(256).fill(2), [16, 16])], ['t1', 'again']];
      const chk = new HDF5Checkpointer(file, { durable: false });
      if (mode === 'async') await chk.with(async (c) => { for (const [k, v] of [...values, ...again]) await c.set(k, v); });
      else chk.withSync((c) => { for (const [k, v] of [...values, ...again]) c.setSync(k, v); });
      const want = digestOf(values.map(([k, v]) => [k, again.find(([a]) => a === k)?.[1] ?? v]));
      const py = h5py<{ values: Record<string, number | string>; layouts: Record<string, string> }>(PY_H5_DIGEST, file);
      assertDigestsEqual(py.values, want);
      assert.equal(py.layouts.s0, 'compact');
      assert.equal(py.layouts.s7, 'compact');
      assert.equal(py.layouts.t1, 'compact'); // ASCII text: fixed-length S
      assert.equal(py.layouts.t0, 'contiguous'); // variable-length UTF-8
      assert.equal(py.layouts.a0, 'chunked[None, 16]');
      assert.equal(py.layouts.a3, 'chunked[None, 16]');
      assert.equal(py.layouts['nested::>|<::y::>|<::z'], 'chunked[None]');
      // No temporary link is left behind, and a second session replaces and adds keys.
      const names = h5py<string[]>('out(sorted(h5py.File(sys.argv[1], "r").keys()))', file);
      assert.equal(names.length, values.length);
      await new HDF5Checkpointer(file, { durable: false }).with(async (c) => {
        await c.set('s0', 'replaced');
        await c.set('extra', 3.5);
        assert.equal(await c.get('s0'), 'replaced');
      });
      const back: [string, unknown][] = [];
      if (mode === 'async') await new HDF5Checkpointer(file).with(async (c) => { for (const k of await c.keys()) back.push([k, await c.get(k)]); });
      else new HDF5Checkpointer(file).withSync((c) => { for (const k of c.keysSync()) back.push([k, c.getSync(k)]); });
      const wantBack = { ...want, s0: 'replaced', extra: 3.5 };
      assertDigestsEqual(digestOf(back), wantBack);
      assert.deepEqual(h5py<Record<string, unknown>>('f = h5py.File(sys.argv[1], "r"); out({"s0": f["s0"][()], "extra": f["extra"][()]})', file), { s0: { bytes: [...Buffer.from('replaced')] }, extra: 3.5 });
    });
  }
});
