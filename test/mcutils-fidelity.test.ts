/**
 * Issue 10, the JSON / npz / HDF5-pickle side: values of every kind as McUtils stores them load
 * with the types Python sees, and what we write loads in Python (json, numpy, pickle as McUtils
 * unpickles) with those types. McUtils itself is not installed in CI: the files are written with
 * plain Python the way McUtils' serializers write them (json + base64 pickles for what json cannot
 * hold, np.savez of 0-d arrays, h5py groups for pseudo-pickles).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Checkpointer, CheckpointerError, hdf5Info, JSONCheckpointer, NDArray, ndarray, NumPyCheckpointer, recordArray,
} from '../lib/index';
import { FLOAT16_AS_BITS, Float16ArrayType, numberToFloat16 } from '../lib/values/dtype';
import { decodePickleData, pickleBytes, unpickleValue } from '../lib/formats/pseudo-pickle';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('mcutils-fidelity-');
let n = 0;
const fresh = (ext: string): string => path.join(dir, `f${n++}${ext}`);

/** Python that pickles as McUtils' PseudoPickler does (b64encode=True for JSON). */
const PICKLER = `
import base64, pickle, json, sys, numpy as np
def pp(obj):
    return {'pseudopickle_protocol': 1, 'pickle_data': base64.b64encode(pickle.dumps(obj)).decode('ascii')}
def scalar(obj):
    # McUtils' serialize() of a numpy scalar json cannot hold: class pickle + state pickle
    return {'class': pp(type(obj)), 'state': pp(obj)}
`;

const HAS_HDF5 = hdf5Info().available;

describe('McUtils JSON: what McUtils writes loads with Python types', () => {
  it('bytes, lists of bytes, numpy scalars, "", "a\\0b" and whole-number floats', async () => {
    const file = fresh('.json');
    runPython(`${PICKLER}
doc = {
  'b': pp(b'ab\\x00c'), 'bempty': pp(b''), 'bl': [pp(b'x'), pp(b'yz')],
  'npbool': scalar(np.bool_(True)), 'npfalse': scalar(np.bool_(False)),
  'npc128': scalar(np.complex128(1 - 2j)), 'npc64': scalar(np.complex64(0.5 + 1j)),
  'npi64_pickled': pp(np.int64(-2**62 - 3)), 'npu8_pickled': pp(np.uint8(200)), 'npf32_pickled': pp(np.float32(1.5)),
  'npf16_pickled': pp(np.float16(0.5)), 'npbe': pp(np.array([7], dtype='>i4')[0]),
  'npf32': float(np.float32(0.1)), 'npi64': int(np.int64(7)),
  'empty': '', 'nul': 'a\\x00b', 'strs': ['a', '', 'b\\x00'],
  'whole': np.array([1.0, 2.0, -0.0]).tolist(), 'negz': -0.0, 'one': 1.0,
}
with open(sys.argv[1], 'w') as f: json.dump(doc, f)
print(json.dumps(0))`, file);
    const c = new JSONCheckpointer(file);
    await c.with(async (c) => {
      assert.deepEqual(await c.get('b'), Buffer.from('ab\0c'));
      assert.ok(Buffer.isBuffer(await c.get('b')));
      assert.deepEqual(await c.get('bempty'), Buffer.alloc(0));
      assert.deepEqual(await c.get('bl'), [Buffer.from('x'), Buffer.from('yz')]);
      assert.equal(await c.get('npbool'), true);
      assert.equal(await c.get('npfalse'), false);
      const z = await c.get('npc128') as NDArray;
      assert.equal(z.dtype, 'complex128');
      assert.deepEqual([...z.shape], []);
      assert.deepEqual([...z.data], [1, -2]);
      const z64 = await c.get('npc64') as NDArray;
      assert.equal(z64.dtype, 'complex64');
      assert.deepEqual([...z64.data], [0.5, 1]);
      assert.equal(await c.get('npi64_pickled'), -(2n ** 62n) - 3n);
      assert.equal(await c.get('npu8_pickled'), 200);
      assert.equal(await c.get('npf32_pickled'), 1.5);
      assert.equal(await c.get('npf16_pickled'), 0.5);
      assert.equal(await c.get('npbe'), 7);
      assert.equal(await c.get('npf32'), Math.fround(0.1));
      assert.equal(await c.get('npi64'), 7);
      assert.equal(await c.get('empty'), '');
      assert.equal(await c.get('nul'), 'a\0b');
      assert.deepEqual(await c.get('strs'), ['a', '', 'b\0']);
      assert.deepEqual(await c.get('whole'), [1, 2, -0]);
      assert.ok(Object.is((await c.get('whole') as number[])[2], -0));
      assert.ok(Object.is(await c.get('negz'), -0));
      assert.equal(await c.get('one'), 1);
    });
  });

  it('a file rewritten after changing one key keeps the float tokens Python wrote in the others', async () => {
    const file = fresh('.json');
    runPython(`import json, sys
json.dump({'whole': [1.0, 2.0], 'mixed': [1, 2.0, 3], 'one': 1.0, 'nested': {'x': [[0.0, 1.0]], 'n': 3}, 'big': 1e300}, open(sys.argv[1], 'w'))
print(json.dumps(0))`, file);
    await new JSONCheckpointer(file).with(async (c) => c.set('added', 1));
    const back = runPython<Record<string, string>>(`import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps({k: repr(v) for k, v in d.items()}))`, file);
    assert.deepEqual(back, {
      whole: '[1.0, 2.0]', mixed: '[1, 2.0, 3]', one: '1.0', nested: "{'x': [[0.0, 1.0]], 'n': 3}", big: '1e+300', added: '1',
    });
  });

  it('pickles that would run code, or hold what this package does not read, are refused with a typed error', async () => {
    const file = fresh('.json');
    runPython(`${PICKLER}
import os
class Evil:
    def __reduce__(self): return (os.system, ('true',))
doc = {'evil': {'pseudopickle_protocol': 1, 'pickle_data': base64.b64encode(pickle.dumps(Evil())).decode()},
       'ld': pp(np.longdouble(1.5)), 'dt': pp(np.datetime64('2020-01-01')), 'garbage': {'pseudopickle_protocol': 1, 'pickle_data': 'bm90IGEgcGlja2xl'}}
json.dump(doc, open(sys.argv[1], 'w'))
print(json.dumps(0))`, file);
    const c = new JSONCheckpointer(file);
    for (const [key, why] of [['evil', /posix\.system|os\.system|does not run/], ['ld', /long double/], ['dt', /datetime|not read/], ['garbage', /pickle/]] as const) {
      assert.throws(() => c.getSync(key), (err: unknown) => {
        assert.ok(err instanceof CheckpointerError, String(err));
        assert.equal(err.code, 'ERR_UNSUPPORTED_VALUE');
        assert.match(err.message, why);
        return true;
      }, key);
    }
  });
});

