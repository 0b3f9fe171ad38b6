import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError } from '../lib/errors';
import { DType, DTYPES, dtypeInfo, FLOAT16_AS_BITS, float16Values, numberToFloat16 } from '../lib/values/dtype';
import { NDArray, ndarray } from '../lib/values/ndarray';
import {
  decodeNpy, descrOf, encodeArray, encodeEmptyDict, encodeNpyHeader, encodeNull, encodeStringScalar, fortranToC, parseNpyHeader,
  parsePyLiteral, planDecode, PyTuple,
} from '../lib/formats/npy';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('npy-test-');

/** Python's view of an array, as the generator below prints it. */
interface PyArray {
  dtype: string;
  shape: number[];
  /** Flat values in C order: complex as [re, im], 64-bit ints as strings, strings as strings. */
  values: unknown[];
}

/** Flat JS values of a decoded value, in the same encoding as PyArray.values. */
function flatValues(v: unknown): unknown[] {
  if (v instanceof NDArray) {
    const info = dtypeInfo(v.dtype);
    const out: unknown[] = [];
    for (let i = 0; i < v.size; i++) {
      if (info.lanes === 2) out.push([v.data[2 * i], v.data[2 * i + 1]]);
      else if (info.kind === 'b') out.push(v.data[i] !== 0);
      else if (typeof v.data[i] === 'bigint') out.push(String(v.data[i]));
      else if (v.dtype === 'float16') out.push(float16Values(v.data)[i]);
      else out.push(v.data[i]);
    }
    return out;
  }
  if (Array.isArray(v)) return v.flatMap(flatValues);
  if (typeof v === 'bigint') return [String(v)];
  return [v];
}

function sameNumber(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameNumber(x, b[i]));
  return a === b;
}

/** int64 scalars may come back as numbers when safe: compare them as decimal strings. */
function normalise(values: unknown[], dtype: string): unknown[] {
  return /int64|uint64/.test(dtype) ? values.map((x) => String(x)) : values;
}

