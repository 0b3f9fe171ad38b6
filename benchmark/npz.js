'use strict';
/**
 * NumPy backend: one 256 MiB float64 [n, 5, 5] array written through `set` into a fresh .npz
 * (open, write, close) and read back with `get`, against fs.writeFileSync/readFileSync of the same
 * bytes in the same run, and numpy.savez / numpy.load on the same data; on tmpfs and on disk.
 * Also: the fsync cost (`durable: true`, the default, vs `durable: false`), event-loop stalls of the
 * async calls, and peak RSS of a `getSync` (one copy: the array itself).
 *
 * Run: `npm run build:ts && node benchmark/npz.js` (or `npm run bench npz`).
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { MiB, PYTHON, interleaved, scratchDirs, randomFloat64, fmt, machine, writeFileFsync, scaled, chart } = require('./common');

function load() {
  const dist = path.resolve(__dirname, '..', 'dist');
  const index = require(dist);
  if (index.NumPyCheckpointer) return { NumPyCheckpointer: index.NumPyCheckpointer, ndarray: index.ndarray };
  return { NumPyCheckpointer: require(path.join(dist, 'backends', 'numpy.js')).NumPyCheckpointer, ndarray: index.ndarray };
}
const { NumPyCheckpointer, ndarray } = load();

const ROWS = Math.floor(scaled(256 * MiB) / (25 * 8));
const BYTES = ROWS * 25 * 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

function numpy(dir, raw) {
  const code = `
import numpy as np, sys, time, json, os
a = np.fromfile(sys.argv[1], dtype='<f8').reshape(-1, 5, 5)
out = os.path.join(sys.argv[2], 'numpy.npz')
w = r = 1e9
for i in range(4):
    if os.path.exists(out): os.remove(out)
    t = time.perf_counter()
    np.savez(out, x=a)
    w = min(w, time.perf_counter() - t)
    t = time.perf_counter()
    with np.load(out, allow_pickle=False) as f:
        b = f['x']
    r = min(r, time.perf_counter() - t)
os.remove(out)
print(json.dumps({'write': w, 'read': r, 'version': np.__version__}))`;
  return JSON.parse(execFileSync(PYTHON, ['-c', code, raw, dir], { encoding: 'utf8' }));
}

async function throughput(dir, data, arr) {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const plainFile = path.join(dir, 'plain.bin');
  const npz = path.join(dir, 'ours.npz');
  const fresh = (file) => fs.rmSync(file, { force: true });
  const fast = { durable: false };
  // Every writer removes its previous file first (inside the timing), so all write fresh files.
  const writes = await interleaved({
    plainWrite: async () => { fresh(plainFile); fs.writeFileSync(plainFile, bytes); },
    plainWriteAsync: async () => { fresh(plainFile); await fs.promises.writeFile(plainFile, bytes); },
    plainWriteFsync: async () => { fresh(plainFile); writeFileFsync(plainFile, bytes); },
    oursWrite: async () => { fresh(npz); await new NumPyCheckpointer(npz, fast).with((c) => c.set('x', arr)); },
    oursWriteSync: async () => { fresh(npz); new NumPyCheckpointer(npz, fast).setSync('x', arr); },
    oursWriteDurable: async () => { fresh(npz); await new NumPyCheckpointer(npz).with((c) => c.set('x', arr)); },
  }, ROUNDS);
  fs.writeFileSync(plainFile, bytes);
  new NumPyCheckpointer(npz, fast).setSync('x', arr);
  const reads = await interleaved({
    plainRead: async () => fs.readFileSync(plainFile),
    plainReadAsync: () => fs.promises.readFile(plainFile),
    oursRead: () => new NumPyCheckpointer(npz).get('x'),
    oursReadSync: async () => new NumPyCheckpointer(npz).getSync('x'),
  }, ROUNDS);
  const check = new NumPyCheckpointer(npz).getSync('x');
  if (!Buffer.from(check.data.buffer, check.data.byteOffset, check.data.byteLength).equals(bytes)) throw new Error('read back differs');
  const np = numpy(dir, plainFile);
  return { ...writes, ...reads, npWrite: np.write, npRead: np.read, npVersion: np.version, npz };
}

async function eventLoopStall(dir, arr) {
  const file = path.join(dir, 'stall.npz');
  fs.rmSync(file, { force: true });
  const measure = async (fn) => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const t = process.hrtime.bigint();
    await fn();
    const secs = Number(process.hrtime.bigint() - t) / 1e9;
    h.disable();
    return { maxMs: h.max / 1e6, secs };
  };
  const chk = new NumPyCheckpointer(file, { durable: false });
  const write = await measure(() => chk.with((c) => c.set('x', arr)));
  const read = await measure(() => chk.get('x'));
  fs.rmSync(file, { force: true });
  return { write, read };
}

/**
 * Peak RSS of a fresh process that opens the .npz and reads the array with getSync. VmHWM, not
 * getrusage's maxRSS: on Linux a forked child's maxRSS starts at its parent's RSS.
 */
