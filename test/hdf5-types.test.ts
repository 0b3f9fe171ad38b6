/**
 * HDF5's type system as Python users meet it (issue 10): what h5py writes — compound (nested, array
 * members, fixed and variable-length strings, enums, opaque, big-endian), enums, H5T_ARRAY,
 * variable-length sequences, float16, long double, references, opaque, bitfield, padded strings —
 * read as the values h5py 3.7 gives; what we write (RecordArray, EnumArray, float16, Buffer, '' and
 * text with NUL) read back by h5py with the same numpy dtype and values; record datasets through
 * dataset handles; attributes of every type; and the corpus files read key by key with no untyped
 * error.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer, CheckpointerError, EnumArray, NDArray, RecordArray, float16ToNumber } from '../lib/index';
import { float16Values } from '../lib/values/dtype';
import { ndarray } from '../lib/values/ndarray';

/** A float16 NDArray from binary16 bit patterns, in whichever class this Node holds float16 in. */
function f16(bits: readonly number[], shape: readonly number[]): NDArray {
  return ndarray(bits.map(float16ToNumber), shape, 'float16');
}
import { loadNative } from '../lib/native';
import { attrValueOf } from '../lib/backends/hdf5-types';
import { h5py } from './helpers/h5py';
import { SHARED, tempDir } from './helpers/python';

const dir = tempDir('checkpointer-hdf5-types-');
let n = 0;
const fresh = (name: string): string => path.join(dir, `${name}-${n++}.h5`);

function expectCode(fn: () => unknown, code: string, message?: RegExp): CheckpointerError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CheckpointerError, `expected a CheckpointerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function expectCodeAsync(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CheckpointerError, `expected a CheckpointerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const values = (a: NDArray): unknown => a.toList();

// ------------------------------------------------------------------------------------- reading

