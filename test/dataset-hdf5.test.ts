/**
 * HDF5 dataset handles (lib/dataset/): streaming append, slice reads and writes, resize,
 * compression, attrs — checked against h5py and numpy (Debian's /usr/bin/python3).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CheckpointerError, CheckpointerKeyError, HDF5Checkpointer, HDF5Dataset, JSONCheckpointer, NDArray, ndarray,
} from '../lib/index';
import type { Dataset, DatasetSelection } from '../lib/index';
import { normalizeSelection } from '../lib/dataset/selection';
import { createOptions } from '../lib/dataset/hdf5-dataset';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';

const dir = tempDir('checkpointer-dataset-');
let n = 0;
const fresh = (): string => path.join(dir, `d${n++}.h5`);

/** Frame i of a [.., 3, 4] float64 dataset: 100 * i + j. */
const frame = (i: number, size = 12): Float64Array => Float64Array.from({ length: size }, (_, j) => 100 * i + j);

/** Python slice text for one of our axis selections. */
function pySlice(s: DatasetSelection[number]): string {
  if (s === null) return ':';
  if (typeof s === 'number') return String(s);
  const p = (v: number | null | undefined): string => (v === null || v === undefined ? '' : String(v));
  return s.length === 3 ? `${p(s[0])}:${p(s[1])}:${s[2]}` : `${p(s[0])}:${p(s[1])}`;
}
const pyIndex = (sel: DatasetSelection): string => (sel.length === 0 ? '()' : sel.map(pySlice).join(', '));

async function rejectsWith(p: Promise<unknown>, check: (err: unknown) => boolean, msg?: string): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.ok(check(err), `${msg ?? 'unexpected error'}: ${String(err)}`);
    return true;
  });
}
const isCode = (code: string) => (err: unknown): boolean => err instanceof CheckpointerError && err.code === code;

