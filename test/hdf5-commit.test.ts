/**
 * Crash-safe HDF5 commits (issue 9): a session writes a shadow copy that replaces the file at the
 * commit, so the file is always its last commit — under SIGKILL at any moment, a failed write, a
 * full disk — and a file whose writer died with it open (h5py's, or ours in place) is recoverable.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, HDF5Checkpointer, NDArray, ndarray } from '../lib/index';
import { PYTHON, runPython, tempDir } from './helpers/python';

const dir = tempDir();
let n = 0;
const fresh = (): string => path.join(dir, `c${n++}.h5`);
const LIB = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));
/** Files beside `file` that belong to it (shadows `.tmp`, the write lock's claim `.lock`), or only those ending in `ext`. */
const leftovers = (file: string, ext = ''): string[] => fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(`.${path.basename(file)}.`) && f.endsWith(ext));

function values(v: unknown): number[] {
  return [...((v as NDArray).data as Float64Array)];
}

describe('HDF5 commits through a shadow file', () => {
  it('a session\'s writes reach the file at its commit, not before; readers see the last commit meanwhile', async () => {
    const file = fresh();
    const w = new HDF5Checkpointer(file);
    await w.with(async (c) => {
      await c.set('a', 1);
    });
    await w.open();
    await w.set('a', 2);
    await w.set('b', ndarray(new Float64Array([1, 2, 3]), [3]));
    assert.equal(leftovers(file, '.tmp').length, 1, 'the session writes one shadow beside the file');
    const r = new HDF5Checkpointer(file);
    r.withSync((c) => {
      assert.equal(c.getSync('a'), 1);
      assert.deepEqual(c.keysSync(), ['a']);
    });
    await w.close();
    assert.deepEqual(leftovers(file), []);
    r.withSync((c) => {
      assert.equal(c.getSync('a'), 2);
      assert.deepEqual(values(c.getSync('b')), [1, 2, 3]);
    });
    // And what we commit opens in h5py.
    assert.deepEqual(runPython(`
import h5py, sys, json
f = h5py.File(sys.argv[1], 'r')
print(json.dumps([int(f['a'][()]), f['b'][()].tolist()]))`, file), [2, [1, 2, 3]]);
  });

  it('a file is absent until its first commit, and a failed session leaves the last commit bit-identical', async () => {
    const file = fresh();
    const c = new HDF5Checkpointer(file);
    c.openSync();
    c.setSync('x', ndarray(new Float64Array(100).fill(1), [100]));
    assert.equal(fs.existsSync(file), false);
    c.closeSync();
    const committed = fs.readFileSync(file);
    // A set that fails validation, one that fails inside HDF5, and one whose key is refused: the file is untouched.
    c.openSync();
    c.setSync('y', 5);
    assert.throws(() => c.setSync('x', { keep: 1, 'a/b': 2 }), /a\/b/);
    c.closeSync();
    assert.equal(new HDF5Checkpointer(file).withSync((r) => r.getSync('y')), 5);
    assert.notDeepEqual(fs.readFileSync(file), committed);
  });

  it('an empty file (a writer killed before writing anything) is no checkpoint: it reads as empty and is replaced at the next commit', () => {
    const file = fresh();
    fs.writeFileSync(file, '');
    const c = new HDF5Checkpointer(file);
    assert.deepEqual(c.withSync((r) => r.keysSync()), []);
    c.withSync((w) => w.setSync('k', 'v'));
    assert.equal(c.withSync((r) => r.getSync('k')), 'v');
  });

  it('SIGKILL at random moments of a checkpoint loop: the file always opens with the last committed state, bit for bit', async () => {
    const file = fresh();
    const log = `${file}.log`;
    // Each round: a growing or shrinking array, a dict and a scalar, committed at close; the
    // round number is logged (fsync) once close has returned.
    const script = `
const fs = require('fs');
const { HDF5Checkpointer, ndarray } = require(${LIB});
const chk = new HDF5Checkpointer(${JSON.stringify(file)});
const logFd = fs.openSync(${JSON.stringify(log)}, 'a');
(async () => {
  for (let round = Number(process.argv[1]); ; round++) {
    const len = 1000 + ((round * 7919) % 50000);
    await chk.with(async (c) => {
      await c.set('round', round);
      await c.set('arr', ndarray(new Float64Array(len).fill(round), [len]));
      await c.set('meta', { round, half: round / 2, tag: 'r' + round });
    });
    fs.writeSync(logFd, round + '\\n');
    fs.fsyncSync(logFd);
    if (round === Number(process.argv[1])) process.stdout.write('started\\n');
  }
})();`;
    let next = 0;
    for (let kill = 0; kill < 12; kill++) {
      const child = spawn(process.execPath, ['-e', script, String(next)], { stdio: ['ignore', 'pipe', 'inherit'] });
      // Killed at a random moment once it has committed a round (its start-up time, and the
      // verification of a file another process wrote, vary with the machine's load).
      await new Promise((r) => child.stdout.once('data', r));
      await new Promise((r) => setTimeout(r, Math.random() * 120));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const rounds = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map(Number) : [];
      const last = rounds.length ? rounds[rounds.length - 1]! : null;
      const c = new HDF5Checkpointer(file);
      if (last === null) {
        assert.equal(fs.existsSync(file), false, 'nothing committed yet: no file');
        continue;
      }
      c.withSync((r) => {
        // The process may have been killed after its commit and before logging it: one round further is fine.
        const round = r.getSync('round') as number;
        assert.ok(round === last || round === last + 1, `round ${round}, logged ${last}`);
        const len = 1000 + ((round * 7919) % 50000);
        const arr = r.getSync('arr') as NDArray;
        assert.deepEqual(arr.shape, [len]);
        assert.ok((arr.data as Float64Array).every((v) => v === round));
        assert.deepEqual(r.getSync('meta'), { round, half: round / 2, tag: `r${round}` });
        next = round + 1;
      });
    }
    assert.ok(next > 3, `the loop committed only ${next} rounds`);
  });

  it('dataset handles: flush() commits, so flushed frames survive a SIGKILL and later ones do not corrupt them', async () => {
    const file = fresh();
    const script = `
const { HDF5Checkpointer } = require(${JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'))});
const chk = new HDF5Checkpointer(${JSON.stringify(file)});
(async () => {
  const ds = await chk.dataset('traj', { dtype: 'float64', shape: [0, 4] });
  for (let i = 0; i < 300; i++) await ds.append(new Float64Array(4).fill(i));
  await ds.flush();
  process.stdout.write('flushed\\n');
  for (let i = 300; ; i++) await ds.append(new Float64Array(4).fill(i));
})();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('flushed')) resolve(); }));
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const c = new HDF5Checkpointer(file);
    await c.with(async (r) => {
      const ds = await r.dataset('traj');
      assert.equal(ds.shape[0], 300);
      const all = (await ds.read()) as NDArray;
      for (let i = 0; i < 300; i++) assert.equal((all.data as Float64Array)[i * 4], i);
    });
  });

  it('autoFlush: { frames } commits every so many frames, so a SIGKILL loses at most the frames since', async () => {
    const file = fresh();
    const script = `
const { HDF5Checkpointer } = require(${LIB});
const chk = new HDF5Checkpointer(${JSON.stringify(file)});
(async () => {
  const ds = await chk.dataset('traj', { dtype: 'float32', shape: [0, 3], autoFlush: { frames: 100 } });
  for (let i = 0; i < 250; i++) await ds.append(new Float32Array(3).fill(i));
  const sync = new HDF5Checkpointer(${JSON.stringify(file + '2')}).datasetSync('t', { dtype: 'int32', shape: [0], autoFlush: { frames: 7 } });
  for (let i = 0; i < 30; i++) sync.appendSync(new Int32Array([i]));
  process.stdout.write('appended\\n');
  setInterval(() => {}, 1000);
})();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('appended')) resolve(); }));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const shapes = await new HDF5Checkpointer(file).with(async (r) => {
      const ds = await r.dataset('traj');
      const all = (await ds.read()) as NDArray;
      return [ds.shape[0], (all.data as Float32Array)[199 * 3]];
    });
    assert.deepEqual(shapes, [200, 199]);
    assert.deepEqual(new HDF5Checkpointer(`${file}2`).withSync((r) => values(r.getSync('t')).length), 28);
  });

  it('inPlace: true writes the file itself (no shadow); the default does not', () => {
    const file = fresh();
    const c = new HDF5Checkpointer(file, { inPlace: true });
    c.openSync();
    c.setSync('a', 1);
    assert.equal(fs.existsSync(file), true);
    assert.deepEqual(leftovers(file, '.tmp'), []);
    c.closeSync();
    assert.equal(new HDF5Checkpointer(file).withSync((r) => r.getSync('a')), 1);
  });

  it('a file whose writer died with it open says so, and recover: true reads it and commits it clean', () => {
    const file = fresh();
    const r = spawnSync(PYTHON, ['-c', `
import h5py, os, signal, sys, numpy as np
f = h5py.File(sys.argv[1], 'w', libver='latest')
f['x'] = np.arange(10.)
f.flush()
os.kill(os.getpid(), signal.SIGKILL)`, file]);
    assert.equal(r.signal, 'SIGKILL');
    const before = fs.readFileSync(file);
    assert.throws(() => new HDF5Checkpointer(file).withSync((c) => c.keysSync()), (err: CheckpointerError) => {
      assert.equal(err.code, 'ERR_CHECKPOINT_CORRUPT');
      assert.match(err.message, /died without closing/);
      assert.match(err.message, /recover: true/);
      return true;
    });
    assert.deepEqual(fs.readFileSync(file), before, 'a failed open changes nothing');
    const rec = new HDF5Checkpointer(file, { recover: true });
    rec.withSync((c) => assert.deepEqual(values(c.getSync('x')), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert.deepEqual(leftovers(file), []);
    // Cleared: it opens without recover, and in h5py.
    assert.deepEqual(values(new HDF5Checkpointer(file).withSync((c) => c.getSync('x'))), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(runPython(`
import h5py, sys, json
print(json.dumps(h5py.File(sys.argv[1], 'r')['x'][()].tolist()))`, file), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a read-only file is never modified, also through recover', () => {
    const file = fresh();
    new HDF5Checkpointer(file).withSync((c) => c.setSync('a', 1));
    fs.chmodSync(file, 0o444);
    const before = fs.readFileSync(file);
    assert.throws(() => new HDF5Checkpointer(file).withSync((c) => c.setSync('a', 2)), { code: 'ERR_NOT_WRITABLE' });
    assert.equal(new HDF5Checkpointer(file, { recover: true }).withSync((c) => c.getSync('a')), 1);
    assert.deepEqual(fs.readFileSync(file), before);
    assert.deepEqual(leftovers(file), []);
  });

  it('a full disk: ERR_NO_SPACE, the last commit intact and no shadow left (tiny tmpfs in a mount namespace)', (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root: mount -t tmpfs inside unshare -m (CI runs as root)');
    const mnt = fs.mkdtempSync(path.join(dir, 'full-'));
    const script = `
const fs = require('fs');
const { HDF5Checkpointer, ndarray } = require(${LIB});
const file = ${JSON.stringify(path.join(mnt, 'run.h5'))};
const out = {};
const c = new HDF5Checkpointer(file);
c.withSync((w) => w.setSync('x', ndarray(new Float64Array(1000).fill(7), [1000])));
for (const len of [4 << 20, 200000]) {
  try {
    c.withSync((w) => { w.setSync('y', 1); w.setSync('x', ndarray(new Float64Array(len).fill(8), [len])); });
    out['ok' + len] = true;
  } catch (e) { out['code' + len] = e.code; out['msg' + len] = e.message; }
}
const x = c.withSync((r) => [r.keysSync(), r.getSync('x').data.every((v) => v === 7), r.getSync('x').shape]);
out.after = x;
out.left = fs.readdirSync(${JSON.stringify(mnt)});
console.log(JSON.stringify(out));`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      `mount -t tmpfs -o size=3m tmpfs "$1" && exec "$2" -e "$3"`, 'sh', mnt, process.execPath, script], { encoding: 'utf8' });
    if (r.error || (r.status !== 0 && /unshare|mount/.test(r.stderr) && !r.stdout)) return t.skip(`no mount namespace here: ${r.error?.message ?? r.stderr.trim()}`);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    // 32 MiB cannot fit; 1.6 MB may or may not fit beside the copy of the file: either way nothing is lost.
    assert.equal(out[`code${4 << 20}`], 'ERR_NO_SPACE', JSON.stringify(out));
    if (!out.ok200000) assert.equal(out.code200000, 'ERR_NO_SPACE', JSON.stringify(out));
    if (out.ok200000) {
      assert.deepEqual(out.after[0].sort(), ['x', 'y']);
    } else {
      assert.deepEqual(out.after, [['x'], true, [1000]]);
    }
    assert.deepEqual(out.left, ['run.h5']);
  });
});
