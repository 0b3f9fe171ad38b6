import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import {
  Checkpointer, CheckpointerError, CheckpointerKeyError, NDArray, ndarray, NumPyCheckpointer, registerClass, UnregisteredObject,
} from '../lib/index';
import { DType, DTYPES, dtypeInfo, FLOAT16_AS_BITS, float16Values, numberToFloat16 } from '../lib/values/dtype';
import { assertMatchesExpected } from './helpers/expected';
import * as roundtrip from './helpers/roundtrip';
import { nameProblem } from '../lib/values/names';
import { assertSame, DataHolderClass, expectedBack } from './helpers/roundtrip';
import { MCUTILS_FIXTURES, runPython, tempDir } from './helpers/python';

// The raw module object (not the import-star copy), so tests can make writes fail.
const fsRaw: typeof import('node:fs') = require('node:fs');

const dir = tempDir('npz-test-');
let n = 0;
const fresh = (ext = '.npz'): string => path.join(dir, `c${n++}${ext}`);
const rand = (count: number): Float64Array => Float64Array.from({ length: count }, () => Math.random());
const open = (file: string, opts: Record<string, unknown> = {}): NumPyCheckpointer => new NumPyCheckpointer(file, { durable: false, ...opts });

function errorCode(err: unknown): string | undefined {
  return err instanceof CheckpointerError ? err.code : undefined;
}

function snapshot(file: string): { bytes: Buffer; mtimeMs: number } {
  return { bytes: fs.readFileSync(file), mtimeMs: fs.statSync(file).mtimeMs };
}

function leftoverTemps(): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}

// ------------------------------------------------------------------------------------ comparison

// ------------------------------------------------------------------------------------ McUtils

describe('NumPyCheckpointer: McUtils fixture', () => {
  const file = path.join(MCUTILS_FIXTURES, 'mcutils.npz');
  const expected = JSON.parse(fs.readFileSync(path.join(MCUTILS_FIXTURES, 'expected.json'), 'utf8'))['mcutils.npz'];

  it('loads every key of mcutils.npz as expected.json says, in file order', async () => {
    const chk = Checkpointer.fromFile(file);
    assert.ok(chk instanceof NumPyCheckpointer);
    await chk.with(async (c) => {
      assert.deepEqual(await c.keys(), Object.keys(expected));
      for (const key of Object.keys(expected)) assertMatchesExpected(await c.get(key), expected[key], key);
      assert.equal(await c.get(['params', 'nested', 'grid']).then((g) => (g as NDArray).dtype), 'float64');
      assert.equal(c.getSync(['params', 'alpha']), 0.1);
    });
    // and through the sync API
    const sync = new NumPyCheckpointer(file);
    sync.withSync((c) => {
      for (const key of Object.keys(expected)) assertMatchesExpected(c.getSync(key), expected[key], key);
    });
  });

  it('reading changes neither the bytes nor the mtime (a read-only fixture)', async () => {
    const before = snapshot(file);
    const chk = new NumPyCheckpointer(file);
    await chk.with(async (c) => {
      await c.keys();
      await c.get('traj');
      assert.equal(await c.has('missing'), false);
      assert.equal(await c.get('missing', 'dflt'), 'dflt');
    });
    assert.deepEqual(snapshot(file), before);
  });

  it("the seed's test_HDF5Problems sequence on .npz", async () => {
    const file = fresh();
    const chk = Checkpointer.fromFile(file);
    const first = rand(1000 * 25);
    const second = rand(1001 * 25);
    const third = rand(1001 * 25);
    const zero = ndarray(BigInt64Array.of(0n), [], 'int64'); // np.array(0)
    await chk.with(async (c) => {
      await c.set('why', [ndarray(first, [1000, 5, 5]), zero, zero]);
    });
    await chk.with(async (c) => {
      await c.set('why', [ndarray(second, [1001, 5, 5]), zero, 0]);
    });
    await chk.with(async (c) => {
      await c.set('why2', [ndarray(third, [1001, 5, 5]), 0, zero]);
    });
    await chk.with(async (c) => {
      assert.deepEqual(await c.keys(), ['why', 'why2']);
      const why = (await c.get('why')) as unknown[];
      assertSame(why, [ndarray(second, [1001, 5, 5]), 0, 0]);
      assertSame(await c.get('why2'), [ndarray(third, [1001, 5, 5]), 0, 0]);
    });
    const py = runPython<{ files: string[]; shape: number[]; first: number }>(`
import json, sys, numpy as np
f = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({'files': f.files, 'shape': list(f['why::>|<::_list_item_0'].shape), 'first': float(f['why::>|<::_list_item_0'][0, 0, 0])}))`, file);
    assert.deepEqual(py.files, [
      'why::>|<::_list_item_0', 'why::>|<::_list_item_1', 'why::>|<::_list_item_2', 'why::>|<::_list_numitems',
      'why2::>|<::_list_item_0', 'why2::>|<::_list_item_1', 'why2::>|<::_list_item_2', 'why2::>|<::_list_numitems',
    ]);
    assert.deepEqual(py.shape, [1001, 5, 5]);
    assert.equal(py.first, second[0]);
  });

  it("McUtils' keyed test: list, dict and a 100-element array; a disallowed key raises and is absent after reopening", async () => {
    const file = fresh();
    const alpha = rand(100);
    const writer = open(file, { allowedKeys: ['keys', 'things', 'alpha'] });
    await writer.with(async (c) => {
      await c.set('keys', ['a', 'b', 'c']);
      await c.set('things', { a: 1, b: 2, c: 3 });
      await c.set('alpha', ndarray(alpha));
      await assert.rejects(c.set('data', [1, 2, 3]), CheckpointerKeyError);
    });
    const reader = open(file);
    await reader.with(async (c) => {
      assert.deepEqual(await c.keys(), ['keys', 'things', 'alpha']);
      assert.equal(await c.has('data'), false);
      await assert.rejects(c.get('data'), (err: unknown) => err instanceof CheckpointerKeyError && errorCode(err) === 'ERR_KEY');
      assert.deepEqual(await c.get('keys'), ['a', 'b', 'c']);
      assert.deepEqual(await c.get('things'), { a: 1, b: 2, c: 3 });
      assertSame(await c.get('alpha'), ndarray(alpha));
    });
    const filtered = open(file, { omittedKeys: ['alpha'] });
    assert.deepEqual(await filtered.keys(), ['keys', 'things']);
    await assert.rejects(filtered.get('alpha'), CheckpointerKeyError);
  });
});

