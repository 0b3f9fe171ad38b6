'use strict';
/**
 * Reads (issue 7): single-frame reads one call per frame (gzip+shuffle and plain chunked datasets,
 * sequential and random order) against h5py's `for i in range(n): ds[i]` loop on the same file;
 * every 7th frame of a 1 GiB dataset against h5py's `ds[::7]` (time, bytes read, chunks touched);
 * event-loop stalls while two checkpointers write 512 MiB each and a third reads small keys.
 * h5py runs in one long-lived Debian python3 process that holds its files open and times each
 * loop with perf_counter, so interpreter start and imports are outside every figure.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { HDF5Checkpointer } = require('..');
const { MiB, PYTHON, machine, rchar, scratchDirs, randomFloat64, fmt, scaled, chart } = require('./common');

const FRAME = [3, 100];
const FRAME_LEN = FRAME[0] * FRAME[1];
const FRAME_BYTES = FRAME_LEN * 8;
const GZIP_FRAMES = scaled(2000);
const PLAIN_FRAMES = scaled(10000);
const STEP = 7;
const BIG = Math.ceil(scaled(512 * MiB) / 4096) * 4096;
const STALL_TARGET_MS = 20;

// ------------------------------------------------------------------------------- helpers

const secsSince = (t) => Number(process.hrtime.bigint() - t) / 1e9;
const ms = (s) => `${fmt(s * 1000, 1)} ms`;
const us = (s) => `${fmt(s * 1e6, 1)} µs`;
const mib = (b) => `${fmt(b / MiB, 1)} MiB`;
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Best seconds of contenders that time themselves (each resolves to its own seconds, so h5py's
 * figure is the loop timed inside Python), in interleaved rounds after one warm-up each. The
 * rounds adapt to the slowest warm-up: as many as fit `budget` seconds per contender, within
 * [minRounds, maxRounds].
 */
async function interleavedTimed(contenders, { minRounds = 2, maxRounds = 7, budget = 8 } = {}) {
  const bestOf = {};
  const warm = {};
  for (const [name, fn] of Object.entries(contenders)) {
    warm[name] = await fn();
    bestOf[name] = Infinity;
  }
  const slowest = Math.max(...Object.values(warm));
  const rounds = Math.max(minRounds, Math.min(maxRounds, Math.floor(budget / slowest)));
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(contenders)) bestOf[name] = Math.min(bestOf[name], await fn());
  }
  return { best: bestOf, rounds };
}

