/**
 * Shared pieces of the reliability suite (test/reliability.test.ts, `npm run test:reliability`):
 * the campaign's parameters (from the environment), child processes with timeouts, the
 * deterministic values the kill loops write and check, and the report the campaign writes.
 *
 * Every scenario that can crash, hang or be killed runs in a child process: the parent only
 * spawns, kills, hashes and counts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// ------------------------------------------------------------------------------------ parameters

/** `RELIABILITY_PROFILE=full` (what `npm run test:reliability` sets) or the short CI form. */
export const FULL = process.env.RELIABILITY_PROFILE === 'full';

function intFromEnv(name: string, short: number, full: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return FULL ? full : short;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

export const params = {
  /** SIGKILLs per format and loop (checkpoint loop, append loop). */
  kills: intFromEnv('RELIABILITY_KILLS', 3, 200),
  /** Mutants per seed file. */
  mutants: intFromEnv('RELIABILITY_MUTANTS', 12, 300),
  /** open/set/get/close cycles per format in the leak check. */
  cycles: intFromEnv('RELIABILITY_CYCLES', 500, 10000),
  /** Rounds per writer in the two-writer checks. */
  writerRounds: intFromEnv('RELIABILITY_WRITER_ROUNDS', 10, 100),
  /** Kills of the h5py anchor loop (0 skips it; the short form skips it). */
  h5pyKills: intFromEnv('RELIABILITY_H5PY_KILLS', 0, 200),
  /** Seed of the campaign's random choices (printed, so a run can be repeated). */
  seed: intFromEnv('RELIABILITY_SEED', Date.now() % 1_000_000, Date.now() % 1_000_000),
};

/** Where scratch files go (default: a fresh directory under the OS temp dir, removed at exit). */
export function scratchDir(prefix: string): string {
  const base = process.env.RELIABILITY_DIR ?? os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base, `rel-${prefix}-`));
  if (!process.env.RELIABILITY_KEEP) {
    if (scratchDirs.size === 0) {
      process.on('exit', () => {
        for (const d of scratchDirs) fs.rmSync(d, { recursive: true, force: true });
      });
    }
    scratchDirs.add(dir);
  }
  return dir;
}
const scratchDirs = new Set<string>();

/** The repository root (dist-test/test/reliability → three levels up). */
export const REPO = path.resolve(__dirname, '..', '..', '..');

/** Where crashers, hangers and the report go: RELIABILITY_OUT, default reliability-out/ (git-ignored). */
export function outDir(...sub: string[]): string {
  const dir = path.join(process.env.RELIABILITY_OUT ?? path.join(REPO, 'reliability-out'), ...sub);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The package as the children load it: the compiled copy beside the tests. */
export const ENTRY = path.resolve(__dirname, '..', '..', 'lib', 'index.js');

// --------------------------------------------------------------------------------------- random

/** mulberry32: a small seeded generator, so a failing campaign can be re-run with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

// ----------------------------------------------------------------------------- child processes

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface ChildOptions {
  /** Kill with SIGKILL after this many ms (and report timedOut). */
  timeoutMs?: number;
  /** Called with each chunk of stdout (e.g. to time a kill from the child's "ready"). */
  onStdout?: (chunk: string, child: import('node:child_process').ChildProcess) => void;
  env?: NodeJS.ProcessEnv;
}

/** Runs `cmd args` to its end (or its timeout), capturing both streams. */
export function runChild(cmd: string, args: readonly string[], opts: ChildOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? null : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      opts.onStdout?.(c, child);
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      // Bounded: a child that loops printing must not fill the parent's memory.
      if (stderr.length < 64 * 1024) stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** Runs a compiled harness module of this folder (`name`.js) in a fresh Node with `config` as JSON. */
export function runHarness(name: string, config: unknown, opts: ChildOptions & { nodeArgs?: string[] } = {}): Promise<ChildResult> {
  const script = path.join(__dirname, `${name}.js`);
  return runChild(process.execPath, [...(opts.nodeArgs ?? []), script, JSON.stringify(config)], opts);
}

/** The last line of a child's stdout that parses as JSON, or null. */
export function lastJson<T>(stdout: string): T | null {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]!) as T;
    } catch {
      // not the result line
    }
  }
  return null;
}

/** For harness children: the config the parent passed. */
export function childConfig<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

// ----------------------------------------------------------------------------------------- files

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Appends one line to a side log and fsyncs it (the child's record of what it committed). */
export function appendDurably(log: string, line: string): void {
  const fd = fs.openSync(log, 'a');
  try {
    fs.writeSync(fd, `${line}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The last complete line of a side log parsed as JSON, or null (a torn last line is skipped). */
export function lastLogged<T>(log: string): T | null {
  let text: string;
  try {
    text = fs.readFileSync(log, 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  lines.pop(); // the part after the last newline is incomplete (or empty)
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]!) as T;
    } catch {
      // torn
    }
  }
  return null;
}

/** Entries in `dir` other than `keep`: temp, spool, shadow files a killed writer left behind. */
export function leftovers(dir: string, keep: readonly string[]): { names: string[]; bytes: number } {
  const names = fs.readdirSync(dir).filter((n) => !keep.includes(n));
  let bytes = 0;
  for (const n of names) {
    try {
      bytes += fs.statSync(path.join(dir, n)).size;
    } catch {
      // removed meanwhile
    }
  }
  return { names, bytes };
}

// --------------------------------------------------------------------- the kill loops' values

/** Length of the float64 array of checkpoint `i`: grows and shrinks from one commit to the next. */
export function positionsLength(i: number, maxLength: number): number {
  return 1000 + ((i * 7919) % Math.max(1, maxLength - 1000));
}

/** Exact in float64 (j / 1024 has few mantissa bits), so Python computes the same bits. */
export function positions(i: number, maxLength: number): Float64Array {
  const n = positionsLength(i, maxLength);
  const a = new Float64Array(n);
  for (let j = 0; j < n; j++) a[j] = i + j / 1024;
  return a;
}

export function params0(i: number): { alpha: number; name: string; count: number } {
  return { alpha: i / 8, name: `run-${i}`, count: i };
}

/** The slot keys hold the latest committed i of each residue: keys older commits wrote and later ones keep. */
export const SLOTS = 4;
export function slotValue(lastCommitted: number, slot: number): number | undefined {
  const v = lastCommitted - ((lastCommitted - slot) % SLOTS + SLOTS) % SLOTS;
  return v >= 0 ? v : undefined;
}

/** Frame `k` of the append loops. */
export function frame(k: number, width: number): Float64Array {
  const a = new Float64Array(width);
  for (let j = 0; j < width; j++) a[j] = k + j / 1024;
  return a;
}

export function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

// ----------------------------------------------------------------------------------- the report

/** A markdown table. */
export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Appends a section to the campaign's report (reliability-out/report-<profile>.md) and returns it. */
export function report(title: string, body: string): string {
  const file = path.join(outDir(), `report-${FULL ? 'full' : 'short'}.md`);
  const text = `\n## ${title}\n\n${body}\n`;
  fs.appendFileSync(file, text);
  return text;
}
