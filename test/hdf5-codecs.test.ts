/**
 * HDF5 compression codecs and the parallel chunk path (binding/h5filters, binding/h5chunks):
 * zstd (filter 32015) and lz4 (32004) as hdf5plugin registers them, gzip; chunks encoded on worker
 * threads must be the bytes HDF5's own pipeline stores. Peers: Debian's h5py with python3-hdf5plugin
 * and hdf5-filter-plugin (lz4: h5py reads and writes it through Debian's libh5lz4.so), and, since
 * Debian has no zstd plugin, python3-zstandard on the raw chunks h5py reads and writes directly.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, HDF5Checkpointer, hdf5Info, ndarray } from '../lib/index';
import { createOptions } from '../lib/dataset/hdf5-dataset';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';

const dir = tempDir('checkpointer-codecs-');
let n = 0;
const fresh = (): string => path.join(dir, `c${n++}.h5`);
const INDEX_JS = path.join(__dirname, '..', 'lib', 'index.js');

/** Trajectory-like frames of [3, 100] float64 (a random walk stored to 1e-3), as benchmark/ uses. */
function trajectory(frames: number, width = 300): Float64Array {
  const a = new Float64Array(frames * width);
  const pos = Float64Array.from({ length: width }, (_, j) => (j * 7.31) % 10);
  let s = 12345;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let f = 0; f < frames; f++) {
    for (let j = 0; j < width; j++) {
      pos[j]! += (rnd() - 0.5) * 0.01;
      a[f * width + j] = Math.round(pos[j]! * 1e3) / 1e3;
    }
  }
  return a;
}
const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Reads every stored chunk raw through h5py: offset, filter mask, sha256 of the bytes. */
const RAW_CHUNKS = `
import hashlib
d = h5py.File(sys.argv[1], 'r')[sys.argv[2]]
chunks = []
for i in range(d.id.get_num_chunks()):
    info = d.id.get_chunk_info(i)
    mask, raw = d.id.read_direct_chunk(info.chunk_offset)
    chunks.append([list(info.chunk_offset), mask, hashlib.sha256(raw).hexdigest(), len(raw)])
pl = d.id.get_create_plist()
filters = [list(pl.get_filter(i)[:3]) for i in range(pl.get_nfilters())]
out({'chunks': chunks, 'filters': filters})`;

