/**
 * Child of the mutation fuzzer: reads mutants key by key as a user would — `keys()`, `get` of each
 * key, then `dataset(key).read()` of each array key — and prints one JSON line per mutant
 * (`{"start": n}` before it, `{"done": n, ...}` after), so the parent can tell which mutant a
 * crash or a hang belongs to and restart after it.
 *
 * Each outcome is 'ok', a CheckpointerError's code, or `RAW <name>: <message>` for anything else.
 * `silent` lists reads that succeeded with a value the seed does not have (no error at all).
 */
import { isDeepStrictEqual } from 'node:util';
import { childConfig, ENTRY } from './common';

export interface ReaderConfig {
  /** [mutant, the seed it came from] pairs. */
  files: [string, string][];
}

export interface ReadOutcome {
  done: number;
  ops: string[];
  silent: string[];
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

function outcome(err: unknown): string {
  if (err instanceof lib.CheckpointerError) return err.code;
  const e = err as { name?: string; message?: string };
  return `RAW ${e?.name ?? typeof err}: ${String(e?.message ?? err).slice(0, 200)}`;
}

interface Snapshot {
  keys: string[] | null;
  values: Map<string, unknown>;
  datasets: Map<string, unknown>;
}

function isArrayValue(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'shape' in v && 'data' in v;
}

async function readAll(file: string, ops: string[] | null): Promise<Snapshot> {
  const snap: Snapshot = { keys: null, values: new Map(), datasets: new Map() };
  const push = (what: string, result: string) => ops?.push(`${what}: ${result}`);
  const chk = lib.Checkpointer.fromFile(file);
  try {
    snap.keys = await chk.keys();
    push('keys()', 'ok');
  } catch (err) {
    push('keys()', outcome(err));
    return snap;
  }
  for (const key of snap.keys) {
    try {
      snap.values.set(key, await chk.get(key));
      push(`get ${key}`, 'ok');
    } catch (err) {
      push(`get ${key}`, outcome(err));
    }
  }
  for (const key of snap.keys) {
    // Array keys, and keys whose get failed (the handle's own path may fail differently); JSON has no handles.
    if (file.endsWith('.json')) continue;
    if (snap.values.has(key) && !isArrayValue(snap.values.get(key))) continue;
    try {
      const ds = await chk.dataset(key);
      try {
        snap.datasets.set(key, await ds.read());
        push(`dataset ${key}`, 'ok');
      } finally {
        await ds.close();
      }
    } catch (err) {
      push(`dataset ${key}`, outcome(err));
    }
  }
  return snap;
}

async function main(): Promise<void> {
  const cfg = childConfig<ReaderConfig>();
  const seeds = new Map<string, Snapshot>();
  for (let n = 0; n < cfg.files.length; n++) {
    const [mutant, seed] = cfg.files[n]!;
    let original = seeds.get(seed);
    if (!original) seeds.set(seed, (original = await readAll(seed, null)));
    process.stdout.write(`${JSON.stringify({ start: n })}\n`);
    const ops: string[] = [];
    const got = await readAll(mutant, ops);
    const silent: string[] = [];
    for (const [key, v] of got.values) {
      if (!original.values.has(key)) silent.push(`get ${key}: a key the seed does not have`);
      else if (!isDeepStrictEqual(v, original.values.get(key))) silent.push(`get ${key}: a different value`);
    }
    for (const [key, v] of got.datasets) {
      if (original.datasets.has(key) && !isDeepStrictEqual(v, original.datasets.get(key))) silent.push(`dataset ${key}: a different value`);
    }
    const out: ReadOutcome = { done: n, ops, silent };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ readerError: outcome(err) })}\n`);
  process.exit(3);
});