describe('npy header', () => {
  it('encodes headers byte-identical to numpy 1.24 for every dtype and several shapes', () => {
    const shapes = [[], [0], [3], [3, 4], [2, 3, 4], [123456789012], [1, 1, 1, 1, 1, 1, 1, 1]];
    const cases = DTYPES.flatMap((dt) => shapes.map((shape) => ({ descr: descrOf(dt), shape })));
    cases.push({ descr: '<U5', shape: [] }, { descr: '|S7', shape: [2] });
    const py = runPython<string[]>(`
import json, sys, io, numpy as np
from numpy.lib import format as F
out = []
for c in json.loads(sys.argv[1]):
    b = io.BytesIO()
    F._write_array_header(b, {'descr': c['descr'], 'fortran_order': False, 'shape': tuple(c['shape'])}, None)
    out.append(b.getvalue().hex())
print(json.dumps(out))`, JSON.stringify(cases));
    cases.forEach((c, i) => {
      const ours = encodeNpyHeader(c.descr, c.shape);
      assert.equal(ours.toString('hex'), py[i], `${c.descr} ${JSON.stringify(c.shape)}`);
      assert.equal(ours.length % 64, 0);
      const parsed = parseNpyHeader(ours);
      assert.deepEqual(parsed.shape, c.shape);
      assert.equal(parsed.descr.descr, c.descr);
      assert.equal(parsed.fortranOrder, false);
      assert.equal(parsed.headerLength, ours.length);
    });
  });

  it('parses version 1.0, 2.0 and 3.0 headers numpy wrote', () => {
    const hex = runPython<Record<string, string>>(`
import json, io, numpy as np
from numpy.lib import format as F
out = {}
for v in [(1, 0), (2, 0), (3, 0)]:
    b = io.BytesIO()
    F.write_array(b, np.arange(6, dtype='<i4').reshape(2, 3), version=v)
    out['%d.%d' % v] = b.getvalue().hex()
print(json.dumps(out))`);
    for (const [version, h] of Object.entries(hex)) {
      const bytes = Buffer.from(h, 'hex');
      const header = parseNpyHeader(bytes);
      assert.equal(header.version.join('.'), version);
      assert.equal(header.headerLength % 64, 0);
      const v = decodeNpy(bytes) as NDArray;
      assert.equal(v.dtype, 'int32');
      assert.deepEqual([...v.shape], [2, 3]);
      assert.deepEqual([...v.data], [0, 1, 2, 3, 4, 5]);
    }
  });

  it('reads Python literals: tuples, trailing commas, L suffixes, either quote', () => {
    const d = parsePyLiteral(`{"descr": '<f8', 'fortran_order': True, 'shape': (3L, 4), }`) as Map<string, unknown>;
    assert.equal(d.get('descr'), '<f8');
    assert.equal(d.get('fortran_order'), true);
    assert.deepEqual((d.get('shape') as PyTuple).items, [3, 4]);
    assert.deepEqual((parsePyLiteral('(5,)') as PyTuple).items, [5]);
    assert.equal(parsePyLiteral('(5)'), 5);
    assert.deepEqual((parsePyLiteral('()') as PyTuple).items, []);
    assert.deepEqual(parsePyLiteral("[('a', '<f8'), ('b', '<i4')]"), [new PyTuple(['a', '<f8']), new PyTuple(['b', '<i4'])]);
    assert.throws(() => parsePyLiteral("{'a': 1"), /expected|unexpected/);
    assert.throws(() => parsePyLiteral("{'a': 1} x"), /trailing/);
  });

  it('reports bad headers as ERR_CHECKPOINT_CORRUPT and unreadable dtypes as ERR_UNSUPPORTED_DTYPE', () => {
    const good = encodeNpyHeader('<f8', [2]);
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (err) {
        assert.ok(err instanceof CheckpointerError, String(err));
        return err.code;
      }
      return undefined;
    };
    assert.equal(code(() => parseNpyHeader(Buffer.from('not numpy at all'))), 'ERR_CHECKPOINT_CORRUPT');
    assert.equal(code(() => parseNpyHeader(good.subarray(0, 40))), 'ERR_CHECKPOINT_CORRUPT');
    const broken = Buffer.from(good);
    broken.write("{'descr': '<f8', 'fortran_order': Maybe", 10, 'latin1');
    assert.equal(code(() => parseNpyHeader(broken)), 'ERR_CHECKPOINT_CORRUPT');
    const v9 = Buffer.from(good);
    v9[6] = 9;
    assert.equal(code(() => parseNpyHeader(v9)), 'ERR_CHECKPOINT_CORRUPT');
    for (const descr of ['|O', '<f16', '<c32', '<g', '<M8[s]', '<m8[ns]', '<M8']) {
      assert.equal(code(() => parseNpyHeader(encodeNpyHeader(descr, [1]))), 'ERR_UNSUPPORTED_DTYPE', descr);
    }
    // long double and datetime are named in the message, with what to do instead
    assert.throws(() => parseNpyHeader(encodeNpyHeader('<f16', [1])), /long double \(float128\).*astype\('f8'\)/);
    assert.throws(() => parseNpyHeader(encodeNpyHeader('<M8[s]', [1])), /datetime64\[s\].*astype\('int64'\)/);
    assert.throws(() => parseNpyHeader(encodeNpyHeader('<m8[ns]', [1])), /timedelta64\[ns\]/);
    const withDescr = (descr: string): Buffer => {
      const b = Buffer.alloc(128, 0x20);
      b.set(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 118, 0]));
      b.write(`{'descr': ${descr}, 'fortran_order': False, 'shape': (1,), }`, 10, 'latin1');
      b[127] = 0x0a;
      return b;
    };
    assert.equal(parseNpyHeader(withDescr("[('a', '<f8')]")).descr.kind, 'record');
    assert.equal(code(() => parseNpyHeader(withDescr("[(('t', 'a'), '<f8')]"))), 'ERR_UNSUPPORTED_DTYPE');
    assert.throws(() => parseNpyHeader(withDescr("[(('t', 'a'), '<f8')]")), /title/);
    assert.equal(code(() => parseNpyHeader(withDescr("[('a', '|O')]"))), 'ERR_UNSUPPORTED_DTYPE');
    assert.equal(code(() => parseNpyHeader(withDescr("[('a', '<f8'), ('a', '<i4')]"))), 'ERR_CHECKPOINT_CORRUPT');
  });
});

