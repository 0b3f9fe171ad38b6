/**
 * Links in HDF5 files h5py wrote: soft links (absolute, relative, chains, cycles), external links
 * (relative to the linking file's folder whatever the working directory, HDF5_EXT_PREFIX, back into
 * the same file, cycles across files, targets that are missing, not HDF5 or damaged), dangling
 * links, committed datatypes; `strict` against the default, which leaves unreadable members out;
 * writes that would go through an external link; no HDF5 id left open.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Checkpointer, CheckpointerError, CheckpointerKeyError, HDF5Checkpointer, NDArray } from '../lib/index';
import type { HDF5Stream } from '../lib/backends/hdf5';
import { externalCandidates } from '../lib/backends/hdf5';
import { h5py } from './helpers/h5py';
import { SHARED, tempDir } from './helpers/python';

const root = tempDir('checkpointer-links-');
const sub = path.join(root, 'sub');
const elsewhere = path.join(root, 'elsewhere');
fs.mkdirSync(sub);
fs.mkdirSync(elsewhere);
const main = path.join(sub, 'main.h5');
const target = path.join(sub, 'target.h5');

h5py(`
import os
sub, elsewhere = sys.argv[1], sys.argv[2]
with h5py.File(os.path.join(sub, 'target.h5'), 'w') as f:
    f['data'] = np.arange(10.0)
    g = f.create_group('grp')
    g['x'] = 5
    g['big'] = np.arange(100000, dtype='i4')   # larger than a walk inlines: read in a second batch
    f['grp/back'] = h5py.SoftLink('/data')
with h5py.File(os.path.join(elsewhere, 'pref.h5'), 'w') as f:
    f['p'] = np.int16(7)
with open(os.path.join(sub, 'notes.h5'), 'w') as f:
    f.write('not an HDF5 file\\n' * 20)
with h5py.File(os.path.join(sub, 'main.h5'), 'w') as f:
    f['a'] = np.arange(3)
    g = f.create_group('g')
    g['v'] = 1.5
    g['soft_rel'] = h5py.SoftLink('v')
    f['soft_abs'] = h5py.SoftLink('/g')
    f['soft_chain'] = h5py.SoftLink('/soft_abs/soft_rel')
    f['soft_into_ext'] = h5py.SoftLink('/ext/x')
    f['dangling'] = h5py.SoftLink('/nope')
    f['loop1'] = h5py.SoftLink('/loop2')
    f['loop2'] = h5py.SoftLink('/loop1')
    f['ext'] = h5py.ExternalLink('target.h5', '/grp')
    f['ext_data'] = h5py.ExternalLink('target.h5', '/data')
    f['ext_abs'] = h5py.ExternalLink(os.path.join(sub, 'target.h5'), '/grp/x')
    f['ext_root'] = h5py.ExternalLink('target.h5', '/')
    f['ext_missing_file'] = h5py.ExternalLink('missing.h5', '/x')
    f['ext_missing_obj'] = h5py.ExternalLink('target.h5', '/nothing')
    f['ext_not_hdf5'] = h5py.ExternalLink('notes.h5', '/x')
    f['ext_prefix'] = h5py.ExternalLink('pref.h5', '/p')
    f['ext_updir'] = h5py.ExternalLink('../elsewhere/pref.h5', '/p')
    f['self'] = h5py.ExternalLink('main.h5', '/g')
    f['dt'] = np.dtype('f8')
    f['holder'] = np.arange(4.0)
    mixed = f.create_group('mixed')
    mixed['ok'] = np.arange(2.0)
    mixed['dead'] = h5py.SoftLink('/nowhere')
    mixed['gone'] = h5py.ExternalLink('missing.h5', '/y')
    mixed['t'] = np.dtype('i4')
    mixed['up'] = h5py.SoftLink('/mixed')
`, sub, elsewhere);

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The external files the session holds open, and the HDF5 objects open in each (and the checkpoint's). */
function openObjects(chk: Checkpointer): number[] {
  const s = chk.stream as HDF5Stream;
  return [s.file!, ...s.externals.values()].map((f) => f.openObjectCount());
}

function inDir<T>(dir: string, fn: () => T): T {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return fn();
  } finally {
    process.chdir(cwd);
  }
}

async function inDirAsync<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(cwd);
  }
}

const READABLE = ['a', 'ext', 'ext_abs', 'ext_data', 'ext_root', 'ext_updir', 'g', 'holder', 'mixed', 'self', 'soft_abs', 'soft_chain', 'soft_into_ext'];
/** Keys too, whose get reports why they cannot be read (as a damaged key of the file itself is listed). */
const KEYS = [...READABLE, 'ext_not_hdf5'].sort();

