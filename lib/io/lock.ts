/**
 * One writer per checkpoint file, across processes and within one, in plain Node (no flock).
 *
 * A writer claims the file by putting a claim file beside it, `.<base>.<pid>.<hex>.lock`, holding
 * `{pid, thread, start, host}` (`start`: the process' start time, /proc/<pid>/stat field 22, so a
 * reused pid does not keep a dead writer's claim alive). The claim is written under a private name
 * and renamed into place, so no one ever reads a half-written claim. Then the writer lists the
 * directory: if another live claim is there it withdraws its own (and fails, or waits); claims of
 * dead processes are removed. Because each writer puts its claim down *before* looking, of two
 * writers at least the later one sees the earlier one's claim: two can never both win (both may
 * withdraw, and retry after a random pause). Nothing is ever unlinked that a live process owns,
 * so breaking a stale lock has no check-then-remove race.
 *
 * Within a process, a registry keyed by the target's real path makes two Checkpointer objects on
 * one file conflict as two processes do. Claims are removed at release and at process exit; a
 * killed process' claim is stale at once (its pid is gone), and the next writer removes it.
 * Claims from another host (a shared filesystem) cannot be checked and are never broken.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { CheckpointerError, fromSystemError } from '../errors';
import { isTempNameFor } from './atomic';

export type LockMode = 'fail' | 'wait';

export interface LockOptions {
  /** 'fail' (default): ERR_LOCKED at once when another writer holds the file; 'wait': wait for it. */
  mode?: LockMode;
  /** With 'wait': give up with ERR_LOCKED after this many ms (default: wait as long as it takes). */
  timeoutMs?: number;
}

/** Who holds (or held) a claim. */
export interface LockHolder {
  pid: number;
  thread: number;
  /** The process' start time in clock ticks since boot (/proc/<pid>/stat field 22); null where unknown. */
  start: number | null;
  host: string;
}

/** A held write lock. `release()` is idempotent. */
export interface WriteLock {
  /** The target's real path (what the lock is keyed by). */
  readonly target: string;
  /** The claim file beside it. */
  readonly claimPath: string;
  release(): void;
}

const HOST = os.hostname();

// ---------------------------------------------------------------------------- processes

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]; null when the process is gone. */
function procStat(pid: number): string[] | null | 'unknown' {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return fs.existsSync('/proc/self/stat') ? null : 'unknown';
    return 'unknown';
  }
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** Start time (field 22, clock ticks since boot) of a process, or null where /proc cannot say. */
export function processStartTicks(pid: number): number | null {
  const f = procStat(pid);
  if (f === null || f === 'unknown') return null;
  const t = Number(f[19]); // field 22 is the 20th after the command name
  return Number.isFinite(t) ? t : null;
}

const OWN: LockHolder = { pid: process.pid, thread: threadId, start: processStartTicks(process.pid), host: HOST };

/** Whether the process that wrote `holder` is still running (same pid and start time, not a zombie). */
export function isAlive(pid: number, start: number | null): boolean {
  const f = procStat(pid);
  if (f === 'unknown') {
    // No /proc (macOS, BSD): signal 0 tells whether the pid exists.
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (f === null) return false;
  // A killed process that its parent has not reaped yet is a zombie: it will never write again.
  if (f[0] === 'Z' || f[0] === 'X') return false;
  const now = Number(f[19]);
  return start === null || !Number.isFinite(now) || now === start;
}

let bootMs: number | null | undefined;
/** When a live process started, in ms since the epoch (to tell a reused pid's files from its own). */
function processStartEpochMs(pid: number): number | null {
  if (bootMs === undefined) {
    bootMs = null;
    try {
      const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'latin1'));
      if (m) bootMs = Number(m[1]) * 1000;
    } catch { /* no /proc */ }
  }
  const ticks = processStartTicks(pid);
  if (bootMs === null || ticks === null) return null;
  return bootMs + ticks * 10; // USER_HZ is 100 on every Linux Node runs on
}

// ---------------------------------------------------------------------------- names

/** `.<base>.<pid>.<hex>.<suffix>` names beside `target`: the pid, or null for another name. */
export function pidOfSideFile(target: string, name: string, suffix: string): number | null {
  const prefix = `.${path.basename(target)}.`;
  if (!name.startsWith(prefix) || !name.endsWith(`.${suffix}`)) return null;
  const m = /^(\d+)\.[0-9a-f]+$/.exec(name.slice(prefix.length, name.length - suffix.length - 1));
  return m ? Number(m[1]) : null;
}

