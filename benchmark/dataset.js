'use strict';
/**
 * Dataset handles (HDF5): streaming appends against h5py's resize-and-assign loop and one plain
 * write of the same bytes; a 16 MiB slice of a 1 GiB dataset (bytes read from the file, time)
 * against reading all of it; gzip-compressed writes against h5py on the same data; the codecs
 * (gzip, zstd, lz4, each with shuffle) against plain writes and h5py, and ours with the parallel
 * chunk path off (CHECKPOINTER_HDF5_THREADS=0: HDF5's own one-thread pipeline).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { HDF5Checkpointer, ndarray } = require('..');
const { MiB, PYTHON, interleaved, scratchDirs, randomFloat64, fmt, scaled, chart } = require('./common');
/** Compared with plain writes that do not fsync: commits without fsync too (`durable: true`, the default, adds it). */
const FAST = { durable: false };

const FRAMES = scaled(20000);
const FRAME = [3, 100];
const FRAME_LEN = FRAME[0] * FRAME[1];

function py(code, ...args) {
  return JSON.parse(execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB }));
}

// ------------------------------------------------------------------------------- appends

const H5PY_LOOP = `
import h5py, numpy as np, sys, time, json, os
frames = np.fromfile(sys.argv[1], dtype='<f8').reshape(-1, 3, 100)
out = os.path.join(sys.argv[2], 'h5py-loop.h5')
best = 1e9
for _ in range(int(sys.argv[3])):
    if os.path.exists(out): os.remove(out)
    t = time.perf_counter()
    with h5py.File(out, 'w') as f:
        ds = f.create_dataset('x', shape=(0, 3, 100), maxshape=(None, 3, 100), dtype='f8', chunks=True)
        for i in range(len(frames)):
            ds.resize(i + 1, axis=0)
            ds[i] = frames[i]
    best = min(best, time.perf_counter() - t)
with h5py.File(out, 'r') as f:
    ok = bool(np.array_equal(f['x'][()], frames))
print(json.dumps({'secs': best, 'ok': ok}))`;

async function appends(dir, frames) {
  const raw = path.join(dir, 'frames.bin');
  fs.writeFileSync(raw, frames);
  const plainFile = path.join(dir, 'plain.bin');
  const file = path.join(dir, 'append.h5');
  const opts = { dtype: 'float64', shape: [0, ...FRAME] };
  const r = await interleaved({
    plain: async () => {
      fs.rmSync(plainFile, { force: true });
      fs.writeFileSync(plainFile, frames);
    },
    async: async () => {
      fs.rmSync(file, { force: true });
      const ds = await new HDF5Checkpointer(file, FAST).dataset('x', opts);
      for (let i = 0; i < FRAMES; i++) await ds.append(frames.subarray(i * FRAME_LEN, (i + 1) * FRAME_LEN));
      await ds.close();
    },
    sync: async () => {
      fs.rmSync(file, { force: true });
      const ds = new HDF5Checkpointer(file, FAST).datasetSync('x', opts);
      for (let i = 0; i < FRAMES; i++) ds.appendSync(frames.subarray(i * FRAME_LEN, (i + 1) * FRAME_LEN));
      ds.closeSync();
    },
  }, 7);
  const back = await new HDF5Checkpointer(file).get('x');
  if (Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), Buffer.from(frames.buffer)) !== 0) {
    throw new Error('appended frames do not read back');
  }
  const h5py = py(H5PY_LOOP, raw, dir, '2');
  if (!h5py.ok) throw new Error('h5py loop wrote wrong data');
  fs.rmSync(raw);
  return { ...r, h5py: h5py.secs };
}

// ------------------------------------------------------------------------------- slices

function rchar() {
  return Number(/rchar:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))[1]);
}

async function measureRead(ds, sel, rounds = 5) {
  let best = Infinity;
  let bytes = Infinity;
  let result;
  for (let i = 0; i < rounds; i++) {
    const before = rchar();
    const t = process.hrtime.bigint();
    result = await ds.read(sel);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
    bytes = Math.min(bytes, rchar() - before);
    if (i < rounds - 1) result = null;
  }
  return { secs: best, bytes, result };
}