describe('HDF5 links', () => {
  it('keys() lists the links that lead to a group or a dataset (or to a file that cannot be read), external ones followed; has() agrees', async () => {
    const chk = Checkpointer.fromFile(main);
    await chk.with(async (c) => {
      assert.deepEqual(await c.keys(), KEYS);
      for (const k of KEYS) assert.equal(await c.has(k), true, k);
      for (const k of ['dangling', 'loop1', 'loop2', 'ext_missing_file', 'ext_missing_obj', 'dt', 'ext_prefix']) {
        assert.equal(await c.has(k), false, k);
      }
      assert.deepEqual(c.keysSync(), KEYS);
    });
  });

  it('soft links, absolute and relative, chained, and a soft link through an external link, read as their targets', async () => {
    const chk = Checkpointer.fromFile(main);
    assert.deepEqual(await chk.get('soft_abs'), { v: 1.5, soft_rel: 1.5 });
    assert.equal(await chk.get(['g', 'soft_rel']), 1.5);
    assert.equal(await chk.get(['soft_abs', 'soft_rel']), 1.5);
    assert.equal(await chk.get('soft_chain'), 1.5);
    assert.equal(chk.getSync('soft_into_ext'), 5);
    assert.equal(await chk.has(['soft_abs', 'v']), true);
    assert.equal(await chk.has(['soft_abs', 'nope']), false);
  });

  it('external links read their targets in the linked file: datasets, groups, the root, an absolute name, a link back into the same file', async () => {
    const chk = Checkpointer.fromFile(main);
    const data = (await chk.get('ext_data')) as NDArray;
    assert.deepEqual(Array.from(data.data as Float64Array), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const grp = (await chk.get('ext')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(grp).sort(), ['back', 'big', 'x']);
    assert.equal(grp.x, 5);
    const big = grp.big as NDArray;
    assert.equal(big.dtype, 'int32');
    assert.equal(big.data.length, 100000);
    assert.equal((big.data as Int32Array)[99999], 99999);
    assert.deepEqual(Array.from((grp.back as NDArray).data as Float64Array), Array.from(data.data as Float64Array), 'a soft link inside the linked file');
    assert.equal(await chk.get(['ext', 'x']), 5, 'a key below an external link');
    assert.equal(await chk.get('ext_abs'), 5);
    const whole = (await chk.get('ext_root')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(whole), ['data', 'grp']);
    assert.deepEqual(await chk.get('self'), { v: 1.5, soft_rel: 1.5 });
    // What h5py reads through the same links.
    const py = h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out({'x': f['ext/x'][()], 'data': f['ext_data'][:], 'big_last': f['ext/big'][-1], 'soft': f['soft_into_ext'][()]})`, main);
    assert.deepEqual(py, { x: 5, data: Array.from(data.data as Float64Array), big_last: 99999, soft: 5 });
  });

  it('a relative external link is looked for in the linking file\'s folder, whatever the working directory', async () => {
    // Opened by a relative path from another folder, then read with the working directory moved again.
    const chk = inDir(elsewhere, () => Checkpointer.fromFile(path.join('..', 'sub', 'main.h5')));
    await inDirAsync(elsewhere, async () => {
      await chk.with(async (c) => {
        process.chdir(os.tmpdir());
        assert.equal(await c.get(['ext', 'x']), 5);
        assert.equal(c.getSync('ext_abs'), 5);
      });
    });
    const again = Checkpointer.fromFile(main);
    assert.equal(inDir(os.tmpdir(), () => again.getSync(['ext', 'x'])), 5);
    // A relative name with folders in it: from the linking file's folder too, as h5py finds it.
    assert.equal(await inDirAsync(os.tmpdir(), () => again.get('ext_updir')), 7);
    assert.equal(h5py(`
import os
os.chdir('/')
with h5py.File(sys.argv[1], 'r') as f:
    out(int(f['ext_updir'][()]))`, main), 7);
    // HDF5's order of candidates, as H5F_prefix_open_file tries them.
    const abs = path.join(sub, 'nothere', 'target.h5');
    assert.deepEqual(externalCandidates('target.h5', main).slice(0, 1), [path.join(sub, 'target.h5')]);
    assert.deepEqual(externalCandidates(abs, main).slice(0, 2), [abs, path.join(sub, 'target.h5')]);
  });

  it('HDF5_EXT_PREFIX is searched before the linking file\'s folder, as HDF5 does', async () => {
    const chk = Checkpointer.fromFile(main);
    assert.equal(await chk.has('ext_prefix'), false);
    process.env.HDF5_EXT_PREFIX = `/nonexistent:${elsewhere}`;
    try {
      assert.equal(await Checkpointer.fromFile(main).get('ext_prefix'), 7);
      assert.deepEqual(externalCandidates('pref.h5', main).slice(0, 3), ['/nonexistent/pref.h5', path.join(elsewhere, 'pref.h5'), path.join(sub, 'pref.h5')]);
      process.env.HDF5_EXT_PREFIX = '${ORIGIN}/../elsewhere';
      assert.equal(await Checkpointer.fromFile(main).get('ext_prefix'), 7, '${ORIGIN} is the linking file\'s folder');
    } finally {
      delete process.env.HDF5_EXT_PREFIX;
    }
    const py = h5py(`
import os
os.environ['HDF5_EXT_PREFIX'] = sys.argv[2]
with h5py.File(sys.argv[1], 'r') as f:
    out(int(f['ext_prefix'][()]))`, main, elsewhere);
    assert.equal(py, 7, 'h5py finds it the same way');
  });

  it('a dangling soft or external link is ERR_KEY naming the link and its target; get with a default gives the default', async () => {
    const chk = Checkpointer.fromFile(main);
    const cases: [string, RegExp][] = [
      ['dangling', /\/dangling → \/nope/],
      ['ext_missing_file', /\/ext_missing_file → missing\.h5:\/x/],
      ['ext_missing_obj', /\/ext_missing_obj → target\.h5:\/nothing/],
    ];
    for (const [key, names] of cases) {
      await assert.rejects(chk.get(key), (e: unknown) => e instanceof CheckpointerKeyError && e.code === 'ERR_KEY' && names.test(e.message) && /dangling/.test(e.message));
      assert.throws(() => chk.getSync(key), (e: unknown) => e instanceof CheckpointerKeyError && names.test(e.message));
      assert.equal(await chk.get(key, 'fallback'), 'fallback');
    }
    await assert.rejects(chk.get(['dangling', 'below']), (e: unknown) => e instanceof CheckpointerKeyError);
  });

  it('committed datatypes are no keys; soft links in a cycle are a typed error; an external file that is not HDF5 is that key\'s error only', async () => {
    const chk = Checkpointer.fromFile(main);
    await assert.rejects(chk.get('dt'), (e: unknown) => e instanceof CheckpointerKeyError && /committed datatype/.test(e.message));
    await assert.rejects(chk.get('loop1'), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_UNSUPPORTED_VALUE' && /cycle/.test(e.message));
    await assert.rejects(chk.get('ext_not_hdf5'), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_CHECKPOINT_CORRUPT'
      && /ext_not_hdf5/.test(e.message) && /notes\.h5/.test(e.message));
    assert.equal(await chk.get('ext_data').then((v) => (v as NDArray).data.length), 10, 'the other keys still read');
  });

  it('by default a dict read leaves out members that cannot be read and says which (chk.skipped, a CHECKPOINTER_SKIPPED warning); strict throws', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if ((w as { code?: string }).code === 'CHECKPOINTER_SKIPPED') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const chk = Checkpointer.fromFile(main);
      const mixed = (await chk.get('mixed')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(mixed), ['ok'], 'the committed datatype is no member; the dangling links and the cycle are left out');
      assert.deepEqual(chk.skipped.map((s) => [s.path, s.error.code]), [
        ['/mixed/dead', 'ERR_KEY'], ['/mixed/gone', 'ERR_KEY'], ['/mixed/up', 'ERR_UNSUPPORTED_VALUE'],
      ]);
      for (const s of chk.skipped) {
        assert.deepEqual(s.key, ['mixed']);
        assert.equal(s.file, main);
        assert.ok(s.error instanceof CheckpointerError);
      }
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /\/mixed\/dead.*\/mixed\/gone.*\/mixed\/up/s);
      assert.match(warnings[0]!.message, /strict/);
      // The sync twin leaves out the same; a read that leaves out nothing empties `skipped`; the warning is not repeated.
      assert.deepEqual(Object.keys(chk.getSync('mixed') as object), ['ok']);
      assert.equal(chk.skipped.length, 3);
      await chk.get('g');
      assert.deepEqual(chk.skipped, []);
      await chk.get('mixed');
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);

      const strict = new HDF5Checkpointer(main, { strict: true });
      await assert.rejects(strict.get('mixed'), (e: unknown) => e instanceof CheckpointerKeyError && /\/mixed\/dead → \/nowhere|\/mixed\/dead in .* soft link to \/nowhere/.test(e.message));
      assert.throws(() => strict.getSync('mixed'), (e: unknown) => e instanceof CheckpointerKeyError);
      strict.strict = false;
      assert.deepEqual(Object.keys((await strict.get('mixed')) as object), ['ok']);
      assert.throws(() => new HDF5Checkpointer(main, { strict: 'yes' as never }), TypeError);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('external links that form a cycle across files are detected, by get and by a walk', async () => {
    const dir = tempDir('checkpointer-elink-cycle-');
    h5py(`
import os
d = sys.argv[1]
with h5py.File(os.path.join(d, 'c1.h5'), 'w') as f:
    f['to2'] = h5py.ExternalLink('c2.h5', '/')
    f['x'] = h5py.ExternalLink('c2.h5', '/y')
    f['v'] = 1
with h5py.File(os.path.join(d, 'c2.h5'), 'w') as f:
    f['to1'] = h5py.ExternalLink('c1.h5', '/')
    f['y'] = h5py.ExternalLink('c1.h5', '/x')
    f['w'] = 2
`, dir);
    const chk = Checkpointer.fromFile(path.join(dir, 'c1.h5'));
    await assert.rejects(chk.get('x'), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_UNSUPPORTED_VALUE' && /cycle/.test(e.message));
    assert.equal(await chk.get(['to2', 'w']), 2);
    assert.equal(await chk.get(['to2', 'to1', 'to2', 'to1', 'v']), 1, 'each name of the key follows one link: no cycle');
    const whole = (await chk.get('to2')) as Record<string, unknown>;
    assert.equal(whole.w, 2);
    assert.ok(!('y' in whole), 'the cycle is left out');
    assert.ok(chk.skipped.some((s) => /cycle/.test(s.error.message)));
  });

  it('a damaged external target is that key\'s typed error or a partial read, never a crash', async () => {
    const damaged = path.join(SHARED, 'fixtures', 'damaged');
    const dir = tempDir('checkpointer-elink-damaged-');
    const names = fs.readdirSync(damaged).filter((n) => /^h5-(crash|hang)/.test(n));
    for (const n of names) fs.copyFileSync(path.join(damaged, n), path.join(dir, n));
    h5py(`
import os
d = sys.argv[1]
with h5py.File(os.path.join(d, 'links.h5'), 'w') as f:
    f['ok'] = 1
    for n in sys.argv[2:]:
        f[n] = h5py.ExternalLink(n, '/')
`, dir, ...names);
    const chk = Checkpointer.fromFile(path.join(dir, 'links.h5'));
    await chk.with(async (c) => {
      for (const n of names) {
        try {
          const v = await c.get(n);
          assert.equal(typeof v, 'object', n);
        } catch (e) {
          assert.ok(e instanceof CheckpointerError, `${n}: ${String(e)}`);
        }
      }
      assert.equal(await c.get('ok'), 1);
    });
  });

  it('writes never go into another file: behind an external link they are ERR_NOT_WRITABLE; the link itself can be replaced or deleted', async () => {
    const file = path.join(sub, 'write.h5');
    fs.copyFileSync(main, file);
    const before = sha(target);
    const chk = Checkpointer.fromFile(file);
    await assert.rejects(chk.set(['ext', 'y'], 1), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_NOT_WRITABLE'
      && /external link \/ext → target\.h5:\/grp/.test(e.message));
    assert.throws(() => chk.deleteSync(['ext', 'x']), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_NOT_WRITABLE');
    await assert.rejects(chk.dataset(['ext', 'frames'], { dtype: 'float64', shape: [0, 2] }), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_NOT_WRITABLE');
    await assert.rejects(chk.dataset('ext_data'), (e: unknown) => e instanceof CheckpointerError && e.code === 'ERR_UNSUPPORTED_VALUE' && /external link/.test(e.message));
    await chk.set('ext', 7); // replaces the link
    assert.equal(await chk.delete('dangling'), true, 'a dangling link can be deleted');
    assert.equal(await chk.delete('ext_missing_file'), true);
    assert.equal(await chk.get('ext'), 7);
    assert.equal(sha(target), before, 'the linked file is untouched');
    const py = h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out({'ext': int(f['ext'][()]), 'type': f.get('ext', getlink=True).__class__.__name__, 'dangling': 'dangling' in f.keys(), 'emf': 'ext_missing_file' in f.keys(), 'x': int(f['ext_abs'][()])})`, file);
    assert.deepEqual(py, { ext: 7, type: 'HardLink', dangling: false, emf: false, x: 5 });
  });

  it('a dataset handle opens a dataset through a soft link', async () => {
    const chk = Checkpointer.fromFile(main);
    await chk.with(async (c) => {
      const ds = await c.dataset(['soft_abs', 'v']);
      assert.equal(ds.shape.length, 0);
      await assert.rejects(c.dataset('dangling'), (e: unknown) => e instanceof CheckpointerKeyError);
    });
  });

  it('a walk reports the members the verifier found damaged without opening them (how a dict read leaves them out)', async () => {
    const chk = Checkpointer.fromFile(main);
    await chk.with(async (c) => {
      const file = (c.stream as HDF5Stream).file!;
      const [node] = file.execSync([{ op: 'walk', path: '/g', skip: ['/g/v'] }]) as unknown as [{ kind: string; names: string[]; children: { kind: string; error?: CheckpointerError }[] }];
      assert.equal(node.kind, 'group');
      const v = node.children[node.names.indexOf('v')]!;
      assert.equal(v.kind, 'error');
      assert.equal(v.error!.code, 'ERR_CHECKPOINT_CORRUPT');
      assert.equal(node.children[node.names.indexOf('soft_rel')]!.kind, 'dataset', 'a soft link to it is resolved, not skipped: the verifier names the paths it saw');
    });
  });

  it('no HDF5 id is left open: external files are held by the session and closed with it', async () => {
    const chk = Checkpointer.fromFile(main);
    let externals: HDF5Stream['externals'] | undefined;
    await chk.with(async (c) => {
      for (const k of READABLE) await c.get(k);
      await c.keys();
      await c.get('mixed');
      await assert.rejects(c.get('ext_not_hdf5'));
      const s = c.stream as HDF5Stream;
      externals = s.externals;
      assert.equal(s.externals.size, 2, 'target.h5 and elsewhere/pref.h5, each opened once (the link back into main.h5 reads main.h5 itself)');
      assert.deepEqual(openObjects(c), [0, 0, 0]);
    });
    assert.equal(externals!.size, 0);
  });
});