/** The claim file a writer (this thread) puts beside `target`. */
function claimNameFor(target: string): string {
  return `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.lock`;
}

// ---------------------------------------------------------------------------- the registry

interface Held {
  owner: object;
  lock: WriteLock;
}

/** Locks this thread holds, by the target's real path. */
const held = new Map<string, Held>();
/** Claim files this thread has put down (held, or being checked). */
const ownClaims = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const claim of ownClaims) {
      try {
        fs.unlinkSync(claim);
      } catch { /* already gone */ }
    }
    ownClaims.clear();
    held.clear();
  });
}

/**
 * The path a lock on `file` is keyed by: the real path of the file, or of its directory when the
 * file does not exist yet (two spellings of one file share one lock).
 */
export function lockTargetOf(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, file, 'lock');
  }
  try {
    return path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
  } catch (err) {
    throw fromSystemError(err, file, 'lock');
  }
}

// ---------------------------------------------------------------------------- one attempt

type Attempt = { lock: WriteLock } | { holder: LockHolder; inProcess: boolean; gone: boolean };

function readClaim(file: string, pidFromName: number): LockHolder | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const j = JSON.parse(text) as Partial<LockHolder>;
    if (typeof j.pid === 'number' && typeof j.host === 'string') {
      return { pid: j.pid, thread: typeof j.thread === 'number' ? j.thread : 0, start: typeof j.start === 'number' ? j.start : null, host: j.host };
    }
  } catch { /* not ours: judged by the pid in its name */ }
  return { pid: pidFromName, thread: 0, start: null, host: HOST };
}

function holderIsLive(h: LockHolder, claimPath: string): boolean {
  if (h.host !== HOST) return true; // cannot be checked from here
  if (h.pid === process.pid) {
    if (h.thread !== threadId) return true; // another worker thread of this process
    return ownClaims.has(claimPath); // this thread's claim only while it is one
  }
  return isAlive(h.pid, h.start);
}

function unlinkQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch { /* already gone */ }
}

/** Puts a claim down, looks for other live ones; withdraws on a conflict. */
function attempt(target: string, owner: object): Attempt {
  const mine = held.get(target);
  if (mine) {
    if (mine.owner === owner) return { lock: mine.lock };
    return { holder: OWN, inProcess: true, gone: false };
  }
  const dir = path.dirname(target);
  const claimPath = path.join(dir, claimNameFor(target));
  const staging = `${claimPath}.new`;
  installExitHook();
  ownClaims.add(claimPath);
  ownClaims.add(staging);
  try {
    fs.writeFileSync(staging, JSON.stringify(OWN), { flag: 'wx', mode: 0o644 });
    fs.renameSync(staging, claimPath);
  } catch (err) {
    unlinkQuietly(staging);
    ownClaims.delete(claimPath);
    ownClaims.delete(staging);
    throw fromSystemError(err, target, 'lock');
  } finally {
    ownClaims.delete(staging);
  }
  let live: LockHolder | null = null;
  try {
    for (const name of fs.readdirSync(dir)) {
      const pid = pidOfSideFile(target, name, 'lock');
      if (pid === null) continue;
      const other = path.join(dir, name);
      if (other === claimPath) continue;
      const h = readClaim(other, pid);
      if (h === null) continue; // withdrawn meanwhile
      if (holderIsLive(h, other)) {
        live ??= h;
      } else {
        unlinkQuietly(other); // a dead writer's claim: it can never act on it again
      }
    }
  } catch (err) {
    ownClaims.delete(claimPath);
    unlinkQuietly(claimPath);
    throw fromSystemError(err, target, 'lock');
  }
  if (live) {
    ownClaims.delete(claimPath);
    unlinkQuietly(claimPath);
    return { holder: live, inProcess: false, gone: false };
  }
  const lock: WriteLock = {
    target,
    claimPath,
    release: () => {
      if (held.get(target)?.lock !== lock) return;
      held.delete(target);
      ownClaims.delete(claimPath);
      unlinkQuietly(claimPath);
    },
  };
  held.set(target, { owner, lock });
  return { lock };
}

/** After a conflict: whether every conflicting claim has gone (it was a contender that withdrew too). */
function holderGone(target: string, holder: LockHolder): boolean {
  try {
    for (const name of fs.readdirSync(path.dirname(target))) {
      if (pidOfSideFile(target, name, 'lock') === holder.pid) return false;
    }
  } catch {
    return false;
  }
  return true;
}

