'use strict';
/**
 * Demo: a small molecular-dynamics run that saves a step checkpoint every N steps through a
 * CheckpointManager (the 3 latest kept), is killed part-way (SIGKILL, no chance to clean up, maybe
 * in the middle of a save), and resumes with `restore()` from its latest step. The resumed run must
 * end bit-for-bit where an uninterrupted run ends.
 *
 *   npm run demo                      # HDF5 checkpoint when the addon is built, else .npz
 *   node examples/simulation.js --format json|npz|h5 [--steps 4000] [--every 250]
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { CheckpointManager, ndarray, CheckpointerError } = require('..');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const STEPS = Number(args.steps ?? 4000);
const EVERY = Number(args.every ?? 250);
const KEEP = 3; // step checkpoints kept
const N = 256; // particles

/** Lennard-Jones particles in a periodic box, velocity Verlet; deterministic from the seed. */
function initialState() {
  const side = Math.ceil(Math.cbrt(N));
  const box = side * 1.2;
  const pos = new Float64Array(N * 3);
  const vel = new Float64Array(N * 3);
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  for (let i = 0; i < N; i++) {
    pos[3 * i] = (i % side) * 1.2;
    pos[3 * i + 1] = (Math.floor(i / side) % side) * 1.2;
    pos[3 * i + 2] = Math.floor(i / (side * side)) * 1.2;
    for (let d = 0; d < 3; d++) vel[3 * i + d] = rand();
  }
  return { step: 0, box, pos, vel, energies: [] };
}

function forces(pos, box, f) {
  f.fill(0);
  let pot = 0;
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      let r2 = 0;
      const d = [0, 0, 0];
      for (let k = 0; k < 3; k++) {
        let x = pos[3 * i + k] - pos[3 * j + k];
        x -= box * Math.round(x / box);
        d[k] = x;
        r2 += x * x;
      }
      if (r2 > 6.25) continue; // cutoff 2.5
      const inv6 = 1 / (r2 * r2 * r2);
      pot += 4 * (inv6 * inv6 - inv6);
      const s = (48 * inv6 * inv6 - 24 * inv6) / r2;
      for (let k = 0; k < 3; k++) {
        f[3 * i + k] += s * d[k];
        f[3 * j + k] -= s * d[k];
      }
    }
  }
  return pot;
}

/** Advances `state` to step `until`. */
function advance(state, until) {
  const dt = 0.002;
  const f = new Float64Array(N * 3);
  forces(state.pos, state.box, f);
  while (state.step < until) {
    for (let i = 0; i < 3 * N; i++) {
      state.vel[i] += 0.5 * dt * f[i];
      state.pos[i] += dt * state.vel[i];
    }
    const pot = forces(state.pos, state.box, f);
    let kin = 0;
    for (let i = 0; i < 3 * N; i++) {
      state.vel[i] += 0.5 * dt * f[i];
      kin += 0.5 * state.vel[i] * state.vel[i];
    }
    state.step++;
    if (state.step % 10 === 0) state.energies.push(pot + kin);
  }
  return state;
}

/** What one checkpoint holds. */
function toCheckpoint(state) {
  return {
    step: state.step,
    box: state.box,
    positions: ndarray(state.pos, [N, 3]),
    velocities: ndarray(state.vel, [N, 3]),
    energies: Float64Array.from(state.energies),
    meta: { integrator: 'velocity-verlet', dt: 0.002, particles: N },
  };
}

function fromCheckpoint(saved) {
  // HDF5 and npz give NDArrays back; JSON gives nested lists (numpy's tolist()).
  const flat = (v) => Float64Array.from(v.data ?? [v].flat(Infinity));
  return {
    step: Number(saved.step),
    box: Number(saved.box),
    pos: flat(saved.positions),
    vel: flat(saved.velocities),
    energies: Array.from(flat(saved.energies)),
  };
}

