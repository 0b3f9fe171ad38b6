import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Checkpointer, CheckpointerError, CheckpointerKeyError, HDF5Checkpointer, NDArray, ndarray, registerClass, UnregisteredObject,
} from '../lib/index';
import type { HDF5Stream } from '../lib/backends/hdf5';
import { chunkShapeFor } from '../lib/backends/hdf5-layout';
import { assertMatchesExpected } from './helpers/expected';
import { MCUTILS_FIXTURES, PYTHON, runPython, tempDir } from './helpers/python';

const dir = tempDir();
let n = 0;
const fresh = (ext = '.h5'): string => path.join(dir, `h${n++}${ext}`);
const rand = (count: number): Float64Array => Float64Array.from({ length: count }, () => Math.random());

class DataHolderClass {
  constructor(readonly data: Record<string, unknown>) {}
  toState(): Record<string, unknown> {
    return this.data;
  }
  static fromState(state: Record<string, unknown>): DataHolderClass {
    return new DataHolderClass(state);
  }
}

describe('HDF5Checkpointer: McUtils fixture', () => {
  it('loads every key of mcutils.hdf5 as expected.json says', async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(MCUTILS_FIXTURES, 'expected.json'), 'utf8'))['mcutils.hdf5'];
    const file = path.join(MCUTILS_FIXTURES, 'mcutils.hdf5');
    const before = fs.readFileSync(file);
    const chk = Checkpointer.fromFile(file);
    assert.ok(chk instanceof HDF5Checkpointer);
    await chk.with(async (c) => {
      assert.deepEqual([...(await c.keys())].sort(), Object.keys(expected).sort());
      for (const key of Object.keys(expected)) assertMatchesExpected(await c.get(key), expected[key], key);
      assert.equal(c.getSync('name'), 'water');
      assert.equal(c.getSync('nothing'), null);
      const holder = c.getSync('holder');
      assert.ok(holder instanceof UnregisteredObject);
      assert.equal(holder.className, 'DataHolderClass');
    });
    registerClass('__main__.DataHolderClass', DataHolderClass);
    const holder = await chk.get('holder');
    assert.ok(holder instanceof DataHolderClass);
    assert.deepEqual(holder.data, { x: 1, y: 's' });
    assert.deepEqual(fs.readFileSync(file), before, 'reading never changes the file');
  });
});

describe("HDF5Checkpointer: the seed's test_HDF5Problems", () => {
  it("rewrites 'why' with a new shape, adds 'why2', keys are ['why', 'why2']", async () => {
    const file = fresh('.hdf5');
    const checkpointer = Checkpointer.fromFile(file);
    const a = rand(1000 * 25);
    const b = rand(1001 * 25);
    const c2 = rand(1001 * 25);
    await checkpointer.with(async (chk) => chk.set('why', [ndarray(a, [1000, 5, 5]), 0, 0]));
    await checkpointer.with(async (chk) => chk.set('why', [ndarray(b, [1001, 5, 5]), 0, 0]));
    await checkpointer.with(async (chk) => chk.set('why2', [ndarray(c2, [1001, 5, 5]), 0, 0]));
    await checkpointer.with(async (chk) => {
      assert.deepEqual(await chk.keys(), ['why', 'why2']);
      const why = await chk.get<[NDArray, number, number]>('why');
      assert.deepEqual(why[0].shape, [1001, 5, 5]);
      assert.deepEqual(why[0].data, b);
      assert.deepEqual(why.slice(1), [0, 0]);
    });
    const py = runPython(`
import h5py, sys, json
f = h5py.File(sys.argv[1], 'r')
d = f['why/_list_item_0']
print(json.dumps({"keys": list(f.keys()), "shape": d.shape, "maxshape": d.maxshape, "chunks": d.chunks, "n": int(f['why/_list_numitems'][()])}))`, file);
    assert.deepEqual(py.keys, ['why', 'why2']);
    assert.deepEqual(py.shape, [1001, 5, 5]);
    assert.deepEqual(py.maxshape, [null, 5, 5]);
    assert.ok(py.chunks);
    assert.equal(py.n, 3);
  });

  it('repeated rewrites of a key do not grow the file without bound', () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const sizes: number[] = [];
    for (let i = 0; i < 12; i++) {
      chk.setSync('state', { x: ndarray(rand((1000 + (i % 3)) * 25), [1000 + (i % 3), 5, 5]), step: i, label: `s${i}` });
      sizes.push(fs.statSync(file).size);
    }
    assert.ok(sizes[11]! <= sizes[2]! * 1.05, `file grew: ${sizes.join(', ')}`);
  });
});