/** A reproducible permutation of 0..n-1 (Fisher–Yates over mulberry32). */
function permutation(n, seed = 7) {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Trajectory-like frames (as benchmark/dataset.js): positions drifting by small steps, rounded to 1e-3. */
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

/**
 * How one frame is selected, in one place: the integer-index form `[i, null, null]` (a frame of
 * shape [3, 100]) when the handle takes it, else the slice `[[i, i + 1], null, null]` ([1, 3, 100]).
 */
function frameSelector(ds) {
  try {
    const r = ds.readSync([0, null, null]);
    if (r.shape.length === FRAME.length) return { form: '`[i, null, null]`', sel: (i) => [i, null, null] };
  } catch { /* not supported: fall back to the slice */ }
  return { form: '`[[i, i + 1], null, null]`', sel: (i) => [[i, i + 1], null, null] };
}

function sameFrame(got, want, what) {
  if (got.length !== want.length || got.some((x, j) => x !== want[j])) throw new Error(`${what}: wrong frame read`);
}

// ------------------------------------------------------------------------------- h5py peer

const H5PY_SERVER = `
import h5py, numpy as np, sys, json, time
def rchar():
    with open('/proc/self/io') as f:
        for line in f:
            if line.startswith('rchar:'):
                return int(line.split()[1])
files, orders = {}, {}
out = sys.stdout
out.write(json.dumps({'h5py': h5py.version.version, 'hdf5': h5py.version.hdf5_version, 'numpy': np.__version__}) + '\\n')
out.flush()
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd['op']
    if op == 'open':
        f = h5py.File(cmd['file'], 'r')
        ds = f[cmd['key']]
        files[cmd['name']] = (f, ds)
        res = {'chunks': ds.chunks, 'shape': ds.shape}
    elif op == 'order':
        orders[cmd['name']] = [int(i) for i in cmd['order']]
        res = {}
    elif op == 'frames':
        ds = files[cmd['name']][1]
        n = cmd['n']
        order = orders[cmd['order']] if cmd.get('order') else None
        if order is None:
            t = time.perf_counter()
            for i in range(n):
                x = ds[i]
            secs = time.perf_counter() - t
            last = n - 1
        else:
            t = time.perf_counter()
            for i in order:
                x = ds[i]
            secs = time.perf_counter() - t
            last = order[-1]
        res = {'secs': secs, 'last': last, 'lastSum': float(x.sum())}
    elif op == 'step':
        ds = files[cmd['name']][1]
        step = cmd['step']
        r0 = rchar()
        t = time.perf_counter()
        x = ds[::step]
        secs = time.perf_counter() - t
        r1 = rchar()
        ok = bool((x[:, 0, 0] == np.arange(0, ds.shape[0], step)).all())
        res = {'secs': secs, 'bytes': r1 - r0, 'resultBytes': x.nbytes, 'ok': ok}
        del x
    elif op == 'close':
        f, ds = files.pop(cmd['name'])
        f.close()
        res = {}
    out.write(json.dumps(res) + '\\n')
    out.flush()
`;

/** One long-lived python3 running h5py; `call(cmd)` sends a command and resolves to its JSON reply. */
function startH5py() {
  const child = spawn(PYTHON, ['-c', H5PY_SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (line) => waiting.shift()?.resolve(JSON.parse(line)));
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`h5py peer exited with ${code}`));
  });
  const next = () => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  const versions = next();
  return {
    versions,
    call(cmd) {
      const reply = next();
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
      return reply;
    },
    stop() {
      child.stdin.end();
      return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
    },
  };
}

// ------------------------------------------------------------------------------- 1. single frames

async function writeFrames(file, data, opts) {
  fs.rmSync(file, { force: true });
  const chk = new HDF5Checkpointer(file);
  const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, ...FRAME], ...opts });
  await ds.append(data);
  const info = { chunks: ds.chunks };
  await ds.close();
  return info;
}

async function singleFrames(dir, h5py) {
  const cases = [
    { name: 'gzip 4 + shuffle', file: path.join(dir, 'frames-gzip.h5'), frames: GZIP_FRAMES, data: trajectory(GZIP_FRAMES),
      opts: { compression: 'gzip', shuffle: true } },
    { name: 'plain chunked', file: path.join(dir, 'frames-plain.h5'), frames: PLAIN_FRAMES, data: randomFloat64(PLAIN_FRAMES * FRAME_LEN), opts: {} },
  ];
  const rows = [];
  for (const c of cases) {
    const { chunks } = await writeFrames(c.file, c.data, c.opts);
    const chk = new HDF5Checkpointer(c.file);
    await chk.open();
    const ds = await chk.dataset('x');
    const { form, sel } = frameSelector(ds);
    await h5py.call({ op: 'open', name: c.name, file: c.file, key: 'x' });
    const perm = permutation(c.frames);
    await h5py.call({ op: 'order', name: 'perm', order: perm });
    const expect = (i) => c.data.subarray(i * FRAME_LEN, (i + 1) * FRAME_LEN);
    for (const order of ['sequential', 'random']) {
      const idx = order === 'sequential' ? Array.from({ length: c.frames }, (_, i) => i) : perm;
      const lastIdx = idx[idx.length - 1];
      let last = null;
      const r = await interleavedTimed({
        async: async () => {
          const t = process.hrtime.bigint();
          for (const i of idx) last = await ds.read(sel(i));
          const s = secsSince(t);
          sameFrame(last.data, expect(lastIdx), `async read of frame ${lastIdx}`);
          return s;
        },
        sync: async () => {
          const t = process.hrtime.bigint();
          for (const i of idx) last = ds.readSync(sel(i));
          const s = secsSince(t);
          sameFrame(last.data, expect(lastIdx), `readSync of frame ${lastIdx}`);
          return s;
        },
        h5py: async () => {
          const p = await h5py.call({ op: 'frames', name: c.name, n: c.frames, order: order === 'random' ? 'perm' : null });
          const want = expect(p.last).reduce((a, b) => a + b, 0);
          if (p.last !== lastIdx || Math.abs(p.lastSum - want) > 1e-6 * Math.abs(want) + 1e-9) throw new Error(`h5py read frame ${p.last} wrong`);
          return p.secs;
        },
      }, { minRounds: 2, maxRounds: 7, budget: 6 });
      rows.push({ name: c.name, chunks, frames: c.frames, order, form, rounds: r.rounds, ...r.best });
    }
    await h5py.call({ op: 'close', name: c.name });
    await ds.close();
    await chk.close();
    fs.rmSync(c.file, { force: true });
  }
  return rows;
}

