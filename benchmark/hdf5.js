'use strict';
/**
 * HDF5 backend (issue 3 §5): one 256 MiB float64 [n, 5, 5] array written through `set` into a fresh
 * file (open, write, close) and read back, against fs.writeFileSync/readFileSync of the same bytes,
 * h5py `create_dataset(chunks=True, maxshape=(None, 5, 5))` and h5wasm, on tmpfs and on disk;
 * event-loop stalls during an async write; peak RSS writing 1 GiB. "ours" commits with
 * `durable: false` (no fsync, as the plain write); `durable: true`, the default, is measured beside
 * a plain write + fsync. Also: what a commit costs when one small key of a 1 GiB file changes
 * (the shadow copy of the file), against `inPlace: true` and a plain copy of the file.
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { HDF5Checkpointer, ndarray } = require('..');
const { MiB, PYTHON, best, interleaved, scratchDirs, randomFloat64, fmt, writeFileFsync, scaled, chart } = require('./common');

const FAST = { durable: false };
const ROWS = Math.floor(scaled(256 * MiB) / (25 * 8));
const BYTES = ROWS * 25 * 8;

async function h5wasmWrite(file, data) {
  const h5wasm = await import('h5wasm/node');
  await h5wasm.ready;
  return best(() => {
    fs.rmSync(file, { force: true });
    const f = new h5wasm.File(file, 'w');
    f.create_dataset({ name: 'x', data, shape: [ROWS, 5, 5], dtype: '<f8', maxshape: [null, 5, 5], chunks: [Math.ceil(ROWS / 64), 5, 5] });
    f.close();
  }, { repeat: 2 });
}

function h5pyWrite(dir, raw) {
  const code = `
import h5py, numpy as np, sys, time, json, os
a = np.fromfile(sys.argv[1], dtype='<f8').reshape(-1, 5, 5)
best = 1e9
for i in range(3):
    out = os.path.join(sys.argv[2], 'h5py.h5')
    if os.path.exists(out): os.remove(out)
    t = time.perf_counter()
    with h5py.File(out, 'w') as f:
        f.create_dataset('x', data=a, chunks=True, maxshape=(None, 5, 5))
    best = min(best, time.perf_counter() - t)
print(json.dumps(best))`;
  return JSON.parse(execFileSync(PYTHON, ['-c', code, raw, dir], { encoding: 'utf8' }));
}

async function throughput(dir, data, arr) {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const plainFile = path.join(dir, 'plain.bin');
  const h5file = path.join(dir, 'ours.h5');
  // Every writer removes its previous file first (inside the timing), so all write fresh files.
  const fresh = (file) => fs.rmSync(file, { force: true });
  const writes = await interleaved({
    plainWrite: async () => { fresh(plainFile); fs.writeFileSync(plainFile, bytes); },
    oursWrite: async () => { fresh(h5file); await new HDF5Checkpointer(h5file, FAST).with((c) => c.set('x', arr)); },
    oursWriteSync: async () => { fresh(h5file); new HDF5Checkpointer(h5file, FAST).setSync('x', arr); },
    plainWriteFsync: async () => { fresh(plainFile); writeFileFsync(plainFile, bytes); },
    oursWriteDurable: async () => { fresh(h5file); await new HDF5Checkpointer(h5file).with((c) => c.set('x', arr)); },
  }, 5);
  const reads = await interleaved({
    plainRead: async () => fs.readFileSync(plainFile),
    oursRead: () => new HDF5Checkpointer(h5file).get('x'),
  }, 5);
  const h5py = h5pyWrite(dir, plainFile);
  let wasm = NaN;
  try {
    wasm = await h5wasmWrite(path.join(dir, 'wasm.h5'), data);
  } catch (err) {
    console.error(`h5wasm failed: ${err.message}`);
  }
  return { ...writes, ...reads, h5py, wasm };
}

/**
 * One small key of a 1 GiB file changes: the default commit copies the file into its shadow (a
 * reflink where the filesystem has one; ext4 and tmpfs have none), `inPlace: true` writes the file.
 */