describe('HDF5 links: the hdf5-json corpus', () => {
  const corpus = path.join(SHARED, 'fixtures', 'corpus', 'HDFGroup+hdf5-json');
  it('every file: keys(), get and attrs of every key give values or CheckpointerErrors; committed datatypes are no keys', async () => {
    const files = fs.readdirSync(corpus).filter((n) => n.endsWith('.h5'));
    assert.ok(files.length > 50);
    for (const name of files) {
      const file = path.join(corpus, name);
      const chk = Checkpointer.fromFile(file);
      try {
        await chk.with(async (c) => {
          const keys = await c.keys();
          for (const k of keys) {
            for (const call of [() => c.get(k), () => c.attrs(k)]) {
              try {
                await call();
              } catch (e) {
                assert.ok(e instanceof CheckpointerError, `${name} ${k}: ${(e as Error).stack}`);
              }
            }
          }
          await c.attrs();
        });
      } catch (e) {
        assert.ok(e instanceof CheckpointerError, `${name}: ${(e as Error).stack}`);
      }
    }
    for (const name of ['data__hdf5__committed_type.h5', 'data__hdf5__namedtype.h5', 'data__hdf5__compound_committed.h5']) {
      const file = path.join(corpus, name);
      const values = h5py(`
with h5py.File(sys.argv[1], 'r') as f:
    out([k for k in f.keys() if not isinstance(f[k], h5py.Datatype)])`, file);
      assert.deepEqual(await Checkpointer.fromFile(file).keys(), values, name);
    }
  });

  it('tall.h5: the dangling soft and external links inside g1 are left out, the rest of g1 reads', async () => {
    const chk = Checkpointer.fromFile(path.join(corpus, 'data__hdf5__tall.h5'));
    const g1 = (await chk.get('g1')) as Record<string, Record<string, unknown>>;
    assert.ok('g1.1' in g1 && 'g1.2' in g1);
    assert.deepEqual(chk.skipped.map((s) => s.path), ['/g1/g1.2/extlink', '/g1/g1.2/g1.2.1/slink']);
    await assert.rejects(new HDF5Checkpointer(path.join(corpus, 'data__hdf5__tall.h5'), { strict: true }).get('g1'), CheckpointerKeyError);
  });
});
