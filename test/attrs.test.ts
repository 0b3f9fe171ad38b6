/**
 * Attributes through the Checkpointer: `attrs(key?)`, `setAttrs`, `deleteAttrs` and their sync
 * twins on the root group, groups and datasets of HDF5 checkpoints — h5py writes, we read with
 * h5py's types; we write, h5py reads back equal — validated in full and applied as one change,
 * through the session's shadow commit; the other formats refuse with a typed error.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer, CheckpointerError, CheckpointerKeyError, DictCheckpointer, HDF5Checkpointer, NullCheckpointer } from '../lib/index';
import type { HDF5Stream } from '../lib/backends/hdf5';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';

const dir = tempDir('checkpointer-attrs-');
let n = 0;
const fresh = (ext = '.h5'): string => path.join(dir, `a${n++}${ext}`);
const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A file h5py wrote with attributes of its common types on the root, a group, datasets and through a soft link. */
function pythonFile(): string {
  const file = fresh();
  h5py(`
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['title'] = 'run 7'
    f.attrs['version'] = 3
    f.attrs['dt'] = 0.5
    g = f.create_group('g')
    g.attrs['flag'] = True
    g.attrs['count'] = np.int32(-4)
    g.attrs['small'] = np.uint8(200)
    g.attrs['f32'] = np.float32(0.25)
    g.attrs['huge'] = np.uint64(2**63 + 5)
    g.attrs['label'] = np.bytes_(b'abc')
    g.attrs['names'] = ['x', 'yy']
    g.attrs['empty'] = h5py.Empty('f8')
    d = g.create_dataset('d', data=np.arange(4.0))
    d.attrs['units'] = 'nm'
    d.attrs['scale'] = np.arange(3, dtype='i2')
    d.attrs['weights'] = np.array([0.5, 1.5])
    f['s'] = h5py.SoftLink('/g/d')
    f['plain'] = np.arange(2)
`, file);
  return file;
}

describe('attrs: reading what h5py wrote', () => {
  it('the root, a group, a dataset (by key path and through a soft link), with h5py\'s types', async () => {
    const file = pythonFile();
    const chk = Checkpointer.fromFile(file);
    assert.deepEqual(await chk.attrs(), { dt: 0.5, title: 'run 7', version: 3n });
    const g = await chk.attrs('g');
    assert.deepEqual(Object.keys(g), ['count', 'empty', 'f32', 'flag', 'huge', 'label', 'names', 'small'], 'h5py lists attributes by name');
    assert.equal(g.flag, true);
    assert.equal(g.count, -4);
    assert.equal(g.small, 200);
    assert.equal(g.f32, 0.25);
    assert.equal(g.huge, 2n ** 63n + 5n);
    assert.equal(g.label, 'abc');
    assert.deepEqual(g.names, ['x', 'yy']);
    assert.equal(g.empty, null, 'h5py.Empty');
    const d = await chk.attrs(['g', 'd']);
    assert.equal(d.units, 'nm');
    assert.deepEqual(d.scale, Int16Array.of(0, 1, 2));
    assert.deepEqual(d.weights, Float64Array.of(0.5, 1.5));
    assert.deepEqual(chk.attrsSync('s'), d, 'a soft link reads its target\'s attributes');
    assert.deepEqual(chk.attrsSync('plain'), {});
    assert.deepEqual(chk.attrsSync(null), await chk.attrs());
  });

  it('a missing key, a key below a dataset, a filtered key are ERR_KEY; a file that does not exist has no root attributes', async () => {
    const file = pythonFile();
    const chk = Checkpointer.fromFile(file, { omittedKeys: ['plain'] });
    await assert.rejects(chk.attrs('nope'), CheckpointerKeyError);
    assert.throws(() => chk.attrsSync(['g', 'd', 'x']), CheckpointerKeyError);
    await assert.rejects(chk.attrs('plain'), CheckpointerKeyError);
    const absent = fresh();
    const none = Checkpointer.fromFile(absent);
    assert.deepEqual(await none.attrs(), {});
    await assert.rejects(none.attrs('x'), CheckpointerKeyError);
    await assert.rejects(none.setAttrs('x', { a: 1 }), CheckpointerKeyError);
    assert.equal(fs.existsSync(absent), false, 'a refused write creates no file');
  });
});

