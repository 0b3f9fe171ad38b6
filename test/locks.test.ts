/**
 * One writer per file for every format (lib/io/lock.ts): a second writer gets ERR_LOCKED (or
 * waits), two processes' read-modify-write loops lose nothing, a killed holder's lock and leftovers
 * are cleared by the next writer, read-only files are never changed, a full disk is ERR_NO_SPACE
 * with the old value intact. Cross-process scenarios run in child processes.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer, CheckpointerError } from '../lib/index';
import { isTempNameFor, tempNameFor } from '../lib/io/atomic';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('locks-');
const entry = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));
let n = 0;
const fresh = (ext: string): string => path.join(dir, `f${n++}${ext}`);

function sideFiles(file: string): string[] {
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(`.${base}.`));
}

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof CheckpointerError, `expected a CheckpointerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

/** A child that takes the write lock on `file` (a set inside an open scope) and holds it until killed. */
async function holder(file: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const script = `
const { Checkpointer } = require(${entry});
const chk = Checkpointer.fromFile(${JSON.stringify(file)});
chk.openSync();
chk.setSync('held', 1);
process.stdout.write('locked\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('locked')) resolve(); });
    child.on('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
  return {
    pid: child.pid!,
    kill: () => new Promise<void>((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', () => resolve());
      child.kill('SIGKILL');
    }),
  };
}

describe('write locks: within one process', () => {
  for (const ext of ['.json', '.npz', '.npy', '.h5']) {
    it(`${ext}: a second Checkpointer's write is ERR_LOCKED naming this pid, and works once the first closed`, async () => {
      const file = fresh(ext);
      const a = Checkpointer.fromFile(file);
      const b = Checkpointer.fromFile(file);
      await a.open();
      await a.set('x', Float64Array.of(1, 2));
      await assert.rejects(b.set('x', Float64Array.of(3)), (err: unknown) => {
        isCode('ERR_LOCKED')(err);
        assert.match((err as Error).message, new RegExp(`pid ${process.pid}`));
        return true;
      });
      assert.throws(() => b.setSync('x', Float64Array.of(3)), isCode('ERR_LOCKED'));
      // Readers are not writers: b still reads.
      await b.keys();
      await a.close();
      await b.set('x', Float64Array.of(3));
      const back = (await b.get(ext === '.npy' ? 'arr_0' : 'x')) as { data?: ArrayLike<number> } & ArrayLike<number>;
      assert.deepEqual(Array.from(back.data ?? back), [3]);
      assert.deepEqual(sideFiles(file), [], 'no claim file left after the last close');
    });
  }

  it('a dataset handle created while another Checkpointer writes is ERR_LOCKED (.npy and .npz)', () => {
    for (const ext of ['.npy', '.npz']) {
      const file = fresh(ext);
      const a = Checkpointer.fromFile(file);
      const ds = a.datasetSync('frames', { dtype: 'float32', shape: [0, 2] });
      ds.appendSync(Float32Array.of(1, 2));
      const b = Checkpointer.fromFile(file);
      assert.throws(() => b.datasetSync('frames', { dtype: 'float32', shape: [0, 2] }), isCode('ERR_LOCKED'));
      ds.closeSync();
      b.withSync((c) => c.datasetSync('frames', { dtype: 'float32', shape: [0, 2] }).appendSync(Float32Array.of(3, 4)));
      assert.equal((a.getSync(ext === '.npy' ? 'arr_0' : 'frames') as { shape: number[] }).shape[0], 2);
    }
  });

  it("lock: 'wait' waits (the event loop runs meanwhile) until the holder closes; with timeoutMs it gives up with ERR_LOCKED", async () => {
    const file = fresh('.json');
    const a = Checkpointer.fromFile(file);
    await a.open();
    await a.set('a', 1);
    const t0 = Date.now();
    const timedOut = Checkpointer.fromFile(file, { lock: 'wait', timeoutMs: 150 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await assert.rejects(timedOut.set('b', 2), isCode('ERR_LOCKED'));
    assert.ok(Date.now() - t0 >= 140, `gave up after ${Date.now() - t0} ms`);
    assert.ok(ticks >= 5, `the event loop ran ${ticks} timer ticks while waiting`);
    const waiter = Checkpointer.fromFile(file, { lock: 'wait', timeoutMs: 5000 });
    const pending = waiter.set('b', 2);
    setTimeout(() => void a.close(), 100);
    await pending;
    clearInterval(timer);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { a: 1, b: 2 });
    // A synchronous wait on a holder in this same thread could never end: ERR_LOCKED at once.
    await a.open();
    await a.set('c', 3);
    assert.throws(() => Checkpointer.fromFile(file, { lock: 'wait' }).setSync('d', 4), isCode('ERR_LOCKED'));
    await a.close();
  });

  it('a write on top of a file another writer committed since this session opened: reloaded, or ERR_CONFLICT after a read', () => {
    const file = fresh('.json');
    Checkpointer.fromFile(file).setSync('base', 0);
    const a = Checkpointer.fromFile(file);
    a.openSync();
    Checkpointer.fromFile(file).setSync('other', 1); // commits while a is open, before a writes
    a.setSync('mine', 2);
    a.closeSync();
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { base: 0, other: 1, mine: 2 });

    a.openSync();
    const seen = a.getSync<number>('other');
    Checkpointer.fromFile(file).setSync('other', seen + 10);
    assert.throws(() => a.setSync('other', seen + 1), isCode('ERR_CONFLICT'));
    a.closeSync();
    assert.equal(Checkpointer.fromFile(file).getSync('other'), 11, 'the other writer\'s update is kept');

    // lockForWriting() before the read makes the read-modify-write safe.
    a.openSync();
    a.lockForWritingSync();
    assert.throws(() => Checkpointer.fromFile(file).setSync('other', 0), isCode('ERR_LOCKED'));
    a.setSync('other', a.getSync<number>('other') + 1);
    a.closeSync();
    assert.equal(Checkpointer.fromFile(file).getSync('other'), 12);
  });
});

