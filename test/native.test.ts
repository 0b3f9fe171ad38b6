/**
 * The native HDF5 layer (lib/native.ts + binding/): round trips of every dtype, interop with h5py
 * in both directions, error classification, handle hygiene, async behaviour.
 */
import { test, describe } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { CheckpointerError } from '../lib/errors';
import { loadNative, nativeUnavailableReason, H5File, NativeError } from '../lib/native';
import { DType, DTYPES, arrayTypeOf, dtypeInfo, TypedArray } from '../lib/values/dtype';
import { h5py } from './helpers/h5py';

v8.setFlagsFromString('--expose-gc');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE_JS = path.join(ROOT, 'dist-test', 'lib', 'native.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'checkpointer-native-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const fresh = (name = 'f') => path.join(tmp, `${name}-${counter++}.h5`);

const native = loadNative();
const { H5File: File } = native;

/** Sample values of a dtype, in its TypedArray (complex interleaved). */
function sample(dtype: DType, n: number): TypedArray {
  const info = dtypeInfo(dtype);
  const a = new (arrayTypeOf(dtype))(n * info.lanes);
  for (let i = 0; i < a.length; i++) {
    switch (info.kind) {
      case 'b': a[i] = i % 3 === 0 ? 1 : 0; break;
      case 'f': case 'c': a[i] = (i - 3.25) * 1.5; break;
      case 'i':
        if (a instanceof BigInt64Array) a[i] = BigInt(i - 2) * 1234567890123n;
        else a[i] = (i % 7) - 3;
        break;
      case 'u':
        if (a instanceof BigUint64Array) a[i] = BigInt(i) * 9007199254740993n;
        else a[i] = i * 3;
        break;
    }
  }
  return a;
}

function plain(a: TypedArray): (number | string)[] {
  return Array.from(a as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? x.toString() : x));
}

function expectCode(fn: () => unknown, code: string): NativeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CheckpointerError, `expected CheckpointerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err as NativeError;
  }
  assert.fail(`expected ${code}`);
}

async function expectCodeAsync(p: Promise<unknown>, code: string): Promise<NativeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CheckpointerError, `expected CheckpointerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err as NativeError;
  }
  assert.fail(`expected ${code}`);
}

function withFile<T>(file: string, mode: 'r' | 'r+' | 'w' | 'x', fn: (f: H5File) => T): T {
  const f = File.openSync(file, mode);
  try {
    const r = fn(f);
    assert.equal(f.openObjectCount(), 0, 'objects left open');
    return r;
  } finally {
    f.closeSync();
  }
}

