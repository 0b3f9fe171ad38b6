/**
 * Mutation fuzzing: valid files this package writes (./fuzz seeds: json, npz with plain and
 * streamed members, npy, h5 contiguous and chunked/gzip) are mutated — bit flips, truncations,
 * overwritten runs — and each mutant is read key by key in a child (./fuzz-reader). The target:
 * only CheckpointerErrors, no crash (signal), no hang over 10 s, the file unchanged by reading.
 * Mutants that crash, hang or throw a raw error are re-run alone to confirm, then saved to
 * reliability-out/fuzz/ (not committed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ENTRY, lastJson, outDir, randInt, rng, runHarness, scratchDir, sha256 } from './common';
import type { ReadOutcome, ReaderConfig } from './fuzz-reader';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

export type SeedName = 'json' | 'npz' | 'npz-stream' | 'npy' | 'h5' | 'h5-chunked-gzip';
export const SEEDS: readonly SeedName[] = ['json', 'npz', 'npz-stream', 'npy', 'h5', 'h5-chunked-gzip'];

const EXT: Record<SeedName, string> = {
  json: '.json', npz: '.npz', 'npz-stream': '.npz', npy: '.npy', h5: '.h5', 'h5-chunked-gzip': '.h5',
};

function ramp(n: number, scale: number): Float64Array {
  return Float64Array.from({ length: n }, (_, j) => scale * j + 0.25);
}

/** Writes one valid seed file of the kind `name` and returns its path. */
export async function writeSeed(dir: string, name: SeedName): Promise<string> {
  const file = path.join(dir, `seed-${name}${EXT[name]}`);
  const chk = lib.Checkpointer.fromFile(file);
  const common = async (c: typeof chk) => {
    await c.set('step', 1200);
    await c.set('positions', lib.ndarray(ramp(96, 0.5), [32, 3]));
    await c.set('params', { alpha: 0.1, name: 'run', nested: { count: 3 } });
    await c.set('tag', 'seed');
    await c.set('ints', lib.ndarray(Int32Array.from({ length: 20 }, (_, j) => j * 7 - 30)));
  };
  await chk.with(async (c) => {
    if (name === 'npy') {
      const ds = await c.dataset('frames', { dtype: 'float64', shape: [0, 8] });
      for (let k = 0; k < 24; k++) await ds.append(ramp(8, k));
      return;
    }
    await common(c);
    if (name === 'npz-stream') {
      const ds = await c.dataset('frames', { dtype: 'float32', shape: [0, 4] });
      for (let k = 0; k < 40; k++) await ds.append(Float32Array.from(ramp(4, k)));
    }
    if (name === 'h5-chunked-gzip') {
      const ds = await c.dataset('frames', { dtype: 'float64', shape: [0, 16], chunks: [8, 16], compression: 'gzip', shuffle: true });
      for (let k = 0; k < 40; k++) await ds.append(ramp(16, k));
      const plain = await c.dataset('chunked', { dtype: 'int16', shape: [0, 5], chunks: [4, 5] });
      for (let k = 0; k < 13; k++) await plain.append(Int16Array.from({ length: 5 }, (_, j) => k * 5 + j));
    }
  });
  return file;
}

export type MutationKind = 'bitflip' | 'truncate' | 'overwrite';

/**
 * One mutant of `bytes`. Offsets land anywhere half the time and in the first 2 KiB or last 512
 * bytes (superblocks, headers, zip directories: where readers trust what they find) otherwise.
 */
export function mutate(bytes: Buffer, rand: () => number): { kind: MutationKind; data: Buffer; what: string } {
  const data = Buffer.from(bytes);
  const offset = (): number => {
    const r = rand();
    if (r < 0.5) return randInt(rand, 0, data.length - 1);
    if (r < 0.8) return randInt(rand, 0, Math.min(2047, data.length - 1));
    return randInt(rand, Math.max(0, data.length - 512), data.length - 1);
  };
  const k = rand();
  if (k < 0.4) {
    const flips = randInt(rand, 1, 8);
    const at: number[] = [];
    for (let i = 0; i < flips; i++) {
      const o = offset();
      data[o]! ^= 1 << randInt(rand, 0, 7);
      at.push(o);
    }
    return { kind: 'bitflip', data, what: `bits flipped at ${at.join(',')}` };
  }
  if (k < 0.6) {
    const len = offset();
    return { kind: 'truncate', data: data.subarray(0, len), what: `truncated to ${len} of ${bytes.length}` };
  }
  const o = offset();
  const len = Math.min(randInt(rand, 1, 64), data.length - o);
  const fill = rand();
  for (let i = 0; i < len; i++) data[o + i] = fill < 0.3 ? 0 : fill < 0.5 ? 0xff : randInt(rand, 0, 255);
  return { kind: 'overwrite', data, what: `${len} bytes overwritten at ${o}` };
}

export interface FuzzFinding {
  seed: SeedName;
  what: string;
  problem: string;
  saved: string | null;
}

export interface FuzzStats {
  seed: SeedName;
  mutants: number;
  /** Mutants whose every read either worked or gave a CheckpointerError. */
  clean: number;
  crashes: number;
  hangs: number;
  rawErrors: number;
  changedByReading: number;
  /** Reads that returned a different value (or a key the seed lacks) without an error. */
  silent: number;
  /** Of those, `get`s (whole reads: CRC-checked in npz). */
  silentGets: number;
  /** CheckpointerError codes seen, with counts. */
  codes: Record<string, number>;
  findings: FuzzFinding[];
}

