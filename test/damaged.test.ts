/**
 * Damaged files never take the process down: every file of ../shared/fixtures/damaged (mutated
 * copies that crashed libhdf5, hung it, took 13 s and 2 GiB, let raw JS errors escape or returned
 * a different value), opened and read key by key in a child process, gives CheckpointerErrors
 * with a fitting code, with the process alive, its event loop turning and the file unchanged.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer } from '../lib/index';
import { hdf5Info } from '../lib/native';
import { trustCopy, verifierRuns } from '../lib/backends/hdf5-verify';
import { SHARED, tempDir } from './helpers/python';

// CHECKPOINTER_TEST_SHARED: ../shared elsewhere than beside the checkout (a helper's clone).
const FIXTURES = path.join(process.env.CHECKPOINTER_TEST_SHARED ?? SHARED, 'fixtures', 'damaged');
const dir = tempDir('damaged-');
const entry = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));
const hdf5 = hdf5Info().available;

/** What the child reports for each file: each step's outcome, and how the event loop fared. */
interface Report {
  steps: { what: string; ok: boolean; name?: string; code?: string; message?: string }[];
  ticks: number;
  maxGapMs: number;
  ms: number;
}

/**
 * The README's procedure for each file in turn, in one process: keys(), get of each key, each key
 * through dataset(key).read(); a 5 ms timer measures how long the event loop ever stood still.
 */
