/**
 * Damaged HDF5 files never take the process down: before an HDF5 file this process did not write
 * is first read, a child process visits every object of it the way a read would (without reading
 * numeric data: binding/h5verify.h). libhdf5 trusts what it reads — a damaged file made it crash
 * (SIGSEGV, SIGFPE), loop forever in its metadata cache, or fill gigabytes — and none of that can
 * be caught in-process; in the child it costs only the child. When the child dies or stalls, the
 * object it had entered is marked damaged and the visit runs again without it, so one damaged key
 * does not cost the others.
 *
 * What the child found is kept for the file: the addon's calls on a damaged path (or a path over
 * or under it) are refused with ERR_CHECKPOINT_CORRUPT before libhdf5 sees them. Reports are
 * cached by inode, size and mtime, and a file this process wrote keeps its report across its
 * writes, so neither a reopen nor a file written here is verified again.
 *
 * CHECKPOINTER_HDF5_VERIFY=0 trusts every file (no child process; a damaged file may crash).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError } from '../errors';
import { FileOp, H5Dataset, H5File, loadNative, NativeError } from '../native';

export interface DamageReport {
  /** Damaged HDF5 paths and why; '/' is the whole file. */
  readonly damaged: ReadonlyMap<string, string>;
  /** libhdf5 crashed or looped opening the file itself: it is never opened in-process. */
  readonly unopenable?: string;
  /** Chunked datasets with more than 2^18 unwritten chunks (sparse, or a damaged extent). */
  readonly sparse?: ReadonlyMap<string, SparseDataset>;
}

export interface SparseDataset {
  stored: number;
  shape: number[];
  chunks: number[];
}

/**
 * Most unwritten chunks one read may cover: HDF5 fills each separately (~10 us and a chunk's
 * memory each), so a whole read of a damaged extent took 13 s and 2 GiB.
 */
const MAX_UNWRITTEN_CHUNKS_READ = 2 ** 18;

const TRUSTED: DamageReport = Object.freeze({ damaged: new Map<string, string>() });

/** How long the child may go without reaching a new object before it counts as looping. */
const STALL_MS = Number(process.env.CHECKPOINTER_HDF5_VERIFY_STALL_MS) || 3000;
/** A backstop for the child as a whole (the stall watchdog normally ends it long before). */
const CHILD_TIMEOUT_MS = 10 * 60_000;
/** Runs of the child per file: each one finds (at least) one more damaged object. */
const MAX_RUNS = 8;
/** The child runs this module (see childMain at the end). */
const CHILD = __filename;

export function verificationEnabled(): boolean {
  return process.env.CHECKPOINTER_HDF5_VERIFY !== '0';
}

// ----------------------------------------------------------------------------------- the cache

interface Stamp {
  key: string;
  size: bigint;
  mtimeNs: bigint;
}

/** By inode: a rename (an atomic commit) keeps it, a rewrite by someone else changes size or mtime. */
const cache = new Map<string, { size: bigint; mtimeNs: bigint; report: DamageReport }>();
const CACHE_LIMIT = 4096;
const reports = new WeakMap<H5File, DamageReport>();

function stamp(file: string): Stamp | null {
  try {
    const st = fs.statSync(file, { bigint: true });
    return { key: `${st.dev}:${st.ino}`, size: st.size, mtimeNs: st.mtimeNs };
  } catch {
    return null;
  }
}

function cached(s: Stamp | null): DamageReport | undefined {
  const hit = s && cache.get(s.key);
  return hit && hit.size === s.size && hit.mtimeNs === s.mtimeNs ? hit.report : undefined;
}

function remember(s: Stamp | null, report: DamageReport): void {
  if (!s) return;
  cache.delete(s.key);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(s.key, { size: s.size, mtimeNs: s.mtimeNs, report });
}

/** Ties an opened file to what is known of it (files created here: nothing damaged). */
export function attachReport(file: H5File, report: DamageReport | undefined): void {
  reports.set(file, report ?? TRUSTED);
}

/**
 * After this process closed a file it wrote: its new size and mtime are its own doing, so it is
 * not verified again; what was found damaged in it stays so.
 */
export function trustAfterWrite(file: H5File, fileName = file.path): void {
  remember(stamp(fileName), reports.get(file) ?? TRUSTED);
}