// ------------------------------------------------------------------------------------ numpy interop

describe('NumPyCheckpointer: files numpy reads and writes', () => {
  it('numpy.load(allow_pickle=False) reads every dtype, scalars, strings, nested dicts, lists, objects, None and {}', async () => {
    const file = fresh();
    const arrays: Partial<Record<DType, NDArray>> = {};
    for (const dt of DTYPES) {
      const info = dtypeInfo(dt);
      const data = new info.ArrayType(6 * info.lanes);
      for (let i = 0; i < data.length; i++) {
        if (data instanceof BigInt64Array) data[i] = [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n, 7n][i]!;
        else if (data instanceof BigUint64Array) data[i] = [0n, 2n ** 64n - 1n, 2n ** 63n, 1n, 2n ** 53n + 1n, 9n][i]!;
        else if (dt === 'bool') data[i] = i % 2;
        else if (dt === 'float16' && FLOAT16_AS_BITS) data[i] = numberToFloat16(i * 1.25 - 3);
        else (data as Float64Array)[i] = i * 1.25 - 3;
      }
      arrays[dt] = ndarray(data, [2, 3], dt);
    }
    await open(file).with(async (c) => {
      for (const [dt, a] of Object.entries(arrays)) await c.set(dt, a as NDArray);
      await c.set('typed', Int16Array.of(1, -2, 3));
      await c.set('int', 42);
      await c.set('float', 2.5);
      await c.set('negzero', -0);
      await c.set('big', 2n ** 64n - 1n);
      await c.set('flag', false);
      await c.set('text', 'héllo ☃ 😀');
      await c.set('empty_text', '');
      await c.set('none', null);
      await c.set('nested', { a: { b: ndarray(Float32Array.of(1, 2)) }, c: 'x', e: {} });
      await c.set('mixed', [1, 'two', [3, 4]]);
      await c.set('holder', new DataHolderClass({ x: 1, y: 's' }));
      await c.set('shape0', ndarray(new Float64Array(0), [0, 3]));
    });
    const py = runPython<Record<string, { dtype: string; str: string; shape: number[]; values: unknown }>>(`
import json, sys, base64, numpy as np
f = np.load(sys.argv[1], allow_pickle=False)
out = {}
for k in f.files:
    a = f[k]
    if a.dtype.kind == 'c': vals = [[float(x.real), float(x.imag)] for x in a.flatten()]
    elif a.dtype.kind in 'iu': vals = [str(int(x)) for x in a.flatten()]
    elif a.dtype.kind == 'V': vals = 'void' if a.dtype.names is None else ('record', list(a.dtype.names))
    elif a.dtype.kind == 'f': vals = [repr(float(x)) for x in a.flatten()]
    else: vals = a.flatten().tolist()
    out[k] = {'dtype': a.dtype.name, 'str': a.dtype.str, 'shape': list(a.shape), 'values': vals}
out['_pickle'] = {'dtype': '', 'str': '', 'shape': [], 'values': base64.b64decode(str(f['holder::>|<::class::>|<::pickle_data'])).hex()}
print(json.dumps(out))`, file);
    for (const [dt, a] of Object.entries(arrays) as [DType, NDArray][]) {
      const p = py[dt]!;
      assert.equal(p.dtype, dt);
      assert.deepEqual(p.shape, [2, 3]);
      const want = Array.from({ length: a.size }, (_, i) => {
        if (dtypeInfo(a.dtype).lanes === 2) return [a.data[2 * i], a.data[2 * i + 1]];
        if (a.dtype === 'bool') return a.data[i] !== 0;
        if (/int/.test(dt)) return String(a.data[i]);
        if (a.dtype === 'float16') return repr(float16Values(a.data)[i]!);
        return repr(a.data[i] as number);
      });
      assert.deepEqual(p.values, want, dt);
    }
    assert.deepEqual([py.typed!.dtype, py.typed!.values], ['int16', ['1', '-2', '3']]);
    assert.deepEqual([py.int!.dtype, py.int!.shape, py.int!.values], ['int64', [], ['42']]);
    assert.deepEqual([py.float!.dtype, py.float!.values], ['float64', ['2.5']]);
    assert.deepEqual([py.negzero!.dtype, py.negzero!.values], ['float64', ['-0.0']]);
    assert.deepEqual([py.big!.dtype, py.big!.values], ['uint64', [String(2n ** 64n - 1n)]]);
    assert.deepEqual([py.flag!.dtype, py.flag!.values], ['bool', [false]]);
    assert.deepEqual([py.text!.str, py.text!.values], ['<U9', ['héllo ☃ 😀']]);
    assert.deepEqual([py.empty_text!.str, py.empty_text!.values], ['<U1', ['']]);
    assert.deepEqual([py.none!.str, py.none!.shape, py.none!.values], ['|V0', [], 'void']);
    assert.deepEqual(py['nested::>|<::a::>|<::b']!.values, ['1.0', '2.0']);
    assert.deepEqual(py['nested::>|<::e']!.values, ['record', []]);
    assert.deepEqual(py['mixed::>|<::_list_numitems']!.values, ['3']);
    assert.deepEqual(py['mixed::>|<::_list_item_2::>|<::_list_item_1']!.values, ['4']);
    assert.deepEqual(py['holder::>|<::state::>|<::y']!.values, ['s']);
    assert.deepEqual(py.shape0!.shape, [0, 3]);
    assert.ok(Buffer.from(py._pickle!.values as string, 'hex').includes(Buffer.from('DataHolderClass')));
  });

  it('writes byte for byte what numpy.savez writes for the same arrays', () => {
    const file = fresh();
    const coords = Float64Array.from({ length: 12 }, (_, i) => i);
    open(file).withSync((c) => {
      c.setSync('energy', 1.5);
      c.setSync('n', 7);
      c.setSync('name', 'water');
      c.setSync('coords', ndarray(coords, [4, 3]));
      c.setSync('flags', ndarray(Uint8Array.of(1, 0, 1), [3], 'bool'));
      c.setSync(['params', 'alpha'], 0.1);
    });
    const theirs = fresh();
    runPython(`
import json, sys, numpy as np
np.savez(sys.argv[1], energy=np.array(1.5), n=np.array(7), name=np.array('water'), coords=np.arange(12.).reshape(4, 3),
         flags=np.array([True, False, True]), **{'params::>|<::alpha': np.array(0.1)})
print(json.dumps(0))`, theirs);
    assert.ok(fs.readFileSync(file).equals(fs.readFileSync(theirs)));
  });

  it('reads what numpy wrote: both byte orders, Fortran order, savez_compressed, bool, complex, <U, ZIP64', () => {
    const files = { plain: fresh(), compressed: fresh(), zip64: fresh() };
    const manifest = runPython<Record<string, { dtype: string; shape: number[]; values: unknown[] }>>(`
import json, sys, zipfile, numpy as np
files = json.loads(sys.argv[1])
rng = np.random.default_rng(3)
arrs = {
  'le_f8': rng.standard_normal((3, 4)), 'be_f8': rng.standard_normal((3, 4)).astype('>f8'),
  'be_i8': np.array([[-2**63, 2**63 - 1], [5, -6]], dtype='>i8'), 'le_u2': np.arange(7, dtype='<u2'),
  'be_c16': (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype('>c16'), 'le_c8': np.array([1+2j, -3j], dtype='<c8'),
  'fortran': np.asfortranarray(rng.standard_normal((2, 3, 4))), 'fortran_be_i4': np.asfortranarray(np.arange(12, dtype='>i4').reshape(3, 4)),
  'flags': np.array([[True, False], [False, True]]), 'words': np.array([['alpha', 'be'], ['', 'γδ']]), 'be_words': np.array(['xy', 'z'], dtype='>U2'),
  'scalar_f4': np.float32(0.25) * np.ones((), dtype='<f4'), 'scalar_word': np.array('mot'),
  'nest::>|<::deep::>|<::x': np.arange(3), 'empty': np.zeros((0, 2)),
}
np.savez(files['plain'], **arrs)
np.savez_compressed(files['compressed'], **arrs)
zipfile.ZIP64_LIMIT = 0  # every member, offset and the directory in ZIP64 fields and records
np.savez(files['zip64'], **arrs)
out = {}
for k, a in arrs.items():
    flat = np.ascontiguousarray(a).flatten()
    if a.dtype.kind == 'c': vals = [[float(x.real), float(x.imag)] for x in flat]
    elif a.dtype.kind in 'iu': vals = [str(int(x)) for x in flat]
    else: vals = flat.tolist()
    out[k] = {'dtype': a.dtype.name, 'shape': list(a.shape), 'values': vals}
print(json.dumps(out))`, JSON.stringify(files));
    assert.ok(fs.readFileSync(files.zip64).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])));
    for (const [kind, file] of Object.entries(files)) {
      open(file).withSync((c) => {
        assert.deepEqual(c.keysSync(), ['le_f8', 'be_f8', 'be_i8', 'le_u2', 'be_c16', 'le_c8', 'fortran', 'fortran_be_i4', 'flags', 'words', 'be_words', 'scalar_f4', 'scalar_word', 'nest', 'empty'], kind);
        for (const [k, m] of Object.entries(manifest)) {
          const key = k.split('::>|<::');
          const v = c.getSync(key);
          const where = `${kind}:${k}`;
          if (m.dtype.startsWith('str')) {
            const flat = m.shape.length === 0 ? [v] : (v as unknown[]).flat();
            assert.deepEqual(flat, m.values, where);
            continue;
          }
          if (m.shape.length === 0) {
            assert.equal(v, m.values[0], where);
            continue;
          }
          assert.ok(v instanceof NDArray, where);
          assert.equal(v.dtype, m.dtype, where);
          assert.deepEqual([...v.shape], m.shape, where);
          const info = dtypeInfo(v.dtype as DType);
          const got = Array.from({ length: v.size }, (_, i) => {
            if (info.lanes === 2) return [v.data[2 * i], v.data[2 * i + 1]];
            if (v.dtype === 'bool') return v.data[i] !== 0;
            if (info.kind === 'i' || info.kind === 'u') return String(v.data[i]);
            return v.data[i];
          });
          assert.deepEqual(got, m.values, where);
        }
        assert.deepEqual(Object.keys(c.getSync('nest') as object), ['deep']);
      });
    }
  });

  it('keeps unchanged members as they were: a savez_compressed member is copied, still deflated', () => {
    const file = fresh();
    runPython(`
import json, sys, numpy as np
np.savez_compressed(sys.argv[1], a=np.zeros(10000), b=np.arange(5))
print(json.dumps(0))`, file);
    open(file).withSync((c) => {
      c.setSync('c', 'new');
      c.deleteSync('b');
    });
    const py = runPython<{ types: Record<string, number>; a: number; c: string; bad: string | null }>(`
import json, sys, zipfile, numpy as np
z = zipfile.ZipFile(sys.argv[1])
f = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({'types': {i.filename: i.compress_type for i in z.infolist()}, 'a': float(f['a'].sum()), 'c': str(f['c']), 'bad': z.testzip()}))`, file);
    assert.deepEqual(py.types, { 'a.npy': 8, 'c.npy': 0 });
    assert.equal(py.a, 0);
    assert.equal(py.c, 'new');
    assert.equal(py.bad, null);
  });

  it('refuses object arrays on get (ERR_UNSUPPORTED_DTYPE) and still reads the other members', () => {
    const file = fresh();
    runPython(`
import json, sys, numpy as np
np.savez(sys.argv[1], ok=np.arange(3), obj=np.array([1, 'x', None], dtype=object))
print(json.dumps(0))`, file);
    open(file).withSync((c) => {
      assert.deepEqual(c.keysSync(), ['ok', 'obj']);
      assert.throws(() => c.getSync('obj'), (err: unknown) => errorCode(err) === 'ERR_UNSUPPORTED_DTYPE' && (err as CheckpointerError).file === file);
      assertSame(c.getSync('ok'), ndarray(BigInt64Array.of(0n, 1n, 2n)));
    });
  });
});