describe('dataset: create and append, h5py reads it', () => {
  it('single frames and batches, gzip + shuffle, maxshape, attrs', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('frames', {
      dtype: 'float64', shape: [0, 3, 4], chunks: true, compression: 'gzip', compressionLevel: 6, shuffle: true,
    });
    assert.ok(ds instanceof HDF5Dataset);
    assert.deepEqual(ds.shape, [0, 3, 4]);
    assert.deepEqual(ds.maxshape, [null, 3, 4]);
    assert.equal(ds.compression, 'gzip');
    assert.equal(ds.compressionLevel, 6);
    assert.equal(ds.shuffle, true);
    assert.equal(ds.chunks!.length, 3);
    for (let i = 0; i < 500; i++) await ds.append(frame(i));
    const batch = new Float64Array(12 * 250);
    for (let k = 0; k < 250; k++) batch.set(frame(500 + k), 12 * k);
    await ds.append(ndarray(batch, [250, 3, 4]));
    await ds.append(frame(750)); // a bare TypedArray of one frame
    assert.deepEqual(ds.shape, [751, 3, 4], 'shape counts buffered frames');
    ds.attrs.set('units', 'nm');
    ds.attrs.set('dt', 0.5);
    assert.equal(ds.attrs.get('units'), 'nm');
    assert.deepEqual(ds.attrs.keys().sort(), ['dt', 'units']);
    assert.equal(ds.attrs.get('missing'), undefined);
    await ds.close();
    assert.equal(chk.isOpen, false, 'closing the handle gives back its scope');

    const r = h5py(`
f = h5py.File(sys.argv[1], 'r'); d = f['frames']
a = d[()]
ok = bool(np.array_equal(a, 100 * np.arange(751)[:, None, None] + np.arange(12).reshape(3, 4)))
out({'shape': d.shape, 'maxshape': d.maxshape, 'compression': d.compression, 'opts': d.compression_opts,
     'shuffle': d.shuffle, 'chunks': d.chunks, 'ok': ok, 'units': d.attrs['units'], 'dt': d.attrs['dt']})`, file);
    assert.deepEqual(r.shape, [751, 3, 4]);
    assert.deepEqual(r.maxshape, [null, 3, 4]);
    assert.equal(r.compression, 'gzip');
    assert.equal(r.opts, 6);
    assert.equal(r.shuffle, true);
    assert.deepEqual(r.chunks, ds.chunks);
    assert.equal(r.ok, true);
    assert.equal(r.units, 'nm');
    assert.equal(r.dt, 0.5);
  });

  it('dtypes: int32, complex128, uint64, bool; scalar frames of a rank-1 dataset; fillValue', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    await chk.with(async (c) => {
      const a = await c.dataset('i32', { dtype: 'int32', shape: [0, 2], chunks: [3, 2] });
      for (let i = 0; i < 10; i++) await a.append(Int32Array.of(i, -i));
      const z = await c.dataset('c128', { dtype: 'complex128', shape: [0, 2] });
      await z.append(Float64Array.of(1, 2, 3, 4)); // one frame of two complex numbers
      await z.append(ndarray(Float64Array.of(5, 6, 7, 8, 9, 10, 11, 12), [2, 2], 'complex128'));
      const u = await c.dataset('u64', { dtype: 'uint64' });
      await u.append(2n ** 64n - 1n);
      await u.append(5);
      await u.append(BigUint64Array.of(7n, 8n));
      const b = await c.dataset('flags', { dtype: 'bool', shape: [0] });
      await b.append(true);
      await b.append(Uint8Array.of(0, 1));
      const g = await c.dataset('grown', { dtype: 'float32', shape: [2, 2], maxshape: [null, 2], fillValue: -1 });
      await g.resize([4, 2]);
      await g.write([[3, 4]], Float32Array.of(8, 9));
      for (const d of [a, z, u, b, g]) await d.close();
    });
    const r = h5py(`
f = h5py.File(sys.argv[1], 'r')
out({k: {'dtype': str(f[k].dtype), 'v': f[k][()]} for k in ['i32', 'c128', 'u64', 'flags', 'grown']} | {'u64s': [str(x) for x in f['u64'][()]], 'chunks': f['i32'].chunks})`, file);
    assert.equal(r.i32.dtype, 'int32');
    assert.deepEqual(r.i32.v, Array.from({ length: 10 }, (_, i) => [i, i === 0 ? 0 : -i]));
    assert.deepEqual(r.chunks, [3, 2]);
    assert.equal(r.c128.dtype, 'complex128');
    assert.deepEqual(r.c128.v, [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]]);
    assert.equal(r.u64.dtype, 'uint64');
    assert.deepEqual(r.u64s, ['18446744073709551615', '5', '7', '8']);
    assert.equal(r.flags.dtype, 'bool');
    assert.deepEqual(r.flags.v, [true, false, true]);
    assert.deepEqual(r.grown.v, [[-1, -1], [-1, -1], [-1, -1], [8, 9]]);
  });

  it('an append batch of 0 frames changes nothing', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = chk.datasetSync('x', { dtype: 'float64', shape: [0, 3, 4] });
    await ds.append(new Float64Array(0));
    await ds.append(ndarray(new Float64Array(0), [0, 3, 4]));
    ds.appendSync(new Float64Array(0));
    assert.deepEqual(ds.shape, [0, 3, 4]);
    await ds.append(frame(1));
    await ds.append(new Float64Array(0));
    assert.deepEqual(ds.shape, [1, 3, 4]);
    await ds.close();
    assert.deepEqual(h5py(`out(h5py.File(sys.argv[1], 'r')['x'].shape)`, file), [1, 3, 4]);
  });
});