/**
 * A copy of a file (the shadow an atomic commit writes and renames over it) is known as its
 * original is, so opening it is not verified again. Call before opening the copy. A copy of a
 * file not verified yet stays unknown: opening it verifies it.
 */
export function trustCopy(original: string, copy: string): void {
  const known = cached(stamp(original));
  if (known) remember(stamp(copy), known);
}

// ------------------------------------------------------------------------------ verifying

interface ChildRun {
  stdout: string;
  status: number | null;
  signal: string | null;
  error?: Error;
}

type Outcome = { done: true; report: DamageReport } | { done: false };

/** What one run of the child says; `damaged` (and `sparse`) grow by what it found. */
function interpret(run: ChildRun, damaged: Map<string, string>, runs: number, sparse = new Map<string, SparseDataset>()): Outcome {
  const report = (extra: { unopenable?: string } = {}): Outcome => ({ done: true, report: { damaged, sparse, ...extra } });
  let last: string | null = null;
  let stalled: string | null = null;
  for (const text of run.stdout.split('\n')) {
    if (!text) continue;
    let line: { enter?: string; bad?: string; why?: string; stalled?: string; done?: boolean; unopened?: string; sparse?: string } & Partial<SparseDataset>;
    try {
      line = JSON.parse(text) as typeof line;
    } catch {
      continue; // a line cut short by the crash
    }
    if (line.enter !== undefined) last = line.enter;
    else if (line.bad !== undefined) damaged.set(line.bad, line.why ?? 'damaged');
    else if (line.stalled !== undefined) stalled = line.stalled;
    else if (line.sparse !== undefined) sparse.set(line.sparse, { stored: line.stored ?? 0, shape: line.shape ?? [], chunks: line.chunks ?? [] });
    else if (line.done) return report();
    else if (line.unopened !== undefined) return report(); // the open itself says why
  }
  if (last === null && stalled === null && run.signal === null && run.status !== STALL_EXIT) {
    // The verifier itself did not run (no node, a broken install): nothing is known of the file,
    // so nothing is refused — it is read in-process as before verification existed.
    warnOnce(`the HDF5 verifier did not run (${run.error?.message ?? `exit status ${run.status}`}); damaged files may crash this process`);
    return report();
  }
  const how = stalled !== null
    ? `libhdf5 loops reading it (no progress for ${STALL_MS} ms)`
    : run.signal
      ? `libhdf5 crashed reading it (${run.signal})`
      : `libhdf5 failed reading it (the verifier exited with status ${run.status})`;
  const culprit = stalled ?? last;
  if (culprit === null) return report({ unopenable: how });
  damaged.set(culprit, how);
  if (culprit === '/' || runs >= MAX_RUNS) {
    if (culprit !== '/') damaged.set('/', `more than ${MAX_RUNS} damaged objects`);
    return report();
  }
  return { done: false };
}

/** The child's exit status when its watchdog found libhdf5 looping (binding/h5verify.h). */
const STALL_EXIT = 70;
let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(message, { code: 'CHECKPOINTER_VERIFY' });
}

let runs = 0;
/** How many times this process ran the verifier's child (tests: files written or verified here are not verified again). */
export function verifierRuns(): number {
  return runs;
}

function childArgs(file: string, skip: Iterable<string>): string[] {
  runs++;
  return [CHILD, file, JSON.stringify({ skip: [...skip], stallMs: STALL_MS })];
}

function verifySync(file: string): DamageReport {
  const damaged = new Map<string, string>();
  const sparse = new Map<string, SparseDataset>();
  for (let runs = 1; ; runs++) {
    const r = spawnSync(process.execPath, childArgs(file, damaged.keys()), {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1 << 30,
    });
    const outcome = interpret({ stdout: r.stdout ?? '', status: r.status, signal: r.signal, error: r.error }, damaged, runs, sparse);
    if (outcome.done) return outcome.report;
  }
}

function runChild(file: string, skip: Iterable<string>): Promise<ChildRun> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    const chunks: Buffer[] = [];
    try {
      child = spawn(process.execPath, childArgs(file, skip), { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (err) {
      resolve({ stdout: '', status: null, signal: null, error: err as Error });
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    timer.unref();
    child.stdout!.on('data', (b: Buffer) => chunks.push(b));
    let error: Error | undefined;
    child.on('error', (err) => {
      error = err;
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(chunks).toString('utf8'), status, signal, error });
    });
  });
}