// ------------------------------------------------------------------------------- 2. every 7th frame

/** Builds the 1 GiB dataset as benchmark/dataset.js does: batched appends, frame r filled with r. */
async function writeBig(file) {
  fs.rmSync(file, { force: true });
  const rows = Math.floor(scaled(1024 * MiB) / FRAME_BYTES);
  const chk = new HDF5Checkpointer(file);
  const ds = await chk.dataset('x', { dtype: 'float64', shape: [0, ...FRAME] });
  const batchRows = 4096;
  const batch = new Float64Array(batchRows * FRAME_LEN);
  for (let r = 0; r < rows; r += batchRows) {
    const n = Math.min(batchRows, rows - r);
    for (let k = 0; k < n; k++) batch.fill(r + k, k * FRAME_LEN, (k + 1) * FRAME_LEN);
    await ds.append(batch.subarray(0, n * FRAME_LEN));
  }
  const chunks = ds.chunks;
  await ds.close();
  return { rows, chunks };
}

/** Bytes of the chunks holding at least one frame 0, step, 2·step, … (whole chunks, as stored). */
function chunksTouched(rows, chunks, step) {
  const chunkBytes = chunks.reduce((a, b) => a * b, 8);
  const touched = new Set();
  for (let i = 0; i < rows; i += step) touched.add(Math.floor(i / chunks[0]));
  return { count: touched.size, bytes: touched.size * chunkBytes };
}

function checkStepped(nd, rows, what) {
  const want = Math.ceil(rows / STEP);
  if (nd.shape[0] !== want) throw new Error(`${what}: ${nd.shape[0]} frames, expected ${want}`);
  for (let k = 0; k < want; k += 997) if (nd.data[k * FRAME_LEN] !== k * STEP) throw new Error(`${what}: frame ${k} holds ${nd.data[k * FRAME_LEN]}`);
}

async function stepped(dir, h5py) {
  const file = path.join(dir, 'big.h5');
  const { rows, chunks } = await writeBig(file);
  const touched = chunksTouched(rows, chunks, STEP);
  const chk = new HDF5Checkpointer(file);
  await chk.open();
  const ds = await chk.dataset('x');
  await h5py.call({ op: 'open', name: 'big', file, key: 'x' });
  const sel = [[0, null, STEP], null, null];
  const bytes = { async: Infinity, sync: Infinity, h5py: Infinity };
  let resultBytes = 0;
  const r = await interleavedTimed({
    async: async () => {
      const before = rchar();
      const t = process.hrtime.bigint();
      let nd = await ds.read(sel);
      const s = secsSince(t);
      bytes.async = Math.min(bytes.async, rchar() - before);
      checkStepped(nd, rows, 'async read');
      resultBytes = nd.data.byteLength;
      nd = null;
      return s;
    },
    sync: async () => {
      const before = rchar();
      const t = process.hrtime.bigint();
      let nd = ds.readSync(sel);
      const s = secsSince(t);
      bytes.sync = Math.min(bytes.sync, rchar() - before);
      checkStepped(nd, rows, 'readSync');
      nd = null;
      return s;
    },
    h5py: async () => {
      const p = await h5py.call({ op: 'step', name: 'big', step: STEP });
      if (!p.ok) throw new Error('h5py ds[::7] read wrong frames');
      bytes.h5py = Math.min(bytes.h5py, p.bytes);
      return p.secs;
    },
  }, { minRounds: 3, maxRounds: 5, budget: 6 });
  await h5py.call({ op: 'close', name: 'big' });
  await ds.close();
  await chk.close();
  fs.rmSync(file, { force: true });
  return { rows, chunks, touched, resultBytes, rounds: r.rounds, secs: r.best, bytes };
}