async function slices(dir) {
  const file = path.join(dir, 'big.h5');
  fs.rmSync(file, { force: true });
  const rows = Math.floor(scaled(1024 * MiB) / (FRAME_LEN * 8));
  const chk = new HDF5Checkpointer(file);
  const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, ...FRAME] });
  const batchRows = 4096;
  const batch = new Float64Array(batchRows * FRAME_LEN);
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rows; r += batchRows) {
    const n = Math.min(batchRows, rows - r);
    for (let k = 0; k < n; k++) batch.fill(r + k, k * FRAME_LEN, (k + 1) * FRAME_LEN);
    await ds.append(batch.subarray(0, n * FRAME_LEN));
  }
  await ds.flush();
  const writeSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  const chunks = ds.chunks;
  await ds.close();

  const rd = await chk.dataset('x');
  const sliceRows = Math.round(scaled(16 * MiB) / (FRAME_LEN * 8));
  const start = scaled(200001);
  const cases = [
    { name: `16 MiB slice: rows [${start}, ${start + sliceRows})`, sel: [[start, start + sliceRows]] },
    { name: `every 10th frame of rows [${start}, ${start + 10 * sliceRows}) (16 MiB)`, sel: [[start, start + 10 * sliceRows, 10]] },
    { name: `every 1000th frame (${Math.ceil(rows / 1000)} frames)`, sel: [[0, rows, 1000]] },
    { name: 'one column: [:, 1, 50]', sel: [null, [1, 2], [50, 51]] },
    { name: 'the whole dataset (1 GiB)', sel: undefined },
  ];
  const out = [];
  for (const c of cases) {
    const m = await measureRead(rd, c.sel, c.sel === undefined ? 3 : 5);
    const d = m.result.data;
    if (c.sel && c.sel[0] && d[0] !== c.sel[0][0]) throw new Error(`${c.name}: read ${d[0]}, expected ${c.sel[0][0]}`);
    out.push({ name: c.name, secs: m.secs, bytes: m.bytes, resultBytes: d.byteLength });
    m.result = null;
  }
  await rd.close();
  fs.rmSync(file, { force: true });
  return { rows, chunks, writeSecs, cases: out };
}

// ------------------------------------------------------------------------------- compression

/** Trajectory-like data: positions drifting by small random steps, stored to 1e-3 (an xtc-like precision). */
function trajectory(frames) {
  const a = new Float64Array(frames * FRAME_LEN);
  const pos = Float64Array.from({ length: FRAME_LEN }, () => Math.random() * 10);
  for (let f = 0; f < frames; f++) {
    for (let j = 0; j < FRAME_LEN; j++) {
      pos[j] += (Math.random() - 0.5) * 0.01;
      a[f * FRAME_LEN + j] = Math.round(pos[j] * 1e3) / 1e3;
    }
  }
  return a;
}

const H5PY_GZIP = `
import h5py, numpy as np, sys, time, json, os
a = np.fromfile(sys.argv[1], dtype='<f8').reshape(-1, 3, 100)
chunks = json.loads(sys.argv[3])
res = {}
for name, ch in [('h5py chunks=True', True), ('h5py, our chunk shape', tuple(chunks))]:
    out = os.path.join(sys.argv[2], 'h5py-gz.h5')
    best = 1e9
    for _ in range(3):
        if os.path.exists(out): os.remove(out)
        t = time.perf_counter()
        with h5py.File(out, 'w') as f:
            f.create_dataset('x', data=a, maxshape=(None, 3, 100), chunks=ch, compression='gzip', compression_opts=4, shuffle=True)
        best = min(best, time.perf_counter() - t)
    read = 1e9
    for _ in range(3):
        t = time.perf_counter()
        with h5py.File(out, 'r') as f:
            f['x'][()]
        read = min(read, time.perf_counter() - t)
    with h5py.File(out, 'r') as f:
        res[name] = {'secs': best, 'readSecs': read, 'size': os.path.getsize(out), 'chunks': f['x'].chunks}
    os.remove(out)
print(json.dumps(res))`;