describe('reading what h5py writes', () => {
  const file = fresh('from-h5py');
  h5py(`
f = h5py.File(sys.argv[1], 'w')
point = np.dtype([('x', '<f4'), ('y', '<f4')])
color = h5py.enum_dtype({'RED': 0, 'GREEN': 1, 'BLUE': 2}, basetype='u1')
dt = np.dtype([('id', '<i8'), ('pos', '<f8', (3,)), ('name', 'S6'), ('label', h5py.string_dtype()), ('c', color), ('raw', 'V3'), ('pt', point), ('grid', '<i2', (2, 2))])
a = np.zeros(3, dtype=dt)
a['id'] = [1, -2, 2**40]
a['pos'] = [[0.5, 1, 2], [3, 4, 5], [6, 7, 8]]
a['name'] = [b'alpha', b'', b'gamma']
a['label'] = ['one', 'twø', '']
a['c'] = [0, 2, 1]
a['raw'] = [b'\\x01\\x02\\x03', b'\\x00\\x00\\x00', b'\\xff\\x00\\x7f']
a['pt'] = [(1, 2), (3, 4), (5, 6)]
a['grid'] = np.arange(12).reshape(3, 2, 2)
f['table'] = a
be = np.zeros(2, dtype=[('a', '>i4'), ('b', '>f8')]); be['a'] = [1, -7]; be['b'] = [1.5, -2.25]
f['bigendian'] = be
f['record0'] = np.array((5, 2.5), dtype=[('k', '<i4'), ('v', '<f8')])
f.create_dataset('state', data=np.array([[0, 1], [2, 1]], dtype='i2'), dtype=h5py.enum_dtype({'OFF': 0, 'ON': 1, 'HOT': 2}, basetype='i2'))
f.create_dataset('state_be', data=np.array([3, 1], dtype='>i4'), dtype=h5py.enum_dtype({'A': 1, 'B': 3}, basetype='>i4'))
f.create_dataset('arr', (4,), dtype=np.dtype(('<f4', (3, 2))))[...] = np.arange(24, dtype='<f4').reshape(4, 3, 2)
v = f.create_dataset('vlen', (3,), dtype=h5py.vlen_dtype(np.dtype('<i4')))
v[0] = [1, 2, 3]; v[1] = []; v[2] = [7]
w = f.create_dataset('vlen2d', (2, 2), dtype=h5py.vlen_dtype(np.dtype('<f8')))
w[0, 0] = [0.5]; w[0, 1] = [1, 2]; w[1, 0] = []; w[1, 1] = [3, 4, 5]
f.create_dataset('vlen0', (), dtype=h5py.vlen_dtype(np.dtype('u1')))[()] = np.array([9, 8], dtype='u1')
vs = f.create_dataset('vlenS', (2,), dtype=h5py.vlen_dtype(np.dtype('S2')))
vs[0] = np.array([b'a', b'bc'], 'S2'); vs[1] = np.array([], 'S2')
f['h16'] = np.array([1.0, -2.5, 65504, np.inf], dtype='<f2')
f['h16be'] = np.array([[0.5, 3]], dtype='>f2')
f['h16scalar'] = np.float16(0.1)
f['ld'] = np.array([1.5, -1e300, 3], dtype=np.longdouble)
f['opaque0'] = np.void(b'\\x00\\x01\\x02')
f['opaque'] = np.array([b'ab', b'\\x00c'], dtype='V2')
g = f.create_group('grp')
g['target'] = np.arange(3)
r = f.create_dataset('refs', (3,), dtype=h5py.ref_dtype)
r[0] = g.ref; r[1] = g['target'].ref
f.create_dataset('regrefs', (1,), dtype=h5py.regionref_dtype)[0] = g['target'].regionref[0:2]
tid = h5py.h5t.C_S1.copy(); tid.set_size(4); tid.set_strpad(h5py.h5t.STR_SPACEPAD)
sp = h5py.h5d.create(f.id, b'spacepad', tid, h5py.h5s.create_simple((3,)))
sp.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([b'ab  ', b'\\x00\\x00\\x00\\x00', b'x   '], dtype='S4'))
f['notutf8'] = np.bytes_(b'\\x80\\x04\\x95.')
f['ascii'] = np.bytes_(b'hello')
f['vstr'] = 'héllo'
f.attrs['rec'] = np.array([(1, b'ab'), (2, b'cd')], dtype=[('i', '<i4'), ('s', 'S2')])
f.attrs.create('en', np.array([1, 0], dtype='u1'), dtype=h5py.enum_dtype({'NO': 0, 'YES': 1}, basetype='u1'))
f.attrs['h16'] = np.array([1.5, 2], dtype='<f2')
f.attrs['h16s'] = np.float16(-0.5)
f.attrs.create('arr', np.arange(6, dtype='<i4').reshape(1, 3, 2)[0], dtype=np.dtype(('<i4', (2,))))
f.attrs.create('vl', np.array([np.array([1, 2], 'i4'), np.array([3], 'i4')], dtype=object), dtype=h5py.vlen_dtype('i4'))
f.attrs['ref'] = g.ref
f.attrs['opq'] = np.void(b'\\x01\\x02')
f.attrs['bytes'] = np.bytes_(b'\\xff\\x00\\x01')
f.close()
`, file);

  test('compound → RecordArray: numbers, array fields, fixed and vlen strings, enum, opaque, nested, field order', async () => {
    const chk = Checkpointer.fromFile(file);
    const t = await chk.get('table') as RecordArray;
    assert.ok(t instanceof RecordArray);
    assert.deepEqual(t.shape, [3]);
    assert.deepEqual(t.names, ['id', 'pos', 'name', 'label', 'c', 'raw', 'pt', 'grid']);
    assert.deepEqual(values(t.column('id') as NDArray), [1n, -2n, 2n ** 40n]);
    assert.deepEqual((t.column('pos') as NDArray).shape, [3, 3]);
    assert.deepEqual(values(t.column('pos') as NDArray), [[0.5, 1, 2], [3, 4, 5], [6, 7, 8]]);
    assert.deepEqual(t.column('name'), ['alpha', '', 'gamma']);
    assert.deepEqual(t.fields[2]!.type, { kind: 'string', length: 6, encoding: 'ascii' });
    assert.deepEqual(t.column('label'), ['one', 'twø', '']);
    assert.equal((t.fields[3]!.type as { variable?: boolean }).variable, true);
    const c = t.column('c') as EnumArray;
    assert.ok(c instanceof EnumArray);
    assert.deepEqual(c.members, { RED: 0, GREEN: 1, BLUE: 2 });
    assert.deepEqual(c.toNames(), ['RED', 'BLUE', 'GREEN']);
    assert.deepEqual((t.column('raw') as Uint8Array[]).map((b) => [...b]), [[1, 2, 3], [0, 0, 0], [255, 0, 127]]);
    const pt = t.column('pt') as RecordArray;
    assert.ok(pt instanceof RecordArray);
    assert.deepEqual(pt.toList(), [{ x: 1, y: 2 }, { x: 3, y: 4 }, { x: 5, y: 6 }]);
    assert.deepEqual((t.column('grid') as NDArray).shape, [3, 2, 2]);
    assert.deepEqual(t.row(1).grid, [[4, 5], [6, 7]]);
  });

  test('big-endian compound fields come back in native order; a 0-d compound is a 0-d RecordArray', async () => {
    const chk = Checkpointer.fromFile(file);
    const be = await chk.get('bigendian') as RecordArray;
    assert.deepEqual(be.toList(), [{ a: 1, b: 1.5 }, { a: -7, b: -2.25 }]);
    const r0 = await chk.get('record0') as RecordArray;
    assert.deepEqual(r0.shape, []);
    assert.deepEqual(r0.toList(), { k: 5, v: 2.5 });
  });

  test('enums → EnumArray with the mapping h5py.check_enum_dtype gives (either byte order)', async () => {
    const chk = Checkpointer.fromFile(file);
    const s = await chk.get('state') as EnumArray;
    assert.ok(s instanceof EnumArray);
    assert.equal(s.dtype, 'int16');
    assert.deepEqual(s.toList(), [[0, 1], [2, 1]]);
    assert.deepEqual(s.members, h5py(`out(h5py.check_enum_dtype(h5py.File(sys.argv[1], 'r')['state'].dtype))`, file));
    const b = await chk.get('state_be') as EnumArray;
    assert.equal(b.dtype, 'int32');
    assert.deepEqual(b.toList(), [3, 1]);
    assert.deepEqual(b.members, { A: 1, B: 3 });
  });

  test('H5T_ARRAY → extra trailing axes; variable-length sequences → NDArrays nested by shape', async () => {
    const chk = Checkpointer.fromFile(file);
    const a = await chk.get('arr') as NDArray;
    assert.deepEqual(a.shape, [4, 3, 2]);
    assert.deepEqual(a.toList(), h5py(`out(h5py.File(sys.argv[1], 'r')['arr'][()])`, file));
    const v = await chk.get('vlen') as NDArray[];
    assert.deepEqual(v.map((x) => [x.dtype, x.toList()]), [['int32', [1, 2, 3]], ['int32', []], ['int32', [7]]]);
    const v2 = await chk.get('vlen2d') as NDArray[][];
    assert.deepEqual(v2.map((row) => row.map((x) => x.toList())), [[[0.5], [1, 2]], [[], [3, 4, 5]]]);
    const v0 = await chk.get('vlen0') as NDArray;
    assert.deepEqual([v0.dtype, v0.toList()], ['uint8', [9, 8]]);
    // sequences of fixed-length strings (PyTables' string VLArrays): a string[] per item, as h5py's
    // arrays of S (h5py 3.7 itself fails on the empty one: "Cannot create cython.array from NULL pointer")
    assert.deepEqual(await chk.get('vlenS'), [['a', 'bc'], []]);
  });

  test('float16 (either byte order, 0-d too) → dtype float16; long double → float64', async () => {
    const chk = Checkpointer.fromFile(file);
    const h = await chk.get('h16') as NDArray;
    assert.equal(h.dtype, 'float16');
    assert.deepEqual(h.toList(), [1, -2.5, 65504, Infinity]);
    const hb = await chk.get('h16be') as NDArray;
    assert.deepEqual([hb.dtype, hb.toList()], ['float16', [[0.5, 3]]]);
    assert.equal(await chk.get('h16scalar'), float16ToNumber(0x2e66)); // float16(0.1)
    const ld = await chk.get('ld') as NDArray;
    assert.equal(ld.dtype, 'float64');
    assert.deepEqual(ld.toList(), [1.5, -1e300, 3]);
  });

  test('opaque → Buffer (0-d) / Buffers; object references → paths (null for a null one); region references refused', async () => {
    const chk = Checkpointer.fromFile(file);
    const o = await chk.get('opaque0');
    assert.ok(Buffer.isBuffer(o));
    assert.deepEqual([...o], [0, 1, 2]);
    const os = await chk.get('opaque') as Buffer[];
    assert.deepEqual(os.map((b) => [...b]), [[0x61, 0x62], [0, 0x63]]);
    assert.deepEqual(await chk.get('refs'), ['/grp', '/grp/target', null]);
    await expectCodeAsync(chk.get('regrefs'), 'ERR_UNSUPPORTED_DTYPE', /regrefs holds HDF5 region references/);
  });

  test('fixed-length strings: SPACEPAD strips spaces then NULs (all-NUL is \'\'); data that is not UTF-8 is a Buffer', async () => {
    const chk = Checkpointer.fromFile(file);
    assert.deepEqual(await chk.get('spacepad'), ['ab', '', 'x']);
    assert.deepEqual(h5py(`out([x.decode() for x in h5py.File(sys.argv[1], 'r')['spacepad'][()]])`, file), ['ab', '', 'x']);
    const b = await chk.get('notutf8');
    assert.ok(Buffer.isBuffer(b));
    assert.deepEqual([...b], [0x80, 0x04, 0x95, 0x2e]);
    assert.equal(await chk.get('ascii'), 'hello');
    assert.equal(await chk.get('vstr'), 'héllo');
  });

  test('attributes of every type decode as the datasets do', () => {
    const native = loadNative();
    const f = native.H5File.openSync(file, 'r');
    try {
      const [entries] = f.execSync([{ op: 'attrs', path: '/' }]) as [[string, never][]];
      const a = Object.fromEntries(entries.map(([k, v]) => [k, attrValueOf(v, k)]));
      assert.deepEqual((a.rec as RecordArray).toList(), [{ i: 1, s: 'ab' }, { i: 2, s: 'cd' }]);
      assert.ok(a.en instanceof EnumArray);
      assert.deepEqual([(a.en as EnumArray).toNames(), (a.en as EnumArray).members], [['YES', 'NO'], { NO: 0, YES: 1 }]);
      assert.deepEqual([(a.h16 as NDArray).dtype, (a.h16 as NDArray).toList()], ['float16', [1.5, 2]]);
      assert.equal(a.h16s, -0.5);
      assert.deepEqual((a.arr as NDArray).shape, [3, 2]);
      assert.deepEqual((a.vl as NDArray[]).map((x) => x.toList()), [[1, 2], [3]]);
      assert.equal(a.ref, '/grp');
      assert.deepEqual([...(a.opq as Buffer)], [1, 2]);
      assert.ok(Buffer.isBuffer(a.bytes));
      assert.deepEqual([...(a.bytes as Buffer)], [0xff, 0, 1]); // numpy S: only trailing NULs are stripped
    } finally {
      f.closeSync();
    }
  });
});