async function verifyAsync(file: string): Promise<DamageReport> {
  const damaged = new Map<string, string>();
  const sparse = new Map<string, SparseDataset>();
  for (let runs = 1; ; runs++) {
    const outcome = interpret(await runChild(file, damaged.keys()), damaged, runs, sparse);
    if (outcome.done) return outcome.report;
  }
}

/** Verifying `file` before it is opened, as a call either API makes (see ./hdf5-calls). */
export function verification(file: string): { sync(): DamageReport; async(): Promise<DamageReport> } | null {
  if (!verificationEnabled()) return null;
  const s = stamp(file);
  if (!s) return null; // nothing there: the open says so
  const known = cached(s);
  if (known) return { sync: () => known, async: () => Promise.resolve(known) };
  const done = (report: DamageReport): DamageReport => {
    // Stamped before the run: a file changed meanwhile is verified again next time.
    remember(s, report);
    return report;
  };
  return { sync: () => done(verifySync(file)), async: async () => done(await verifyAsync(file)) };
}

/** libhdf5 cannot open the file without crashing or looping: refused before it tries. */
export function assertOpenable(report: DamageReport, file: string): void {
  if (report.unopenable) {
    throw new CheckpointerError(`cannot open ${file}: not a readable HDF5 file (damaged: ${report.unopenable})`, { code: 'ERR_CHECKPOINT_CORRUPT', file });
  }
}

// ----------------------------------------------------------------------------------- the guard

/** Whether `p` is `root` or lies under it. */
function under(p: string, root: string): boolean {
  return root === '/' || p === root || p.startsWith(`${root}/`);
}

function damagedAt(report: DamageReport, p: string, subtree: boolean): [string, string] | undefined {
  for (const [d, why] of report.damaged) {
    if (under(p, d) || (subtree && under(d, p))) return [d, why];
  }
  return undefined;
}

function refuse(fileName: string, at: [string, string]): CheckpointerError {
  const [d, why] = at;
  const what = d === '/' ? 'the file' : d;
  return new CheckpointerError(`${fileName} is damaged: ${what} cannot be read (${why})`, { code: 'ERR_CHECKPOINT_CORRUPT', file: fileName });
}

/**
 * Refuses `path` of `file` when it, a group above it or (with `subtree`) an object below it is
 * damaged: opening or listing it would make libhdf5 read what it may crash on.
 */
export function guardPath(file: H5File, p: string, subtree = false): void {
  const report = reports.get(file);
  if (!report || report.damaged.size === 0) return;
  const at = damagedAt(report, p, subtree);
  if (at) throw refuse(file.path, at);
}

/** The damaged paths strictly below `p` in `file` (a walk can report them without opening them). */
export function damagedBelow(file: H5File, p: string): string[] {
  const report = reports.get(file);
  if (!report) return [];
  return [...report.damaged.keys()].filter((d) => d !== p && under(d, p));
}

/** The same for a batch: walks, moves and deletes touch everything below their path. */
export function guardOps(file: H5File, ops: readonly FileOp[]): void {
  const report = reports.get(file);
  if (!report) return;
  if (report.sparse?.size) {
    for (const op of ops) if (op.op === 'read') guardSparseRead(report, file.path, op.path, op.sel);
  }
  if (report.damaged.size === 0) return;
  for (const op of ops) {
    if (op.op === 'reserve') continue;
    if ((op.op === 'walk' || op.op === 'entries') && op.skip) {
      // Damage below a walk that names it in `skip` is reported by the walk without being opened.
      const skip = new Set(op.skip);
      for (const [d, why] of report.damaged) {
        if (under(op.path, d) || (under(d, op.path) && !skip.has(d))) throw refuse(file.path, [d, why]);
      }
      continue;
    }
    const subtree = op.op === 'walk' || op.op === 'move' || op.op === 'delete';
    const at = damagedAt(report, op.path, subtree) ?? (op.op === 'move' ? damagedAt(report, op.to, true) : undefined);
    if (at) throw refuse(file.path, at);
  }
}

/** Chunks a hyperslab (start, stride, count per axis; none = everything) of `shape` touches. */
function chunksTouched(shape: readonly number[], chunks: readonly number[], sel?: Float64Array): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const c = chunks[i] || 1;
    let along: number;
    if (!sel) {
      along = Math.ceil(shape[i]! / c);
    } else {
      const rank = sel.length / 3;
      const start = sel[i]!;
      const stride = sel[rank + i]!;
      const count = sel[2 * rank + i]!;
      const lastEl = start + stride * (count - 1);
      along = count === 0 ? 0 : Math.min(count, Math.floor(lastEl / c) - Math.floor(start / c) + 1);
    }
    n *= along;
  }
  return n;
}

