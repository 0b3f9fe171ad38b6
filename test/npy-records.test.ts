/**
 * numpy structured dtypes, float16, long double and datetime in .npy/.npz: numpy writes, we read
 * and compare; we write, numpy reads and compares dtype.descr and values; and every .npy/.npz of
 * the shared corpus reads as numpy reads it, or fails with a typed error naming the feature.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, NDArray, ndarray, NumPyCheckpointer, RecordArray, recordArray } from '../lib/index';
import { float16ToNumber, float16Values, FLOAT16_AS_BITS, Float16ArrayType, numberToFloat16 } from '../lib/values/dtype';
import { decodeNpy, encodeNpyHeader, parseNpyHeader } from '../lib/formats/npy';
import { decodePickleData } from '../lib/formats/pseudo-pickle';
import { runPython, SHARED, tempDir } from './helpers/python';

const dir = tempDir('npy-records-');
let n = 0;
const fresh = (ext: string): string => path.join(dir, `r${n++}${ext}`);

/** Python: a value as JSON-comparable text (floats as their float64 bytes, bytes as hex, records as lists of fields). */
const CANON = `
import numpy as np, json
def canon(x):
    if isinstance(x, np.ndarray):
        if x.dtype.names is not None:
            return {'fields': list(x.dtype.names), 'rows': [canon(r) for r in x.reshape(-1)], 'shape': list(x.shape)}
        return [canon(v) for v in x.reshape(-1)] if x.ndim else canon(x[()])
    if isinstance(x, np.void) and x.dtype.names is not None:
        return [canon(x[n]) for n in x.dtype.names]
    if isinstance(x, (bytes, np.void)): return 'b:' + bytes(x).hex()
    if isinstance(x, (bool, np.bool_)): return bool(x)
    if isinstance(x, (np.integer, int)): return str(int(x))
    if isinstance(x, (np.complexfloating, complex)): return [fhex(x.real), fhex(x.imag)]
    if isinstance(x, (np.floating, float)): return fhex(x)
    return str(x)
import struct
def fhex(x):  # exact: the float64's bytes (NaN as one NaN)
    x = float(x)
    return 'nan' if x != x else struct.pack('<d', x).hex()
`;