// ------------------------------------------------------------------------------------ behaviour

describe('NumPyCheckpointer: keys, nesting, lists, objects', () => {
  it('nested key paths address nested dicts; keys() keeps first-set order; a rewritten key keeps its place', async () => {
    const file = fresh();
    await open(file).with(async (c) => {
      await c.set('z', 1);
      await c.set(['params', 'alpha'], 0.5);
      await c.set('a', 'x');
      await c.set(['params', 'nested', 'grid'], ndarray(rand(6), [2, 3]));
      await c.set(['params', 'label'], 'run');
      await c.set('z', [1, 2]);
    });
    await open(file).with(async (c) => {
      assert.deepEqual(await c.keys(), ['z', 'params', 'a']);
      const params = (await c.get('params')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(params), ['alpha', 'nested', 'label']);
      assert.equal(await c.get(['params', 'alpha']), 0.5);
      assert.deepEqual(Object.keys((await c.get(['params', 'nested'])) as object), ['grid']);
      assert.deepEqual(await c.get('z'), [1, 2]);
      assert.equal(await c.has(['params', 'nope']), false);
      assert.equal(await c.has(['a', 'b']), false);
      await assert.rejects(c.set(['a', 'b'], 1), CheckpointerKeyError); // 'a' holds a string
      await assert.rejects(c.set(['z', 'b'], 1), CheckpointerKeyError); // 'z' holds a list
      await assert.rejects(c.get(['z', '_list_item_0']), CheckpointerKeyError); // a path does not lead into a list
      // Overwriting a nested key keeps it in place.
      await c.set(['params', 'alpha'], { deeper: true });
    });
    const params = (await open(file).get('params')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(params), ['alpha', 'nested', 'label']);
    assert.deepEqual(params.alpha, { deeper: true });
  });

  it('delete removes a key or a nested key; an emptied dict stays as {}', () => {
    const file = fresh();
    open(file).withSync((c) => {
      c.setSync('a', 1);
      c.setSync('b', { x: 1, y: { z: 2 } });
      c.setSync('c', [1, 2]);
    });
    open(file).withSync((c) => {
      assert.equal(c.deleteSync('a'), true);
      assert.equal(c.deleteSync('a'), false);
      assert.equal(c.deleteSync(['b', 'x']), true);
      assert.equal(c.deleteSync(['b', 'y', 'z']), true);
      assert.equal(c.deleteSync(['c', '_list_item_0']), false);
      assert.deepEqual(c.getSync('b'), { y: {} });
    });
    open(file).withSync((c) => {
      assert.deepEqual(c.keysSync(), ['b', 'c']);
      assert.deepEqual(c.getSync('b'), { y: {} });
      c.setSync(['b', 'y', 'w'], 3); // {} becomes the dict holding w
      assert.deepEqual(c.getSync('b'), { y: { w: 3 } });
    });
    assert.deepEqual(open(file).getSync('b'), { y: { w: 3 } });
  });

  it('registered classes round trip; an unregistered class comes back as UnregisteredObject and is written back the same', () => {
    class Unknown {
      constructor(readonly v: unknown) {}
      toState(): unknown { return { v: this.v }; }
      static fromState(s: { v: unknown }): Unknown { return new Unknown(s.v); }
    }
    registerClass('tests.Unknown', Unknown);
    const file = fresh();
    open(file).withSync((c) => {
      c.setSync('holder', new DataHolderClass({ x: 1, y: 's', arr: ndarray(Int32Array.of(1, 2)) }));
      c.setSync('list', [new DataHolderClass({ z: null }), new Unknown('w')]);
    });
    const back = open(file).getSync('holder');
    assert.ok(back instanceof DataHolderClass);
    assertSame(back.toState(), { x: 1, y: 's', arr: ndarray(Int32Array.of(1, 2)) });
    const list = open(file).getSync('list') as unknown[];
    assert.ok(list[0] instanceof DataHolderClass);
    assert.ok(list[1] instanceof Unknown);
    // Python sees McUtils' pseudo-pickle: the class pickle names tests.Unknown.
    const py = runPython<string>(`
import json, sys, base64, numpy as np
f = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps(base64.b64decode(str(f['list::>|<::_list_item_1::>|<::class::>|<::pickle_data'])).hex()))`, file);
    assert.ok(Buffer.from(py, 'hex').includes(Buffer.from('Unknown')));
  });

  it('refuses what .npz cannot hold (names: TypeError; values: ERR_UNSUPPORTED_VALUE), before anything is written', () => {
    const file = fresh();
    open(file).withSync((c) => c.setSync('keep', 1));
    const before = snapshot(file);
    const chk = open(file);
    chk.withSync((c) => {
      for (const [key, value] of [
        ['a', { ok: 1, deep: [1, { bad: 'ends in NUL\0' }] }],
        ['b', 2n ** 64n],
      ] as [string, unknown][]) {
        assert.throws(() => c.setSync(key, value), (err: unknown) => errorCode(err) === 'ERR_UNSUPPORTED_VALUE', key);
        assert.equal(c.hasSync(key), false);
      }
      for (const [key, value] of [
        ['c', { 'x::>|<::y': 1 }],
        ['d', { _list_numitems: 3 }],
        ['e', { _list_item_0: 3 }],
        ['f', { '': 3 }],
        ['g', { 'nul\0': 3 }],
      ] as [string, unknown][]) {
        assert.throws(() => c.setSync(key, value), TypeError, key);
        assert.equal(c.hasSync(key), false);
      }
      assert.throws(() => c.setSync(['p', 'q::>|<::r'], 1), TypeError);
      assert.throws(() => c.setSync('e', { f: () => 1 }), TypeError); // not storable at all (the base checks)
    });
    assert.deepEqual(snapshot(file), before, 'nothing was set, so nothing was rewritten');
  });

  it('.npy: one array under the key arr_0; numpy reads it; lists refused; deleting it removes the file', () => {
    const file = fresh('.npy');
    const chk = Checkpointer.fromFile(file, { durable: false });
    assert.ok(chk instanceof NumPyCheckpointer);
    assert.equal(chk.format, 'npy');
    assert.deepEqual(chk.keysSync(), []);
    assert.equal(fs.existsSync(file), false, 'reading does not create the file');
    const data = ndarray(rand(12), [3, 4]);
    chk.withSync((c) => {
      c.setSync('positions', data);
      assert.deepEqual(c.keysSync(), ['arr_0']);
      assertSame(c.getSync('arr_0'), data);
      assert.throws(() => c.getSync('positions'), (err: unknown) => err instanceof CheckpointerKeyError && /arr_0/.test((err as Error).message));
      assert.throws(() => c.setSync('x', [1, 2]), (err: unknown) => errorCode(err) === 'ERR_UNSUPPORTED_VALUE');
      assert.throws(() => c.setSync(['x', 'y'], 1), (err: unknown) => errorCode(err) === 'ERR_UNSUPPORTED_VALUE');
    });
    const py = runPython<{ shape: number[]; first: number }>(`
import json, sys, numpy as np
a = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({'shape': list(a.shape), 'first': float(a[0, 0])}))`, file);
    assert.deepEqual(py, { shape: [3, 4], first: data.data[0] });
    assertSame(chk.getSync('arr_0'), data);
    // numpy's own .npy, Fortran order and big-endian
    runPython(`
import json, sys, numpy as np
np.save(sys.argv[1], np.asfortranarray(np.arange(6, dtype='>i4').reshape(2, 3)))
print(json.dumps(0))`, file);
    assertSame(chk.getSync('arr_0'), ndarray(Int32Array.of(0, 1, 2, 3, 4, 5), [2, 3]));
    chk.withSync((c) => c.setSync('s', 'text'));
    assert.equal(chk.getSync('arr_0'), 'text');
    chk.withSync((c) => assert.equal(c.deleteSync('arr_0'), true));
    assert.equal(fs.existsSync(file), false);
  });

  it('async and sync APIs agree; concurrent gets are served in order', async () => {
    const file = fresh();
    const big = ndarray(rand(3 * 1024 * 1024 / 8 * 4), [4, 3 * 1024 * 1024 / 8]); // 12 MiB: several read chunks
    const chk = open(file);
    await chk.with(async (c) => {
      await Promise.all([c.set('big', big), c.set('small', [1, 'a']), c.set(['d', 'e'], null)]);
    });
    const values = await Promise.all([chk.get('big'), chk.get('small'), chk.get('d'), chk.keys()]);
    assertSame(values[0], big);
    assert.deepEqual(values.slice(1), [[1, 'a'], { e: null }, ['big', 'small', 'd']]);
    assertSame(chk.getSync('big'), big);
  });
});