/** The worker: resume from the latest step checkpoint that reads back, then run to the end. */
async function worker(dir, format) {
  const mgr = new CheckpointManager(dir, { format, keep: KEEP });
  mgr.on('skip', ({ step, error }) => console.log(`  skipped damaged step ${step}: ${error.code}`));
  try {
    const state = mgr.latestStep() === null ? initialState() : fromCheckpoint(await mgr.restore());
    process.send?.({ resumedAt: state.step, removed: mgr.removedStaleFiles.length });
    while (state.step < STEPS) {
      advance(state, Math.min(STEPS, (Math.floor(state.step / EVERY) + 1) * EVERY));
      await mgr.save(state.step, toCheckpoint(state), { metadata: { energy: state.energies.at(-1) } });
      process.send?.({ checkpoint: state.step });
    }
  } finally {
    await mgr.close();
  }
}

function runWorker(dir, format, killAtCheckpoint) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--worker', dir, '--format', format, '--steps', String(STEPS), '--every', String(EVERY)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let resumedAt = 0;
    let removed = 0;
    let lastCheckpoint = null;
    child.on('message', (m) => {
      if (m.resumedAt !== undefined) ({ resumedAt, removed } = m);
      if (m.checkpoint !== undefined) lastCheckpoint = m.checkpoint;
      // Killed while it computes, or while it writes the next step: either way nothing is lost.
      if (m.checkpoint !== undefined && killAtCheckpoint !== undefined && m.checkpoint >= killAtCheckpoint) {
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, resumedAt, removed, lastCheckpoint }));
  });
}

function defaultFormat() {
  try {
    require('../dist/native').loadNative();
    return 'h5';
  } catch (err) {
    if (err instanceof CheckpointerError) {
      console.log(`(HDF5 unavailable: ${err.message.split('\n')[0]} — using .npz)`);
      return 'npz';
    }
    return 'npz';
  }
}

async function main() {
  if (args.worker !== undefined) return worker(args.worker, args.format);
  const format = args.format ?? defaultFormat();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkpointer-demo-'));
  console.log(`Lennard-Jones MD, ${N} particles, ${STEPS} steps; a .${format} step checkpoint every ${EVERY} steps, `
    + `the ${KEEP} latest kept, in ${dir}`);

  let t = process.hrtime.bigint();
  const reference = advance(initialState(), STEPS);
  console.log(`uninterrupted run: ${Number(process.hrtime.bigint() - t) / 1e6 | 0} ms`);

  const killAt = Math.floor(STEPS / EVERY / 2) * EVERY;
  t = process.hrtime.bigint();
  const first = await runWorker(dir, format, killAt);
  const mgr = new CheckpointManager(dir, { format });
  console.log(`first run: killed by ${first.signal} after the checkpoint at step ${first.lastCheckpoint}; steps on disk: ${mgr.steps().join(', ')}`);
  const second = await runWorker(dir, format);
  console.log(`second run: resumed at step ${second.resumedAt}${second.removed ? ` (removed ${second.removed} temp file(s) of the killed save)` : ''}, `
    + `finished with exit code ${second.code} (${Number(process.hrtime.bigint() - t) / 1e6 | 0} ms for both)`);

  const final = await mgr.restoreStep();
  const resumed = fromCheckpoint(final.state);
  const same = final.step === STEPS && resumed.step === reference.step
    && Buffer.compare(Buffer.from(resumed.pos.buffer), Buffer.from(reference.pos.buffer)) === 0
    && Buffer.compare(Buffer.from(resumed.vel.buffer), Buffer.from(reference.vel.buffer)) === 0
    && resumed.energies.length === reference.energies.length
    && resumed.energies.every((e, i) => Object.is(e, reference.energies[i]));
  const drift = Math.abs(resumed.energies.at(-1) - resumed.energies[0]) / Math.abs(resumed.energies[0]);
  console.log(`steps on disk: ${mgr.steps().join(', ')}; step ${final.step}: ${Object.keys(final.state).join(', ')}, `
    + `${fs.statSync(mgr.stepFile(final.step)).size} bytes; relative energy drift ${drift.toExponential(2)}`);
  console.log(same ? 'OK: the resumed run ends bit-for-bit where the uninterrupted run ends'
    : 'MISMATCH: the resumed run differs from the uninterrupted run');
  await mgr.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (!same || second.resumedAt < killAt || second.resumedAt >= STEPS) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