describe('dataset: read(selection) equals numpy slicing', () => {
  const selections: DatasetSelection[] = [
    [], [null], [[0, 5]], [[3, 40, 7]], [[-10, -1]], [[-10, null, 3]], [[null, 5, 2], [1, null]],
    [[5, 5]], [[9, 2]], [[0, 0], null, [2, 3]], [null, [0, 13, 12], [10, 11]], [[1, 50, 49], [12, 13], [0, 11, 5]],
    [[47, 50], [-1, null], [-3, -1]], [[0, 50, 2], [0, 13, 2], [0, 11, 2]], [[2, 30, 9], [3, 11], [4, null, 4]],
    [[null, null, 100]], [[49, null]], [[0, 50, 1], [5, 6, 1], [7, 8, 1]],
  ];
  const layouts: Record<string, string> = {
    'chunks (7, 5, 3)': `chunks=(7, 5, 3), maxshape=(None, 13, 11)`,
    'chunks (1, 13, 11) gzip+shuffle': `chunks=(1, 13, 11), compression='gzip', shuffle=True`,
    'contiguous': ``,
  };
  for (const [name, opts] of Object.entries(layouts)) {
    it(name, async () => {
      const file = fresh();
      const sels = JSON.stringify(selections.map(pyIndex));
      const expected = h5py<number[][]>(`
rng = np.random.default_rng(5)
a = rng.standard_normal((50, 13, 11))
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('a', data=a${opts ? ', ' + opts : ''})
res = []
for s in json.loads(sys.argv[2]):
    v = eval('a[' + s + ']')
    res.append({'shape': list(v.shape), 'v': v.ravel().tolist()})
out(res)`, file, sels);
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('a');
      for (let i = 0; i < selections.length; i++) {
        const got = await ds.read(selections[i]);
        const want = expected[i] as unknown as { shape: number[]; v: number[] };
        assert.deepEqual(got.shape, want.shape, `shape of a[${pyIndex(selections[i]!)}]`);
        assert.deepEqual(Array.from(got.data as Float64Array), want.v, `values of a[${pyIndex(selections[i]!)}]`);
        const sync = ds.readSync(selections[i]);
        assert.deepEqual(sync.data, got.data);
      }
      await ds.close();
    });
  }

  it('dense steps are read chunk by chunk: partial last chunk, never-written chunks (fill value), as h5py reads them', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 4], chunks: [10, 4], fillValue: -1 });
    for (let i = 0; i < 35; i++) await ds.append(Float64Array.from({ length: 4 }, (_, j) => 10 * i + j));
    await ds.resize([60, 4]); // rows 35..59: chunk 3 partly written, chunks 4 and 5 never written
    const sels: DatasetSelection[] = [[[0, null, 3]], [[1, 58, 2]], [[5, null, 7], null], [[-1, null, 2]], [[0, null, 2], [1, 3]]];
    const ours = [];
    for (const sel of sels) ours.push(Array.from((await ds.read(sel)).data as Float64Array));
    await ds.close();
    const theirs = h5py(`
f = h5py.File(sys.argv[1], 'r')
out([f['x'][eval('np.s_[' + s + ']')].ravel().tolist() for s in json.loads(sys.argv[2])])`, file, JSON.stringify(sels.map(pyIndex)));
    assert.deepEqual(ours, theirs);
  });

  it('stepped writes equal numpy assignment', async () => {
    const file = fresh();
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('a', data=np.arange(40 * 9 * 5, dtype='f8').reshape(40, 9, 5), chunks=(6, 4, 5))`, file);
    const writes: DatasetSelection[] = [[[1, 30, 4], [0, 9, 3], [1, 4, 2]], [[-5, null], [2, 3]], [[0, 40, 13]], [[7, 8], null, [4, 5]]];
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('a');
    let value = 1000;
    for (const sel of writes) {
      const counts = normalizeSelection(sel, ds.shape).map((r) => r.count);
      const size = counts.reduce((x, y) => x * y, 1);
      const data = Float64Array.from({ length: size }, () => -(value++));
      await ds.write(sel, ndarray(data, counts));
    }
    await ds.close();
    const ok = h5py(`
a = np.arange(40 * 9 * 5, dtype='f8').reshape(40, 9, 5)
value = 1000
for s in json.loads(sys.argv[2]):
    v = eval('a[' + s + ']')
    a_idx = s
    data = -np.arange(value, value + v.size, dtype='f8').reshape(v.shape)
    exec('a[' + s + '] = data')
    value += v.size
out(bool(np.array_equal(h5py.File(sys.argv[1], 'r')['a'][()], a)))`, file, JSON.stringify(writes.map(pyIndex)));
    assert.equal(ok, true);
  });

  it('a slice of a large dataset reads about the slice from the file (rchar)', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const rowLen = 1024; // 8 KiB rows
    const ds = await chk.dataset('big', { dtype: 'float64', shape: [0, rowLen] });
    const batch = new Float64Array(1024 * rowLen);
    for (let k = 0; k < 8; k++) {
      batch.fill(k);
      await ds.append(batch); // 64 MiB in all
    }
    await ds.close();
    const rchar = (): number => Number(/rchar:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))![1]);
    const rd = await chk.dataset('big');
    const before = rchar();
    const slice = await rd.read([[3000, 3000 + 256]]); // 2 MiB
    const read = rchar() - before;
    await rd.close();
    assert.deepEqual(slice.shape, [256, rowLen]);
    assert.equal((slice.data as Float64Array)[0], 2);
    assert.ok(read < 1.5 * 256 * rowLen * 8, `read ${read} bytes for a 2 MiB slice`);
  });
});

describe('dataset: appending to what others wrote, reopening, interleaving', () => {
  it("appends to h5py's chunked, compressed dataset", async () => {
    const file = fresh();
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    g = f.create_group('run')
    g.create_dataset('x', data=np.arange(10 * 300, dtype='f8').reshape(10, 3, 100), maxshape=(None, 3, 100), chunks=True, compression='gzip', shuffle=True)`, file);
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset(['run', 'x']);
    assert.deepEqual(ds.shape, [10, 3, 100]);
    assert.equal(ds.compression, 'gzip');
    const f = (i: number): Float64Array => Float64Array.from({ length: 300 }, (_, j) => i * 300 + j);
    for (let i = 10; i < 400; i++) await ds.append(f(i));
    const batch = new Float64Array(300 * 600);
    for (let k = 0; k < 600; k++) batch.set(f(400 + k), 300 * k);
    await ds.append(batch);
    await ds.close();
    const r = h5py(`
d = h5py.File(sys.argv[1], 'r')['run/x']
out({'shape': d.shape, 'ok': bool(np.array_equal(d[()], np.arange(1000 * 300, dtype='f8').reshape(1000, 3, 100))), 'c': d.compression, 's': d.shuffle})`, file);
    assert.deepEqual(r, { shape: [1000, 3, 100], ok: true, c: 'gzip', s: true });
  });

  it('reopens and keeps appending (key alone, or matching options)', async () => {
    const file = fresh();
    const opts = { dtype: 'float64', shape: [0, 3, 4], chunks: [8, 3, 4] } as const;
    {
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('x', opts);
      for (let i = 0; i < 13; i++) await ds.append(frame(i));
      await ds.close();
    }
    {
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('x');
      assert.deepEqual(ds.shape, [13, 3, 4]);
      for (let i = 13; i < 30; i++) await ds.append(frame(i));
      await ds.close();
    }
    {
      const chk = new HDF5Checkpointer(file);
      const ds = chk.datasetSync('x', { ...opts, shape: [0, 3, 4] });
      assert.deepEqual(ds.shape, [30, 3, 4]);
      for (let i = 30; i < 41; i++) ds.appendSync(frame(i));
      ds.closeSync();
      await assert.rejects(chk.dataset('x', { dtype: 'float32', shape: [0, 3, 4] }), TypeError);
      await assert.rejects(chk.dataset('x', { dtype: 'float64', shape: [0, 4, 3] }), RangeError);
    }
    const r = h5py(`
d = h5py.File(sys.argv[1], 'r')['x']
out({'shape': d.shape, 'ok': bool(np.array_equal(d[()], 100 * np.arange(41)[:, None, None] + np.arange(12).reshape(3, 4)))})`, file);
    assert.deepEqual(r, { shape: [41, 3, 4], ok: true });
  });

  it('interleaved appends to several datasets, awaited and not', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const a = await chk.dataset('a', { dtype: 'float64', shape: [0, 3, 4], chunks: [5, 3, 4] });
    const b = await chk.dataset(['g', 'b'], { dtype: 'int16', shape: [0], chunks: [7] });
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      if (i % 2) await a.append(frame(i));
      else pending.push(a.append(frame(i)));
      pending.push(b.append(i));
      if (i === 30) pending.push(chk.set('note', 'half-way'));
    }
    // reads keep order with the appends before them
    const firstTen = a.read([[0, 10]]);
    pending.push(b.append(Int16Array.of(-1, -2)));
    await Promise.all(pending);
    assert.deepEqual(Array.from((await firstTen).data as Float64Array), Array.from({ length: 10 }, (_, i) => Array.from(frame(i))).flat());
    assert.deepEqual(a.shape, [60, 3, 4]);
    assert.deepEqual(b.shape, [62]);
    const last = await b.read([[-3, null]]);
    assert.deepEqual(Array.from(last.data as Int16Array), [59, -1, -2]);
    await Promise.all([a.close(), b.close()]);
    assert.equal(chk.isOpen, false);
    const r = h5py(`
f = h5py.File(sys.argv[1], 'r')
out({'a': bool(np.array_equal(f['a'][()], 100 * np.arange(60)[:, None, None] + np.arange(12).reshape(3, 4))), 'b': f['g/b'][()], 'note': f['note'][()].decode()})`, file);
    assert.deepEqual(r, { a: true, b: [...Array.from({ length: 60 }, (_, i) => i), -1, -2], note: 'half-way' });
  });

  it('flush writes buffered frames (another reader sees them); close writes the rest', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 3, 4] });
    for (let i = 0; i < 5; i++) await ds.append(frame(i));
    await ds.flush();
    const seen = h5py(`out(h5py.File(sys.argv[1], 'r', locking=False)['x'].shape)`, file);
    assert.deepEqual(seen, [5, 3, 4]);
    for (let i = 5; i < 9; i++) await ds.append(frame(i));
    assert.deepEqual((await ds.read([[-1, null]])).data, frame(8), 'reads see buffered frames');
    await ds.close();
    const r = h5py(`
d = h5py.File(sys.argv[1], 'r')['x']
out(bool(np.array_equal(d[()], 100 * np.arange(9)[:, None, None] + np.arange(12).reshape(3, 4))))`, file);
    assert.equal(r, true);
  });
});

