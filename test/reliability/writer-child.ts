/**
 * Child of the two-writer checks.
 *
 * - mode 'process': one of two processes writing one file. Each round opens, writes its own key
 *   `w<id>_<round>` (on `.npy`: appends the frame [id, round]) and closes; a close that returned is
 *   a commit the file must keep. ERR_LOCKED (at open, or anywhere) is the other allowed answer.
 * - mode 'in-process': two Checkpointers on one file in this process, interleaved in the orders
 *   listed in ORDERS, and concurrently through `with`.
 *
 * Prints one JSON line: what was committed, how often ERR_LOCKED came, other errors.
 */
import { childConfig, ENTRY } from './common';
import type { Checkpointer } from '../../lib';

export interface WriterChildConfig {
  mode: 'process' | 'in-process';
  file: string;
  id: number;
  rounds: number;
  /** Both processes start at this time (ms since epoch), so their rounds overlap. */
  startAt: number;
}

export interface WriterChildResult {
  /** Keys (`w0_3`) or frames (`0:3`) whose commit returned. */
  committed: string[];
  locked: number;
  errors: string[];
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isLocked(err: unknown): boolean {
  return err instanceof lib.CheckpointerError && err.code === 'ERR_LOCKED';
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return `${e?.code ?? 'Error'}: ${String(e?.message ?? err).slice(0, 200)}`;
}

/** What one writer writes in `round`: its own key, or on .npy its own frame. */
async function writeOnce(chk: Checkpointer, id: number, round: number): Promise<string> {
  if (chk.checkpointFile!.endsWith('.npy')) {
    const ds = await chk.dataset('frames', { dtype: 'float64', shape: [0, 2] });
    await ds.append(Float64Array.of(id, round));
    return `${id}:${round}`;
  }
  await chk.set(`w${id}_${round}`, round);
  return `w${id}_${round}`;
}

async function processWriter(cfg: WriterChildConfig, out: WriterChildResult): Promise<void> {
  await sleep(Math.max(0, cfg.startAt - Date.now()));
  for (let round = 0; round < cfg.rounds; round++) {
    const chk = lib.Checkpointer.fromFile(cfg.file);
    try {
      const tag = await chk.with(async (c) => {
        const t = await writeOnce(c, cfg.id, round);
        await sleep(Math.random() * 3); // hold the file open a little, so the writers overlap
        return t;
      });
      out.committed.push(tag);
    } catch (err) {
      if (isLocked(err)) out.locked++;
      else out.errors.push(describe(err));
    }
    await sleep(Math.random() * 2);
  }
}

type Step = 'openA' | 'openB' | 'setA' | 'setB' | 'closeA' | 'closeB';
const ORDERS: readonly (readonly Step[])[] = [
  ['openA', 'openB', 'setA', 'setB', 'closeA', 'closeB'],
  ['openA', 'openB', 'setB', 'setA', 'closeB', 'closeA'],
  ['openA', 'setA', 'openB', 'setB', 'closeB', 'closeA'],
  ['openB', 'openA', 'setA', 'closeA', 'setB', 'closeB'],
];

async function inProcess(cfg: WriterChildConfig, out: WriterChildResult): Promise<void> {
  for (let round = 0; round < cfg.rounds; round++) {
    const order = ORDERS[round % (ORDERS.length + 1)];
    const chks = [lib.Checkpointer.fromFile(cfg.file), lib.Checkpointer.fromFile(cfg.file)] as const;
    if (!order) {
      // Both at once through `with`, each writing its key.
      const results = await Promise.allSettled(chks.map((c, w) => c.with((s) => writeOnce(s, w, round))));
      for (const r of results) {
        if (r.status === 'fulfilled') out.committed.push(r.value);
        else if (isLocked(r.reason)) out.locked++;
        else out.errors.push(describe(r.reason));
      }
      continue;
    }
    // A writer that met ERR_LOCKED (or another error) sits out the rest of the round.
    const satOut = [false, false];
    const tags: (string | null)[] = [null, null];
    for (const step of order) {
      const w = step.endsWith('A') ? 0 : 1;
      if (satOut[w]) continue;
      const c = chks[w]!;
      try {
        if (step.startsWith('open')) await c.open();
        else if (step.startsWith('set')) tags[w] = await writeOnce(c, w, round);
        else {
          await c.close();
          if (tags[w]) out.committed.push(tags[w]!);
        }
      } catch (err) {
        satOut[w] = true;
        if (isLocked(err)) out.locked++;
        else out.errors.push(`${step}: ${describe(err)}`);
        // Give the scope back if it was opened, without counting this writer's commit.
        try {
          while (c.isOpen) await c.close();
        } catch {
          // nothing more to do
        }
      }
    }
  }
}

async function main(): Promise<void> {
  const cfg = childConfig<WriterChildConfig>();
  const out: WriterChildResult = { committed: [], locked: 0, errors: [] };
  await (cfg.mode === 'process' ? processWriter(cfg, out) : inProcess(cfg, out));
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ childError: describe(err) })}\n`);
  process.exit(3);
});
