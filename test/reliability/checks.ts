/**
 * Drivers of the leak check (./leak-child) and the two-writer checks (./writer-child): they run
 * the children and turn what they print into figures the test asserts and the report shows.
 */
import * as path from 'node:path';
import { ENTRY, lastJson, runHarness, scratchDir } from './common';
import type { LeakSample } from './leak-child';
import type { WriterChildConfig, WriterChildResult } from './writer-child';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

export interface LeakStats {
  ext: string;
  cycles: number;
  samples: LeakSample[];
  /** From the first sample after warm-up (a tenth of the run) to the last. */
  fdGrowth: number;
  rssGrowthMiB: number;
  /** Distinct in-scope HDF5 object counts seen (one value = flat). */
  hdf5ObjectCounts: number[];
  error: string | null;
  ms: number;
}

export async function runLeakCheck(ext: string, cycles: number): Promise<LeakStats> {
  const file = path.join(scratchDir('leak'), `leak${ext}`);
  const r = await runHarness('leak-child', { file, cycles }, { nodeArgs: ['--expose-gc'], timeoutMs: 20 * 60_000 });
  const out = lastJson<{ samples?: LeakSample[]; leakError?: string }>(r.stdout);
  const samples = out?.samples ?? [];
  const warm = samples[1] ?? samples[0];
  const last = samples[samples.length - 1];
  return {
    ext,
    cycles,
    samples,
    fdGrowth: warm && last ? last.fds - warm.fds : NaN,
    rssGrowthMiB: warm && last ? Math.round((last.rssMiB - warm.rssMiB) * 10) / 10 : NaN,
    hdf5ObjectCounts: [...new Set(samples.map((s) => s.hdf5Objects).filter((n): n is number => n !== null))],
    error: out?.leakError ?? (samples.length === 0 ? `the child ended with ${r.signal ?? r.code}: ${r.stderr.slice(-300)}` : null),
    ms: r.ms,
  };
}

export interface TwoWriterStats {
  ext: string;
  mode: 'process' | 'in-process';
  /** Commits that returned, over both writers. */
  committed: number;
  locked: number;
  /** Returned commits whose key or frame is not in the file afterwards. */
  lost: number;
  lostExamples: string[];
  /** Errors other than ERR_LOCKED. */
  errors: string[];
}

/** What the file holds at the end: keys, or on .npy the frames as `id:round`. */
async function present(file: string): Promise<Set<string>> {
  const chk = lib.Checkpointer.fromFile(file);
  if (file.endsWith('.npy')) {
    const a = (await chk.get(lib.NPY_KEY)) as { data: Float64Array; shape: number[] };
    const out = new Set<string>();
    for (let k = 0; k < a.shape[0]!; k++) out.add(`${a.data[2 * k]}:${a.data[2 * k + 1]}`);
    return out;
  }
  return new Set(await chk.keys());
}

export async function runTwoWriters(ext: string, mode: 'process' | 'in-process', rounds: number): Promise<TwoWriterStats> {
  const file = path.join(scratchDir('writers'), `shared${ext}`);
  const base: Omit<WriterChildConfig, 'id'> = { mode, file, rounds, startAt: Date.now() + 1500 };
  const children = mode === 'process'
    ? await Promise.all([0, 1].map((id) => runHarness('writer-child', { ...base, id }, { timeoutMs: 10 * 60_000 })))
    : [await runHarness('writer-child', { ...base, id: 0 }, { timeoutMs: 10 * 60_000 })];
  const s: TwoWriterStats = { ext, mode, committed: 0, locked: 0, lost: 0, lostExamples: [], errors: [] };
  const committed: string[] = [];
  for (const c of children) {
    const out = lastJson<WriterChildResult & { childError?: string }>(c.stdout);
    if (!out || out.childError || !out.committed) {
      s.errors.push(out?.childError ?? `a writer ended with ${c.signal ?? c.code}: ${c.stderr.slice(-300)}`);
      continue;
    }
    committed.push(...out.committed);
    s.locked += out.locked;
    s.errors.push(...out.errors);
  }
  s.committed = committed.length;
  let inFile: Set<string>;
  try {
    inFile = await present(file);
  } catch (err) {
    s.errors.push(`reading the file afterwards: ${(err as Error).message}`);
    inFile = new Set();
  }
  for (const tag of committed) {
    if (!inFile.has(tag)) {
      s.lost++;
      if (s.lostExamples.length < 5) s.lostExamples.push(tag);
    }
  }
  return s;
}