describe('dataset: writes, resize, grow', () => {
  it('write grows within maxshape when asked; resize shrinks and grows', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('m', { dtype: 'int32', shape: [2, 3], maxshape: [null, 6], chunks: [2, 2], fillValue: 7 });
    await rejectsWith(ds.write([[2, 3]], Int32Array.of(1, 2, 3)), (e) => e instanceof RangeError, 'out of bounds without grow');
    await ds.write([[3, 4], [0, 5]], Int32Array.of(1, 2, 3, 4, 5), { grow: true });
    assert.deepEqual(ds.shape, [4, 5]);
    await rejectsWith(ds.write([null, [0, 7]], new Int32Array(28), { grow: true }), (e) => e instanceof RangeError, 'past maxshape');
    for (let i = 0; i < 3; i++) await ds.append(Int32Array.of(i, i, i, i, i));
    await ds.resize([6, 5]);
    await ds.append(Int32Array.of(9, 9, 9, 9, 9));
    await ds.resize([7, 6]);
    assert.deepEqual(ds.shape, [7, 6]);
    await rejectsWith(ds.resize([7, 7]), (e) => e instanceof RangeError);
    await rejectsWith(ds.resize([7]), (e) => e instanceof RangeError);
    await ds.append(Int32Array.of(1, 2, 3, 4, 5, 6));
    await ds.close();
    const r = h5py(`out(h5py.File(sys.argv[1], 'r')['m'][()])`, file);
    assert.deepEqual(r, [
      [7, 7, 7, 7, 7, 7], [7, 7, 7, 7, 7, 7], [7, 7, 7, 7, 7, 7], [1, 2, 3, 4, 5, 7],
      [0, 0, 0, 0, 0, 7], [1, 1, 1, 1, 1, 7], [9, 9, 9, 9, 9, 7], [1, 2, 3, 4, 5, 6],
    ]);
  });

  it('writes into buffered frames reach the file; later appends do not undo them', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 3, 4], chunks: [4, 3, 4] });
    const rows: Float64Array[] = [];
    const push = async (f: Float64Array): Promise<void> => {
      rows.push(f);
      await ds.append(f);
    };
    for (let i = 0; i < 3; i++) await push(frame(i));
    await ds.write([[1, 2], [0, 1]], Float64Array.of(-1, -2, -3, -4));
    rows[1] = Float64Array.from(rows[1]!, (v, j) => (j < 4 ? -(j + 1) : v));
    for (let i = 3; i < 11; i++) await push(frame(i));
    await ds.flush();
    await ds.write([[9, 11, 1], null, [3, 4]], new Float64Array(6).fill(0.5));
    for (const r of [9, 10]) rows[r] = Float64Array.from(rows[r]!, (v, j) => (j % 4 === 3 ? 0.5 : v));
    for (let i = 11; i < 14; i++) await push(frame(i));
    assert.deepEqual(Array.from((await ds.read()).data as Float64Array), rows.flatMap((r) => Array.from(r)));
    await ds.close();
    const got = await chk.get<NDArray>('x');
    assert.deepEqual(Array.from(got.data as Float64Array), rows.flatMap((r) => Array.from(r)));
  });

  it('a 0-d dataset reads and writes whole; append is a TypeError', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('s', { dtype: 'float64', shape: [] });
    assert.deepEqual(ds.maxshape, []);
    assert.equal(ds.chunks, null);
    await ds.write([], Float64Array.of(2.5));
    assert.deepEqual(Array.from((await ds.read()).data as Float64Array), [2.5]);
    await rejectsWith(ds.append(1), (e) => e instanceof TypeError);
    await ds.close();
    assert.equal(await chk.get('s'), 2.5);
  });
});

