/**
 * Child of the kill campaign: checks a file after its writer was SIGKILLed, then acts as the next
 * writer (one more commit, or one more frame) and checks that too. Prints one JSON line.
 *
 * The side log lags the file by at most one commit (the kill can land between close returning and
 * the log's fsync), so the file may hold the logged state or the one after it; both are accepted,
 * and keys are counted lost against the closer of the two.
 */
import * as fs from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { appendDurably, childConfig, ENTRY, frame, lastLogged, params0, positions, sameBits, slotValue, SLOTS } from './common';
import type { Checkpointer, NDArray } from '../../lib';

export interface VerifyConfig {
  loop: 'checkpoint' | 'append';
  file: string;
  log: string;
  maxLength: number;
  width: number;
  /** 'check' the killed file, or be the 'next' writer. */
  phase: 'check' | 'next';
}

export interface VerifyResult {
  existed: boolean;
  /** The file opened and `keys()` answered (or it is absent and nothing was committed). */
  opened: boolean;
  openError: string | null;
  /** Last committed iteration / flushed frame count the side log (or the file, one ahead) shows. */
  committed: number;
  /** Checkpoint loop: keys of the last committed state missing or wrong. */
  lostKeys: string[];
  /** Append loop: flushed frames missing or wrong. */
  framesLost: number;
  framesInFile: number;
  /** Killed before the first commit: the file is absent or opens with no keys. */
  beforeFirstCommit: boolean;
  emptyButValid: boolean | null;
}

export interface NextResult {
  nextWriterOk: boolean;
  nextWriterError: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; name?: string };
  return `${e?.code ?? e?.name ?? 'Error'}: ${String(e?.message ?? err).slice(0, 300)}`;
}

type Expected = Map<string, unknown>;

function expectedState(i: number, maxLength: number): Expected {
  const m: Expected = new Map();
  m.set('step', i);
  m.set('positions', positions(i, maxLength));
  m.set('params', params0(i));
  m.set('tag', `iteration ${i}`);
  for (let s = 0; s < SLOTS; s++) {
    const v = slotValue(i, s);
    if (v !== undefined) m.set(`slot${s}`, v);
  }
  return m;
}

function matches(expected: unknown, got: unknown): boolean {
  if (expected instanceof Float64Array) {
    // JSON holds a float64 array as a list of numbers (McUtils' layout): compare the values' bits.
    if (Array.isArray(got)) return got.length === expected.length && sameBits(Float64Array.from(got as number[]), expected);
    const a = got as NDArray | undefined;
    return a?.data instanceof Float64Array && a.shape.length === 1 && a.shape[0] === expected.length && sameBits(a.data, expected);
  }
  if (typeof expected === 'number') return Object.is(expected, got);
  return isDeepStrictEqual(got, expected);
}

/** Keys of state `i` that do not read back exactly. */
async function lostAgainst(chk: Checkpointer, present: readonly string[], i: number, maxLength: number): Promise<string[]> {
  const lost: string[] = [];
  for (const [key, want] of expectedState(i, maxLength)) {
    if (!present.includes(key)) {
      lost.push(key);
      continue;
    }
    try {
      if (!matches(want, await chk.get(key))) lost.push(key);
    } catch {
      lost.push(key);
    }
  }
  return lost;
}

async function writeCheckpoint(file: string, i: number, maxLength: number): Promise<void> {
  const chk = lib.Checkpointer.fromFile(file);
  await chk.with(async (c) => {
    await c.set('step', i);
    await c.set('positions', lib.ndarray(positions(i, maxLength)));
    await c.set('params', params0(i));
    await c.set('tag', `iteration ${i}`);
    await c.set(`slot${i % SLOTS}`, i);
  });
}

async function verifyCheckpoint(cfg: VerifyConfig): Promise<VerifyResult> {
  const logged = lastLogged<{ committed: number }>(cfg.log)?.committed ?? -1;
  const existed = fs.existsSync(cfg.file);
  const r: VerifyResult = {
    existed, opened: false, openError: null, committed: logged, lostKeys: [], framesLost: 0, framesInFile: 0,
    beforeFirstCommit: logged < 0, emptyButValid: null,
  };
  const chk = lib.Checkpointer.fromFile(cfg.file);
  if (!existed && logged < 0) {
    r.opened = true;
    r.emptyButValid = true;
  } else {
    try {
      await chk.open();
      const present = await chk.keys();
      r.opened = true;
      if (logged < 0) {
        // Nothing logged: either empty-but-valid, or the first commit landed before the log line.
        r.emptyButValid = present.length === 0;
        if (!r.emptyButValid) {
          const lostIfFirst = await lostAgainst(chk, present, 0, cfg.maxLength);
          if (lostIfFirst.length === 0) r.committed = 0;
          else r.lostKeys = present.map((k) => `unexpected:${k}`);
        }
      } else {
        const lost = await lostAgainst(chk, present, logged, cfg.maxLength);
        if (lost.length > 0) {
          const lostIfNext = await lostAgainst(chk, present, logged + 1, cfg.maxLength);
          if (lostIfNext.length === 0) r.committed = logged + 1;
          else r.lostKeys = lost;
        }
      }
    } catch (err) {
      r.openError = describe(err);
    } finally {
      await chk.close().catch(() => undefined);
    }
  }
  if (r.committed > logged) appendDurably(cfg.log, JSON.stringify({ committed: r.committed }));
  return r;
}

