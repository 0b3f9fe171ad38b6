/**
 * The package as a user gets it: `npm pack`, `npm install <tarball>` into a fresh project, and the
 * committed prebuild (PREBUILDS_ONLY=1: never a build/ directory) loading and round-tripping HDF5
 * data where the system has no HDF5, szip or zlib — in a private mount namespace with
 * /dev/null bind-mounted over every libhdf5*, libsz, libaec and libz (test/helpers/hidden-libs.ts).
 * A probe in the same namespace shows those libraries cannot load, so the test cannot pass
 * because nothing was hidden. Under this Node, Node 22 and Node 24 (the npm `node` package).
 *
 * Skipped (with the reason) where mount namespaces cannot be made: not Linux, not root, no
 * `unshare`. The tarball is installed once and every case runs in that project.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';
import { findHiddenLibraries, HiddenLibraries, namespaceUnavailable, runHidden } from './helpers/hidden-libs';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
/** Where the package's prebuilds for this machine are (whatever node-gyp-build tags they carry). */
const PREBUILD_DIR = `prebuilds/${process.platform}-${process.arch}`;
const skip = namespaceUnavailable() ?? false;

/** The environment of everything spawned here: none of `npm test`'s npm_* variables, no test-runner
 * or loader settings that could change what loads, and no way around the prebuild. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^(NODE_OPTIONS|NODE_TEST_CONTEXT|NODE_PATH|LD_LIBRARY_PATH|LD_PRELOAD|PREBUILDS_ONLY)$/.test(k)) continue;
    if (/^CHECKPOINTER_/.test(k) || /_PREBUILD$/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * Tries to dlopen each name given (a soname, searched for as the loader does for an addon's
 * NEEDED entries); prints {name: {loads, message}}. A library that loads is not an addon, so Node
 * says "did not self-register": that is "loads".
 */
const PROBE = `
const out = {};
for (const name of process.argv.slice(1)) {
  try {
    process.dlopen({ exports: {} }, name);
    out[name] = { loads: true, message: 'loaded' };
  } catch (e) {
    const message = String(e && e.message).split('\\n')[0];
    out[name] = { loads: /did not self-register/.test(message), message };
  }
}
process.stdout.write(JSON.stringify(out));`;

