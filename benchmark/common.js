'use strict';
/** Shared benchmark helpers: timing, machine description, scratch directories, Debian's Python. */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PYTHON = process.env.CHECKPOINTER_BENCH_PYTHON ?? '/usr/bin/python3';
const MiB = 1024 * 1024;

/**
 * CHECKPOINTER_BENCH_SCALE=0.01 shrinks every data size (quick runs while developing the suites or
 * the charts; the figures of such a run mean nothing, and run.js keeps its charts out of docs/).
 */
const SCALE = Number(process.env.CHECKPOINTER_BENCH_SCALE ?? 1);
if (!(SCALE > 0)) throw new Error(`CHECKPOINTER_BENCH_SCALE must be a positive number, not ${process.env.CHECKPOINTER_BENCH_SCALE}`);
/** A size or count, scaled by CHECKPOINTER_BENCH_SCALE (whole, at least `min`). */
const scaled = (n, min = 1) => Math.max(min, Math.round(n * SCALE));

/** Runs `fn` `repeat` times (after one warm-up unless warm is false); returns the best seconds. */
async function best(fn, { repeat = 3, warm = true } = {}) {
  if (warm) await fn();
  let min = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t = process.hrtime.bigint();
    await fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return min;
}

/** Best seconds of each contender, measured in interleaved rounds (after one warm-up each) so drift on a shared machine hits all alike. */
async function interleaved(contenders, rounds) {
  const bestOf = Object.fromEntries(Object.keys(contenders).map((k) => [k, Infinity]));
  for (const fn of Object.values(contenders)) await fn();
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const t = process.hrtime.bigint();
      await fn();
      bestOf[name] = Math.min(bestOf[name], Number(process.hrtime.bigint() - t) / 1e9);
    }
  }
  return bestOf;
}

function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let fsType = '';
  try {
    fsType = execFileSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).split('\n')[1]?.split(/\s+/)[1] ?? '';
  } catch { /* df missing */ }
  // Which addon the figures are of: node-gyp-build prefers build/Release to the prebuild.
  const { hdf5Info } = require('..');
  const h5 = hdf5Info();
  const addon = h5.available
    ? `HDF5 ${h5.version} (${h5.build}, ${path.relative(path.join(__dirname, '..'), require('node-gyp-build').path(path.join(__dirname, '..')))})`
    : 'no HDF5 addon';
  return `${os.cpus().length}× ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, `
    + `Node ${process.version}, ${addon}, disk = ${os.tmpdir()} (${fsType}), tmpfs = /dev/shm`;
}

/** Scratch directories: tmpfs and the disk under os.tmpdir(). */
function scratchDirs() {
  const dirs = [];
  if (fs.existsSync('/dev/shm')) dirs.push({ name: 'tmpfs', dir: fs.mkdtempSync('/dev/shm/ckpt-bench-') });
  dirs.push({ name: 'disk', dir: fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-')) });
  process.on('exit', () => dirs.forEach((d) => fs.rmSync(d.dir, { recursive: true, force: true })));
  return dirs;
}

/** Runs Python code with args; returns parsed JSON from its stdout. */
function python(code, ...args) {
  return JSON.parse(execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB }));
}

function randomFloat64(count) {
  const a = new Float64Array(count);
  for (let i = 0; i < count; i++) a[i] = Math.random();
  return a;
}

/** Bytes this process has read through read(2)-like calls so far (`rchar` in /proc/self/io; every thread). */
function rchar() {
  return Number(/rchar:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))[1]);
}

const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** A plain write of `bytes` to a fresh `file`, fsync'd: what a durable write is compared with. */
function writeFileFsync(file, bytes) {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Measured figures for the charts (benchmark/charts.js draws them). run.js names a results file per
 * suite in CHECKPOINTER_BENCH_RESULTS; each call appends one JSON line to it. Without it (a suite run
 * on its own) nothing is recorded.
 *
 * `chart(id, { title, unit, better: 'higher' | 'lower', subtitle?, log?, target? })` declares a chart
 * (one SVG, docs/charts/<id>.svg) and returns `bar(group, label, value, { kind, note })`, which adds
 * one bar: `kind` is 'ours' (checkpointer), 'peer' (h5py, numpy, h5wasm) or 'plain' (fs calls on the
 * same bytes, no format). Groups and bars keep the order of the calls; a bar whose value is not a
 * finite number is drawn as "n/a".
 */
function chart(id, spec) {
  const record = (line) => {
    if (process.env.CHECKPOINTER_BENCH_RESULTS) fs.appendFileSync(process.env.CHECKPOINTER_BENCH_RESULTS, `${JSON.stringify(line)}\n`);
  };
  record({ type: 'chart', id, ...spec });
  return {
    bar(group, label, value, { kind = 'ours', note } = {}) {
      record({ type: 'bar', chart: id, group, label, value: Number.isFinite(value) ? value : null, kind, ...(note ? { note } : {}) });
    },
  };
}

module.exports = { PYTHON, MiB, SCALE, scaled, chart, best, interleaved, machine, scratchDirs, python, randomFloat64, rchar, fmt, writeFileFsync };