async function commitCost(data) {
  const GiBRows = Math.floor(scaled(1024 * MiB) / 200);
  const big = new Float64Array(GiBRows * 25);
  for (let off = 0; off < big.length; off += data.length) big.set(data.subarray(0, Math.min(data.length, big.length - off)), off);
  const bigArr = ndarray(big, [GiBRows, 5, 5]);
  console.log('\n### Changing one small key of a 1 GiB file\n');
  console.log('The file holds a 1 GiB array and a scalar; each round opens it, sets the scalar, closes (= commits). Best of 3 interleaved rounds. "plain copy" is `fs.copyFileSync` of the file (what the shadow costs at least).\n');
  console.log('| where | plain copy | default (shadow), durable: false | default, durable (fsync) | inPlace: true |');
  console.log('|---|---|---|---|---|');
  const commits = chart('hdf5-commit', {
    title: `HDF5: changing one small key of a ${fmt(GiBRows * 200 / MiB, 0)} MiB file (open, set a scalar, close = commit)`,
    subtitle: 'Best of 3 interleaved rounds. The default commit copies the file into its shadow (no reflink on ext4 or tmpfs); '
      + '"plain copy" is fs.copyFileSync of the file, what the shadow costs at least.',
    unit: 'ms',
    better: 'lower',
  });
  for (const { name, dir } of scratchDirs()) {
    const file = path.join(dir, 'onekey.h5');
    const copy = path.join(dir, 'onekey-copy.h5');
    fs.rmSync(file, { force: true });
    new HDF5Checkpointer(file, FAST).withSync((c) => { c.setSync('big', bigArr); c.setSync('step', 0); });
    let step = 0;
    const r = await interleaved({
      copy: async () => { fs.rmSync(copy, { force: true }); fs.copyFileSync(file, copy); },
      shadow: async () => { await new HDF5Checkpointer(file, FAST).with((c) => c.set('step', ++step)); },
      durable: async () => { await new HDF5Checkpointer(file).with((c) => c.set('step', ++step)); },
      inPlace: async () => { await new HDF5Checkpointer(file, { inPlace: true, durable: false }).with((c) => c.set('step', ++step)); },
    }, 3);
    const ms = (s) => `${fmt(s * 1000, 1)} ms`;
    console.log(`| ${name} | ${ms(r.copy)} | ${ms(r.shadow)} | ${ms(r.durable)} | ${ms(r.inPlace)} |`);
    commits.bar(name, 'plain copy of the file', r.copy * 1000, { kind: 'plain' });
    commits.bar(name, 'default (shadow), durable: false', r.shadow * 1000);
    commits.bar(name, 'default, durable (fsync)', r.durable * 1000);
    commits.bar(name, 'inPlace: true', r.inPlace * 1000);
    fs.rmSync(file, { force: true });
    fs.rmSync(copy, { force: true });
  }
}

async function eventLoopStall(dir, arr) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const file = path.join(dir, 'stall.h5');
  fs.rmSync(file, { force: true });
  const chk = new HDF5Checkpointer(file);
  await chk.open();
  h.enable();
  const t = process.hrtime.bigint();
  await chk.set('x', arr);
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  h.disable();
  await chk.close();
  return { maxMs: h.max / 1e6, secs };
}

