/**
 * The verifier's child process (./hdf5-verify): `node hdf5-verify-child.js <file> <options JSON>`.
 * Visits the file through the addon and writes what it finds to stdout as JSON lines; libhdf5 may
 * crash or loop on a damaged file here, where it costs only this process.
 */
import * as fs from 'node:fs';
import { loadNative } from '../native';

function main(): void {
  const [file, optionsJson] = process.argv.slice(2);
  const opts = JSON.parse(optionsJson ?? '{}') as { skip?: string[]; maxUnwrittenChunks?: number; stallMs?: number };
  const line = (v: unknown): void => {
    fs.writeSync(1, `${JSON.stringify(v)}\n`);
  };
  try {
    const fileSize = fs.statSync(file!).size;
    loadNative().verifyFileSync(file!, { skip: opts.skip ?? [], progressFd: 1, fileSize, maxUnwrittenChunks: opts.maxUnwrittenChunks, stallMs: opts.stallMs });
  } catch (err) {
    // The file did not open (not HDF5, locked, ...): the caller's own open says why, in its words.
    const e = err as { code?: unknown; message?: unknown };
    line({ unopened: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : null });
  }
}

main();