/** The next writer (a fresh process, as a resumed run is): one more commit, then the whole state must read back. */
async function nextCheckpoint(cfg: VerifyConfig): Promise<NextResult> {
  const next = (lastLogged<{ committed: number }>(cfg.log)?.committed ?? -1) + 1;
  const r: NextResult = { nextWriterOk: false, nextWriterError: null };
  try {
    await writeCheckpoint(cfg.file, next, cfg.maxLength);
    appendDurably(cfg.log, JSON.stringify({ committed: next }));
    const again = lib.Checkpointer.fromFile(cfg.file);
    const lost = await again.with(async (c) => lostAgainst(c, await c.keys(), next, cfg.maxLength));
    r.nextWriterOk = lost.length === 0;
    if (!r.nextWriterOk) r.nextWriterError = `after the next commit, lost: ${lost.join(', ')}`;
  } catch (err) {
    r.nextWriterError = describe(err);
  }
  return r;
}

/** The leading frames that read back exactly. */
function validPrefix(data: Float64Array, frames: number, width: number): number {
  for (let k = 0; k < frames; k++) {
    if (!sameBits(data.subarray(k * width, (k + 1) * width), frame(k, width))) return k;
  }
  return frames;
}

async function verifyAppend(cfg: VerifyConfig): Promise<VerifyResult> {
  const flushed = lastLogged<{ flushed: number }>(cfg.log)?.flushed ?? 0;
  const existed = fs.existsSync(cfg.file);
  const r: VerifyResult = {
    existed, opened: false, openError: null, committed: flushed, lostKeys: [], framesLost: 0, framesInFile: 0,
    beforeFirstCommit: flushed === 0, emptyButValid: null,
  };
  let valid = 0;
  if (!existed) {
    r.opened = true;
    r.emptyButValid = true;
  } else {
    const chk = lib.Checkpointer.fromFile(cfg.file);
    try {
      await chk.with(async (c) => {
        const keys = await c.keys();
        r.opened = true;
        r.emptyButValid = true;
        const key = keys[0];
        if (key === undefined) return;
        const value = (await c.get(key)) as NDArray;
        const data = value.data as Float64Array;
        r.framesInFile = value.shape[0] ?? 0;
        valid = value.shape[1] === cfg.width ? validPrefix(data, r.framesInFile, cfg.width) : 0;
        // Before the first flush: frames that are there must be exact (a torn tail is not "valid").
        r.emptyButValid = valid === r.framesInFile;
      });
    } catch (err) {
      r.openError = describe(err);
    }
  }
  r.framesLost = Math.max(0, flushed - valid);
  return r;
}

/** The next writer continues the dataset by one frame; then every frame before it must read back. */
async function nextAppend(cfg: VerifyConfig): Promise<NextResult> {
  const r: NextResult = { nextWriterOk: false, nextWriterError: null };
  try {
    const chk = lib.Checkpointer.fromFile(cfg.file);
    await chk.with(async (c) => {
      const ds = await c.dataset('frames', { dtype: 'float64', shape: [0, cfg.width] });
      await ds.append(frame(ds.shape[0]!, cfg.width));
    });
    const back = (await lib.Checkpointer.fromFile(cfg.file).with(async (c) => c.get((await c.keys())[0]!))) as NDArray;
    const n = back.shape[0]!;
    r.nextWriterOk = n >= 1 && validPrefix(back.data as Float64Array, n, cfg.width) === n;
    if (!r.nextWriterOk) r.nextWriterError = `after the next append: ${n} frames, ${validPrefix(back.data as Float64Array, n, cfg.width)} exact`;
  } catch (err) {
    r.nextWriterError = describe(err);
  }
  return r;
}

const cfg = childConfig<VerifyConfig>();
const run: Promise<VerifyResult | NextResult> = cfg.phase === 'next'
  ? (cfg.loop === 'checkpoint' ? nextCheckpoint(cfg) : nextAppend(cfg))
  : (cfg.loop === 'checkpoint' ? verifyCheckpoint(cfg) : verifyAppend(cfg));
run.then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err: unknown) => {
    process.stdout.write(`${JSON.stringify({ verifierError: describe(err) })}\n`);
    process.exit(3);
  },
);