// h5py with hdf5plugin's lz4 (Debian's libh5lz4.so); zstd has no Debian plugin.
const H5PY_LZ4 = `
import h5py, numpy as np, sys, time, json, os
import hdf5plugin
a = np.fromfile(sys.argv[1], dtype='<f8').reshape(-1, 3, 100)
chunks = tuple(json.loads(sys.argv[3]))
out = os.path.join(sys.argv[2], 'h5py-lz4.h5')
best = read = 1e9
for _ in range(3):
    if os.path.exists(out): os.remove(out)
    t = time.perf_counter()
    with h5py.File(out, 'w') as f:
        f.create_dataset('x', data=a, maxshape=(None, 3, 100), chunks=chunks, shuffle=True, **hdf5plugin.LZ4())
    best = min(best, time.perf_counter() - t)
for _ in range(3):
    t = time.perf_counter()
    with h5py.File(out, 'r') as f:
        f['x'][()]
    read = min(read, time.perf_counter() - t)
res = {'secs': best, 'readSecs': read, 'size': os.path.getsize(out)}
os.remove(out)
print(json.dumps(res))`;

/**
 * One codec: appends of 1024 frames (write) and `get` (read), best of 3, in a child with `env`;
 * argv[5] 'durable': the close is a durable commit (fsync of the file and its folder) timed with it.
 */
const CODEC_RUN = `
const { HDF5Checkpointer } = require(process.argv[1]);
const fs = require('fs');
(async () => {
  const [, , raw, file, optsText, durableText] = process.argv;
  const durable = durableText === 'durable';
  const buf = fs.readFileSync(raw);
  const data = new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
  const opts = JSON.parse(optsText);
  const frames = data.length / 300;
  let secs = Infinity, readSecs = Infinity;
  for (let r = 0; r < 4; r++) {
    fs.rmSync(file, { force: true });
    const t = process.hrtime.bigint();
    const ds = await new HDF5Checkpointer(file, { durable }).dataset('x', opts);
    for (let f = 0; f < frames; f += 1024) await ds.append(data.subarray(f * 300, Math.min(frames, f + 1024) * 300));
    await ds.close();
    if (r > 0) secs = Math.min(secs, Number(process.hrtime.bigint() - t) / 1e9);
  }
  let back;
  for (let r = 0; r < 3; r++) {
    const t = process.hrtime.bigint();
    back = await new HDF5Checkpointer(file).get('x');
    readSecs = Math.min(readSecs, Number(process.hrtime.bigint() - t) / 1e9);
  }
  const ok = Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), buf) === 0;
  const size = fs.statSync(file).size;
  fs.rmSync(file);
  console.log(JSON.stringify({ secs, readSecs, size, ok }));
})();`;

async function codecs(dir, diskDir) {
  const frames = Math.floor(scaled(128 * MiB) / (FRAME_LEN * 8));
  const data = trajectory(frames);
  const raw = path.join(dir, 'traj.bin');
  fs.writeFileSync(raw, data);
  const file = path.join(dir, 'codec.h5');
  const base = { dtype: 'float64', shape: [0, ...FRAME] };
  const cases = [
    ['plain (no filters)', base, {}],
    ['gzip 4 + shuffle', { ...base, compression: 'gzip', compressionLevel: 4, shuffle: true }, {}],
    ['gzip 4 + shuffle, HDF5 pipeline (1 thread)', { ...base, compression: 'gzip', compressionLevel: 4, shuffle: true }, { CHECKPOINTER_HDF5_THREADS: '0' }],
    ['zstd 3 + shuffle', { ...base, compression: 'zstd', compressionLevel: 3, shuffle: true }, {}],
    ['zstd 3 + shuffle, HDF5 pipeline (1 thread)', { ...base, compression: 'zstd', compressionLevel: 3, shuffle: true }, { CHECKPOINTER_HDF5_THREADS: '0' }],
    ['lz4 + shuffle', { ...base, compression: 'lz4', shuffle: true }, {}],
  ];
  const run = (name, opts, env, target, durable) => {
    const out = execFileSync(process.execPath, ['-e', CODEC_RUN, path.join(__dirname, '..'), raw, target, JSON.stringify(opts), durable ? 'durable' : ''],
      { encoding: 'utf8', env: { ...process.env, ...env } });
    const r = JSON.parse(out);
    if (!r.ok) throw new Error(`${name}: frames do not read back`);
    return { name, ...r };
  };
  const rows = cases.map(([name, opts, env]) => run(name, opts, env, file, false));
  // What a checkpoint costs until it is on disk: the same writes into the disk folder, each ended
  // by a durable commit. tmpfs makes a plain write a memcpy; on disk the fsync is most of it.
  const diskFile = path.join(diskDir, 'codec.h5');
  const durableRows = cases.filter(([, , env]) => !env.CHECKPOINTER_HDF5_THREADS).map(([name, opts, env]) => run(name, opts, env, diskFile, true));
  const { HDF5Checkpointer: H } = require('..');
  const probe = await new H(path.join(dir, 'probe.h5'), FAST).dataset('x', { ...base, compression: 'lz4', shuffle: true });
  const chunks = probe.chunks;
  await probe.close();
  fs.rmSync(path.join(dir, 'probe.h5'));
  let h5pyLz4 = null;
  try {
    h5pyLz4 = py(H5PY_LZ4, raw, dir, JSON.stringify(chunks));
  } catch { /* no hdf5plugin / lz4 plugin here */ }
  fs.rmSync(raw);
  return { bytes: data.byteLength, chunks, rows, durableRows, h5pyLz4 };
}