/** Ours in the same form as CANON. */
function canon(v: unknown): unknown {
  if (v instanceof RecordArray) {
    const rows: unknown[] = [];
    for (let i = 0; i < v.size; i++) rows.push(canonRow(v, i));
    return { fields: v.names, rows, shape: [...v.shape] };
  }
  if (v instanceof NDArray) {
    const out: unknown[] = [];
    const vals = v.dtype === 'float16' ? float16Values(v.data) : v.data;
    for (let i = 0; i < v.size; i++) {
      if (v.dtype.startsWith('complex')) out.push([fhex(vals[2 * i] as number), fhex(vals[2 * i + 1] as number)]);
      else if (v.dtype === 'bool') out.push(vals[i] !== 0);
      else if (/int/.test(v.dtype)) out.push(String(vals[i]));
      else out.push(fhex(vals[i] as number));
    }
    return v.shape.length === 0 ? out[0] : out;
  }
  if (Array.isArray(v)) return v.flatMap((x) => (Array.isArray(x) ? canon(x) as unknown[] : [canon(x)]));
  if (v instanceof Uint8Array) return `b:${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) && !Object.is(v, -0) ? String(v) : fhex(v);
  return String(v);
}

function canonRow(r: RecordArray, i: number): unknown[] {
  return r.fields.map((f) => {
    const c = r.column(f.name);
    const block = f.shape.reduce((a, b) => a * b, 1);
    if (c instanceof RecordArray) {
      const sub = c.slice(i * block, (i + 1) * block, f.shape);
      return f.shape.length === 0 ? canonRow(sub, 0) : (canon(sub) as { rows: unknown[] }).rows;
    }
    if (c instanceof NDArray) {
      const lanes = c.dtype.startsWith('complex') ? 2 : 1;
      return canon(new NDArray(c.data.subarray(i * block * lanes, (i + 1) * block * lanes), f.shape, c.dtype));
    }
    // an S field is Python bytes (held as text in a RecordArray's string column)
    const asBytes = f.type.kind === 'string' && f.type.encoding === 'ascii';
    const items = (c as readonly unknown[]).slice(i * block, (i + 1) * block)
      .map((x) => (asBytes ? `b:${Buffer.from(x as string, 'utf8').toString('hex')}` : canon(x)));
    return f.shape.length === 0 ? items[0] : items;
  });
}

/** A float as CANON's fhex gives it: its float64 bytes, any NaN as 'nan'. */
function fhex(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  return Buffer.from(Float64Array.of(x).buffer).toString('hex');
}

/** Python's repr of a float64 (close enough for the values these tests print). */
function repr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0.0';
  const s = String(x);
  if (/e/.test(s)) return s.replace(/e([+-])(\d)$/, 'e$10$2');
  return /\./.test(s) ? s : `${s}.0`;
}

const NUMPY_RECORDS = `
rng = np.random.default_rng(3)
arrays = {}
a = np.zeros(4, dtype=[('a', '<i4'), ('pos', '<f8', (3,)), ('sub', [('x', '>f4'), ('s', 'S3'), ('deep', [('k', '<u2')])]),
                       ('u', '<U2'), ('v', 'V3'), ('t', '?'), ('z', '<c8'), ('h', '<f2'), ('big', '>i8'), ('m', '<f4', (2, 2))])
a['a'] = [1, -2, 3, 2**31 - 1]; a['pos'] = rng.standard_normal((4, 3)); a['sub']['x'] = [0.5, 1.5, -2.5, 1e30]
a['sub']['s'] = [b'ab', b'', b'xyz', b'\\x00q']; a['sub']['deep']['k'] = [0, 1, 65535, 7]
a['u'] = ['\\u00e9', 'zz', '', '\\U0001F600']; a['v'] = [b'\\x01\\x02\\x03', b'\\x00\\x00\\x01', b'abc', b'\\x00\\x00\\x00']
a['t'] = [True, False, True, False]; a['z'] = [1 + 2j, 0, 3j, -1]; a['h'] = [0.5, 1, -2, 65504]; a['big'] = [2**62, -1, 0, 5]
a['m'] = rng.standard_normal((4, 2, 2))
arrays['mixed'] = a
arrays['aligned'] = np.array([(1, 2.0), (3, 4.0)], dtype=np.dtype([('a', 'i1'), ('b', '<f8')], align=True))
c = np.zeros(3, dtype=[('a', '<i4'), ('b', '<f8'), ('c', 'u1')]); c['a'] = [5, 6, 7]; c['c'] = [8, 9, 10]
arrays['sliced'] = c[['a', 'c']]
arrays['twod'] = np.array([[(1, 2.0), (3, 4.0)], [(5, 6.0), (7, 8.0)]], dtype=[('i', '<i2'), ('f', '>f8')])
arrays['scalar'] = np.array((7, b'ok'), dtype=[('n', '<i8'), ('b', 'S2')])
arrays['empty'] = np.zeros(0, dtype=[('n', '<i8')])
arrays['fortran'] = np.asfortranarray(np.zeros((2, 3), dtype=[('n', '<i4'), ('x', '<f4')]))
arrays['fortran']['n'] = [[1, 2, 3], [4, 5, 6]]
arrays['f16'] = rng.standard_normal(7).astype('<f2')
arrays['f16be'] = np.array([[1, -0.0], [np.inf, 6.1e-5]], dtype='>f2')
arrays['f16scalar'] = np.array(1.5, dtype='<f2')
`;

describe('numpy structured dtypes → RecordArray', () => {
  it('reads what numpy wrote: nested records, array fields, padding, sliced fields, big-endian, S/U/V/bool/complex/float16 fields', () => {
    const want = runPython<Record<string, unknown>>(`${CANON}${NUMPY_RECORDS}
import sys, os
for k, v in arrays.items(): np.save(os.path.join(sys.argv[1], k + '.npy'), v)
np.savez(os.path.join(sys.argv[1], 'all.npz'), **arrays)
print(json.dumps({k: canon(v) for k, v in arrays.items()}))`, dir);
    const chk = new NumPyCheckpointer(path.join(dir, 'all.npz'));
    for (const [name, expected] of Object.entries(want)) {
      const fromNpy = decodeNpy(fs.readFileSync(path.join(dir, `${name}.npy`)));
      assert.deepEqual(canon(fromNpy), expected, `${name}.npy`);
      assert.deepEqual(canon(chk.getSync(name)), expected, `${name} in .npz`);
    }
    const mixed = decodeNpy(fs.readFileSync(path.join(dir, 'mixed.npy'))) as RecordArray;
    assert.ok(mixed instanceof RecordArray);
    assert.deepEqual(mixed.names, ['a', 'pos', 'sub', 'u', 'v', 't', 'z', 'h', 'big', 'm']);
    assert.deepEqual(mixed.fields.find((f) => f.name === 'pos')!.shape, [3]);
    assert.deepEqual(mixed.fields.find((f) => f.name === 'u')!.type, { kind: 'string', length: 2, encoding: 'utf32' });
    assert.deepEqual(mixed.fields.find((f) => f.name === 'v')!.type, { kind: 'bytes', length: 3 });
    assert.equal((mixed.column('big') as NDArray).dtype, 'int64');
    assert.equal((mixed.column('h') as NDArray).dtype, 'float16');
    assert.deepEqual((decodeNpy(fs.readFileSync(path.join(dir, 'aligned.npy'))) as RecordArray).names, ['a', 'b'], 'padding is no field');
    assert.equal(decodeNpy(fs.readFileSync(path.join(dir, 'f16scalar.npy'))), 1.5);
  });

  it('reads numpy\'s dict-form descr (offsets, itemsize, out of order, overlapping)', () => {
    // numpy 1.24 cannot write these (dtype.descr refuses), numpy 2 and other writers can: the header is written by hand.
    const write = (descr: string, shape: number[], data: Buffer): Buffer => Buffer.concat([encodeHeaderRaw(descr, shape), data]);
    const data = Buffer.alloc(2 * 12);
    data.writeInt32LE(10, 0); data.writeInt32LE(20, 4); data.writeInt32LE(30, 12); data.writeInt32LE(40, 16);
    const r = decodeNpy(write("{'names': ['b', 'a'], 'formats': ['<i4', '<i4'], 'offsets': [4, 0], 'itemsize': 12}", [2], data)) as RecordArray;
    assert.deepEqual(r.toList(), [{ b: 20, a: 10 }, { b: 40, a: 30 }]);
    const overlap = decodeNpy(write("{'names': ['w', 'lo'], 'formats': ['<u4', '<u2'], 'offsets': [0, 0], 'itemsize': 12}", [2], data)) as RecordArray;
    assert.deepEqual(overlap.toList(), [{ w: 10, lo: 10 }, { w: 30, lo: 30 }]);
    const code = (descr: string): string | undefined => {
      try {
        decodeNpy(write(descr, [2], data));
      } catch (err) {
        assert.ok(err instanceof CheckpointerError, String(err));
        return err.code;
      }
      return undefined;
    };
    assert.equal(code("{'names': ['a'], 'formats': ['<i4'], 'titles': ['T'], 'offsets': [0], 'itemsize': 12}"), 'ERR_UNSUPPORTED_DTYPE');
    assert.equal(code("{'names': ['a'], 'formats': ['<i4'], 'offsets': [0], 'itemsize': 2}"), 'ERR_CHECKPOINT_CORRUPT');
    assert.equal(code("{'names': ['a'], 'formats': ['<i4', '<i4']}"), 'ERR_CHECKPOINT_CORRUPT');
    assert.equal(code("[('a', '<M8[s]')]"), 'ERR_UNSUPPORTED_DTYPE');
    assert.equal(code("[('a', '<f16')]"), 'ERR_UNSUPPORTED_DTYPE');
    assert.equal(code("[('a', '|O')]"), 'ERR_UNSUPPORTED_DTYPE');
    assert.equal(code("[('a', 5)]"), 'ERR_UNSUPPORTED_DTYPE');
    assert.equal(code("[('a',)]"), 'ERR_CHECKPOINT_CORRUPT');
    assert.equal(code("[(('title', 'a'), '<i4')]"), 'ERR_UNSUPPORTED_DTYPE');
  });

  it('numpy loads the RecordArray we write: the same names, formats, shapes and values', async () => {
    const want = runPython<Record<string, unknown>>(`${CANON}${NUMPY_RECORDS}
import sys, os
np.savez(os.path.join(sys.argv[1], 'src.npz'), **{k: v for k, v in arrays.items() if v.dtype.names})
print(json.dumps({k: [canon(v), [list(x) if isinstance(x, tuple) else x for x in []]] for k, v in arrays.items() if v.dtype.names}))`, dir);
    const src = new NumPyCheckpointer(path.join(dir, 'src.npz'));
    const out = fresh('.npz');
    const single = fresh('.npy');
    await new NumPyCheckpointer(out).with(async (o) => {
      for (const k of Object.keys(want)) await o.set(k, src.getSync(k));
      await o.set('made', recordArray({
        id: Int32Array.of(1, 2, 3), x: ndarray(Float64Array.of(1, 2, 3, 4, 5, 6), [3, 2]), name: ['a', 'bc', ''],
        flag: ndarray(Uint8Array.of(1, 0, 1), [3], 'bool'), raw: [Uint8Array.of(1, 2), Uint8Array.of(0, 0), Uint8Array.of(255, 0)],
        inner: recordArray({ q: Float32Array.of(0.5, 1.5, 2.5) }),
      }));
    });
    new NumPyCheckpointer(single).withSync((o) => o.setSync('arr_0', src.getSync('mixed')));
    const py = runPython<Record<string, { descr: unknown; canon: unknown; same?: boolean }>>(`${CANON}
import sys
f = np.load(sys.argv[1], allow_pickle=False); s = np.load(sys.argv[2], allow_pickle=False)
src = np.load(sys.argv[3], allow_pickle=False)
def norm(descr):  # names, formats without byte order, shapes
    return [[d[0], norm(d[1]) if isinstance(d[1], list) else d[1].lstrip('<>|='), list(d[2]) if len(d) > 2 else []] for d in descr if d[0]]
out = {k: {'descr': norm(f[k].dtype.descr), 'canon': canon(f[k])} for k in f.files}
for k in src.files:
    out[k]['same'] = norm(src[k].dtype.descr) == out[k]['descr'] and all((src[k][n] == f[k][n]).all() or (src[k][n] != src[k][n]).any() for n in src[k].dtype.names)
out['single'] = {'descr': norm(s.dtype.descr), 'canon': canon(s), 'same': norm(s.dtype.descr) == norm(src['mixed'].dtype.descr)}
print(json.dumps(out))`, out, single, path.join(dir, 'src.npz'));
    for (const k of Object.keys(want)) {
      assert.deepEqual(py[k]!.canon, (want[k] as unknown[])[0], k);
      assert.equal(py[k]!.same, true, `${k}: dtype or values differ from numpy's original`);
    }
    assert.equal(py.single!.same, true);
    assert.deepEqual(py.single!.canon, (want.mixed as unknown[])[0]);
    assert.deepEqual(py.made!.descr, [['id', 'i4', []], ['x', 'f8', [2]], ['name', 'S2', []], ['flag', 'b1', []], ['raw', 'V2', []], ['inner', [['q', 'f4', []]], []]]);
    assert.deepEqual((py.made!.canon as { rows: unknown[] }).rows, [
      ['1', [fhex(1), fhex(2)], `b:${Buffer.from('a').toString('hex')}`, true, 'b:0102', [fhex(0.5)]],
      ['2', [fhex(3), fhex(4)], `b:${Buffer.from('bc').toString('hex')}`, false, 'b:0000', [fhex(1.5)]],
      ['3', [fhex(5), fhex(6)], 'b:', true, 'b:ff00', [fhex(2.5)]],
    ]);
  });

  it('refuses record fields that do not fit, with a typed error and nothing written', async () => {
    const file = fresh('.npz');
    const tooLong = recordArray({ s: ['ab'] }, { fields: [{ name: 's', type: { kind: 'string', length: 1, encoding: 'ascii' }, shape: [] }] });
    const vlen = recordArray({ s: ['ab'] }, { fields: [{ name: 's', type: { kind: 'string', length: 0, encoding: 'utf8', variable: true }, shape: [] }] });
    for (const bad of [tooLong, vlen]) {
      await assert.rejects(new NumPyCheckpointer(file).with(async (c) => c.set('r', bad)), (err: unknown) => {
        assert.ok(err instanceof CheckpointerError, String(err));
        assert.equal(err.code, 'ERR_UNSUPPORTED_VALUE');
        return true;
      });
      assert.equal(fs.existsSync(file), false);
    }
  });
});