describe('HDF5Checkpointer: round trips', () => {
  it('keeps dtype, shape and values of every kind, in insertion order, after reopening', async () => {
    registerClass('__main__.DataHolderClass', DataHolderClass);
    const file = fresh();
    const values: [string, unknown][] = [
      ['zeta', 1.5],
      ['alpha', 7],
      ['big', 2n ** 62n + 1n],
      ['neg0', -0],
      ['nan', NaN],
      ['flag', true],
      ['text', 'water'],
      ['unicode', 'héllo ☃'],
      ['empty', ''],
      ['none', null],
      ['f64', ndarray(rand(12), [3, 4])],
      ['f32', ndarray(new Float32Array([1, 2, 3]))],
      ['i8', ndarray(new Int8Array([-1, 2]))],
      ['u16', ndarray(new Uint16Array([1, 65535]))],
      ['i32', ndarray(new Int32Array([-5, 5]), [1, 2])],
      ['i64', ndarray(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]))],
      ['u64', ndarray(new BigUint64Array([2n ** 64n - 1n]))],
      ['bools', ndarray(new Uint8Array([1, 0, 1]), [3], 'bool')],
      ['c64', ndarray(new Float32Array([1, 2, 3, 4]), [2], 'complex64')],
      ['c128', ndarray(new Float64Array([1, -2]), [], 'complex128')],
      ['zero_rows', ndarray(new Float64Array(0), [0, 3])],
      ['list', [1, 'two', null, [3, 4], { five: 5 }]],
      ['dict', { b: 1, a: { c: [true] } }],
      ['map', new Map([['k', 1]])],
      ['holder', new DataHolderClass({ x: 1, y: 's' })],
    ];
    await new HDF5Checkpointer(file).with(async (c) => {
      for (const [k, v] of values) await c.set(k, v);
    });
    const chk = new HDF5Checkpointer(file);
    await chk.with(async (c) => {
      assert.deepEqual(await c.keys(), values.map(([k]) => k));
      const get = (k: string): unknown => c.getSync(k);
      assert.equal(get('zeta'), 1.5);
      assert.equal(get('alpha'), 7);
      assert.equal(get('big'), 2n ** 62n + 1n);
      assert.ok(Object.is(get('neg0'), -0));
      assert.ok(Number.isNaN(get('nan')));
      assert.equal(get('flag'), true);
      assert.equal(get('text'), 'water');
      assert.equal(get('unicode'), 'héllo ☃');
      assert.equal(get('empty'), '');
      assert.equal(get('none'), null);
      for (const [k, v] of values) {
        if (v instanceof NDArray) {
          const back = await c.get<NDArray>(k);
          assert.ok(back instanceof NDArray, k);
          assert.equal(back.dtype, v.dtype, k);
          assert.deepEqual(back.shape, v.shape, k);
          assert.deepEqual(back.data, v.data, k);
        }
      }
      assert.deepEqual(get('list'), [1, 'two', null, [3, 4], { five: 5 }]);
      assert.deepEqual(get('dict'), { b: 1, a: { c: [true] } });
      assert.deepEqual(Object.keys(get('dict') as object), ['b', 'a']);
      assert.deepEqual(get('map'), { k: 1 });
      const h = get('holder');
      assert.ok(h instanceof DataHolderClass);
      assert.deepEqual(h.data, { x: 1, y: 's' });
      assert.equal((c.stream as HDF5Stream).file!.openObjectCount(), 0, 'no HDF5 object left open between calls');
    });
  });

  it('nested keys address groups; delete removes; has walks missing parents', () => {
    const chk = new HDF5Checkpointer(fresh());
    chk.setSync(['params', 'alpha'], 0.1);
    chk.setSync(['params', 'grid'], ndarray(rand(6), [2, 3]));
    assert.equal(chk.getSync(['params', 'alpha']), 0.1);
    assert.deepEqual(Object.keys(chk.getSync('params') as object), ['alpha', 'grid']);
    assert.equal(chk.hasSync(['nope', 'x']), false);
    assert.equal(chk.hasSync(['params', 'alpha', 'deeper']), false);
    assert.throws(() => chk.setSync(['params', 'alpha', 'x'], 1), CheckpointerKeyError);
    assert.equal(chk.deleteSync(['params', 'alpha']), true);
    assert.equal(chk.deleteSync(['params', 'alpha']), false);
    assert.throws(() => chk.getSync(['params', 'alpha']), CheckpointerKeyError);
    assert.throws(() => chk.setSync('a/b', 1), TypeError);
  });

  it('chunk shapes are about 4 MiB along the first axis', () => {
    assert.deepEqual(chunkShapeFor([1342177, 5, 5], 8), [20971, 5, 5]);
    assert.deepEqual(chunkShapeFor([10, 5, 5], 8), [10, 5, 5]);
    assert.deepEqual(chunkShapeFor([0, 3], 8), [1, 3]);
    assert.deepEqual(chunkShapeFor([4, 1024, 1024], 8), [1, 512, 1024]);
  });
});