describe('attrs: writing, h5py reads back', () => {
  it('setAttrs on the root, a group and a dataset: h5py sees the types it would have written', async () => {
    const file = fresh();
    const chk = Checkpointer.fromFile(file);
    await chk.set('g', { d: new Float64Array(3) });
    await chk.setAttrs(null, { title: 'ü run', step: 12n, ok: false });
    await chk.setAttrs('g', new Map<string, never>([['names', ['a', 'b'] as never], ['rate', 0.125 as never]]));
    chk.setAttrsSync(['g', 'd'], { f32: Float32Array.of(1, 2), i16: Int16Array.of(-3, 4), big: 2n ** 64n - 1n, neg: -(2n ** 63n) });
    const py = h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    def t(a): return {k: [type(v).__name__, str(getattr(v, 'dtype', '')), v] for k, v in a.items()}
    out({'root': t(f.attrs), 'g': t(f['g'].attrs), 'd': t(f['g/d'].attrs)})`, file);
    assert.deepEqual(py.root, { title: ['str', '', 'ü run'], step: ['int64', 'int64', 12], ok: ['bool_', 'bool', false] });
    assert.deepEqual(py.g, { names: ['ndarray', 'object', ['a', 'b']], rate: ['float64', 'float64', 0.125] });
    assert.deepEqual(py.d.f32, ['ndarray', 'float32', [1, 2]]);
    assert.deepEqual(py.d.i16, ['ndarray', 'int16', [-3, 4]]);
    assert.deepEqual(py.d.big.slice(0, 2), ['uint64', 'uint64']);
    assert.deepEqual(py.d.neg.slice(0, 2), ['int64', 'int64']);
    // And they read back here as set.
    const d = await chk.attrs(['g', 'd']);
    assert.deepEqual(d, { f32: Float32Array.of(1, 2), i16: Int16Array.of(-3, 4), big: 2n ** 64n - 1n, neg: -(2n ** 63n) });
    assert.deepEqual(Object.keys(await chk.attrs()), ['title', 'step', 'ok'], 'our files keep attributes in creation order');
  });

  it('replace and delete; deleting a name that is not there is ERR_KEY and deletes nothing', async () => {
    const file = pythonFile();
    const chk = Checkpointer.fromFile(file);
    await chk.setAttrs(['g', 'd'], { units: 'm', extra: 1 });
    await chk.deleteAttrs(['g', 'd'], 'scale');
    assert.deepEqual(Object.keys(await chk.attrs(['g', 'd'])).sort(), ['extra', 'units', 'weights']);
    await assert.rejects(chk.deleteAttrs(['g', 'd'], ['extra', 'missing']), (e: unknown) => e instanceof CheckpointerKeyError && /missing/.test(e.message));
    assert.equal((await chk.attrs(['g', 'd'])).extra, 1, 'nothing was deleted');
    chk.deleteAttrsSync(null, ['title', 'dt']);
    const py = h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out({'root': sorted(f.attrs.keys()), 'd': {k: f['g/d'].attrs[k] for k in f['g/d'].attrs}})`, file);
    assert.deepEqual(py, { root: ['version'], d: { extra: 1, units: 'm', weights: [0.5, 1.5] } });
  });

  it('validated in full, then applied: a value that cannot be stored leaves every attribute as it was', async () => {
    const file = pythonFile();
    const chk = Checkpointer.fromFile(file);
    const before = await chk.attrs(['g', 'd']);
    const names = (): string[] => h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out(sorted(f['g/d'].attrs.keys()))`, file);
    const pyBefore = names();
    // A NUL in a string fails in HDF5, after the first value was written under a temporary name.
    await assert.rejects(chk.setAttrs(['g', 'd'], { units: 'km', bad: 'a\0b' }), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_UNSUPPORTED_VALUE');
    assert.throws(() => chk.setAttrsSync(['g', 'd'], { units: 'km', bad: {} as never }), TypeError);
    await assert.rejects(chk.setAttrs(['g', 'd'], { units: 'km', nothing: null as never }), TypeError);
    await assert.rejects(chk.setAttrs(['g', 'd'], { '': 1 }), TypeError);
    await assert.rejects(chk.deleteAttrs(['g', 'd'], 3 as never), TypeError);
    await assert.rejects(chk.setAttrs(['g', 'd'], { '.checkpointer-pending-attr-0': 1 }), TypeError);
    assert.deepEqual(await chk.attrs(['g', 'd']), before);
    assert.deepEqual(names(), pyBefore, 'h5py sees the old attributes and no temporary one');
  });

  it('in an open scope: writes go to the session\'s shadow, read back at once, and reach the file at the last close', async () => {
    const file = pythonFile();
    const chk = new HDF5Checkpointer(file);
    const bytes = sha(file);
    await chk.with(async (c) => {
      await c.setAttrs('g', { added: 'yes' });
      assert.equal((await c.attrs('g')).added, 'yes');
      assert.equal(sha(file), bytes, 'not committed yet');
      assert.ok((c.stream as HDF5Stream).shadow);
      c.setAttrsSync(null, { also: 1 });
      assert.equal((c.stream as HDF5Stream).file!.openObjectCount(), 0, 'no HDF5 id left open');
    });
    const py = h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out([f['g'].attrs['added'], float(f.attrs['also'])])`, file);
    assert.deepEqual(py, ['yes', 1]);
  });

  it('a new file gets root attributes; a read-only file refuses them before anything changes', async () => {
    const file = fresh();
    await Checkpointer.fromFile(file).setAttrs(null, { created: 'now' });
    assert.equal(h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out(f.attrs['created'])`, file), 'now');
    fs.chmodSync(file, 0o444);
    try {
      if (process.getuid?.() !== 0) {
        await assert.rejects(Checkpointer.fromFile(file).setAttrs(null, { x: 1 }), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_NOT_WRITABLE');
      }
    } finally {
      fs.chmodSync(file, 0o644);
    }
  });

  it('attributes behind an external link are read there, never written there', async () => {
    const other = fresh();
    const file = fresh();
    h5py(`
import os
with h5py.File(sys.argv[1], 'w') as f:
    f.create_group('grp').attrs['where'] = 'other'
with h5py.File(sys.argv[2], 'w') as f:
    f['ext'] = h5py.ExternalLink(os.path.basename(sys.argv[1]), '/grp')
`, other, file);
    const chk = Checkpointer.fromFile(file);
    assert.deepEqual(await chk.attrs('ext'), { where: 'other' });
    const bytes = sha(other);
    await assert.rejects(chk.setAttrs('ext', { where: 'here' }), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_NOT_WRITABLE');
    assert.equal(sha(other), bytes);
  });
});

describe('attrs: formats without attributes', () => {
  it('JSON, npz, dict and null checkpoints refuse with ERR_UNSUPPORTED_VALUE, and the file is untouched', async () => {
    const json = fresh('.json');
    const npz = fresh('.npz');
    await Checkpointer.fromFile(json).set('x', 1);
    await Checkpointer.fromFile(npz).set('x', 1);
    const before = [sha(json), sha(npz)];
    for (const chk of [Checkpointer.fromFile(json), Checkpointer.fromFile(npz), new DictCheckpointer({ x: 1 }), new NullCheckpointer()]) {
      const isNoAttrs = (e: unknown): boolean => e instanceof CheckpointerError && e.code === 'ERR_UNSUPPORTED_VALUE' && /no attributes/.test(e.message);
      await assert.rejects(chk.attrs(), isNoAttrs);
      await assert.rejects(chk.attrs('x'), isNoAttrs);
      assert.throws(() => chk.attrsSync(), isNoAttrs);
      await assert.rejects(chk.setAttrs('x', { a: 1 }), isNoAttrs);
      assert.throws(() => chk.deleteAttrsSync(null, 'a'), isNoAttrs);
    }
    assert.deepEqual([sha(json), sha(npz)], before);
  });
});