async function compression(dir) {
  const frames = Math.floor(scaled(128 * MiB) / (FRAME_LEN * 8));
  const data = trajectory(frames);
  const raw = path.join(dir, 'traj.bin');
  fs.writeFileSync(raw, data);
  const file = path.join(dir, 'gz.h5');
  const opts = { dtype: 'float64', shape: [0, ...FRAME], compression: 'gzip', compressionLevel: 4, shuffle: true };
  let chunks;
  const r = await interleaved({
    batches: async () => {
      fs.rmSync(file, { force: true });
      const ds = await new HDF5Checkpointer(file, FAST).dataset('x', opts);
      chunks = ds.chunks;
      const step = 1024;
      for (let f = 0; f < frames; f += step) await ds.append(data.subarray(f * FRAME_LEN, Math.min(frames, f + step) * FRAME_LEN));
      await ds.close();
    },
    frames: async () => {
      fs.rmSync(file, { force: true });
      const ds = await new HDF5Checkpointer(file, FAST).dataset('x', opts);
      for (let f = 0; f < frames; f++) await ds.append(data.subarray(f * FRAME_LEN, (f + 1) * FRAME_LEN));
      await ds.close();
    },
  }, 3);
  const size = fs.statSync(file).size;
  let readSecs = Infinity;
  let back;
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    back = await new HDF5Checkpointer(file).get('x');
    readSecs = Math.min(readSecs, Number(process.hrtime.bigint() - t) / 1e9);
  }
  if (Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), Buffer.from(data.buffer)) !== 0) {
    throw new Error('compressed frames do not read back');
  }
  const h5py = py(H5PY_GZIP, raw, dir, JSON.stringify(chunks));
  fs.rmSync(raw);
  fs.rmSync(file);
  return { bytes: data.byteLength, frames, chunks, ours: { batches: r.batches, frames: r.frames, readSecs, size }, h5py };
}

// ------------------------------------------------------------------------------- report

async function main() {
  // `node benchmark/dataset.js --compression`: the two compression tables alone (a short run).
  const only = process.argv.includes('--compression');
  const frames = only ? null : randomFloat64(FRAMES * FRAME_LEN);
  const bytes = frames ? frames.byteLength : 0;
  const ms = (s) => `${fmt(s * 1000, 1)} ms`;
  console.log('## Dataset handles (HDF5)\n');
  const dirs = scratchDirs();
  if (!only) await appendsAndSlices(dirs, frames, bytes, ms);
  await compressionTables(dirs);
}

