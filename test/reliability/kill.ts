/**
 * The kill campaign: SIGKILL a writer (./kill-writer, or h5py's loop in ./h5py-anchor) at random
 * points, then check the file in a child (./kill-verify): it opens, the last committed state reads
 * back bit-exact, every flushed frame is there, a file killed before its first commit is absent or
 * empty-but-valid and does not block the next writer, and the next writer's commit leaves no stale
 * temp/spool files behind.
 *
 * Checkpoint trials continue one file across kills (a resumed run), starting over on a fresh file
 * a quarter of the time and after every trial that found damage; append trials start fresh.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lastJson, leftovers, randInt, rng, runHarness, scratchDir, type ChildResult } from './common';
import type { KillPhase, WriterConfig } from './kill-writer';
import type { NextResult, VerifyConfig, VerifyResult } from './kill-verify';

export type Loop = 'checkpoint' | 'append';
export type KillMode = 'random' | KillPhase;

/** How one writer is run and one file verified (ours, or h5py's for the anchor). */
export interface KillSubject {
  name: string;
  ext: string;
  loop: Loop;
  modes: readonly KillMode[];
  /** Longest random delay after "ready" (ms): a few iterations of this writer. */
  maxDelayMs: number;
  maxLength: number;
  runWriter(cfg: WriterConfig, onReady: (kill: () => void) => void): Promise<ChildResult>;
  runVerifier(cfg: VerifyConfig): Promise<ChildResult>;
}

export interface KillStats {
  subject: string;
  loop: Loop;
  kills: number;
  /** Files that opened (or were rightly absent) after the kill. */
  opened: number;
  filesWithLostKeys: number;
  keysLost: number;
  framesLost: number;
  killsBeforeFirstCommit: number;
  /** Of those: the file was neither absent nor empty-but-valid. */
  firstCommitBad: number;
  nextWriterBlocked: number;
  /** Writers that stopped with an error of their own instead of being killed. */
  writerErrors: number;
  /** Distinct temp/spool/shadow files found beside the file right after a kill, and their size then. */
  leftoversAfterKill: number;
  leftoverBytesAfterKill: number;
  /** Distinct stale files still there after the next writer's commit (lock files excluded). */
  leftoversAfterNextWriter: number;
  byMode: Record<string, { kills: number; damaged: number }>;
  /** The first few problems, for the report. */
  examples: string[];
}

/** Lock files may legitimately stay beside the file; everything else the next writer must clean. */
const LOCK_FILE = /\.lock$/;

