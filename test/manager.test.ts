/**
 * CheckpointManager end to end, for every format (h5 where the addon loads): naming, metadata,
 * the keep policy and its order, overwrite, restore's fallback past damaged steps, close, and a
 * save SIGKILLed in a child process (the step absent or complete, older steps intact, the killed
 * save's temporary files removed by the next manager).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, CheckpointManager, MANAGER_RECORD_KEY, NDArray, ndarray } from '../lib/index';
import type { PruneEvent, SkipEvent, StepFormat } from '../lib/index';
import { loadNative } from '../lib/native';
import { tempDir } from './helpers/python';

const root = tempDir('checkpointer-manager-');
let n = 0;
const freshDir = (): string => path.join(root, `m${n++}`);
/** The directory's files, without the write lock's claim of a manager still open (`.manager.<pid>.<hex>.lock`). */
const listing = (dir: string): string[] => fs.readdirSync(dir).filter((f) => !f.endsWith('.lock')).sort();

const hdf5Loads = ((): boolean => {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
})();
const FORMATS: StepFormat[] = hdf5Loads ? ['json', 'npz', 'h5'] : ['json', 'npz'];

/** A state whose every key is checked on restore. */
function stateOf(step: number): Record<string, unknown> {
  return {
    positions: ndarray(Float64Array.from({ length: 30 }, (_, i) => step + i / 7), [10, 3]),
    label: `step ${step}`,
    count: step,
    nested: { alpha: step / 3, tags: ['a', 'b'] },
  };
}

/** The float64 data of an NDArray (npz, h5) or nested lists (JSON). */
function floats(v: unknown): number[] {
  return v instanceof NDArray ? Array.from(v.data as Float64Array) : (v as unknown[]).flat(Infinity) as number[];
}

function assertState(got: Record<string, unknown>, step: number): void {
  const want = stateOf(step);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `step ${step}: keys`);
  assert.deepEqual(floats(got.positions), floats(want.positions), `step ${step}: positions`);
  assert.equal(got.label, want.label);
  assert.equal(Number(got.count), step);
  assert.deepEqual(got.nested, want.nested);
}

async function saveSteps(mgr: CheckpointManager, steps: number[], metric?: (s: number) => number): Promise<void> {
  for (const s of steps) await mgr.save(s, stateOf(s), metric ? { metadata: { loss: metric(s) } } : {});
}

function damage(file: string, how: 'garbage' | 'truncate' | 'empty'): void {
  const size = fs.statSync(file).size;
  if (how === 'garbage') fs.writeFileSync(file, Buffer.alloc(size, 0x5a));
  else if (how === 'truncate') fs.truncateSync(file, Math.floor(size / 2));
  else fs.truncateSync(file, 0);
}