// ------------------------------------------------------------------------------- 3. stalls

const SMALL = { step: 1200, time: 0.25, energy: -1234.5, converged: false, forces: Float64Array.from({ length: 16 }, (_, i) => i / 16) };

function bigArray(seed) {
  const a = new Float64Array(BIG / 8);
  for (let i = 0; i < a.length; i += 512) a[i] = seed + i;
  return a;
}

/** Writes `arr` as 'big' into a fresh `file` (set, then close); seconds of the set and of set+close. */
async function writeBigKey(file, arr) {
  fs.rmSync(file, { force: true });
  const chk = new HDF5Checkpointer(file, { durable: false }); // as the control writer: no fsync
  await chk.open();
  const t = process.hrtime.bigint();
  await chk.set('big', arr);
  const setSecs = secsSince(t);
  await chk.close();
  return { setSecs, secs: secsSince(t) };
}

/** The worker-thread writer: holds its own 512 MiB array and writes it on each message. */
function writerWorker() {
  const arr = bigArray(2);
  parentPort.on('message', async (file) => {
    try {
      parentPort.postMessage({ ok: true, ...(await writeBigKey(file, arr)) });
    } catch (err) {
      parentPort.postMessage({ ok: false, message: String(err?.stack ?? err) });
    }
  });
  parentPort.postMessage({ ready: true });
}

/** The control's worker: writes the same bytes with plain fs.writeSync in 4 MiB pieces (as HDF5 writes chunks), no HDF5. */
function fsWriterWorker() {
  const bytes = new Uint8Array(bigArray(2).buffer);
  const piece = 4 * MiB;
  parentPort.on('message', (file) => {
    const t = process.hrtime.bigint();
    fs.rmSync(file, { force: true });
    const fd = fs.openSync(file, 'w');
    for (let pass = 0; pass < 2; pass++) {
      for (let o = 0; o < bytes.length; o += piece) fs.writeSync(fd, bytes, o, Math.min(piece, bytes.length - o), pass * bytes.length + o);
    }
    fs.closeSync(fd);
    parentPort.postMessage({ ok: true, secs: secsSince(t) });
  });
  parentPort.postMessage({ ready: true });
}

function startWorker(role = 'writer') {
  const w = new Worker(__filename, { workerData: { role } });
  let pending = null;
  const ready = new Promise((resolve, reject) => {
    w.on('error', (err) => (pending ? pending.reject(err) : reject(err)));
    w.on('message', (m) => {
      if (m.ready) return resolve();
      const p = pending;
      pending = null;
      if (m.ok) p.resolve(m);
      else p.reject(new Error(m.message));
    });
  });
  return {
    ready,
    write(file) {
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        w.postMessage(file);
      });
    },
    stop: () => w.terminate(),
  };
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

/**
 * One round: both writers start together; the reader loops `await get('small')` (then lets the loop
 * turn once) until both are done. Returns the round's delay histogram, interval gaps and counts.
 */
async function stallRound(dir, arrays, worker) {
  const files = [path.join(dir, 'w1.h5'), path.join(dir, 'w2.h5')];
  for (const f of files) fs.rmSync(f, { force: true });
  const reader = new HDF5Checkpointer(path.join(dir, 'reader.h5'));
  await reader.open();
  await reader.get('small');
  global.gc?.();
  await yieldToLoop();

  const eld = monitorEventLoopDelay({ resolution: 1 });
  const gaps = [];
  let prev = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    gaps.push(now - prev);
    prev = now;
  }, 1);
  eld.enable();
  // Let both trackers take their first samples: the histogram does not record the delay before its first tick.
  await new Promise((resolve) => setTimeout(resolve, 5));
  let done = false;
  let reads = 0;
  const t = process.hrtime.bigint();
  const writes = Promise.all([
    writeBigKey(files[0], arrays[0]),
    worker ? worker.write(files[1]) : writeBigKey(files[1], arrays[1]),
  ]).finally(() => { done = true; });
  const readLoop = (async () => {
    while (!done) {
      const v = await reader.get('small');
      if (v.step !== SMALL.step) throw new Error('small read back wrong');
      reads++;
      // Today a small get resolves without the event loop turning; without this the loop would starve
      // timers (and never see the writes finish).
      await yieldToLoop();
    }
  })();
  const w = await writes;
  const secs = secsSince(t);
  await readLoop;
  eld.disable();
  clearInterval(tick);
  await reader.close();
  for (const f of files) fs.rmSync(f, { force: true });
  return { eld, gaps, reads, secs, writers: w };
}