export async function runKillCampaign(subject: KillSubject, kills: number, seed: number): Promise<KillStats> {
  const rand = rng(seed);
  const dir = scratchDir(`kill-${subject.name.replace(/[^a-z0-9]+/gi, '')}`);
  const logDir = scratchDir('kill-log');
  const base = `ckpt${subject.ext}`;
  const file = path.join(dir, base);
  const log = path.join(logDir, 'committed.log');
  const s: KillStats = {
    subject: subject.name, loop: subject.loop, kills: 0, opened: 0, filesWithLostKeys: 0, keysLost: 0, framesLost: 0,
    killsBeforeFirstCommit: 0, firstCommitBad: 0, nextWriterBlocked: 0, writerErrors: 0, leftoversAfterKill: 0,
    leftoverBytesAfterKill: 0, leftoversAfterNextWriter: 0, byMode: {}, examples: [],
  };
  const note = (msg: string) => {
    if (s.examples.length < 6) s.examples.push(msg);
  };
  const staleAfterKill = new Set<string>();
  const staleAfterNext = new Set<string>();
  let fresh = true;
  for (let trial = 0; trial < kills; trial++) {
    if (fresh || subject.loop === 'append' || rand() < 0.25) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      fs.rmSync(log, { force: true });
    }
    fresh = false;
    const start = (lastJsonLine(log)?.committed ?? -1) + 1;
    const mode = subject.modes[randInt(rand, 0, subject.modes.length - 1)]!;
    const flushEvery = 16;
    const cfg: WriterConfig = {
      loop: subject.loop, file, log, start, maxLength: subject.maxLength, width: 256, flushEvery,
    };
    if (mode !== 'random') {
      // Land in the first commit (or flush) a fifth of the time: a file that never committed.
      const early = rand() < 0.2;
      const at = subject.loop === 'checkpoint'
        ? start + (early ? 0 : randInt(rand, 0, 3))
        : mode === 'flush' ? flushEvery * (early ? 1 : randInt(rand, 1, 12)) - 1 : randInt(rand, 0, early ? flushEvery - 1 : 200);
      cfg.killAt = { at, phase: mode, delayMs: randInt(rand, 0, 4) };
    }
    const delay = randInt(rand, 0, subject.maxDelayMs);
    const w = await subject.runWriter(cfg, (kill) => {
      if (mode === 'random') setTimeout(kill, delay);
    });
    if (w.signal !== 'SIGKILL') {
      s.writerErrors++;
      note(`trial ${trial} (${mode}): the writer ended with ${w.signal ?? `exit ${w.code}`} before the kill: ${(lastJson<{ writerError?: { message: string } }>(w.stdout)?.writerError?.message ?? w.stderr).slice(0, 300)}`);
      fresh = true;
      continue;
    }
    s.kills++;
    const byMode = (s.byMode[mode] ??= { kills: 0, damaged: 0 });
    byMode.kills++;
    // Each stale file counts once, however many later trials still find it.
    for (const name of leftovers(dir, [base]).names) {
      if (staleAfterKill.has(name)) continue;
      staleAfterKill.add(name);
      s.leftoversAfterKill++;
      s.leftoverBytesAfterKill += fileSize(path.join(dir, name));
    }

    const vcfg: VerifyConfig = { loop: subject.loop, file, log, maxLength: subject.maxLength, width: 256, phase: 'check' };
    const v = await subject.runVerifier(vcfg);
    const checked = lastJson<VerifyResult>(v.stdout);
    // The next writer is a fresh process, as a resumed run is.
    const nv = checked && 'opened' in checked ? await subject.runVerifier({ ...vcfg, phase: 'next' }) : null;
    const nextOut = nv ? lastJson<NextResult>(nv.stdout) : null;
    const next: NextResult = nextOut && 'nextWriterOk' in nextOut ? nextOut : {
      nextWriterOk: false,
      nextWriterError: nv ? `the next writer ${nv.timedOut ? 'hung' : `ended with ${nv.signal ?? `exit ${nv.code}`}`}: ${(nv.stdout + nv.stderr).slice(-300)}` : null,
    };
    const r = checked ? { ...checked, ...next } : null;
    if (!r || !('opened' in r)) {
      // The verifier itself died (a crash inside the reader) or hung: the file does not open.
      byMode.damaged++;
      note(`trial ${trial} (${mode}): reading the killed file ${v.timedOut ? 'hung' : `ended with ${v.signal ?? `exit ${v.code}`}`}: ${(v.stdout + v.stderr).slice(-300)}`);
      s.nextWriterBlocked++;
      fresh = true;
      continue;
    }
    const damaged = !r.opened || r.lostKeys.length > 0 || r.framesLost > 0 || !r.nextWriterOk;
    if (r.opened) s.opened++;
    else note(`trial ${trial} (${mode}): the file does not open: ${r.openError}`);
    if (r.lostKeys.length > 0) {
      s.filesWithLostKeys++;
      s.keysLost += r.lostKeys.length;
      note(`trial ${trial} (${mode}): keys of commit ${r.committed} lost: ${r.lostKeys.join(', ')}`);
    }
    if (r.framesLost > 0) {
      s.framesLost += r.framesLost;
      note(`trial ${trial} (${mode}): ${r.framesLost} of ${r.committed} flushed frames lost (${r.framesInFile} in the file)`);
    }
    if (r.beforeFirstCommit) {
      s.killsBeforeFirstCommit++;
      // Killed before its first commit was logged: the file must be absent, empty-but-valid, or
      // that first commit whole (it landed, the kill came before the log line: committed = 0).
      const firstCommitWhole = r.committed === 0 && r.lostKeys.length === 0;
      if (r.existed && !(r.opened && (r.emptyButValid !== false || firstCommitWhole))) s.firstCommitBad++;
    }
    if (!r.nextWriterOk) {
      s.nextWriterBlocked++;
      note(`trial ${trial} (${mode}): the next writer failed: ${r.nextWriterError}`);
    }
    if (damaged) byMode.damaged++;
    for (const name of leftovers(dir, [base]).names) {
      if (LOCK_FILE.test(name) || staleAfterNext.has(name)) continue;
      staleAfterNext.add(name);
      s.leftoversAfterNextWriter++;
    }
    fresh = damaged;
  }
  return s;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function lastJsonLine(log: string): { committed: number } | null {
  try {
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    lines.pop();
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return JSON.parse(lines[i]!) as { committed: number };
      } catch {
        // torn
      }
    }
  } catch {
    // no log yet
  }
  return null;
}

/** Our writer and verifier, for one format. */
export function ourSubject(ext: '.json' | '.npz' | '.npy' | '.h5', loop: Loop): KillSubject {
  const json = ext === '.json';
  return {
    name: `${ext} ${loop} loop`,
    ext,
    loop,
    modes: loop === 'checkpoint' ? ['random', 'set', 'close'] : ['random', 'append', 'flush'],
    maxDelayMs: json ? 600 : 400,
    maxLength: json ? 8000 : 120_000,
    runWriter: (cfg, onReady) => {
      let ready = false;
      return runHarness('kill-writer', cfg, {
      timeoutMs: 60_000,
      onStdout: (chunk, child) => {
        if (!ready && chunk.includes('ready')) {
          ready = true;
          onReady(() => child.kill('SIGKILL'));
        }
      },
    });
    },
    runVerifier: (cfg) => runHarness('kill-verify', cfg, { timeoutMs: 60_000 }),
  };
}