describe('write locks: across processes', () => {
  it('a live holder in another process: ERR_LOCKED naming its pid; SIGKILLed, its lock and leftovers are cleared by the next writer', async () => {
    const file = fresh('.npz');
    Checkpointer.fromFile(file).setSync('before', Int32Array.of(1));
    const h = await holder(file);
    await assert.rejects(Checkpointer.fromFile(file).set('x', 1), (err: unknown) => {
      isCode('ERR_LOCKED')(err);
      assert.match((err as Error).message, new RegExp(`process ${h.pid} `));
      return true;
    });
    // Leftovers as a killed writer leaves them (temp and spool names with its pid), and one of a live process.
    const base = path.basename(file);
    const deadTemp = path.basename(tempNameFor(file)).replace(`.${process.pid}.`, `.${h.pid}.`);
    assert.ok(isTempNameFor(file, deadTemp));
    fs.writeFileSync(path.join(dir, deadTemp), 'half');
    fs.writeFileSync(path.join(dir, `.${base}.${h.pid}.abcdef01.spool`), 'rows');
    const live = spawn('sleep', ['30']);
    const liveTemp = `.${base}.${live.pid}.0123abcd.tmp`;
    fs.writeFileSync(path.join(dir, liveTemp), 'in progress');
    await h.kill();
    await Checkpointer.fromFile(file).set('x', 1);
    assert.deepEqual(sideFiles(file), [liveTemp], 'the killed writer\'s claim, temp and spool files are gone; the live one\'s is kept');
    live.kill('SIGKILL');
    assert.deepEqual(await Checkpointer.fromFile(file).keys(), ['before', 'x']);
  });

  it('leftovers named with a live pid but written before that process started (a reused pid) are removed; names are matched exactly', () => {
    const file = fresh('.json');
    const base = path.basename(file);
    const reused = `.${base}.1.00ff00ff.tmp`; // pid 1 runs, but started long after the year 2000
    fs.writeFileSync(path.join(dir, reused), 'old');
    fs.utimesSync(path.join(dir, reused), new Date('2000-01-01'), new Date('2000-01-01'));
    const unrelated = [`.${base}.1.zz.tmp`, `.${base}x.99999999.ab.tmp`, `${base}.1.ab.tmp`];
    for (const u of unrelated) fs.writeFileSync(path.join(dir, u), 'not a temp file of this target');
    assert.equal(isTempNameFor(file, reused), true);
    assert.deepEqual(unrelated.map((u) => isTempNameFor(file, u)), [false, false, false]);
    Checkpointer.fromFile(file).setSync('a', 1);
    assert.equal(fs.existsSync(path.join(dir, reused)), false);
    for (const u of unrelated) assert.ok(fs.existsSync(path.join(dir, u)), u);
  });

  it('a stale lock of a dead process, broken by 4 processes at the same instant: exactly one wins', async () => {
    const file = fresh('.json');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    fs.writeFileSync(path.join(dir, `.${path.basename(file)}.${deadPid}.0badc0de0bad.lock`), JSON.stringify({ pid: deadPid, thread: 0, start: 1, host: require('node:os').hostname() }));
    const startAt = Date.now() + 700;
    const script = `
const { Checkpointer } = require(${entry});
const chk = Checkpointer.fromFile(${JSON.stringify(file)});
while (Date.now() < ${startAt}) {}
// Each process marks its attempt; the winner holds the lock until all four have tried (a slow
// start on a loaded machine must not turn a later try into a second, sequential, win).
const fs = require('fs');
const marks = ${JSON.stringify(file)} + '.attempts';
const tried = () => fs.appendFileSync(marks, 'x');
try {
  chk.openSync();
  chk.setSync('winner', process.pid);
  tried();
  const until = Date.now() + 20000;
  while (Date.now() < until && fs.readFileSync(marks, 'utf8').length < 4) {}
  chk.closeSync();
  process.stdout.write('won');
} catch (err) {
  tried();
  process.stdout.write(err.code);
}`;
    const results = await Promise.all([0, 1, 2, 3].map(() => new Promise<string>((resolve) => {
      const c = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d));
      c.on('exit', () => resolve(out));
    })));
    assert.equal(results.filter((r) => r === 'won').length, 1, results.join(', '));
    assert.equal(results.filter((r) => r === 'ERR_LOCKED').length, 3, results.join(', '));
    fs.rmSync(`${file}.attempts`);
    assert.deepEqual(sideFiles(file), [], 'the stale claim is gone');
  });

  for (const ext of ['.json', '.npz']) {
    it(`${ext}: two processes doing 100 read-modify-write commits each of their own keys lose none`, async () => {
      const file = fresh(ext);
      const script = (me: string) => `
const { Checkpointer, CheckpointerError } = require(${entry});
const chk = Checkpointer.fromFile(${JSON.stringify(file)}, { lock: 'wait', timeoutMs: 30000 });
let conflicts = 0;
for (let i = 0; i < 100; i++) {
  for (;;) {
    try {
      chk.withSync((c) => {
        const v = c.getSync(${JSON.stringify(me)}, 0);
        c.setSync(${JSON.stringify(me)}, v + 1);
      });
      break;
    } catch (err) {
      if (!(err instanceof CheckpointerError && err.code === 'ERR_CONFLICT')) throw err;
      conflicts++;
    }
  }
}
process.stdout.write(JSON.stringify({ conflicts }));`;
      const run = (me: string) => new Promise<{ conflicts: number }>((resolve, reject) => {
        const c = spawn(process.execPath, ['-e', script(me)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let errText = '';
        c.stdout.on('data', (d: Buffer) => (out += d));
        c.stderr.on('data', (d: Buffer) => (errText += d));
        c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(errText))));
      });
      const [p, q] = await Promise.all([run('p'), run('q')]);
      const back = Checkpointer.fromFile(file);
      assert.equal(back.getSync('p'), 100);
      assert.equal(back.getSync('q'), 100);
      assert.deepEqual(sideFiles(file), []);
      // Every conflict was reported, not lost (how many depends on the interleaving).
      assert.ok(p.conflicts >= 0 && q.conflicts >= 0);
    });
  }

  it('.npy: two processes appending 100 frames each, one session per frame, keep all 200', async () => {
    const file = fresh('.npy');
    const script = (tag: number) => `
const { Checkpointer } = require(${entry});
const chk = Checkpointer.fromFile(${JSON.stringify(file)}, { lock: 'wait', timeoutMs: 30000 });
for (let i = 0; i < 100; i++) {
  const ds = chk.datasetSync('arr_0', { dtype: 'float64', shape: [0, 2] });
  ds.appendSync(Float64Array.of(${tag}, i));
  ds.closeSync();
}`;
    await Promise.all([1, 2].map((tag) => new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ['-e', script(tag)], { stdio: ['ignore', 'inherit', 'pipe'] });
      let errText = '';
      c.stderr.on('data', (d: Buffer) => (errText += d));
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(errText))));
    })));
    const back = runPython(`
import sys, json, numpy as np
a = np.load(sys.argv[1])
print(json.dumps({"shape": list(a.shape), "by": {str(t): sorted(a[a[:, 0] == t][:, 1].astype(int).tolist()) for t in (1, 2)}}))`, file);
    assert.deepEqual(back.shape, [200, 2]);
    assert.deepEqual(back.by['1'], [...Array(100).keys()]);
    assert.deepEqual(back.by['2'], [...Array(100).keys()]);
  });
});

