/** Opening what the command line names: files that must exist, key paths as typed. */
import * as fs from 'node:fs';
import { Checkpointer } from '../checkpointer';
import { fromFile } from '../factory';
import { CliError, EXIT, usage } from './errors';

/** A checkpointer over an existing file (a missing one is an error here, not an empty checkpoint). */
export function openInput(file: string, opts: Record<string, unknown> = {}): Checkpointer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliError('no such file', 'ENOENT', EXIT.NOT_FOUND, file);
    throw err;
  }
  if (st.isDirectory()) throw new CliError('is a directory (only verify reads CheckpointManager directories)', 'EISDIR', EXIT.USAGE, file);
  return fromFile(file, opts as never);
}

/** A key as typed: `a/b/c`, or a JSON array of names (`'["a", "b/c"]'`) for names holding '/'. */
export function parseKey(text: string): string[] {
  if (text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw usage(`key ${text}: not a JSON array of names`);
    }
    if (!Array.isArray(parsed) || parsed.length === 0 || parsed.some((k) => typeof k !== 'string' || k === '')) throw usage(`key ${text}: a JSON key is a non-empty array of non-empty strings`);
    return parsed as string[];
  }
  const path = text.split('/').filter((p) => p !== '');
  if (path.length === 0) throw usage(`key ${JSON.stringify(text)}: empty`);
  return path;
}

/** Adds what to do to the package's "its writer died" error: the CLI's repair, not the option. */
export function withHint(err: unknown, file: string): unknown {
  if (err instanceof Error && /died without closing/.test(err.message) && !/checkpointer repair/.test(err.message)) {
    const advice = `run checkpointer repair ${file} to clear them`;
    const api = /open it with \{ recover: true \} to clear the flags/;
    err.message = api.test(err.message) ? err.message.replace(api, advice) : `${err.message}; ${advice}`;
  }
  return err;
}