describe('dataset: random operations against an in-memory model', () => {
  for (const compressed of [false, true]) {
    it(compressed ? 'gzip chunks [3, 4, 512]' : 'chunks [3, 4, 512]', async () => {
      let seed = compressed ? 7 : 3;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return Math.floor((seed / 2147483648) * n);
      };
      const F = [8, 512];
      const L = F[0]! * F[1]!;
      const file = fresh();
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('x', {
        dtype: 'float32', shape: [0, ...F], chunks: [3, 4, 512], fillValue: -7, ...(compressed ? { compression: 'gzip', shuffle: true } : {}),
      });
      const model: Float32Array[] = [];
      let serial = 0;
      const newRow = (): Float32Array => {
        const base = ++serial * 8;
        return Float32Array.from({ length: L }, (_, j) => base + (j % 8));
      };
      const randRange = (n: number): [number, number, number] => {
        const a = rnd(n + 1);
        const b = a + rnd(n - a + 1);
        return [a, b, 1 + rnd(rnd(2) ? 1 : 9)];
      };
      const select = (r: [number, number, number], n: number): number[] => {
        const out: number[] = [];
        for (let i = r[0]; i < Math.min(r[1], n); i += r[2]) out.push(i);
        return out;
      };
      for (let op = 0; op < 220; op++) {
        const sync = rnd(4) === 0;
        const kind = rnd(20);
        if (kind < 9) {
          const k = rnd(5) === 0 ? rnd(90) : 1;
          const rows = Array.from({ length: k }, newRow);
          const data = new Float32Array(k * L);
          rows.forEach((r, i) => data.set(r, i * L));
          model.push(...rows);
          if (sync) ds.appendSync(k === 1 ? rows[0]! : data);
          else await ds.append(k === 1 ? rows[0]! : ndarray(data, [k, ...F]));
        } else if (kind < 13) {
          const r0 = randRange(model.length);
          const r1 = randRange(F[0]!);
          const r2: [number, number, number] = [rnd(F[1]!), F[1]!, 1 + rnd(300)];
          const sel: DatasetSelection = [r0, r1, r2];
          const got = sync ? ds.readSync(sel) : await ds.read(sel);
          const i0 = select(r0, model.length);
          const i1 = select(r1, F[0]!);
          const i2 = select(r2, F[1]!);
          assert.deepEqual(got.shape, [i0.length, i1.length, i2.length], `op ${op} read ${JSON.stringify(sel)}`);
          const want: number[] = [];
          for (const a of i0) for (const b of i1) for (const c of i2) want.push(model[a]![b * F[1]! + c]!);
          assert.deepEqual(Array.from(got.data as Float32Array), want, `op ${op} read ${JSON.stringify(sel)}`);
        } else if (kind < 16) {
          const r0 = randRange(model.length);
          const r1 = randRange(F[0]!);
          const i0 = select(r0, model.length);
          const i1 = select(r1, F[0]!);
          const data = new Float32Array(i0.length * i1.length * F[1]!);
          let v = -(++serial) * 1000;
          for (let e = 0; e < data.length; e++) data[e] = v--;
          let e = 0;
          for (const a of i0) for (const b of i1) for (let c = 0; c < F[1]!; c++) model[a]![b * F[1]! + c] = data[e++]!;
          if (sync) ds.writeSync([r0, r1], data);
          else await ds.write([r0, r1], data);
        } else if (kind < 18) {
          const n = rnd(model.length + 6);
          while (model.length > n) model.pop();
          while (model.length < n) model.push(new Float32Array(L).fill(-7));
          if (sync) ds.resizeSync([n, ...F]);
          else await ds.resize([n, ...F]);
        } else if (kind < 19) {
          if (sync) ds.flushSync();
          else await ds.flush();
        } else {
          // grow by writing past the end
          const at = model.length + rnd(4);
          while (model.length <= at) model.push(new Float32Array(L).fill(-7));
          const row = newRow();
          model[at] = row;
          await ds.write([[at, at + 1]], row, { grow: true });
        }
        assert.deepEqual(ds.shape, [model.length, ...F], `op ${op}`);
      }
      await ds.close();
      const got = await chk.get<NDArray>('x');
      assert.deepEqual(got.shape, [model.length, ...F]);
      const flat = new Float32Array(model.length * L);
      model.forEach((r, i) => flat.set(r, i * L));
      assert.ok(Buffer.from((got.data as Float32Array).buffer).equals(Buffer.from(flat.buffer)), 'final contents');
    });
  }
});

