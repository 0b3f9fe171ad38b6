/**
 * Record (structured-dtype) and float16 dataset handles on .npy and .npz: created from fields,
 * appended with RecordArray rows, read back by row slices as RecordArrays, and what numpy loads.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CheckpointerError, NDArray, ndarray, NumPyCheckpointer, RecordArray, recordArray } from '../lib/index';
import type { RecordField } from '../lib/index';
import { float16Values, FLOAT16_AS_BITS, Float16ArrayType, numberToFloat16 } from '../lib/values/dtype';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('npy-record-datasets-');
let n = 0;
const fresh = (ext: string): string => path.join(dir, `d${n++}${ext}`);

const FIELDS: RecordField[] = [
  { name: 'step', type: { kind: 'number', dtype: 'int64' }, shape: [] },
  { name: 'pos', type: { kind: 'number', dtype: 'float64' }, shape: [3] },
  { name: 'tag', type: { kind: 'string', length: 4, encoding: 'ascii' }, shape: [] },
  { name: 'ok', type: { kind: 'number', dtype: 'bool' }, shape: [] },
  { name: 'sub', type: { kind: 'record', fields: [{ name: 'e', type: { kind: 'number', dtype: 'float32' }, shape: [] }] }, shape: [] },
];

/** Rows `from`..`from + k` of the table every test appends. */
function rows(from: number, k: number): RecordArray {
  const idx = Array.from({ length: k }, (_, i) => from + i);
  return recordArray({
    step: BigInt64Array.from(idx, (i) => BigInt(i * 10)),
    pos: ndarray(Float64Array.from(idx.flatMap((i) => [i, i + 0.5, -i])), [k, 3]),
    tag: idx.map((i) => `r${i}`),
    ok: ndarray(Uint8Array.from(idx, (i) => i % 2), [k], 'bool'),
    sub: recordArray({ e: Float32Array.from(idx, (i) => i / 4) }),
  }, { fields: FIELDS });
}

const rowOf = (i: number): Record<string, unknown> => ({ step: BigInt(i * 10), pos: [i, i + 0.5, -i], tag: `r${i}`, ok: i % 2 === 1, sub: { e: i / 4 } });

/** numpy's rows of a structured array, as plain JSON (bytes decoded). */
function numpyRows(file: string, member?: string): { descr: unknown; rows: unknown[] } {
  return runPython(`import numpy as np, sys, json
f = np.load(sys.argv[1], allow_pickle=False)
a = f[sys.argv[2]] if len(sys.argv) > 2 else f
def plain(x):
    if isinstance(x, bytes): return x.decode()
    if isinstance(x, np.ndarray): return plain(x.tolist())
    if isinstance(x, (list, tuple)): return [plain(v) for v in x]
    return x
print(json.dumps({'descr': a.dtype.descr, 'rows': [plain(r) for r in a.tolist()]}))`, file, ...(member === undefined ? [] : [member]));
}

const numpyRow = (i: number): unknown[] => [i * 10, [i, i + 0.5, -i], `r${i}`, i % 2 === 1, [i / 4]];
const DESCR = [['step', '<i8'], ['pos', '<f8', [3]], ['tag', '|S4'], ['ok', '|b1'], ['sub', [['e', '<f4']]]];