async function stalls(dir, { worker, rounds = 3 }) {
  const readerFile = path.join(dir, 'reader.h5');
  fs.rmSync(readerFile, { force: true });
  await new HDF5Checkpointer(readerFile).set('small', SMALL);
  const arrays = [bigArray(1), worker ? null : bigArray(2)];
  const w = worker ? startWorker() : null;
  if (w) await w.ready;

  // Reads per second of the reader alone (same loop, no writers), for scale.
  const reader = new HDF5Checkpointer(readerFile);
  await reader.open();
  let alone = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 500) {
    await reader.get('small');
    alone++;
    await yieldToLoop();
  }
  const aloneRate = alone / ((performance.now() - t0) / 1000);
  await reader.close();

  const eld = [];
  const gaps = [];
  const out = { reads: [], secs: [], writerSecs: [] };
  // A first round in a fresh process runs cold (new tmpfs/page-cache pages, first pool jobs): reported apart.
  const c = await stallRound(dir, arrays, w);
  const cold = { secs: c.secs, max: Math.max(c.eld.max / 1e6, ...c.gaps) };
  for (let r = 0; r < rounds; r++) {
    const x = await stallRound(dir, arrays, w);
    eld.push({ max: x.eld.max / 1e6, p99: x.eld.percentile(99) / 1e6 });
    gaps.push(...x.gaps);
    out.reads.push(x.reads);
    out.secs.push(x.secs);
    out.writerSecs.push(x.writers.map((v) => v.secs));
  }
  await w?.stop();
  fs.rmSync(readerFile, { force: true });
  gaps.sort((a, b) => a - b);
  return {
    ...out,
    cold,
    aloneRate,
    eldMax: Math.max(...eld.map((e) => e.max)),
    eldP99: Math.max(...eld.map((e) => e.p99)),
    gapMax: gaps[gaps.length - 1] ?? NaN,
    gapP99: percentile(gaps, 99),
    ticks: gaps.length,
  };
}

/**
 * The control: the same 1 GiB written with plain fs.writeSync by a worker, no HDF5 anywhere, and
 * the main thread's loop measured the same way: the stalls this machine has anyway.
 */
async function controlStalls(dir, rounds = 4) {
  const w = startWorker('fswriter');
  await w.ready;
  const file = path.join(dir, 'control.bin');
  let max = 0;
  const p99s = [];
  for (let r = 0; r < rounds; r++) {
    const eld = monitorEventLoopDelay({ resolution: 1 });
    let prev = performance.now();
    let gapMax = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      gapMax = Math.max(gapMax, now - prev);
      prev = now;
    }, 1);
    eld.enable();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // The main thread is as busy as the reader's loop: small work, then a turn of the loop.
    let done = false;
    const written = w.write(file).finally(() => { done = true; });
    while (!done) {
      const scratch = [];
      for (let k = 0; k < 50; k++) scratch.push({ k, s: `x${k}` });
      await yieldToLoop();
    }
    await written;
    eld.disable();
    clearInterval(tick);
    max = Math.max(max, eld.max / 1e6, gapMax);
    p99s.push(eld.percentile(99) / 1e6);
  }
  await w.stop();
  fs.rmSync(file, { force: true });
  return { max, p99: Math.max(...p99s), rounds };
}

// ------------------------------------------------------------------------------- report

/** `node benchmark/reads.js [frames] [stepped] [stalls]`: only those sections (default all). */
const only = process.argv.slice(2);
const want = (section) => only.length === 0 || only.includes(section);

