/**
 * Dataset handles on NumPy files (lib/dataset/npy-dataset.ts, npz-dataset.ts): .npy grown in place,
 * .npz members read by slice and written from a stream — checked against numpy (Debian's
 * /usr/bin/python3).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, NDArray, NumPyCheckpointer } from '../lib/index';
import type { DatasetSelection } from '../lib/index';
import { crc32, crc32Combine } from '../lib/formats/zip';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('checkpointer-npy-dataset-');
let n = 0;
const fresh = (ext: string): string => path.join(dir, `d${n++}${ext}`);
const SEP = '::>|<::';

function pySlice(s: DatasetSelection[number]): string {
  if (s === null) return ':';
  if (typeof s === 'number') return String(s);
  const p = (v: number | null | undefined): string => (v === null || v === undefined ? '' : String(v));
  return s.length === 3 ? `${p(s[0])}:${p(s[1])}:${s[2]}` : `${p(s[0])}:${p(s[1])}`;
}
const pyIndex = (sel: DatasetSelection): string => (sel.length === 0 ? '()' : `${sel.map(pySlice).join(', ')},`);

const isCode = (code: string) => (err: unknown): boolean => err instanceof CheckpointerError && err.code === code;

/** numpy's view of an array in a .npy, or of a member of an .npz. */
function numpyLoad(file: string, member?: string): { dtype: string; shape: number[]; values: number[] } {
  return runPython(`
import sys, json, numpy as np
f = np.load(sys.argv[1], allow_pickle=False)
a = f[sys.argv[2]] if len(sys.argv) > 2 else f
print(json.dumps({'dtype': str(a.dtype), 'shape': list(a.shape), 'values': a.ravel().tolist()}))
`, file, ...(member === undefined ? [] : [member]));
}

/** numpy's result for each selection of the array in `file` (member, if an .npz). */
function numpySlices(file: string, member: string | null, sels: DatasetSelection[]): { shape: number[]; values: number[] }[] {
  const exprs = sels.map(pyIndex).join(';');
  return runPython(`
import sys, json, numpy as np
f = np.load(sys.argv[1], allow_pickle=False)
a = f[sys.argv[2]] if sys.argv[2] else f
out = []
for e in sys.argv[3].split(';'):
    b = eval('a[' + e + ']')
    out.append({'shape': list(b.shape), 'values': b.ravel().tolist()})
print(json.dumps(out))
`, file, member ?? '', exprs);
}

const SELECTIONS: DatasetSelection[] = [
  [],
  [[0, 10]],
  [[3, 4]],
  [[5, 5]],
  [[7, 2]],
  [[-5, null]],
  [[1, 40, 3]],
  [[0, null, 17]],
  [[2, 9, 2], [1, 3]],
  [null, [0, 3, 2], [1, 4, 2]],
  [[10, 30], null, [3, 4]],
  [[0, 40, 7], [2, 3], [0, 0]],
];

/** Frame i of a [.., 3, 4] array: 100 * i + j. */
const frame = (i: number): Float64Array => Float64Array.from({ length: 12 }, (_, j) => 100 * i + j);

function rchar(): number {
  const m = /rchar:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  return Number(m![1]);
}