describe('unsupported types are typed errors naming the key and the feature', () => {
  test('H5T_TIME (PyTables time columns) → ERR_UNSUPPORTED_DTYPE naming the time datatype', async () => {
    const chk = Checkpointer.fromFile(path.join(SHARED, 'fixtures', 'corpus', 'PyTables+PyTables', 'tables__tests__times-nested-be.h5'));
    await expectCodeAsync(chk.get('earr32'), 'ERR_UNSUPPORTED_DTYPE', /earr32 holds an HDF5 time datatype/);
    await expectCodeAsync(chk.get('tbl'), 'ERR_UNSUPPORTED_DTYPE', /tbl field nested field t64 holds an HDF5 time datatype/);
  });
});

// ------------------------------------------------------------------------------------- writing

describe('writing what h5py reads back as the same dtype', () => {
  test('RecordArray → packed compound: nested, array fields, fixed strings, bytes, enum, vlen strings; field order kept', async () => {
    const file = fresh('records');
    const chk = Checkpointer.fromFile(file);
    const inner = new RecordArray({ a: Int16Array.of(1, -2), b: ['x', 'yy'] });
    const r = new RecordArray({
      id: Int32Array.of(7, 8),
      pos: new NDArray(Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3], 'float64'),
      name: ['alpha', 'beta'],
      raw: [Buffer.from([1, 2]), Buffer.from([3, 0])],
      color: new EnumArray(Uint8Array.of(0, 2), [2], 'uint8', { RED: 0, GREEN: 1, BLUE: 2 }),
      inner,
      note: ['v', 'variable-length'],
      z: new NDArray(new Float32Array([1.5, 2.5, 3.5, 4.5]), [2, 2], 'float32'),
    }, {
      fields: [
        { name: 'id', type: { kind: 'number', dtype: 'int32' }, shape: [] },
        { name: 'pos', type: { kind: 'number', dtype: 'float64' }, shape: [3] },
        { name: 'name', type: { kind: 'string', length: 6, encoding: 'ascii' }, shape: [] },
        { name: 'raw', type: { kind: 'bytes', length: 2 }, shape: [] },
        { name: 'color', type: { kind: 'enum', dtype: 'uint8', members: { RED: 0, GREEN: 1, BLUE: 2 } }, shape: [] },
        { name: 'inner', type: { kind: 'record', fields: inner.fields }, shape: [] },
        { name: 'note', type: { kind: 'string', length: 0, encoding: 'utf8', variable: true }, shape: [] },
        { name: 'z', type: { kind: 'number', dtype: 'float32' }, shape: [2] },
      ],
    });
    await chk.set('t', r);
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r'); d = f['t']
out({'descr': str(d.dtype), 'enum': h5py.check_enum_dtype(d.dtype['color']), 'vlen': str(h5py.check_string_dtype(d.dtype['note'])),
     'rows': [[int(x['id']), x['pos'].tolist(), x['name'].decode(), list(bytes(x['raw'])), int(x['color']), [int(x['inner']['a']), x['inner']['b'].decode()], x['note'].decode(), x['z'].tolist()] for x in d[()]],
     'maxshape': list(d.maxshape), 'chunks': d.chunks is not None})`, file);
    assert.equal(py.descr, "[('id', '<i4'), ('pos', '<f8', (3,)), ('name', 'S6'), ('raw', 'V2'), ('color', 'u1'), ('inner', [('a', '<i2'), ('b', 'S2')]), ('note', 'O'), ('z', '<f4', (2,))]");
    assert.deepEqual(py.enum, { RED: 0, GREEN: 1, BLUE: 2 });
    assert.match(py.vlen, /encoding='utf-8', length=None/);
    assert.deepEqual(py.rows, [
      [7, [1, 2, 3], 'alpha', [1, 2], 0, [1, 'x'], 'v', [1.5, 2.5]],
      [8, [4, 5, 6], 'beta', [3, 0], 2, [-2, 'yy'], 'variable-length', [3.5, 4.5]],
    ]);
    assert.deepEqual(py.maxshape, [null]);
    assert.equal(py.chunks, true);
    // And back: the same fields, the same values.
    const back = await chk.get('t') as RecordArray;
    assert.deepEqual(back.fields, r.fields);
    assert.deepEqual(back.toList(), r.toList());
  });

  test('a large table (read after the walk, by a read op) and bad enums refused before anything is written', async () => {
    const file = fresh('large');
    const chk = Checkpointer.fromFile(file);
    const n = 20000;
    const big = new RecordArray({ i: Int32Array.from({ length: n }, (_, k) => k), x: Float64Array.from({ length: n }, (_, k) => k / 4) });
    await chk.set('big', big);
    const back = await chk.get('big') as RecordArray;
    assert.deepEqual(back.row(n - 1), { i: n - 1, x: (n - 1) / 4 });
    assert.deepEqual(h5py(`d = h5py.File(sys.argv[1], 'r')['big']; out([len(d), d[-1].tolist(), d.chunks is not None])`, file), [n, [n - 1, (n - 1) / 4], true]);
    await expectCodeAsync(chk.set('e1', new EnumArray(Uint8Array.of(0), [1], 'uint8', { A: 0, B: 300 })), 'ERR_UNSUPPORTED_VALUE', /does not fit uint8/);
    await expectCodeAsync(chk.set('e2', new EnumArray(Uint8Array.of(0), [1], 'uint8', { A: 0, B: 0 })), 'ERR_UNSUPPORTED_VALUE', /the same value/);
    assert.deepEqual(await chk.keys(), ['big']);
  });

  test('a 0-d record, and records whose string does not fit its field (refused, nothing written)', async () => {
    const file = fresh('record0');
    const chk = Checkpointer.fromFile(file);
    await chk.set('one', new RecordArray({ k: new NDArray(Int32Array.of(3), [], 'int32'), v: new NDArray(Float64Array.of(0.25), [], 'float64') }, { shape: [] }));
    assert.deepEqual(h5py(`d = h5py.File(sys.argv[1], 'r')['one']; out([d.shape, d[()].tolist()])`, file), [[], [3, 0.25]]);
    const tooLong = new RecordArray({ s: ['abc'] }, { fields: [{ name: 's', type: { kind: 'string', length: 2, encoding: 'ascii' }, shape: [] }] });
    await expectCodeAsync(chk.set('bad', tooLong), 'ERR_UNSUPPORTED_VALUE', /takes 3 bytes; the field holds 2/);
    assert.deepEqual(await chk.keys(), ['one']);
  });

  test('EnumArray → HDF5 enum (h5py.check_enum_dtype); float16 → IEEE binary16; Buffer → np.void', async () => {
    const file = fresh('enum-f16');
    const chk = Checkpointer.fromFile(file);
    await chk.set('e', new EnumArray(Int32Array.of(1, 0, 1), [3], 'int32', { OFF: 0, ON: 1 }));
    await chk.set('big', new EnumArray(BigUint64Array.of(2n ** 62n), [1], 'uint64', { TOP: 2n ** 62n, ZERO: 0 }));
    await chk.set('h', f16([0x3c00, 0xc000, 0x7c00, 0x0001], [2, 2]));
    await chk.set('buf', Buffer.from([0, 1, 0]));
    await chk.set('buf0', Buffer.alloc(0));
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
out([str(f['e'].dtype), h5py.check_enum_dtype(f['e'].dtype), f['e'][()], {k: str(v) for k, v in h5py.check_enum_dtype(f['big'].dtype).items()},
     str(f['h'].dtype), [str(x) for x in f['h'][()].astype('f8').ravel()], f['buf'][()], f['buf0'][()]])`, file);
    assert.deepEqual(py, ['int32', { OFF: 0, ON: 1 }, [1, 0, 1], { TOP: String(2n ** 62n), ZERO: '0' }, 'float16', ['1.0', '-2.0', 'inf', String(2 ** -24).replace('e-8', 'e-08')], { void: [0, 1, 0] }, { bytes: [] }]);
    const e = await chk.get('e') as EnumArray;
    assert.deepEqual([e.members, e.toList()], [{ OFF: 0, ON: 1 }, [1, 0, 1]]);
    assert.deepEqual((await chk.get('big') as EnumArray).members, { TOP: 2n ** 62n, ZERO: 0 });
    const h = await chk.get('h') as NDArray;
    assert.deepEqual([h.dtype, Array.from(float16Values(h.data))], ['float16', [1, -2, Infinity, 2 ** -24]]);
    const b = await chk.get('buf');
    assert.ok(Buffer.isBuffer(b));
    assert.deepEqual([...b], [0, 1, 0]);
  });

  test('"" and text holding NUL as McUtils stores them: S of the UTF-8 bytes (|S1 holding b\'\' for ""), read back exactly', async () => {
    const file = fresh('strings');
    const chk = Checkpointer.fromFile(file);
    await chk.set('empty', '');
    await chk.set('nul', 'a\0b');
    await chk.set('nulu', 'β\0γ');
    await chk.set('plain', 'héllo');
    await expectCodeAsync(chk.set('trailing', 'ab\0'), 'ERR_UNSUPPORTED_VALUE', /ending in NUL/);
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([[str(f[k].dtype), f[k][()]] for k in ['empty', 'nul', 'nulu']] + [h5py.check_string_dtype(f['plain'].dtype).length])`, file);
    assert.deepEqual(py, [['|S1', { bytes: [] }], ['|S3', { bytes: [0x61, 0, 0x62] }], ['|S5', { bytes: [...Buffer.from('β\0γ')] }], null]);
    assert.equal(await chk.get('empty'), '');
    assert.equal(await chk.get('nul'), 'a\0b');
    assert.equal(await chk.get('nulu'), 'β\0γ');
    assert.equal(await chk.get('plain'), 'héllo');
  });
});

// ----------------------------------------------------------------------------- dataset handles

describe('record datasets through dataset handles', () => {
  const rows = (count: number, from: number): RecordArray => new RecordArray({
    t: Float64Array.from({ length: count }, (_, i) => from + i),
    id: Int32Array.from({ length: count }, (_, i) => from + i),
    tag: Array.from({ length: count }, (_, i) => `r${from + i}`),
    v: new NDArray(Float32Array.from({ length: count * 2 }, (_, i) => from + Math.floor(i / 2)), [count, 2], 'float32'),
  }, {
    fields: [
      { name: 't', type: { kind: 'number', dtype: 'float64' }, shape: [] },
      { name: 'id', type: { kind: 'number', dtype: 'int32' }, shape: [] },
      { name: 'tag', type: { kind: 'string', length: 8, encoding: 'ascii' }, shape: [] },
      { name: 'v', type: { kind: 'number', dtype: 'float32' }, shape: [2] },
    ],
  });

  test('create from fields, append rows (one and batches), read row slices, h5py reads the table', async () => {
    const file = fresh('handle-records');
    const chk = Checkpointer.fromFile(file);
    await chk.with(async (c) => {
      const ds = await c.dataset('tbl', { fields: rows(0, 0).fields });
      assert.equal(ds.dtype, 'records');
      assert.deepEqual(ds.fields!.map((f) => f.name), ['t', 'id', 'tag', 'v']);
      await ds.append(rows(3, 0));
      for (let i = 3; i < 2000; i++) await ds.append(rows(1, i));
      assert.deepEqual(ds.shape, [2000]);
      const part = await ds.readRecords!([[1998, null]]);
      assert.deepEqual(part.toList(), [{ t: 1998, id: 1998, tag: 'r1998', v: [1998, 1998] }, { t: 1999, id: 1999, tag: 'r1999', v: [1999, 1999] }]);
      const every = ds.readRecordsSync!([[0, 10, 5]]);
      assert.deepEqual((every.column('id') as NDArray).toList(), [0, 5]);
      await ds.write([[0, 1]], rows(1, 100));
      await assert.rejects(ds.read(), TypeError);
      await assert.rejects(ds.append(new RecordArray({ t: Float64Array.of(1) })), /are not the dataset's/);
      await ds.close();
    });
    const py = h5py(`d = h5py.File(sys.argv[1], 'r')['tbl']; out([str(d.dtype), list(d.maxshape), d[0].tolist(), d[1999].tolist(), len(d)])`, file);
    assert.deepEqual(py, ["[('t', '<f8'), ('id', '<i4'), ('tag', 'S8'), ('v', '<f4', (2,))]", [null], [100, 100, { bytes: [...Buffer.from('r100')] }, [100, 100]], [1999, 1999, { bytes: [...Buffer.from('r1999')] }, [1999, 1999]], 2000]);
    const t = await chk.get('tbl') as RecordArray;
    assert.deepEqual(t.row(1999), { t: 1999, id: 1999, tag: 'r1999', v: [1999, 1999] });
  });

  test('a PyTables table opens as a record dataset; variable-length fields are refused with a typed error', async () => {
    const file = fresh('pytables');
    h5py(`
f = h5py.File(sys.argv[1], 'w')
dt = np.dtype([('name', 'S16'), ('pressure', '<f4'), ('idnumber', '<i8'), ('pos', '<f8', (2,))])
a = np.zeros(5, dtype=dt); a['name'] = [b'p%d' % i for i in range(5)]; a['idnumber'] = range(5)
f.create_dataset('table', data=a, maxshape=(None,), chunks=(16,))
f.create_dataset('vtable', data=np.array([(1, 'x')], dtype=[('i', 'i4'), ('s', h5py.string_dtype())]))
`, file);
    const chk = Checkpointer.fromFile(file);
    await chk.with(async (c) => {
      const ds = await c.dataset('table');
      assert.equal(ds.dtype, 'records');
      await ds.append(new RecordArray({
        name: ['new'], pressure: Float32Array.of(1.5), idnumber: BigInt64Array.of(99n), pos: new NDArray(Float64Array.of(1, 2), [1, 2], 'float64'),
      }, { fields: ds.fields! }));
      const last = await ds.readRecords!([[4, 6]]);
      assert.deepEqual(last.toList(), [{ name: 'p4', pressure: 0, idnumber: 4n, pos: [0, 0] }, { name: 'new', pressure: 1.5, idnumber: 99n, pos: [1, 2] }]);
      await ds.close();
      await expectCodeAsync(c.dataset('vtable'), 'ERR_UNSUPPORTED_DTYPE', /variable-length/);
    });
    assert.deepEqual(h5py(`d = h5py.File(sys.argv[1], 'r')['table']; out([len(d), d[5].tolist()])`, file), [6, [{ bytes: [...Buffer.from('new')] }, 1.5, 99, [1, 2]]]);
  });

  test('a real PyTables table (tables/tests/ex-noattr.h5, gzip): rows appended with its own fields, then h5py reads them', async () => {
    const file = fresh('pytables-real');
    fs.copyFileSync(path.join(SHARED, 'fixtures', 'corpus', 'PyTables+PyTables', 'tables__tests__ex-noattr.h5'), file);
    fs.chmodSync(file, 0o644); // the corpus copy is read-only
    const chk = Checkpointer.fromFile(file);
    await chk.with(async (c) => {
      const ds = await c.dataset(['detector', 'table']);
      assert.equal(ds.dtype, 'records');
      assert.deepEqual(ds.shape, [15]);
      const first = await ds.readRecords!([[0, 2]]);
      const py0 = h5py(`d = h5py.File(sys.argv[1], 'r')['detector/table']; out([[int(r['ADCcount']), r['name'].decode(), float(r['temperature'])] for r in d[0:2]])`, file);
      assert.deepEqual((first.toList() as Record<string, unknown>[]).map((r) => [r.ADCcount, r.name, r.temperature]), py0);
      const row = first.slice(1, 2);
      await ds.append(row);
      await ds.close();
    });
    const py = h5py(`d = h5py.File(sys.argv[1], 'r')['detector/table']; out([len(d), d[15].tolist() == d[1].tolist()])`, file);
    assert.deepEqual(py, [16, true]);
  });

  test('float16 datasets append and read; fields with variable-length strings cannot be created', async () => {
    const file = fresh('handle-f16');
    const chk = Checkpointer.fromFile(file);
    await chk.with(async (c) => {
      const h = await c.dataset('h', { dtype: 'float16', shape: [0, 2] });
      await h.append(f16([0x3c00, 0x4000], [2]));
      await h.append(f16([0x3800, 0xbc00], [2]));
      const back = await h.read([[1, 2]]);
      assert.deepEqual([back.dtype, back.toList()], ['float16', [[0.5, -1]]]);
      await h.close();
      await assert.rejects(c.dataset('v', { fields: [{ name: 's', type: { kind: 'string', length: 0, encoding: 'utf8', variable: true }, shape: [] }] }), /fixed-size records/);
    });
    assert.deepEqual(h5py(`d = h5py.File(sys.argv[1], 'r')['h']; out([str(d.dtype), d[()].astype('f8')])`, file), ['float16', [[1, 2], [0.5, -1]]]);
  });

  test('attributes of a dataset: RecordArray, EnumArray, float16 NDArray and Buffer written; h5py reads them', async () => {
    const file = fresh('attrs');
    const chk = Checkpointer.fromFile(file);
    await chk.with(async (c) => {
      const ds = await c.dataset('x', { dtype: 'float64' });
      ds.attrs.set('rec', new RecordArray({ i: Int32Array.of(1, 2), s: ['ab', 'c'] }));
      ds.attrs.set('en', new EnumArray(Uint8Array.of(1), [1], 'uint8', { NO: 0, YES: 1 }));
      ds.attrs.set('h', f16([0x3e00], []));
      ds.attrs.set('grid', new NDArray(Int16Array.of(1, 2, 3, 4), [2, 2], 'int16'));
      ds.attrs.set('raw', Buffer.from([0, 255]));
      assert.deepEqual((ds.attrs.get('rec') as RecordArray).toList(), [{ i: 1, s: 'ab' }, { i: 2, s: 'c' }]);
      assert.deepEqual((ds.attrs.get('en') as EnumArray).members, { NO: 0, YES: 1 });
      assert.equal(ds.attrs.get('h'), 1.5);
      assert.deepEqual((ds.attrs.get('grid') as NDArray).toList(), [[1, 2], [3, 4]]);
      assert.deepEqual([...(ds.attrs.get('raw') as Buffer)], [0, 255]);
      await ds.close();
    });
    const py = h5py(`a = h5py.File(sys.argv[1], 'r')['x'].attrs
out([a['rec'].tolist(), str(a['rec'].dtype), h5py.check_enum_dtype(a.get_id('en').dtype), str(a['h'].dtype), float(a['h']), a['grid'], a['raw']])`, file);
    assert.deepEqual(py, [[[1, { bytes: [0x61, 0x62] }], [2, { bytes: [0x63] }]], "[('i', '<i4'), ('s', 'S2')]", { NO: 0, YES: 1 }, 'float16', 1.5, [[1, 2], [3, 4]], { void: [0, 255] }]);
  });
});

// --------------------------------------------------------------------------------------- corpus

describe('corpus files (hdf5-json, PyTables) read key by key', () => {
  const corpus = path.join(SHARED, 'fixtures', 'corpus');
  for (const project of ['HDFGroup+hdf5-json', 'PyTables+PyTables']) {
    test(`${project}: every key reads or fails with a typed error`, async () => {
      const dirPath = path.join(corpus, project);
      let read = 0;
      const refused: Record<string, number> = {};
      for (const name of fs.readdirSync(dirPath).filter((f) => /\.h5$/.test(f)).sort()) {
        const chk = Checkpointer.fromFile(path.join(dirPath, name));
        let keys: string[];
        try {
          keys = await chk.keys();
        } catch (err) {
          assert.ok(err instanceof CheckpointerError, `${name}: ${String(err)}`);
          continue;
        }
        for (const key of keys) {
          try {
            await chk.get(key);
            read++;
          } catch (err) {
            assert.ok(err instanceof CheckpointerError && typeof err.code === 'string', `${name} ${key}: an untyped ${String(err)}`);
            refused[err.code] = (refused[err.code] ?? 0) + 1;
          }
        }
      }
      assert.ok(read > 50, `only ${read} keys read`);
    });
  }

  test('hdf5-json compound, enum, array, vlen, opaque, bitfield and reference files match h5py', async () => {
    const dirPath = path.join(corpus, 'HDFGroup+hdf5-json');
    const get = (file: string, key: string): Promise<unknown> => Checkpointer.fromFile(path.join(dirPath, file)).get(key);
    const py = (file: string, code: string): any => h5py(`f = h5py.File(sys.argv[1], 'r'); ${code}`, path.join(dirPath, file));
    const compound = await get('data__hdf5__compound.h5', 'dset') as RecordArray;
    const expected = py('data__hdf5__compound.h5', `d = f['dset'][()]; out([[int(r[0]), r[1].decode(), int(r[2]), float(r[3]), r[4].decode()] for r in d])`);
    assert.deepEqual(compound.toList(), expected.map((r: unknown[]) => Object.fromEntries(compound.names.map((n, i) => [n, typeof r[i] === 'number' && compound.fields[i]!.type.kind === 'number' && (compound.fields[i]!.type as { dtype: string }).dtype === 'int64' ? BigInt(r[i] as number) : r[i]]))));
    const en = await get('data__hdf5__enum_dset.h5', 'DS1') as EnumArray;
    assert.deepEqual([en.toList(), en.members], py('data__hdf5__enum_dset.h5', `out([f['DS1'][()], h5py.check_enum_dtype(f['DS1'].dtype)])`));
    const arr = await get('data__hdf5__arraytype.h5', 'array') as NDArray;
    assert.deepEqual(arr.toList(), py('data__hdf5__arraytype.h5', `out(f['array'][()])`));
    const vlen = await get('data__hdf5__vlen_dset.h5', 'DS1') as NDArray[];
    assert.deepEqual(vlen.map((x) => x.toList()), py('data__hdf5__vlen_dset.h5', `out([x.tolist() for x in f['DS1'][()]])`));
    const bits = await get('data__hdf5__bitfield_dset.h5', 'DS1') as NDArray;
    assert.equal(bits.dtype, py('data__hdf5__bitfield_dset.h5', `out(str(f['DS1'].dtype))`));
    const opaque = await get('data__hdf5__opaque_dset.h5', 'DS1') as Buffer[];
    assert.deepEqual(opaque.map((b) => b.toString('latin1')), ['OPAQUE0', 'OPAQUE1', 'OPAQUE2', 'OPAQUE3']);
    assert.deepEqual(await get('data__hdf5__objref_dset.h5', 'DS1'), py('data__hdf5__objref_dset.h5', `out([f[r].name for r in f['DS1'][()]])`));
    const withStrings = await get('data__hdf5__compound_array_vlen_string.h5', 'dset') as RecordArray;
    assert.deepEqual((withStrings.column('VALUE3') as string[]).length, 80);
  });
});