describe('our JSON in Python: the types McUtils writes', () => {
  it('float arrays of whole numbers load as floats, Buffers as bytes, records as row lists, ints as ints', async () => {
    const file = fresh('.json');
    const f16 = FLOAT16_AS_BITS ? Uint16Array.of(numberToFloat16(1), numberToFloat16(2.5)) : new (Float16ArrayType as Float64ArrayConstructor)([1, 2.5]);
    await new JSONCheckpointer(file).with(async (c) => {
      await c.set('f64', Float64Array.of(1, 2, -0));
      await c.set('f32', ndarray(Float32Array.of(3, 4, 5, 6), [2, 2]));
      await c.set('c128', ndarray(Float64Array.of(1, 0, 0, -1), [2], 'complex128'));
      await c.set('f16', ndarray(f16, [2], 'float16'));
      await c.set('special', Float64Array.of(NaN, Infinity, -Infinity, 1e300, 5e-324));
      await c.set('ints', Int32Array.of(1, 2));
      await c.set('negz', -0);
      await c.set('int', 3);
      await c.set('half', 0.5);
      await c.set('bytes', Buffer.from('ab\0c'));
      await c.set('blist', [Buffer.from('x'), Buffer.alloc(0)]);
      await c.set('rec', recordArray({ id: Int32Array.of(1, 2), x: Float64Array.of(3, 4), name: ['a', 'bc'] }));
    });
    // McUtils' JSONSerializer: json.load, then PseudoPickler.deserialize (pickle.loads of base64 pickle_data)
    const py = runPython<Record<string, string>>(`import json, sys, base64, pickle
def deser(x):
    if isinstance(x, dict) and 'pickle_data' in x: return pickle.loads(base64.b64decode(x['pickle_data']))
    if isinstance(x, list): return [deser(v) for v in x]
    return x
d = json.load(open(sys.argv[1]))
print(json.dumps({k: repr(deser(v)) for k, v in d.items()}))`, file);
    assert.equal(py.f64, '[1.0, 2.0, -0.0]');
    assert.equal(py.f32, '[[3.0, 4.0], [5.0, 6.0]]');
    assert.equal(py.c128, '[[1.0, 0.0], [0.0, -1.0]]');
    assert.equal(py.f16, '[1.0, 2.5]');
    assert.equal(py.special, '[nan, inf, -inf, 1e+300, 5e-324]');
    assert.equal(py.ints, '[1, 2]');
    assert.equal(py.negz, '-0.0');
    assert.equal(py.int, '3');
    assert.equal(py.half, '0.5');
    assert.equal(py.bytes, "b'ab\\x00c'");
    assert.equal(py.blist, "[b'x', b'']");
    assert.equal(py.rec, "[[1, 3.0, 'a'], [2, 4.0, 'bc']]");
    // and back in this package: floats are numbers, bytes are Buffers, records are the row lists
    const c = new JSONCheckpointer(file);
    assert.deepEqual(c.getSync('f64'), [1, 2, -0]);
    assert.deepEqual(c.getSync('bytes'), Buffer.from('ab\0c'));
    assert.deepEqual(c.getSync('rec'), [[1, 3, 'a'], [2, 4, 'bc']]);
  });

  it('the bytes pickle is the one Python writes (protocol 4), and the pickle reader reads what Python pickles', () => {
    const py = runPython<Record<string, string>>(`import pickle, json, numpy as np
vals = {'empty': b'', 'short': b'ab\\x00c', 'long': bytes(range(256)) * 3}
print(json.dumps({k: pickle.dumps(v, protocol=4).hex() for k, v in vals.items()}))`);
    assert.equal(pickleBytes(Buffer.alloc(0)).toString('hex'), py.empty);
    assert.equal(pickleBytes(Buffer.from('ab\0c')).toString('hex'), py.short);
    const long = Buffer.concat([0, 1, 2].map(() => Buffer.from(Array.from({ length: 256 }, (_, i) => i))));
    assert.deepEqual(unpickleValue(Buffer.from(py.long!, 'hex')), long);
    // protocols 2, 3 and 5 and numpy scalars of every kind, both byte orders
    const many = runPython<[string, string][]>(`import pickle, json, numpy as np
out = []
for proto in (2, 3, 4, 5):
    out.append([pickle.dumps(b'xyz', protocol=proto).hex(), 'bytes'])
for v in [np.bool_(True), np.int8(-5), np.uint16(65000), np.int32(-7), np.uint32(4e9), np.int64(2**62), np.uint64(2**64-1),
          np.float16(-1.5), np.float32(0.25), np.float64(-2.5), np.str_('héllo'), np.bytes_(b'ab')]:
    out.append([pickle.dumps(v).hex(), repr(v.item())])
print(json.dumps(out))`);
    const want: unknown[] = [Buffer.from('xyz'), Buffer.from('xyz'), Buffer.from('xyz'), Buffer.from('xyz'),
      true, -5, 65000, -7, 4e9, 2n ** 62n, 2n ** 64n - 1n, -1.5, 0.25, -2.5, 'héllo', Buffer.from('ab')];
    many.forEach(([hex], i) => assert.deepEqual(decodePickleData(Buffer.from(hex!, 'hex'), 'x'), want[i], many[i]![1]));
  });
});

