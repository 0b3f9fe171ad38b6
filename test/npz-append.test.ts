/**
 * Adding keys to an `.npz` (issue 11, "many small keys"): a session that only adds keys commits by
 * a kernel copy of the old file up to its central directory, the new members, the old directory's
 * bytes verbatim and the new entries — so the old members are the same bytes at the same offsets —
 * through the same temp file + rename as a rewrite. Files numpy wrote and files we wrote, opened
 * eagerly (small) or lazily (more than 20,000 members); stored and deflated; ZIP64; durable or not;
 * replacing and deleting still rewrite; SIGKILL during the commit leaves the old or the new file.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NumPyCheckpointer, NDArray } from '../lib/index';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('npz-append-');
let n = 0;
const fresh = (): string => path.join(dir, `f${n++}.npz`);
const entry = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));

/** Where a zip's central directory starts (from its end record, or its ZIP64 end record). */
function cdOffsetOf(b: Buffer): number {
  const eocd = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, 'no end record');
  const off = b.readUInt32LE(eocd + 16);
  if (off !== 0xffffffff && b.readUInt16LE(eocd + 10) !== 0xffff) return off;
  assert.equal(b.readUInt32LE(eocd - 20), 0x07064b50, 'ZIP64 locator');
  const rec = Number(b.readBigUInt64LE(eocd - 20 + 8));
  return Number(b.readBigUInt64LE(rec + 48));
}

/** Python: zipfile's check, every member's value (as numpy.load reads it) summed, the methods, the end-record kind. */
const PY_READ = `
import sys, json, zipfile, numpy as np
f = sys.argv[1]
zf = zipfile.ZipFile(f)
assert zf.testzip() is None
info = zf.infolist()
raw = open(f, 'rb').read()
out = {'n': len(info), 'methods': {i.filename: i.compress_type for i in info if not i.filename.startswith('k')},
       'zip64end': raw.rfind(b'PK\\x06\\x06') >= 0, 'values': {}}
want = sys.argv[2].split(',') if len(sys.argv) > 2 and sys.argv[2] else None
z = np.load(f, allow_pickle=False)
for name in (want if want is not None else z.files):
    out['values'][name] = float(np.asarray(z[name]).astype('f8').sum())
print(json.dumps(out))
`;

interface PyRead { n: number; methods: Record<string, number>; zip64end: boolean; values: Record<string, number> }

function numpyWrites(file: string, keys: number): void {
  runPython(`
import sys, numpy as np
np.savez(sys.argv[1], **{'k%d' % i: np.array(float(i)) for i in range(int(sys.argv[2]))})
print('null')`, file, String(keys));
}

/**
 * zipfile's own layout (writestr: the current time, no ZIP64 extra field, one member deflated),
 * which a rewrite here would not reproduce byte for byte (numpy.savez's it would).
 */
function zipfileWrites(file: string, keys: number): void {
  runPython(`
import sys, io, zipfile, numpy as np
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for i in range(int(sys.argv[2])):
        b = io.BytesIO()
        np.lib.format.write_array(b, np.array(float(i)))
        z.writestr('k%d.npy' % i, b.getvalue(), compress_type=zipfile.ZIP_DEFLATED if i == 3 else zipfile.ZIP_STORED)
print('null')`, file, String(keys));
}

function oursWrites(file: string, keys: number): void {
  new NumPyCheckpointer(file, { durable: false }).withSync((c) => { for (let i = 0; i < keys; i++) c.setSync(`k${i}`, i); });
}

/** Adds the same few keys, one of them nested and one an array. */
async function addKeys(file: string, mode: 'sync' | 'async', opts: { durable?: boolean; compression?: 'none' | 'deflate' } = {}): Promise<void> {
  const big = new Float64Array(5000).map((_, i) => i);
  if (mode === 'sync') {
    new NumPyCheckpointer(file, opts).withSync((c) => {
      c.setSync('added', 2.5);
      c.setSync(['tree', 'leaf'], Int32Array.of(1, 2, 3));
      c.setSync('arr', big);
    });
  } else {
    await new NumPyCheckpointer(file, opts).with(async (c) => {
      await c.set('added', 2.5);
      await c.set(['tree', 'leaf'], Int32Array.of(1, 2, 3));
      await c.set('arr', big);
    });
  }
}

const ADDED_SUMS = { added: 2.5, 'tree::>|<::leaf': 6, arr: (4999 * 5000) / 2 };