function peakRss(dir) {
  const script = `
const { HDF5Checkpointer, ndarray } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
const base = process.memoryUsage().rss;
const a = new Float64Array(${Math.floor(scaled(1024 * MiB) / 200) * 25});
for (let i = 0; i < a.length; i += 512) a[i] = i;
new HDF5Checkpointer(${JSON.stringify(path.join(dir, 'big.h5'))}).setSync('x', ndarray(a, [a.length / 25, 5, 5]));
// VmHWM, not resourceUsage().maxRSS: on Linux a spawned child's maxRSS starts at the parent's peak.
const peak = Number(/VmHWM:\\s+(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
console.log(JSON.stringify({ base, peak }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  fs.rmSync(path.join(dir, 'big.h5'), { force: true });
  return JSON.parse(r.stdout);
}

async function main() {
  const data = randomFloat64(ROWS * 25);
  const arr = ndarray(data, [ROWS, 5, 5]);
  console.log(`## HDF5: one ${fmt(BYTES / MiB, 0)} MiB float64 [${ROWS}, 5, 5] array\n`);
  console.log('Best of 5 interleaved rounds after a warm-up (h5py: best of 3, h5wasm: best of 2); the removal of the previous file is inside the timing for every writer; ratios are against the plain write/read of the same bytes in the same run.\n');
  console.log('| where | fs.writeFileSync | ours `set` (async) | ours `setSync` | h5py chunks=True | h5wasm | fs write + fsync | ours `set`, durable | fs.readFileSync | ours `get` |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  const speeds = chart('hdf5-throughput', {
    title: `HDF5: write and read one ${fmt(BYTES / MiB, 0)} MiB float64 [${ROWS}, 5, 5] array`,
    subtitle: 'Best of 5 interleaved rounds (h5py: best of 3, h5wasm: best of 2), each writing a fresh file. "ours" commits with '
      + 'durable: false except in the durable groups, which compare durable: true (the default: fsync) with a plain write + fsync. '
      + 'Ratios: against the group\'s plain fs call.',
    unit: 'MiB/s',
    better: 'higher',
  });
  for (const { name, dir } of scratchDirs()) {
    const r = await throughput(dir, data, arr);
    const bar = (group, label, secs, kind = 'ours') => speeds.bar(`${group}, ${name}`, label, BYTES / MiB / secs, { kind });
    bar('write', 'fs.writeFileSync', r.plainWrite, 'plain');
    bar('write', 'ours set (async)', r.oursWrite);
    bar('write', 'ours setSync', r.oursWriteSync);
    bar('write', 'h5py chunks=True', r.h5py, 'peer');
    bar('write', 'h5wasm', r.wasm, 'peer');
    bar('durable write', 'fs write + fsync', r.plainWriteFsync, 'plain');
    bar('durable write', 'ours set, durable', r.oursWriteDurable);
    bar('read', 'fs.readFileSync', r.plainRead, 'plain');
    bar('read', 'ours get', r.oursRead);
    const mbs = (s) => `${fmt(BYTES / MiB / s, 0)} MiB/s`;
    const rel = (s, base) => `${mbs(s)} (${fmt(base / s)}x)`;
    console.log(`| ${name} | ${mbs(r.plainWrite)} | ${rel(r.oursWrite, r.plainWrite)} | ${rel(r.oursWriteSync, r.plainWrite)} | `
      + `${rel(r.h5py, r.plainWrite)} | ${rel(r.wasm, r.plainWrite)} | ${mbs(r.plainWriteFsync)} | ${rel(r.oursWriteDurable, r.plainWriteFsync)} of the fsync'd write | `
      + `${mbs(r.plainRead)} | ${rel(r.oursRead, r.plainRead)} |`);
  }
  await commitCost(data);
  const [{ dir }] = scratchDirs();
  const stall = await eventLoopStall(dir, arr);
  console.log(`\nEvent loop during one async 256 MiB \`set\` (${fmt(stall.secs)} s): longest stall ${fmt(stall.maxMs, 1)} ms (monitorEventLoopDelay, 1 ms resolution).`);
  const rss = peakRss(dir);
  const over = (rss.peak - rss.base) / MiB;
  console.log(`Peak RSS writing a 1 GiB array with \`setSync\`: ${fmt(over, 0)} MiB over the baseline (${fmt(over / 1024 * 100, 1)}% of the array's size; the array itself is 100%).\n`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