for (const format of FORMATS) {
  describe(`CheckpointManager (.${format})`, () => {
    it('saves one file per step with a name that sorts; restores the latest step and its metadata', async () => {
      const dir = freshDir();
      await using mgr = new CheckpointManager(dir, { format });
      assert.deepEqual(mgr.steps(), []);
      assert.equal(mgr.latestStep(), null);
      await mgr.save(1200, stateOf(1200), { metadata: { loss: 0.25, tags: ['warm'], nested: { ok: true } } });
      await mgr.save(7, stateOf(7));
      await mgr.save(100_000_000, stateOf(100_000_000)); // more than 8 digits still parses
      const names = listing(dir).filter((f) => !f.endsWith('.meta.json'));
      assert.deepEqual(names, [`step_00000007.${format}`, `step_00001200.${format}`, `step_100000000.${format}`]);
      assert.deepEqual(mgr.steps(), [7, 1200, 100_000_000]);
      assert.equal(mgr.latestStep(), 100_000_000);
      assert.deepEqual(mgr.metadata(1200), { loss: 0.25, tags: ['warm'], nested: { ok: true } });
      assert.equal(mgr.metadata(7), undefined);

      const latest = await mgr.restoreStep();
      assert.equal(latest.step, 100_000_000);
      assertState(latest.state, 100_000_000);
      assert.ok(!(MANAGER_RECORD_KEY in latest.state), 'the manager record is not part of the state');
      const earlier = await mgr.restoreStep(1200);
      assertState(earlier.state, 1200);
      assert.deepEqual(earlier.metadata, { loss: 0.25, tags: ['warm'], nested: { ok: true } });
      assertState(await mgr.restore(7), 7);
      await assert.rejects(mgr.restore(8), (e: CheckpointerError) => e.code === 'ERR_KEY');
    });

    it('metadata(step) reads the sidecar, and the step file when the sidecar is gone or stale', async () => {
      const dir = freshDir();
      await using mgr = new CheckpointManager(dir, { format });
      await mgr.save(3, stateOf(3), { metadata: { loss: 1.5 } });
      const sidecar = `${mgr.stepFile(3)}.meta.json`;
      assert.equal(JSON.parse(fs.readFileSync(sidecar, 'utf8')).metadata.loss, 1.5);
      // A sidecar that lies about a step file it does not describe (other size/mtime) is not believed.
      fs.writeFileSync(sidecar, JSON.stringify({ step: 3, metadata: { loss: 99 }, size: 1, mtimeNs: '1' }));
      assert.deepEqual(mgr.metadata(3), { loss: 1.5 });
      fs.unlinkSync(sidecar);
      assert.deepEqual(new CheckpointManager(dir, { format }).metadata(3), { loss: 1.5 });
      assert.ok(fs.existsSync(sidecar), 'the sidecar is rebuilt from the step file');
      assert.throws(() => mgr.metadata(4), (e: CheckpointerError) => e.code === 'ERR_KEY');
    });

    it('keeps the `keep` latest steps, pruning oldest first and only after the new step is committed', async () => {
      const dir = freshDir();
      await using mgr = new CheckpointManager(dir, { format, keep: 2 });
      const pruned: number[] = [];
      mgr.on('prune', (e: PruneEvent) => {
        // The step that caused this prune is already on disk when it runs.
        assert.ok(fs.existsSync(mgr.stepFile(mgr.latestStep()!)));
        assert.ok(!fs.existsSync(e.file));
        pruned.push(e.step);
      });
      await saveSteps(mgr, [1, 2, 3, 4, 5]);
      assert.deepEqual(pruned, [1, 2, 3]);
      assert.deepEqual(mgr.steps(), [4, 5]);
      assert.deepEqual(listing(dir), [
        `step_00000004.${format}`, `step_00000004.${format}.meta.json`, `step_00000005.${format}`, `step_00000005.${format}.meta.json`,
      ]);
    });

    it('keepEvery keeps every k-th step forever; bestBy keeps the `keep` best too', async () => {
      const periodic = new CheckpointManager(freshDir(), { format, keep: 1, keepEvery: 3 });
      await saveSteps(periodic, [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(periodic.steps(), [3, 6, 7]);
      await periodic.close();

      const losses: Record<number, number> = { 1: 5, 2: 1, 3: 4, 4: 2, 5: 6, 6: 7 };
      const best = new CheckpointManager(freshDir(), { format, keep: 2, bestBy: { metric: 'loss', mode: 'min' } });
      const pruned: number[] = [];
      best.on('prune', (e: PruneEvent) => pruned.push(e.step));
      await saveSteps(best, [1, 2, 3, 4, 5, 6], (s) => losses[s]!);
      assert.deepEqual(best.steps(), [2, 4, 5, 6], 'the two lowest losses (2, 4) and the two latest (5, 6)');
      assert.deepEqual(pruned, [1, 3]);
      await best.close();

      const accuracy = new CheckpointManager(freshDir(), {
        format, keep: 1, bestBy: { metric: (m) => (m.loss as number) * -1, mode: 'max' },
      });
      await saveSteps(accuracy, [1, 2, 3, 4], (s) => losses[s]!);
      await accuracy.save(5, stateOf(5)); // no metric: judged by recency only
      assert.deepEqual(accuracy.steps(), [2, 5]);
      await accuracy.close();
    });

    it('saving a step that exists is ERR_EXISTS, leaving it unchanged, unless { overwrite: true }', async () => {
      const dir = freshDir();
      await using mgr = new CheckpointManager(dir, { format });
      await mgr.save(10, stateOf(10), { metadata: { loss: 1 } });
      const before = fs.readFileSync(mgr.stepFile(10));
      await assert.rejects(mgr.save(10, stateOf(11)), (e: CheckpointerError) => e.code === 'ERR_EXISTS' && e.file === mgr.stepFile(10));
      assert.deepEqual(fs.readFileSync(mgr.stepFile(10)), before);
      await mgr.save(10, stateOf(11), { metadata: { loss: 2 }, overwrite: true });
      assertState(await mgr.restore(10), 11);
      assert.deepEqual(mgr.metadata(10), { loss: 2 });
      assert.deepEqual(listing(dir), [`step_00000010.${format}`, `step_00000010.${format}.meta.json`]);
    });

    it('refuses bad steps, states and metadata before writing anything', async () => {
      const dir = freshDir();
      await using mgr = new CheckpointManager(dir, { format });
      for (const step of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, '3' as unknown as number]) {
        assert.throws(() => mgr.save(step, stateOf(1)), RangeError, String(step));
      }
      assert.throws(() => mgr.save(1, [1, 2] as unknown as Record<string, unknown>), TypeError);
      assert.throws(() => mgr.save(1, { [MANAGER_RECORD_KEY]: 1 }), TypeError);
      assert.throws(() => mgr.save(1, {}, { metadata: { loss: Number.NaN } }), TypeError);
      assert.throws(() => mgr.save(1, {}, { metadata: { when: new Date() } as never }), TypeError);
      // A value the format refuses fails the save; no step and no temporary file remain.
      await assert.rejects(mgr.save(1, { bad: () => 1 }));
      assert.deepEqual(fs.existsSync(dir) ? listing(dir) : [], []);
      assert.throws(() => new CheckpointManager(dir, { keep: 0 }), RangeError);
      assert.throws(() => new CheckpointManager(dir, { format: 'npy' as StepFormat }), TypeError);
      assert.throws(() => new CheckpointManager(dir, { bestBy: { metric: 'loss' } as never }), TypeError);
    });

    for (const how of ['garbage', 'truncate', 'empty'] as const) {
      it(`restore() skips a damaged latest step (${how}) with a 'skip' event; restore(step) throws its error`, async () => {
        const dir = freshDir();
        await using mgr = new CheckpointManager(dir, { format });
        await saveSteps(mgr, [1, 2, 3]);
        damage(mgr.stepFile(3), how);
        const skips: SkipEvent[] = [];
        mgr.on('skip', (e: SkipEvent) => skips.push(e));
        const restored = await mgr.restoreStep();
        assert.equal(restored.step, 2);
        assertState(restored.state, 2);
        assert.equal(skips.length, 1);
        assert.equal(skips[0]!.step, 3);
        assert.equal(skips[0]!.file, mgr.stepFile(3));
        assert.ok(skips[0]!.error instanceof CheckpointerError, String(skips[0]!.error));
        await assert.rejects(mgr.restore(3), (e: unknown) => e instanceof CheckpointerError && e.code === skips[0]!.error.code);
        assert.ok(fs.existsSync(mgr.stepFile(3)), 'a damaged step is reported, never removed');
      });
    }

    it('every step damaged: ERR_CHECKPOINT_CORRUPT after a skip each; no steps at all: ERR_KEY', async () => {
      const dir = freshDir();
      await using mgr = new CheckpointManager(dir, { format });
      await assert.rejects(mgr.restore(), (e: CheckpointerError) => e.code === 'ERR_KEY');
      await saveSteps(mgr, [1, 2]);
      damage(mgr.stepFile(1), 'garbage');
      damage(mgr.stepFile(2), 'truncate');
      const skipped: number[] = [];
      mgr.on('skip', (e: SkipEvent) => skipped.push(e.step));
      await assert.rejects(mgr.restore(), (e: CheckpointerError) => e.code === 'ERR_CHECKPOINT_CORRUPT');
      assert.deepEqual(skipped, [2, 1]);
    });

    it('close() waits for the saves in flight; later saves are ERR_CLOSED; a new manager finds the steps', async () => {
      const dir = freshDir();
      const mgr = new CheckpointManager(dir, { format, keep: 2 });
      const pending = [1, 2, 3].map((s) => mgr.save(s, stateOf(s)));
      await mgr.close();
      assert.deepEqual(mgr.steps(), [2, 3]);
      await Promise.all(pending);
      assert.throws(() => mgr.save(4, stateOf(4)), (e: CheckpointerError) => e.code === 'ERR_CLOSED');
      const again = new CheckpointManager(dir);
      assert.equal(again.format, format, 'the format is taken from the steps in the directory');
      assertState(await again.restore(), 3);
    });

    it('a save SIGKILLed at any point leaves its step absent or complete, older steps intact, and no temp files for the next manager', async () => {
      const elements = format === 'json' ? 1 << 19 : 1 << 22; // 4 MiB / 32 MiB of float64
      // Fixed delays hit arbitrary points (before, during, after the write, at the commit);
      // 'partial' kills as soon as the save's temporary file is seen, so some kill lands mid-write.
      const delays: (number | 'partial')[] = [0, 5, 20, 60, 150, 'partial', 'partial', 'partial'];
      let killedMidSave = 0;
      for (const delay of delays) {
        const dir = freshDir();
        const outcome = await killDuringSave(dir, format, elements, delay);
        const mgr = new CheckpointManager(dir, { format });
        if (outcome.sawPartial) {
          killedMidSave++;
          assert.ok(mgr.removedStaleFiles.some((f) => f.includes('ckpt-partial')), `delay ${delay}: removedStaleFiles names them`);
        }
        assert.ok(!fs.readdirSync(dir).some((f) => f.includes('ckpt-partial')), `delay ${delay}: temp files remain: ${fs.readdirSync(dir)}`);
        assertState(await mgr.restore(1), 1);
        if (mgr.steps().includes(2)) {
          const big = (await mgr.restore(2)).big;
          const data = floats(big);
          assert.equal(data.length, elements);
          assert.ok(data.every((x, i) => x === i), `delay ${delay}: step 2 is complete`);
          assert.deepEqual(mgr.metadata(2), { big: true });
        }
        assert.equal((await mgr.restoreStep()).step, mgr.latestStep());
        await mgr.close();
      }
      assert.ok(killedMidSave > 0, 'at least one kill landed while the step was being written');
    });
  });
}

describe('CheckpointManager: entry points', () => {
  it('is exported by the ES module entry point too', async () => {
    const esm = (await import(path.resolve(__dirname, '..', '..', 'dist', 'index.mjs'))) as { CheckpointManager: unknown };
    assert.equal(typeof esm.CheckpointManager, 'function');
  });
});

/**
 * A child saves step 1, then step 2 with a large array and is SIGKILLed `delayMs` after it starts
 * that save (or, with 'partial', as soon as the save's temporary file is on disk). Reports whether a temporary file of the save was on disk after the kill (the kill
 * landed mid-save) and whether the next manager removed it.
 */
async function killDuringSave(dir: string, format: StepFormat, elements: number, delayMs: number | 'partial'): Promise<{ sawPartial: boolean }> {
  const lib = path.resolve(__dirname, '..', 'lib', 'index.js');
  const script = `
const { CheckpointManager, ndarray } = require(${JSON.stringify(lib)});
const state = (step) => ({
  positions: ndarray(Float64Array.from({ length: 30 }, (_, i) => step + i / 7), [10, 3]),
  label: 'step ' + step, count: step, nested: { alpha: step / 3, tags: ['a', 'b'] },
});
(async () => {
  const mgr = new CheckpointManager(${JSON.stringify(dir)}, { format: ${JSON.stringify(format)}, keep: 5 });
  await mgr.save(1, state(1));
  const big = Float64Array.from({ length: ${elements} }, (_, i) => i);
  process.send('saving');
  await mgr.save(2, { big: ndarray(big) }, { metadata: { big: true } });
  process.send('saved');
  setInterval(() => {}, 1000);
})();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m) => {
      if (m === 'saving' && delayMs !== 'partial') setTimeout(() => { child.kill('SIGKILL'); resolve(); }, delayMs);
      if (m === 'saving' && delayMs === 'partial') {
        const poll = setInterval(() => {
          if (!fs.readdirSync(dir).some((f) => f.includes('ckpt-partial'))) return;
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }, 1);
        child.on('exit', () => clearInterval(poll));
      }
      if (m === 'saved') { child.kill('SIGKILL'); resolve(); }
    });
    child.on('exit', (code, signal) => { if (signal !== 'SIGKILL') reject(new Error(`child exited ${code}: ${stderr}`)); });
  });
  await exited;
  return { sawPartial: fs.readdirSync(dir).some((f) => f.includes('ckpt-partial')) };
}

describe('CheckpointManager: one saving manager per directory', () => {
  it('a second manager saving into the directory gets ERR_LOCKED until the first closes; lock: wait waits', async () => {
    const dir = freshDir();
    const a = new CheckpointManager(dir, { format: 'json' });
    await a.save(1, stateOf(1));
    const b = new CheckpointManager(dir, { format: 'json' });
    await assert.rejects(b.save(2, stateOf(2)), { code: 'ERR_LOCKED' });
    assert.deepEqual(b.steps(), [1], 'readers of the directory are not locked out');
    const c = new CheckpointManager(dir, { format: 'json', lock: 'wait', timeoutMs: 5000 });
    const waiting = c.save(3, stateOf(3));
    await new Promise((r) => setTimeout(r, 50));
    await a.close();
    await waiting;
    await c.close();
    await b.save(2, stateOf(2));
    await b.close();
    assert.deepEqual(b.steps(), [1, 2, 3]);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.lock')), [], 'claims are given back at close');
  });
});