// ------------------------------------------------------------------------------------ atomicity

describe('NumPyCheckpointer: atomic rewrites and corrupt files', () => {
  it('a failure in the middle of the rewrite leaves the previous file byte-identical (sync)', () => {
    const file = fresh();
    open(file).withSync((c) => {
      c.setSync('a', ndarray(rand(100000)));
      c.setSync('b', 'kept');
    });
    const before = snapshot(file);
    const chk = open(file);
    chk.openSync();
    chk.setSync('c', ndarray(rand(3 * 1024 * 1024)));
    const original = fsRaw.writeSync;
    let calls = 0;
    fsRaw.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
      if (++calls === 4) throw Object.assign(new Error('simulated disk failure'), { code: 'EIO' });
      return (original as (...a: unknown[]) => number)(...args);
    }) as typeof fs.writeSync;
    try {
      assert.throws(() => chk.closeSync(), (err: unknown) => errorCode(err) === 'ERR_IO' && /simulated/.test(String((err as Error).message)));
    } finally {
      fsRaw.writeSync = original;
    }
    assert.deepEqual(snapshot(file), before);
    assert.deepEqual(leftoverTemps(), []);
    assert.equal(chk.isOpen, true, 'the checkpoint stays open with its data, so the close can be retried');
    chk.closeSync();
    assert.deepEqual(open(file).keysSync(), ['a', 'b', 'c']);
  });

  it('a failure in the middle of the rewrite leaves the previous file byte-identical (async)', async () => {
    const file = fresh();
    await open(file).set('a', ndarray(rand(1000)));
    const before = snapshot(file);
    const chk = open(file);
    await chk.open();
    await chk.set('b', ndarray(rand(4 * 1024 * 1024)));
    const original = fsRaw.write;
    let calls = 0;
    fsRaw.write = ((...args: unknown[]) => {
      if (++calls === 3) {
        const cb = args[args.length - 1] as (err: Error) => void;
        process.nextTick(() => cb(Object.assign(new Error('simulated async failure'), { code: 'EIO' })));
        return;
      }
      (original as (...a: unknown[]) => void)(...args);
    }) as typeof fs.write;
    try {
      await assert.rejects(chk.close(), (err: unknown) => errorCode(err) === 'ERR_IO');
    } finally {
      fsRaw.write = original;
    }
    assert.deepEqual(snapshot(file), before);
    assert.deepEqual(leftoverTemps(), []);
    await chk.close();
    assert.deepEqual(await open(file).keys(), ['a', 'b']);
  });

  it('an array whose buffer was detached before the close is refused; the file stays as it was', () => {
    const file = fresh();
    open(file).withSync((c) => c.setSync('a', 1));
    const before = snapshot(file);
    const arr = rand(1000);
    const chk = open(file);
    chk.openSync();
    chk.setSync('x', ndarray(arr));
    structuredClone(arr.buffer, { transfer: [arr.buffer as ArrayBuffer] }); // detaches arr
    assert.throws(() => chk.closeSync(), (err: unknown) => errorCode(err) === 'ERR_UNSUPPORTED_VALUE');
    assert.deepEqual(snapshot(file), before);
    chk.deleteSync('x');
    chk.closeSync();
    assert.deepEqual(open(file).keysSync(), ['a']);
  });

  it('truncated or garbage files are ERR_CHECKPOINT_CORRUPT naming the file, and are never overwritten', async () => {
    const good = fresh();
    open(good).withSync((c) => {
      c.setSync('a', ndarray(rand(2000)));
      c.setSync('b', 2);
    });
    const raw = fs.readFileSync(good);
    for (const [what, bytes] of [
      ['truncated', raw.subarray(0, raw.length - 30)],
      ['half', raw.subarray(0, raw.length >> 1)],
      ['garbage', Buffer.from('definitely not a zip archive '.repeat(10))],
      ['npy renamed .npz', Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]), Buffer.alloc(100)])],
    ] as [string, Buffer][]) {
      const file = fresh();
      fs.writeFileSync(file, bytes);
      const before = snapshot(file);
      const chk = open(file);
      const isCorrupt = (err: unknown): boolean => errorCode(err) === 'ERR_CHECKPOINT_CORRUPT'
        && (err as CheckpointerError).file === file && (err as Error).message.includes(file);
      assert.throws(() => chk.keysSync(), isCorrupt, what);
      await assert.rejects(chk.set('x', 1), isCorrupt, what);
      assert.throws(() => chk.setSync('x', 1), isCorrupt, what);
      assert.equal(chk.isOpen, false);
      assert.deepEqual(snapshot(file), before, what);
    }
    const badNpy = fresh('.npy');
    fs.writeFileSync(badNpy, Buffer.from('not an npy'));
    assert.throws(() => open(badNpy).keysSync(), (err: unknown) => errorCode(err) === 'ERR_CHECKPOINT_CORRUPT');
  });

  it('a damaged member fails only its own get (members are read lazily); an empty file is an empty checkpoint', () => {
    const file = fresh();
    open(file).withSync((c) => {
      c.setSync('a', ndarray(Float64Array.from({ length: 1000 }, () => 1)));
      c.setSync('b', ndarray(Float64Array.from({ length: 1000 }, () => 2)));
    });
    const raw = fs.readFileSync(file);
    const at = raw.indexOf(Buffer.from(Float64Array.of(2).buffer));
    raw[at + 100] ^= 0xff;
    fs.writeFileSync(file, raw);
    open(file).withSync((c) => {
      assert.deepEqual(c.keysSync(), ['a', 'b']);
      assert.equal((c.getSync('a') as NDArray).data[999], 1);
      assert.throws(() => c.getSync('b'), (err: unknown) => errorCode(err) === 'ERR_CHECKPOINT_CORRUPT' && /CRC/.test((err as Error).message));
    });
    const empty = fresh();
    fs.writeFileSync(empty, '');
    assert.deepEqual(open(empty).keysSync(), []);
  });

  it('a missing file reads as empty and is not created by reads', async () => {
    const file = fresh();
    const chk = open(file);
    assert.deepEqual(await chk.keys(), []);
    assert.equal(await chk.has('a'), false);
    await assert.rejects(chk.get('a'), CheckpointerKeyError);
    assert.equal(chk.getSync('a', 5), 5);
    assert.equal(fs.existsSync(file), false);
  });
});