describe('.npy dataset handles', () => {
  it('grows a .npy numpy reads: frames, batches, a 0-frame batch, reopen and keep appending (sync)', async () => {
    const file = fresh('.npy');
    const chk = new NumPyCheckpointer(file);
    const ds = await chk.dataset('frames', { dtype: 'float64', shape: [0, 3, 4] });
    assert.deepEqual(ds.shape, [0, 3, 4]);
    for (let i = 0; i < 5; i++) await ds.append(frame(i));
    await ds.append(new NDArray(new Float64Array(0), [0, 3, 4], 'float64'));
    const batch = new Float64Array(36);
    for (let i = 0; i < 3; i++) batch.set(frame(5 + i), 12 * i);
    await ds.append(new NDArray(batch, [3, 3, 4], 'float64'));
    assert.deepEqual(ds.shape, [8, 3, 4]);
    await ds.close();
    let np = numpyLoad(file);
    assert.equal(np.dtype, 'float64');
    assert.deepEqual(np.shape, [8, 3, 4]);
    assert.deepEqual(np.values, Array.from({ length: 8 }, (_, i) => Array.from(frame(i))).flat());

    // Reopen with the key alone (sync API) and keep appending; the checkpointer's get sees it.
    const chk2 = new NumPyCheckpointer(file);
    const ds2 = chk2.datasetSync('arr_0');
    assert.deepEqual(ds2.shape, [8, 3, 4]);
    for (let i = 8; i < 20; i++) ds2.appendSync(frame(i));
    ds2.flushSync();
    assert.deepEqual((chk2.getSync('arr_0') as NDArray).shape, [20, 3, 4]);
    ds2.closeSync();
    assert.equal(chk2.isOpen, false);
    np = numpyLoad(file);
    assert.deepEqual(np.shape, [20, 3, 4]);
    assert.deepEqual(np.values.slice(19 * 12), Array.from(frame(19)));
    // Options that match reopen it too.
    const ds3 = await chk2.dataset('x', { dtype: 'float64', shape: [0, 3, 4] });
    assert.deepEqual(ds3.shape, [20, 3, 4]);
    await ds3.append(frame(20));
    await ds3.close();
    assert.deepEqual(numpyLoad(file).shape, [21, 3, 4]);
  });

  it('slice reads equal numpy slicing (steps, empty and negative ranges), also with frames still buffered', async () => {
    const file = fresh('.npy');
    const chk = new NumPyCheckpointer(file);
    const ds = await chk.dataset('a', { dtype: 'float64', shape: [0, 3, 4] });
    for (let i = 0; i < 30; i++) await ds.append(frame(i));
    await ds.flush();
    for (let i = 30; i < 40; i++) await ds.append(frame(i)); // buffered
    const ours = await Promise.all(SELECTIONS.map((s) => ds.read(s)));
    await ds.close();
    const theirs = numpySlices(file, null, SELECTIONS);
    SELECTIONS.forEach((s, k) => {
      assert.deepEqual(ours[k]!.shape, theirs[k]!.shape, `shape of ${pyIndex(s)}`);
      assert.deepEqual(Array.from(ours[k]!.data as Float64Array), theirs[k]!.values, `values of ${pyIndex(s)}`);
    });
  });

  it('reads big-endian and Fortran-order files numpy wrote, and refuses to append to them', async () => {
    const be = fresh('.npy');
    const fo = fresh('.npy');
    runPython(`
import sys, json, numpy as np
a = (np.arange(40 * 12) * 3).reshape(40, 3, 4).astype('>i4')
assert a.dtype.byteorder == '>'
np.save(sys.argv[1], a)
np.save(sys.argv[2], np.asfortranarray(a.astype('<f8')))
print(json.dumps(0))
`, be, fo);
    const sels = SELECTIONS.slice(1, 10);
    for (const [file, dtype] of [[be, 'int32'], [fo, 'float64']] as const) {
      const chk = new NumPyCheckpointer(file);
      const ds = chk.datasetSync('a');
      assert.equal(ds.dtype, dtype);
      const theirs = numpySlices(file, null, sels);
      sels.forEach((s, k) => {
        const r = ds.readSync(s);
        assert.deepEqual(r.shape, theirs[k]!.shape);
        assert.deepEqual(Array.from(r.data as Int32Array), theirs[k]!.values, `${file} ${pyIndex(s)}`);
      });
      assert.throws(() => ds.appendSync(new (dtype === 'int32' ? Int32Array : Float64Array)(12)), isCode('ERR_UNSUPPORTED_VALUE'));
      ds.closeSync();
    }
  });

  it('checks frames and selections before writing anything', async () => {
    const file = fresh('.npy');
    const chk = new NumPyCheckpointer(file);
    const ds = await chk.dataset('a', { dtype: 'float32', shape: [0, 4] });
    await ds.append(new Float32Array(8));
    await ds.flush();
    const before = fs.readFileSync(file);
    await assert.rejects(ds.append(new Float32Array(3)), RangeError);
    await assert.rejects(ds.append(new NDArray(new Float32Array(10), [2, 5], 'float32')), RangeError);
    await assert.rejects(ds.append(new Float64Array(4)), TypeError);
    assert.throws(() => ds.appendSync(new Int32Array(4)), TypeError);
    await assert.rejects(ds.read([[0, 3]]), RangeError);
    await assert.rejects(ds.read([[-3, 1]]), RangeError);
    assert.throws(() => ds.readSync([[0, 1], [0, 5]]), RangeError);
    await assert.rejects(ds.write([null, [0, 4, 2]], new Float32Array(4)), isCode('ERR_UNSUPPORTED_VALUE'));
    await assert.rejects(ds.resize([2, 5]), isCode('ERR_UNSUPPORTED_VALUE'));
    await assert.rejects(ds.write([[0, 1]], new Float32Array(3)), RangeError);
    assert.deepEqual(ds.shape, [2, 4]);
    assert.deepEqual(fs.readFileSync(file), before);
    await ds.close();
  });

  it('writes slices, grows with write({grow}) and resizes along axis 0 (numpy agrees)', async () => {
    const file = fresh('.npy');
    const chk = new NumPyCheckpointer(file);
    const ds = chk.datasetSync('a', { dtype: 'int16', shape: [3, 4] });
    ds.writeSync([[0, 2]], Int16Array.from({ length: 8 }, (_, i) => i + 1));
    ds.writeSync([[2, 3], [1, 3]], Int16Array.of(-7, -8));
    ds.writeSync([[4, 5]], Int16Array.of(9, 9, 9, 9), { grow: true });
    assert.deepEqual(ds.shape, [5, 4]);
    ds.resizeSync([7, 4]);
    ds.appendSync(Int16Array.of(1, 2, 3, 4));
    ds.closeSync();
    let np = numpyLoad(file);
    assert.equal(np.dtype, 'int16');
    assert.deepEqual(np.shape, [8, 4]);
    assert.deepEqual(np.values, [1, 2, 3, 4, 5, 6, 7, 8, 0, -7, -8, 0, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    const ds2 = new NumPyCheckpointer(file).datasetSync('a');
    ds2.resizeSync([2, 4]);
    ds2.closeSync();
    np = numpyLoad(file);
    assert.deepEqual(np.shape, [2, 4]);
    assert.equal(fs.statSync(file).size, 128 + 16);
  });

  it('a slice read of a large .npy reads only the needed bytes', async () => {
    const file = fresh('.npy');
    runPython(`
import sys, json, numpy as np
np.save(sys.argv[1], np.arange(4096 * 1024, dtype='<f8').reshape(4096, 1024))
print(json.dumps(0))
`, file);
    const chk = new NumPyCheckpointer(file);
    const ds = chk.datasetSync('a');
    const before = rchar();
    const r = ds.readSync([[1000, 1128]]);
    const used = rchar() - before;
    assert.equal((r.data as Float64Array)[0], 1000 * 1024);
    assert.ok(used <= 1.5 * 128 * 8192, `read ${used} bytes for a ${128 * 8192}-byte slice`);
    ds.closeSync();
  });
});

describe('.npz dataset handles', () => {
  it('crc32Combine equals the CRC-32 of the concatenation', () => {
    const a = Buffer.from('the header, known last');
    const b = Buffer.alloc(100003, 7);
    assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(Buffer.concat([a, b])));
    assert.equal(crc32Combine(crc32(a), crc32(Buffer.alloc(0)), 0), crc32(a));
  });

  it('streams a member numpy reads, beside other values; get/keys see it after the handle closes; the spool goes', async () => {
    const file = fresh('.npz');
    const chk = new NumPyCheckpointer(file);
    await chk.set('params', { lr: 0.5 });
    const ds = await chk.dataset(['run', 'energies'], { dtype: 'float64', shape: [0, 3, 4] });
    for (let i = 0; i < 7; i++) await ds.append(frame(i));
    await ds.append(new NDArray(new Float64Array(0), [0, 3, 4], 'float64'));
    assert.ok(fs.readdirSync(dir).some((f) => f.endsWith('.spool')));
    assert.deepEqual(Array.from((await ds.read([[2, 4], [0, 1], [0, 2]])).data as Float64Array), [200, 201, 300, 301]);
    await assert.rejects(ds.write([[0, 1]], frame(0)), isCode('ERR_UNSUPPORTED_VALUE'));
    await assert.rejects(ds.resize([9, 3, 4]), isCode('ERR_UNSUPPORTED_VALUE'));
    await chk.open();
    await ds.close();
    assert.deepEqual(await chk.keys(), ['params', 'run']);
    const got = (await chk.get(['run', 'energies'])) as NDArray;
    assert.deepEqual(got.shape, [7, 3, 4]);
    await chk.close();
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.spool')), 'spool removed');
    const np = numpyLoad(file, `run${SEP}energies`);
    assert.equal(np.dtype, 'float64');
    assert.deepEqual(np.shape, [7, 3, 4]);
    assert.deepEqual(np.values, Array.from({ length: 7 }, (_, i) => Array.from(frame(i))).flat());
    assert.equal(numpyLoad(file, `params${SEP}lr`).values[0], 0.5);
  });

  it('writes ZIP64 fields past the limit (lowered here) and numpy still reads the members', async () => {
    const file = fresh('.npz');
    const chk = new NumPyCheckpointer(file, { zip64Limit: 100 });
    chk.setSync('small', Int32Array.of(1, 2, 3));
    const ds = chk.datasetSync('big', { dtype: 'uint8', shape: [0] });
    for (let i = 0; i < 50; i++) ds.appendSync(Uint8Array.from({ length: 100 }, (_, j) => (i + j) % 251));
    ds.closeSync();
    const np = numpyLoad(file, 'big.npy');
    assert.deepEqual(np.shape, [5000]);
    assert.equal(np.values[4999], (49 + 99) % 251);
    assert.deepEqual(numpyLoad(file, 'small.npy').values, [1, 2, 3]);
    const info = runPython<number[]>(`
import sys, json, zipfile
print(json.dumps([zi.file_size for zi in zipfile.ZipFile(sys.argv[1]).infolist()]))`, file);
    assert.deepEqual(info.length, 2);
    // and we read it back: whole and by slice
    const back = new NumPyCheckpointer(file);
    assert.deepEqual(((back.getSync('big') as NDArray).shape), [5000]);
    const r = back.datasetSync('big');
    assert.deepEqual(Array.from(r.readSync([[4998, null]]).data as Uint8Array), [(49 + 98) % 251, (49 + 99) % 251]);
    r.closeSync();
  });

  it('slice reads of stored and compressed members equal numpy slicing; members are read-only', async () => {
    const file = fresh('.npz');
    const zfile = fresh('.npz');
    runPython(`
import sys, json, numpy as np
a = (np.arange(40 * 12, dtype='<f8') * 0.5).reshape(40, 3, 4)
np.savez(sys.argv[1], a=a, b=np.arange(5))
np.savez_compressed(sys.argv[2], a=a)
print(json.dumps(0))
`, file, zfile);
    for (const f of [file, zfile]) {
      const chk = new NumPyCheckpointer(f);
      const ds = await chk.dataset('a');
      assert.deepEqual(ds.shape, [40, 3, 4]);
      const theirs = numpySlices(f, 'a', SELECTIONS);
      for (let k = 0; k < SELECTIONS.length; k++) {
        const r = await ds.read(SELECTIONS[k]);
        assert.deepEqual(r.shape, theirs[k]!.shape);
        assert.deepEqual(Array.from(r.data as Float64Array), theirs[k]!.values, `${f} ${pyIndex(SELECTIONS[k]!)}`);
      }
      await assert.rejects(ds.append(new Float64Array(12)), isCode('ERR_UNSUPPORTED_VALUE'));
      await assert.rejects(ds.write([[0, 1]], new Float64Array(12)), isCode('ERR_UNSUPPORTED_VALUE'));
      await ds.close();
    }
    // Opening with options continues the member as a stream.
    const chk = new NumPyCheckpointer(file);
    const ds = await chk.dataset('a', { dtype: 'float64', shape: [0, 3, 4] });
    assert.deepEqual(ds.shape, [40, 3, 4]);
    await ds.append(frame(1));
    await assert.rejects(chk.dataset('a', { dtype: 'float64', shape: [0, 3, 4] }), isCode('ERR_UNSUPPORTED_VALUE'));
    await assert.rejects(chk.dataset('b', { dtype: 'float32', shape: [0] }), TypeError);
    await ds.close();
    const np = numpyLoad(file, 'a');
    assert.deepEqual(np.shape, [41, 3, 4]);
    assert.deepEqual(np.values.slice(40 * 12), Array.from(frame(1)));
    assert.deepEqual(numpyLoad(file, 'b').values, [0, 1, 2, 3, 4]);
  });

  it('a slice read of a large stored member reads only the needed bytes', async () => {
    const file = fresh('.npz');
    runPython(`
import sys, json, numpy as np
np.savez(sys.argv[1], small=np.arange(3), big=np.arange(4096 * 1024, dtype='<f8').reshape(4096, 1024))
print(json.dumps(0))
`, file);
    const chk = new NumPyCheckpointer(file);
    const ds = await chk.dataset('big');
    const before = rchar();
    const r = await ds.read([[2000, 2128]]);
    const used = rchar() - before;
    assert.equal((r.data as Float64Array)[1], 2000 * 1024 + 1);
    assert.ok(used <= 1.5 * 128 * 8192, `read ${used} bytes for a ${128 * 8192}-byte slice`);
    await ds.close();
  });

  it('a stream that fails to create is not left behind; closing the scope flushes and closes its handles', async () => {
    const file = fresh('.npz');
    const chk = new NumPyCheckpointer(file);
    chk.openSync();
    const ds = chk.datasetSync('x', { dtype: 'int64', shape: [0, 2] });
    ds.appendSync(BigInt64Array.of(1n, 2n));
    await assert.rejects(chk.dataset('x', { dtype: 'int64', shape: [0, 3] }), isCode('ERR_UNSUPPORTED_VALUE'));
    await assert.rejects(chk.dataset('y', { dtype: 'int64', shape: [0, 3], compression: 'gzip' }), isCode('ERR_UNSUPPORTED_VALUE'));
    chk.closeSync(); // the handle was opened in this scope: it goes with it
    assert.equal(chk.isOpen, false);
    assert.equal(ds.isOpen, false);
    ds.closeSync(); // no-op
    assert.deepEqual(numpyLoad(file, 'x').values, [1, 2]);
  });
});