async function appendsAndSlices(dirs, frames, bytes, ms) {
  console.log(`### ${FRAMES} single-frame appends of ${FRAME.join('x')} float64 (${fmt(bytes / MiB, 1)} MiB)\n`);
  console.log('Each run creates a fresh file, opens the dataset, appends frame by frame and closes; best of 7 interleaved '
    + 'rounds after a warm-up. h5py: `ds.resize(i + 1, axis=0); ds[i] = frame` with `chunks=True`, best of 2. '
    + '"plain write" is one `fs.writeFileSync` of the same bytes to a fresh file.\n');
  console.log('| where | plain write | ours `await ds.append` | ours `appendSync` | h5py loop | h5py / ours async | ours async / plain |');
  console.log('|---|---|---|---|---|---|---|');
  const appendSpeeds = chart('dataset-appends', {
    title: `Dataset appends: ${FRAMES} single-frame appends of ${FRAME.join('x')} float64 (${fmt(bytes / MiB, 1)} MiB) into a fresh HDF5 file`,
    subtitle: 'Throughput = bytes appended / time from creating the file to closing it; best of 7 interleaved rounds (h5py: best of 2). '
      + 'h5py: ds.resize(i + 1, axis=0); ds[i] = frame. "plain write" is one fs.writeFileSync of all the bytes at once.',
    unit: 'MiB/s',
    better: 'higher',
  });
  for (const { name, dir } of dirs) {
    const r = await appends(dir, frames);
    console.log(`| ${name} | ${ms(r.plain)} | ${ms(r.async)} | ${ms(r.sync)} | ${ms(r.h5py)} | ${fmt(r.h5py / r.async, 0)}x | ${fmt(r.async / r.plain)}x |`);
    const bar = (label, secs, kind = 'ours') => appendSpeeds.bar(name, label, bytes / MiB / secs, { kind });
    bar('plain write (one call)', r.plain, 'plain');
    bar('ours await ds.append', r.async);
    bar('ours appendSync', r.sync);
    bar('h5py resize loop', r.h5py, 'peer');
  }

  const diskDir = dirs[dirs.length - 1].dir;
  const s = await slices(diskDir);
  console.log(`\n### Slices of a 1 GiB dataset (${s.rows} frames of ${FRAME.join('x')} float64, chunks [${s.chunks.join(', ')}], disk, page cache warm)\n`);
  console.log(`Written with batched appends and one \`flush()\` (a durable commit: the fsync of the 1 GiB file included) in ${fmt(s.writeSecs, 2)} s. Bytes read are \`rchar\` from /proc/self/io around the read; best of 5 (whole: 3).\n`);
  const whole = s.cases[s.cases.length - 1];
  console.log('| selection | result | bytes read from the file | read / result | time | time / whole read |');
  console.log('|---|---|---|---|---|---|');
  for (const c of s.cases) {
    console.log(`| ${c.name} | ${fmt(c.resultBytes / MiB, 3)} MiB | ${fmt(c.bytes / MiB, 3)} MiB | ${fmt(c.bytes / c.resultBytes)}x | `
      + `${ms(c.secs)} | ${c === whole ? '1' : `1/${fmt(whole.secs / c.secs, 0)}`} |`);
  }

}