/**
 * Refuses a read of `p` that would make HDF5 fill more than 2^18 unwritten chunks (ERR_TOO_LARGE:
 * read it in slices) — in a file verified here, where such datasets were found.
 */
function guardSparseRead(report: DamageReport | undefined, fileName: string, p: string, sel?: Float64Array): void {
  const sp = report?.sparse?.get(p);
  if (!sp) return;
  const unwritten = chunksTouched(sp.shape, sp.chunks, sel) - sp.stored;
  if (unwritten > MAX_UNWRITTEN_CHUNKS_READ) {
    throw new CheckpointerError(
      `${p} in ${fileName}: this read covers at least ${unwritten} chunks that were never written (extent [${sp.shape.join(', ')}], chunks of [${sp.chunks.join(', ')}], `
      + `${sp.stored} stored): a damaged extent, or a sparse dataset; read it in smaller slices through a dataset handle`,
      { code: 'ERR_TOO_LARGE', file: fileName },
    );
  }
}

const datasetReports = new WeakMap<H5Dataset, { report: DamageReport; fileName: string }>();

/** A dataset opened from `file` is guarded as its file is. */
export function attachDataset(file: H5File, ds: H5Dataset): void {
  const report = reports.get(file);
  if (report?.sparse?.size) datasetReports.set(ds, { report, fileName: file.path });
}

/** The read guard for a dataset handle's read. */
export function guardDatasetRead(ds: H5Dataset, sel?: Float64Array): void {
  const known = datasetReports.get(ds);
  if (known) guardSparseRead(known.report, known.fileName, ds.path, sel);
}

const READ_OPS = new Set<FileOp['op']>(['walk', 'lookup', 'resolve', 'entries', 'list', 'read', 'attrs']);

/** Whether a batch only reads. */
export function readsOnly(ops: readonly FileOp[]): boolean {
  return ops.every((op) => READ_OPS.has(op.op));
}

/**
 * A read that libhdf5 failed is a damaged file (a bad checksum, heap index, version number,
 * address), ERR_CHECKPOINT_CORRUPT — except what says otherwise: a filter that is not available,
 * an OS read error; those stay ERR_HDF5.
 */
export function readFailure(err: unknown, fileName: string): unknown {
  if (!(err instanceof CheckpointerError) || err.code !== 'ERR_HDF5') return err;
  const e = err as NativeError;
  const text = [e.message, ...(e.hdf5Stack ?? [])].join('\n');
  if (/not registered|not available|can't locate plugin|plugin|errno =|out of memory|resource unavailable/i.test(text)) return err;
  const out = new CheckpointerError(`${e.message} (the file is damaged)`, { code: 'ERR_CHECKPOINT_CORRUPT', file: e.file ?? fileName, cause: err });
  Object.defineProperties(out, {
    hdf5Stack: { value: e.hdf5Stack ?? [], enumerable: true },
    hdf5Minors: { value: e.hdf5Minors ?? [], enumerable: true },
  });
  return out;
}

// ------------------------------------------------------------------------------- the child

/**
 * `node hdf5-verify.js <file> <options JSON>`: visits the file through the addon, writing JSON
 * lines to stdout; libhdf5 may crash or loop on a damaged file here, where it costs only this
 * process.
 */
function childMain(): void {
  const [file, optionsJson] = process.argv.slice(2);
  const opts = JSON.parse(optionsJson ?? '{}') as { skip?: string[]; maxUnwrittenChunks?: number; stallMs?: number };
  try {
    const fileSize = fs.statSync(file!).size;
    loadNative().verifyFileSync(file!, { skip: opts.skip ?? [], progressFd: 1, fileSize, maxUnwrittenChunks: opts.maxUnwrittenChunks, stallMs: opts.stallMs });
  } catch (err) {
    // The file did not open (not HDF5, locked, ...): the caller's own open says why, in its words.
    fs.writeSync(1, `${JSON.stringify({ unopened: String((err as Error)?.message ?? err) })}\n`);
  }
}

if (require.main === module) childMain();