describe('McUtils npz: what its NumPySerializer writes', () => {
  it('"" and "a\\0b" (0-d <U arrays) load exactly; bytes written by us load in numpy as bytes', async () => {
    const file = fresh('.npz');
    runPython(`import numpy as np, sys, json
lit = lambda x: np.array([x]).reshape(())
np.savez(sys.argv[1], **{'empty': lit(''), 'nul': lit('a\\x00b'), 'strs': np.array(['a', '', 'b']), 'whole': lit(1.0), 'i': lit(7),
    'p::>|<::alpha': lit(0.5), 'raw': np.array(b'ab\\x00c'), 'rawlist': np.array([b'x', b'yz'])})
print(json.dumps(0))`, file);
    const c = new NumPyCheckpointer(file);
    assert.equal(c.getSync('empty'), '');
    assert.equal(c.getSync('nul'), 'a\0b');
    assert.deepEqual(c.getSync('strs'), ['a', '', 'b']);
    assert.equal(c.getSync('whole'), 1);
    assert.equal(c.getSync('i'), 7);
    assert.deepEqual(c.getSync('p'), { alpha: 0.5 });
    assert.deepEqual(c.getSync('raw'), Buffer.from('ab\0c'));
    assert.deepEqual(c.getSync('rawlist'), [Buffer.from('x'), Buffer.from('yz')]);

    const ours = fresh('.npz');
    await new NumPyCheckpointer(ours).with(async (o) => {
      await o.set('b', Buffer.from('ab\0c'));
      await o.set('trailing', Buffer.from('ab\0'));
      await o.set('none', Buffer.alloc(0));
      await o.set('list', [Buffer.from('x'), Buffer.from('y\0')]);
      await o.set('empty', '');
      await o.set('nul', 'a\0b');
    });
    const py = runPython<Record<string, string>>(`import numpy as np, sys, json
f = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({k: repr(f[k].item()) + ' ' + f[k].dtype.str for k in f.files}))`, ours);
    assert.equal(py.b, "b'ab\\x00c' |S4");
    assert.equal(py.trailing, "b'ab\\x00' |V3");
    assert.equal(py.none, "b'' |S1");
    assert.equal(py['list::>|<::_list_item_0'], "b'x' |S1");
    assert.equal(py['list::>|<::_list_item_1'], "b'y\\x00' |V2");
    assert.equal(py.empty, "'' <U1");
    assert.equal(py.nul, "'a\\x00b' <U3");
    const back = new NumPyCheckpointer(ours);
    assert.deepEqual(back.getSync('trailing'), Buffer.from('ab\0'));
    assert.deepEqual(back.getSync('none'), Buffer.alloc(0));
    assert.deepEqual(back.getSync('list'), [Buffer.from('x'), Buffer.from('y\0')]);
  });

  it('pseudo-pickled values in an npz (pickle_data members) load as their values', () => {
    const file = fresh('.npz');
    runPython(`${PICKLER}
lit = lambda x: np.array([x]).reshape(())
b = pp(b'ab\\x00'); s = scalar(np.bool_(True))
np.savez(sys.argv[1], **{'b::>|<::pseudopickle_protocol': lit(1), 'b::>|<::pickle_data': lit(b['pickle_data']),
    's::>|<::class::>|<::pseudopickle_protocol': lit(1), 's::>|<::class::>|<::pickle_data': lit(s['class']['pickle_data']),
    's::>|<::pseudopickle_protocol': lit(1),
    's::>|<::state::>|<::pseudopickle_protocol': lit(1), 's::>|<::state::>|<::pickle_data': lit(s['state']['pickle_data'])})
print(json.dumps(0))`, file);
    const c = new NumPyCheckpointer(file);
    assert.deepEqual(c.getSync('b'), Buffer.from('ab\0'));
    assert.equal(c.getSync('s'), true);
  });
});