async function compressionTables(dirs) {
  const z = await compression(dirs[0].dir);
  const mbs = (secs) => `${fmt(z.bytes / MiB / secs, 0)} MiB/s`;
  console.log(`\n### gzip (level 4) + shuffle: ${fmt(z.bytes / MiB, 0)} MiB of trajectory-like float64 frames, tmpfs\n`);
  console.log('Data: positions drifting by small random steps, rounded to 1e-3. Throughput counts uncompressed bytes; ratio = uncompressed / file size. '
    + 'Ours best of 3 interleaved rounds; h5py `create_dataset(data=a, compression=\'gzip\', shuffle=True)` in one call, best of 3. '
    + 'Reads: the whole dataset, ours `await get`, h5py `ds[()]`, best of 3.\n');
  console.log('| writer | chunks | write | read | ratio |');
  console.log('|---|---|---|---|---|');
  console.log(`| ours, appends of 1024 frames | [${z.chunks.join(', ')}] | ${mbs(z.ours.batches)} | ${mbs(z.ours.readSecs)} | ${fmt(z.bytes / z.ours.size)} |`);
  console.log(`| ours, single-frame appends | [${z.chunks.join(', ')}] | ${mbs(z.ours.frames)} | | ${fmt(z.bytes / z.ours.size)} |`);
  for (const [name, v] of Object.entries(z.h5py)) console.log(`| ${name} | [${v.chunks.join(', ')}] | ${mbs(v.secs)} | ${mbs(v.readSecs)} | ${fmt(z.bytes / v.size)} |`);
  // One bar per writer row of the table, write and read apart; a row added to the table (another codec) gets its bars by the same call.
  const codecSpeeds = chart('dataset-compression', {
    title: `Compressed datasets: ${fmt(z.bytes / MiB, 0)} MiB of trajectory-like float64 frames, tmpfs`,
    subtitle: 'Throughput counts uncompressed bytes; ratio = uncompressed / file size. Ours: best of 3 interleaved rounds; '
      + 'h5py: create_dataset(data=a, compression=...) in one call, best of 3. Reads: the whole dataset (ours await get, h5py ds[()]), best of 3.',
    unit: 'MiB/s',
    better: 'higher',
  });
  const codecRow = (writer, { write, read, size, kind = 'ours' }) => {
    const note = `ratio ${fmt(z.bytes / size)}`;
    codecSpeeds.bar('write', writer, z.bytes / MiB / write, { kind, note });
    if (read !== undefined) codecSpeeds.bar('read', writer, z.bytes / MiB / read, { kind, note });
  };
  codecRow('ours gzip 4 + shuffle, appends of 1024 frames', { write: z.ours.batches, read: z.ours.readSecs, size: z.ours.size });
  codecRow('ours gzip 4 + shuffle, single-frame appends', { write: z.ours.frames, size: z.ours.size });
  for (const [name, v] of Object.entries(z.h5py)) codecRow(`h5py gzip 4 + shuffle, ${name.replace(/^h5py,? /, '')}`, { write: v.secs, read: v.readSecs, size: v.size, kind: 'peer' });

  const k = await codecs(dirs[0].dir, dirs[dirs.length - 1].dir);
  const kbs = (secs) => `${fmt(k.bytes / MiB / secs, 0)} MiB/s`;
  console.log(`\n### Codecs: ${fmt(k.bytes / MiB, 0)} MiB of the same trajectory-like frames, chunks [${k.chunks.join(', ')}], tmpfs\n`);
  console.log('Ours: appends of 1024 frames into a fresh file, best of 3 after a warm-up; read: `await get`, best of 3; each codec in a child '
    + 'process. "HDF5 pipeline" rows turn the parallel chunk path off (`CHECKPOINTER_HDF5_THREADS=0`). '
    + 'h5py lz4: `create_dataset(data=a, shuffle=True, **hdf5plugin.LZ4())` through Debian\'s lz4 plugin, best of 3.\n');
  console.log('| writer | write | read | ratio | write / plain |');
  console.log('|---|---|---|---|---|');
  const plain = k.rows[0];
  for (const r of k.rows) console.log(`| ours, ${r.name} | ${kbs(r.secs)} | ${kbs(r.readSecs)} | ${fmt(k.bytes / r.size)} | ${fmt(plain.secs / r.secs)} |`);
  if (k.h5pyLz4) console.log(`| h5py, lz4 + shuffle (hdf5plugin) | ${kbs(k.h5pyLz4.secs)} | ${kbs(k.h5pyLz4.readSecs)} | ${fmt(k.bytes / k.h5pyLz4.size)} | ${fmt(plain.secs / k.h5pyLz4.secs)} |`);
  for (const r of k.rows) codecRow(`ours ${r.name}`, { write: r.secs, read: r.readSecs, size: r.size });
  if (k.h5pyLz4) codecRow('h5py lz4 + shuffle (hdf5plugin)', { write: k.h5pyLz4.secs, read: k.h5pyLz4.readSecs, size: k.h5pyLz4.size, kind: 'peer' });

  console.log('\nThe same writes on disk, each ended by a durable commit (fsync of the file and its folder, timed): the time until the checkpoint is safe.\n');
  console.log('| writer, disk, durable | write | ratio | write / plain |');
  console.log('|---|---|---|---|');
  const plainDurable = k.durableRows[0];
  const durableSpeeds = chart('dataset-codecs-durable', {
    title: `Codecs on disk, durable commit: ${fmt(k.bytes / MiB, 0)} MiB of trajectory-like float64 frames`,
    subtitle: 'Appends of 1024 frames into a fresh file on disk, the durable commit (fsync of file and folder) timed; best of 3 after a warm-up. '
      + 'Throughput counts uncompressed bytes.',
    unit: 'MiB/s',
    better: 'higher',
  });
  for (const r of k.durableRows) {
    console.log(`| ours, ${r.name} | ${kbs(r.secs)} | ${fmt(k.bytes / r.size)} | ${fmt(plainDurable.secs / r.secs)} |`);
    durableSpeeds.bar('write', `ours ${r.name}`, k.bytes / MiB / r.secs, { note: `ratio ${fmt(k.bytes / r.size)}` });
  }
  console.log('');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
