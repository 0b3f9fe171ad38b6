/**
 * The native HDF5 layer (lib/native.ts + binding/): round trips of every dtype through batches
 * (`H5File.exec`) and dataset objects (`H5Dataset`, hyperslabs with strides), interop with h5py in
 * both directions, attributes, how open failures are classified (lib/backends/hdf5-calls.ts),
 * handle hygiene, async behaviour (ordering, the event loop, worker threads, teardown).
 */
import { test, describe } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { CheckpointerError } from '../lib/errors';
import {
  AttrEntry, AttrRead, DatasetInfo, FileOp, H5File, OpenMode, OpResult, WalkNode,
  hyperslab, loadNative, nativeUnavailableReason, NativeError, stableArray,
} from '../lib/native';
import { classifyOpenFailure, openFile, runAsync, runSync } from '../lib/backends/hdf5-calls';
import { DType, DTYPES, arrayTypeOf, dtypeInfo, numberToFloat16, TypedArray } from '../lib/values/dtype';
import { h5py, PYTHON } from './helpers/h5py';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE_JS = path.join(ROOT, 'dist-test', 'lib', 'native.js');
const CALLS_JS = path.join(ROOT, 'dist-test', 'lib', 'backends', 'hdf5-calls.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'checkpointer-native-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
/** tmpfs when there is one: tests about the event loop must not measure the disk's writeback. */
const shm = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/checkpointer-native-') : null;
if (shm) process.on('exit', () => fs.rmSync(shm, { recursive: true, force: true }));
let counter = 0;
const fresh = (name = 'f') => path.join(tmp, `${name}-${counter++}.h5`);
const freshFast = (name = 'f') => (shm ? path.join(shm, `${name}-${counter++}.h5`) : fresh(name));

const native = loadNative();
const { H5File: File, H5Dataset: Dataset, H5Group: Group } = native;

// ---------------------------------------------------------------------------------------- helpers

/** Sample values of a dtype, in its TypedArray (complex interleaved). */
/** The addon takes and gives float16 as its binary16 bits (a Uint16Array), whatever Node has. */
function nativeArrayType(dtype: DType): ReturnType<typeof arrayTypeOf> {
  return dtype === 'float16' ? Uint16Array : arrayTypeOf(dtype);
}

function sample(dtype: DType, n: number, seed = 0): TypedArray {
  const info = dtypeInfo(dtype);
  const a = new (nativeArrayType(dtype))(n * info.lanes);
  for (let j = 0; j < a.length; j++) {
    const i = j + seed;
    switch (info.kind) {
      case 'b': a[j] = i % 3 === 0 ? 1 : 0; break;
      case 'f': case 'c': a[j] = dtype === 'float16' ? numberToFloat16((i - 3.25) * 1.5) : (i - 3.25) * 1.5; break;
      case 'i':
        if (a instanceof BigInt64Array) a[j] = BigInt(i - 2) * 1234567890123n;
        else a[j] = (i % 7) - 3;
        break;
      case 'u':
        if (a instanceof BigUint64Array) a[j] = BigInt(i) * 9007199254740993n;
        else a[j] = i * 3;
        break;
    }
  }
  return a;
}

function plain(a: ArrayLike<number | bigint>): (number | string)[] {
  return Array.from(a, (x) => (typeof x === 'bigint' ? x.toString() : x));
}

function expectCode(fn: () => unknown, code: string): NativeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CheckpointerError, `expected CheckpointerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err as NativeError;
  }
  assert.fail(`expected ${code}`);
}

async function expectCodeAsync(p: Promise<unknown>, code: string): Promise<NativeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CheckpointerError, `expected CheckpointerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err as NativeError;
  }
  assert.fail(`expected ${code}`);
}

/** A TypeError, thrown by the call or as the rejection of the promise it returns. */
async function expectTypeError(fn: () => unknown, what: string): Promise<void> {
  let err: unknown = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TypeError, `${what}: expected a TypeError, got ${err === null ? 'no error' : `${(err as Error)?.constructor?.name}: ${String(err)}`}`);
}

function withFile<T>(file: string, mode: OpenMode, fn: (f: H5File) => T): T {
  const f = File.openSync(file, mode);
  try {
    const r = fn(f);
    assert.equal(f.openObjectCount(), 0, 'objects left open');
    return r;
  } finally {
    f.closeSync();
  }
}

const exec1 = (f: H5File, op: FileOp): OpResult => f.execSync([op])[0];

/** The walked tree at `path`, numeric datasets up to 1 MiB inlined. */
function walk(f: H5File, p: string, inlineBytes = 1 << 20): WalkNode | null {
  return exec1(f, { op: 'walk', path: p, inlineBytes, inlineTotal: 1 << 30 }) as WalkNode | null;
}

/** JSON for messages: bigints as strings, typed arrays as arrays. */
function show(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v));
}

function datasetNode(f: H5File, p: string): Extract<WalkNode, { kind: 'dataset' }> {
  const node = walk(f, p);
  if (!node || node.kind !== 'dataset') assert.fail(`${p} is not a dataset: ${show(node)}`);
  return node;
}

function infoOf(f: H5File, p: string): DatasetInfo {
  const node = walk(f, p, 0);
  if (!node || node.kind !== 'dataset') assert.fail(`${p} is not a dataset: ${show(node)}`);
  return node.info;
}
const stringsOf = (f: H5File, p: string): (string | Buffer)[] | undefined => datasetNode(f, p).strings;

/** Reads a whole dataset through a `read` op. */
function readAll(f: H5File, p: string, dtype: DType, elements: number): TypedArray {
  const out = new (nativeArrayType(dtype))(elements * dtypeInfo(dtype).lanes);
  exec1(f, { op: 'read', path: p, out });
  return out;
}

function attrsOf(f: H5File, p: string): AttrEntry[] {
  return exec1(f, { op: 'attrs', path: p }) as AttrEntry[];
}

function attrMap(entries: AttrEntry[]): Map<string, AttrRead> {
  return new Map(entries);
}

/** The elements of a C-ordered array of `shape` that a hyperslab selects, in C order. */
function slabOf<T>(flat: ArrayLike<T>, shape: readonly number[], start: number[], stride: number[], count: number[], lanes = 1): T[] {
  const out: T[] = [];
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const total = count.reduce((a, b) => a * b, 1);
  for (let k = 0; k < total; k++) {
    let rem = k;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = rem % count[d]!;
      rem = Math.floor(rem / count[d]!);
    }
    let off = 0;
    for (let d = 0; d < rank; d++) off = off * shape[d]! + start[d]! + idx[d]! * stride[d]!;
    for (let l = 0; l < lanes; l++) out.push(flat[off * lanes + l]!);
  }
  return out;
}

/** Writes `values` into the hyperslab of a C-ordered array of `shape` (the model of a write). */
function slabInto(flat: number[], shape: readonly number[], start: number[], stride: number[], count: number[], values: ArrayLike<number>): void {
  const rank = shape.length;
  const total = count.reduce((a, b) => a * b, 1);
  for (let k = 0; k < total; k++) {
    let rem = k;
    let off = 0;
    const idx: number[] = new Array<number>(rank).fill(0);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = rem % count[d]!;
      rem = Math.floor(rem / count[d]!);
    }
    for (let d = 0; d < rank; d++) off = off * shape[d]! + start[d]! + idx[d]! * stride[d]!;
    flat[off] = values[k]!;
  }
}

/** A child process running `script` (a CommonJS file written to tmp); its exit status, signal and output. */
function runChild(name: string, script: string, args: string[] = [], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}) {
  const file = path.join(tmp, `${name}-${counter++}.js`);
  fs.writeFileSync(file, script);
  fs.chmodSync(file, 0o644);
  return spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 120_000, ...opts });
}

// ---------------------------------------------------------------------------------------- loading

/** The fingerprint CMakeLists.txt compiles into the addon as `sourceHash`, computed from the tree. */
function sourceFingerprint(): string {
  const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
  const files = [
    ...fs.readdirSync(path.join(ROOT, 'binding')).filter((f) => /\.(cpp|h)$/.test(f) || f === 'exports.map').map((f) => `binding/${f}`),
    'CMakeLists.txt',
    'scripts/build-hdf5.sh',
  ].sort();
  return sha(files.map((f) => `${sha(fs.readFileSync(path.join(ROOT, f)))}  ${f}\n`).join(''));
}