describe('adding keys to an .npz appends: the old members are not rewritten', () => {
  const cases: { who: 'numpy' | 'zipfile' | 'ours'; keys: number; mode: 'sync' | 'async'; durable: boolean; compression: 'none' | 'deflate' }[] = [
    { who: 'zipfile', keys: 40, mode: 'sync', durable: true, compression: 'none' },
    { who: 'zipfile', keys: 25_000, mode: 'async', durable: false, compression: 'deflate' },
    { who: 'numpy', keys: 40, mode: 'sync', durable: true, compression: 'none' },
    { who: 'numpy', keys: 25_000, mode: 'async', durable: false, compression: 'none' },
    { who: 'ours', keys: 40, mode: 'async', durable: true, compression: 'deflate' },
    { who: 'ours', keys: 25_000, mode: 'sync', durable: false, compression: 'deflate' },
    { who: 'ours', keys: 25_000, mode: 'async', durable: true, compression: 'none' },
  ];
  for (const k of cases) {
    it(`${k.who}'s ${k.keys.toLocaleString('en')}-key file, ${k.mode}, durable: ${k.durable}, ${k.compression}: old bytes unchanged, numpy and we read every key`, async () => {
      const file = fresh();
      if (k.who === 'numpy') numpyWrites(file, k.keys);
      else if (k.who === 'zipfile') zipfileWrites(file, k.keys);
      else oursWrites(file, k.keys);
      const before = fs.readFileSync(file);
      const oldCd = cdOffsetOf(before);
      await addKeys(file, k.mode, { durable: k.durable, compression: k.compression });
      const after = fs.readFileSync(file);
      // No rebuild: every byte before the old central directory is where it was.
      assert.ok(after.length > before.length);
      assert.ok(after.subarray(0, oldCd).equals(before.subarray(0, oldCd)), 'the old members moved or changed');
      // The old directory's bytes follow the new members verbatim.
      const newCd = cdOffsetOf(after);
      assert.ok(after.subarray(newCd, newCd + (before.length - oldCd) - 22).equals(before.subarray(oldCd, before.length - 22)), 'the old directory was rebuilt');

      const py = runPython<PyRead>(PY_READ, file);
      assert.equal(py.n, k.keys + 3);
      for (let i = 0; i < k.keys; i++) assert.equal(py.values[`k${i}`], i, `k${i}`);
      for (const [name, sum] of Object.entries(ADDED_SUMS)) assert.equal(py.values[name], sum, name);
      assert.equal(py.methods['arr.npy'], k.compression === 'deflate' ? 8 : 0);

      await new NumPyCheckpointer(file).with(async (c) => {
        const keys = await c.keys();
        assert.equal(keys.length, k.keys + 3);
        assert.deepEqual(keys.slice(-3), ['added', 'tree', 'arr']);
        assert.equal(await c.get(`k${k.keys - 1}`), k.keys - 1);
        assert.equal(await c.get('added'), 2.5);
        assert.deepEqual(Array.from((await c.get("tree") as { leaf: NDArray }).leaf.data as Int32Array), [1, 2, 3]);
        assert.equal((await c.get('arr') as NDArray).data[4999], 4999);
      });
    });
  }

  it('reading old keys in the session, then adding, still appends; adding an existing key name is a replace', async () => {
    const file = fresh();
    zipfileWrites(file, 25_000);
    const before = fs.readFileSync(file);
    await new NumPyCheckpointer(file, { durable: false }).with(async (c) => {
      assert.equal(await c.get('k123'), 123); // indexes the lazily opened file
      await c.set('fresh', 1);
      assert.equal((await c.keys()).length, 25_001);
    });
    const after = fs.readFileSync(file);
    assert.ok(after.subarray(0, cdOffsetOf(before)).equals(before.subarray(0, cdOffsetOf(before))));
    // k12 is a prefix of k120..k129 and k1200..: only the exact name counts as present.
    await new NumPyCheckpointer(file, { durable: false }).with(async (c) => {
      await c.set('k12x', 5);
      await c.set('k1', 'one'); // present: replaced (the file is rewritten)
    });
    const py = runPython<PyRead>(PY_READ, file, 'k12,k12x,fresh,k24999');
    assert.equal(py.n, 25_002);
    assert.deepEqual(py.values, { k12: 12, k12x: 5, fresh: 1, k24999: 24999 });
    const c = new NumPyCheckpointer(file);
    c.withSync(() => {
      assert.equal(c.getSync('k1'), 'one');
      assert.equal(c.keysSync().length, 25_002);
    });
  });

  it('an archive that ends in a comment longer than what is added: the appended file is cut where it ends, nothing stale after its end record', async () => {
    const file = fresh();
    // Left after the new end record, the comment's bytes would be junk at the end of the file.
    const oldCd = runPython<number>(`
import sys, io, zipfile, numpy as np
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for i in range(5):
        b = io.BytesIO()
        np.lib.format.write_array(b, np.array(float(i)))
        z.writestr('k%d.npy' % i, b.getvalue())
    z.comment = b'x' * 2000
print(zipfile.ZipFile(sys.argv[1]).start_dir)`, file);
    const before = fs.readFileSync(file);
    for (const mode of ['sync', 'async'] as const) {
      const key = `added_${mode}`;
      if (mode === 'sync') new NumPyCheckpointer(file, { durable: false }).withSync((c) => c.setSync(key, 7));
      else await new NumPyCheckpointer(file, { durable: false }).with((c) => c.set(key, 7));
      const after = fs.readFileSync(file);
      assert.ok(oldCd > 0 && after.subarray(0, oldCd).equals(before.subarray(0, oldCd)), 'appended, not rewritten');
      assert.equal(after.readUInt32LE(after.length - 22), 0x06054b50, 'the file ends with its end record');
      assert.equal(after.readUInt16LE(after.length - 2), 0, 'and no comment');
    }
    const py = runPython<PyRead>(PY_READ, file);
    assert.equal(py.n, 7);
    assert.deepEqual(py.values, { k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, added_sync: 7, added_async: 7 });
  });

  it('replacing and deleting keys of a lazily opened file rewrite it; numpy and we read the result', () => {
    const file = fresh();
    zipfileWrites(file, 25_000);
    new NumPyCheckpointer(file, { durable: false }).withSync((c) => {
      c.setSync('k5', 500);
      assert.equal(c.deleteSync('k6'), true);
      c.setSync('new', 7);
    });
    const py = runPython<PyRead>(PY_READ, file, 'k4,k5,k7,new');
    assert.equal(py.n, 25_000);
    assert.deepEqual(py.values, { k4: 4, k5: 500, k7: 7, new: 7 });
    const c = new NumPyCheckpointer(file);
    c.withSync(() => {
      assert.equal(c.hasSync('k6'), false);
      assert.equal(c.getSync('k5'), 500);
      assert.equal(c.keysSync().length, 25_000);
    });
    // A delete of a key set in the same lazy session, and of an absent key, leaves an append.
    const before = fs.readFileSync(file);
    new NumPyCheckpointer(file, { durable: false }).withSync((c2) => {
      c2.setSync('tmp', 1);
      assert.equal(c2.deleteSync('tmp'), true);
      assert.equal(c2.deleteSync('absent'), false);
      c2.setSync('kept', 2);
    });
    const after = fs.readFileSync(file);
    assert.ok(after.subarray(0, cdOffsetOf(before)).equals(before.subarray(0, cdOffsetOf(before))));
    assert.deepEqual(runPython<PyRead>(PY_READ, file, 'kept,k7').values, { kept: 2, k7: 7 });
  });

  it('ZIP64: appended entries past the offset limit, and an append past 65,535 entries, get ZIP64 fields numpy reads', async () => {
    // Offsets past a lowered limit (the same code path as past 2 GiB).
    const small = fresh();
    oursWrites(small, 30);
    await new NumPyCheckpointer(small, { durable: false, zip64Limit: 1000 }).with(async (c) => { await c.set('far', new Float64Array(300).fill(1)); });
    let py = runPython<PyRead>(PY_READ, small);
    assert.equal(py.zip64end, true);
    assert.equal(py.values.far, 300);
    assert.equal(py.values.k29, 29);
    assert.equal(await new NumPyCheckpointer(small).get('k29'), 29);

    // 65,535 entries fit the plain end record; one more needs the ZIP64 one.
    const many = fresh();
    oursWrites(many, 65_535);
    assert.equal(runPython<PyRead>(PY_READ, many, 'k0').zip64end, false);
    new NumPyCheckpointer(many, { durable: false }).withSync((c) => c.setSync('one_more', 3));
    py = runPython<PyRead>(PY_READ, many, 'k0,k65534,one_more');
    assert.equal(py.n, 65_536);
    assert.equal(py.zip64end, true);
    assert.deepEqual(py.values, { k0: 0, k65534: 65534, one_more: 3 });
    const c = new NumPyCheckpointer(many);
    c.withSync(() => {
      assert.equal(c.keysSync().length, 65_536);
      assert.equal(c.getSync('one_more'), 3);
    });
  });

  it('a file another writer replaced (ignoring the lock) after the session opened it is written whole from what the session read', async () => {
    const file = fresh();
    oursWrites(file, 25_000);
    await new NumPyCheckpointer(file, { durable: false }).with(async (c) => {
      await c.set('mine', 1); // the lock is taken, the file is what was opened
      runPython(`
import sys, os, numpy as np
np.savez(sys.argv[1] + '.other.npz', other=np.array(9.0))
os.replace(sys.argv[1] + '.other.npz', sys.argv[1])
print('null')`, file);
    });
    const py = runPython<PyRead>(PY_READ, file, 'k0,k24999,mine');
    assert.equal(py.n, 25_001);
    assert.deepEqual(py.values, { k0: 0, k24999: 24999, mine: 1 });
  });

  it('a dataset handle streaming a new member into a lazily opened file: flushed mid-session and closed, appended; numpy reads it', async () => {
    const file = fresh();
    zipfileWrites(file, 25_000);
    const before = fs.readFileSync(file);
    const chk = new NumPyCheckpointer(file, { durable: false });
    await chk.open();
    const ds = await chk.dataset(['run', 'frames'], { dtype: 'float64', shape: [0, 4] });
    for (let i = 0; i < 10; i++) await ds.append(Float64Array.of(i, i, i, i));
    await ds.flush(); // a commit while the session goes on
    assert.deepEqual(runPython<PyRead>(PY_READ, file, 'run::>|<::frames,k7').values, { 'run::>|<::frames': 4 * 45, k7: 7 });
    for (let i = 10; i < 20; i++) await ds.append(Float64Array.of(i, i, i, i));
    await ds.close();
    await chk.set('after', 1);
    await chk.close();
    const after = fs.readFileSync(file);
    assert.ok(after.subarray(0, cdOffsetOf(before)).equals(before.subarray(0, cdOffsetOf(before))));
    const py = runPython<PyRead>(PY_READ, file, 'run::>|<::frames,after,k24999');
    assert.equal(py.n, 25_002);
    assert.deepEqual(py.values, { 'run::>|<::frames': 4 * 190, after: 1, k24999: 24999 });
  });
});