describe('dataset: errors before anything is written', () => {
  it('wrong frame shape/dtype, out-of-bounds selections, past maxshape', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 3, 4], maxshape: [5, 3, 4] });
    await ds.append(frame(0));
    await rejectsWith(ds.append(new Float64Array(11)), (e) => e instanceof RangeError, 'not whole frames');
    await rejectsWith(ds.append(ndarray(new Float64Array(12), [4, 3])), (e) => e instanceof RangeError, 'frame shape');
    await rejectsWith(ds.append(ndarray(new Float64Array(24), [2, 4, 3])), (e) => e instanceof RangeError, 'batch shape');
    await rejectsWith(ds.append(new Float32Array(12)), (e) => e instanceof TypeError, 'dtype');
    await rejectsWith(ds.append(ndarray(new Float32Array(24), [3, 4], 'complex64')), (e) => e instanceof TypeError, 'complex64 frame');
    await rejectsWith(ds.append([1, 2, 3] as never), (e) => e instanceof TypeError, 'plain array');
    await rejectsWith(ds.append(3), (e) => e instanceof RangeError, 'scalar for a frame');
    assert.throws(() => ds.appendSync(new Int32Array(12)), TypeError);
    await rejectsWith(ds.append(new Float64Array(12 * 5)), (e) => e instanceof RangeError, 'past maxshape');
    assert.deepEqual(ds.shape, [1, 3, 4], 'nothing was appended');
    for (const sel of [[[0, 2]], [[-3, 1]], [null, [0, 4]], [null, null, [5, null]], [[0, 1, 0]], [[0, 1, -1]], [null, null, null, null]] as DatasetSelection[]) {
      await rejectsWith(ds.read(sel), (e) => e instanceof RangeError, `read ${JSON.stringify(sel)}`);
    }
    await rejectsWith(ds.read([[0.5, 1]] as never), (e) => e instanceof TypeError);
    await rejectsWith(ds.read([5]), (e) => e instanceof RangeError, 'index 5 of 1 frame');
    await rejectsWith(ds.read([0.5] as never), (e) => e instanceof TypeError);
    await rejectsWith(ds.write([[0, 1]], new Float64Array(11)), (e) => e instanceof RangeError);
    await rejectsWith(ds.write([[0, 1]], ndarray(new Float64Array(12), [3, 4])), (e) => e instanceof RangeError, 'shape [3, 4] for [1, 3, 4]');
    await ds.append(frame(1));
    await ds.close();
    await rejectsWith(ds.append(frame(2)), isCode('ERR_CLOSED'));
    assert.deepEqual(h5py(`out(h5py.File(sys.argv[1], 'r')['x'][()].tolist())`, file), [
      Array.from({ length: 3 }, (_, r) => Array.from({ length: 4 }, (_, c) => r * 4 + c)),
      Array.from({ length: 3 }, (_, r) => Array.from({ length: 4 }, (_, c) => 100 + r * 4 + c)),
    ]);
  });

  it('options are checked as h5py checks them', () => {
    assert.throws(() => createOptions({ dtype: 'float64', shape: [4], chunks: false, compression: 'gzip' }), TypeError);
    assert.throws(() => createOptions({ dtype: 'float64', shape: [0], maxshape: [null], chunks: false }), TypeError, 'resizable needs chunks');
    assert.deepEqual(createOptions({ dtype: 'float64', shape: [3], chunks: false }).maxshape, [3]);
    assert.throws(() => createOptions({ shape: [4] }), TypeError);
    assert.throws(() => createOptions({ dtype: 'float64', compression: 'lzf' as never }), TypeError);
    assert.throws(() => createOptions({ dtype: 'float64', compression: 'gzip', compressionLevel: 12 }), RangeError);
    assert.throws(() => createOptions({ dtype: 'float64', compressionLevel: 3 }), TypeError);
    assert.throws(() => createOptions({ dtype: 'float64', shape: [4, 2], maxshape: [3, 2] }), RangeError);
    assert.throws(() => createOptions({ dtype: 'float64', shape: [4, 2], maxshape: [null] }), RangeError);
    assert.throws(() => createOptions({ dtype: 'float64', shape: [4, 2], chunks: [5, 0] }), RangeError);
    assert.deepEqual(createOptions({ dtype: 'float64', shape: [4, 2], chunks: false }), { dtype: 'float64', shape: [4, 2], maxshape: [4, 2], compression: null, shuffle: false });
    const gz = createOptions({ dtype: 'float32', shape: [0, 100], compression: 9 });
    assert.equal(gz.compressionLevel, 9);
    assert.equal(gz.compression, 'gzip');
    assert.deepEqual(gz.maxshape, [null, 100]);
    assert.ok(gz.chunks![0]! * 100 * 4 <= 1 << 20);
    const plain = createOptions({ dtype: 'float64', shape: [0, 3, 100] });
    assert.deepEqual(plain.chunks, [Math.floor((4 << 20) / 2400), 3, 100]);
  });

  it('ERR_BUSY for sync calls while async work is in flight; missing key; other backends', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    // 1 MiB frames, one per chunk: every append fills a chunk and queues its write
    const ds = chk.datasetSync('x', { dtype: 'float64', shape: [0, 1024, 128], chunks: [1, 1024, 128] });
    const big = new Float64Array(1024 * 128);
    ds.appendSync(big);
    const p = ds.append(big);
    assert.throws(() => ds.appendSync(big), isCode('ERR_BUSY'));
    assert.throws(() => ds.attrs.get('x'), isCode('ERR_BUSY'));
    assert.throws(() => chk.getSync('x'), isCode('ERR_BUSY'));
    await p;
    ds.closeSync();
    await rejectsWith(chk.dataset('nope'), (e) => e instanceof CheckpointerKeyError);
    await rejectsWith(chk.dataset(['nope', 'deeper']), (e) => e instanceof CheckpointerKeyError);
    assert.equal(chk.isOpen, false, 'a failed open gives back its scope');
    await chk.set('tree', { a: 1 });
    await rejectsWith(chk.dataset('tree'), isCode('ERR_UNSUPPORTED_VALUE'));
    await chk.set('name', 'water');
    await rejectsWith(chk.dataset('name'), isCode('ERR_UNSUPPORTED_DTYPE'));
    const json = new JSONCheckpointer(path.join(dir, 'x.json'));
    await rejectsWith(json.dataset('x', { dtype: 'float64' }), isCode('ERR_UNSUPPORTED_VALUE'));
    assert.throws(() => json.datasetSync('x'), isCode('ERR_UNSUPPORTED_VALUE'));
    assert.equal(json.isOpen, false);
    const filtered = new HDF5Checkpointer(file, { allowedKeys: ['y'] });
    await rejectsWith(filtered.dataset('x'), (e) => e instanceof CheckpointerKeyError);
  });

  it('a read-only file: reads work, the first append rejects and is undone', async () => {
    const file = fresh();
    const w = new HDF5Checkpointer(file);
    await w.set('x', ndarray(Float64Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]));
    fs.chmodSync(file, 0o444);
    try {
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('x');
      assert.deepEqual(Array.from((await ds.read([[1, 2], [2, 3], [3, 4]])).data as Float64Array), [23]);
      await rejectsWith(ds.append(frame(0)), isCode('ERR_NOT_WRITABLE'));
      assert.deepEqual(ds.shape, [2, 3, 4]);
      assert.deepEqual(Array.from((await ds.read([[-1, null], [0, 1], [0, 1]])).data as Float64Array), [12]);
      await ds.close();
    } finally {
      fs.chmodSync(file, 0o644);
    }
  });
});