describe('loading', () => {
  test('the addon loads and reports its libhdf5 and Node-API versions', () => {
    assert.equal(nativeUnavailableReason(), null);
    assert.match(native.hdf5Version, /^1\.\d+\.\d+$/);
    const [maj, min, rel] = native.hdf5Version.split('.').map(Number) as [number, number, number];
    assert.ok(maj > 1 || min > 10 || (min === 10 && rel >= 3), `HDF5 ${native.hdf5Version} is older than 1.10.3`);
    assert.equal(native.napiVersion, 8);
    // Linked against the system libhdf5, the addon loads the library h5dump and Debian's h5py use;
    // built with the bundled HDF5 it carries its own (and needs no libhdf5 at all).
    const addon = require('node-gyp-build').path(ROOT) as string;
    const linked = /libhdf5/.test(spawnSync('ldd', [addon], { encoding: 'utf8' }).stdout ?? '');
    if (linked) {
      const dump = spawnSync('h5dump', ['--version'], { encoding: 'utf8' });
      if (!dump.error) assert.match(dump.stdout, new RegExp(`Version ${native.hdf5Version.replace(/\./g, '\\.')}\\b`));
      assert.equal(h5py(`out(h5py.version.hdf5_version)`), native.hdf5Version);
    }
    for (const cls of [File, Dataset, Group]) assert.equal(typeof cls, 'function');
    assert.equal(loadNative(), native, 'loaded once');
  });

  test('hyperslab() packs start, stride and count into one Float64Array', () => {
    const s = hyperslab([1, 2, 3], [1, 4, 1], [5, 6, 7]);
    assert.ok(s instanceof Float64Array);
    assert.deepEqual(Array.from(s), [1, 2, 3, 1, 4, 1, 5, 6, 7]);
    assert.deepEqual(Array.from(hyperslab([], [], [])), []);
  });

  test('CHECKPOINTER_NO_NATIVE=1: requiring lib/native does not throw, loadNative throws ERR_HDF5_UNAVAILABLE', () => {
    const r = runChild('nonative', `
      const n = require(${JSON.stringify(NATIVE_JS)});
      const reason = n.nativeUnavailableReason();
      try { n.loadNative(); console.log(JSON.stringify({ ok: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message, reason })); }`, [],
    { env: { ...process.env, CHECKPOINTER_NO_NATIVE: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.code, 'ERR_HDF5_UNAVAILABLE');
    assert.equal(out.name, 'CheckpointerError');
    assert.match(out.message, /CHECKPOINTER_NO_NATIVE/);
    assert.equal(out.reason, out.message);
  });

  test('the committed linux-x64 prebuild loads with PREBUILDS_ONLY=1 and has the current surface', { skip: `${process.platform}-${process.arch}` !== 'linux-x64' }, () => {
    const file = fresh('prebuild');
    const r = runChild('prebuild', `
      const p = require('node-gyp-build').path(${JSON.stringify(ROOT)});
      const n = require(${JSON.stringify(NATIVE_JS)});
      const a = n.loadNative();
      const f = a.H5File.openSync(process.argv[2], 'w');
      f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'int32', shape: [2] }, data: Int32Array.of(4, 5) }]);
      f.closeSync();
      console.log(JSON.stringify({ p, version: a.hdf5Version, build: a.hdf5Build, sourceHash: a.sourceHash }));`, [file], { env: { ...process.env, PREBUILDS_ONLY: '1', NODE_PATH: path.join(ROOT, 'node_modules') } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.p, /prebuilds[/\\]linux-x64[/\\]checkpointer\.glibc\.node$/);
    assert.equal(out.sourceHash, sourceFingerprint(), 'prebuilds/linux-x64 is older than binding/ or CMakeLists.txt: run `npm run build:prebuild` and commit it');
    // Self-contained: HDF5 1.14.5 inside, and nothing but the C/C++ runtime linked.
    assert.deepEqual([out.version, out.build], ['1.14.5', 'bundled']);
    const libs = (spawnSync('ldd', [out.p], { encoding: 'utf8' }).stdout ?? '').split('\n')
      .map((l) => /^\s*(\S+)/.exec(l)?.[1]).filter((l): l is string => !!l && !/^(linux-vdso|\/lib64\/ld-linux)/.test(l));
    assert.deepEqual(libs.sort(), ['libc.so.6', 'libgcc_s.so.1', 'libm.so.6', 'libstdc++.so.6']);
    assert.deepEqual(h5py(`out(h5py.File(sys.argv[1], 'r')['x'][()])`, file), [4, 5]);
  });

  /** A copy of the package with no build and no prebuilds: node-gyp-build finds nothing. */
  function unbuiltPackage(opts: { checkout: boolean; installLog?: boolean }) {
    const fake = fs.mkdtempSync(path.join(tmp, 'pkg-'));
    fs.writeFileSync(path.join(fake, 'package.json'), JSON.stringify({ name: 'checkpointer' }));
    fs.cpSync(path.join(ROOT, 'dist-test', 'lib'), path.join(fake, 'dist'), { recursive: true });
    if (opts.checkout) fs.cpSync(path.join(ROOT, 'lib'), path.join(fake, 'lib'), { recursive: true });
    if (opts.installLog) {
      fs.mkdirSync(path.join(fake, 'build'));
      fs.writeFileSync(path.join(fake, 'build', 'checkpointer-install.log'), 'cmake not found\n');
    }
    const r = runChild('nobuild', `
      const n = require(${JSON.stringify(path.join(fake, 'dist', 'native.js'))});
      try { n.loadNative(); console.log('{}'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, reason: n.nativeUnavailableReason() })); }`, [],
    { env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.code, 'ERR_HDF5_UNAVAILABLE');
    assert.equal(out.reason, out.message);
    return { fake, message: out.message as string };
  }

  test('no addon in an installed package: ERR_HDF5_UNAVAILABLE names the platform, what to install and the install log', () => {
    const { message } = unbuiltPackage({ checkout: false });
    assert.match(message, new RegExp(`no prebuilt addon fits ${process.platform}-${process.arch}`));
    assert.match(message, /libhdf5-dev/);
    assert.match(message, /npm rebuild checkpointer/);
    assert.doesNotMatch(message, /build:native|install log|what the install tried/, 'an installed package has no build:native script');
    const withLog = unbuiltPackage({ checkout: false, installLog: true });
    assert.ok(withLog.message.includes(path.join(withLog.fake, 'build', 'checkpointer-install.log')), withLog.message);
  });

  test('no addon in a checkout of the repository: the fix is `npm run build:native`', () => {
    const { message } = unbuiltPackage({ checkout: true });
    assert.match(message, /npm run build:native/);
    assert.doesNotMatch(message, /npm rebuild/);
  });
});

// ------------------------------------------------------------------------------- datasets (ours)

const PY_DUMP_ALL = `
f = h5py.File(sys.argv[1], 'r')
res = {}
def vals(a):
    if a.dtype == np.float16: return a.view('<u2').ravel().tolist()  # binary16 bits, as the addon holds them
    if a.dtype.kind in 'iu' and a.dtype.itemsize == 8: return [str(v) for v in a.ravel().tolist()]
    if a.dtype.kind == 'b': return [int(v) for v in a.ravel().tolist()]
    if a.dtype.kind == 'c': return np.stack([a.real, a.imag], axis=-1).ravel().tolist()
    return a.ravel().tolist()
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        a = obj[()]
        res[name] = {'dtype': str(obj.dtype), 'shape': list(obj.shape), 'vals': vals(np.asarray(a))}
f.visititems(visit)
out(res)`;

describe('datasets round trip', () => {
  test('every dtype, 2-d, contiguous, created with its data in one batch: ours → ours and ours → h5py', () => {
    const file = fresh('dtypes');
    const written: Record<string, TypedArray> = {};
    withFile(file, 'w', (f) => {
      const ops: FileOp[] = [];
      for (const dtype of DTYPES) {
        written[dtype] = sample(dtype, 12);
        ops.push({ op: 'createDataset', path: `/${dtype}`, spec: { dtype, shape: [4, 3] }, data: written[dtype]! });
      }
      assert.deepEqual(f.execSync(ops), ops.map(() => undefined));
      for (const dtype of DTYPES) {
        const node = datasetNode(f, `/${dtype}`);
        assert.equal(node.info.dtype, dtype);
        assert.deepEqual(node.info.shape, [4, 3]);
        assert.deepEqual(node.info.maxshape, [4, 3]);
        assert.equal(node.info.chunks, null);
        assert.equal(node.info.isNull, false);
        assert.equal(node.info.isScalar, false);
        assert.equal(node.info.opaque, false);
        assert.deepEqual(node.info.filters, { compression: null, level: null, shuffle: false, other: 0 });
        // inlined by the walk, and read by a read op: the same values, in the dtype's TypedArray
        assert.ok(node.data instanceof nativeArrayType(dtype), `${dtype}: walk data is a ${node.data?.constructor.name}`);
        assert.deepEqual(plain(node.data!), plain(written[dtype]!), dtype);
        assert.deepEqual(plain(readAll(f, `/${dtype}`, dtype, 12)), plain(written[dtype]!), dtype);
      }
    });
    const py = h5py(PY_DUMP_ALL, file);
    const dump = spawnSync('h5dump', ['-H', file], { encoding: 'utf8' });
    if (!dump.error) assert.equal(dump.status, 0, `h5dump failed: ${dump.stderr}`);
    for (const dtype of DTYPES) {
      assert.equal(py[dtype].dtype, dtype, `h5py dtype of ${dtype}`);
      assert.deepEqual(py[dtype].shape, [4, 3]);
      assert.deepEqual(py[dtype].vals, plain(written[dtype]!), dtype);
    }
  });

  test('every dtype through H5Dataset: chunked, written and read whole and by hyperslab, sync and async', async () => {
    const file = fresh('dtypes-ds');
    const f = File.openSync(file, 'w');
    const full: Record<string, TypedArray> = {};
    for (const dtype of DTYPES) {
      const lanes = dtypeInfo(dtype).lanes;
      f.execSync([{ op: 'createDataset', path: `/${dtype}`, spec: { dtype, shape: [6, 5], maxshape: [null, 5], chunks: [4, 5] } }]);
      const ds = f.openDatasetSync(`/${dtype}`);
      assert.ok(ds instanceof Dataset);
      assert.equal(ds.path, `/${dtype}`);
      assert.equal(ds.isOpen, true);
      assert.equal(ds.info.dtype, dtype);
      assert.deepEqual(ds.info.chunks, [4, 5]);
      const data = sample(dtype, 30);
      full[dtype] = data;
      ds.writeSync(data);
      const back = new (nativeArrayType(dtype))(30 * lanes);
      ds.readSync(back);
      assert.deepEqual(plain(back), plain(data), `${dtype} whole`);
      // rows 1..4, columns 1, 3 (stride 2)
      const sel = hyperslab([1, 1], [1, 2], [4, 2]);
      const part = new (nativeArrayType(dtype))(8 * lanes);
      await ds.read(part, sel);
      assert.deepEqual(plain(part), plain(slabOf(data as ArrayLike<number>, [6, 5], [1, 1], [1, 2], [4, 2], lanes)), `${dtype} slab`);
      // overwrite the same slab asynchronously with other values
      const repl = sample(dtype, 8, 100);
      await ds.write(repl, sel);
      const flat = Array.from(data as ArrayLike<number>);
      for (let k = 0; k < 8; k++) {
        const r = 1 + Math.floor(k / 2), c = 1 + 2 * (k % 2);
        for (let l = 0; l < lanes; l++) flat[(r * 5 + c) * lanes + l] = (repl as ArrayLike<number>)[k * lanes + l]!;
      }
      full[dtype] = new (nativeArrayType(dtype))(flat as never);
      const again = new (nativeArrayType(dtype))(30 * lanes);
      await ds.read(again);
      assert.deepEqual(plain(again), plain(full[dtype]!), `${dtype} after slab write`);
      ds.closeSync();
      assert.equal(ds.isOpen, false);
    }
    assert.equal(f.openObjectCount(), 0);
    await f.close();
    const py = h5py(PY_DUMP_ALL, file);
    for (const dtype of DTYPES) {
      assert.equal(py[dtype].dtype, dtype);
      assert.deepEqual(py[dtype].vals, plain(full[dtype]!), dtype);
    }
  });

  test('scalars (shape []) of every dtype, from views with a byte offset', () => {
    const file = fresh('scalars');
    withFile(file, 'w', (f) => {
      for (const dtype of DTYPES) {
        const lanes = dtypeInfo(dtype).lanes;
        const data = sample(dtype, 3).subarray(lanes, 2 * lanes); // byteOffset ≠ 0
        f.execSync([{ op: 'createDataset', path: `/${dtype}`, spec: { dtype, shape: [] }, data }]);
        const node = datasetNode(f, `/${dtype}`);
        assert.deepEqual(node.info.shape, []);
        assert.deepEqual(node.info.maxshape, []);
        assert.equal(node.info.isScalar, true);
        assert.deepEqual(plain(node.data!), plain(data), dtype);
        assert.deepEqual(plain(readAll(f, `/${dtype}`, dtype, 1)), plain(data), dtype);
        // and rewritten through a dataset object (a view in the middle of a buffer again)
        const ds = f.openDatasetSync(`/${dtype}`);
        const other = sample(dtype, 5, 7).subarray(3 * lanes, 4 * lanes);
        ds.writeSync(other);
        const back = new (nativeArrayType(dtype))(lanes);
        ds.readSync(back);
        assert.deepEqual(plain(back), plain(other), dtype);
        assert.throws(() => ds.readSync(back, hyperslab([0], [1], [1])), TypeError, 'a scalar has no hyperslab');
        ds.writeSync(data);
        ds.closeSync();
      }
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
out({k: [f[k].shape, str(f[k].dtype), f[k][()]] for k in ['bool', 'int64', 'complex128', 'float32', 'uint64']})`, file);
    assert.deepEqual(py.bool, [[], 'bool', false]);
    assert.deepEqual(py.int64, [[], 'int64', -1234567890123]);
    assert.deepEqual(py.complex128, [[], 'complex128', [-1.875, -0.375]]);
    assert.deepEqual(py.float32, [[], 'float32', -3.375]);
    assert.deepEqual(py.uint64, [[], 'uint64', 9007199254740993]);
  });

  test('null dataspace (None) as McUtils stores it: createNull', () => {
    const file = fresh('null');
    withFile(file, 'w', (f) => {
      f.execSync([{ op: 'createNull', path: '/nothing' }]);
      const node = datasetNode(f, '/nothing');
      assert.equal(node.info.isNull, true);
      assert.equal(node.info.isScalar, false);
      assert.equal(node.info.dtype, 'int32');
      assert.deepEqual(node.info.shape, []);
      assert.equal(node.data, undefined);
      exec1(f, { op: 'read', path: '/nothing', out: new Int32Array(0) });
      assert.throws(() => exec1(f, { op: 'read', path: '/nothing', out: new Int32Array(0), sel: hyperslab([0], [1], [0]) }), TypeError);
      assert.throws(() => exec1(f, { op: 'read', path: '/nothing', out: new Int32Array(1) }), RangeError);
      const ds = f.openDatasetSync('/nothing');
      assert.equal(ds.info.isNull, true);
      assert.deepEqual(ds.extentSync(), []);
      ds.readSync(new Int32Array(0));
      ds.closeSync();
      expectCode(() => exec1(f, { op: 'createNull', path: '/nothing' }), 'ERR_HDF5');
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([f['nothing'][()], f['nothing'].shape])`, file);
    assert.deepEqual(py, [{ empty: 'int32' }, null]);
  });

  test('fill values, gzip + shuffle, chunks and maxshape, as h5py sees them', () => {
    const file = fresh('opts');
    const g = sample('float32', 400);
    withFile(file, 'w', (f) => {
      f.execSync([
        { op: 'createDataset', path: '/g', spec: { dtype: 'float32', shape: [100, 4], chunks: [10, 4], compression: 'gzip', compressionLevel: 6, shuffle: true }, data: g },
        { op: 'createDataset', path: '/fill', spec: { dtype: 'int64', shape: [3], fillValue: -7n } },
        { op: 'createDataset', path: '/ufill', spec: { dtype: 'uint64', shape: [2], fillValue: 2n ** 64n - 1n } },
        { op: 'createDataset', path: '/ffill', spec: { dtype: 'float64', shape: [2, 2], maxshape: [null, 2], chunks: [1, 2], fillValue: 2.5 } },
        { op: 'createDataset', path: '/bfill', spec: { dtype: 'bool', shape: [2], fillValue: true } },
        { op: 'createDataset', path: '/default-gzip', spec: { dtype: 'uint8', shape: [8], chunks: [8], compression: 'gzip' } },
        { op: 'createDataset', path: '/cfill', spec: { dtype: 'complex128', shape: [2], fillValue: 1.5 } },
      ]);
      assert.deepEqual(plain(readAll(f, '/cfill', 'complex128', 2)), [1.5, 0, 1.5, 0], 'complex fills the real part');
      const info = infoOf(f, '/g');
      assert.deepEqual(info.filters, { compression: 'gzip', level: 6, shuffle: true, other: 0 });
      assert.deepEqual(info.chunks, [10, 4]);
      assert.deepEqual(infoOf(f, '/default-gzip').filters, { compression: 'gzip', level: 4, shuffle: false, other: 0 });
      assert.deepEqual(infoOf(f, '/ffill').maxshape, [null, 2]);
      assert.deepEqual(plain(readAll(f, '/g', 'float32', 400)), plain(g));
      assert.deepEqual(plain(readAll(f, '/fill', 'int64', 3)), ['-7', '-7', '-7']);
      assert.deepEqual(plain(readAll(f, '/ufill', 'uint64', 2)), [String(2n ** 64n - 1n), String(2n ** 64n - 1n)]);
      assert.deepEqual(plain(readAll(f, '/ffill', 'float64', 4)), [2.5, 2.5, 2.5, 2.5]);
      assert.deepEqual(plain(readAll(f, '/bfill', 'bool', 2)), [1, 1]);
      // what the binding refuses even if TypeScript let it through
      const bad: [string, object, ErrorConstructor][] = [
        ['resizable without chunks', { dtype: 'float64', shape: [2], maxshape: [null] }, TypeError],
        ['gzip without chunks', { dtype: 'float64', shape: [2], compression: 'gzip' }, TypeError],
        ['chunks of a scalar', { dtype: 'float64', shape: [], chunks: [1] }, RangeError],
        ['zero chunk', { dtype: 'float64', shape: [2], chunks: [0] }, RangeError],
        ['chunk beyond maxshape', { dtype: 'float64', shape: [2], chunks: [3] }, RangeError],
        ['maxshape below shape', { dtype: 'float64', shape: [4], maxshape: [2], chunks: [1] }, RangeError],
        ['gzip level 12', { dtype: 'float64', shape: [4], chunks: [4], compression: 'gzip', compressionLevel: 12 }, RangeError],
        ['string dtype', { dtype: 'string', shape: [1] }, TypeError],
        ['unknown dtype', { dtype: 'float128', shape: [1] }, TypeError],
        ['negative dimension', { dtype: 'float64', shape: [-1] }, RangeError],
        ['fractional dimension', { dtype: 'float64', shape: [1.5] }, RangeError],
        ['unknown compression', { dtype: 'float64', shape: [4], chunks: [4], compression: 'lzf' }, TypeError],
        ['bigint fill beyond 64 bits', { dtype: 'int64', shape: [1], fillValue: 2n ** 64n }, RangeError],
      ];
      for (const [what, spec, Err] of bad) {
        assert.throws(() => exec1(f, { op: 'createDataset', path: '/bad', spec: spec as never }), Err, what);
        assert.deepEqual(exec1(f, { op: 'lookup', path: '/bad' }), [], `${what}: nothing created`);
      }
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
g = f['g']
out([g.compression, g.compression_opts, g.shuffle, list(g.chunks), f['fill'][()], f['ffill'][()], list(f['ffill'].maxshape), [str(v) for v in f['ufill'][()]], f['bfill'][()]])`, file);
    assert.deepEqual(py.slice(0, 4), ['gzip', 6, true, [10, 4]]);
    assert.deepEqual(py[4], [-7, -7, -7]);
    assert.deepEqual(py[5], [[2.5, 2.5], [2.5, 2.5]]);
    assert.deepEqual(py[6], [null, 2]);
    assert.deepEqual(py[7], [String(2n ** 64n - 1n), String(2n ** 64n - 1n)]);
    assert.deepEqual(py[8], [true, true]);
  });

  test('resize and hyperslab write/read through H5Dataset: direct-chunk and partial-chunk paths', () => {
    const file = fresh('slab');
    const rows = 37;
    const full = new Float64Array(rows * 25).map((_, i) => i * 0.5);
    withFile(file, 'w', (f) => {
      f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [10, 5, 5], maxshape: [null, 5, 5], chunks: [4, 5, 5] }, data: full.subarray(0, 250) }]);
      const ds = f.openDatasetSync('/x');
      ds.resizeSync([rows, 5, 5]);
      assert.deepEqual(ds.extentSync(), [rows, 5, 5]);
      assert.deepEqual(ds.info.shape, [10, 5, 5], 'info is the snapshot taken at open');
      // rows 10..37: a partial chunk (10,11), whole chunks 12..35, a partial edge chunk 36
      ds.writeSync(full.subarray(250), hyperslab([10, 0, 0], [1, 1, 1], [rows - 10, 5, 5]));
      const node = datasetNode(f, '/x');
      assert.deepEqual(node.info.shape, [rows, 5, 5]);
      assert.deepEqual(node.info.maxshape, [null, 5, 5]);
      const all = new Float64Array(rows * 25);
      ds.readSync(all);
      assert.deepEqual(all, full);
      const part = new Float64Array(3 * 2 * 5);
      ds.readSync(part, hyperslab([5, 1, 0], [1, 1, 1], [3, 2, 5]));
      assert.deepEqual(Array.from(part), slabOf(full, [rows, 5, 5], [5, 1, 0], [1, 1, 1], [3, 2, 5]));
      // a selection that does not span the trailing dims (no direct-chunk path)
      ds.writeSync(Float64Array.of(-1, -2), hyperslab([20, 2, 3], [1, 1, 1], [1, 1, 2]));
      const two = new Float64Array(2);
      ds.readSync(two, hyperslab([20, 2, 3], [1, 1, 1], [1, 1, 2]));
      assert.deepEqual(Array.from(two), [-1, -2]);
      full[20 * 25 + 13] = -1;
      full[20 * 25 + 14] = -2;
      // mistakes are argument errors and write nothing
      assert.throws(() => ds.writeSync(new Float64Array(3), hyperslab([36, 0, 0], [1, 1, 1], [2, 5, 5])), RangeError);
      assert.throws(() => ds.writeSync(new Float64Array(3)), RangeError);
      assert.throws(() => ds.writeSync(new Float32Array(rows * 25)), TypeError);
      assert.throws(() => ds.readSync(new Float64Array(2), hyperslab([0, 0], [1, 1], [1, 2])), RangeError, 'rank');
      assert.throws(() => ds.resizeSync([rows, 6, 5]), RangeError, 'beyond maxshape');
      assert.throws(() => ds.resizeSync([rows, 5]), RangeError, 'rank');
      ds.resizeSync([rows + 3, 5, 5]);
      ds.resizeSync([rows, 5, 5]);
      assert.deepEqual(ds.extentSync(), [rows, 5, 5]);
      ds.closeSync();
    });
    const py = h5py(`
x = h5py.File(sys.argv[1], 'r')['x']
out([list(x.shape), list(x.maxshape), list(x.chunks), x[()].ravel().tolist()])`, file);
    assert.deepEqual(py[0], [rows, 5, 5]);
    assert.deepEqual(py[1], [null, 5, 5]);
    assert.deepEqual(py[2], [4, 5, 5]);
    assert.deepEqual(py[3], Array.from(full));
  });

  test('strided hyperslabs: reads and writes match numpy slicing (contiguous, chunked, gzip)', async () => {
    const file = fresh('strides');
    const shape = [13, 7, 6];
    const n = 13 * 7 * 6;
    const base = Array.from({ length: n }, (_, i) => i);
    // [start, stride, count] per axis, and the numpy slice that is the same selection
    const slabs: [number[], number[], number[], string][] = [
      [[0, 0, 0], [3, 2, 5], [5, 4, 2], '0:13:3, 0:7:2, 0:6:5'],
      [[1, 6, 1], [4, 1, 2], [3, 1, 3], '1:10:4, 6:7, 1:6:2'],
      [[12, 0, 5], [1, 3, 1], [1, 3, 1], '12:13, 0:7:3, 5:6'],
      [[2, 1, 0], [5, 1, 1], [2, 6, 6], '2:8:5, 1:7, 0:6'], // strided on axis 0, whole trailing axes
      [[0, 0, 0], [7, 7, 7], [2, 1, 1], '0:13:7, 0:1, 0:1'],
      [[3, 2, 1], [2, 2, 2], [0, 3, 2], '3:3, 2:7:2, 1:5:2'], // selects nothing
    ];
    const layouts: [string, object][] = [
      ['contig', {}],
      ['chunked', { maxshape: [null, 7, 6], chunks: [2, 7, 6] }],
      ['small-chunks', { chunks: [3, 2, 4] }],
      ['gzip', { chunks: [4, 7, 6], compression: 'gzip', shuffle: true }],
    ];
    const model: Record<string, number[]> = {};
    const f = File.openSync(file, 'w');
    for (const [name, opts] of layouts) {
      f.execSync([{ op: 'createDataset', path: `/${name}`, spec: { dtype: 'int32', shape, ...opts }, data: Int32Array.from(base) }]);
      const ds = f.openDatasetSync(`/${name}`);
      model[name] = base.slice();
      let k = 0;
      for (const [start, stride, count] of slabs) {
        const sel = hyperslab(start, stride, count);
        const m = count.reduce((a, b) => a * b, 1);
        // read: sync, async, and through a batch's read op
        const want = slabOf(model[name]!, shape, start, stride, count);
        const a = new Int32Array(m);
        ds.readSync(a, sel);
        assert.deepEqual(Array.from(a), want, `${name} read ${start}/${stride}/${count}`);
        const b = new Int32Array(m);
        await ds.read(b, sel);
        assert.deepEqual(Array.from(b), want, `${name} async read`);
        const c = new Int32Array(m);
        await f.exec([{ op: 'read', path: `/${name}`, out: c, sel }]);
        assert.deepEqual(Array.from(c), want, `${name} read op`);
        // write: alternately sync and async
        const values = Int32Array.from({ length: m }, (_, i) => -(1000 * (k + 1) + i));
        if (k % 2 === 0) ds.writeSync(values, sel);
        else await ds.write(values, sel);
        slabInto(model[name]!, shape, start, stride, count, values);
        const all = new Int32Array(n);
        ds.readSync(all);
        assert.deepEqual(Array.from(all), model[name], `${name} after write ${start}/${stride}/${count}`);
        k++;
      }
      // strides that leave the extent, zero strides, wrong rank, the old {start, count} object
      assert.throws(() => ds.readSync(new Int32Array(5), hyperslab([0, 0, 0], [4, 1, 1], [5, 1, 1])), RangeError);
      assert.throws(() => ds.writeSync(new Int32Array(4), hyperslab([1, 0, 0], [4, 1, 1], [4, 1, 1])), RangeError);
      assert.throws(() => ds.readSync(new Int32Array(2), hyperslab([0, 0, 0], [0, 1, 1], [2, 1, 1])), RangeError);
      assert.throws(() => ds.readSync(new Int32Array(2), hyperslab([0, 0], [1, 1], [1, 2])), RangeError);
      assert.throws(() => ds.readSync(new Int32Array(2), { start: [0, 0, 0], count: [1, 1, 2] } as never), TypeError);
      assert.throws(() => ds.readSync(new Int32Array(2), Float64Array.of(0, 0)), RangeError);
      assert.throws(() => ds.readSync(new Int32Array(1), Float64Array.of(0, 0, 0, 1, 1, 1, 1, 1, -1)), RangeError);
      assert.throws(() => ds.readSync(new Int32Array(1), Float64Array.of(0, 0, 0.5, 1, 1, 1, 1, 1, 1)), RangeError);
      ds.closeSync();
    }
    assert.equal(f.openObjectCount(), 0);
    await f.close();
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
out({k: f[k][()].ravel().tolist() for k in f})`, file);
    for (const [name] of layouts) assert.deepEqual(py[name], model[name], name);
    // h5py slices of the file are the selections we read
    const pyRead = h5py(`
f = h5py.File(sys.argv[1], 'r')
out([f['gzip'][s].ravel().tolist() for s in [${slabs.map((s) => `np.s_[${s[3]}]`).join(', ')}]])`, file) as number[][];
    slabs.forEach(([start, stride, count], i) => {
      assert.deepEqual(pyRead[i], slabOf(model.gzip!, shape, start, stride, count), `numpy [${slabs[i]![3]}]`);
    });
  });

  test('a numeric dataset created by an async batch, with its data', async () => {
    const file = freshFast('async-create');
    const f = await File.open(file, 'w');
    assert.equal(f.writable, true);
    const data = sample('complex64', 5000);
    const res = await f.exec([
      { op: 'createGroup', path: '/g' },
      { op: 'createDataset', path: '/g/c', spec: { dtype: 'complex64', shape: [50, 100], chunks: [10, 100], compression: 'gzip' }, data },
      { op: 'lookup', path: '/g/c' },
    ]);
    assert.deepEqual(res, [undefined, undefined, ['group', 'dataset']]);
    const back = new Float32Array(10000);
    await f.exec([{ op: 'read', path: '/g/c', out: back }]);
    assert.deepEqual(plain(back), plain(data));
    await f.close();
    assert.equal(f.isOpen, false);
  });
});

describe('strings, bytes and None', () => {
  test('createStrings: variable-length UTF-8, scalar and n-d, non-ASCII, read back through walk', () => {
    const file = fresh('str');
    const words = ['héllo', 'мир', '日本語', '', 'plain', '🙂 emoji'];
    withFile(file, 'w', (f) => {
      f.execSync([
        { op: 'createStrings', path: '/s', strings: ['Grüße, 世界'], shape: [] },
        { op: 'createStrings', path: '/m', strings: words, shape: [2, 3] },
        { op: 'createStrings', path: '/empty', strings: [], shape: [0] },
        { op: 'createStrings', path: '/blank', strings: [''], shape: [] },
      ]);
      assert.deepEqual(stringsOf(f, '/s'), ['Grüße, 世界']);
      assert.deepEqual(stringsOf(f, '/m'), words);
      assert.deepEqual(stringsOf(f, '/empty') ?? [], []);
      assert.deepEqual(stringsOf(f, '/blank'), ['']);
      const info = infoOf(f, '/m');
      assert.equal(info.dtype, 'string');
      assert.deepEqual(info.stringType, { variable: true, length: 0, utf8: true });
      assert.deepEqual(info.shape, [2, 3]);
      assert.equal(infoOf(f, '/s').isScalar, true);
      // a whole tree walk carries the strings too, even with nothing inlined
      const root = exec1(f, { op: 'walk', path: '/' }) as Extract<WalkNode, { kind: 'group' }>;
      assert.deepEqual(root.names, ['s', 'm', 'empty', 'blank']);
      assert.deepEqual((root.children[1] as Extract<WalkNode, { kind: 'dataset' }>).strings, words);
      const e = expectCode(() => f.execSync([{ op: 'createGroup', path: '/ok' }, { op: 'createStrings', path: '/nul', strings: ['a\0b'], shape: [] }]), 'ERR_UNSUPPORTED_VALUE');
      assert.equal(e.opIndex, 1);
      assert.throws(() => exec1(f, { op: 'createStrings', path: '/bad', strings: ['a', 'b'], shape: [3] }), RangeError);
      assert.deepEqual(exec1(f, { op: 'list', path: '/' }), ['s', 'm', 'empty', 'blank', 'ok'], 'failed ops create nothing');
      assert.throws(() => exec1(f, { op: 'read', path: '/m', out: new Float64Array(6) }), TypeError, 'strings are not numbers');
    });
    const py = h5py(`
f = h5py.File(sys.argv[1], 'r')
s = f['s'][()]
m = f['m'][()]
out([type(s).__name__, s.decode('utf-8'), list(m.shape), [v.decode('utf-8') for v in m.ravel()], f['s'].asstr()[()], list(f['empty'].shape), str(f['m'].dtype.metadata)])`, file);
    assert.deepEqual(py.slice(0, 6), ['bytes', 'Grüße, 世界', [2, 3], words, 'Grüße, 世界', [0]]);
    assert.match(py[6], /vlen.*str/);
  });

  test("createBytes: np.void, numpy S and uint8 layouts, as h5py reads them", () => {
    const file = fresh('bytes');
    const raw = Uint8Array.of(0x80, 0x04, 0x00, 0x95, 0x2e, 0x00);
    const text = new Uint8Array(Buffer.from('gASVpickle=='));
    withFile(file, 'w', (f) => {
      f.execSync([
        { op: 'createBytes', path: '/v', bytes: raw, layout: 'void' },
        { op: 'createBytes', path: '/s', bytes: raw, layout: 'S' },
        { op: 'createBytes', path: '/t', bytes: text, layout: 'S' },
        { op: 'createBytes', path: '/u', bytes: raw.subarray(1), layout: 'uint8' },
        { op: 'createBytes', path: '/s0', bytes: new Uint8Array(0), layout: 'S' },
        { op: 'createBytes', path: '/u0', bytes: new Uint8Array(0), layout: 'uint8' },
      ]);
      // S: a fixed-length string (what McUtils writes for ASCII text and class pickles)
      assert.deepEqual(infoOf(f, '/t').stringType, { variable: false, length: text.length, utf8: false });
      assert.deepEqual(stringsOf(f, '/t'), ['gASVpickle==']);
      assert.deepEqual(stringsOf(f, '/s0'), ['']);
      // uint8: a 1-d array
      const u = datasetNode(f, '/u');
      assert.equal(u.info.dtype, 'uint8');
      assert.deepEqual(u.data, raw.subarray(1));
      assert.deepEqual(datasetNode(f, '/u0').info.shape, [0]);
      // void: an opaque scalar, read as its bytes
      const v = infoOf(f, '/v');
      assert.equal(v.opaque, true);
      assert.equal(v.dtype, 'packed');
      assert.deepEqual(v.type, { class: 'opaque', size: 6, dims: [], tag: '' });
      assert.deepEqual(datasetNode(f, '/v').data, raw);
      assert.equal(v.isScalar, true);
      const e = expectCode(() => f.execSync([{ op: 'createBytes', path: '/v0', bytes: new Uint8Array(0), layout: 'void' }]), 'ERR_UNSUPPORTED_VALUE');
      assert.equal(e.opIndex, 0);
      assert.throws(() => exec1(f, { op: 'createBytes', path: '/i8', bytes: new Int8Array(2) as never, layout: 'S' }), TypeError);
      assert.throws(() => exec1(f, { op: 'createBytes', path: '/x', bytes: raw, layout: 'U' as never }), TypeError);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/v0' }), []);
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([f['v'][()], f['s'][()], f['u'][()], f['s0'][()], f['t'][()], str(f['s'].dtype), list(f['u0'].shape)])`, file);
    assert.deepEqual(py, [
      { void: Array.from(raw) },
      { bytes: Array.from(raw.subarray(0, 5)) }, // numpy strips trailing NULs
      Array.from(raw.subarray(1)),
      { bytes: [] },
      { bytes: Array.from(text) },
      '|S6',
      [0],
    ]);
  });

  test('bytes that are not UTF-8, stored as numpy S, read back unchanged', () => {
    const file = fresh('bytes-lossy');
    const raw = Uint8Array.of(0x80, 0x04, 0x95, 0x2e);
    withFile(file, 'w', (f) => {
      f.execSync([{ op: 'createBytes', path: '/s', bytes: raw, layout: 'S' }, { op: 'createBytes', path: '/v', bytes: raw, layout: 'void' }]);
      // fixed-length data that is not UTF-8 comes as a Buffer of its bytes (not U+FFFD-mangled text)
      const [s] = stringsOf(f, '/s')!;
      assert.ok(Buffer.isBuffer(s));
      assert.deepEqual([...s], [...raw]);
      const out = new Uint8Array(4);
      exec1(f, { op: 'read', path: '/v', out });
      assert.deepEqual(out, raw);
    });
  });
});

// ------------------------------------------------------------------------------------- attributes

describe('attributes', () => {
  test('set, replace, read back and delete through batch ops; h5py sees them', () => {
    const file = fresh('attrs');
    withFile(file, 'w', (f) => {
      f.execSync([
        { op: 'createGroup', path: '/g' },
        { op: 'setAttr', path: '/g', name: 'n', value: 1.5 },
        { op: 'setAttr', path: '/g', name: 'big', value: 2n ** 62n },
        { op: 'setAttr', path: '/g', name: 'ubig', value: 2n ** 64n - 1n },
        { op: 'setAttr', path: '/g', name: 'neg', value: -(2n ** 63n) },
        { op: 'setAttr', path: '/g', name: 'flag', value: true },
        { op: 'setAttr', path: '/g', name: 'name', value: 'ünïcode' },
        { op: 'setAttr', path: '/g', name: 'empty', value: '' },
        { op: 'setAttr', path: '/g', name: 'list', value: ['a', 'β', ''] },
        { op: 'setAttr', path: '/g', name: 'nolist', value: [] },
        { op: 'setAttr', path: '/g', name: 'arr', value: Int16Array.of(1, -2, 3) },
        { op: 'setAttr', path: '/g', name: 'f32', value: Float32Array.of(0.5, -1) },
        { op: 'setAttr', path: '/g', name: 'i64', value: BigInt64Array.of(-1n, 2n ** 62n) },
        { op: 'setAttr', path: '/g', name: 'u8', value: Uint8Array.of(255, 0) },
        { op: 'setAttr', path: '/g', name: 'none', value: new Float64Array(0) },
        { op: 'setAttr', path: '/g', name: 'ключ', value: 7 },
        { op: 'setAttr', path: '/', name: 'root', value: 'r' },
        { op: 'setAttr', path: '/g', name: 'n', value: 2.5 }, // replace: moves to the end of the creation order
      ]);
      const entries = attrsOf(f, '/g');
      assert.deepEqual(entries.map(([k]) => k), ['big', 'ubig', 'neg', 'flag', 'name', 'empty', 'list', 'nolist', 'arr', 'f32', 'i64', 'u8', 'none', 'ключ', 'n']);
      const a = attrMap(entries);
      assert.equal(a.get('n'), 2.5);
      assert.equal(a.get('big'), 2n ** 62n);
      assert.equal(a.get('ubig'), 2n ** 64n - 1n);
      assert.equal(a.get('neg'), -(2n ** 63n));
      assert.equal(a.get('flag'), true);
      assert.equal(a.get('name'), 'ünïcode');
      assert.equal(a.get('empty'), '');
      assert.deepEqual(a.get('list'), ['a', 'β', '']);
      assert.deepEqual(a.get('nolist'), []);
      assert.deepEqual(a.get('arr'), Int16Array.of(1, -2, 3));
      assert.deepEqual(a.get('f32'), Float32Array.of(0.5, -1));
      assert.deepEqual(a.get('i64'), BigInt64Array.of(-1n, 2n ** 62n));
      assert.deepEqual(a.get('u8'), Uint8Array.of(255, 0));
      assert.deepEqual(a.get('none'), new Float64Array(0));
      assert.equal(a.get('ключ'), 7);
      assert.deepEqual(attrsOf(f, '/'), [['root', 'r']]);
      f.execSync([{ op: 'deleteAttr', path: '/g', name: 'flag' }]);
      assert.equal(attrMap(attrsOf(f, '/g')).has('flag'), false);
      // failures: a missing attribute or object, a bad value, a bigint beyond 64 bits
      let e = expectCode(() => f.execSync([{ op: 'attrs', path: '/g' }, { op: 'deleteAttr', path: '/g', name: 'flag' }]), 'ERR_HDF5');
      assert.equal(e.opIndex, 1);
      e = expectCode(() => f.execSync([{ op: 'setAttr', path: '/nope', name: 'x', value: 1 }]), 'ERR_HDF5');
      assert.equal(e.opIndex, 0);
      assert.match(e.message, /\/nope/);
      assert.throws(() => exec1(f, { op: 'setAttr', path: '/g', name: 'x', value: { a: 1 } as never }), TypeError);
      assert.throws(() => exec1(f, { op: 'setAttr', path: '/g', name: 'x', value: [1, 2] as never }), TypeError);
      assert.throws(() => exec1(f, { op: 'setAttr', path: '/g', name: 'x', value: 2n ** 64n }), RangeError);
      assert.throws(() => exec1(f, { op: 'setAttr', path: '/g', name: '', value: 1 }), TypeError);
      assert.equal(attrMap(attrsOf(f, '/g')).has('x'), false);
    });
    const py = h5py(`
g = h5py.File(sys.argv[1], 'r')['g']
out([list(g.attrs), g.attrs['n'], g.attrs['big'], str(g.attrs['ubig']), g.attrs['name'], [x for x in g.attrs['list']], g.attrs['arr'], str(g.attrs['arr'].dtype), str(g.attrs['ubig'].dtype), bool(g.attrs['flag']) if 'flag' in g.attrs else None, str(g.attrs['i64'].dtype)])`, file);
    assert.deepEqual(py, [
      ['big', 'ubig', 'neg', 'name', 'empty', 'list', 'nolist', 'arr', 'f32', 'i64', 'u8', 'none', 'ключ', 'n'],
      2.5, 2 ** 62, String(2n ** 64n - 1n), 'ünïcode', ['a', 'β', ''], [1, -2, 3], 'int16', 'uint64', null, 'int64',
    ]);
  });

  test('attributes through H5Dataset and H5Group objects, sync and async', async () => {
    const file = fresh('obj-attrs');
    const f = File.openSync(file, 'w');
    f.execSync([{ op: 'createGroup', path: '/g' }, { op: 'createDataset', path: '/g/d', spec: { dtype: 'float64', shape: [2] } }]);
    const ds = f.openDatasetSync('/g/d');
    const g = f.openGroupSync('/g');
    assert.ok(g instanceof Group);
    assert.equal(g.path, '/g');
    assert.deepEqual(g.namesSync(), ['d']);
    assert.deepEqual(await g.names(), ['d']);
    ds.setAttrSync('units', 'm/s');
    await ds.setAttr('scale', 0.5);
    await ds.setAttr('units', 'km/h');
    g.setAttrSync('kind', 'trajectory');
    await g.setAttr('n', 3n);
    // (order is checked below; here only what is there)
    const sorted = (e: AttrEntry[]) => [...e].sort((x, y) => (x[0] < y[0] ? -1 : 1));
    assert.deepEqual(sorted(ds.attrsSync()), [['scale', 0.5], ['units', 'km/h']]);
    assert.deepEqual(sorted(await ds.attrs()), [['scale', 0.5], ['units', 'km/h']]);
    assert.deepEqual(await g.attrs(), [['kind', 'trajectory'], ['n', 3n]]);
    // the batch ops see the same attributes
    assert.deepEqual(sorted(attrsOf(f, '/g/d')), [['scale', 0.5], ['units', 'km/h']]);
    ds.deleteAttrSync('scale');
    await g.deleteAttr('kind');
    assert.deepEqual(ds.attrsSync(), [['units', 'km/h']]);
    assert.deepEqual(g.attrsSync(), [['n', 3n]]);
    expectCode(() => ds.deleteAttrSync('scale'), 'ERR_HDF5');
    await expectCodeAsync(g.deleteAttr('kind'), 'ERR_HDF5');
    await expectTypeError(() => ds.setAttr('', 1), 'empty name, async');
    await expectTypeError(() => g.setAttr('x', null as never), 'null value, async');
    assert.equal(f.openObjectCount(), 2);
    ds.closeSync();
    await g.close();
    assert.equal(f.openObjectCount(), 0);
    f.closeSync();
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([dict(f['g/d'].attrs), dict(f['g'].attrs)])`, file);
    assert.deepEqual(py, [{ units: 'km/h' }, { n: 3 }]);
  });

  test('attribute order: creation order where it is tracked, else name order (as h5py lists them)', () => {
    const file = fresh('attr-order');
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    d = f.create_dataset('d', data=np.arange(3))
    g = f.create_group('g')
    for k in ['b', 'c', 'a']:
        d.attrs[k] = 1
        g.attrs[k] = 1
    d.attrs['b'] = 2`, file);
    withFile(file, 'r+', (f) => {
      f.execSync([
        { op: 'createGroup', path: '/ours' },
        { op: 'createDataset', path: '/ours/d', spec: { dtype: 'int8', shape: [1] } },
        ...['b', 'c', 'a'].flatMap((k): FileOp[] => [
          { op: 'setAttr', path: '/ours', name: k, value: 1 },
          { op: 'setAttr', path: '/ours/d', name: k, value: 1 },
        ]),
        { op: 'setAttr', path: '/ours', name: 'c', value: 2 },
        { op: 'setAttr', path: '/ours/d', name: 'c', value: 2 },
        { op: 'setAttr', path: '/g', name: 'c', value: 2 },
      ]);
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([list(f[k].attrs) for k in ['d', 'g', 'ours/d']])`, file) as string[][];
    assert.deepEqual(py, [['a', 'b', 'c'], ['a', 'b', 'c'], ['a', 'b', 'c']]);
    withFile(file, 'r', (f) => {
      const names = (p: string) => attrsOf(f, p).map(([k]) => k);
      assert.deepEqual(names('/ours'), ['b', 'a', 'c'], 'our groups track creation order');
      assert.deepEqual([names('/d'), names('/g'), names('/ours/d')], py, 'untracked attributes come back in name order, as h5py lists them');
      const ds = f.openDatasetSync('/d');
      assert.deepEqual(ds.attrsSync().map(([k]) => k), ['a', 'b', 'c']);
      ds.closeSync();
    });
  });

  test('validate, then replace: a replacement that fails leaves the old value', async () => {
    // A file h5py wrote (no creation-order tracking, compact attribute storage): an attribute
    // larger than 64 KiB does not fit its object header, so creating the new value fails.
    const file = fresh('attr-replace');
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    f['d'] = np.arange(3.0)
    f['d'].attrs['a'] = 1.5
    f.attrs['s'] = 'old'`, file);
    const f = File.openSync(file, 'r+');
    // fails before anything is written: a NUL in a variable-length string
    let e = expectCode(() => f.execSync([{ op: 'setAttr', path: '/', name: 's', value: 'a\0b' }]), 'ERR_UNSUPPORTED_VALUE');
    assert.equal(e.opIndex, 0);
    e = expectCode(() => f.execSync([{ op: 'setAttr', path: '/', name: 's', value: ['ok', 'a\0b'] }]), 'ERR_UNSUPPORTED_VALUE');
    // fails in HDF5: the new value does not fit
    e = expectCode(() => f.execSync([{ op: 'setAttr', path: '/d', name: 'a', value: new Float64Array(20000) }]), 'ERR_HDF5');
    assert.ok(e.hdf5Stack.length > 0);
    const ds = f.openDatasetSync('/d');
    expectCode(() => ds.setAttrSync('a', new Float64Array(20000)), 'ERR_HDF5');
    await expectCodeAsync(ds.setAttr('a', new Float64Array(20000)), 'ERR_HDF5');
    // the binding's own temporary name is not for callers
    assert.throws(() => ds.setAttrSync('.checkpointer-pending-attr', 1), TypeError);
    assert.deepEqual(ds.attrsSync(), [['a', 1.5]]);
    assert.deepEqual(attrsOf(f, '/'), [['s', 'old']]);
    // a replacement that fits still works
    ds.setAttrSync('a', 'new');
    ds.closeSync();
    assert.equal(f.openObjectCount(), 0);
    f.closeSync();
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); out([dict(f['d'].attrs), dict(f.attrs)])`, file);
    assert.deepEqual(py, [{ a: 'new' }, { s: 'old' }], 'no temporary attribute left behind');
  });

  test('attributes h5py wrote: numpy scalars and arrays, empty, fixed-length strings, unsupported types', () => {
    const file = fresh('py-attrs');
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    a = f.attrs
    a['i4'] = np.int32(-5)
    a['u2'] = np.uint16(7)
    a['f4'] = np.float32(0.25)
    a['i8'] = np.int64(-3)
    a['b'] = np.bool_(True)
    a['c'] = np.complex128(1 - 2j)
    a['vec'] = np.arange(3, dtype='>f8')
    a['fixed'] = np.bytes_(b'abc')
    a['strs'] = np.array([b'x', b'yz'], dtype='S2')
    a['empty'] = h5py.Empty('f8')
    a['f16'] = np.float16(1)`, file);
    withFile(file, 'r', (f) => {
      const a = attrMap(attrsOf(f, '/'));
      assert.equal(a.get('i4'), -5);
      assert.equal(a.get('u2'), 7);
      assert.equal(a.get('f4'), 0.25);
      assert.equal(a.get('i8'), -3n);
      assert.equal(a.get('b'), true);
      assert.deepEqual(a.get('c'), Float64Array.of(1, -2));
      assert.deepEqual(a.get('vec'), Float64Array.of(0, 1, 2));
      assert.equal(a.get('fixed'), 'abc');
      assert.deepEqual(a.get('strs'), ['x', 'yz']);
      assert.equal(a.get('empty'), null);
      // float16 comes as packed elements of its type (lib/backends/hdf5-types decodes them)
      const f16 = a.get('f16') as { type: { class: string; dtype: string }; shape: number[]; data: Uint8Array };
      assert.deepEqual([f16.type.class, f16.type.dtype, f16.shape, [...f16.data]], ['number', 'float16', [], [0x00, 0x3c]]);
    });
  });
});

// -------------------------------------------------------------------------------- groups, batches

describe('groups, links and batches', () => {
  test('creation order is kept; lookup, list, move and delete', () => {
    const file = fresh('groups');
    withFile(file, 'w', (f) => {
      const names = ['zeta', 'alpha', 'mid', '_list_item_10', '_list_item_2'];
      f.execSync([{ op: 'createGroup', path: '/g' }, ...names.map((n): FileOp => ({ op: 'createGroup', path: `/g/${n}` }))]);
      exec1(f, { op: 'createDataset', path: '/g/alpha/d', spec: { dtype: 'uint8', shape: [1] } });
      assert.deepEqual(exec1(f, { op: 'list', path: '/g' }), names);
      assert.deepEqual(exec1(f, { op: 'list', path: '/' }), ['g']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/' }), []);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/g/alpha' }), ['group', 'group']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/g/alpha/d' }), ['group', 'group', 'dataset']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/g/nope' }), ['group']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/nope/deeper/still' }), []);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/g/alpha/d/under-a-dataset' }), ['group', 'group', 'dataset']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '//g///alpha/' }), ['group', 'group'], 'repeated slashes');
      f.execSync([{ op: 'delete', path: '/g/mid' }, { op: 'move', path: '/g/zeta', to: '/g/omega' }]);
      assert.deepEqual(exec1(f, { op: 'list', path: '/g' }), ['alpha', '_list_item_10', '_list_item_2', 'omega']);
      f.execSync([{ op: 'move', path: '/g/alpha/d', to: '/top' }]);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/top' }), ['dataset']);
      assert.deepEqual(exec1(f, { op: 'list', path: '/g/alpha' }), []);
      // failures
      expectCode(() => exec1(f, { op: 'createGroup', path: '/top/x' }), 'ERR_HDF5');
      expectCode(() => exec1(f, { op: 'createGroup', path: '/missing/parent' }), 'ERR_HDF5');
      expectCode(() => exec1(f, { op: 'createGroup', path: '/g' }), 'ERR_HDF5');
      expectCode(() => exec1(f, { op: 'move', path: '/g/omega', to: '/top' }), 'ERR_HDF5');
      expectCode(() => exec1(f, { op: 'move', path: '/g/gone', to: '/elsewhere' }), 'ERR_HDF5');
      expectCode(() => exec1(f, { op: 'delete', path: '/g/gone' }), 'ERR_HDF5');
      expectCode(() => exec1(f, { op: 'list', path: '/top' }), 'ERR_HDF5');
      assert.throws(() => exec1(f, { op: 'delete', path: '/' }), TypeError);
      assert.throws(() => exec1(f, { op: 'lookup', path: 'relative' }), TypeError);
      assert.throws(() => exec1(f, { op: 'move', path: '/g', to: 'relative' }), TypeError);
      assert.throws(() => exec1(f, { op: 'list', path: '/a\0b' }), TypeError);
      expectCode(() => f.openGroupSync('/top'), 'ERR_HDF5');
      expectCode(() => f.openDatasetSync('/g'), 'ERR_HDF5');
      expectCode(() => f.openDatasetSync('/none'), 'ERR_HDF5');
      assert.throws(() => f.openDatasetSync('top'), TypeError);
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r', track_order=True); out([list(f['g'].keys()), list(f.keys())])`, file);
    assert.deepEqual(py, [['alpha', '_list_item_10', '_list_item_2', 'omega'], ['g', 'top']]);
  });

  test('non-ASCII file paths, group and dataset names round trip (UTF-8 links)', () => {
    const file = path.join(tmp, `ü-файл-${counter++}.h5`);
    const names = ['ключ', '日本 🙂', 'a b', 'ß'];
    withFile(file, 'w', (f) => {
      f.execSync([
        { op: 'createGroup', path: `/${names[0]}` },
        ...names.map((n, i): FileOp => ({ op: 'createDataset', path: `/${names[0]}/${n}`, spec: { dtype: 'int8', shape: [1] }, data: Int8Array.of(i) })),
        { op: 'setAttr', path: `/${names[0]}`, name: names[1]!, value: names[2]! },
      ]);
      assert.equal(f.path, file);
      assert.deepEqual(exec1(f, { op: 'list', path: `/${names[0]}` }), names);
      assert.deepEqual(attrsOf(f, `/${names[0]}`), [[names[1], names[2]]]);
      const ds = f.openDatasetSync(`/${names[0]}/${names[1]}`);
      assert.equal(ds.path, `/${names[0]}/${names[1]}`);
      ds.closeSync();
    });
    const py = h5py(`f = h5py.File(sys.argv[1], 'r'); g = f['ключ']; out([list(g), [int(g[k][0]) for k in g], dict(g.attrs)])`, file);
    assert.deepEqual(py, [names, [0, 1, 2, 3], { [names[1]!]: names[2] }]);
  });

  test('groups without tracked order list by name (h5py default), through list, walk and H5Group', () => {
    const file = fresh('h5py-groups');
    h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    for n in ['b', 'c', 'a']: f.create_group('g/' + n)`, file);
    withFile(file, 'r', (f) => {
      assert.deepEqual(exec1(f, { op: 'list', path: '/g' }), ['a', 'b', 'c']);
      assert.deepEqual((walk(f, '/g') as Extract<WalkNode, { kind: 'group' }>).names, ['a', 'b', 'c']);
      const g = f.openGroupSync('/g');
      assert.deepEqual(g.namesSync(), ['a', 'b', 'c']);
      g.closeSync();
    });
  });

  test('walk: whole trees, inline budgets, and what is not a plain group or dataset', () => {
    const file = fresh('walk');
    h5py(`
with h5py.File(sys.argv[1], 'w', track_order=True) as f:
    g = f.create_group('g', track_order=True)
    g['a'] = np.arange(10, dtype='f8')
    g['b'] = np.arange(10, dtype='f8')
    g['c'] = np.arange(10, dtype='f8')
    g['s'] = 'text'
    f['soft'] = h5py.SoftLink('/g')
    f['dangling'] = h5py.SoftLink('/nowhere')
    f['ext'] = h5py.ExternalLink('other.h5', '/x')
    f['t'] = np.dtype('f8')
    f['loop'] = f['g']
    f['g/back'] = f['g']`, file);
    withFile(file, 'r', (f) => {
      assert.equal(walk(f, '/nope'), null);
      assert.equal(walk(f, '/g/a/below'), null);
      assert.equal(walk(f, '/nope/deeper'), null);
      // 80-byte datasets, at most 100 each, 150 in all: only the first comes with its data
      const g = exec1(f, { op: 'walk', path: '/g', inlineBytes: 100, inlineTotal: 150 }) as Extract<WalkNode, { kind: 'group' }>;
      assert.equal(g.kind, 'group');
      assert.deepEqual(g.names, ['a', 'b', 'c', 's', 'back']);
      const [a, b, c, s, back] = g.children as Extract<WalkNode, { kind: 'dataset' }>[];
      assert.deepEqual(Array.from(a!.data as Float64Array), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(b!.data, undefined);
      assert.equal(c!.data, undefined);
      assert.deepEqual(c!.info.shape, [10]);
      assert.deepEqual(s!.strings, ['text']);
      // g/back is g itself: a hard-link cycle is reported on that node, the rest is read
      const cycle = back as unknown as WalkNode;
      assert.equal(cycle.kind, 'error');
      const err = (cycle as Extract<WalkNode, { kind: 'error' }>).error;
      assert.ok(err instanceof CheckpointerError);
      assert.equal(err.code, 'ERR_UNSUPPORTED_VALUE');
      assert.match(err.message, /cycle/);
      const root = exec1(f, { op: 'walk', path: '/' }) as Extract<WalkNode, { kind: 'group' }>;
      const byName = new Map(root.names.map((n, i) => [n, root.children[i]]));
      assert.deepEqual([...byName.keys()], ['g', 'soft', 'dangling', 'ext', 't', 'loop']);
      assert.equal(byName.get('soft')?.kind, 'group', 'a soft link to a group is followed');
      // Links that lead to no object of this file say where they are and where they point.
      const dangling = { kind: 'link', linkType: 'soft', link: '/dangling', target: '/nowhere' };
      const ext = { kind: 'link', linkType: 'external', link: '/ext', target: '/x', file: 'other.h5' };
      assert.deepEqual(byName.get('dangling'), dangling);
      assert.deepEqual(byName.get('ext'), ext);
      assert.deepEqual(byName.get('t'), { kind: 'link', linkType: 'datatype', link: '/t' });
      assert.deepEqual(walk(f, '/dangling'), dangling);
      assert.deepEqual(walk(f, '/ext'), ext);
      assert.deepEqual(walk(f, '/t'), { kind: 'link', linkType: 'datatype', link: '/t' });
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/dangling' }), ['dangling']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/ext/x' }), ['external']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/soft/a' }), ['group', 'dataset']);
      assert.deepEqual(exec1(f, { op: 'lookup', path: '/t' }), ['datatype']);
      // a walk of a dataset is its node
      assert.equal(walk(f, '/g/c')?.kind, 'dataset');
    });
  });

  test('a failing batch: the ops before it ran, it and the ones after did not; opIndex says which', async () => {
    const file = fresh('batch');
    const f = File.openSync(file, 'w');
    let e = expectCode(() => f.execSync([
      { op: 'createGroup', path: '/a' },
      { op: 'createGroup', path: '/a' },
      { op: 'createGroup', path: '/b' },
    ]), 'ERR_HDF5');
    assert.equal(e.opIndex, 1);
    assert.equal(e.file, file);
    assert.ok(e.hdf5Stack.length > 0 && e.hdf5Minors.length === e.hdf5Stack.length);
    assert.deepEqual(exec1(f, { op: 'list', path: '/' }), ['a']);
    e = await expectCodeAsync(f.exec([{ op: 'createGroup', path: '/c' }, { op: 'read', path: '/zzz', out: new Float64Array(1) }, { op: 'createGroup', path: '/d' }]), 'ERR_HDF5');
    assert.equal(e.opIndex, 1);
    assert.deepEqual(exec1(f, { op: 'list', path: '/' }), ['a', 'c']);
    // a batch that does not parse runs nothing, and the async twin rejects instead of throwing
    assert.throws(() => f.execSync([{ op: 'createGroup', path: '/e' }, { op: 'bogus', path: '/x' } as never]), TypeError);
    assert.throws(() => f.execSync([{ op: 'createGroup', path: '/e' }, { op: 'createDataset', path: '/x', spec: { dtype: 'int32', shape: [1] }, data: 'no' as never }]), TypeError);
    assert.throws(() => f.execSync('ops' as never), TypeError);
    assert.throws(() => f.execSync([null as never]), TypeError);
    assert.throws(() => f.execSync([{ op: 'createGroup' } as never]), TypeError);
    await expectTypeError(() => f.exec([{ op: 'createGroup', path: '/e' }, { op: 'bogus', path: '/x' } as never]), 'async bad op');
    assert.deepEqual(exec1(f, { op: 'list', path: '/' }), ['a', 'c']);
    assert.deepEqual(f.execSync([]), []);
    assert.deepEqual(await f.exec([]), []);
    assert.equal(f.openObjectCount(), 0);
    f.closeSync();
  });

  test('a createDataset whose data does not fit fails without creating the dataset', () => {
    withFile(fresh('batch-data'), 'w', (f) => {
      assert.throws(() => f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [3] }, data: new Float64Array(2) }]), RangeError);
      assert.throws(() => f.execSync([{ op: 'createDataset', path: '/y', spec: { dtype: 'float64', shape: [3] }, data: new Float32Array(3) }]), TypeError);
      assert.deepEqual(exec1(f, { op: 'list', path: '/' }), [], 'the failed ops left datasets behind');
    });
  });

  test('an argument error raised while a batch runs still says which op failed (opIndex)', () => {
    withFile(fresh('batch-index'), 'w', (f) => {
      let err: (Error & { opIndex?: number }) | null = null;
      try {
        f.execSync([{ op: 'createGroup', path: '/g' }, { op: 'createStrings', path: '/g/s', strings: ['a'], shape: [2] }]);
      } catch (e) {
        err = e as Error & { opIndex?: number };
      }
      assert.ok(err instanceof RangeError, String(err));
      assert.equal((err as RangeError & { opIndex?: number }).opIndex, 1, 'opIndex of a RangeError from op 1');
    });
  });
});

// ----------------------------------------------------------------------------- files h5py wrote

describe('files written by h5py', () => {
  const file = path.join(tmp, 'from-h5py.h5');
  const expected = h5py(`
rng = np.arange(60, dtype='f8').reshape(12, 5) * 1.25
with h5py.File(sys.argv[1], 'w') as f:
    f['contig'] = rng
    f.create_dataset('chunked', data=rng, chunks=(5, 5), maxshape=(None, 5))
    f.create_dataset('gzip', data=rng, chunks=(4, 5), compression='gzip', compression_opts=9, shuffle=True)
    f.create_dataset('lzf', data=rng, chunks=(4, 5), compression='lzf')
    f['be_f8'] = rng.astype('>f8')
    f['be_i4'] = np.arange(-5, 5, dtype='>i4')
    f['be_i8'] = np.array([-(2**62), 2**62 + 3], dtype='>i8')
    f['be_u2'] = np.array([1, 65535], dtype='>u2')
    f['be_c16'] = np.array([1+2j, -3.5j], dtype='>c16')
    f['c8'] = np.array([1+2j, -3.5j], dtype='c8')
    f['bools'] = np.array([True, False, True])
    f['fixed'] = np.array([b'abc', b'de', b''], dtype='S5')
    f['vlen_ascii'] = np.array([b'x', b'yz'], dtype=h5py.string_dtype('ascii'))
    f['vlen_utf8'] = np.array(['añb', 'ç'], dtype=h5py.string_dtype('utf-8'))
    f['scalar_str'] = 'naïve'
    f['fixed_utf8'] = np.array('añ'.encode(), dtype=h5py.string_dtype('utf-8', 8))
    f['void'] = np.void(b'\\x00\\x01pickle')
    f['sbytes'] = np.bytes_(b'ab\\x00c\\x00')
    f['f16'] = np.array([1, 2], dtype='f2')
    f['pair'] = np.array([(1, 2.0)], dtype=[('a', 'i4'), ('b', 'f8')])
    f.create_dataset('regref', (2,), dtype=h5py.regionref_dtype)
    f['empty'] = h5py.Empty('f8')
out(rng.ravel().tolist())`, file) as number[];

  test('contiguous, chunked, gzip- and lzf-compressed, big-endian float64', () => {
    withFile(file, 'r', (f) => {
      for (const name of ['contig', 'chunked', 'gzip', 'be_f8']) {
        const node = datasetNode(f, `/${name}`);
        assert.equal(node.info.dtype, 'float64', name);
        assert.deepEqual(node.info.shape, [12, 5]);
        assert.deepEqual(Array.from(node.data as Float64Array), expected, `${name} walked`);
        assert.deepEqual(Array.from(readAll(f, `/${name}`, 'float64', 60) as Float64Array), expected, `${name} read op`);
        const ds = f.openDatasetSync(`/${name}`);
        const rows = new Float64Array(10);
        ds.readSync(rows, hyperslab([3, 0], [1, 1], [2, 5]));
        assert.deepEqual(Array.from(rows), expected.slice(15, 25));
        const col = new Float64Array(4);
        ds.readSync(col, hyperslab([1, 4], [3, 1], [4, 1]));
        assert.deepEqual(Array.from(col), [1, 4, 7, 10].map((r) => expected[r * 5 + 4]));
        ds.closeSync();
      }
      assert.deepEqual(infoOf(f, '/chunked').maxshape, [null, 5]);
      assert.deepEqual(infoOf(f, '/chunked').chunks, [5, 5]);
      assert.deepEqual(infoOf(f, '/gzip').filters, { compression: 'gzip', level: 9, shuffle: true, other: 0 });
      // lzf is h5py's own filter, not in libhdf5: reported, and reading it is an HDF5 error
      const lzf = infoOf(f, '/lzf');
      assert.equal(lzf.filters.other, 1);
      assert.equal(lzf.dtype, 'float64');
      const e = expectCode(() => readAll(f, '/lzf', 'float64', 60), 'ERR_HDF5');
      assert.ok(e.hdf5Stack.some((m) => /lzf/.test(m)), e.hdf5Stack.join(' | '));
      const tree = walk(f, '/') as Extract<WalkNode, { kind: 'group' }>;
      const lzfNode = tree.children[tree.names.indexOf('lzf')]!;
      assert.equal(lzfNode.kind, 'error');
      assert.equal((lzfNode as Extract<WalkNode, { kind: 'error' }>).error.code, 'ERR_HDF5');
      assert.equal(tree.children[tree.names.indexOf('gzip')]?.kind, 'dataset');
    });
  });

  test('big-endian numbers, complex and bool', () => {
    withFile(file, 'r', (f) => {
      assert.deepEqual(Array.from(readAll(f, '/be_i4', 'int32', 10) as Int32Array), [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]);
      assert.deepEqual(Array.from(readAll(f, '/be_i8', 'int64', 2) as BigInt64Array), [-(2n ** 62n), 2n ** 62n + 3n]);
      assert.deepEqual(Array.from(readAll(f, '/be_u2', 'uint16', 2) as Uint16Array), [1, 65535]);
      assert.equal(infoOf(f, '/be_c16').dtype, 'complex128');
      assert.deepEqual(Array.from(readAll(f, '/be_c16', 'complex128', 2) as Float64Array, (x) => x + 0), [1, 2, 0, -3.5]);
      assert.equal(infoOf(f, '/c8').dtype, 'complex64');
      assert.deepEqual(Array.from(datasetNode(f, '/c8').data as Float32Array, (x) => x + 0), [1, 2, 0, -3.5]);
      assert.equal(infoOf(f, '/bools').dtype, 'bool');
      assert.deepEqual(Array.from(readAll(f, '/bools', 'bool', 3) as Uint8Array), [1, 0, 1]);
      const ds = f.openDatasetSync('/be_i4');
      const odd = new Int32Array(5);
      ds.readSync(odd, hyperslab([1], [2], [5]));
      assert.deepEqual(Array.from(odd), [-4, -2, 0, 2, 4]);
      assert.throws(() => ds.readSync(new Uint32Array(10)), TypeError, 'the wrong TypedArray for int32');
      ds.closeSync();
    });
  });

  test('fixed- and variable-length strings, bytes, empty', () => {
    withFile(file, 'r', (f) => {
      assert.deepEqual(stringsOf(f, '/fixed'), ['abc', 'de', '']);
      assert.deepEqual(infoOf(f, '/fixed').stringType, { variable: false, length: 5, utf8: false });
      assert.deepEqual(stringsOf(f, '/vlen_ascii'), ['x', 'yz']);
      assert.deepEqual(infoOf(f, '/vlen_ascii').stringType, { variable: true, length: 0, utf8: false });
      assert.deepEqual(stringsOf(f, '/vlen_utf8'), ['añb', 'ç']);
      assert.deepEqual(stringsOf(f, '/scalar_str'), ['naïve']);
      assert.deepEqual(stringsOf(f, '/fixed_utf8'), ['añ']);
      assert.deepEqual(stringsOf(f, '/sbytes'), ['ab\0c']);
      const v = infoOf(f, '/void');
      assert.equal(v.opaque, true);
      assert.equal(v.dtype, 'packed');
      assert.deepEqual(v.type, { class: 'opaque', size: 8, dims: [], tag: '' });
      assert.deepEqual(Array.from(readAll(f, '/void', 'uint8', 8) as Uint8Array), [0, 1, ...Buffer.from('pickle')]);
      const empty = datasetNode(f, '/empty');
      assert.equal(empty.info.isNull, true);
      assert.equal(empty.info.dtype, 'float64');
    });
  });

  test('float16 and compound types are described; unsupported ones are reported by walk and refused by reads (ERR_UNSUPPORTED_DTYPE naming the type)', () => {
    withFile(file, 'r', (f) => {
      const f16 = infoOf(f, '/f16');
      assert.equal(f16.dtype, 'float16');
      assert.deepEqual(Array.from(readAll(f, '/f16', 'uint16', 2) as Uint16Array), [0x3c00, 0x4000]); // binary16 bits
      const pair = infoOf(f, '/pair');
      assert.equal(pair.dtype, 'packed');
      assert.deepEqual(pair.type, {
        class: 'compound', size: 12, dims: [], fields: [
          { name: 'a', offset: 0, type: { class: 'number', size: 4, dims: [], dtype: 'int32' } },
          { name: 'b', offset: 4, type: { class: 'number', size: 8, dims: [], dtype: 'float64' } },
        ],
      });
      const packed = new Uint8Array(12);
      exec1(f, { op: 'read', path: '/pair', out: packed });
      const view = new DataView(packed.buffer);
      assert.deepEqual([view.getInt32(0, true), view.getFloat64(4, true)], [1, 2]);
      const reg = infoOf(f, '/regref');
      assert.equal(reg.dtype, null);
      assert.match(reg.unsupported ?? '', /regref holds HDF5 region references/);
      // the whole tree still walks
      const root = walk(f, '/') as Extract<WalkNode, { kind: 'group' }>;
      assert.equal(root.children.length, root.names.length);
      const e = expectCode(() => f.execSync([{ op: 'lookup', path: '/' }, { op: 'read', path: '/regref', out: new Uint8Array(24) }]), 'ERR_UNSUPPORTED_DTYPE');
      assert.equal(e.opIndex, 1);
      assert.throws(() => f.execSync([{ op: 'read', path: '/pair', out: new Float64Array(2) }]), TypeError, 'packed records are read as bytes');
      const ds = f.openDatasetSync('/regref');
      assert.equal(ds.info.dtype, null);
      expectCode(() => ds.readSync(new Uint8Array(24)), 'ERR_UNSUPPORTED_DTYPE');
      ds.closeSync();
    });
  });

  test('McUtils fixture opens read-only and is left unchanged', { skip: !fs.existsSync('/work/shared/fixtures/mcutils/mcutils.hdf5') && 'no fixture' }, () => {
    const fixture = '/work/shared/fixtures/mcutils/mcutils.hdf5';
    const before = fs.readFileSync(fixture);
    withFile(fixture, 'r', (f) => {
      assert.equal(f.writable, false);
      assert.equal(infoOf(f, '/nothing').isNull, true);
      assert.equal(infoOf(f, '/amps').dtype, 'complex128');
      assert.equal(infoOf(f, '/converged').dtype, 'bool');
      assert.equal(infoOf(f, '/holder/class/pickle_data').stringType?.length, 60);
      // McUtils stores the class pickle as base64 text in a fixed-length numpy S string.
      const [b64] = stringsOf(f, '/holder/class/pickle_data')!;
      const pickle = Buffer.from(b64 as string, 'base64');
      assert.equal(pickle[0], 0x80); // pickle PROTO opcode
      assert.equal(pickle[pickle.length - 1], 0x2e); // STOP
      const root = walk(f, '/') as Extract<WalkNode, { kind: 'group' }>;
      assert.equal(root.kind, 'group');
      assert.ok(!JSON.stringify(root, (_k, v: unknown) => (ArrayBuffer.isView(v) ? null : v)).includes('"kind":"error"'));
      expectCode(() => exec1(f, { op: 'createGroup', path: '/new' }), 'ERR_NOT_WRITABLE');
    });
    assert.ok(fs.readFileSync(fixture).equals(before));
  });
});

// ------------------------------------------------------------------------------- open failures

/** Opens through lib/backends/hdf5-calls.ts, as the package does: failures come classified. */
const openClassified = (p: string, mode: OpenMode): H5File => runSync(openFile(p, mode));
const openClassifiedAsync = (p: string, mode: OpenMode): Promise<H5File> => runAsync(openFile(p, mode));

describe('opening: raw facts from the addon, classified by openFile', () => {
  test('H5File.openSync reports facts: ERR_HDF5 with the HDF5 stack, ERR_IO with errno and subject', async () => {
    const junk = fresh('junk');
    fs.writeFileSync(junk, 'this is not an HDF5 file\n'.repeat(100));
    let e = expectCode(() => File.openSync(junk, 'r'), 'ERR_HDF5');
    assert.ok(e.hdf5Stack.length > 0);
    assert.equal(e.hdf5Minors.length, e.hdf5Stack.length);
    assert.ok(e.hdf5Minors.includes('Not an HDF5 file'), e.hdf5Minors.join(' | '));
    e = await expectCodeAsync(File.open(junk, 'r+'), 'ERR_HDF5');
    assert.ok(e.hdf5Stack.length > 0);
    e = expectCode(() => File.openSync(path.join(tmp, 'no-such-dir', 'x.h5'), 'w'), 'ERR_IO');
    assert.equal(e.sysCode, 'ENOENT');
    assert.equal(e.subject, 'directory');
    e = expectCode(() => File.openSync(path.join(tmp, 'missing.h5'), 'r'), 'ERR_IO');
    assert.equal(e.sysCode, 'ENOENT');
    assert.equal(e.subject, 'file');
    const existing = fresh();
    withFile(existing, 'w', () => undefined);
    e = expectCode(() => File.openSync(existing, 'x'), 'ERR_IO');
    assert.equal(e.sysCode, 'EEXIST');
    e = expectCode(() => File.openSync(tmp, 'r'), 'ERR_IO');
    assert.equal(e.sysCode, 'EISDIR');
    assert.throws(() => File.openSync(existing, 'a' as never), TypeError);
    assert.throws(() => File.openSync('', 'r'), TypeError);
    assert.throws(() => File.openSync(1 as never, 'r'), TypeError);
    await expectTypeError(() => File.open(existing, 'rw' as never), 'async bad mode');
    // isHDF5 looks at the signature only
    assert.equal(File.isHDF5(existing), true);
    assert.equal(File.isHDF5(junk), false);
    assert.equal(File.isHDF5(path.join(tmp, 'missing.h5')), false);
    assert.equal(File.isHDF5(tmp), false);
  });

  test('not HDF5 / truncated (r, r+) / empty (r) → ERR_CHECKPOINT_CORRUPT, file untouched, sync and async', async () => {
    const junk = fresh('junk');
    fs.writeFileSync(junk, 'this is not an HDF5 file\n'.repeat(100));
    const good = fresh('good');
    withFile(good, 'w', (f) => {
      f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [4096] }, data: new Float64Array(4096).fill(1) }]);
    });
    const whole = fs.readFileSync(good);
    const truncated = fresh('truncated');
    fs.writeFileSync(truncated, whole.subarray(0, whole.length >> 1));
    const empty = fresh('empty');
    fs.writeFileSync(empty, '');
    for (const file of [junk, truncated, empty]) {
      const before = fs.readFileSync(file);
      for (const mode of file === empty ? ['r'] as const : ['r', 'r+'] as const) {
        const e = expectCode(() => openClassified(file, mode), 'ERR_CHECKPOINT_CORRUPT');
        assert.equal(e.file, file);
        assert.ok(Array.isArray(e.hdf5Stack) && e.hdf5Stack.length > 0);
        assert.ok(e.cause instanceof CheckpointerError && (e.cause as CheckpointerError).code === 'ERR_HDF5');
        await expectCodeAsync(openClassifiedAsync(file, mode), 'ERR_CHECKPOINT_CORRUPT');
      }
      assert.ok(fs.readFileSync(file).equals(before), 'file bytes changed');
    }
    // 'w' replaces a damaged file, as h5py does
    withFile(junk, 'w', () => undefined);
    assert.equal(File.isHDF5(junk), true);
  });

  test('an empty (0-byte) file opened with r+ is refused as ERR_CHECKPOINT_CORRUPT and left empty', async () => {
    const empty = fresh('empty-rw');
    fs.writeFileSync(empty, '');
    let opened: H5File | null = null;
    try {
      opened = openClassified(empty, 'r+');
    } catch (err) {
      assert.ok(err instanceof CheckpointerError && err.code === 'ERR_CHECKPOINT_CORRUPT', String(err));
    }
    const size = fs.statSync(empty).size;
    opened?.closeSync();
    assert.equal(opened, null, 'opened an empty file as an HDF5 file');
    assert.equal(size, 0, 'opening wrote to the file');
    await expectCodeAsync(openClassifiedAsync(empty, 'r+'), 'ERR_CHECKPOINT_CORRUPT');
    assert.equal(fs.statSync(empty).size, 0);
  });

  test('missing directory → ERR_NOT_WRITABLE; missing file / existing for x / a directory → ERR_IO', async () => {
    for (const mode of ['w', 'x'] as const) {
      const e = expectCode(() => openClassified(path.join(tmp, 'no-such-dir', 'x.h5'), mode), 'ERR_NOT_WRITABLE');
      assert.equal(e.sysCode, 'ENOENT');
      await expectCodeAsync(openClassifiedAsync(path.join(tmp, 'no-such-dir', 'x.h5'), mode), 'ERR_NOT_WRITABLE');
    }
    const notDir = fresh('plain-file');
    fs.writeFileSync(notDir, 'x');
    expectCode(() => openClassified(path.join(notDir, 'x.h5'), 'w'), 'ERR_NOT_WRITABLE');
    assert.equal(expectCode(() => openClassified(path.join(tmp, 'missing.h5'), 'r'), 'ERR_IO').sysCode, 'ENOENT');
    assert.equal(expectCode(() => openClassified(path.join(tmp, 'no-such-dir', 'x.h5'), 'r+'), 'ERR_IO').sysCode, 'ENOENT');
    const existing = fresh();
    withFile(existing, 'w', () => undefined);
    assert.equal(expectCode(() => openClassified(existing, 'x'), 'ERR_IO').sysCode, 'EEXIST');
    assert.equal(expectCode(() => openClassified(tmp, 'r'), 'ERR_IO').sysCode, 'EISDIR');
    // classifyOpenFailure passes through what it does not classify
    const plainErr = new Error('x');
    assert.equal(classifyOpenFailure(plainErr, existing, 'r'), plainErr);
    const closed = new CheckpointerError('closed', { code: 'ERR_CLOSED' });
    assert.equal(classifyOpenFailure(closed, existing, 'r'), closed);
  });

  test('read-only: a file opened with r refuses every change with ERR_NOT_WRITABLE', async () => {
    const file = fresh('ro');
    withFile(file, 'w', (f) => {
      f.execSync([
        { op: 'createGroup', path: '/g' },
        { op: 'createDataset', path: '/d', spec: { dtype: 'int32', shape: [2], maxshape: [null], chunks: [2] }, data: Int32Array.of(1, 2) },
        { op: 'setAttr', path: '/d', name: 'a', value: 1 },
      ]);
    });
    const before = fs.readFileSync(file);
    const f = File.openSync(file, 'r');
    assert.equal(f.writable, false);
    const changes: FileOp[] = [
      { op: 'createGroup', path: '/h' },
      { op: 'createDataset', path: '/e', spec: { dtype: 'int32', shape: [1] } },
      { op: 'createStrings', path: '/s', strings: ['a'], shape: [] },
      { op: 'createBytes', path: '/b', bytes: Uint8Array.of(1), layout: 'uint8' },
      { op: 'createNull', path: '/n' },
      { op: 'move', path: '/g', to: '/g2' },
      { op: 'delete', path: '/g' },
      { op: 'setAttr', path: '/d', name: 'a', value: 2 },
      { op: 'deleteAttr', path: '/d', name: 'a' },
    ];
    for (const op of changes) {
      const e = expectCode(() => f.execSync([{ op: 'lookup', path: '/' }, op]), 'ERR_NOT_WRITABLE');
      assert.equal(e.opIndex, 1, op.op);
      await expectCodeAsync(f.exec([op]), 'ERR_NOT_WRITABLE');
    }
    const ds = f.openDatasetSync('/d');
    expectCode(() => ds.writeSync(Int32Array.of(3, 4)), 'ERR_NOT_WRITABLE');
    await expectCodeAsync(ds.write(Int32Array.of(3, 4)), 'ERR_NOT_WRITABLE');
    expectCode(() => ds.resizeSync([4]), 'ERR_NOT_WRITABLE');
    expectCode(() => ds.setAttrSync('a', 2), 'ERR_NOT_WRITABLE');
    await expectCodeAsync(ds.deleteAttr('a'), 'ERR_NOT_WRITABLE');
    const g = f.openGroupSync('/g');
    expectCode(() => g.setAttrSync('x', 1), 'ERR_NOT_WRITABLE');
    g.closeSync();
    const back = new Int32Array(2);
    ds.readSync(back);
    assert.deepEqual(Array.from(back), [1, 2]);
    ds.closeSync();
    f.closeSync();
    assert.ok(fs.readFileSync(file).equals(before), 'a read-only open changed the file');
  });

  test('permission denied → ERR_NOT_WRITABLE (as an unprivileged user)', { skip: process.getuid?.() !== 0 && 'needs root to switch user' }, (t) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ro-'));
    const roFile = path.join(tmp, `ro-file-${counter++}.h5`);
    withFile(roFile, 'w', () => undefined);
    fs.chmodSync(roFile, 0o444);
    fs.chmodSync(tmp, 0o755);
    fs.chmodSync(dir, 0o555);
    const r = runChild('perm', `
      const { runSync, openFile } = require(${JSON.stringify(CALLS_JS)});
      const out = [];
      for (const [p, mode] of [[process.argv[2] + '/x.h5', 'w'], [process.argv[2] + '/x.h5', 'x'], [process.argv[3], 'r+'], [process.argv[3], 'w']]) {
        try { runSync(openFile(p, mode)).closeSync(); out.push('opened'); } catch (e) { out.push(e.code + ' ' + e.sysCode); }
      }
      const f = runSync(openFile(process.argv[3], 'r')); out.push(f.writable); f.closeSync();
      console.log(JSON.stringify(out));`, [dir, roFile], { uid: 65534, gid: 65534 });
    // The unprivileged user cannot run this Node (e.g. one under root's home) or read the test tree.
    if (r.error || (r.status !== 0 && /EACCES|permission/i.test(r.stderr))) {
      t.skip(`user 65534 cannot run ${process.execPath} or read the test tree`);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['ERR_NOT_WRITABLE EACCES', 'ERR_NOT_WRITABLE EACCES', 'ERR_NOT_WRITABLE EACCES', 'ERR_NOT_WRITABLE EACCES', false]);
  });

  test('a file another process holds open for writing → ERR_LOCKED, and w does not truncate it', async () => {
    const file = fresh('locked');
    withFile(file, 'w', (f) => exec1(f, { op: 'createDataset', path: '/x', spec: { dtype: 'int32', shape: [3] }, data: Int32Array.of(1, 2, 3) }));
    const holder = spawn(PYTHON, ['-c', `
import h5py, sys
f = h5py.File(sys.argv[1], 'r+')
print('ready', flush=True)
sys.stdin.read()`, file], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => resolve());
        holder.once('exit', () => reject(new Error('holder exited')));
      });
      const before = fs.readFileSync(file);
      for (const mode of ['r', 'r+', 'w'] as const) {
        const e = expectCode(() => openClassified(file, mode), 'ERR_LOCKED');
        assert.equal(e.file, file);
        await expectCodeAsync(openClassifiedAsync(file, mode), 'ERR_LOCKED');
      }
      // the raw addon reports HDF5's words for it
      const raw = expectCode(() => File.openSync(file, 'r+'), 'ERR_HDF5');
      assert.ok(raw.hdf5Minors.some((m) => /unable to lock file/i.test(m)), raw.hdf5Minors.join(' | '));
      assert.ok(fs.readFileSync(file).equals(before), 'a refused open changed the file');
    } finally {
      holder.stdin.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    withFile(file, 'r+', (f) => assert.deepEqual(Array.from(readAll(f, '/x', 'int32', 3) as Int32Array), [1, 2, 3]));
  });

  test('a file this process has open read-only cannot be reopened for writing → ERR_LOCKED', () => {
    const file = fresh('self-locked');
    withFile(file, 'w', () => undefined);
    const r = File.openSync(file, 'r');
    try {
      expectCode(() => openClassified(file, 'r+'), 'ERR_LOCKED');
      expectCode(() => openClassified(file, 'w'), 'ERR_LOCKED');
      openClassified(file, 'r').closeSync();
    } finally {
      r.closeSync();
    }
    openClassified(file, 'r+').closeSync();
  });

  test('HDF5 failures → ERR_HDF5 with hdf5Stack; nothing printed on stderr (sync, async, worker thread)', () => {
    const file = fresh();
    withFile(file, 'w', (f) => exec1(f, { op: 'createGroup', path: '/g' }));
    withFile(file, 'r', (f) => {
      const e = expectCode(() => exec1(f, { op: 'read', path: '/g/missing', out: new Float64Array(1) }), 'ERR_HDF5');
      assert.ok(e.hdf5Stack.length > 0);
      assert.match(e.hdf5Stack.join('\n'), /H5Dopen2/);
      assert.match(e.message, /\/g\/missing/);
      expectCode(() => exec1(f, { op: 'createGroup', path: '/h' }), 'ERR_NOT_WRITABLE');
    });
    const r = runChild('quiet', `
      const { Worker, isMainThread, parentPort } = require('worker_threads');
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      const calls = require(${JSON.stringify(CALLS_JS)});
      const file = process.argv[2] || require('worker_threads').workerData;
      const fs = require('fs');
      async function run() {
        const codes = [];
        const f = n.H5File.openSync(file, 'r');
        try { f.execSync([{ op: 'read', path: '/nope', out: new Float64Array(1) }]); } catch (e) { codes.push(e.code); }
        try { f.openDatasetSync('/g'); } catch (e) { codes.push(e.code); }
        try { calls.runSync(calls.openFile(file + '.junk', 'r')); } catch (e) { codes.push(e.code); }
        try { await f.exec([{ op: 'attrs', path: '/nope' }]); } catch (e) { codes.push(e.code); }
        try { await f.openGroup('/nope'); } catch (e) { codes.push(e.code); }
        try { await calls.runAsync(calls.openFile(file + '.junk', 'r+')); } catch (e) { codes.push(e.code); }
        await f.close();
        return codes.join(',');
      }
      if (isMainThread) {
        fs.writeFileSync(file + '.junk', 'junk');
        run().then((main) => {
          const w = new Worker(__filename, { workerData: file });
          w.on('message', (m) => console.log(main + '|' + m));
        });
      } else {
        run().then((codes) => parentPort.postMessage(codes));
      }`, [file]);
    assert.equal(r.status, 0, r.stderr);
    const expected = 'ERR_HDF5,ERR_HDF5,ERR_CHECKPOINT_CORRUPT,ERR_HDF5,ERR_HDF5,ERR_CHECKPOINT_CORRUPT';
    assert.equal(r.stdout.trim(), `${expected}|${expected}`);
    assert.equal(r.stderr, '');
  });
});

// ------------------------------------------------------------------------------- handle hygiene

describe('handle hygiene', () => {
  test('a closed file → ERR_CLOSED for every call, sync and async; closing twice is fine', async () => {
    const f = File.openSync(fresh(), 'w');
    assert.equal(f.isOpen, true);
    f.closeSync();
    f.closeSync();
    await f.close();
    assert.equal(f.isOpen, false);
    expectCode(() => f.execSync([{ op: 'list', path: '/' }]), 'ERR_CLOSED');
    expectCode(() => f.openDatasetSync('/x'), 'ERR_CLOSED');
    expectCode(() => f.openGroupSync('/'), 'ERR_CLOSED');
    expectCode(() => f.flushSync(), 'ERR_CLOSED');
    expectCode(() => f.openObjectCount(), 'ERR_CLOSED');
    await expectCodeAsync(f.exec([{ op: 'read', path: '/x', out: new Float64Array(1) }]), 'ERR_CLOSED');
    await expectCodeAsync(f.openDataset('/x'), 'ERR_CLOSED');
    await expectCodeAsync(f.openGroup('/'), 'ERR_CLOSED');
    await expectCodeAsync(f.flush(), 'ERR_CLOSED');
  });

  test('closing the file closes its datasets and groups: their calls are ERR_CLOSED, nothing crashes', async () => {
    const file = fresh('close-children');
    const f = File.openSync(file, 'w');
    f.execSync([
      { op: 'createGroup', path: '/g' },
      { op: 'createDataset', path: '/g/d', spec: { dtype: 'float64', shape: [4], maxshape: [null], chunks: [4] }, data: Float64Array.of(1, 2, 3, 4) },
    ]);
    const ds = f.openDatasetSync('/g/d');
    const ds2 = await f.openDataset('/g/d');
    const g = f.openGroupSync('/g');
    const root = await f.openGroup('/');
    assert.equal(f.openObjectCount(), 4);
    await f.close();
    for (const o of [ds, ds2, g, root]) assert.equal(o.isOpen, false, o.path);
    // what was read at open stays readable
    assert.equal(ds.path, '/g/d');
    assert.deepEqual(ds.info.shape, [4]);
    const out = new Float64Array(4);
    expectCode(() => ds.readSync(out), 'ERR_CLOSED');
    expectCode(() => ds.writeSync(out), 'ERR_CLOSED');
    expectCode(() => ds.resizeSync([8]), 'ERR_CLOSED');
    expectCode(() => ds.extentSync(), 'ERR_CLOSED');
    expectCode(() => ds.attrsSync(), 'ERR_CLOSED');
    expectCode(() => ds.setAttrSync('a', 1), 'ERR_CLOSED');
    expectCode(() => ds.deleteAttrSync('a'), 'ERR_CLOSED');
    await expectCodeAsync(ds.read(out), 'ERR_CLOSED');
    await expectCodeAsync(ds2.write(out, hyperslab([0], [1], [4])), 'ERR_CLOSED');
    await expectCodeAsync(ds2.resize([8]), 'ERR_CLOSED');
    await expectCodeAsync(ds2.extent(), 'ERR_CLOSED');
    await expectCodeAsync(ds2.attrs(), 'ERR_CLOSED');
    expectCode(() => g.namesSync(), 'ERR_CLOSED');
    expectCode(() => g.attrsSync(), 'ERR_CLOSED');
    await expectCodeAsync(root.names(), 'ERR_CLOSED');
    await expectCodeAsync(root.setAttr('x', 1), 'ERR_CLOSED');
    // closing them now is a no-op
    ds.closeSync();
    await ds2.close();
    g.closeSync();
    await root.close();
    // the file is really closed: it can be recreated
    withFile(file, 'w', () => undefined);
  });

  test('calls queued after an async close reject with ERR_CLOSED, in order', async () => {
    const f = File.openSync(fresh('queued-close'), 'w');
    exec1(f, { op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [4] } });
    const ds = f.openDatasetSync('/x');
    const before = ds.write(Float64Array.of(1, 2, 3, 4));
    const closing = f.close();
    const after = [
      ds.read(new Float64Array(4)),
      ds.extent(),
      f.exec([{ op: 'list', path: '/' }]),
      f.openDataset('/x'),
      f.openGroup('/'),
    ];
    await before;
    await closing;
    for (const p of after) await expectCodeAsync(p, 'ERR_CLOSED');
    assert.equal(ds.isOpen, false);
  });

  test('two H5Dataset objects of one dataset: a resize through one is seen by the other (extent, not info)', () => {
    withFile(fresh('two-handles'), 'w', (f) => {
      exec1(f, { op: 'createDataset', path: '/x', spec: { dtype: 'int32', shape: [2], maxshape: [null], chunks: [4] }, data: Int32Array.of(1, 2) });
      const a = f.openDatasetSync('/x');
      const b = f.openDatasetSync('/x');
      assert.equal(f.openObjectCount(), 2);
      a.resizeSync([6]);
      assert.deepEqual(b.extentSync(), [6]);
      assert.deepEqual(b.info.shape, [2]);
      b.writeSync(Int32Array.of(9, 8, 7, 6), hyperslab([2], [1], [4]));
      const all = new Int32Array(6);
      a.readSync(all);
      assert.deepEqual(Array.from(all), [1, 2, 9, 8, 7, 6]);
      a.closeSync();
      const still = new Int32Array(6);
      b.readSync(still);
      assert.deepEqual(Array.from(still), [1, 2, 9, 8, 7, 6]);
      b.closeSync();
    });
  });

  test('closing a dataset or group frees it; the file keeps working; openObjectCount is 0 between calls', async () => {
    const file = fresh('close-one');
    const f = File.openSync(file, 'w');
    f.execSync([
      { op: 'createGroup', path: '/g' },
      { op: 'createDataset', path: '/d', spec: { dtype: 'int16', shape: [3] }, data: Int16Array.of(1, 2, 3) },
      { op: 'createDataset', path: '/z', spec: { dtype: 'float32', shape: [64, 64], chunks: [8, 8], compression: 'gzip' }, data: new Float32Array(4096) },
    ]);
    assert.equal(f.openObjectCount(), 0);
    const ds = f.openDatasetSync('/d');
    assert.equal(f.openObjectCount(), 1);
    ds.closeSync();
    ds.closeSync();
    assert.equal(ds.isOpen, false);
    expectCode(() => ds.readSync(new Int16Array(3)), 'ERR_CLOSED');
    await expectCodeAsync(ds.read(new Int16Array(3)), 'ERR_CLOSED');
    const g = f.openGroupSync('/g');
    await g.close();
    expectCode(() => g.namesSync(), 'ERR_CLOSED');
    assert.equal(f.openObjectCount(), 0);
    // every kind of op, succeeding and failing, sync and async, leaves nothing open
    const ops: FileOp[][] = [
      [{ op: 'walk', path: '/', inlineBytes: 1 << 20, inlineTotal: 1 << 20 }],
      [{ op: 'lookup', path: '/d' }, { op: 'list', path: '/' }, { op: 'attrs', path: '/d' }],
      [{ op: 'read', path: '/z', out: new Float32Array(16), sel: hyperslab([3, 3], [2, 2], [4, 4]) }],
      [{ op: 'setAttr', path: '/d', name: 'a', value: 'x' }, { op: 'setAttr', path: '/d', name: 'a', value: [1] as never }],
      [{ op: 'setAttr', path: '/d', name: 'a', value: 'a\0b' }],
      [{ op: 'deleteAttr', path: '/d', name: 'zz' }],
      [{ op: 'read', path: '/d', out: new Float64Array(3) }],
      [{ op: 'read', path: '/d', out: new Int16Array(4) }],
      [{ op: 'read', path: '/g', out: new Int16Array(4) }],
      [{ op: 'createDataset', path: '/g/x', spec: { dtype: 'int8', shape: [2] }, data: new Int8Array(3) }],
      [{ op: 'createStrings', path: '/g/s', strings: ['a\0'], shape: [] }],
      [{ op: 'createBytes', path: '/g/v', bytes: new Uint8Array(0), layout: 'void' }],
      [{ op: 'createGroup', path: '/g/h' }, { op: 'move', path: '/g/h', to: '/h' }, { op: 'delete', path: '/h' }],
      [{ op: 'walk', path: '/nope' }, { op: 'list', path: '/nope' }],
    ];
    for (const batch of ops) {
      try { f.execSync(batch); } catch { /* some fail on purpose */ }
      assert.equal(f.openObjectCount(), 0, `after ${JSON.stringify(batch.map((o) => o.op))}`);
      await f.exec(batch).catch(() => undefined);
      assert.equal(f.openObjectCount(), 0, `after async ${JSON.stringify(batch.map((o) => o.op))}`);
    }
    const z = await f.openDataset('/z');
    await z.read(new Float32Array(4096));
    await z.read(new Float32Array(3)).catch(() => undefined);
    await z.attrs();
    assert.equal(f.openObjectCount(), 1);
    await z.close();
    assert.equal(f.openObjectCount(), 0);
    f.flushSync();
    await f.flush();
    f.closeSync();
  });

  test('the classes cannot be constructed from JS; a method or accessor with the wrong `this` is a TypeError', async () => {
    for (const C of [File, Dataset, Group] as unknown as (new (...a: unknown[]) => unknown)[]) {
      assert.throws(() => new C(), TypeError, C.name);
      assert.throws(() => new C({}), TypeError, C.name);
      assert.throws(() => new C(1, 2), TypeError, C.name);
      assert.throws(() => (C as unknown as () => unknown)(), TypeError, `${C.name} called without new`);
    }
    const f = File.openSync(fresh('this'), 'w');
    f.execSync([{ op: 'createGroup', path: '/g' }, { op: 'createDataset', path: '/d', spec: { dtype: 'float64', shape: [2] } }]);
    const ds = f.openDatasetSync('/d');
    const g = f.openGroupSync('/g');
    const strangers: [string, unknown][] = [['a file', f], ['a dataset', ds], ['a group', g], ['a plain object', {}], ['undefined', undefined], ['a number', 1]];
    const protos: [string, object, unknown][] = [['H5File', File.prototype, f], ['H5Dataset', Dataset.prototype, ds], ['H5Group', Group.prototype, g]];
    const wrong: string[] = [];
    for (const [cls, proto, own] of protos) {
      for (const name of Object.getOwnPropertyNames(proto)) {
        if (name === 'constructor') continue;
        const desc = Object.getOwnPropertyDescriptor(proto, name)!;
        for (const [what, self] of strangers) {
          if (self === own) continue;
          const call = typeof desc.value === 'function'
            ? () => (desc.value as (...a: unknown[]) => unknown).call(self, new Float64Array(2))
            : () => desc.get!.call(self);
          try {
            await expectTypeError(call, '');
          } catch (e) {
            wrong.push(`${cls}.prototype.${name}${desc.get ? ' (getter)' : ''} on ${what}${(e as Error).message}`);
          }
        }
      }
    }
    assert.deepEqual(wrong, [], wrong.join('\n'));
    // the objects still work
    ds.readSync(new Float64Array(2));
    assert.deepEqual(g.namesSync(), []);
    f.closeSync();
  });

  test('closeSync (or any sync call) with async work pending → ERR_BUSY; close() waits for it', async () => {
    const file = freshFast('busy');
    const f = File.openSync(file, 'w');
    exec1(f, { op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [1 << 16] } });
    const ds = f.openDatasetSync('/x');
    const data = new Float64Array(1 << 16).fill(3);
    const w = ds.write(data);
    expectCode(() => f.closeSync(), 'ERR_BUSY');
    expectCode(() => f.execSync([{ op: 'list', path: '/' }]), 'ERR_BUSY');
    expectCode(() => ds.readSync(new Float64Array(1 << 16)), 'ERR_BUSY');
    expectCode(() => ds.closeSync(), 'ERR_BUSY');
    // another file is not busy
    withFile(fresh('other'), 'w', (o) => exec1(o, { op: 'createGroup', path: '/g' }));
    const c = f.close();
    await Promise.all([w, c]);
    assert.equal(f.isOpen, false);
    assert.equal(ds.isOpen, false);
    const back = new Float64Array(1 << 16);
    withFile(file, 'r', (g) => exec1(g, { op: 'read', path: '/x', out: back }));
    assert.equal(back[12345], 3);
  });

  test('worker.terminate() and process.exit() with async jobs in flight: no crash, files stay valid', () => {
    const base = freshFast('term');
    const r = runChild('term', `
      const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      const N = 1 << 22;
      function start(file) {
        const f = n.H5File.openSync(file, 'w');
        f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [N], chunks: [1 << 16] } }]);
        const ds = f.openDatasetSync('/x');
        return { f, ds };
      }
      if (isMainThread) {
        let done = 0;
        for (let k = 0; k < 3; k++) {
          const w = new Worker(__filename, { workerData: process.argv[2] + '.' + k });
          w.on('message', () => setTimeout(() => w.terminate().then(() => {
            if (++done < 3) return;
            const { f, ds } = start(process.argv[2]);
            ds.write(new Float64Array(N).fill(1));
            f.exec([{ op: 'createDataset', path: '/y', spec: { dtype: 'float64', shape: [N] }, data: new Float64Array(N).fill(2) }]);
            ds.write(new Float64Array(N).fill(2));
            setTimeout(() => process.exit(0), 2);
          }), k * 3));
        }
      } else {
        const { f, ds } = start(workerData);
        for (let i = 0; i < 4; i++) ds.write(new Float64Array(N).fill(i));
        f.exec([{ op: 'setAttr', path: '/x', name: 'i', value: 1 }, { op: 'createGroup', path: '/g' }]);
        ds.read(new Float64Array(N));
        f.close();
        parentPort.postMessage('started');
      }`, [base]);
    assert.equal(r.signal, null, `killed by ${r.signal}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    for (const fl of [base, `${base}.0`, `${base}.1`, `${base}.2`]) {
      withFile(fl, 'r', (f) => assert.deepEqual(infoOf(f, '/x').shape, [1 << 22]));
    }
  });

  test('open handles left to GC and at exit are closed (worker thread too)', async () => {
    const file = fresh('gc');
    const r = runChild('gc', `
      const { Worker, isMainThread, workerData } = require('worker_threads');
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      const file = isMainThread ? process.argv[2] : workerData;
      if (isMainThread) new Worker(__filename, { workerData: file + '.w' });
      const f = n.H5File.openSync(file, 'w');
      f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'int32', shape: [3], maxshape: [null], chunks: [2] } }, { op: 'createGroup', path: '/g' }]);
      const ds = f.openDatasetSync('/x');
      ds.writeSync(Int32Array.of(1, 2, 3));
      const g = f.openGroupSync('/g');
      g.setAttrSync('a', 'kept');
      globalThis.keep = [ds, g];
      // no close: the environment's cleanup hook closes it`, [file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    for (const fl of [file, `${file}.w`]) {
      assert.deepEqual(h5py(`f = h5py.File(sys.argv[1], 'r'); out([f['x'][()], f['g'].attrs['a']])`, fl), [[1, 2, 3], 'kept']);
    }
    // A file dropped without close (with a dataset and a group opened from it) is closed by the finalizers.
    const dropped = fresh('dropped');
    (() => {
      const f = File.openSync(dropped, 'w');
      f.execSync([{ op: 'createGroup', path: '/a' }, { op: 'createDataset', path: '/a/d', spec: { dtype: 'uint8', shape: [1] } }]);
      f.openDatasetSync('/a/d');
      f.openGroupSync('/a');
    })();
    let reopened = false;
    for (let i = 0; i < 20 && !reopened; i++) {
      gc();
      await nextTurn();
      try {
        File.openSync(dropped, 'w').closeSync(); // fails while the file is still open here
        reopened = true;
      } catch {
        // not finalized yet
      }
    }
    assert.ok(reopened, 'the dropped file was never closed');
  });
});

// ------------------------------------------------------------------------------------ async I/O

describe('async I/O', () => {
  test('a 64 MiB async write (dataset write, then a batch) does not stall the event loop; input survives GC', async () => {
    const file = freshFast('async');
    const rows = Math.floor((64 << 20) / 200);
    const n = rows * 25;
    const f = await File.open(file, 'w');
    await f.exec([{ op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [rows, 5, 5], maxshape: [null, 5, 5], chunks: [Math.ceil((2 << 20) / 200), 5, 5] } }]);
    const ds = await f.openDataset('/x');
    for (const how of ['dataset', 'batch'] as const) {
      // Garbage from before is collected now, not while we measure.
      gc();
      await nextTurn();
      const h = monitorEventLoopDelay({ resolution: 1 });
      let pending: Promise<unknown>;
      // The only reference to the input is the one the binding holds.
      (() => {
        const data = new Float64Array(n);
        for (let i = 0; i < n; i++) data[i] = i % 1000;
        pending = how === 'dataset'
          ? ds.write(data)
          : f.exec([{ op: 'createDataset', path: '/y', spec: { dtype: 'float64', shape: [rows, 25] }, data }]);
      })();
      h.enable();
      // The longest time the loop was not ours between two ticks of a 2 ms timer; the timer's own
      // forced GCs (which prove the binding keeps the input alive) are not counted.
      let ticks = 0;
      let maxGap = 0;
      let last = performance.now();
      const started = last;
      const timer = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        if (++ticks % 4 === 0) gc();
        last = performance.now();
      }, 2);
      await pending!;
      const took = performance.now() - started;
      clearInterval(timer);
      h.disable();
      assert.ok(maxGap < 20, `${how}: the event loop stalled ${maxGap.toFixed(1)} ms during a ${took.toFixed(0)} ms write (loop delay max ${(h.max / 1e6).toFixed(1)} ms, GCs included)`);
      assert.ok(ticks > 0, `${how}: no timer ran while the write was in flight`);
      const back = new Float64Array(n);
      if (how === 'dataset') await ds.read(back);
      else await f.exec([{ op: 'read', path: '/y', out: back }]);
      let bad = 0;
      for (let i = 0; i < n; i++) if (back[i] !== i % 1000) bad++;
      assert.equal(bad, 0, how);
    }
    await ds.close();
    assert.equal(f.openObjectCount(), 0);
    await f.close();
  });

  test('queued async jobs of every kind settle in submission order, and run in it', async () => {
    const f = await File.open(freshFast('queue'), 'w');
    await f.exec([{ op: 'createDataset', path: '/d', spec: { dtype: 'int32', shape: [1000], maxshape: [null], chunks: [250] } }]);
    const ds = await f.openDataset('/d');
    const order: number[] = [];
    const reads: [number, Int32Array][] = [];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      let p: Promise<unknown>;
      switch (i % 6) {
        case 0: p = ds.write(new Int32Array(1000).fill(i)); break;
        case 1: { const out = new Int32Array(1000); reads.push([i, out]); p = ds.read(out); break; }
        case 2: p = f.exec([{ op: 'setAttr', path: '/d', name: 'last', value: i }]); break;
        case 3: p = ds.attrs().then((a) => assert.deepEqual(a, [['last', i - 1]])); break;
        case 4: p = f.exec([{ op: 'read', path: '/d', out: new Int32Array(1), sel: hyperslab([999], [1], [1]) }, { op: 'createGroup', path: `/g${i}` }]); break;
        default: p = ds.extent().then((e) => assert.deepEqual(e, [1000])); break;
      }
      jobs.push(p.then(() => { order.push(i); }));
    }
    // a failing job in the middle rejects alone, in its place
    jobs.push(f.exec([{ op: 'createGroup', path: '/g4' }]).then(() => assert.fail('expected ERR_HDF5'), (e: NativeError) => { assert.equal(e.code, 'ERR_HDF5'); order.push(60); }));
    jobs.push(ds.extent().then(() => { order.push(61); }));
    await Promise.all(jobs);
    assert.deepEqual(order, Array.from({ length: 62 }, (_, i) => i));
    for (const [i, out] of reads) assert.equal(out[999], i - 1, `read ${i} saw the write before it`);
    await ds.close();
    await f.close();
  });

  test('argument mistakes in an async call reject the promise (they do not throw)', async () => {
    const f = await File.open(fresh('async-args'), 'w');
    await f.exec([{ op: 'createDataset', path: '/d', spec: { dtype: 'float64', shape: [2] } }]);
    const ds = await f.openDataset('/d');
    const calls: [string, () => Promise<unknown>, ErrorConstructor][] = [
      ['read without an array', () => ds.read('x' as never), TypeError],
      ['read of the wrong size', () => ds.read(new Float64Array(3)), RangeError],
      ['write of the wrong type', () => ds.write(new Int32Array(2)), TypeError],
      ['a bad selection', () => ds.read(new Float64Array(2), [0, 1, 2] as never), TypeError],
      ['resize to a non-array', () => ds.resize(3 as never), TypeError],
      ['exec of a non-array', () => f.exec('x' as never), TypeError],
      ['openDataset without a path', () => f.openDataset(undefined as never), TypeError],
      ['open without a mode', () => File.open(fresh(), undefined as never), TypeError],
    ];
    for (const [what, call, Err] of calls) {
      let p: Promise<unknown> | undefined;
      assert.doesNotThrow(() => { p = call(); }, what);
      assert.ok(p instanceof Promise, what);
      await assert.rejects(p, Err, what);
    }
    await ds.close();
    await f.close();
  });

  test('views of resizable buffers: refused by async calls (TypeError), accepted by sync ones; stableArray copies them', async () => {
    const RAB = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
    let buf: ArrayBuffer;
    try {
      buf = new RAB(16, { maxByteLength: 64 });
    } catch {
      return; // this Node has no resizable ArrayBuffers
    }
    const f = await File.open(fresh('rab'), 'w');
    await f.exec([{ op: 'createDataset', path: '/d', spec: { dtype: 'float64', shape: [2] } }]);
    const ds = await f.openDataset('/d');
    const view = new Float64Array(buf, 0, 2);
    view.set([1.5, 2.5]);
    await assert.rejects(ds.write(view), TypeError);
    await assert.rejects(f.exec([{ op: 'read', path: '/d', out: view }]), TypeError);
    ds.writeSync(view);
    const copy = stableArray(view);
    assert.notEqual(copy, view);
    await ds.write(copy);
    const plainArr = new Float64Array(2);
    assert.equal(stableArray(plainArr), plainArr);
    const back = new Float64Array(2);
    await ds.read(back);
    assert.deepEqual(Array.from(back), [1.5, 2.5]);
    await ds.close();
    await f.close();
  });

  test('worker threads each using the addon at once, sync and async, with the main thread', async () => {
    const script = path.join(tmp, `worker-${counter++}.js`);
    fs.writeFileSync(script, `
      const { parentPort, workerData } = require('worker_threads');
      const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      (async () => {
        const { file, k } = workerData;
        const f = await n.H5File.open(file, 'w');
        await f.exec([{ op: 'createDataset', path: '/x', spec: { dtype: 'int32', shape: [0, 100], maxshape: [null, 100], chunks: [8, 100] } }]);
        const ds = await f.openDataset('/x');
        for (let r = 0; r < 40; r++) {
          await ds.resize([r + 1, 100]);
          const row = new Int32Array(100).fill(k * 1000 + r);
          if (r % 2) await ds.write(row, new Float64Array([r, 0, 1, 1, 1, 100]));
          else { ds.writeSync(row, new Float64Array([r, 0, 1, 1, 1, 100])); }
        }
        ds.setAttrSync('k', k);
        const all = new Int32Array(4000);
        await ds.read(all);
        let sum = 0;
        for (const v of all) sum += v;
        await ds.close();
        await f.close();
        parentPort.postMessage({ k, sum, count: f.isOpen ? -1 : 0 });
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`);
    const K = 4;
    const files = Array.from({ length: K }, (_, k) => freshFast(`worker${k}`));
    const results = Promise.all(files.map((file, k) => new Promise<{ k: number; sum: number; error?: string }>((resolve, reject) => {
      const w = new Worker(script, { workerData: { file, k } });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    // the main thread keeps working meanwhile
    const f = await File.open(freshFast('main'), 'w');
    for (let i = 0; i < 30; i++) {
      await f.exec([{ op: 'createDataset', path: `/d${i}`, spec: { dtype: 'float64', shape: [1000] }, data: new Float64Array(1000).fill(i) }]);
    }
    const got = await results;
    await f.close();
    for (const r of got) {
      assert.equal(r.error, undefined, r.error);
      let want = 0;
      for (let row = 0; row < 40; row++) want += 100 * (r.k * 1000 + row);
      assert.equal(r.sum, want, `worker ${r.k}`);
    }
    for (const [k, file] of files.entries()) {
      withFile(file, 'r', (g) => {
        assert.deepEqual(infoOf(g, '/x').shape, [40, 100]);
        assert.deepEqual(attrsOf(g, '/x'), [['k', k]]);
      });
    }
  });

  // Node-API has no way to keep an ArrayBuffer's memory alive once it is transferred (Node's own
  // fs calls share the limit): the README tells users not to transfer a buffer while a call using
  // it is pending. Kept as a todo so the day a fix lands it shows.
  test('detaching the buffer of an in-flight async write or read (a transfer) does not crash the process', { todo: 'Node-API cannot pin a transferred backing store (documented limit)' }, () => {
    // Transferring an ArrayBuffer (postMessage, structuredClone) frees its memory while the HDF5
    // thread may still be using it: the call must fail cleanly or finish on a copy.
    const outcomes: string[] = [];
    for (const mode of ['write', 'read', 'batch']) {
      const r = runChild(`detach-${mode}`, `
        require('v8').setFlagsFromString('--expose-gc');
        const gc = require('vm').runInNewContext('gc');
        const n = require(${JSON.stringify(NATIVE_JS)}).loadNative();
        (async () => {
          const f = n.H5File.openSync(process.argv[2], 'w');
          const N = 1 << 24;
          f.execSync([{ op: 'createDataset', path: '/x', spec: { dtype: 'float64', shape: [N], chunks: [1 << 16], compression: 'gzip', compressionLevel: 1 } }]);
          const ds = f.openDatasetSync('/x');
          const arr = new Float64Array(N).fill(7);
          const mode = process.argv[3];
          const p = mode === 'write' ? ds.write(arr)
            : mode === 'read' ? ds.read(arr)
            : f.exec([{ op: 'createDataset', path: '/y', spec: { dtype: 'float64', shape: [N], chunks: [1 << 16], compression: 'gzip', compressionLevel: 1 }, data: arr }]);
          let moved = structuredClone(arr.buffer, { transfer: [arr.buffer] });
          moved = null; gc(); gc();
          const other = []; for (let i = 0; i < 8; i++) other.push(new Float64Array(N).fill(-1));
          const outcome = await p.then(() => 'resolved', (e) => 'rejected ' + e.name);
          let corrupted = 0; for (const o of other) for (let i = 0; i < o.length; i++) if (o[i] !== -1) corrupted++;
          await f.close();
          console.log(JSON.stringify({ outcome, corrupted }));
        })();`, [freshFast(`detach-${mode}`), mode]);
      outcomes.push(r.signal !== null ? `${mode}: killed by ${r.signal}` : r.status !== 0 ? `${mode}: exit ${r.status} ${r.stderr.split('\n')[0]}`
        : JSON.parse(r.stdout).corrupted !== 0 ? `${mode}: ${JSON.parse(r.stdout).corrupted} elements of other arrays overwritten` : `${mode}: ok`);
    }
    assert.deepEqual(outcomes, ['write: ok', 'read: ok', 'batch: ok']);
  });
});