/** Writes `data` as dataset 'x' of `file` in a child process (env: CHECKPOINTER_HDF5_THREADS). */
function writeInChild(file: string, opts: object, data: Float64Array, appendRows: number[], env: Record<string, string>): void {
  const raw = `${file}.bin`;
  fs.writeFileSync(raw, bytesOf(data));
  const script = `
    const c = require(${JSON.stringify(INDEX_JS)});
    const fs = require('fs');
    (async () => {
      const buf = fs.readFileSync(${JSON.stringify(raw)});
      const all = new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
      const opts = ${JSON.stringify(opts)};
      const frame = opts.shape.slice(1).reduce((a, b) => a * b, 1);
      const ds = await new c.HDF5Checkpointer(${JSON.stringify(file)}).dataset('x', opts);
      let at = 0;
      for (const rows of ${JSON.stringify(appendRows)}) { await ds.append(all.subarray(at * frame, (at + rows) * frame)); at += rows; }
      await ds.close();
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  fs.rmSync(raw);
}

describe('HDF5 codecs: zstd and lz4 built in, chunks compressed in parallel', () => {
  it('hdf5Info reports zstd and lz4 readable and writable, with no plugin path', () => {
    const info = hdf5Info();
    assert.deepEqual(info.filters.zstd, { read: true, write: true });
    assert.deepEqual(info.filters.lz4, { read: true, write: true });
    assert.equal(process.env.HDF5_PLUGIN_PATH, undefined);
  });

  it('options: codec names, levels per codec, defaults, refusals', () => {
    const z = createOptions({ dtype: 'float64', shape: [0, 4], compression: 'zstd' });
    assert.equal(z.compression, 'zstd');
    assert.equal(z.compressionLevel, 3);
    assert.equal(createOptions({ dtype: 'float64', shape: [0, 4], compression: 'zstd', compressionLevel: 19 }).compressionLevel, 19);
    const l = createOptions({ dtype: 'float64', shape: [0, 4], compression: 'lz4', shuffle: true });
    assert.equal(l.compression, 'lz4');
    assert.equal(l.compressionLevel, undefined);
    assert.equal(createOptions({ dtype: 'float64', shape: [0, 4], compression: 'gzip' }).compressionLevel, 4);
    assert.throws(() => createOptions({ dtype: 'float64', compression: 'zstd', compressionLevel: 0 }), RangeError);
    assert.throws(() => createOptions({ dtype: 'float64', compression: 'zstd', compressionLevel: 23 }), RangeError);
    assert.throws(() => createOptions({ dtype: 'float64', compression: 'lz4', compressionLevel: 1 }), TypeError);
    assert.throws(() => createOptions({ dtype: 'float64', compression: 'blosc' as never }), TypeError);
    assert.throws(() => createOptions({ dtype: 'float64', shape: [4], chunks: false, compression: 'zstd' }), TypeError);
  });

  for (const codec of ['zstd', 'lz4', 'gzip'] as const) {
    it(`${codec}: appends (aligned and not, edge chunks) read back exactly, through ours and h5py; the handle reports the filters`, async () => {
      const file = fresh();
      const data = trajectory(1000);
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 3, 100], chunks: [64, 3, 100], compression: codec, shuffle: true });
      assert.equal(ds.compression, codec);
      assert.equal(ds.compressionLevel, codec === 'zstd' ? 3 : codec === 'gzip' ? 4 : null);
      assert.equal(ds.shuffle, true);
      // 640 aligned rows (10 whole chunks, in parallel), 1 row, 99 rows (partial chunks through
      // HDF5's pipeline), then the rest (a partial head, whole chunks, an edge chunk at the end).
      let at = 0;
      for (const rows of [640, 1, 99, 260]) {
        await ds.append(data.subarray(at * 300, (at + rows) * 300));
        at += rows;
      }
      // Read while the handle is open (chunks HDF5 still caches are flushed before raw reads).
      const open = await ds.read();
      assert.ok(bytesOf(open.data as Float64Array).equals(bytesOf(data)));
      const mid = await ds.read([[64, 320]]);
      assert.ok(bytesOf(mid.data as Float64Array).equals(bytesOf(data.subarray(64 * 300, 320 * 300))));
      const odd = await ds.read([[10, 900, 7]]);
      assert.equal(odd.shape[0], Math.ceil(890 / 7));
      assert.equal((odd.data as Float64Array)[300], data[17 * 300]);
      await ds.close();
      const back = (await chk.get('x')) as { data: Float64Array; shape: number[] };
      assert.deepEqual(back.shape, [1000, 3, 100]);
      assert.ok(bytesOf(back.data).equals(bytesOf(data)));
      const size = fs.statSync(file).size;
      assert.ok(size < data.byteLength / 1.2, `${codec} compresses (file ${size} of ${data.byteLength} bytes)`);

      const id = codec === 'zstd' ? 32015 : codec === 'lz4' ? 32004 : 1;
      const r = h5py<{ filters: [number, number, number[]][]; ok?: boolean; sha?: string }>(`
import hashlib
d = h5py.File(sys.argv[1], 'r')['x']
pl = d.id.get_create_plist()
res = {'filters': [list(pl.get_filter(i)[:3]) for i in range(pl.get_nfilters())]}
if sys.argv[2] != 'zstd':
    import hdf5plugin
    res['sha'] = hashlib.sha256(d[()].astype('<f8').tobytes()).hexdigest()
else:
    import zstandard
    parts = np.zeros(d.shape, '<f8')
    for i in range(d.id.get_num_chunks()):
        info = d.id.get_chunk_info(i)
        mask, raw = d.id.read_direct_chunk(info.chunk_offset)
        assert mask == 0
        plain = np.frombuffer(zstandard.ZstdDecompressor().decompress(raw), 'u1')
        chunk = plain.reshape(8, -1).T.copy().view('<f8').reshape(d.chunks)  # undo HDF5's shuffle
        o = info.chunk_offset[0]
        parts[o:o + d.chunks[0]] = chunk[:max(0, min(d.chunks[0], d.shape[0] - o))]
    res['sha'] = hashlib.sha256(parts.tobytes()).hexdigest()
out(res)`, file, codec);
      const level = codec === 'zstd' ? [3] : codec === 'gzip' ? [4] : [0];
      assert.deepEqual(r.filters, [[2, 1, [8]], [id, 1, level]], 'shuffle (element size 8), then the codec, optional as h5py sets filters');
      assert.equal(r.sha, require('node:crypto').createHash('sha256').update(bytesOf(data)).digest('hex'));
    });
  }

  it('the parallel path stores the bytes HDF5\'s own pipeline stores (every chunk, filter mask, edge chunks with a fill value)', () => {
    const data = trajectory(777);
    for (const [codec, extra] of [['gzip', { compressionLevel: 4 }], ['zstd', { compressionLevel: 5 }], ['lz4', {}]] as const) {
      const opts = { dtype: 'float64', shape: [0, 3, 100], chunks: [50, 3, 100], compression: codec, shuffle: true, fillValue: -1, ...extra };
      const ours = fresh();
      const hdf5s = fresh();
      writeInChild(ours, opts, data, [500, 277], {});
      writeInChild(hdf5s, opts, data, [500, 277], { CHECKPOINTER_HDF5_THREADS: '0' });
      const a = h5py<{ chunks: unknown[]; filters: unknown[] }>(RAW_CHUNKS, ours, 'x');
      const b = h5py<{ chunks: unknown[]; filters: unknown[] }>(RAW_CHUNKS, hdf5s, 'x');
      assert.equal(a.chunks.length, 16, codec);
      assert.deepEqual(a, b, `${codec}: the chunks of the parallel path and of HDF5's pipeline`);
    }
  });

  it('the shuffle of every element size (1, 2, 4, 8, 16 bytes; chunks not a multiple of 16 elements) is HDF5\'s', async () => {
    // The parallel path shuffles with SSE2 for 2, 4 and 8 bytes and a scalar loop for the rest and
    // the tail; HDF5's own shuffle (CHECKPOINTER_HDF5_THREADS=0) is the reference.
    const write = (file: string, env: Record<string, string>): void => {
      const script = `
        const c = require(${JSON.stringify(INDEX_JS)});
        (async () => {
          const chk = new c.HDF5Checkpointer(${JSON.stringify(file)});
          let s = 7;
          for (const [dtype, T] of [['int8', Int8Array], ['int16', Int16Array], ['float32', Float32Array], ['float64', Float64Array], ['complex128', Float64Array]]) {
            const lanes = dtype === 'complex128' ? 2 : 1;
            const ds = await chk.dataset(dtype, { dtype, shape: [0, 5], chunks: [7, 5], compression: 'gzip', compressionLevel: 1, shuffle: true });
            for (const rows of [30, 12]) {
              const bytes = new Uint8Array(rows * 5 * lanes * T.BYTES_PER_ELEMENT);
              // Small integers in every byte position, so the shuffled streams compress differently.
              for (let i = 0; i < bytes.length; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) % (1 + (i % 23));
              await ds.append(new T(bytes.buffer));
            }
            await ds.close();
          }
          await chk.close();
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 0, r.stderr);
    };
    const ours = fresh();
    const hdf5s = fresh();
    write(ours, {});
    write(hdf5s, { CHECKPOINTER_HDF5_THREADS: '0' });
    for (const key of ['int8', 'int16', 'float32', 'float64', 'complex128']) {
      const a = h5py<{ chunks: unknown[]; filters: unknown[] }>(RAW_CHUNKS, ours, key);
      const b = h5py<{ chunks: unknown[]; filters: unknown[] }>(RAW_CHUNKS, hdf5s, key);
      assert.equal(a.chunks.length, 6, key);
      assert.deepEqual(a, b, `${key}: the chunks of the parallel path and of HDF5's pipeline`);
    }
    // Read back through the parallel path (its unshuffle) against h5py's reading of the same file.
    const theirs = h5py<Record<string, string>>(`
import hashlib
f = h5py.File(sys.argv[1], 'r')
out({k: hashlib.sha256(f[k][()].tobytes()).hexdigest() for k in f})`, ours);
    const reader = new HDF5Checkpointer(ours);
    for (const key of Object.keys(theirs)) {
      // A handle's read goes through the chunk path (a small dataset's `get` is read whole by HDF5).
      const v = await (await reader.dataset(key)).read();
      const hash = crypto.createHash('sha256').update(bytesOf(v.data)).digest('hex');
      assert.equal(hash, theirs[key], `${key}: read back as h5py reads it`);
    }
  });

  it('h5dump -p shows the filters and their parameters', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    await chk.with(async (c) => {
      for (const [name, codec, level] of [['z', 'zstd', 7], ['l', 'lz4', undefined]] as const) {
        const ds = await c.dataset(name, { dtype: 'int32', shape: [0, 10], compression: codec, compressionLevel: level, shuffle: name === 'z' });
        await ds.append(ndarray(Int32Array.from({ length: 5000 }, (_, i) => i % 13), [500, 10]));
      }
    });
    const dump = execFileSync('h5dump', ['-p', '-H', file], { encoding: 'utf8' });
    const block = (name: string): string => {
      const at = dump.indexOf(`DATASET "${name}"`);
      assert.ok(at >= 0, dump);
      const next = dump.indexOf('DATASET "', at + 1);
      return dump.slice(at, next < 0 ? undefined : next);
    };
    assert.match(block('z'), /PREPROCESSING SHUFFLE/);
    assert.match(block('z'), /FILTER_ID 32015\s+COMMENT Zstandard[^\n]*\s+PARAMS \{ 7 \}/);
    assert.doesNotMatch(block('l'), /SHUFFLE/);
    assert.match(block('l'), /FILTER_ID 32004\s+COMMENT HDF5 lz4 filter[^\n]*\s+PARAMS \{ 0 \}/);
  });

  it('reads lz4 files h5py wrote through hdf5plugin (several blocks per chunk, shuffle or not)', async () => {
    const file = fresh();
    h5py(`
import hdf5plugin
a = np.round(np.cumsum(np.sin(np.arange(500 * 300)).reshape(500, 3, 100), axis=0), 3)
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('plain', data=a, chunks=(64, 3, 100), **hdf5plugin.LZ4())
    f.create_dataset('blocks', data=a, chunks=(64, 3, 100), shuffle=True, **hdf5plugin.LZ4(nbytes=4000))
    f.create_dataset('ints', data=(np.arange(10007) % 251).astype('<u2'), chunks=(1000,), **hdf5plugin.LZ4(nbytes=512))
a.astype('<f8').tofile(sys.argv[1] + '.bin')
out(None)`, file);
    const expected = fs.readFileSync(`${file}.bin`);
    const chk = new HDF5Checkpointer(file);
    for (const name of ['plain', 'blocks']) {
      const v = (await chk.get(name)) as { data: Float64Array };
      assert.ok(bytesOf(v.data).equals(expected), name);
    }
    const ints = (await chk.get('ints')) as { data: Uint16Array };
    assert.deepEqual(Array.from(ints.data.subarray(9990)), Array.from({ length: 17 }, (_, i) => (9990 + i) % 251));
    const ds = await chk.dataset('blocks');
    assert.equal(ds.compression, 'lz4');
    const slice = await ds.read([[100, 300]]);
    assert.ok(bytesOf(slice.data as Float64Array).equals(expected.subarray(100 * 2400, 300 * 2400)));
    await ds.close();
  });

  it('reads zstd chunks python-zstandard wrote (with and without the frame\'s content size)', async () => {
    const file = fresh();
    h5py(`
import zstandard
from h5py import h5z, h5p, h5d, h5t, h5s
a = (np.arange(1000 * 12, dtype='<f4') * 0.25).reshape(1000, 12)
with h5py.File(sys.argv[1], 'w') as f:
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((256, 12))
    dcpl.set_filter(32015, h5z.FLAG_OPTIONAL, (5,))
    did = h5d.create(f.id, b'x', h5t.IEEE_F32LE, h5s.create_simple((1000, 12), (1000, 12)), dcpl=dcpl)
    d = h5py.Dataset(did)
    for k in range(4):
        c = np.zeros((256, 12), '<f4')
        part = a[k * 256:(k + 1) * 256]
        c[:len(part)] = part
        if k == 1:  # a streamed frame: no content size in its header
            z = zstandard.ZstdCompressor(level=5).compressobj()
            frame = z.compress(c.tobytes()) + z.flush()
        else:
            frame = zstandard.ZstdCompressor(level=5).compress(c.tobytes())
        d.id.write_direct_chunk((k * 256, 0), frame, 0)
out(None)`, file);
    const chk = new HDF5Checkpointer(file);
    const v = (await chk.get('x')) as { data: Float32Array; shape: number[] };
    assert.deepEqual(v.shape, [1000, 12]);
    assert.deepEqual(Array.from(v.data), Array.from({ length: 12000 }, (_, i) => i * 0.25));
    const ds = await chk.dataset('x');
    assert.equal(ds.compression, 'zstd');
    assert.equal(ds.compressionLevel, 5);
    const part = await ds.read([[250, 520]]);
    assert.equal((part.data as Float32Array)[0], 250 * 12 * 0.25);
    await ds.close();
  });

  it('chunks never written read as the fill value; one-chunk and strided writes go through HDF5 and agree', async () => {
    const file = fresh();
    const chk = new HDF5Checkpointer(file);
    const ds = await chk.dataset('x', { dtype: 'int16', shape: [0, 40], chunks: [16, 8], compression: 'lz4', fillValue: -7 });
    await ds.resize([100, 40]);
    const block = Int16Array.from({ length: 32 * 40 }, (_, i) => i % 1000);
    await ds.write([[32, 64], null], ndarray(block, [32, 40]));  // whole chunks, in parallel
    await ds.write([[99, 100], [3, 4]], ndarray(Int16Array.of(5), [1, 1]));  // one element: HDF5
    const all = (await ds.read()).data as Int16Array;
    for (let r = 0; r < 100; r++) {
      for (let c = 0; c < 40; c++) {
        const want = r >= 32 && r < 64 ? block[(r - 32) * 40 + c] : r === 99 && c === 3 ? 5 : -7;
        if (all[r * 40 + c] !== want) assert.fail(`[${r}, ${c}] = ${all[r * 40 + c]}, want ${want}`);
      }
    }
    await ds.close();
    const h = h5py<number[]>(`import hdf5plugin\nout([int(v) for v in h5py.File(sys.argv[1], 'r')['x'][[0, 40, 99], 3]])`, file);
    assert.deepEqual(h, [-7, block[8 * 40 + 3], 5]);
  });

  it('a damaged chunk is ERR_CHECKPOINT_CORRUPT, never a crash', async () => {
    for (const codec of ['zstd', 'lz4', 'gzip'] as const) {
      const file = fresh();
      const chk = new HDF5Checkpointer(file);
      const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 100], chunks: [10, 100], compression: codec });
      await ds.append(ndarray(trajectory(100, 100), [100, 100]));
      await ds.close();
      // Chunk 2: garbage whose header claims 4 GiB; chunk 5: a valid stream cut short.
      h5py(`
f = h5py.File(sys.argv[1], 'r+')
d = f['x']
mask, raw = d.id.read_direct_chunk((50, 0))
d.id.write_direct_chunk((20, 0), b'\\xff' * 64, 0)
d.id.write_direct_chunk((50, 0), raw[:len(raw) // 2], 0)
f.close()
out(None)`, file);
      const other = new HDF5Checkpointer(file);
      await assert.rejects(other.get('x'), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_CHECKPOINT_CORRUPT', codec);
      const h = await other.dataset('x');
      const ok = await h.read([[0, 20]]);
      assert.equal(ok.shape[0], 20);
      await assert.rejects(h.read([[50, 60]]), (e: unknown) => e instanceof CheckpointerError, `${codec}: cut stream`);
      await h.close();
    }
  });

  it('worker threads and the main thread write and read compressed datasets at once (the chunk workers are one pool per process)', async () => {
    // Each thread's writes and reads go through the process's one pool of chunk workers; every
    // thread must get back its own frames, also when its parallel writes queue behind another's.
    const script = path.join(dir, `pool-worker-${n++}.js`);
    fs.writeFileSync(script, `
      const { parentPort, workerData } = require('worker_threads');
      const { HDF5Checkpointer } = require(${JSON.stringify(INDEX_JS)});
      (async () => {
        const { file, k, codec } = workerData;
        const frames = 3000;
        const data = new Float64Array(frames * 300);
        for (let i = 0; i < data.length; i++) data[i] = Math.round(Math.sin(i * 0.001 + k) * 1e4) / 1e3;
        const chk = new HDF5Checkpointer(file, { durable: false });
        const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, 300], compression: codec, shuffle: true });
        for (let f = 0; f < frames; f += 700) await ds.append(data.subarray(f * 300, Math.min(frames, f + 700) * 300));
        await ds.close();
        const back = await chk.get('x');
        const same = Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), Buffer.from(data.buffer)) === 0;
        parentPort.postMessage({ k, same });
      })().catch((e) => parentPort.postMessage({ k: workerData.k, error: String(e && e.stack || e) }));`);
    const { Worker } = await import('node:worker_threads');
    const codecs = ['lz4', 'zstd', 'gzip'] as const;
    const runs = codecs.map((codec, k) => new Promise<{ k: number; same?: boolean; error?: string }>((resolve, reject) => {
      const w = new Worker(script, { workerData: { file: fresh(), k, codec } });
      w.once('message', resolve);
      w.once('error', reject);
    }));
    // The main thread meanwhile: sync and async compressed writes and reads of its own.
    const data = trajectory(4000);
    const file = fresh();
    const chk = new HDF5Checkpointer(file, { durable: false });
    for (let r = 0; r < 3; r++) {
      const a = await chk.dataset(`a${r}`, { dtype: 'float64', shape: [0, 300], compression: 'lz4', shuffle: true });
      await a.append(data);
      await a.close();
      const s = chk.datasetSync(`s${r}`, { dtype: 'float64', shape: [0, 300], compression: 'zstd', shuffle: true });
      s.appendSync(data);
      s.closeSync();
    }
    for (let r = 0; r < 3; r++) {
      assert.ok(bytesOf((await chk.get<{ data: Float64Array }>(`a${r}`)).data).equals(bytesOf(data)), `main a${r}`);
      assert.ok(bytesOf(chk.getSync<{ data: Float64Array }>(`s${r}`).data).equals(bytesOf(data)), `main s${r}`);
    }
    for (const r of await Promise.all(runs)) {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.same, true, `worker ${r.k} (${codecs[r.k]}) read back other frames`);
    }
  });

  it('the event loop stays free while chunks are compressed (a 96 MiB gzip-9 write)', async () => {
    const file = fresh();
    const data = trajectory(40000);
    const ds = await new HDF5Checkpointer(file, { durable: false }).dataset('x', { dtype: 'float64', shape: [0, 3, 100], compression: 'gzip', compressionLevel: 9, shuffle: true });
    let last = process.hrtime.bigint();
    let worst = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = process.hrtime.bigint();
      worst = Math.max(worst, Number(now - last) / 1e6);
      last = now;
      ticks++;
    }, 5);
    const t = process.hrtime.bigint();
    await ds.append(data);
    const secs = Number(process.hrtime.bigint() - t) / 1e9;
    clearInterval(timer);
    await ds.close();
    assert.ok(secs > 0.2, `the write took ${secs} s, too short to measure`);
    assert.ok(ticks > secs * 50, `${ticks} timer ticks in ${secs.toFixed(2)} s`);
    assert.ok(worst < 150, `the longest gap between 5 ms ticks was ${worst.toFixed(1)} ms`);
  });
});