function readScript(files: readonly string[], sync: boolean): string {
  const call = sync
    ? { keys: 'chk.keysSync()', get: 'chk.getSync(k)', ds: 'chk.datasetSync(k)', read: 'ds.readSync()', close: 'ds.closeSync()' }
    : { keys: 'await chk.keys()', get: 'await chk.get(k)', ds: 'await chk.dataset(k)', read: 'await ds.read()', close: 'await ds.close()' };
  return `
const { Checkpointer } = require(${entry});
const out = {};
(async () => {
  for (const file of ${JSON.stringify(files)}) {
    process.stderr.write('reading ' + file + '\\n'); // the last one names the file if this process dies
    const steps = [];
    let ticks = 0, last = Date.now(), maxGapMs = 0;
    const timer = setInterval(() => { const now = Date.now(); maxGapMs = Math.max(maxGapMs, now - last); last = now; ticks++; }, 5);
    const note = (what, err) => steps.push(err === undefined ? { what, ok: true }
      : { what, ok: false, name: err && err.constructor && err.constructor.name, code: err && err.code, message: String(err && err.message).slice(0, 300) });
    const t0 = Date.now();
    const chk = Checkpointer.fromFile(file);
    let keys = [];
    try { keys = ${call.keys}; note('keys'); } catch (e) { note('keys', e); }
    for (const k of keys) {
      try { ${call.get}; note('get ' + k); } catch (e) { note('get ' + k, e); }
      try { const ds = ${call.ds}; try { ${call.read}; note('read ' + k); } finally { ${call.close}; } } catch (e) { note('read ' + k, e); }
    }
    const ms = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
    clearInterval(timer);
    out[file] = { steps, ticks, maxGapMs: Math.max(maxGapMs, Date.now() - last), ms };
  }
  process.stdout.write(JSON.stringify(out));
})();`;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Copies of the fixtures (a reader that wrote would be seen), read in one child process per API. */
const runs = new Map<boolean, { reports: Record<string, Report>; copies: Map<string, { file: string; sha: string }> }>();

function readAll(names: readonly string[], sync: boolean): { reports: Record<string, Report>; copies: Map<string, { file: string; sha: string }> } {
  const known = runs.get(sync);
  if (known) return known;
  const copies = new Map<string, { file: string; sha: string }>();
  for (const name of names) {
    const file = path.join(dir, `${sync ? 'sync' : 'async'}-${name}`);
    fs.copyFileSync(path.join(FIXTURES, name), file);
    copies.set(name, { file, sha: sha256(file) });
  }
  const r = spawnSync(process.execPath, ['-e', readScript([...copies.values()].map((c) => c.file), sync)], {
    encoding: 'utf8',
    timeout: 10_000 * names.length,
    killSignal: 'SIGKILL',
    env: { ...process.env, CHECKPOINTER_HDF5_VERIFY_STALL_MS: '500' },
    maxBuffer: 64 << 20,
  });
  assert.equal(r.signal, null, `the reading process died (${r.signal})${r.error ? `: ${r.error.message}` : ''}\n${r.stderr}`);
  assert.equal(r.status, 0, `the reading process exited with status ${r.status}\n${r.stderr}`);
  const result = { reports: JSON.parse(r.stdout) as Record<string, Report>, copies };
  runs.set(sync, result);
  return result;
}

/** The codes a damaged file of this kind may report (at least one of them once). */
function expectedCodes(name: string): string[] {
  if (name.startsWith('json-raw-')) return ['ERR_UNSUPPORTED_VALUE']; // valid JSON nested 5000 deep
  if (name.startsWith('npz-raw-')) return ['ERR_UNSUPPORTED_VALUE']; // a member ".npy": an empty key
  // Extent 64 -> 67,108,928 (chunks of 64, one stored): legal HDF5, as a sparse dataset is; whole
  // reads would fill a million chunks, slices still read.
  if (name.startsWith('h5-memory-')) return ['ERR_TOO_LARGE'];
  // Extents that no array holds (2^61 rows) are ERR_TOO_LARGE, as in a sparse h5py file.
  if (name.startsWith('h5-raw-RangeError-')) return ['ERR_CHECKPOINT_CORRUPT', 'ERR_TOO_LARGE'];
  return ['ERR_CHECKPOINT_CORRUPT'];
}

const fixtures = fs.existsSync(FIXTURES) ? fs.readdirSync(FIXTURES).filter((n) => /\.(h5|npz|json)$/.test(n)).sort() : [];

describe('damaged files', () => {
  it('the fixtures are there', () => assert.ok(fixtures.length >= 20, `found ${fixtures.length} in ${FIXTURES}`));

  const h5 = fixtures.filter((n) => n.endsWith('.h5'));
  for (const name of fixtures) {
    const isH5 = name.endsWith('.h5');
    // The sync API for the files that crashed or hung libhdf5 (it runs on the JS thread).
    for (const sync of /^h5-(crash|hang|memory)-/.test(name) ? [false, true] : [false]) {
      it(`${name} (${sync ? 'sync' : 'async'}): only CheckpointerErrors, the process alive, the file unchanged`, { skip: isH5 && !hdf5 ? 'no HDF5 addon' : false }, () => {
        const names = sync ? h5.filter((n) => /^h5-(crash|hang|memory)-/.test(n)) : fixtures.filter((n) => hdf5 || !n.endsWith('.h5'));
        const { reports, copies } = readAll(names, sync);
        const copy = copies.get(name)!;
        const report = reports[copy.file]!;
        assert.equal(sha256(copy.file), copy.sha, `${name}: reading changed the file`);
        const failed = report.steps.filter((s) => !s.ok);
        for (const s of failed) {
          assert.match(s.name ?? '', /^Checkpointer(Key)?Error$/, `${name}: ${s.what} threw ${s.name} ${s.code}: ${s.message}`);
          assert.notEqual(s.code, 'ERR_HDF5', `${name}: ${s.what}: a damaged file is ERR_CHECKPOINT_CORRUPT, not ERR_HDF5: ${s.message}`);
        }
        const want = expectedCodes(name);
        assert.ok(failed.some((s) => want.includes(s.code ?? '')), `${name}: no ${want.join('/')} among ${JSON.stringify(failed.map((s) => `${s.what}: ${s.code}`))}`);
        assert.ok(report.ms < 10_000, `${name}: took ${report.ms} ms`);
        if (!sync) {
          assert.ok(report.ticks > 0, `${name}: the timer never ran`);
          assert.ok(report.maxGapMs < 1000, `${name}: the event loop stood still for ${report.maxGapMs} ms`);
        }
      });
    }
  }
});

describe('verification of untrusted HDF5 files', { skip: hdf5 ? false : 'no HDF5 addon' }, () => {
  it('keeps the keys that are not damaged readable', async () => {
    const file = path.join(dir, 'memory.h5');
    fs.copyFileSync(path.join(FIXTURES, 'h5-memory-e16de3b596.h5'), file);
    const chk = Checkpointer.fromFile(file);
    await assert.rejects(chk.get('f64'), (e: Error & { code?: string }) => e.code === 'ERR_TOO_LARGE' && /never written/.test(e.message));
    const ds = await chk.dataset('f64');
    await assert.rejects(ds.read([[1, null, 2]]), (e: Error & { code?: string }) => e.code === 'ERR_TOO_LARGE');
    assert.equal((await ds.read([[0, 1000]])).shape[0], 1000); // a slice of it reads
    await ds.close();
    assert.equal(await chk.get('int'), 42);
    assert.ok((await chk.keys()).includes('f64'));
  });

  it('does not verify a file this process wrote, nor one it verified before', async () => {
    const file = path.join(dir, 'own.h5');
    const chk = Checkpointer.fromFile(file);
    await chk.set('x', Float64Array.of(1, 2, 3));
    const before = verifierRuns();
    const again = Checkpointer.fromFile(file);
    assert.deepEqual([...(await again.get('x') as { data: Float64Array }).data], [1, 2, 3]);
    again.getSync('x');
    assert.equal(verifierRuns(), before, 'a file written here was verified');

    // Written by another process: verified once, then trusted until it changes.
    const other = path.join(dir, 'other.h5');
    const w = spawnSync(process.execPath, ['-e', `require(${entry}).Checkpointer.fromFile(${JSON.stringify(other)}).setSync('y', 7)`], { encoding: 'utf8' });
    assert.equal(w.status, 0, w.stderr);
    const n0 = verifierRuns();
    assert.equal(await Checkpointer.fromFile(other).get('y'), 7);
    assert.equal(verifierRuns(), n0 + 1);
    assert.equal(Checkpointer.fromFile(other).getSync('y'), 7);
    assert.equal(verifierRuns(), n0 + 1, 'a file verified here was verified again');

    // A copy made for a shadow commit is known as its original is.
    const shadow = path.join(dir, '.other.h5.tmp.h5');
    fs.copyFileSync(other, shadow);
    trustCopy(other, shadow);
    assert.equal(Checkpointer.fromFile(shadow).getSync('y'), 7);
    assert.equal(verifierRuns(), n0 + 1, 'a trusted copy was verified');
    fs.copyFileSync(other, path.join(dir, 'plain-copy.h5'));
    assert.equal(Checkpointer.fromFile(path.join(dir, 'plain-copy.h5')).getSync('y'), 7);
    assert.equal(verifierRuns(), n0 + 2, 'a copy nobody vouched for is verified');
  });
});