describe('an append commit survives SIGKILL', () => {
  it('killed at random moments while adding keys: the file is the old or the new checkpoint, every key intact, for zipfile and for us', async () => {
    const file = fresh();
    zipfileWrites(file, 25_000);
    const base = fs.readFileSync(file);
    const baseCd = cdOffsetOf(base);
    const kills = Number(process.env.CHECKPOINTER_KILLS ?? 8);
    let added = 0;
    for (let round = 0; round < kills; round++) {
      // Each session adds one new key x<n> (and a deflated array on odd rounds): only appends.
      const script = `
const fs = require('fs');
const { NumPyCheckpointer } = require(${entry});
const file = ${JSON.stringify(file)};
let n = ${added};
fs.writeSync(1, 'ready\\n');
(async () => { for (;;) { await new NumPyCheckpointer(file, { durable: ${round % 2 === 0}, compression: ${round % 2 ? "'deflate'" : "'none'"} }).with(async (c) => {
  await c.set('x' + n, n);
  if (${round % 2}) await c.set('y' + n, new Float64Array(20000).fill(n));
}); n++; } })();`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          if (!out.includes('ready') && (out + d).includes('ready')) setTimeout(() => child.kill('SIGKILL'), 20 + Math.floor(Math.random() * 300));
          out += d;
        });
        child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`not killed: ${signal}`))));
      });
      const py = runPython<{ n: number; xs: number[]; k: number[] }>(`
import sys, json, zipfile, numpy as np
zf = zipfile.ZipFile(sys.argv[1])
assert zf.testzip() is None
z = np.load(sys.argv[1], allow_pickle=False)
names = [i.filename[:-4] for i in zf.infolist()]
xs = sorted(int(z[k]) for k in names if k.startswith('x'))
assert all(float(z[k][0]) == float(k[1:]) for k in names if k.startswith('y'))
print(json.dumps({'n': len(names), 'xs': xs, 'k': [int(z['k0']), int(z['k24999'])]}))`, file);
      assert.deepEqual(py.k, [0, 24999]);
      // Old or new, never torn: the x keys committed are x0..x(m-1), each once.
      assert.deepEqual(py.xs, Array.from({ length: py.xs.length }, (_, i) => i));
      assert.ok(py.xs.length >= added);
      added = py.xs.length;
      const after = fs.readFileSync(file);
      assert.ok(after.subarray(0, baseCd).equals(base.subarray(0, baseCd)), 'the first members were rewritten');
      const c = new NumPyCheckpointer(file);
      c.withSync(() => {
        assert.equal(c.keysSync().length, py.n);
        for (const x of py.xs) assert.equal(c.getSync(`x${x}`), x);
      });
      // No temp file is left for readers to trip on once the next writer has run.
      new NumPyCheckpointer(file, { durable: false }).withSync((c2) => c2.setSync(`x${added}`, added));
      added++;
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(`.${path.basename(file)}.`)), []);
    }
    assert.ok(added >= kills, `only ${added} keys were committed in ${kills} rounds`);
  });
});