describe('McUtils HDF5: pseudo-pickled bytes and numpy scalars', { skip: !HAS_HDF5 && 'no HDF5 addon' }, () => {
  it('load as Buffer and as the scalar value', () => {
    const file = fresh('.h5');
    runPython(`${PICKLER}
import h5py
with h5py.File(sys.argv[1], 'w') as f:
    def put(g, d):
        for k, v in d.items():
            if isinstance(v, dict):
                put(g.create_group(k), v)
            else:
                g.create_dataset(k, data=np.bytes_(v) if isinstance(v, str) else v)
    put(f, {'b': pp(b'ab\\x00c'), 'bempty': pp(b''), 'npbool': scalar(np.bool_(True)), 'npc': scalar(np.complex128(2 - 1j))})
    for k in ('npbool', 'npc'): f[k].create_dataset('pseudopickle_protocol', data=1)  # McUtils' HDF5 groups carry it
print(json.dumps(0))`, file);
    const c = Checkpointer.fromFile(file);
    assert.deepEqual(c.getSync('b'), Buffer.from('ab\0c'));
    assert.deepEqual(c.getSync('bempty'), Buffer.alloc(0));
    assert.equal(c.getSync('npbool'), true);
    assert.deepEqual([...(c.getSync('npc') as NDArray).data], [2, -1]);
  });
});