describe('dataset: scopes', () => {
  it('a handle opened in a scope is flushed and closed with it; one opened outside keeps the file open until its close', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    let ds!: Dataset;
    await chk.with(async (c) => {
      ds = await c.dataset('x', { dtype: 'float64', shape: [0, 3, 4] });
      await ds.append(frame(0));
    });
    assert.equal(chk.isOpen, false, 'with() closed the handle it opened');
    assert.equal(ds.isOpen, false);
    await rejectsWith(ds.append(frame(1)), isCode('ERR_CLOSED'));
    assert.equal(h5py(`out(h5py.File(sys.argv[1], 'a')['x'].shape[0])`, file), 1, 'h5py can open it for writing: no lock left');

    ds = await chk.dataset('x'); // outside any scope: it holds the file open
    assert.equal(chk.isOpen, true);
    await ds.append(frame(1));
    await chk.set('other', 1); // the checkpointer works meanwhile
    assert.deepEqual(await chk.keys(), ['x', 'other']);
    await chk.with(async (c) => assert.deepEqual((await c.get<NDArray>('x')).shape, [2, 3, 4]));
    assert.equal(chk.isOpen, true, 'a scope that closes leaves the handle opened outside it');
    await chk.close(); // no scope open: closes the handles held outside one, and the file
    assert.equal(chk.isOpen, false);
    assert.equal(ds.isOpen, false);
    await ds.close(); // no-op
    await rejectsWith(ds.read(), isCode('ERR_CLOSED'));
    const got = await chk.get<NDArray>('x');
    assert.deepEqual(got.shape, [2, 3, 4]);
    assert.deepEqual(Array.from(got.data as Float64Array), [...frame(0), ...frame(1)]);

    // sync twin, and `using`
    {
      using d = chk.datasetSync('x');
      d.appendSync(frame(2));
      assert.equal(chk.isOpen, true);
    }
    assert.equal(chk.isOpen, false);
    {
      await using d = await chk.dataset('x');
      await d.append(frame(3));
    }
    assert.equal(chk.isOpen, false);
    assert.deepEqual((await chk.get<NDArray>('x')).shape, [4, 3, 4]);
  });

  it('closing the checkpointer while appends are queued writes them first', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 3, 4], chunks: [3, 3, 4] });
    const ps = [];
    for (let i = 0; i < 10; i++) ps.push(ds.append(frame(i)));
    const closing = chk.close();
    await Promise.all([...ps, closing]);
    assert.equal(chk.isOpen, false);
    const r = h5py(`
d = h5py.File(sys.argv[1], 'r')['x']
out(bool(np.array_equal(d[()], 100 * np.arange(10)[:, None, None] + np.arange(12).reshape(3, 4))))`, file);
    assert.equal(r, true);
  });
});