describe('damaged structured headers and pickles', () => {
  it('10,000 mutated structured .npy files and McUtils pickles give a value or a CheckpointerError, never another error', () => {
    const seed = Buffer.concat([encodeHeaderRaw("[('a', '<i4'), ('pos', '>f8', (3,)), ('sub', [('s', '|S3'), ('u', '<U2')]), ('', '|V4'), ('v', '|V2')]", [3]), Buffer.alloc(3 * 49, 7)]);
    const pickle = Buffer.from('gASVYgAAAAAAAACMFW51bXB5LmNvcmUubXVsdGlhcnJheZSMBnNjYWxhcpSTlIwFbnVtcHmUjAVkdHlwZZSTlIwCYjGUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LAHSUYkMBAZSGlFKULg==', 'base64');
    let x = 99;
    const rnd = (k: number): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % k;
    };
    const header = parseNpyHeader(seed).headerLength;
    const syntax = " ()[],'<>|SUVfi0123456789";
    const others: string[] = [];
    for (let i = 0; i < 10000; i++) {
      const npy = Buffer.from(seed);
      for (let j = 1 + rnd(3); j > 0; j--) npy[10 + rnd(header - 10)] = rnd(3) === 0 ? rnd(256) : syntax.charCodeAt(rnd(syntax.length));
      const pk = Buffer.from(pickle);
      pk[rnd(pk.length)] = rnd(256);
      for (const f of [() => decodeNpy(npy), () => decodePickleData(rnd(3) === 0 ? pk.subarray(0, rnd(pk.length)) : pk, 'x')]) {
        try {
          f();
        } catch (err) {
          if (!(err instanceof CheckpointerError)) others.push(`${(err as Error).name}: ${(err as Error).message}`);
        }
      }
    }
    assert.deepEqual([...new Set(others)], []);
  });
});

