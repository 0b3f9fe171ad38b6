/**
 * Child of the kill campaign: a writer that loops until it is SIGKILLed.
 *
 * - checkpoint loop: each iteration opens, sets `step`, a float64 array `positions` that grows and
 *   shrinks, a dict `params`, a string `tag` and one of the `slot<N>` keys, then closes (= commits)
 *   and records the iteration in the side log with fsync, after close returned.
 * - append loop: a dataset handle appends frames, `flush()` every `flushEvery` frames, and the
 *   flushed count goes to the side log with fsync after flush returned.
 *
 * The parent kills it after a random delay from "ready", or the child arms its own SIGKILL on a
 * timer just before a chosen `set`/`close`/`append`/`flush`: the async calls run off the event
 * loop, so the timer fires in the middle of the call.
 */
import { appendDurably, childConfig, ENTRY, frame, params0, positions, SLOTS } from './common';

export type KillPhase = 'set' | 'close' | 'append' | 'flush';

export interface WriterConfig {
  loop: 'checkpoint' | 'append';
  file: string;
  log: string;
  /** First iteration (checkpoint loop): the one after the last committed. */
  start: number;
  maxLength: number;
  width: number;
  flushEvery: number;
  /** Self-kill: at this iteration (checkpoint) or frame (append), `delayMs` after entering `phase`. */
  killAt?: { at: number; phase: KillPhase; delayMs: number };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

function arm(cfg: WriterConfig, at: number, phase: KillPhase): void {
  const k = cfg.killAt;
  if (k && k.at === at && k.phase === phase) {
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), k.delayMs);
  }
}

async function checkpointLoop(cfg: WriterConfig): Promise<void> {
  const chk = lib.Checkpointer.fromFile(cfg.file);
  process.stdout.write('ready\n');
  for (let i = cfg.start; i < cfg.start + 1_000_000; i++) {
    await chk.open();
    await chk.set('step', i);
    arm(cfg, i, 'set');
    await chk.set('positions', lib.ndarray(positions(i, cfg.maxLength)));
    await chk.set('params', params0(i));
    await chk.set('tag', `iteration ${i}`);
    await chk.set(`slot${i % SLOTS}`, i);
    arm(cfg, i, 'close');
    await chk.close();
    appendDurably(cfg.log, JSON.stringify({ committed: i }));
  }
}

async function appendLoop(cfg: WriterConfig): Promise<void> {
  const chk = lib.Checkpointer.fromFile(cfg.file);
  process.stdout.write('ready\n');
  await chk.open();
  const ds = await chk.dataset('frames', { dtype: 'float64', shape: [0, cfg.width] });
  for (let k = 0; k < 10_000_000; k++) {
    arm(cfg, k, 'append');
    await ds.append(frame(k, cfg.width));
    if ((k + 1) % cfg.flushEvery === 0) {
      arm(cfg, k, 'flush');
      await ds.flush();
      appendDurably(cfg.log, JSON.stringify({ flushed: k + 1 }));
    }
  }
}

const cfg = childConfig<WriterConfig>();
(cfg.loop === 'checkpoint' ? checkpointLoop(cfg) : appendLoop(cfg)).catch((err: unknown) => {
  // A writer that fails (not killed) says how: the parent reports it as a blocked writer.
  const e = err as { code?: string; message?: string };
  process.stdout.write(`${JSON.stringify({ writerError: { code: e?.code ?? null, message: String(e?.message ?? err) } })}\n`);
  process.exit(3);
});