/** What runs in the consumer project: loads the package both ways, writes, reads, prints JSON. */
const CONSUMER = `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const [outFile, fixture, sonames] = [process.argv[2], process.argv[3], JSON.parse(process.argv[4])];
const HIDDEN = /\\/(libhdf5[^/]*|libsz|libaec|libz)\\.so/;

function mapped() {
  const files = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.trim().split(/\\s+/)[5]);
  return [...new Set(files.filter((f) => f && f.startsWith('/')))];
}

let NDArray;
function enc(v) {
  if (typeof v === 'bigint') return { bigint: v.toString() };
  if (typeof v === 'number' && !Number.isFinite(v)) return { number: String(v) };
  if (v instanceof NDArray) {
    return { dtype: v.dtype, shape: [...v.shape], data: Array.from(v.data, (x) => (typeof x === 'bigint' ? x.toString() : x)) };
  }
  if (Array.isArray(v)) return v.map(enc);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, enc(x)]));
  return v;
}

async function main() {
  const result = { node: process.version };
  // In a child: a library that does load must not end up in this process.
  const probe = spawnSync(process.execPath, ['-e', ${JSON.stringify(PROBE)}, ...sonames], { encoding: 'utf8' });
  result.probe = probe.status === 0 ? JSON.parse(probe.stdout) : { error: probe.stderr };

  const cjs = require('checkpointer');
  const esm = await import('checkpointer');
  result.entry = { require: require.resolve('checkpointer'), sameClass: esm.Checkpointer === cjs.Checkpointer, sameDefault: esm.default === cjs };
  // The binary node-gyp-build picks for the installed package (PREBUILDS_ONLY=1: a prebuild).
  const pkgDir = path.dirname(require.resolve('checkpointer/package.json'));
  try {
    result.picked = require(require.resolve('node-gyp-build', { paths: [pkgDir] })).path(pkgDir);
  } catch (e) {
    result.picked = { error: String(e && e.message) };
  }
  NDArray = cjs.NDArray;
  const { Checkpointer, ndarray } = cjs;
  try {
    // Write: a gzip+shuffle dataset by appends (async, through the addon's HDF5 thread), plain values.
    const N = 150;
    const frame = (i) => Float64Array.from({ length: 12 }, (_, j) => Math.round(1000 * Math.sin(i / 10 + j)) / 8);
    const frames = new Float64Array(N * 12);
    for (let i = 0; i < N; i++) frames.set(frame(i), i * 12);
    const written = {
      answer: 42,
      big: -(2n ** 62n) - 3n,
      params: { name: 'héllo ✓', steps: N, rate: 0.125, ok: true, none: null, tags: ['a', 'b'] },
      matrix: ndarray(Int32Array.from({ length: 12 }, (_, i) => i * i - 20), [3, 4]),
    };
    const chk = Checkpointer.fromFile(outFile);
    const ds = await chk.dataset('frames', { dtype: 'float64', shape: [0, 3, 4], compression: 'gzip', shuffle: true });
    for (let i = 0; i < N; i++) await ds.append(i % 2 ? frame(i) : ndarray(frame(i), [3, 4]));
    await ds.close();
    for (const [k, v] of Object.entries(written)) await chk.set(k, v);
    chk.setSync('list', [1, 'two', 3.5]);

    // Read back with a fresh checkpointer (async and sync calls).
    const back = Checkpointer.fromFile(outFile);
    const values = await back.with(async (c) => {
      const out = {};
      for (const k of await c.keys()) out[k] = enc(await c.get(k));
      return out;
    });
    const again = back.datasetSync('frames');
    const sliceExpected = [];
    for (let i = 10; i < 40; i += 7) sliceExpected.push(...frame(i).subarray(4, 8));
    result.roundtrip = {
      cls: back.constructor.name,
      values,
      expected: enc({ ...written, list: [1, 'two', 3.5], frames: ndarray(frames, [N, 3, 4]) }),
      dataset: { shape: [...again.shape], dtype: again.dtype, compression: again.compression, shuffle: again.shuffle },
      slice: enc(again.readSync([[10, 40, 7], 1])),
      sliceExpected: enc(ndarray(Float64Array.from(sliceExpected), [5, 4])),
    };
    again.closeSync();

    // A file h5py wrote.
    const theirs = Checkpointer.fromFile(fixture);
    const h5 = await theirs.with(async (c) => {
      const out = { keys: [...(await c.keys())].sort() };
      for (const k of out.keys) out[k] = enc(await c.get(k));
      return out;
    });
    const gz = await theirs.dataset('gz');
    h5.gzInfo = { compression: gz.compression, level: gz.compressionLevel, shuffle: gz.shuffle, chunks: gz.chunks && [...gz.chunks] };
    h5.gzSlice = enc(await gz.read([[-3, null], [1, 5, 2]]));
    await gz.close();
    result.h5py = h5;
    if (typeof cjs.hdf5Info === 'function') {
      const info = cjs.hdf5Info();
      result.info = { available: info.available, version: info.version, gzip: { ...info.filters.gzip }, shuffle: { ...info.filters.shuffle } };
    }
  } catch (e) {
    result.error = { code: e && e.code, message: String(e && e.message) };
  }
  const libs = mapped();
  result.addons = libs.filter((f) => f.endsWith('.node'));
  result.hiddenMapped = libs.filter((f) => HIDDEN.test(f));
  return result;
}
main().then((r) => process.stdout.write(JSON.stringify(r)), (e) => { console.error(e); process.exit(1); });
`;

/** What the h5py-written fixture holds, as the consumer's enc() prints it. */
const arange = (n: number, from = 0, step = 1): number[] => Array.from({ length: n }, (_, i) => from + i * step);
const FIXTURE_EXPECTED = {
  keys: ['group', 'gz', 'n', 'strs', 'title', 'vstrs'],
  group: {
    i32: { dtype: 'int32', shape: [3, 4], data: arange(12, -6) },
    inner: { i64: { bigint: String(-(2n ** 62n) - 3n) }, label: 'Grüße' },
  },
  gz: { dtype: 'float64', shape: [40, 6], data: arange(240, 0, 0.25) },
  n: 7,
  strs: ['ab', 'cde'],
  title: 'written by h5py',
  vstrs: ['héllo', 'x', '✓'],
  gzInfo: { compression: 'gzip', level: 6, shuffle: true, chunks: [8, 6] },
  gzSlice: { dtype: 'float64', shape: [3, 2], data: [37, 38, 39].flatMap((r) => [1, 3].map((c) => 0.25 * (r * 6 + c))) },
};