describe('float16, long double, datetime64', () => {
  it('float16 round-trips through numpy both ways', async () => {
    const values = [0, -0, 1, -2.5, 65504, 6.1035156e-5, 5.96e-8, Infinity, NaN, 0.1];
    const data = FLOAT16_AS_BITS ? Uint16Array.from(values, numberToFloat16) : new (Float16ArrayType as Float64ArrayConstructor)(values);
    const file = fresh('.npz');
    await new NumPyCheckpointer(file).with(async (c) => {
      await c.set('h', ndarray(data, [2, 5], 'float16'));
      await c.set('hs', ndarray(data.subarray(3, 4), [], 'float16'));
    });
    const py = runPython<Record<string, unknown>>(`import numpy as np, sys, json
f = np.load(sys.argv[1])
ref = np.array([float(x) for x in json.loads(sys.argv[2])], dtype='f8').astype('f2')
print(json.dumps({'dtype': f['h'].dtype.str, 'shape': list(f['h'].shape), 'bits_equal': f['h'].reshape(-1).view('u2').tolist() == ref.view('u2').tolist(), 'scalar': repr(f['hs'].item()), 'sdt': f['hs'].dtype.str}))`,
    file, JSON.stringify(values.map(repr)));
    assert.deepEqual(py, { dtype: '<f2', shape: [2, 5], bits_equal: true, scalar: '-2.5', sdt: '<f2' });
    const back = new NumPyCheckpointer(file).getSync('h') as NDArray;
    assert.equal(back.dtype, 'float16');
    assert.deepEqual([...float16Values(back.data)].map((x) => (Number.isNaN(x) ? 'nan' : x)), values.map((v) => (Number.isNaN(v) ? 'nan' : float16ToNumber(numberToFloat16(v)))));
    assert.equal(new NumPyCheckpointer(file).getSync('hs'), -2.5);
  });

  it('long double and datetime64/timedelta64 are ERR_UNSUPPORTED_DTYPE naming them; the other keys still read', () => {
    const file = fresh('.npz');
    runPython(`import numpy as np, sys, json
np.savez(sys.argv[1], ld=np.array([1.5], dtype='g'), cld=np.array([1j], dtype='G'), t=np.array(['2020-01-01'], dtype='M8[s]'),
         dt=np.array([5], dtype='m8[ns]'), ok=np.arange(3))
print(json.dumps(0))`, file);
    const c = new NumPyCheckpointer(file);
    for (const [key, why] of [['ld', /long double \(float128\)/], ['cld', /long double \(complex256\)/], ['t', /datetime64\[s\]/], ['dt', /timedelta64\[ns\]/]] as const) {
      assert.throws(() => c.getSync(key), (err: unknown) => {
        assert.ok(err instanceof CheckpointerError, String(err));
        assert.equal(err.code, 'ERR_UNSUPPORTED_DTYPE');
        assert.match(err.message, why);
        return true;
      }, key);
    }
    assert.deepEqual([...(c.getSync('ok') as NDArray).data], [0n, 1n, 2n]);
    assert.equal(parseNpyHeader(encodeNpyHeader('<f2', [1])).descr.kind, 'numeric');
  });
});

