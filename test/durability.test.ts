/**
 * What survives a crash and a full disk for JSON and NumPy files: frames a dataset handle flushed
 * (by `flush()`, `autoFlush`, a full buffer on .npy) survive SIGKILL at a random moment; the file
 * always opens; a write that hits ENOSPC is ERR_NO_SPACE with the previous value intact and no temp
 * file left (on a 2 MiB tmpfs mounted in a private mount namespace: needs root and unshare).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer } from '../lib/index';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('durability-');
const entry = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));
const KILLS = Number(process.env.CHECKPOINTER_KILLS ?? 4);

function sideFiles(file: string): string[] {
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(`.${base}.`));
}

/**
 * A child appends frames [i, i / 2] forever with autoFlush every `every` frames, printing how many
 * frames are flushed each time that changes; it is SIGKILLed after `afterMs`. Resolves to the last
 * count it printed.
 */
function appendUntilKilled(file: string, every: number, afterMs: number, how: 'autoFlush' | 'flush'): Promise<number> {
  const script = `
const fs = require('fs');
const { Checkpointer } = require(${entry});
const chk = Checkpointer.fromFile(${JSON.stringify(file)});
const key = ${JSON.stringify(file.endsWith('.npy') ? 'arr_0' : 'frames')};
const ds = chk.datasetSync(key, { dtype: 'float64', shape: [0, 2]${how === 'autoFlush' ? `, autoFlush: { frames: ${every} }` : ''} });
fs.writeSync(1, 'ready\\n');
for (let i = 0; i < 1e7; i++) {
  ds.appendSync(Float64Array.of(i, i / 2));
  ${how === 'flush' ? `if ((i + 1) % ${every} === 0) ds.flushSync();` : ''}
  if ((i + 1) % ${every} === 0) fs.writeSync(1, (i + 1) + '\\n');
}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (!out.includes('ready') && (out + d).includes('ready')) setTimeout(() => child.kill('SIGKILL'), afterMs);
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`the child was not killed: ${err}`));
      const lines = out.split('\n');
      lines.pop(); // a line cut by the kill is not trusted
      const counts = lines.filter((l) => /^\d+$/.test(l)).map(Number);
      resolve(counts.length > 0 ? counts[counts.length - 1]! : 0);
    });
  });
}

describe('dataset handles: flushed frames survive SIGKILL', () => {
  for (const ext of ['.npy', '.npz']) {
    for (const how of ['autoFlush', 'flush'] as const) {
      it(`${ext}, ${how}: after ${KILLS} kills at random moments every file opens and holds every flushed frame, exact`, async () => {
        const files: string[] = [];
        const flushed: number[] = [];
        for (let k = 0; k < KILLS; k++) {
          const file = path.join(dir, `kill-${how}-${k}${ext}`);
          files.push(file);
          // .npz flushes rewrite the whole file: fewer, larger steps there.
          flushed.push(await appendUntilKilled(file, ext === '.npz' ? 500 : 100, 80 + Math.random() * 400, how));
        }
        const back = runPython<{ rows: number | null; exact: boolean }[]>(`
import sys, json, os, numpy as np
out = []
for f in sys.argv[1:]:
    if not os.path.exists(f):
        out.append({"rows": None, "exact": True}); continue
    a = np.load(f)
    if f.endswith('.npz'):
        a = a['frames']
    i = np.arange(a.shape[0], dtype=np.float64)
    out.append({"rows": int(a.shape[0]), "exact": bool(np.array_equal(a[:, 0], i) and np.array_equal(a[:, 1], i / 2))})
print(json.dumps(out))`, ...files);
        for (let k = 0; k < KILLS; k++) {
          const rows = back[k]!.rows ?? 0;
          assert.ok(rows >= flushed[k]!, `${files[k]}: ${rows} rows, but ${flushed[k]} were flushed`);
          assert.ok(back[k]!.exact, `${files[k]}: rows differ from what was appended`);
        }
        assert.ok(flushed.some((f) => f > 0), `no kill came after a flush (${flushed.join(', ')})`);
        // The next writer removes what the killed ones left (spool files of .npz streams).
        for (const file of files) {
          Checkpointer.fromFile(file).withSync((c) => c.datasetSync(ext === '.npy' ? 'arr_0' : 'frames', { dtype: 'float64', shape: [0, 2] }).closeSync());
          assert.deepEqual(sideFiles(file), [], `${file}: leftovers`);
        }
      });
    }
  }

  it('autoFlush options are checked before anything is created', () => {
    for (const [bad, type] of [[{}, TypeError], [{ frames: 0 }, RangeError], [{ ms: -1 }, RangeError], [{ frames: 'x' }, RangeError], [5, TypeError]] as const) {
      for (const ext of ['.npy', '.npz']) {
        const file = path.join(dir, `bad${ext}`);
        assert.throws(() => Checkpointer.fromFile(file).datasetSync(ext === '.npy' ? 'arr_0' : 'f', { dtype: 'int8', autoFlush: bad as never }), type);
        assert.equal(fs.existsSync(file), false);
      }
    }
  });

  it('.npy: autoFlush.frames writes the rows and the header every N frames (a reader sees them before any flush or close)', () => {
    const file = path.join(dir, 'every.npy');
    const ds = Checkpointer.fromFile(file).datasetSync('arr_0', { dtype: 'int16', shape: [0], autoFlush: { frames: 4 } });
    for (let i = 0; i < 10; i++) ds.appendSync(i);
    const rows = runPython<number>('import sys, json, numpy as np; print(json.dumps(int(np.load(sys.argv[1]).shape[0])))', file);
    assert.equal(rows, 8);
    ds.closeSync();
  });

  it('.npz: frames appended and not flushed are in the file after autoFlush.ms passes (async handle, timer)', async () => {
    const file = path.join(dir, 'timer.npz');
    const chk = Checkpointer.fromFile(file);
    const ds = await chk.dataset('frames', { dtype: 'int32', shape: [0], autoFlush: { ms: 50 } });
    await ds.append(Int32Array.of(1, 2, 3));
    assert.equal(fs.existsSync(file), false, 'not flushed yet');
    await new Promise((r) => setTimeout(r, 150));
    const back = Checkpointer.fromFile(file).getSync('frames') as { data: Int32Array };
    assert.deepEqual([...back.data], [1, 2, 3]);
    await ds.close();
  });
});

const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;

describe('full disk: ERR_NO_SPACE, the previous value intact, no temp file left', { skip: canMount ? false : 'needs root and unshare -m to mount a small tmpfs' }, () => {
  it('.json, .npz, .npy sets and .npz/.npy dataset streams on a 2 MiB tmpfs', () => {
    const mnt = fs.mkdtempSync(path.join(dir, 'tmpfs-'));
    const script = `
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Checkpointer } = require(${entry});
const dir = ${JSON.stringify(mnt)};
const out = {};
// Temp files; not the lock claim: a close that failed keeps its session (and lock) for a retry until the process exits.
const side = (f) => fs.readdirSync(dir).filter((n) => n.startsWith('.' + path.basename(f) + '.') && !n.endsWith('.lock'));
const big = new Float64Array(400000).map(() => Math.random()); // 3.2 MB (8 MB as JSON): more than the disk holds
for (const ext of ['.json', '.npz', '.npy']) {
  const f = path.join(dir, 'v' + ext);
  const key = ext === '.npy' ? 'arr_0' : 'a';
  Checkpointer.fromFile(f).setSync(key, Float64Array.of(1, 2, 3));
  const before = fs.readFileSync(f);
  let code = null;
  try { Checkpointer.fromFile(f).setSync(ext === '.npy' ? key : 'big', ext === '.json' ? Array.from(big) : big); } catch (e) { code = e.code; }
  out[ext] = { code, intact: fs.readFileSync(f).equals(before), side: side(f) };
}
for (const ext of ['.npz', '.npy']) {
  const f = path.join(dir, 's' + ext);
  const key = ext === '.npy' ? 'arr_0' : 'frames';
  const chk = Checkpointer.fromFile(f);
  const ds = chk.datasetSync(key, { dtype: 'float64', shape: [0, 1000] });
  const frame = (i) => new Float64Array(1000).fill(i);
  for (let i = 0; i < 10; i++) ds.appendSync(frame(i));
  ds.flushSync();
  let code = null;
  let i = 10;
  try { for (; i < 1000; i++) { ds.appendSync(frame(i)); if (i % 10 === 9) ds.flushSync(); } } catch (e) { code = e.code; }
  let rows = null;
  let loads = null;
  try {
    rows = Checkpointer.fromFile(f).getSync(key).shape[0];
    loads = execFileSync('/usr/bin/python3', ['-c', 'import sys, numpy as np; a = np.load(sys.argv[1]); a = a["frames"] if sys.argv[1].endswith(".npz") else a; print(int((a[:, 0] == np.arange(a.shape[0])).all()))', f], { encoding: 'utf8' }).trim();
  } catch (e) { loads = String(e.message); }
  out['stream' + ext] = { code, rows, loads, failedAt: i };
}
process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=2m tmpfs "$1" && exec "$2" -e "$3"`, 'sh', mnt, process.execPath, script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    for (const ext of ['.json', '.npz', '.npy']) {
      assert.deepEqual(out[ext], { code: 'ERR_NO_SPACE', intact: true, side: [] }, ext);
    }
    for (const ext of ['.npz', '.npy']) {
      const s = out[`stream${ext}`];
      assert.equal(s.code, 'ERR_NO_SPACE', `${ext} stream: ${JSON.stringify(s)}`);
      assert.ok(s.rows >= 10 && s.rows <= s.failedAt, `${ext} stream: ${JSON.stringify(s)}`);
      assert.equal(s.loads, '1', `${ext} stream: numpy loads the file and its rows are exact`);
    }
  });
});
