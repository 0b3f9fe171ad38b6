/**
 * Runs Debian's Python (/usr/bin/python3, with python3-numpy and python3-h5py from apt) — the
 * real peers our files must open in. A snippet prints one JSON document on stdout.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const PYTHON = process.env.CHECKPOINTER_TEST_PYTHON ?? '/usr/bin/python3';

/** Runs `code` with `args` in sys.argv[1:]; returns its stdout parsed as JSON. */
export function runPython<T = any>(code: string, ...args: string[]): T {
  const out = execFileSync(PYTHON, ['-c', code, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as T;
}

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix = 'checkpointer-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Where the read-only shared fixtures live (../shared beside the repo). */
export const SHARED = path.resolve(__dirname, '..', '..', '..', '..', 'shared');
export const MCUTILS_FIXTURES = path.join(SHARED, 'fixtures', 'mcutils');