function lockedError(file: string, holder: LockHolder, inProcess: boolean, waited: number | null): CheckpointerError {
  const who = inProcess
    ? `another Checkpointer in this process (pid ${holder.pid}) is writing it`
    : `process ${holder.pid}${holder.host !== HOST ? ` on host ${holder.host}` : ''} is writing it`;
  const after = waited === null ? '' : ` (waited ${waited} ms)`;
  return new CheckpointerError(`cannot write ${file}: ${who}${after}; only one writer at a time`, { code: 'ERR_LOCKED', file });
}

// ---------------------------------------------------------------------------- acquiring

/** Tries a few times while contenders that withdrew at the same instant clear off; undefined = really held. */
function trySettled(target: string, owner: object, pause: (ms: number) => void): Attempt {
  let a = attempt(target, owner);
  for (let i = 0; i < 8 && !('lock' in a) && !a.inProcess && holderGone(target, a.holder); i++) {
    pause(1 + Math.random() * 4);
    a = attempt(target, owner);
  }
  return a;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function pollDelay(tries: number): number {
  return Math.min(50, 2 + tries * 2) * (0.5 + Math.random());
}

/**
 * Takes the write lock on `file` for `owner` (a second call by the same owner returns the same
 * lock). 'wait' sleeps the thread between tries (Atomics.wait); a holder in this same thread can
 * never let go during a synchronous wait, so that is ERR_LOCKED at once.
 */
export function acquireWriteLockSync(file: string, owner: object, opts: LockOptions = {}): WriteLock {
  const target = lockTargetOf(file);
  const t0 = Date.now();
  const limit = opts.mode === 'wait' ? (opts.timeoutMs ?? Infinity) : 0;
  for (let tries = 0; ; tries++) {
    const a = trySettled(target, owner, sleepSync);
    if ('lock' in a) return a.lock;
    const waited = Date.now() - t0;
    if (opts.mode !== 'wait' || a.inProcess || waited >= limit) {
      throw lockedError(file, a.holder, a.inProcess, opts.mode === 'wait' && !a.inProcess ? waited : null);
    }
    sleepSync(Math.min(pollDelay(tries), limit - waited));
  }
}

/** Async twin: waits with timers, so the event loop runs meanwhile (also for a holder in this thread). */
export async function acquireWriteLock(file: string, owner: object, opts: LockOptions = {}): Promise<WriteLock> {
  const target = lockTargetOf(file);
  const t0 = Date.now();
  const limit = opts.mode === 'wait' ? (opts.timeoutMs ?? Infinity) : 0;
  for (let tries = 0; ; tries++) {
    const a = trySettled(target, owner, sleepSync);
    if ('lock' in a) return a.lock;
    const waited = Date.now() - t0;
    if (opts.mode !== 'wait' || waited >= limit) throw lockedError(file, a.holder, a.inProcess, opts.mode === 'wait' ? waited : null);
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollDelay(tries), limit - waited)));
  }
}

// ---------------------------------------------------------------------------- stale side files

/** Suffixes of the side files a writer leaves beside its target while it works. */
const SIDE_SUFFIXES = ['spool', 'lock.new'];

/**
 * Removes temp, spool and half-made claim files of writers that are gone (killed mid-write) beside
 * `file`. Called by the lock holder: a live process' files (its pid runs, and started before the
 * file was last written) are kept. Returns the names removed.
 */
export function removeStaleSideFiles(file: string): string[] {
  // Temp files sit beside the name the writer was given; a lock's target is the real path: look at both.
  const removed: string[] = [];
  const given = path.resolve(file);
  const target = lockTargetOf(file);
  for (const t of new Set([target, given])) {
    const dir = path.dirname(t);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      let pid: number | null = isTempNameFor(t, name) ? pidOfSideFile(t, name, 'tmp') : null;
      for (const suffix of SIDE_SUFFIXES) pid ??= pidOfSideFile(t, name, suffix);
      if (pid === null || pid === process.pid) continue;
      const full = path.join(dir, name);
      if (isStale(full, pid)) {
        try {
          fs.unlinkSync(full);
          removed.push(name);
        } catch { /* gone already, or not ours to remove */ }
      }
    }
  }
  return removed;
}

/** A side file of process `pid` is stale when that process is gone, or is a newer one that reused the pid. */
function isStale(full: string, pid: number): boolean {
  if (!isAlive(pid, null)) return true;
  // A live process' own files were written after it started (2 s: btime is in whole seconds).
  const started = processStartEpochMs(pid);
  try {
    return started !== null && fs.statSync(full).mtimeMs < started - 2000;
  } catch {
    return false;
  }
}
