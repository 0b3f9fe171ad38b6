/**
 * Child of the leak check: `cycles` open/set/get/close cycles on one file (every other cycle on a
 * fresh Checkpointer; every tenth also through a dataset handle), sampling after a GC at each tenth
 * of the run: open fds (/proc/self/fd), RSS, and for HDF5 the file's open HDF5 objects inside the
 * scope (`H5File.openObjectCount()`, the addon's count; it has no process-wide one). Prints the
 * samples as one JSON line. Run with --expose-gc.
 */
import * as fs from 'node:fs';
import { childConfig, ENTRY } from './common';
import type { H5File } from '../../lib/native';

export interface LeakConfig {
  file: string;
  cycles: number;
}

export interface LeakSample {
  cycle: number;
  fds: number;
  rssMiB: number;
  /** HDF5 objects open in the file inside the scope, after set/get (null for other formats). */
  hdf5Objects: number | null;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(ENTRY) as typeof import('../../lib');

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

async function main(): Promise<void> {
  const cfg = childConfig<LeakConfig>();
  const h5 = /\.h5$/.test(cfg.file);
  const samples: LeakSample[] = [];
  let reused = lib.Checkpointer.fromFile(cfg.file);
  const data = new Float64Array(4096);
  const every = Math.max(1, Math.floor(cfg.cycles / 10));
  for (let i = 0; i <= cfg.cycles; i++) {
    const chk = i % 2 === 0 ? reused : lib.Checkpointer.fromFile(cfg.file);
    data.fill(i);
    await chk.open();
    await chk.set('x', lib.ndarray(data));
    await chk.set('meta', { i, name: `cycle ${i}` });
    await chk.get('x');
    await chk.get('meta');
    if (i % 10 === 0 && !cfg.file.endsWith('.json')) {
      const ds = await chk.dataset('x');
      await ds.read([[0, 100]]);
      await ds.close();
    }
    let objects: number | null = null;
    if (h5) objects = ((chk.stream as { file: H5File | null }).file)?.openObjectCount() ?? null;
    await chk.close();
    if (i % every === 0) {
      gc();
      samples.push({
        cycle: i,
        fds: fs.readdirSync('/proc/self/fd').length,
        rssMiB: Math.round((process.memoryUsage.rss() / 2 ** 20) * 10) / 10,
        hdf5Objects: objects,
      });
    }
    if (i % 1000 === 999) reused = lib.Checkpointer.fromFile(cfg.file);
  }
  process.stdout.write(`${JSON.stringify({ samples })}\n`);
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stdout.write(`${JSON.stringify({ leakError: `${e?.code ?? ''} ${String(e?.message ?? err)}` })}\n`);
  process.exit(3);
});