for (const ext of ['.npy', '.npz']) {
  describe(`record datasets on ${ext}`, () => {
    it('created from fields, appended with RecordArray rows, read back by row slices; numpy loads the table', async () => {
      const file = fresh(ext);
      const chk = new NumPyCheckpointer(file);
      await chk.with(async (c) => {
        const ds = await c.dataset('table', { fields: FIELDS });
        assert.equal(ds.dtype, 'records');
        assert.deepEqual(ds.fields!.map((f) => f.name), ['step', 'pos', 'tag', 'ok', 'sub']);
        await ds.append(rows(0, 3));
        ds.appendSync(rows(3, 1).slice(0, 1, [])); // one record, a frame of shape []
        await ds.append(rows(4, 6));
        assert.deepEqual([...ds.shape], [10]);
        const some = await ds.readRecords!([[2, 5]]);
        assert.ok(some instanceof RecordArray);
        assert.deepEqual(some.toList(), [2, 3, 4].map(rowOf));
        assert.deepEqual(ds.readRecordsSync!([[1, 10, 4]]).toList(), [1, 5, 9].map(rowOf));
        assert.deepEqual((await ds.readRecords!()).toList(), Array.from({ length: 10 }, (_, i) => rowOf(i)));
        await assert.rejects(ds.read(), /holds records.*readRecords/);
        assert.throws(() => ds.appendSync(Float64Array.of(1)), TypeError);
        const wrong = recordArray({ step: BigInt64Array.of(1n) });
        assert.throws(() => ds.appendSync(wrong), /not the dataset's/);
        if (ext === '.npy') {
          ds.writeSync([[0, 1]], rows(100, 1));
          assert.deepEqual(ds.readRecordsSync!([[0, 1]]).toList(), [rowOf(100)]);
        }
        await ds.close();
      });
      const py = numpyRows(file, ext === '.npz' ? 'table' : undefined);
      assert.deepEqual(py.descr, DESCR);
      assert.deepEqual(py.rows, Array.from({ length: 10 }, (_, i) => numpyRow(i === 0 && ext === '.npy' ? 100 : i)));
      // the whole value through get() is the same table
      const back = new NumPyCheckpointer(file).getSync(ext === '.npy' ? 'arr_0' : 'table') as RecordArray;
      assert.equal(back.size, 10);
      assert.deepEqual(back.row(9), rowOf(9));
    });

    it('reopened to append more rows, and numpy-written structured arrays opened for slice reads', async () => {
      const file = fresh(ext);
      await new NumPyCheckpointer(file).with(async (c) => {
        const ds = await c.dataset('table', { fields: FIELDS });
        await ds.append(rows(0, 2));
      });
      await new NumPyCheckpointer(file).with(async (c) => {
        const ds = await c.dataset('table', { fields: FIELDS });
        assert.deepEqual([...ds.shape], [2]);
        await ds.append(rows(2, 2));
        await assert.rejects(c.dataset('other', { fields: [{ name: 'x', type: { kind: 'string', length: 0, encoding: 'utf8', variable: true }, shape: [] }] }),
          (err: unknown) => err instanceof CheckpointerError && err.code === 'ERR_UNSUPPORTED_VALUE');
      });
      assert.deepEqual(numpyRows(file, ext === '.npz' ? 'table' : undefined).rows, [0, 1, 2, 3].map(numpyRow));
      await assert.rejects(new NumPyCheckpointer(file).with(async (c) => c.dataset('table', { fields: FIELDS.slice(0, 2) })), /other record fields/);

      // numpy's own aligned (padded) table: read by slices, refused for appends with the reason
      const theirs = fresh(ext);
      runPython(`import numpy as np, sys, json
a = np.zeros(5, dtype=np.dtype([('a', 'i1'), ('b', '>f8')], align=True)); a['a'] = range(5); a['b'] = [x / 2 for x in range(5)]
(np.save(sys.argv[1], a) if sys.argv[1].endswith('.npy') else np.savez(sys.argv[1], t=a))
print(json.dumps(0))`, theirs);
      await new NumPyCheckpointer(theirs).with(async (c) => {
        const ds = await c.dataset(ext === '.npy' ? 'arr_0' : 't');
        assert.equal(ds.dtype, 'records');
        assert.deepEqual(ds.readRecordsSync!([[1, 4, 2]]).toList(), [{ a: 1, b: 0.5 }, { a: 3, b: 1.5 }]);
        if (ext === '.npy') assert.throws(() => ds.appendSync(ds.readRecordsSync!([[0, 1]])), /read, not changed/);
        await ds.close();
        if (ext === '.npz') {
          await assert.rejects(c.dataset('t', { fields: [{ name: 'a', type: { kind: 'number', dtype: 'int8' }, shape: [] }, { name: 'b', type: { kind: 'number', dtype: 'float64' }, shape: [] }] }),
            /other record fields|read, not appended/);
        }
      });
    });

    it('float16 datasets: appended, sliced, loaded by numpy as float16', async () => {
      const file = fresh(ext);
      const vals = [0.5, -1, 2.5, 65504, -0, 1e-4];
      const data = FLOAT16_AS_BITS ? Uint16Array.from(vals, numberToFloat16) : new (Float16ArrayType as Float64ArrayConstructor)(vals);
      await new NumPyCheckpointer(file).with(async (c) => {
        const ds = await c.dataset('h', { dtype: 'float16', shape: [0, 2] });
        await ds.append(ndarray(data, [3, 2], 'float16'));
        const part = await ds.read([[1, 3], [1, 2]]);
        assert.equal(part.dtype, 'float16');
        assert.deepEqual([...float16Values(part.data)], [float16Values(data)[3], float16Values(data)[5]]);
      });
      const py = runPython<{ dtype: string; bits: number[] }>(`import numpy as np, sys, json
f = np.load(sys.argv[1]); a = f['h'] if sys.argv[1].endswith('.npz') else f
print(json.dumps({'dtype': a.dtype.str, 'bits': a.reshape(-1).view('<u2').tolist()}))`, file);
      assert.equal(py.dtype, '<f2');
      assert.deepEqual(py.bits, [...vals.map((v) => numberToFloat16(v))]);
      const back = new NumPyCheckpointer(file).getSync(ext === '.npy' ? 'arr_0' : 'h') as NDArray;
      assert.equal(back.dtype, 'float16');
    });
  });
}