const met = (ok) => (ok ? '**yes**' : 'no');

async function main() {
  const started = process.hrtime.bigint();
  const h5py = startH5py();
  try {
    await report(started, h5py);
  } finally {
    await h5py.stop();
  }
}

async function report(started, h5py) {
  const load0 = os.loadavg()[0];
  const v = await h5py.versions;
  if (!process.env.CHECKPOINTER_BENCH_SUITE) console.log(`Machine: ${machine()}\n`);
  console.log('## Reads (issue 7): single frames, strided reads, event-loop stalls\n');
  console.log(`h5py ${v.h5py} (HDF5 ${v.hdf5}), numpy ${v.numpy}, Debian's ${PYTHON}. h5py runs in one long-lived python3 process `
    + 'that opens each file once (read-only, as ours) and times each loop with `time.perf_counter()`: interpreter start, imports '
    + 'and the request/reply pipe are outside every h5py figure. Ours is timed around the same loop in this process, with the '
    + 'dataset handle opened beforehand. Every table is best of interleaved rounds after one warm-up per contender.\n');

  const dirs = scratchDirs();
  const tmpfs = dirs[0];
  const disk = dirs[dirs.length - 1];

  // 1 ------------------------------------------------------------------------------------------
  if (want('frames')) await reportFrames(tmpfs, h5py);
  global.gc?.();
  if (want('stepped')) await reportStepped(disk, h5py);
  await h5py.stop();
  global.gc?.();
  if (want('stalls')) await reportStalls(dirs);
  console.log(`Suite time: ${fmt(secsSince(started), 0)} s; 1-minute load average at the start ${fmt(load0)}, at the end ${fmt(os.loadavg()[0])} `
    + `(${os.cpus().length} CPUs: more than that means other work shared the machine).\n`);
}

async function reportFrames(tmpfs, h5py) {
  const frames = await singleFrames(tmpfs.dir, h5py);
  console.log(`### Single-frame reads, one call per frame (${FRAME.join('x')} float64 frames, ${tmpfs.name})\n`);
  console.log(`Selection per call: ours ${frames[0].form}, h5py \`ds[i]\`. "random" is one fixed permutation of 0..n-1 (the same for both). `
    + 'Datasets made by `chk.dataset(key, {dtype, shape: [0, 3, 100], ...})` with its chunk choice; the gzip data is trajectory-like '
    + '(as in the gzip write benchmark), the plain data random. Times are the whole loop; per-read in parentheses. '
    + 'Target: ours no slower than h5py\'s loop.\n');
  console.log('| dataset | chunks | reads | order | ours `await ds.read` | ours `readSync` | h5py `for i in …: ds[i]` | target (≤ h5py) | met |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const perRead = chart('reads-frames', {
    title: `Single-frame reads, one call per frame (${FRAME.join('x')} float64 frames, ${tmpfs.name})`,
    subtitle: `Time of the whole loop / reads; best of interleaved rounds. Ours ${frames[0].form.replace(/`/g, '')}, h5py ds[i] in a long-lived `
      + 'python3 (interpreter start outside the figure). "random" is one fixed permutation, the same for both. Log axis: the groups span decades.',
    unit: 'µs per read',
    better: 'lower',
    log: true,
  });
  for (const r of frames) {
    const group = `${r.name}, ${r.frames} frames, ${r.order} order`;
    perRead.bar(group, 'ours await ds.read', (r.async / r.frames) * 1e6);
    perRead.bar(group, 'ours readSync', (r.sync / r.frames) * 1e6);
    perRead.bar(group, 'h5py ds[i] loop', (r.h5py / r.frames) * 1e6, { kind: 'peer' });
    const cell = (s) => `${ms(s)} (${us(s / r.frames)})`;
    const rel = (s) => `${fmt(s / r.h5py, 2)}x h5py's time`;
    console.log(`| ${r.name} | [${r.chunks.join(', ')}] | ${r.frames} | ${r.order} | ${cell(r.async)} | ${cell(r.sync)} | ${cell(r.h5py)} | `
      + `≤ ${ms(r.h5py)} | async ${met(r.async <= r.h5py)} (${rel(r.async)}), sync ${met(r.sync <= r.h5py)} (${rel(r.sync)}) |`);
  }
  console.log(`\nRounds after the warm-up: ${frames.map((r) => `${r.name}/${r.order} ${r.rounds}`).join(', ')}.\n`);
}