describe('loading', () => {
  test('the addon loads and reports libhdf5', () => {
    assert.equal(nativeUnavailableReason(), null);
    assert.match(native.hdf5Version, /^1\.\d+\.\d+$/);
    assert.equal(native.napiVersion, 8);
  });

  test('CHECKPOINTER_NO_NATIVE=1: requiring lib/native does not throw, loadNative throws ERR_HDF5_UNAVAILABLE', () => {
    const script = `
      const n = require(${JSON.stringify(NATIVE_JS)});
      const reason = n.nativeUnavailableReason();
      try { n.loadNative(); console.log(JSON.stringify({ ok: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message, reason })); }`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, CHECKPOINTER_NO_NATIVE: '1' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.code, 'ERR_HDF5_UNAVAILABLE');
    assert.equal(out.name, 'CheckpointerError');
    assert.match(out.message, /CHECKPOINTER_NO_NATIVE/);
    assert.equal(out.reason, out.message);
  });

  test('the committed linux-x64 prebuild loads with PREBUILDS_ONLY=1', { skip: `${process.platform}-${process.arch}` !== 'linux-x64' }, () => {
    const script = `
      const p = require('node-gyp-build').path(${JSON.stringify(ROOT)});
      const n = require(${JSON.stringify(NATIVE_JS)});
      const a = n.loadNative();
      const f = a.H5File.openSync(process.argv[1], 'w');
      f.createDataset('/x', { dtype: 'int32', shape: [2] });
      f.writeSync('/x', Int32Array.of(4, 5));
      f.closeSync();
      console.log(JSON.stringify({ p, version: a.hdf5Version }));`;
    const file = fresh('prebuild');
    const r = spawnSync(process.execPath, ['-e', script, file], { cwd: ROOT, env: { ...process.env, PREBUILDS_ONLY: '1' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.p, /prebuilds[/\\]linux-x64[/\\][^/\\]*napi[^/\\]*\.node$/);
    assert.deepEqual(h5py(`out(h5py.File(sys.argv[1], 'r')['x'][()])`, file), [4, 5]);
  });

  test('an unloadable addon is reported as ERR_HDF5_UNAVAILABLE with a fix', () => {
    // Point node-gyp-build at an empty package so nothing is found.
    const fake = fs.mkdtempSync(path.join(tmp, 'pkg-'));
    fs.writeFileSync(path.join(fake, 'package.json'), JSON.stringify({ name: 'checkpointer' }));
    const script = `
      const n = require(${JSON.stringify(NATIVE_JS)});
      try { n.loadNative(); console.log('{}'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, CHECKPOINTER_PREBUILD: fake, PREBUILDS_ONLY: '1' }, encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.code, 'ERR_HDF5_UNAVAILABLE');
    assert.match(out.message, /npm run build:native/);
  });
});

describe('datasets round trip', () => {
  test('every dtype, 2-d, contiguous: ours → ours and ours → h5py', () => {
    const file = fresh('dtypes');
    const written: Record<string, TypedArray> = {};
    withFile(file, 'w', (f) => {
      for (const dtype of DTYPES) {
        const data = sample(dtype, 12);
        written[dtype] = data;
        f.createDataset(`/${dtype}`, { dtype, shape: [4, 3] });
        f.writeSync(`/${dtype}`, data);
        const info = f.info(`/${dtype}`);
        assert.equal(info.dtype, dtype);
        assert.deepEqual(info.shape, [4, 3]);
        assert.deepEqual(info.maxshape, [4, 3]);
        assert.equal(info.chunks, null);
        assert.equal(info.isNull, false);
        const back = new (arrayTypeOf(dtype))(data.length);
        f.readSync(`/${dtype}`, back);
        assert.deepEqual(plain(back), plain(data), dtype);
      }
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
res = {}
for k in f:
    a = f[k][()]
    if a.dtype.kind in 'iu' and a.dtype.itemsize == 8: vals = [str(v) for v in a.ravel().tolist()]
    elif a.dtype.kind == 'b': vals = [int(v) for v in a.ravel().tolist()]
    elif a.dtype.kind == 'c': vals = np.stack([a.real, a.imag], axis=-1).ravel().tolist()
    else: vals = a.ravel().tolist()
    res[k] = {'dtype': str(a.dtype), 'shape': list(a.shape), 'vals': vals}
out(res)`, file);
    const dump = spawnSync('h5dump', ['-H', file], { encoding: 'utf8' });
    if (!dump.error) assert.equal(dump.status, 0, `h5dump failed: ${dump.stderr}`);
    for (const dtype of DTYPES) {
      assert.equal(py[dtype].dtype, dtype, `h5py dtype of ${dtype}`);
      assert.deepEqual(py[dtype].shape, [4, 3]);
      assert.deepEqual(py[dtype].vals, plain(written[dtype]!), dtype);
    }
  });

  test('scalars (shape []) of every dtype', () => {
    const file = fresh('scalars');
    withFile(file, 'w', (f) => {
      for (const dtype of DTYPES) {
        const data = sample(dtype, 2).subarray(dtypeInfo(dtype).lanes, 2 * dtypeInfo(dtype).lanes); // byteOffset ≠ 0
        f.createDataset(`/${dtype}`, { dtype, shape: [] });
        f.writeSync(`/${dtype}`, data);
        assert.deepEqual(f.info(`/${dtype}`).shape, []);
        const back = new (arrayTypeOf(dtype))(dtypeInfo(dtype).lanes);
        f.readSync(`/${dtype}`, back);
        assert.deepEqual(plain(back), plain(data));
      }
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
out({k: [f[k].shape, str(f[k].dtype), f[k][()]] for k in ['bool', 'int64', 'complex128', 'float32']})`, file);
    assert.deepEqual(py.bool, [[], 'bool', false]);
    assert.deepEqual(py.int64, [[], 'int64', -1234567890123]);
    assert.deepEqual(py.complex128, [[], 'complex128', [-1.875, -0.375]]);
    assert.deepEqual(py.float32, [[], 'float32', -3.375]);
  });

  test('null dataspace (None): ours and McUtils-style', () => {
    const file = fresh('null');
    withFile(file, 'w', (f) => {
      f.createNull('/nothing');
      const info = f.info('/nothing');
      assert.equal(info.isNull, true);
      assert.deepEqual(info.shape, []);
      f.readSync('/nothing', new Int32Array(0));
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out(f['nothing'][()])`, file);
    assert.deepEqual(py, { empty: 'int32' });
  });

  test('fill values, gzip + shuffle, chunks and maxshape as h5py sees them', () => {
    const file = fresh('opts');
    withFile(file, 'w', (f) => {
      f.createDataset('/g', { dtype: 'float32', shape: [100, 4], chunks: [10, 4], compression: 'gzip', compressionLevel: 6, shuffle: true });
      f.writeSync('/g', sample('float32', 400));
      f.createDataset('/fill', { dtype: 'int64', shape: [3], fillValue: -7n });
      f.createDataset('/ffill', { dtype: 'float64', shape: [2, 2], maxshape: [null, 2], chunks: [1, 2], fillValue: 2.5 });
      const info = f.info('/g');
      assert.deepEqual(info.filters, { compression: 'gzip', level: 6, shuffle: true });
      assert.deepEqual(info.chunks, [10, 4]);
      assert.deepEqual(f.info('/ffill').maxshape, [null, 2]);
      const back = new Float32Array(400);
      f.readSync('/g', back);
      assert.deepEqual(plain(back), plain(sample('float32', 400)));
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
g = f['g']
out([g.compression, g.compression_opts, g.shuffle, list(g.chunks), f['fill'][()], f['ffill'][()], list(f['ffill'].maxshape), float(g[()].sum())])`, file);
    assert.deepEqual(py.slice(0, 4), ['gzip', 6, true, [10, 4]]);
    assert.deepEqual(py[4], [-7, -7, -7]);
    assert.deepEqual(py[5], [[2.5, 2.5], [2.5, 2.5]]);
    assert.deepEqual(py[6], [null, 2]);
  });

  test('resize and hyperslab write/read, direct-chunk and partial-chunk paths', () => {
    const file = fresh('slab');
    const rows = 37;
    const full = new Float64Array(rows * 25).map((_, i) => i * 0.5);
    withFile(file, 'w', (f) => {
      f.createDataset('/x', { dtype: 'float64', shape: [10, 5, 5], maxshape: [null, 5, 5], chunks: [4, 5, 5] });
      f.writeSync('/x', full.subarray(0, 250));
      f.resize('/x', [rows, 5, 5]);
      // rows 10..37: a partial chunk (10,11), whole chunks 12..35, a partial edge chunk 36
      f.writeSync('/x', full.subarray(250), { start: [10, 0, 0], count: [rows - 10, 5, 5] });
      const info = f.info('/x');
      assert.deepEqual(info.shape, [rows, 5, 5]);
      assert.deepEqual(info.maxshape, [null, 5, 5]);
      const all = new Float64Array(rows * 25);
      f.readSync('/x', all);
      assert.deepEqual(all, full);
      const part = new Float64Array(3 * 2 * 5);
      f.readSync('/x', part, { start: [5, 1, 0], count: [3, 2, 5] });
      const expect: number[] = [];
      for (let r = 5; r < 8; r++) for (let c = 1; c < 3; c++) for (let k = 0; k < 5; k++) expect.push(full[r * 25 + c * 5 + k]!);
      assert.deepEqual(Array.from(part), expect);
      // a selection that does not span the trailing dims (no direct-chunk path)
      f.writeSync('/x', Float64Array.of(-1, -2), { start: [20, 2, 3], count: [1, 1, 2] });
      const two = new Float64Array(2);
      f.readSync('/x', two, { start: [20, 2, 3], count: [1, 1, 2] });
      assert.deepEqual(Array.from(two), [-1, -2]);
      full[20 * 25 + 13] = -1;
      full[20 * 25 + 14] = -2;
      assert.throws(() => f.writeSync('/x', new Float64Array(3), { start: [36, 0, 0], count: [2, 5, 5] }), RangeError);
      assert.throws(() => f.writeSync('/x', new Float64Array(3)), RangeError);
      assert.throws(() => f.writeSync('/x', new Float32Array(rows * 25)), TypeError);
    });
    const py = h5py(`
x = h5py.File(sys.argv[1], 'r')['x']
out([list(x.shape), list(x.maxshape), list(x.chunks), x[()].ravel().tolist()])`, file);
    assert.deepEqual(py[0], [rows, 5, 5]);
    assert.deepEqual(py[1], [null, 5, 5]);
    assert.deepEqual(py[2], [4, 5, 5]);
    assert.deepEqual(py[3], Array.from(full));
  });

  test('strings: variable-length UTF-8, scalar and n-d, non-ASCII', () => {
    const file = fresh('str');
    const words = ['héllo', 'мир', '日本語', '', 'plain', '🙂 emoji'];
    withFile(file, 'w', (f) => {
      f.writeStrings('/s', ['Grüße, 世界'], []);
      f.writeStrings('/m', words, [2, 3]);
      f.writeStrings('/empty', [], [0]);
      assert.deepEqual(f.readStrings('/s'), ['Grüße, 世界']);
      assert.deepEqual(f.readStrings('/m'), words);
      assert.deepEqual(f.readStrings('/empty'), []);
      const info = f.info('/m');
      assert.equal(info.dtype, 'string');
      assert.deepEqual(info.stringType, { variable: true, length: 0, utf8: true });
      assert.deepEqual(info.shape, [2, 3]);
      expectCode(() => f.writeStrings('/nul', ['a\0b'], []), 'ERR_UNSUPPORTED_VALUE');
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
s = f['s'][()]
m = f['m'][()]
out([type(s).__name__, s.decode('utf-8'), list(m.shape), [v.decode('utf-8') for v in m.ravel()], f['s'].asstr()[()]])`, file);
    assert.deepEqual(py, ['bytes', 'Grüße, 世界', [2, 3], words, 'Grüße, 世界']);
  });

  test('bytes: np.void, numpy S and uint8 layouts', () => {
    const file = fresh('bytes');
    const raw = Uint8Array.of(0x80, 0x04, 0x00, 0x95, 0x2e, 0x00);
    withFile(file, 'w', (f) => {
      f.writeBytes('/v', raw);
      f.writeBytes('/s', raw, 'S');
      f.writeBytes('/u', raw, 'uint8');
      f.writeBytes('/s0', new Uint8Array(0), 'S');
      assert.deepEqual(f.readBytes('/v'), raw);
      assert.deepEqual(f.readBytes('/s'), raw.subarray(0, 5)); // NUL padding stripped, as numpy does
      assert.deepEqual(f.readBytes('/u'), raw);
      assert.deepEqual(f.readBytes('/s0'), new Uint8Array(0));
      expectCode(() => f.writeBytes('/v0', new Uint8Array(0)), 'ERR_UNSUPPORTED_VALUE');
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([f['v'][()], f['s'][()], f['u'][()], f['s0'][()]])`, file);
    assert.deepEqual(py, [{ void: Array.from(raw) }, { bytes: Array.from(raw.subarray(0, 5)) }, Array.from(raw), { bytes: [] }]);
  });

  test('attributes', () => {
    const file = fresh('attrs');
    withFile(file, 'w', (f) => {
      f.createGroup('/g');
      f.setAttr('/g', 'n', 1.5);
      f.setAttr('/g', 'big', 2n ** 62n);
      f.setAttr('/g', 'flag', true);
      f.setAttr('/g', 'name', 'ünïcode');
      f.setAttr('/g', 'list', ['a', 'β']);
      f.setAttr('/g', 'arr', Int16Array.of(1, -2, 3));
      f.setAttr('/', 'root', 'r');
      f.setAttr('/g', 'n', 2.5); // replace
      assert.deepEqual(f.attrNames('/g'), ['big', 'flag', 'name', 'list', 'arr', 'n']);
      assert.equal(f.getAttr('/g', 'n'), 2.5);
      assert.equal(f.getAttr('/g', 'big'), 2n ** 62n);
      assert.equal(f.getAttr('/g', 'flag'), true);
      assert.equal(f.getAttr('/g', 'name'), 'ünïcode');
      assert.deepEqual(f.getAttr('/g', 'list'), ['a', 'β']);
      assert.deepEqual(f.getAttr('/g', 'arr'), Int16Array.of(1, -2, 3));
      f.deleteAttr('/g', 'flag');
      assert.equal(f.attrNames('/g').includes('flag'), false);
    });
    const py = h5py(`
g = h5py.File(sys.argv[1], 'r')['g']
out([g.attrs['n'], g.attrs['big'], g.attrs['name'], [x for x in g.attrs['list']], g.attrs['arr'], str(g.attrs['arr'].dtype)])`, file);
    assert.deepEqual(py, [2.5, 2 ** 62, 'ünïcode', ['a', 'β'], [1, -2, 3], 'int16']);
  });
});

describe('groups and links', () => {
  test('creation order is kept; parents are created; kind/list/delete', () => {
    const file = fresh('groups');
    withFile(file, 'w', (f) => {
      for (const n of ['zeta', 'alpha', 'mid', '_list_item_10', '_list_item_2']) f.createGroup(`/g/${n}`);
      f.createDataset('/g/alpha/d', { dtype: 'uint8', shape: [1] });
      assert.deepEqual(f.list('/g'), ['zeta', 'alpha', 'mid', '_list_item_10', '_list_item_2']);
      assert.deepEqual(f.list('/'), ['g']);
      assert.equal(f.kind('/'), 'group');
      assert.equal(f.kind('/g/alpha'), 'group');
      assert.equal(f.kind('/g/alpha/d'), 'dataset');
      assert.equal(f.kind('/g/nope'), null);
      assert.equal(f.kind('/nope/deeper/still'), null);
      assert.equal(f.kind('/g/alpha/d/under-a-dataset'), null);
      f.delete('/g/mid');
      assert.deepEqual(f.list('/g'), ['zeta', 'alpha', '_list_item_10', '_list_item_2']);
      expectCode(() => f.createGroup('/g/alpha/d/x'), 'ERR_HDF5');
      assert.throws(() => f.kind('relative'), TypeError);
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r', track_order=True); out(list(f['g'].keys()))`, file);
    assert.deepEqual(py, ['zeta', 'alpha', '_list_item_10', '_list_item_2']);
  });

  test('groups without tracked order list by name (h5py default)', () => {
    const file = fresh('h5py-groups');
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    for n in ['b', 'c', 'a']: f.create_group(n)`, file);
    withFile(file, 'r', (f) => assert.deepEqual(f.list('/'), ['a', 'b', 'c']));
  });
});

describe('files written by h5py', () => {
  const file = path.join(tmp, 'from-h5py.h5');
  const expected = h5py(`
rng = np.arange(60, dtype='f8').reshape(12, 5) * 1.25
with h5py.File(sys.argv[1], 'w') as f:
    f['contig'] = rng
    f.create_dataset('chunked', data=rng, chunks=(5, 5), maxshape=(None, 5))
    f.create_dataset('gzip', data=rng, chunks=(4, 5), compression='gzip', compression_opts=9, shuffle=True)
    f['be_f8'] = rng.astype('>f8')
    f['be_i4'] = np.arange(-5, 5, dtype='>i4')
    f['be_i8'] = np.array([-(2**62), 2**62 + 3], dtype='>i8')
    f['be_u2'] = np.array([1, 65535], dtype='>u2')
    f['be_c16'] = np.array([1+2j, -3.5j], dtype='>c16')
    f['c8'] = np.array([1+2j, -3.5j], dtype='c8')
    f['bools'] = np.array([True, False, True])
    f['fixed'] = np.array([b'abc', b'de', b''], dtype='S5')
    f['vlen_ascii'] = np.array([b'x', b'yz'], dtype=h5py.string_dtype('ascii'))
    f['vlen_utf8'] = np.array(['añb', 'ç'], dtype=h5py.string_dtype('utf-8'))
    f['scalar_str'] = 'naïve'
    f['fixed_utf8'] = np.array('añ'.encode(), dtype=h5py.string_dtype('utf-8', 8))
    f['void'] = np.void(b'\\x00\\x01pickle')
    f['sbytes'] = np.bytes_(b'ab\\x00c\\x00')
    f['f16'] = np.array([1, 2], dtype='f2')
    f['pair'] = np.array([(1, 2.0)], dtype=[('a', 'i4'), ('b', 'f8')])
    f['empty'] = h5py.Empty('f8')
out(rng.ravel().tolist())`, file) as number[];

  test('contiguous, chunked and gzip-compressed', () => {
    withFile(file, 'r', (f) => {
      for (const name of ['contig', 'chunked', 'gzip', 'be_f8']) {
        const info = f.info(`/${name}`);
        assert.equal(info.dtype, 'float64', name);
        assert.deepEqual(info.shape, [12, 5]);
        const out = new Float64Array(60);
        f.readSync(`/${name}`, out);
        assert.deepEqual(Array.from(out), expected, name);
      }
      assert.deepEqual(f.info('/chunked').maxshape, [null, 5]);
      assert.deepEqual(f.info('/chunked').chunks, [5, 5]);
      assert.deepEqual(f.info('/gzip').filters, { compression: 'gzip', level: 9, shuffle: true });
      const rows = new Float64Array(10);
      f.readSync('/gzip', rows, { start: [3, 0], count: [2, 5] });
      assert.deepEqual(Array.from(rows), expected.slice(15, 25));
    });
  });

  test('big-endian numbers, complex and bool', () => {
    withFile(file, 'r', (f) => {
      const i4 = new Int32Array(10);
      f.readSync('/be_i4', i4);
      assert.deepEqual(Array.from(i4), [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]);
      const i8 = new BigInt64Array(2);
      f.readSync('/be_i8', i8);
      assert.deepEqual(Array.from(i8), [-(2n ** 62n), 2n ** 62n + 3n]);
      const u2 = new Uint16Array(2);
      f.readSync('/be_u2', u2);
      assert.deepEqual(Array.from(u2), [1, 65535]);
      assert.equal(f.info('/be_c16').dtype, 'complex128');
      const c16 = new Float64Array(4);
      f.readSync('/be_c16', c16);
      assert.deepEqual(Array.from(c16, (x) => x + 0), [1, 2, 0, -3.5]);
      assert.equal(f.info('/c8').dtype, 'complex64');
      const c8 = new Float32Array(4);
      f.readSync('/c8', c8);
      assert.deepEqual(Array.from(c8, (x) => x + 0), [1, 2, 0, -3.5]);
      assert.equal(f.info('/bools').dtype, 'bool');
      const b = new Uint8Array(3);
      f.readSync('/bools', b);
      assert.deepEqual(Array.from(b), [1, 0, 1]);
    });
  });

  test('fixed- and variable-length strings, bytes', () => {
    withFile(file, 'r', (f) => {
      assert.deepEqual(f.readStrings('/fixed'), ['abc', 'de', '']);
      assert.deepEqual(f.info('/fixed').stringType, { variable: false, length: 5, utf8: false });
      assert.deepEqual(f.readStrings('/vlen_ascii'), ['x', 'yz']);
      assert.deepEqual(f.readStrings('/vlen_utf8'), ['añb', 'ç']);
      assert.deepEqual(f.readStrings('/scalar_str'), ['naïve']);
      assert.deepEqual(f.readStrings('/fixed_utf8'), ['añ']);
      assert.deepEqual(Buffer.from(f.readBytes('/void')).toString('latin1'), '\x00\x01pickle');
      assert.deepEqual(Buffer.from(f.readBytes('/sbytes')).toString('latin1'), 'ab\x00c');
      expectCode(() => f.readBytes('/fixed'), 'ERR_UNSUPPORTED_DTYPE'); // a 1-d array of strings
      assert.equal(f.info('/empty').isNull, true);
    });
  });

  test('unsupported types raise ERR_UNSUPPORTED_DTYPE naming the type', () => {
    withFile(file, 'r', (f) => {
      const e1 = expectCode(() => f.info('/f16'), 'ERR_UNSUPPORTED_DTYPE');
      assert.match(e1.message, /16-bit .*float/);
      const e2 = expectCode(() => f.info('/pair'), 'ERR_UNSUPPORTED_DTYPE');
      assert.match(e2.message, /compound \{a: 32-bit signed/);
      expectCode(() => f.readSync('/pair', new Float64Array(2)), 'ERR_UNSUPPORTED_DTYPE');
    });
  });

  test('McUtils fixture opens read-only and is left unchanged', { skip: !fs.existsSync('/work/shared/fixtures/mcutils/mcutils.hdf5') && 'no fixture' }, () => {
    const fixture = '/work/shared/fixtures/mcutils/mcutils.hdf5';
    const before = fs.readFileSync(fixture);
    withFile(fixture, 'r', (f) => {
      assert.equal(f.info('/nothing').isNull, true);
      assert.equal(f.info('/amps').dtype, 'complex128');
      assert.equal(f.info('/converged').dtype, 'bool');
      assert.equal(f.info('/holder/class/pickle_data').stringType?.length, 60);
      // McUtils stores the class pickle as base64 text in a fixed-length numpy S string.
      const [b64] = f.readStrings('/holder/class/pickle_data');
      const pickle = Buffer.from(b64!, 'base64');
      assert.equal(pickle[0], 0x80); // pickle PROTO opcode
      assert.equal(pickle[pickle.length - 1], 0x2e); // STOP
      assert.deepEqual(f.readBytes('/holder/class/pickle_data'), new Uint8Array(Buffer.from(b64!)));
    });
    assert.ok(fs.readFileSync(fixture).equals(before));
  });
});

describe('errors and handle hygiene', () => {
  test('closed handle → ERR_CLOSED; double close is fine', async () => {
    const f = File.openSync(fresh(), 'w');
    f.closeSync();
    f.closeSync();
    assert.equal(f.isOpen, false);
    expectCode(() => f.list('/'), 'ERR_CLOSED');
    await expectCodeAsync(f.read('/x', new Float64Array(1)), 'ERR_CLOSED');
  });

  test('not HDF5 / truncated HDF5 → ERR_CHECKPOINT_CORRUPT, file untouched', () => {
    const junk = fresh('junk');
    fs.writeFileSync(junk, 'this is not an HDF5 file\n'.repeat(100));
    const good = fresh('good');
    withFile(good, 'w', (f) => {
      f.createDataset('/x', { dtype: 'float64', shape: [4096] });
      f.writeSync('/x', new Float64Array(4096).fill(1));
    });
    const whole = fs.readFileSync(good);
    const truncated = fresh('truncated');
    fs.writeFileSync(truncated, whole.subarray(0, whole.length >> 1));
    const empty = fresh('empty');
    fs.writeFileSync(empty, '');
    for (const file of [junk, truncated, empty]) {
      const before = fs.readFileSync(file);
      for (const mode of ['r', 'r+'] as const) {
        const e = expectCode(() => File.openSync(file, mode), 'ERR_CHECKPOINT_CORRUPT');
        assert.equal(e.file, file);
        assert.ok(Array.isArray(e.hdf5Stack));
      }
      assert.ok(fs.readFileSync(file).equals(before), 'file bytes changed');
    }
    assert.equal(File.isHDF5(good), true);
    assert.equal(File.isHDF5(junk), false);
    assert.equal(File.isHDF5(path.join(tmp, 'missing.h5')), false);
  });

  test('missing directory → ERR_NOT_WRITABLE; missing file / existing for x → ERR_IO', async () => {
    const e = expectCode(() => File.openSync(path.join(tmp, 'no-such-dir', 'x.h5'), 'w'), 'ERR_NOT_WRITABLE');
    assert.equal(e.sysCode, 'ENOENT');
    await expectCodeAsync(File.open(path.join(tmp, 'no-such-dir', 'x.h5'), 'x'), 'ERR_NOT_WRITABLE');
    assert.equal(expectCode(() => File.openSync(path.join(tmp, 'missing.h5'), 'r'), 'ERR_IO').sysCode, 'ENOENT');
    const existing = fresh();
    withFile(existing, 'w', () => undefined);
    assert.equal(expectCode(() => File.openSync(existing, 'x'), 'ERR_IO').sysCode, 'EEXIST');
  });

  test('permission denied → ERR_NOT_WRITABLE (as an unprivileged user)', { skip: process.getuid?.() !== 0 && 'needs root to switch user' }, () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ro-'));
    fs.chmodSync(tmp, 0o755);
    fs.chmodSync(dir, 0o555);
    const script = `
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      try { n.H5File.openSync(process.argv[1], 'w'); console.log('opened'); }
      catch (e) { console.log(e.code + ' ' + e.sysCode); }`;
    const r = spawnSync(process.execPath, ['-e', script, path.join(dir, 'x.h5')], { uid: 65534, gid: 65534, encoding: 'utf8' });
    if (r.status !== 0 && /EACCES|permission/i.test(r.stderr)) return; // the test tree is not readable by nobody
    assert.equal(r.stdout.trim(), 'ERR_NOT_WRITABLE EACCES', r.stderr);
  });

  test('HDF5 failures → ERR_HDF5 with hdf5Stack; nothing printed on stderr, sync or async', () => {
    const file = fresh();
    withFile(file, 'w', (f) => f.createGroup('/g'));
    withFile(file, 'r', (f) => {
      const e = expectCode(() => f.info('/g/missing'), 'ERR_HDF5');
      assert.ok(e.hdf5Stack.length > 0);
      assert.match(e.hdf5Stack.join('\n'), /H5Dopen2/);
      assert.match(e.message, /\/g\/missing/);
      expectCode(() => f.createGroup('/h'), 'ERR_NOT_WRITABLE');
    });
    const script = `
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      const fs = require('fs');
      fs.writeFileSync(process.argv[1] + '.junk', 'junk');
      const codes = [];
      const f = n.H5File.openSync(process.argv[1], 'r');
      try { f.info('/nope'); } catch (e) { codes.push(e.code); }
      try { n.H5File.openSync(process.argv[1] + '.junk', 'r'); } catch (e) { codes.push(e.code); }
      (async () => {
        try { await f.read('/nope', new Float64Array(1)); } catch (e) { codes.push(e.code); }
        try { await n.H5File.open(process.argv[1] + '.junk', 'r+'); } catch (e) { codes.push(e.code); }
        await f.close();
        console.log(codes.join(','));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script, file], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), 'ERR_HDF5,ERR_CHECKPOINT_CORRUPT,ERR_HDF5,ERR_CHECKPOINT_CORRUPT');
    assert.equal(r.stderr, '');
  });

  test('a file another process holds open for writing → ERR_LOCKED', async () => {
    const file = fresh('locked');
    withFile(file, 'w', () => undefined);
    const holder = spawn('/usr/bin/python3', ['-c', `
import h5py, sys
f = h5py.File(sys.argv[1], 'r+')
print('ready', flush=True)
sys.stdin.read()`, file], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => resolve());
        holder.once('exit', () => reject(new Error('holder exited')));
      });
      expectCode(() => File.openSync(file, 'r+'), 'ERR_LOCKED');
      expectCode(() => File.openSync(file, 'w'), 'ERR_LOCKED');
    } finally {
      holder.stdin.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    withFile(file, 'r+', () => undefined);
  });

  test('closeSync with async work pending → ERR_BUSY; close() waits for it', async () => {
    const file = fresh();
    const f = File.openSync(file, 'w');
    f.createDataset('/x', { dtype: 'float64', shape: [1 << 16] });
    const data = new Float64Array(1 << 16).fill(3);
    const w = f.write('/x', data);
    expectCode(() => f.closeSync(), 'ERR_BUSY');
    const c = f.close();
    await Promise.all([w, c]);
    assert.equal(f.isOpen, false);
    const back = new Float64Array(1 << 16);
    withFile(file, 'r', (g) => g.readSync('/x', back));
    assert.equal(back[12345], 3);
  });

  test('worker.terminate() and process.exit() with async jobs in flight: no crash, files stay valid', () => {
    const base = fresh('term');
    const scriptFile = path.join(tmp, 'term-child.js');
    fs.writeFileSync(scriptFile, `
      const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      if (isMainThread) {
        let done = 0;
        for (let k = 0; k < 3; k++) {
          const w = new Worker(__filename, { workerData: process.argv[2] + '.' + k });
          w.on('message', () => setTimeout(() => w.terminate().then(() => {
            if (++done < 3) return;
            const f = n.H5File.openSync(process.argv[2], 'w');
            f.createDataset('/x', { dtype: 'float64', shape: [1 << 22] });
            f.write('/x', new Float64Array(1 << 22).fill(1));
            f.write('/x', new Float64Array(1 << 22).fill(2));
            setTimeout(() => process.exit(0), 2);
          }), k * 3));
        }
      } else {
        const f = n.H5File.openSync(workerData, 'w');
        f.createDataset('/x', { dtype: 'float64', shape: [1 << 22] });
        for (let i = 0; i < 4; i++) f.write('/x', new Float64Array(1 << 22).fill(i));
        f.close();
        parentPort.postMessage('started');
      }`);
    const r = spawnSync(process.execPath, [scriptFile, base], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    for (const fl of [base, `${base}.0`, `${base}.1`, `${base}.2`]) {
      withFile(fl, 'r', (f) => assert.deepEqual(f.info('/x').shape, [1 << 22]));
    }
  });

  test('open handles left to GC and at exit are closed (worker thread too)', () => {
    const file = fresh('gc');
    const scriptFile = path.join(tmp, 'gc-child.js');
    fs.writeFileSync(scriptFile, `
      const { Worker, isMainThread, workerData } = require('worker_threads');
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      const file = isMainThread ? process.argv[2] : workerData;
      if (isMainThread) new Worker(__filename, { workerData: file + '.w' });
      const f = n.H5File.openSync(file, 'w');
      f.createDataset('/x', { dtype: 'int32', shape: [3] });
      f.writeSync('/x', Int32Array.of(1, 2, 3));
      // no close: the environment's cleanup hook closes it`);
    const r = spawnSync(process.execPath, [scriptFile, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    for (const fl of [file, `${file}.w`]) {
      assert.deepEqual(h5py(`out(h5py.File(sys.argv[1], 'r')['x'][()])`, fl), [1, 2, 3]);
    }
    // A handle dropped without close is closed by its finalizer.
    const gc = vm.runInNewContext('gc') as () => void;
    const dropped = fresh('dropped');
    (() => {
      const f = File.openSync(dropped, 'w');
      f.createGroup('/a');
    })();
    gc();
  });
});

describe('async I/O', () => {
  test('a 64 MiB async write does not stall the event loop; input survives GC', async () => {
    const gc = vm.runInNewContext('gc') as () => void;
    // tmpfs when there is one: the point is the event loop, not the disk's writeback.
    const shm = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/checkpointer-native-') : null;
    if (shm) process.on('exit', () => fs.rmSync(shm, { recursive: true, force: true }));
    const file = shm ? path.join(shm, 'async.h5') : fresh('async');
    const rows = Math.floor((64 << 20) / 200);
    const n = rows * 25;
    const f = await File.open(file, 'w');
    f.createDataset('/x', { dtype: 'float64', shape: [rows, 5, 5], maxshape: [null, 5, 5], chunks: [Math.ceil((2 << 20) / 200), 5, 5] });
    const h = monitorEventLoopDelay({ resolution: 1 });
    let pending: Promise<void>;
    // The only reference to the input is the one the binding holds.
    (() => {
      const data = new Float64Array(n);
      for (let i = 0; i < n; i++) data[i] = i % 1000;
      pending = f.write('/x', data);
    })();
    h.enable();
    let ticks = 0;
    const timer = setInterval(() => { ticks++; gc(); }, 2);
    await pending!;
    clearInterval(timer);
    h.disable();
    assert.ok(h.max / 1e6 < 20, `event loop stalled ${h.max / 1e6} ms`);
    const back = new Float64Array(n);
    await f.read('/x', back);
    let bad = 0;
    for (let i = 0; i < n; i++) if (back[i] !== i % 1000) bad++;
    assert.equal(bad, 0);
    assert.equal(f.openObjectCount(), 0);
    await f.close();
    assert.ok(ticks >= 0);
  });

  test('many queued async jobs settle in order', async () => {
    const f = await File.open(fresh('queue'), 'w');
    for (let i = 0; i < 20; i++) f.createDataset(`/d${i}`, { dtype: 'int32', shape: [1000] });
    const jobs = [];
    for (let i = 0; i < 20; i++) jobs.push(f.write(`/d${i}`, new Int32Array(1000).fill(i)));
    await Promise.all(jobs);
    const reads = Array.from({ length: 20 }, () => new Int32Array(1000));
    await Promise.all(reads.map((r, i) => f.read(`/d${i}`, r)));
    reads.forEach((r, i) => assert.equal(r[999], i));
    await f.close();
  });
});