const HANG_MS = 10_000;

interface BatchItem {
  mutant: string;
  seed: string;
  what: string;
}

type ItemResult = { kind: 'done'; out: ReadOutcome } | { kind: 'crash'; signal: string } | { kind: 'hang' } | { kind: 'error'; detail: string };

/** Reads `items` in as few children as possible: a crash or a hang ends a child, the next resumes after it. */
async function readBatch(items: readonly BatchItem[]): Promise<ItemResult[]> {
  const results: ItemResult[] = [];
  while (results.length < items.length) {
    const from = results.length;
    const cfg: ReaderConfig = { files: items.slice(from).map((i) => [i.mutant, i.seed]) };
    let watchdog: NodeJS.Timeout | null = null;
    let current = -1;
    let hung = false;
    let buffered = '';
    const batch: ItemResult[] = [];
    const r = await runHarness('fuzz-reader', cfg, {
      onStdout: (chunk, child) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          const msg = JSON.parse(line) as { start?: number } & Partial<ReadOutcome>;
          if (msg.start !== undefined) {
            current = msg.start;
            if (watchdog) clearTimeout(watchdog);
            // A read that takes 10 s is a hang, also when the event loop still runs.
            watchdog = setTimeout(() => {
              hung = true;
              child.kill('SIGKILL');
            }, HANG_MS);
          } else if (msg.done !== undefined) {
            if (watchdog) clearTimeout(watchdog);
            watchdog = null;
            batch.push({ kind: 'done', out: msg as ReadOutcome });
          }
        }
      },
    });
    if (watchdog) clearTimeout(watchdog);
    results.push(...batch);
    if (results.length >= items.length) break;
    if (hung) results.push({ kind: 'hang' });
    else if (r.signal) results.push({ kind: 'crash', signal: r.signal });
    else {
      const why = lastJson<{ readerError?: string }>(r.stdout)?.readerError ?? r.stderr.slice(-300);
      results.push({ kind: 'error', detail: `the reader exited (${r.code}) during mutant ${current}: ${why}` });
    }
  }
  return results;
}

export async function runFuzzCampaign(seedName: SeedName, mutants: number, seed: number): Promise<FuzzStats> {
  const rand = rng(seed);
  const dir = scratchDir(`fuzz-${seedName}`);
  const seedFile = await writeSeed(dir, seedName);
  const bytes = fs.readFileSync(seedFile);
  const items: (BatchItem & { hash: string; data: Buffer })[] = [];
  for (let m = 0; m < mutants; m++) {
    const { data, what } = mutate(bytes, rand);
    const mutant = path.join(dir, `m${m}${EXT[seedName]}`);
    fs.writeFileSync(mutant, data);
    items.push({ mutant, seed: seedFile, what, hash: sha256(mutant), data });
  }
  const s: FuzzStats = {
    seed: seedName, mutants, clean: 0, crashes: 0, hangs: 0, rawErrors: 0, changedByReading: 0, silent: 0, silentGets: 0,
    codes: {}, findings: [],
  };
  const results = await readBatch(items);
  for (let m = 0; m < items.length; m++) {
    const item = items[m]!;
    let r = results[m]!;
    if (r.kind === 'crash' || r.kind === 'hang') {
      // Confirm alone, in a fresh process: the one before it cannot be the cause then.
      r = (await readBatch([item]))[0]!;
    }
    const problems: string[] = [];
    if (r.kind === 'crash') {
      s.crashes++;
      problems.push(`crash-${r.signal}`);
    } else if (r.kind === 'hang') {
      s.hangs++;
      problems.push('hang');
    } else if (r.kind === 'error') {
      problems.push('reader-error');
      s.findings.push({ seed: seedName, what: item.what, problem: r.detail, saved: null });
    } else {
      const raw = r.out.ops.filter((o) => o.includes(': RAW '));
      for (const op of r.out.ops) {
        const code = op.slice(op.lastIndexOf(': ') + 2);
        if (code !== 'ok' && !code.startsWith('RAW')) s.codes[code] = (s.codes[code] ?? 0) + 1;
      }
      if (raw.length > 0) {
        s.rawErrors++;
        problems.push('raw');
        s.findings.push({ seed: seedName, what: item.what, problem: raw[0]!, saved: null });
      }
      if (r.out.silent.length > 0) {
        s.silent++;
        if (r.out.silent.some((x) => x.startsWith('get '))) {
          s.silentGets++;
          if (seedName.startsWith('npz')) {
            problems.push('silent');
            s.findings.push({ seed: seedName, what: item.what, problem: r.out.silent.join('; '), saved: null });
          }
        }
      }
    }
    if (fs.existsSync(item.mutant) ? sha256(item.mutant) !== item.hash : true) {
      s.changedByReading++;
      problems.push('changed');
    }
    if (problems.length === 0 || (problems.length === 1 && problems[0] === 'reader-error')) {
      if (problems.length === 0) s.clean++;
      continue;
    }
    // Keep the original mutant bytes (reading may have changed the file) under a name that says what happened.
    const saved = path.join(outDir('fuzz'), `${seedName}-${problems[0]}-${item.hash.slice(0, 10)}${EXT[seedName]}`);
    fs.writeFileSync(saved, item.data);
    const finding = s.findings.find((f) => f.what === item.what && f.saved === null);
    if (finding) finding.saved = saved;
    else s.findings.push({ seed: seedName, what: item.what, problem: problems.join(', '), saved });
  }
  return s;
}