describe('HDF5Checkpointer: h5py reads what we write', () => {
  it('dtypes, shapes, values, chunking, maxshape, strings, None, bool, complex, dicts, lists, objects', () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    chk.withSync((c) => {
      c.setSync('arr', ndarray(Float64Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]));
      c.setSync('i64', ndarray(new BigInt64Array([1n, -2n])));
      c.setSync('flags', ndarray(new Uint8Array([1, 0]), [2], 'bool'));
      c.setSync('z', ndarray(new Float64Array([1, 2, 3, -4]), [2], 'complex128'));
      c.setSync('name', 'water');
      c.setSync('uni', 'héllo ☃');
      c.setSync('nothing', null);
      c.setSync('flag', false);
      c.setSync('n', 7);
      c.setSync('x', 1.5);
      c.setSync('nested', { a: { b: [1, 'two'] } });
      c.setSync('holder', new DataHolderClass({ x: 1, y: 's' }));
    });
    const py = runPython(`
import h5py, sys, json, base64, pickle, numpy as np
class DataHolderClass:
    def __init__(self, **keys): self.data = keys
    @classmethod
    def from_state(cls, state, serializer=None): return cls(**state)
f = h5py.File(sys.argv[1], 'r')
a = f['arr']
cls = pickle.loads(base64.b64decode(f['holder/class/pickle_data'][()]))
created = []
f.id.links.iterate(lambda name: created.append(name.decode()), idx_type=h5py.h5.INDEX_CRT_ORDER)
print(json.dumps({
  "keys": created,
  "arr": [str(a.dtype), a.shape, a.maxshape, a.chunks is not None, a[()].tolist()],
  "i64": [str(f['i64'].dtype), f['i64'][()].tolist()],
  "flags": [str(f['flags'].dtype), f['flags'][()].tolist()],
  "z": [str(f['z'].dtype), [[c.real, c.imag] for c in f['z'][()]]],
  "name": [f['name'][()].decode(), f['name'].dtype.kind],
  "uni": f['uni'].asstr()[()],
  "nothing": isinstance(f['nothing'][()], h5py.Empty) and f['nothing'].shape is None,
  "nothing_dtype": str(f['nothing'].dtype),
  "flag": [str(f['flag'].dtype), bool(f['flag'][()])],
  "n": [str(f['n'].dtype), int(f['n'][()])],
  "x": float(f['x'][()]),
  "nested": [int(f['nested/a/b/_list_numitems'][()]), int(f['nested/a/b/_list_item_0'][()]), f['nested/a/b/_list_item_1'][()].decode()],
  "holder": [cls is DataHolderClass, int(f['holder/pseudopickle_protocol'][()]), int(f['holder/state/x'][()]), f['holder/state/y'][()].decode()],
}))`, file);
    assert.deepEqual(py.keys, ['arr', 'i64', 'flags', 'z', 'name', 'uni', 'nothing', 'flag', 'n', 'x', 'nested', 'holder']);
    assert.deepEqual(py.arr.slice(0, 4), ['float64', [2, 3, 4], [null, 3, 4], true]);
    assert.deepEqual(py.arr[4][1][2], [20, 21, 22, 23]);
    assert.deepEqual(py.i64, ['int64', [1, -2]]);
    assert.deepEqual(py.flags, ['bool', [true, false]]);
    assert.deepEqual(py.z, ['complex128', [[1, 2], [3, -4]]]);
    assert.deepEqual(py.name, ['water', 'S']);
    assert.equal(py.uni, 'héllo ☃');
    assert.equal(py.nothing, true);
    assert.equal(py.nothing_dtype, 'int32', "None is h5py.Empty('i'), as McUtils writes it");
    assert.deepEqual(py.flag, ['bool', false]);
    assert.deepEqual(py.n, ['int64', 7]);
    assert.equal(py.x, 1.5);
    assert.deepEqual(py.nested, [2, 1, 'two']);
    assert.deepEqual(py.holder, [true, 1, 1, 's']);
  });

  it('we read what h5py writes: contiguous, chunked, compressed, fixed and variable strings, big-endian', () => {
    const file = fresh();
    runPython(`
import h5py, sys, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f['contig'] = np.arange(12, dtype='<f8').reshape(3, 4)
    f.create_dataset('chunked', data=np.arange(100, dtype='<i4'), chunks=(7,), maxshape=(None,))
    f.create_dataset('gz', data=np.arange(1000, dtype='<f4').reshape(10, 100), compression='gzip', compression_opts=6, shuffle=True)
    f['be'] = np.arange(5, dtype='>i8')
    f['fixed'] = np.array([b'ab', b'cde'], dtype='S3')
    f['vlen'] = np.array(['héllo', 'x'], dtype=h5py.string_dtype())
    f['scalar_vlen'] = 'plain'
    f.create_group('g')['v'] = 3.5
print('null')`, file);
    const chk = new HDF5Checkpointer(file);
    chk.withSync((c) => {
      const contig = c.getSync<NDArray>('contig');
      assert.deepEqual([contig.dtype, [...contig.shape], Array.from(contig.data as Float64Array)], ['float64', [3, 4], Array.from({ length: 12 }, (_, i) => i)]);
      const chunked = c.getSync<NDArray>('chunked');
      assert.equal(chunked.dtype, 'int32');
      assert.deepEqual(Array.from(chunked.data as Int32Array), Array.from({ length: 100 }, (_, i) => i));
      const gz = c.getSync<NDArray>('gz');
      assert.deepEqual([gz.dtype, [...gz.shape], gz.data[999]], ['float32', [10, 100], 999]);
      const be = c.getSync<NDArray>('be');
      assert.deepEqual([be.dtype, Array.from(be.data as BigInt64Array)], ['int64', [0n, 1n, 2n, 3n, 4n]]);
      assert.deepEqual(c.getSync('fixed'), ['ab', 'cde']);
      assert.deepEqual(c.getSync('vlen'), ['héllo', 'x']);
      assert.equal(c.getSync('scalar_vlen'), 'plain');
      assert.deepEqual(c.getSync('g'), { v: 3.5 });
    });
    // And we can keep writing into their file.
    chk.setSync('ours', [1, 2]);
    assert.deepEqual(chk.getSync('ours'), [1, 2]);
  });
});