describe('read-only files are never modified or removed', () => {
  for (const [ext, op] of [['.npy', 'delete'], ['.npy', 'set'], ['.npz', 'delete'], ['.npz', 'set'], ['.json', 'delete'], ['.json', 'set']] as const) {
    it(`${ext}: ${op} on a file without write bits is ERR_NOT_WRITABLE and the file is unchanged`, async () => {
      const file = fresh(ext);
      Checkpointer.fromFile(file).setSync(ext === '.npy' ? 'arr_0' : 'a', Float64Array.of(1, 2, 3));
      fs.chmodSync(file, 0o444);
      const before = fs.readFileSync(file);
      const chk = Checkpointer.fromFile(file);
      const key = ext === '.npy' ? 'arr_0' : 'a';
      if (op === 'delete') {
        await assert.rejects(chk.delete(key), isCode('ERR_NOT_WRITABLE'));
        assert.throws(() => chk.deleteSync(key), isCode('ERR_NOT_WRITABLE'));
      } else {
        await assert.rejects(chk.set(key, Float64Array.of(9)), isCode('ERR_NOT_WRITABLE'));
      }
      assert.equal(chk.isOpen, false, 'the refused write leaves nothing open');
      assert.deepEqual(fs.readFileSync(file), before);
      assert.deepEqual(sideFiles(file), []);
    });
  }
});