// ------------------------------------------------------------------------------------ properties

const valueArb = roundtrip.valueArb({
  name: (k) => nameProblem(k, 'npz') === null,
  text: (s) => !s.endsWith('\0'),
});

describe('NumPyCheckpointer: property-based round trips', () => {
  it('any storable value comes back by the fidelity rules, after a reopen', () => {
    fc.assert(fc.property(valueArb, (value) => {
      const file = fresh();
      open(file).withSync((c) => c.setSync('v', value));
      assertSame(open(file).getSync('v'), expectedBack(value, 'npz'));
      // a second, unrelated key does not disturb it, and the raw copy on rewrite keeps it intact
      open(file).withSync((c) => c.setSync('w', 1));
      assertSame(open(file).getSync('v'), expectedBack(value, 'npz'));
      fs.rmSync(file, { force: true });
    }), { numRuns: 150 });
  });

  it('sequences of set/delete on nested keys match an in-memory model, in key order', () => {
    const keyArb = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 2 });
    const opArb = fc.oneof(
      fc.record({ op: fc.constant('set' as const), key: keyArb, value: fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null)) }),
      fc.record({ op: fc.constant('delete' as const), key: keyArb }),
      fc.record({ op: fc.constant('reopen' as const) }),
    );
    fc.assert(fc.property(fc.array(opArb, { maxLength: 12 }), (ops) => {
      const file = fresh();
      const model = new Map<string, unknown>();
      let chk = open(file);
      chk.openSync();
      for (const o of ops) {
        if (o.op === 'reopen') {
          chk.closeSync();
          chk = open(file);
          chk.openSync();
          continue;
        }
        const [top, sub] = o.key as [string, string?];
        if (o.op === 'set') {
          const cur = model.get(top);
          const isDict = cur !== null && typeof cur === 'object';
          if (sub !== undefined && model.has(top) && !isDict) {
            assert.throws(() => chk.setSync(o.key, o.value), CheckpointerKeyError);
            continue;
          }
          chk.setSync(o.key, o.value);
          if (sub === undefined) model.set(top, o.value);
          else if (isDict) (cur as Record<string, unknown>)[sub] = o.value;
          else model.set(top, { [sub]: o.value });
        } else {
          const cur = model.get(top);
          const present = sub === undefined ? model.has(top)
            : cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, sub);
          assert.equal(chk.deleteSync(o.key), present);
          if (present) {
            if (sub === undefined) model.delete(top);
            else delete (cur as Record<string, unknown>)[sub];
          }
        }
      }
      chk.closeSync();
      const back = open(file);
      assert.deepEqual(back.keysSync(), [...model.keys()]);
      for (const [k, v] of model) assert.deepEqual(back.getSync(k), v);
      fs.rmSync(file, { force: true });
    }), { numRuns: 150 });
  });
});

function repr(x: number): string {
  // Python's repr of a float, for the values the tests use.
  if (Object.is(x, -0)) return '-0.0';
  return Number.isInteger(x) ? `${x}.0` : String(x);
}