describe('HDF5Checkpointer: nothing lost', () => {
  it('a non-HDF5 or truncated file is ERR_CHECKPOINT_CORRUPT and left untouched', async () => {
    const garbage = fresh();
    fs.writeFileSync(garbage, 'this is not hdf5'.repeat(100));
    const good = fresh();
    new HDF5Checkpointer(good).setSync('x', ndarray(rand(1000)));
    const truncated = fresh();
    fs.writeFileSync(truncated, fs.readFileSync(good).subarray(0, 3000));
    for (const file of [garbage, truncated]) {
      const before = fs.readFileSync(file);
      await assert.rejects(new HDF5Checkpointer(file).get('x'), (e: CheckpointerError) => e.code === 'ERR_CHECKPOINT_CORRUPT' && e.file === file);
      assert.throws(() => new HDF5Checkpointer(file).setSync('x', 1), { code: 'ERR_CHECKPOINT_CORRUPT' });
      assert.deepEqual(fs.readFileSync(file), before);
    }
  });

  it('a missing directory, a read-only file and a file locked by another process are clear errors', async () => {
    await assert.rejects(new HDF5Checkpointer(path.join(dir, 'missing', 'x.h5')).set('a', 1), { code: 'ERR_NOT_WRITABLE' });
    const ro = fresh();
    new HDF5Checkpointer(ro).setSync('a', 1);
    fs.chmodSync(ro, 0o444);
    const before = fs.readFileSync(ro);
    assert.throws(() => new HDF5Checkpointer(ro).setSync('b', 2), { code: 'ERR_NOT_WRITABLE' });
    assert.equal(new HDF5Checkpointer(ro).getSync('a'), 1, 'a read-only file still reads');
    assert.deepEqual(fs.readFileSync(ro), before);

    const locked = fresh();
    new HDF5Checkpointer(locked).setSync('a', 1);
    const holder = spawn(PYTHON, ['-c', `
import h5py, sys, time
f = h5py.File(sys.argv[1], 'a')
print('ready', flush=True)
sys.stdin.read()
f.close()`, locked], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    try {
      await assert.rejects(new HDF5Checkpointer(locked).set('b', 2), { code: 'ERR_LOCKED' });
    } finally {
      holder.stdin!.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    assert.equal(await new HDF5Checkpointer(locked).get('a'), 1);
  });

  it('reading never changes the file, and a missing file is not created by reads', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    assert.equal(await chk.get('x', 'dflt'), 'dflt');
    assert.deepEqual(await chk.keys(), []);
    assert.equal(fs.existsSync(file), false);
    await chk.set('x', ndarray(rand(100)));
    const before = fs.readFileSync(file);
    const mtime = fs.statSync(file).mtimeMs;
    await chk.with(async (c) => {
      await c.get('x');
      await c.keys();
      await c.has('x');
    });
    assert.deepEqual(fs.readFileSync(file), before);
    assert.equal(fs.statSync(file).mtimeMs, mtime);
  });

  it('a process that exits with the file open leaves a valid file', () => {
    const file = fresh();
    const script = `
const { HDF5Checkpointer, ndarray } = require(${JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'))});
const chk = new HDF5Checkpointer(${JSON.stringify(file)});
chk.openSync();
chk.setSync('x', ndarray(new Float64Array(1000).fill(2), [100, 10]));
chk.setSync('label', 'unclosed');
process.exit(0);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const py = runPython(`
import h5py, sys, json
f = h5py.File(sys.argv[1], 'r')
print(json.dumps([f['x'].shape, float(f['x'][()].sum()), f['label'][()].decode()]))`, file);
    assert.deepEqual(py, [[100, 10], 2000, 'unclosed']);
  });

  it('without the addon, require works, JSON works, and HDF5 use is ERR_HDF5_UNAVAILABLE', () => {
    const script = `
const { HDF5Checkpointer, JSONCheckpointer, Checkpointer } = require(${JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'))});
const j = new JSONCheckpointer(${JSON.stringify(fresh('.json'))});
j.setSync('a', 1);
let code = null, message = '';
try { Checkpointer.fromFile(${JSON.stringify(fresh())}).setSync('a', 1); } catch (e) { code = e.code; message = e.message; }
console.log(JSON.stringify({ a: j.getSync('a'), code, message }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, CHECKPOINTER_NO_NATIVE: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.a, 1);
    assert.equal(out.code, 'ERR_HDF5_UNAVAILABLE');
    assert.match(out.message, /CHECKPOINTER_NO_NATIVE|build:native|libhdf5/);
  });
});

describe('HDF5Checkpointer: async', () => {
  it('a large async write does not stall the event loop and reads back exactly', async () => {
    const { monitorEventLoopDelay } = await import('node:perf_hooks');
    const rows = Math.floor((64 * 1024 * 1024) / 200);
    const data = rand(rows * 25);
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    await chk.open();
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    await chk.set('x', ndarray(data, [rows, 5, 5]));
    h.disable();
    const back = await chk.get<NDArray>('x');
    await chk.close();
    assert.ok(h.max / 1e6 < 50, `event loop stalled ${h.max / 1e6} ms`);
    assert.deepEqual(back.shape, [rows, 5, 5]);
    assert.ok(Buffer.from(back.data.buffer).equals(Buffer.from(data.buffer)));
  });
});