interface Probe {
  [soname: string]: { loads: boolean; message: string };
}

interface ConsumerResult {
  node: string;
  probe: Probe | { error: string };
  entry: { require: string; sameClass: boolean; sameDefault: boolean };
  picked: string | { error: string };
  info?: { available: boolean; version: string | null; gzip: unknown; shuffle: unknown };
  error?: { code?: string; message: string };
  roundtrip?: {
    cls: string;
    values: Record<string, unknown>;
    expected: Record<string, unknown>;
    dataset: { shape: number[]; dtype: string; compression: string | null; shuffle: boolean };
    slice: unknown;
    sliceExpected: unknown;
  };
  h5py?: Record<string, unknown>;
  addons: string[];
  hiddenMapped: string[];
}

describe('installed from the packed tarball, on a system without HDF5, szip or zlib', { skip }, () => {
  let work: string;
  let project: string;
  let tarball: string;
  let packedFiles: string[];
  let hidden: HiddenLibraries;
  let probeSonames: string[];
  const runtimes = new Map<string, string | Error>();
  const outputs: { label: string; file: string; result: ConsumerResult }[] = [];
  const timings: string[] = [];

  before(async () => {
    const t0 = Date.now();
    work = tempDir('checkpointer-install-');
    project = path.join(work, 'consumer');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'checkpointer-consumer' }, null, 2) + '\n');
    hidden = findHiddenLibraries();
    probeSonames = hidden.sonames.filter((n) => /\.so\.\d/.test(n));

    // The package as published: `npm pack` of the repo. Its scripts (prepare = build:ts) are not
    // run: `npm test`'s pretest has just built dist/ from the same sources.
    const packing = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 })
      .then(async ({ stdout }) => {
        const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
        tarball = path.join(work, info!.filename);
        packedFiles = info!.files.map((f) => f.path);
        timings.push(`pack ${Date.now() - t0} ms`);
        await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 });
        timings.push(`pack+install ${Date.now() - t0} ms`);
      });
    // Node 22 and 24 from the npm `node` package (run from `work`, away from any package.json).
    const resolving = ['22', '24'].map((major) =>
      run('npx', ['-y', `node@${major}`, '-p', 'process.execPath'], { cwd: work, env: cleanEnv(), timeout: 120_000 })
        .then(({ stdout }) => runtimes.set(major, stdout.trim()), (err: Error) => runtimes.set(major, err)),
    );
    // The file h5py writes, before any namespace: groups, a gzip dataset, strings, ints.
    const pending = [packing, ...resolving];
    try {
      h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    g = f.create_group('group')
    g['i32'] = np.arange(-6, 6, dtype='<i4').reshape(3, 4)
    inner = g.create_group('inner')
    inner['i64'] = np.int64(-2**62 - 3)
    inner['label'] = 'Grüße'
    f.create_dataset('gz', data=np.arange(240, dtype='<f8').reshape(40, 6) * 0.25, chunks=(8, 6), compression='gzip', compression_opts=6, shuffle=True)
    f['strs'] = np.array([b'ab', b'cde'], dtype='S3')
    f['vstrs'] = np.array(['héllo', 'x', '✓'], dtype=h5py.string_dtype())
    f['title'] = 'written by h5py'
    f['n'] = np.int64(7)
`, path.join(work, 'h5py.h5'));
    } catch (err) {
      await Promise.allSettled(pending);
      throw err;
    }
    fs.writeFileSync(path.join(project, 'consumer.cjs'), CONSUMER);
    await Promise.all(pending);
    timings.push(`ready ${Date.now() - t0} ms`);
  }, { timeout: 150_000 });

  after(() => {
    if (timings.length) console.log(`# install.test timings: ${timings.join(', ')}`);
  });

  /** Runs the consumer under `node` in the namespace; returns its parsed output. */
  function consume(label: string, node: string): ConsumerResult {
    const tag = label.replace(/\W+/g, '-');
    const out = path.join(work, `ours-${tag}.h5`);
    const fixture = path.join(work, `h5py-${tag}.h5`);
    fs.copyFileSync(path.join(work, 'h5py.h5'), fixture);
    const t = Date.now();
    const r = runHidden(hidden.files, node, [path.join(project, 'consumer.cjs'), out, fixture, JSON.stringify(probeSonames)], {
      cwd: project,
      env: cleanEnv({ PREBUILDS_ONLY: '1' }),
    });
    timings.push(`${label} ${Date.now() - t} ms`);
    assert.equal(r.status, 0, `the consumer failed under ${label} (signal ${r.signal}):\n${r.stderr}\n${r.stdout}`);
    const result = JSON.parse(r.stdout) as ConsumerResult;
    outputs.push({ label, file: out, result });
    return result;
  }

  function check(result: ConsumerResult, major: string | null): void {
    if (major) assert.match(result.node, new RegExp(`^v${major}\\.`));
    // The hiding took: not one of the hidden libraries loads in the namespace.
    assert.ok(!('error' in result.probe), `the probe failed: ${String((result.probe as { error: string }).error)}`);
    const probe = result.probe as Probe;
    assert.deepEqual(Object.keys(probe).sort(), probeSonames);
    for (const [name, p] of Object.entries(probe)) assert.equal(p.loads, false, `${name} still loads in the namespace: ${p.message}`);
    // The installed package, both entry points, one instance.
    const pkg = fs.realpathSync(path.join(project, 'node_modules', 'checkpointer'));
    assert.equal(result.entry.require, path.join(pkg, 'dist', 'index.js'));
    assert.ok(result.entry.sameClass && result.entry.sameDefault, 'import and require give different instances');
    assert.equal(result.error, undefined, `HDF5 does not work where the system has no HDF5/zlib: ${result.error?.code}: ${result.error?.message}`);
    // A prebuild is what node-gyp-build picked and what loaded; nothing of the system's
    // HDF5/szip/zlib is mapped.
    assert.equal(typeof result.picked, 'string', `node-gyp-build found no prebuild: ${JSON.stringify(result.picked)}`);
    assert.equal(path.dirname(result.picked as string), path.join(pkg, PREBUILD_DIR));
    assert.deepEqual(result.addons, [result.picked]);
    assert.deepEqual(result.hiddenMapped, []);
    // Our round trip.
    const rt = result.roundtrip!;
    assert.equal(rt.cls, 'HDF5Checkpointer');
    assert.deepEqual(rt.values, rt.expected);
    assert.deepEqual(rt.dataset, { shape: [150, 3, 4], dtype: 'float64', compression: 'gzip', shuffle: true });
    assert.deepEqual(rt.slice, rt.sliceExpected);
    // h5py's file.
    assert.deepEqual(result.h5py, FIXTURE_EXPECTED);
    // What the addon says of itself (hdf5Info(), where the package has it).
    if (result.info) {
      assert.equal(result.info.available, true);
      assert.deepEqual([result.info.gzip, result.info.shuffle], [{ read: true, write: true }, { read: true, write: true }]);
    }
  }

  it('the tarball holds the built JS, the ESM wrapper and the prebuild, and no build/', () => {
    for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'package.json']) {
      assert.ok(packedFiles.includes(f), `${f} is not in ${path.basename(tarball)}`);
    }
    assert.ok(packedFiles.some((f) => path.dirname(f) === PREBUILD_DIR && f.endsWith('.node')), `no ${PREBUILD_DIR}/*.node in ${path.basename(tarball)}`);
    assert.deepEqual(packedFiles.filter((f) => f.startsWith('build/')), []);
    const installed = path.join(project, 'node_modules', 'checkpointer');
    assert.ok(!fs.lstatSync(installed).isSymbolicLink(), 'checkpointer was linked, not installed from the tarball');
    // Nothing was compiled at install: the prebuild did for this machine.
    assert.ok(!fs.existsSync(path.join(installed, 'build', 'Release')), 'npm install built the addon from source');
  });

  it('the prebuild needs nothing beyond libc, libm, libgcc_s and libstdc++', (t) => {
    const dir = path.join(project, 'node_modules', 'checkpointer', PREBUILD_DIR);
    const prebuilds = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
    assert.notDeepEqual(prebuilds, []);
    // glibc's own pieces (libpthread, libdl, librt, the loader) count as libc.
    const allowed = /^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libstdc\+\+\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-x86-64\.so\.2)$/;
    for (const f of prebuilds) {
      const r = spawnSync('readelf', ['-d', path.join(dir, f)], { encoding: 'utf8' });
      if (r.error) return t.skip(`readelf (binutils) is not installed: ${r.error.message}`);
      assert.equal(r.status, 0, r.stderr);
      const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
      assert.deepEqual(needed.filter((n) => !allowed.test(n)), [], `${PREBUILD_DIR}/${f} needs ${needed.join(', ')}`);
    }
  });

  it('the libraries hidden in the namespace load outside it (the hiding is what stops them)', () => {
    assert.ok(hidden.files.some((f) => /\/libhdf5[^/]*\.so/.test(f)), `no libhdf5 found to hide (${hidden.files.join(', ')})`);
    assert.ok(hidden.files.some((f) => /\/libz\.so/.test(f)), `no libz found to hide (${hidden.files.join(', ')})`);
    const r = spawnSync(process.execPath, ['-e', PROBE, ...probeSonames], { encoding: 'utf8', env: cleanEnv() });
    assert.equal(r.status, 0, r.stderr);
    const probe = JSON.parse(r.stdout) as Probe;
    for (const name of probeSonames.filter((n) => /^(libhdf5(_serial)?|libz)\.so\.\d+$/.test(n))) {
      assert.ok(probe[name]!.loads, `${name} does not load even outside the namespace: ${probe[name]!.message}`);
    }
    // And inside it, neither Debian's Python (which links libz) nor h5py can start.
    const py = runHidden(hidden.files, '/usr/bin/python3', ['-c', 'import h5py'], { env: cleanEnv() });
    assert.notEqual(py.status, 0, 'python3 + h5py still work with libhdf5 and libz hidden');
    assert.match(py.stderr, /libz\.so|libhdf5|file too short/);
  });

  it(`this Node (${process.version}): require + import, a gzip dataset and values round trip, h5py's file reads`, (t) => {
    // A Node linked against the system's zlib (Debian's nodejs package) cannot start without it.
    const own = fs.readFileSync('/proc/self/maps', 'utf8');
    if (/\/libz\.so/.test(own)) return t.skip(`${process.execPath} links the system's libz; the Node 22/24 cases cover this`);
    check(consume(`node ${process.version}`, process.execPath), null);
  });

  for (const major of ['22', '24']) {
    it(`Node ${major} (npm's node package): the same, in the same namespace`, () => {
      const node = runtimes.get(major);
      if (node instanceof Error || node === undefined) throw new Error(`npx -y node@${major} failed: ${String(node)}`);
      check(consume(`node ${major}`, node), major);
    });
  }

  it('h5py reads the files written in the namespace', (t) => {
    const done = outputs.filter((o) => o.result.roundtrip);
    if (done.length === 0) return t.skip('no round trip succeeded');
    const back = h5py<{ shape: number[]; compression: string; shuffle: boolean; data: number[]; answer: number; matrix: number[][] }[]>(`
res = []
for p in sys.argv[1:]:
    with h5py.File(p, 'r') as f:
        d = f['frames']
        res.append({'shape': list(d.shape), 'compression': d.compression, 'shuffle': d.shuffle,
                    'data': d[()].ravel(), 'answer': f['answer'][()], 'matrix': f['matrix'][()]})
out(res)`, ...done.map((o) => o.file));
    done.forEach((o, i) => {
      const expected = o.result.roundtrip!.expected as { frames: { data: number[] }; matrix: { data: number[] } };
      const got = back[i]!;
      assert.deepEqual([got.shape, got.compression, got.shuffle], [[150, 3, 4], 'gzip', true], o.label);
      assert.deepEqual(got.data, expected.frames.data, o.label);
      assert.equal(got.answer, 42);
      assert.deepEqual(got.matrix.flat(), expected.matrix.data);
    });
  });
});