describe('npy data', () => {
  it('decodes what numpy wrote: every dtype in both byte orders, Fortran order, ranks 0-3, strings', () => {
    const manifest = runPython<Record<string, PyArray>>(`
import json, os, sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
out = {}
def put(name, a):
    np.save(os.path.join(d, name + '.npy'), a, allow_pickle=False)
    flat = a.flatten(order='C')
    if a.dtype.kind == 'c':
        vals = [[float(x.real), float(x.imag)] for x in flat]
    elif a.dtype.kind in 'iu' and a.dtype.itemsize == 8:
        vals = [str(int(x)) for x in flat]
    elif a.dtype.kind in 'US':
        vals = [x.decode('latin-1') if isinstance(x, bytes) else str(x) for x in flat.tolist()]
    elif a.dtype.kind == 'f':
        vals = [float(x) if np.isfinite(x) else str(x) for x in flat]
    else:
        vals = flat.tolist()
    out[name] = {'dtype': a.dtype.name, 'shape': list(a.shape), 'values': vals}
kinds = ['b1', 'i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f2', 'f4', 'f8', 'c8', 'c16']
for k in kinds:
    for order in '<>':
        dt = np.dtype(order + k) if k not in ('b1', 'i1', 'u1') else np.dtype(k)
        for shape in [(), (5,), (2, 3), (2, 3, 4), (0,), (3, 0)]:
            if dt.kind == 'b':
                a = rng.integers(0, 2, size=shape).astype(dt)
            elif dt.kind in 'iu':
                info = np.iinfo(dt)
                a = rng.integers(info.min, info.max, size=shape, dtype=dt.newbyteorder('='), endpoint=True).astype(dt)
            elif dt.kind == 'c':
                a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
            else:
                a = rng.standard_normal(shape).astype(dt)
            name = '%s%s_%s' % ('be' if order == '>' else 'le', k, 'x'.join(map(str, shape)) or 'scalar')
            put(name, a)
            if len(shape) >= 2:
                put(name + '_F', np.asfortranarray(a))
put('special_f8', np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324]))
put('big_i8', np.array([-2**63, 2**63 - 1, 2**53, -2**53 - 1], dtype='<i8'))
put('big_u8', np.array([0, 2**64 - 1, 2**53 + 1], dtype='>u8'))
put('i8_scalar_big', np.array(2**62, dtype='<i8'))
put('u_scalar', np.array('héllo ☃ \\U0001F600'))
put('u_be', np.array([['ab', 'c'], ['', 'déf']], dtype='>U3'))
put('u_F', np.asfortranarray(np.array([['a', 'bb', 'ccc'], ['dddd', 'e', 'f']])))
put('s_arr', np.array([b'abc', b'', b'x\\x00y'], dtype='S4'))
put('s_scalar', np.array(b'bytes'))
put('u_empty', np.zeros((0, 2), dtype='<U4'))
print(json.dumps(out))`, dir);
    let count = 0;
    for (const [name, py] of Object.entries(manifest)) {
      const bytes = fs.readFileSync(path.join(dir, `${name}.npy`));
      const v = decodeNpy(bytes);
      count++;
      if (/^[<>|]?S/.test(parseNpyHeader(bytes).descr.descr)) {
        // numpy S is Python bytes: Buffers, trailing NULs stripped as numpy does
        const flat = flatValues(v).map((b) => { assert.ok(Buffer.isBuffer(b), name); return (b as Buffer).toString('latin1'); });
        assert.deepEqual(flat, py.values.map((s) => (s as string).replace(/\0+$/, '')), name);
        continue;
      }
      if (/^[<>|]?U/.test(parseNpyHeader(bytes).descr.descr)) {
        assert.deepEqual(flatValues(v), py.values, name);
        if (py.shape.length === 0) assert.equal(typeof v, 'string', name);
        continue;
      }
      const expectedValues = py.values.map((x) => (x === 'nan' ? NaN : x === 'inf' ? Infinity : x === '-inf' ? -Infinity : x));
      if (py.shape.length === 0 && !py.dtype.startsWith('complex')) {
        // rank 0 → a JS scalar
        if (py.dtype === 'bool') assert.equal(typeof v, 'boolean', name);
        else assert.ok(typeof v === 'number' || typeof v === 'bigint', `${name}: ${typeof v}`);
        assert.ok(sameNumber(normalise(flatValues(v), py.dtype)[0], normalise(expectedValues, py.dtype)[0]), name);
        continue;
      }
      assert.ok(v instanceof NDArray, name);
      assert.equal(v.dtype, py.dtype, name);
      assert.deepEqual([...v.shape], py.shape, name);
      const got = normalise(flatValues(v), py.dtype);
      const want = normalise(expectedValues, py.dtype);
      assert.equal(got.length, want.length, name);
      got.forEach((g, i) => assert.ok(sameNumber(g, want[i]), `${name}[${i}]: ${String(g)} vs ${String(want[i])}`));
    }
    assert.ok(count > 150, `only ${count} files`);
    // A big int64 scalar beyond 2^53 comes back a bigint, a small one a number.
    assert.equal(decodeNpy(fs.readFileSync(path.join(dir, 'i8_scalar_big.npy'))), 2n ** 62n);
    assert.equal(typeof decodeNpy(fs.readFileSync(path.join(dir, 'lei4_scalar.npy'))), 'number');
  });

  it('refuses object arrays (allow_pickle=False semantics)', () => {
    runPython(`
import numpy as np, sys, json
np.save(sys.argv[1], np.array([1, 'a', None], dtype=object), allow_pickle=True)
print(json.dumps(0))`, path.join(dir, 'obj.npy'));
    assert.throws(() => decodeNpy(fs.readFileSync(path.join(dir, 'obj.npy'))), (err: unknown) => {
      assert.ok(err instanceof CheckpointerError);
      assert.equal(err.code, 'ERR_UNSUPPORTED_DTYPE');
      assert.match(err.message, /allow_pickle/);
      return true;
    });
  });

  it('numpy loads what encodeArray and encodeStringScalar write (allow_pickle=False)', () => {
    const values: [string, NDArray | string][] = [];
    for (const dt of DTYPES) {
      const info = dtypeInfo(dt);
      const data = new info.ArrayType(6 * info.lanes);
      for (let i = 0; i < data.length; i++) {
        if (data instanceof BigInt64Array) data[i] = BigInt(i) * -(2n ** 60n) + 7n;
        else if (data instanceof BigUint64Array) data[i] = 2n ** 64n - 1n - BigInt(i);
        else if (dt === 'bool') data[i] = i % 2;
        else if (dt === 'float16' && FLOAT16_AS_BITS) data[i] = numberToFloat16(i * 1.5 - 3);
        else (data as Float64Array)[i] = i * 1.5 - 3;
      }
      values.push([dt, ndarray(data, [2, 3], dt)]);
    }
    values.push(['text', 'héllo ☃ 😀'], ['empty', '']);
    for (const [name, v] of values) {
      const enc = typeof v === 'string' ? encodeStringScalar(v) : encodeArray(v.dtype, v.shape, v.data);
      fs.writeFileSync(path.join(dir, `ours_${name}.npy`), Buffer.concat([enc.header, enc.data]));
    }
    const py = runPython<Record<string, PyArray>>(`
import json, os, sys, numpy as np
out = {}
for name in json.loads(sys.argv[2]):
    a = np.load(os.path.join(sys.argv[1], 'ours_%s.npy' % name), allow_pickle=False)
    flat = a.flatten()
    if a.dtype.kind == 'c': vals = [[float(x.real), float(x.imag)] for x in flat]
    elif a.dtype.kind in 'iu' and a.dtype.itemsize == 8: vals = [str(int(x)) for x in flat]
    else: vals = flat.tolist()
    out[name] = {'dtype': a.dtype.name, 'shape': list(a.shape), 'values': vals, 'str': a.dtype.str}
print(json.dumps(out))`, dir, JSON.stringify(values.map(([n]) => n)));
    for (const [name, v] of values) {
      if (typeof v === 'string') {
        assert.deepEqual(py[name]!.shape, []);
        assert.equal(py[name]!.values[0], v);
        assert.match(py[name]!.dtype, /^str\d+$/);
        continue;
      }
      assert.equal(py[name]!.dtype, v.dtype, name);
      assert.deepEqual(py[name]!.shape, [2, 3], name);
      assert.deepEqual(normalise(py[name]!.values, v.dtype), normalise(flatValues(v), v.dtype), name);
    }
  });

  it('decodes into the array it returns: one allocation, aligned, no second copy', () => {
    const src = ndarray(Float64Array.from({ length: 1000 }, (_, i) => i / 7), [10, 100]);
    const enc = encodeArray('float64', src.shape, src.data);
    const plan = planDecode(parseNpyHeader(enc.header));
    plan.target.set(enc.data);
    const out = plan.finish() as NDArray;
    assert.equal(out.data.buffer, plan.target.buffer, 'the target is the result array\'s own memory');
    assert.equal(out.data.byteOffset % 8, 0);
    assert.deepEqual(out.data, src.data);
    // Decoding bytes at an odd offset still gives an aligned array (one copy).
    const odd = Buffer.alloc(enc.header.length + enc.data.length + 1);
    Buffer.concat([enc.header, enc.data]).copy(odd, 1);
    const shifted = decodeNpy(odd.subarray(1), true) as NDArray;
    assert.equal(shifted.data.byteOffset % 8, 0);
    assert.deepEqual(shifted.data, src.data);
  });

  it('transposes Fortran order for every element width', () => {
    for (const itemSize of [1, 2, 4, 8, 16, 12]) {
      const shape = [3, 4, 2];
      const n = 24;
      const fortran = new Uint8Array(n * itemSize);
      // element with C index (i, j, k) stored at Fortran position i + 3j + 12k, its bytes = C index
      for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 2; k++) {
        const c = (i * 4 + j) * 2 + k;
        const f = i + 3 * j + 12 * k;
        fortran.fill(c, f * itemSize, (f + 1) * itemSize);
      }
      const out = new Uint8Array(n * itemSize);
      fortranToC(fortran, out, shape, itemSize);
      for (let c = 0; c < n; c++) assert.ok(out.subarray(c * itemSize, (c + 1) * itemSize).every((b) => b === c), `itemSize ${itemSize}, element ${c}`);
    }
  });

  it('maps rank-0 arrays to JS scalars (complex stays a 0-d NDArray)', () => {
    const scalar = (dt: DType, v: number | bigint): unknown => {
      const info = dtypeInfo(dt);
      const data = new info.ArrayType(info.lanes);
      (data as unknown as (number | bigint)[])[0] = v;
      const enc = encodeArray(dt, [], data);
      return decodeNpy(Buffer.concat([enc.header, enc.data]));
    };
    assert.equal(scalar('bool', 1), true);
    assert.equal(scalar('float32', 0.5), 0.5);
    assert.equal(scalar('int64', 5n), 5);
    assert.equal(scalar('uint64', 2n ** 64n - 1n), 2n ** 64n - 1n);
    const z = scalar('complex128', 2) as NDArray;
    assert.ok(z instanceof NDArray);
    assert.deepEqual([...z.shape], []);
    assert.deepEqual([...z.data], [2, 0]);
  });

  it('stores None as a 0-d |V0 and {} as a 0-d record without fields; numpy loads both with allow_pickle=False', () => {
    const none = encodeNull();
    const empty = encodeEmptyDict();
    assert.equal(decodeNpy(Buffer.concat([none.header, none.data])), null);
    assert.deepEqual(decodeNpy(Buffer.concat([empty.header, empty.data])), {});
    fs.writeFileSync(path.join(dir, 'none.npy'), none.header);
    fs.writeFileSync(path.join(dir, 'empty.npy'), empty.header);
    const py = runPython<{ none: string[]; empty: unknown[] }>(`
import json, os, sys, io, numpy as np
from numpy.lib import format as F
a = np.load(os.path.join(sys.argv[1], 'none.npy'), allow_pickle=False)
b = np.load(os.path.join(sys.argv[1], 'empty.npy'), allow_pickle=False)
# numpy writes the same headers for such arrays
ha, hb = io.BytesIO(), io.BytesIO()
np.save(ha, np.zeros((), dtype='V0')); np.save(hb, np.zeros((), dtype=[]))
print(json.dumps({'none': [a.dtype.str, str(a.shape), ha.getvalue().hex()], 'empty': [str(b.dtype.descr), str(b.shape), hb.getvalue().hex()]}))`, dir);
    assert.deepEqual(py.none.slice(0, 2), ['|V0', '()']);
    assert.deepEqual(py.empty.slice(0, 2), ['[]', '()']);
    assert.equal(py.none[2], none.header.toString('hex'));
    assert.equal(py.empty[2], empty.header.toString('hex'));
  });
});