function peakRssRead(file) {
  const script = `
const { NumPyCheckpointer } = require(${JSON.stringify(require.resolve(path.resolve(__dirname, '..', 'dist')))});
const hwm = () => Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const base = process.memoryUsage().rss;
const a = new NumPyCheckpointer(${JSON.stringify(file)}).getSync('x');
const peak = hwm();
console.log(JSON.stringify({ base, peak, bytes: a.data.byteLength }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

async function main() {
  const data = randomFloat64(ROWS * 25);
  const arr = ndarray(data, [ROWS, 5, 5]);
  // benchmark/run.js prints the machine once for all suites (and runs us with --expose-gc).
  if (!process.execArgv.includes('--expose-gc')) console.log(`Machine: ${machine()}\n`);
  console.log(`## NumPy (.npz): one ${fmt(BYTES / MiB, 0)} MiB float64 [${ROWS}, 5, 5] array\n`);
  console.log(`Best of ${ROUNDS} interleaved rounds after a warm-up (numpy: best of 4); removing the previous file is inside the timing for every writer. `
    + 'Ratios are speed relative to the plain `fs.writeFileSync` / `fs.readFileSync` of the same bytes in the same run (1.00x = as fast). '
    + '"ours" writes with `durable: false` unless marked; `durable: true` (the default) adds fsync of the file and its directory — compare it with the plain write + fsync column.\n');
  console.log('| where | fs.writeFileSync | fs.promises.writeFile | ours `set` (async) | ours `setSync` | numpy.savez | fs write + fsync | ours `set`, durable | fs.readFileSync | fs.promises.readFile | ours `get` (async) | ours `getSync` | numpy.load |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  let npz;
  let npVersion = '';
  let dirForRest;
  const speeds = chart('npz-throughput', {
    title: `NumPy .npz: write and read one ${fmt(BYTES / MiB, 0)} MiB float64 [${ROWS}, 5, 5] array`,
    subtitle: `Best of ${ROUNDS} interleaved rounds (numpy: best of 4). "ours" writes with durable: false except in the durable groups, `
      + 'which compare durable: true (the default: fsync) with a plain write + fsync. Ratios: against the group\'s first plain fs call.',
    unit: 'MiB/s',
    better: 'higher',
  });
  for (const { name, dir } of scratchDirs()) {
    const r = await throughput(dir, data, arr);
    const bar = (group, label, secs, kind) => speeds.bar(`${group}, ${name}`, label, BYTES / MiB / secs, { kind });
    bar('write', 'fs.writeFileSync', r.plainWrite, 'plain');
    bar('write', 'fs.promises.writeFile', r.plainWriteAsync, 'plain');
    bar('write', 'ours set (async)', r.oursWrite, 'ours');
    bar('write', 'ours setSync', r.oursWriteSync, 'ours');
    bar('write', 'numpy.savez', r.npWrite, 'peer');
    bar('durable write', 'fs write + fsync', r.plainWriteFsync, 'plain');
    bar('durable write', 'ours set, durable', r.oursWriteDurable, 'ours');
    bar('read', 'fs.readFileSync', r.plainRead, 'plain');
    bar('read', 'fs.promises.readFile', r.plainReadAsync, 'plain');
    bar('read', 'ours get (async)', r.oursRead, 'ours');
    bar('read', 'ours getSync', r.oursReadSync, 'ours');
    bar('read', 'numpy.load', r.npRead, 'peer');
    npVersion = r.npVersion;
    if (!npz) { npz = r.npz; dirForRest = dir; }
    const mbs = (s) => `${fmt(BYTES / MiB / s, 0)} MiB/s`;
    const rel = (s, base) => `${mbs(s)} (${fmt(base / s)}x)`;
    console.log(`| ${name} | ${mbs(r.plainWrite)} | ${rel(r.plainWriteAsync, r.plainWrite)} | ${rel(r.oursWrite, r.plainWrite)} | ${rel(r.oursWriteSync, r.plainWrite)} | `
      + `${rel(r.npWrite, r.plainWrite)} | ${mbs(r.plainWriteFsync)} | ${rel(r.oursWriteDurable, r.plainWriteFsync)} of the fsync'd write | `
      + `${mbs(r.plainRead)} | ${rel(r.plainReadAsync, r.plainRead)} | ${rel(r.oursRead, r.plainRead)} | ${rel(r.oursReadSync, r.plainRead)} | ${rel(r.npRead, r.plainRead)} |`);
  }
  console.log(`\nnumpy ${npVersion} (Debian's /usr/bin/python3). The .npz is byte-identical to what numpy.savez writes for the same array.`);
  const stall = await eventLoopStall(dirForRest, arr);
  console.log(`Event loop during one async \`set\`+close (${fmt(stall.write.secs)} s): longest stall ${fmt(stall.write.maxMs, 1)} ms; `
    + `during one async \`get\` (${fmt(stall.read.secs)} s): ${fmt(stall.read.maxMs, 1)} ms (CRC-32 runs on the main thread in 8 MiB chunks while the pool moves the next chunk).`);
  const rss = peakRssRead(npz);
  const over = (rss.peak - rss.base) / MiB;
  console.log(`Peak RSS of a fresh process reading the ${fmt(rss.bytes / MiB, 0)} MiB member with \`getSync\`: ${fmt(over, 0)} MiB over its baseline `
    + `(${fmt((over * MiB) / rss.bytes * 100, 0)}% of the array's size: the file's bytes are read straight into the returned array).\n`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