async function reportStepped(disk, h5py) {
  const s = await stepped(disk.dir, h5py);
  const chunkMiB = s.chunks.reduce((a, b) => a * b, 8) / MiB;
  console.log(`### Every ${STEP}th frame of a 1 GiB dataset (${s.rows} frames of ${FRAME.join('x')} float64, chunks [${s.chunks.join(', ')}], `
    + `${disk.name}, page cache warm)\n`);
  console.log(`Selection: ours \`[[0, null, ${STEP}], null, null]\`, h5py \`ds[::${STEP}]\`; result ${mib(s.resultBytes)} (${Math.ceil(s.rows / STEP)} frames). `
    + `The file is built as in the slices benchmark (batched appends) and read once by every contender before the timed rounds, so the page cache holds it. `
    + `Bytes read are \`rchar\` from /proc/self/io around the read (ours in this process, h5py inside python), least of the rounds. `
    + `Chunks touched: ${s.touched.count} chunks of ${fmt(chunkMiB, 2)} MiB hold a selected frame = ${mib(s.touched.bytes)}. `
    + `Best of ${s.rounds} rounds. Targets: time no slower than h5py; bytes read ≤ 1.2x the chunks touched.\n`);
  console.log('| reader | time | bytes read | read / chunks touched | read / result | target: time ≤ h5py | met | target: bytes ≤ 1.2x touched | met |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const strided = chart('reads-stepped', {
    title: `Every ${STEP}th frame of a ${fmt(s.rows * FRAME_BYTES / MiB, 0)} MiB dataset (chunks [${s.chunks.join(', ')}], ${disk.name}, page cache warm)`,
    subtitle: `Ours [[0, null, ${STEP}], null, null], h5py ds[::${STEP}]; result ${mib(s.resultBytes)}; best of ${s.rounds} rounds. `
      + 'Beside each bar: bytes read from the file (rchar), against the chunks holding a selected frame.',
    unit: 'ms',
    better: 'lower',
  });
  for (const [name, label] of [['async', 'ours `await ds.read`'], ['sync', 'ours `readSync`'], ['h5py', `h5py \`ds[::${STEP}]\``]]) {
    const secs = s.secs[name];
    const b = s.bytes[name];
    strided.bar('read', label.replace(/`/g, ''), secs * 1000, { kind: name === 'h5py' ? 'peer' : 'ours', note: `${mib(b)} read (${fmt(b / s.touched.bytes, 2)}x touched)` });
    const timeCell = name === 'h5py' ? '—' : `≤ ${ms(s.secs.h5py)}`;
    const timeMet = name === 'h5py' ? '—' : `${met(secs <= s.secs.h5py)} (${fmt(secs / s.secs.h5py, 2)}x h5py's time)`;
    console.log(`| ${label} | ${ms(secs)} | ${mib(b)} | ${fmt(b / s.touched.bytes, 2)}x | ${fmt(b / s.resultBytes, 2)}x | ${timeCell} | ${timeMet} | `
      + `≤ ${mib(1.2 * s.touched.bytes)} | ${met(b <= 1.2 * s.touched.bytes)} |`);
  }
  console.log('');
}

async function reportStalls(dirs) {
  console.log(`### Event-loop stalls: two checkpointers each writing ${BIG / MiB} MiB at once while a third reads small keys\n`);
  console.log(`Two \`HDF5Checkpointer\`s, each on its own fresh file, \`await set('big', <${BIG / MiB} MiB Float64Array>)\` then close, started together `
    + '(`Promise.all`); a third on a third file (scope opened once) loops `await get(\'small\')` (4 scalars and a 16-element Float64Array), '
    + 'letting the event loop turn once (`setImmediate`) after each read, until both writes finish. "worker": the second writer runs in a '
    + '`worker_threads` Worker (its own array, its own checkpointer). Stalls: `monitorEventLoopDelay({resolution: 1})` max and p99, and a '
    + '1 ms `setInterval` whose longest and p99 gap between ticks is given (nominal gap 1 ms). After one cold round '
    + '(reported apart), 3 measured rounds: max = the largest of them, ELD p99 = the worst round\'s, interval p99 = over the ticks of all three '
    + '(few ticks mean the loop was blocked most of the time). '
    + `Write throughput: ${2 * BIG / MiB} MiB / time until both writes (set + close) finished, best round (each writer\'s own set + close time beside it). Reads: small gets completed during the writes, per round; `
    + 'the reader alone (no writers, same loop) for scale. Target: longest stall < 20 ms, judged over every round including the cold one.\n');
  console.log('| where | second writer | both writes done in (best round) | each writer: set + close | write throughput | small reads done, per round | reader alone | ELD max | ELD p99 | interval max gap | interval p99 gap | interval ticks / ms elapsed | cold first round: done in, longest stall | target | met |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const stallChart = chart('reads-stalls', {
    title: `Longest event-loop stall: two checkpointers each writing ${fmt(BIG / MiB, 0)} MiB at once while a third reads small keys`,
    subtitle: 'The largest of monitorEventLoopDelay max and the longest 1 ms setInterval gap, over a cold round and 3 measured rounds. '
      + 'Control: no HDF5 at all, a worker writing the same bytes with fs.writeSync while the main thread is as busy as the reader: '
      + 'the stalls this machine shows anyway.',
    unit: 'ms',
    better: 'lower',
    target: { value: STALL_TARGET_MS, label: `target < ${STALL_TARGET_MS} ms` },
  });
  for (const d of dirs) {
    for (const worker of [false, true]) {
      const x = await stalls(d.dir, { worker });
      const b = x.secs.indexOf(Math.min(...x.secs));
      const elapsed = x.secs.reduce((p, q) => p + q, 0) * 1000;
      const longest = Math.max(x.eldMax, x.gapMax, x.cold.max);
      stallChart.bar(d.name, worker ? 'ours, second writer on a worker thread' : 'ours, both writers on the main thread', longest);
      console.log(`| ${d.name} | ${worker ? 'worker thread' : 'main thread'} | ${ms(x.secs[b])} | ${x.writerSecs[b].map((q) => ms(q)).join(' / ')} | `
        + `${fmt(2 * BIG / MiB / x.secs[b], 0)} MiB/s | ${x.reads.join(', ')} | ${fmt(x.aloneRate, 0)}/s | ${fmt(x.eldMax, 1)} ms | ${fmt(x.eldP99, 1)} ms | `
        + `${fmt(x.gapMax, 1)} ms | ${fmt(x.gapP99, 1)} ms | ${x.ticks} / ${fmt(elapsed, 0)} | ${ms(x.cold.secs)}, ${fmt(x.cold.max, 1)} ms | `
        + `< ${STALL_TARGET_MS} ms | ${met(longest < STALL_TARGET_MS)} |`);
      global.gc?.();
    }
  }
  console.log('');
  console.log('Control (no HDF5 anywhere): a worker writes the same 1 GiB with `fs.writeSync` in 4 MiB pieces while the main thread runs a loop '
    + 'of small JS work and `setImmediate` turns (as busy as the reader), measured the same way — the stalls this 2-vCPU VM shows anyway '
    + 'while one thread writes large files and another is busy:\n');
  console.log('| where | rounds | longest stall | worst ELD p99 |');
  console.log('|---|---|---|---|');
  for (const d of dirs) {
    const c = await controlStalls(d.dir);
    stallChart.bar(d.name, 'control: fs.writeSync on a worker, no HDF5', c.max, { kind: 'plain' });
    console.log(`| ${d.name} | ${c.rounds} | ${fmt(c.max, 1)} ms | ${fmt(c.p99, 1)} ms |`);
  }
  console.log('');
}

module.exports = { frameSelector, permutation, chunksTouched };

if (isMainThread && require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
} else if (workerData?.role === 'writer') {
  writerWorker();
} else if (workerData?.role === 'fswriter') {
  fsWriterWorker();
}