describe('the shared corpus: every .npy/.npz reads as numpy reads it (allow_pickle=False)', () => {
  const CORPUS = path.join(SHARED, 'fixtures', 'corpus');
  const files = ['numpy+numpy', 'aplbrain+npyjs', 'xtensor-stack+xtensor']
    .flatMap((d) => (fs.existsSync(path.join(CORPUS, d)) ? fs.readdirSync(path.join(CORPUS, d)).map((f) => path.join(CORPUS, d, f)) : []))
    .filter((f) => /\.np[yz]$/.test(f));

  it('values equal numpy\'s, or a CheckpointerError where numpy refuses; no file changes', { skip: files.length === 0 && 'no corpus' }, () => {
    const want = runPython<Record<string, Record<string, unknown>>>(`${CANON}
import sys
out = {}
for path in json.loads(sys.argv[1]):
    res = {}
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:
        out[path] = {'arr_0': {'error': str(e)}}
        continue
    items = [(k, lambda k=k: z[k]) for k in z.files] if isinstance(z, np.lib.npyio.NpzFile) else [('arr_0', lambda: z)]
    for k, get in items:
        try: res[k] = {'value': canon(get())}
        except Exception as e: res[k] = {'error': str(e)}
    out[path] = res
print(json.dumps(out))`, JSON.stringify(files));
    let compared = 0;
    for (const file of files) {
      const before = fs.readFileSync(file);
      const chk = new NumPyCheckpointer(file);
      const keys = chk.keysSync();
      assert.deepEqual(keys.sort(), Object.keys(want[file]!).sort(), file);
      for (const key of keys) {
        const w = want[file]![key] as { value?: unknown; error?: string };
        let got: unknown;
        try {
          got = chk.getSync(key);
        } catch (err) {
          assert.ok(err instanceof CheckpointerError, `${file} ${key}: ${String(err)}`);
          assert.ok(w.error !== undefined, `${file} ${key}: numpy reads it, we threw ${err.message}`);
          assert.equal(err.code, 'ERR_UNSUPPORTED_DTYPE', `${file} ${key}`);
          assert.match(err.message, /object arrays|pickle/);
          continue;
        }
        assert.equal(w.error, undefined, `${file} ${key}: numpy refuses it (${w.error}), we read it`);
        assert.deepEqual(canon(got), w.value, `${file} ${key}`);
        compared++;
      }
      assert.deepEqual(fs.readFileSync(file), before, `${file} changed by reading`);
    }
    assert.ok(compared >= 40, `only ${compared} arrays compared`);
  });
});

/** An .npy header with an arbitrary descr literal (encodeNpyHeader quotes a string descr). */
function encodeHeaderRaw(descrLiteral: string, shape: number[]): Buffer {
  const h = encodeNpyHeader('<f8', shape);
  const text = h.toString('latin1').replace("'<f8'", descrLiteral);
  const body = text.slice(10).trimEnd();
  const total = Math.ceil((10 + body.length + 1) / 64) * 64;
  const out = Buffer.alloc(total, 0x20);
  h.copy(out, 0, 0, 8);
  out.writeUInt16LE(total - 10, 8);
  out.write(body, 10, 'latin1');
  out[total - 1] = 0x0a;
  return out;
}
